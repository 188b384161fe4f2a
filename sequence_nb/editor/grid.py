"""The editor's grid: an ipydatagrid ``DataGrid`` fed from polars, sent compactly.

The grid holds the rows being shown (all of them, or the filtered ones) as a pandas
frame built from polars through Arrow: the customer id as the row header, then the
row-status column, then the shown columns as text. The cell-changed event's ``row``
is the position in this frame (whatever the on-screen sort), so :class:`EditorGrid`
remembers the id of each position and callers map events through it.

Cell colours come from the status column: its value is the row's marks string
(:mod:`sequence_nb.editor.state`), which the renderers read with a Vega expression,
so colouring follows sorting and filtering. After the marks, a customer grid's status
value carries the original text of each editable column (:func:`status_text`): the
browser then colours a cell it has just edited as changed by itself. ipydatagrid
repaints the whole grid for every value written to it, so an edit the browser already
shows right costs no second repaint: :meth:`EditorGrid.set_row` sends a row only when
what the browser would show (:func:`shown`, the expressions' rules in Python) differs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd
import polars as pl
from ipydatagrid import DataGrid, TextRenderer, VegaExpr
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
    "local_columns",
    "shown",
    "status_text",
]

#: Name of the row-status column (a space keeps it apart from any API field name).
STATUS: Final = "row status"

#: In a status value: what starts the originals, what parts them, and the part of an
#: original the browser cannot compare (one holding any of these three characters).
ORIGINALS: Final = "\x1d"
PART: Final = "\x1e"
UNKNOWN: Final = "\x1f"
_CONTROLS: Final = (ORIGINALS, PART, UNKNOWN)

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

#: Labels an edit the browser colours by itself never covers: the kernel's verdict.
_KERNEL_LABELS: Final = frozenset(n for n, code in LABEL_CODES.items() if code in ("x", "f"))
#: Mark codes in the order a cell takes its colour; the browser's own "changed" comes
#: after ``x`` and ``f`` (see :func:`shown`).
_VERDICT_CODES: Final = ("x", "f")
_OTHER_CODES: Final = ("c", "u", "p")

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
    names = [{str(name): None for name in field} for field in data["fields"]]
    return {"data": columns, "schema": data["schema"], "fields": names}


def _kept_columns(_: Any, widget: Any) -> dict[str, Any]:
    """The browser never sends the grid's data back as the truth: the kernel's stays
    (edits arrive one cell at a time as ``cell-changed`` messages)."""
    kept: dict[str, Any] = widget._data
    return kept


def _column_json(column: pd.Series) -> Any:
    values = column.to_numpy()
    if np.issubdtype(values.dtype, np.integer):  # as ipydatagrid sends them: int32 bytes
        ints = np.ascontiguousarray(values, dtype=np.int32)
        return {"value": ints.data, "dtype": "int32", "shape": ints.shape, "type": None}
    if values.dtype != object:
        values = values.astype(object)
    return values


class EditorGrid(DataGrid):  # type: ignore[misc]
    """A ``DataGrid`` whose data goes to the browser compactly and whose rows know their ids.

    ``local`` names the columns whose originals the status values carry, in their
    order (:func:`status_text`); :meth:`status_at` is the status the browser holds.
    """

    _data = Dict().tag(sync=True, to_json=_columns_to_json, from_json=_kept_columns)

    #: Seconds a row sent may still be on its way to the browser (behind a repaint or a
    #: busy kernel's queue): an edit of the row taken before then may have been made
    #: before the row arrived, which then put the old values back over it.
    in_flight_seconds: float = 2.0

    def __init__(self, frame: pd.DataFrame, local: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(frame, **kwargs)
        self.local = tuple(local)
        self.ids: list[str] = [str(i) for i in frame.index]
        self._statuses: list[str] = list(frame[STATUS])
        self._sent: dict[int, tuple[float, list[Any]]] = {}
        self._before: tuple[float, list[str]] | None = None
        self._visible_rows = list(range(len(frame)))

    def show(self, frame: pd.DataFrame) -> None:
        """Replace the rows shown (one message with the whole frame).

        The rows the browser will say it shows (all, in order, until it sorts) go
        with them: it reports them after each repaint, and a list it already holds is
        not sent back (else the first edit would send every row number both ways).
        """
        self._before = (time.monotonic(), self.ids)
        self.ids = [str(i) for i in frame.index]
        self._statuses = list(frame[STATUS])
        self._sent = {}
        with self.hold_sync():
            self.data = frame
            self._visible_rows = list(range(len(frame)))

    def status_at(self, row: int) -> str:
        """The status value the grid last sent for a row (a person may have typed over
        it since: the frame then holds what was typed, and :meth:`set_row` sends it back)."""
        return self._statuses[row]

    def id_at(self, row: Any) -> str | None:
        """The customer id of a row position of the frame given to the grid."""
        if isinstance(row, int) and 0 <= row < len(self.ids):
            return self.ids[row]
        return None

    def may_be_stale(self, row: Any) -> bool:
        """Whether an event about ``row`` may come from the rows shown before the last
        :meth:`show` (they went out under :attr:`in_flight_seconds` ago), where that
        place held another id: the event cannot say which it is about. A place the rows
        before did not have (a row added at the end) is the new rows'."""
        if self._before is None:
            return False
        at, ids = self._before
        if time.monotonic() - at >= self.in_flight_seconds:
            self._before = None
            return False
        before = ids[row] if isinstance(row, int) and 0 <= row < len(ids) else None
        return before is not None and before != self.id_at(row)

    def set_row(self, row: int, values: Sequence[Any]) -> bool:
        """Write a whole row (status first) here and in the browser; False when the
        browser already shows it as it should (then nothing is sent).

        A ``row-changed`` message, unlike ``set_cell_value``, is not echoed back by the
        front end as an edit, and repaints the grid so the row's colours update. Each one
        costs the browser a full repaint of the grid, so a row is not sent when its
        values are those the browser holds and its colours and label would look the same
        (an edit the browser coloured itself, a cell edited again): the browser keeps the
        status it has, and so does this side. A status typed over in the browser (the
        frame holds what it typed) is always sent back, and so is a row edited since a
        row sent may have overwritten it (:attr:`in_flight_seconds`).
        """
        frame = self._data["data"]
        names = self.body_columns()
        held = [self.status_at(row), *(frame.at[row, name] for name in names[1:])]
        if (
            frame.at[row, STATUS] == held[0]
            and held[1:] == list(values[1:])
            and not self._overwritten(row, held)
        ):
            cells = dict(zip(names[1:], values[1:], strict=True))
            if shown(held[0], cells, self.local) == shown(values[0], cells, self.local):
                return False
        for name, value in zip(names, values, strict=True):
            frame.at[row, name] = value
        self._statuses[row] = values[0]
        self._sent[row] = (time.monotonic(), list(values))
        self.send({"event_type": "row-changed", "row": row, "value": list(values)})
        return True

    def _overwritten(self, row: int, held: Sequence[Any]) -> bool:
        """Whether the browser may show a row sent lately over an edit of it since: the
        row went out under :attr:`in_flight_seconds` ago with other cell values."""
        sent = self._sent.get(row)
        if sent is None:
            return False
        at, values = sent
        if time.monotonic() - at >= self.in_flight_seconds:
            del self._sent[row]
            return False
        return list(held[1:]) != values[1:]

    def body_columns(self) -> list[str]:
        """The columns of the grid body in order (what a cell event's ``column_index`` counts)."""
        keys = self._data["schema"]["primaryKey"]
        return [f["name"] for f in self._data["schema"]["fields"] if f["name"] not in keys]


# -- what the browser shows ---------------------------------------------------------------------


def local_columns(editable: Sequence[str]) -> list[str]:
    """The editable columns whose names the browser's expressions can hold (one with
    ``]``, a quote or a control character is left to the kernel)."""
    unsafe = ("]", '"', "\\", *_CONTROLS)
    return [c for c in editable if not any(ch in c for ch in unsafe)]


def status_text(marks: str, originals: Sequence[str | None] | None = None) -> str:
    """A status value: ``marks``, then (for a customer grid) the original text of each
    local column, so the browser can tell an edited cell from an untouched one."""
    if originals is None:
        return marks
    return marks + ORIGINALS + PART.join(_original_part(value) for value in originals)


def _original_part(value: str | None) -> str:
    if value is None:
        return ""
    return UNKNOWN if any(ch in value for ch in _CONTROLS) else value


def original_parts(texts: pl.Series) -> pl.Series:
    """:func:`status_text`'s part for each original text of a column, at once."""
    unsafe = texts.str.contains("[" + "".join(_CONTROLS) + "]").fill_null(False)
    return (
        pl.select(pl.when(unsafe).then(pl.lit(UNKNOWN)).otherwise(texts.fill_null("")))
        .to_series()
        .alias(texts.name)
    )


def shown(
    status: str, row: Mapping[str, Any], local: Sequence[str]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What the browser shows for a row: its status label and each cell's mark code
    (``""``: none), by the rules of :func:`cell_renderer` and :func:`status_renderer`.

    A local column's cell whose text differs from the original in ``status`` is
    ``c`` (changed) unless the marks say ``x`` or ``f`` for it; a row with such a cell
    is labelled ``changed`` unless its label is one only the kernel gives.
    """
    marks, parts = _split_status(status)
    changed = {
        name
        for name, part in zip(local, parts, strict=False)
        if part != UNKNOWN and part != _text_of(row.get(name))
    }
    label = marks[: marks.index("|")] if "|" in marks else ""
    if changed and label not in _KERNEL_LABELS:
        label = "changed"
    codes = tuple((name, _cell_code(marks, name, name in changed)) for name in row)
    return label, codes


def _split_status(status: str) -> tuple[str, list[str]]:
    # The last separator: originals never hold one, a column named in the marks may.
    cut = status.rfind(ORIGINALS)
    if cut < 0:
        return status, []
    return status[:cut], status[cut + 1 :].split(PART)


def _text_of(value: Any) -> str:
    return "" if value is None else str(value)


def _cell_code(marks: str, name: str, changed: bool) -> str:
    for code in _VERDICT_CODES:
        if f"|{code}:{name}|" in marks:
            return code
    if changed:
        return "c"
    return next((code for code in _OTHER_CODES if f"|{code}:{name}|" in marks), "")


# -- building the frame -----------------------------------------------------------------------


def grid_frame(
    view: pl.DataFrame,
    columns: Sequence[str],
    marks: Sequence[str],
    key: str = fields.ID,
    originals: pl.DataFrame | None = None,
) -> pd.DataFrame:
    """The pandas frame the grid shows: ``key`` (the customer id) as the index, status,
    then ``columns`` as text.

    ``originals`` (the same rows, the local columns as read) adds each row's originals
    to its status value (:func:`status_text`). Columns are object arrays of ``str`` or
    ``None`` (pandas would otherwise make Arrow strings, which copy the whole column on
    every cell written).
    """
    statuses = pl.Series(STATUS, list(marks), dtype=pl.String)
    if originals is not None:  # the separator even with no originals, as status_text puts it
        parts = [
            original_parts(pl.Series(c, display_values(originals[c]), dtype=pl.String))
            for c in originals.columns
        ]
        joined = (
            pl.select(pl.concat_str(parts, separator=PART)).to_series()
            if parts
            else pl.Series([""] * len(statuses), dtype=pl.String)
        )
        statuses = pl.select(pl.concat_str([statuses, pl.lit(ORIGINALS), joined])).to_series()
    data = {STATUS: _objects(statuses.to_list())}
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


def _lookup(table: Mapping[str, str], key: str) -> str:
    """A Vega expression giving ``table[key]``, else the renderer's default."""
    entries = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in table.items())
    return f"({{{entries}}}[{key}] || default_value)"


def _marks_and_parts(status: str) -> tuple[str, str]:
    """Vega expressions for the marks and the list of original parts of a status value
    (cut at the last separator, as :func:`shown` does)."""
    cut = f"lastindexof({status}, {_literal(ORIGINALS)})"
    marks = f"({cut} >= 0 ? slice({status}, 0, {cut}) : {status})"
    parts = f"({cut} >= 0 ? split(slice({status}, {cut} + 1), {_literal(PART)}) : [])"
    return marks, parts


def _differs(part: str, value: str) -> str:
    """Vega: the cell's text differs from a comparable original (see :func:`shown`)."""
    text = f"({value} == null ? '' : '' + {value})"
    return f"({part} != null && {part} != {_literal(UNKNOWN)} && {part} != {text})"


def _code_of_cell(local: Sequence[str]) -> str:
    """Vega: the mark code that colours this cell (:func:`shown`'s rule)."""
    marks, parts = _marks_and_parts(f"('' + cell.metadata.data[{_literal(STATUS)}])")

    def has(code: str) -> str:
        return f"indexof({marks}, {_literal('|' + code + ':')} + cell.metadata.name + '|') >= 0"

    tests = [(has(code), code) for code in _VERDICT_CODES]
    if local:
        index = f"indexof([{', '.join(map(_literal, local))}], cell.metadata.name)"
        tests.append((_differs(f"{parts}[{index}]", "cell.value"), "c"))
    tests += [(has(code), code) for code in _OTHER_CODES]
    expression = "''"
    for test, code in reversed(tests):
        expression = f"({test} ? {_literal(code)} : {expression})"
    return expression


def _label_of_row(local: Sequence[str]) -> str:
    """Vega: the status column's label (:func:`shown`'s rule)."""
    marks, parts = _marks_and_parts("('' + cell.value)")
    label = f"(indexof({marks}, '|') >= 0 ? slice({marks}, 0, indexof({marks}, '|')) : '')"
    if not local:
        return label
    edited = " || ".join(
        _differs(f"{parts}[{k}]", f"cell.metadata.data[{_literal(name)}]")
        for k, name in enumerate(local)
    )
    kernel = f"indexof([{', '.join(map(_literal, sorted(_KERNEL_LABELS)))}], {label}) >= 0"
    return f"({kernel} ? {label} : (({edited}) ? 'changed' : {label}))"


def cell_renderer(local: Sequence[str] = ()) -> TextRenderer:
    """Body cells: the colours of their mark codes, read from the row's status; a local
    column's cell edited in the browser is changed before the kernel says so."""
    code = _code_of_cell(local)
    return TextRenderer(
        font=_FONT,
        background_color=VegaExpr(_lookup({c: fill for c, (fill, _) in COLOURS.items()}, code)),
        text_color=VegaExpr(_lookup({c: ink for c, (_, ink) in COLOURS.items()}, code)),
    )


def status_renderer(local: Sequence[str] = ()) -> TextRenderer:
    """The status column: the label before the first ``|``, coloured by its kind (a row
    edited in the browser is ``changed`` before the kernel says so)."""
    label = _label_of_row(local)
    fills = {name: COLOURS[code][0] for name, code in LABEL_CODES.items()}
    inks = {name: COLOURS[code][1] for name, code in LABEL_CODES.items()}
    return TextRenderer(
        font=_HEADER_FONT,
        # An empty text would show the raw value (marks and originals): a space instead.
        text_value=VegaExpr(f"({label} == '' ? ' ' : {label})"),
        background_color=VegaExpr(_lookup(fills, label)),
        text_color=VegaExpr(_lookup(inks, label)),
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
    frame: pd.DataFrame,
    columns: Sequence[str],
    height: str,
    key: str = fields.ID,
    local: Sequence[str] = (),
) -> EditorGrid:
    """The editable grid for ``frame`` (see :func:`grid_frame`, the same ``key`` and
    ``local`` columns), styled."""
    return EditorGrid(
        frame,
        local,
        editable=True,
        selection_mode="cell",
        base_row_size=ROW_SIZE,
        base_column_header_size=COLUMN_HEADER_SIZE,
        base_row_header_size=ROW_HEADER_SIZE,
        base_column_size=BASE_COLUMN_SIZE,
        column_widths=column_widths(columns),
        default_renderer=cell_renderer(local),
        renderers={STATUS: status_renderer(local), key: id_renderer()},
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
