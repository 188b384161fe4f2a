"""The editor's grid: an ipydatagrid ``DataGrid`` fed from polars, sent compactly.

The grid holds the rows being shown (all of them, or the filtered ones) as a pandas
frame built from polars through Arrow: the customer id as the row header, then the
row-status column, then the shown columns as text. The cell-changed event's ``row``
is the position in this frame (whatever the on-screen sort), so :class:`EditorGrid`
remembers the id of each position and callers map events through it.

Cell colours come from the status column: its value is the row's marks string
(:mod:`sequence_nb.editor.state`), which the renderers read with a Vega expression,
so colouring needs no extra data per cell and follows sorting and filtering.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd
import polars as pl
from ipydatagrid import DataGrid, TextRenderer, VegaExpr
from ipydatagrid.datagrid import _data_deserialization_impl, _data_to_json
from traitlets import Dict

from sequence_nb import fields

__all__ = [
    "BASE_COLUMN_SIZE",
    "COLOURS",
    "COLUMN_HEADER_SIZE",
    "COLUMN_WIDTHS",
    "ROW_HEADER_SIZE",
    "ROW_SIZE",
    "STATUS",
    "STATUS_WIDTH",
    "EditorGrid",
    "grid_frame",
]

#: Name of the row-status column (a space keeps it apart from any API field name).
STATUS: Final = "row status"

#: Geometry, fixed so a person gets readable columns and a test can find a cell.
ROW_SIZE: Final = 26
COLUMN_HEADER_SIZE: Final = 30
ROW_HEADER_SIZE: Final = 280  # a whole 36-character id at 12 px monospace
BASE_COLUMN_SIZE: Final = 140
STATUS_WIDTH: Final = 100
COLUMN_WIDTHS: Final[dict[str, int]] = {
    "legalName": 210,
    "contactName": 150,
    "email": 250,
    "billingEmail": 250,
    "address.line1": 180,
    "address.line2": 130,
    "address.town": 120,
    "address.postCode": 100,
    "address.postcode": 150,
    "address.state": 130,
    "address.country": 140,
    "taxStatus": 140,
    "telephone": 150,
    "url": 210,
    "label": 110,
    "paymentReference": 140,
    "createdAt": 170,
    "status": 90,
    "customerId": 150,
    "name": 170,
    "billingPreference": 145,
    "updatedAt": 170,
}

#: Background and text colour of each mark code (see ``state.CODES``).
COLOURS: Final[dict[str, tuple[str, str]]] = {
    "x": ("#ffc9c9", "#a51111"),
    "f": ("#ffd8a8", "#7a3a00"),
    "c": ("#d0ebff", "#0b3d6b"),
    "u": ("#d3f9d8", "#1b5e20"),
    "p": ("#fff3bf", "#5c4400"),
}
#: Colours of the status column's labels: the push result's words for a row, and
#: ``changed`` and ``problem``.
LABEL_CODES: Final = {
    "invalid": "x",
    "failed": "f",
    "conflict": "f",
    "unconfirmed": "f",
    "side-effects": "f",
    "changed": "c",
    "new": "c",
    "updated": "u",
    "skipped": "u",
    "problem": "p",
}

_FONT: Final = "13px system-ui, -apple-system, 'Segoe UI', sans-serif"
_HEADER_FONT: Final = "600 12px system-ui, -apple-system, 'Segoe UI', sans-serif"


def _columns_to_json(data: dict[str, Any], widget: Any) -> dict[str, Any]:
    """ipydatagrid's ``_data`` for the browser, each column sent whole.

    Text columns go out as their object arrays: the kernel's message packer writes
    any iterable as a JSON array, and the browser takes a plain array as it is.
    Integer columns go as binary buffers. ipydatagrid's own serializer calls Python
    once per cell, and ipywidgets walks every element of a list looking for binary
    buffers; both dominated opening a large grid.
    """
    if not data:
        return {}
    frame = data["data"]
    columns = {str(name): _column_json(frame[name]) for name in frame.columns}
    return {
        "data": columns,
        "schema": data["schema"],
        "fields": _data_to_json(data["fields"], widget),
    }


def _column_json(column: pd.Series) -> Any:
    values = column.to_numpy()
    if np.issubdtype(values.dtype, np.integer):  # as ipydatagrid sends them: int32 bytes
        ints = np.ascontiguousarray(values, dtype=np.int32)
        return {"value": ints.data, "dtype": "int32", "shape": ints.shape, "type": None}
    if values.dtype != object:
        values = values.astype(object)
    return values


class EditorGrid(DataGrid):  # type: ignore[misc]
    """A ``DataGrid`` whose data goes to the browser compactly and whose rows know their ids."""

    _data = Dict().tag(sync=True, to_json=_columns_to_json, from_json=_data_deserialization_impl)

    def __init__(self, frame: pd.DataFrame, **kwargs: Any) -> None:
        super().__init__(frame, **kwargs)
        self.ids: list[str] = [str(i) for i in frame.index]

    def show(self, frame: pd.DataFrame) -> None:
        """Replace the rows shown (one message with the whole frame)."""
        self.ids = [str(i) for i in frame.index]
        self.data = frame

    def id_at(self, row: Any) -> str | None:
        """The customer id of a row position of the frame given to the grid."""
        if isinstance(row, int) and 0 <= row < len(self.ids):
            return self.ids[row]
        return None

    def set_row(self, row: int, values: Sequence[Any]) -> bool:
        """Write a whole row (status first) here and in the browser; False when the row
        already holds these values (then nothing is sent).

        A ``row-changed`` message, unlike ``set_cell_value``, is not echoed back by the
        front end as an edit, and repaints the grid so the row's colours update. Each one
        costs the browser a full repaint of the grid, so a row the browser already shows
        as it should (a cell edited again, its marks unchanged) is not sent.
        """
        frame = self._data["data"]
        names = self.body_columns()
        if [frame.at[row, name] for name in names] == list(values):
            return False
        for name, value in zip(names, values, strict=True):
            frame.at[row, name] = value
        self.send({"event_type": "row-changed", "row": row, "value": list(values)})
        return True

    def body_columns(self) -> list[str]:
        """The columns of the grid body in order (what a cell event's ``column_index`` counts)."""
        keys = self._data["schema"]["primaryKey"]
        return [f["name"] for f in self._data["schema"]["fields"] if f["name"] not in keys]


# -- building the frame -----------------------------------------------------------------------


def grid_frame(
    view: pl.DataFrame, columns: Sequence[str], marks: Sequence[str], key: str = fields.ID
) -> pd.DataFrame:
    """The pandas frame the grid shows: ``key`` (the customer id) as the index, status,
    then ``columns`` as text.

    Columns are object arrays of ``str`` or ``None`` (pandas would otherwise make
    Arrow strings, which copy the whole column on every cell written).
    """
    data = {STATUS: _objects(list(marks))}
    for column in columns:
        data[column] = _objects(display_values(view.get_column(column)))
    frame = pd.DataFrame(data, dtype=object, copy=False)
    ids = _objects(view.get_column(key).to_list())
    frame.index = pd.Index(ids, dtype=object, name=key)
    return frame


def _objects(values: list[Any]) -> np.ndarray[Any, np.dtype[np.object_]]:
    """An object array of the values as they are (pandas keeps it; a list would become
    Arrow strings)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def display_values(series: pl.Series) -> list[str | None]:
    """A column's values as the text the grid shows (null stays null)."""
    dtype = series.dtype
    if dtype == pl.String:
        return series.to_list()
    if dtype.is_nested():
        return [None if v is None else orjson.dumps(v, default=str).decode() for v in series]
    if isinstance(dtype, pl.Datetime):
        return series.dt.to_string(fields.TIMESTAMP_FORMAT).to_list()
    return series.cast(pl.String).to_list()


def display_value(value: Any) -> str | None:
    """One value as the grid shows it."""
    if value is None or isinstance(value, str):
        return value
    return display_values(pl.Series([value]))[0]


# -- look -------------------------------------------------------------------------------------


def column_widths(columns: Sequence[str]) -> dict[str, int]:
    """Readable widths for the status column and ``columns``."""
    widths = {STATUS: STATUS_WIDTH}
    for column in columns:
        widths[column] = COLUMN_WIDTHS.get(column, max(BASE_COLUMN_SIZE, 9 * len(column)))
    return widths


def _literal(text: str) -> str:
    return json.dumps(text)


def _by_code(marks: str, values: dict[str, str]) -> str:
    """A Vega expression giving ``values[code]`` for the first mark code of this cell's
    column in ``marks`` (strongest first), else the renderer's default."""
    name = "cell.metadata.name"
    expression = "default_value"
    for code in reversed(list(values)):
        test = f"indexof({marks}, {_literal('|' + code + ':')} + {name} + '|') >= 0"
        expression = f"({test} ? {_literal(values[code])} : {expression})"
    return expression


def cell_renderer() -> TextRenderer:
    """Body cells: the colours of their mark codes, read from the row's status."""
    marks = f"('' + cell.metadata.data[{_literal(STATUS)}])"
    fills = {code: fill for code, (fill, _) in COLOURS.items()}
    inks = {code: ink for code, (_, ink) in COLOURS.items()}
    return TextRenderer(
        font=_FONT,
        background_color=VegaExpr(_by_code(marks, fills)),
        text_color=VegaExpr(_by_code(marks, inks)),
    )


def status_renderer() -> TextRenderer:
    """The status column: the label before the first ``|``, coloured by its kind."""
    value = "('' + cell.value)"
    label = f"(indexof({value}, '|') >= 0 ? slice({value}, 0, indexof({value}, '|')) : '')"
    background, text = "default_value", "default_value"
    for name, code in LABEL_CODES.items():
        fill, ink = COLOURS[code]
        background = f"({label} == {_literal(name)} ? {_literal(fill)} : {background})"
        text = f"({label} == {_literal(name)} ? {_literal(ink)} : {text})"
    return TextRenderer(
        font=_HEADER_FONT,
        text_value=VegaExpr(label),
        background_color=VegaExpr(background),
        text_color=VegaExpr(text),
    )


def id_renderer() -> TextRenderer:
    """The row header: the customer id, start first, cut with an ellipsis."""
    return TextRenderer(
        font="12px ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace",
        text_color="#495057",
        horizontal_alignment="left",
        text_elide_direction="right",
    )


def header_renderer() -> TextRenderer:
    """Column and row headers: a quiet bold label, cut on the right when too long."""
    return TextRenderer(font=_HEADER_FONT, horizontal_alignment="left")


def make_grid(
    frame: pd.DataFrame, columns: Sequence[str], height: str, key: str = fields.ID
) -> EditorGrid:
    """The editable grid for ``frame`` (see :func:`grid_frame`, the same ``key``), styled."""
    return EditorGrid(
        frame,
        editable=True,
        selection_mode="cell",
        base_row_size=ROW_SIZE,
        base_column_header_size=COLUMN_HEADER_SIZE,
        base_row_header_size=ROW_HEADER_SIZE,
        base_column_size=BASE_COLUMN_SIZE,
        column_widths=column_widths(columns),
        default_renderer=cell_renderer(),
        renderers={STATUS: status_renderer(), key: id_renderer()},
        header_renderer=header_renderer(),
        grid_style={
            "header_background_color": "#f1f3f5",
            "grid_line_color": "#e9ecef",
            "header_grid_line_color": "#dee2e6",
            "selection_border_color": "#1c7ed6",
            "selection_fill_color": "rgba(28, 126, 214, 0.12)",
            "cursor_border_color": "#1c7ed6",
        },
        layout={"height": height, "width": "100%"},
    )
