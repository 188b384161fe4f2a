"""Write a customer frame to a file: parquet, CSV, JSON or Excel.

* **parquet** keeps every dtype (the ``Enum``, the UTC ``Datetime``, lists and
  structs) and reads back as an equal frame.
* **json** writes a JSON array of records nested the way the API nests them
  (:func:`sequence_nb.frames.to_records`): ``address`` as an object, null fields
  left out, ``createdAt`` as the API's ISO text (``2022-06-28T16:47:00Z``).
* **csv** and **xlsx** hold only scalars: each list or struct column
  (``billingEmails``, ``linkedServices``, unknown ones like ``externalIds``) is
  written as the JSON text of its value (``["a@example.com"]``; null parts of
  list entries left out, as in the JSON export), and a null as an empty cell.
  CSV writes ``createdAt`` as the API's ISO text; Excel, which has no time
  zones, as a date-time cell in UTC. Text is written as text: Excel never turns
  a value starting with ``=`` into a formula or a URL into a link. Values are
  not altered, so a CSV opened in a spreadsheet program may still interpret
  such values there.

The file is written under a temporary name and renamed into place, so a failed
export never leaves a half-written file. It holds customers' personal data, so
it is readable by its owner only (``0600``), whatever the umask. Only the frame's
own columns are written: no credentials, client settings or other metadata are
added.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, get_args

import orjson
import polars as pl
import xlsxwriter  # no stubs or py.typed

from sequence_nb import fields
from sequence_nb.errors import SequenceError
from sequence_nb.frames import to_records

if TYPE_CHECKING:
    from polars._typing import OneOrMoreDataTypes

__all__ = ["ExportError", "ExportFormat", "export", "export_format"]

ExportFormat = Literal["parquet", "csv", "json", "xlsx"]

_SUFFIXES: Final[dict[str, ExportFormat]] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".xlsx": "xlsx",
}
#: Excel's limits: rows per sheet (one is the header) and characters per cell.
_XLSX_MAX_ROWS: Final = 1_048_576 - 1
_XLSX_MAX_CHARS: Final = 32_767
#: Excel cell format of date-times (written in UTC).
_XLSX_FORMATS: Final[dict[OneOrMoreDataTypes, str]] = {pl.Datetime: "yyyy-mm-dd hh:mm:ss"}


class ExportError(SequenceError, ValueError):
    """The frame cannot be exported as asked (unknown format, too big for Excel...)."""


def export(
    df: pl.DataFrame,
    path: str | os.PathLike[str],
    *,
    format: ExportFormat | None = None,
) -> Path:
    """Write ``df`` to ``path`` and return the path written.

    The format comes from ``format=`` or else from the file's extension
    (``.parquet``/``.pq``, ``.csv``, ``.json``, ``.xlsx``); anything else raises
    :class:`ExportError`. See the module docstring for what each format keeps.
    """
    target = Path(path).expanduser()
    kind = export_format(target, format)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Created empty and private first: the writers fill the file in place, and its
        # mode (not widened by the umask) goes with it when it is renamed.
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None  # name the file asked for
    try:
        _WRITERS[kind](df, temporary)
        temporary.chmod(0o600)  # in case a writer made the file anew
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def export_format(path: str | os.PathLike[str], format: str | None = None) -> ExportFormat:
    """The format :func:`export` writes ``path`` in: ``format`` when given, else the one
    its extension names; :class:`ExportError` when it is neither (so a command can refuse
    a name before fetching anything)."""
    target = Path(path)
    choices = get_args(ExportFormat)
    if format is not None:
        if format not in choices:
            raise ExportError(f"unknown export format {format!r}; use one of {', '.join(choices)}")
        return format  # type: ignore[return-value]  # checked against the Literal above
    suffix = target.suffix.lower()
    if suffix not in _SUFFIXES:
        known = ", ".join(_SUFFIXES)
        raise ExportError(
            f"cannot tell the export format from {target.name!r}: name the file with one of "
            f"{known} or pass format= ({', '.join(choices)})"
        )
    return _SUFFIXES[suffix]


def _write_parquet(df: pl.DataFrame, path: Path) -> None:
    df.write_parquet(path)


def _write_json(df: pl.DataFrame, path: Path) -> None:
    try:
        body = orjson.dumps(
            to_records(df),
            default=_json_default,
            option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z,
        )
    except orjson.JSONEncodeError as exc:
        raise ExportError(f"cannot write the frame as JSON: {exc}") from None
    path.write_bytes(body + b"\n")


def _write_csv(df: pl.DataFrame, path: Path) -> None:
    flat = _scalars(df).with_columns(
        pl.col(name).dt.strftime(fields.TIMESTAMP_FORMAT)
        for name, dtype in df.schema.items()
        if name == fields.CREATED_AT and isinstance(dtype, pl.Datetime)
    )
    flat.write_csv(path)


def _write_xlsx(df: pl.DataFrame, path: Path) -> None:
    if df.height > _XLSX_MAX_ROWS:
        raise ExportError(
            f"Excel holds at most {_XLSX_MAX_ROWS:,} rows; this frame has {df.height:,}"
        )
    flat = _scalars(df)
    flat = flat.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        for name, dtype in flat.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )
    texts = [name for name, dtype in flat.schema.items() if dtype == pl.String]
    if texts and flat.height:
        longest = flat.select(pl.col(texts).str.len_chars().max()).row(0)
        for name, length in zip(texts, longest, strict=True):
            if length is not None and length > _XLSX_MAX_CHARS:
                raise ExportError(
                    f"column {name!r} holds a value of {length:,} characters; an Excel cell "
                    f"holds at most {_XLSX_MAX_CHARS:,} (export as parquet, CSV or JSON)"
                )
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    with xlsxwriter.Workbook(str(path), options) as workbook:
        flat.write_excel(workbook=workbook, worksheet="customers", dtype_formats=_XLSX_FORMATS)


def _scalars(df: pl.DataFrame) -> pl.DataFrame:
    """The frame with each list/struct column as JSON text and enums as text."""
    nested = [
        name
        for name, dtype in df.schema.items()
        if isinstance(dtype, (pl.List, pl.Array, pl.Struct))
    ]
    replaced: list[pl.Series] = []
    if nested:
        # Rename so to_records does not read dots in the names as nesting.
        renamed = df.select(pl.col(name).alias(f"c{i}") for i, name in enumerate(nested))
        rows = to_records(renamed)
        for i, name in enumerate(nested):
            key = f"c{i}"
            text = [orjson.dumps(row[key]).decode() if key in row else None for row in rows]
            replaced.append(pl.Series(name, text, dtype=pl.String()))
    categorical = [
        pl.col(name).cast(pl.String())
        for name, dtype in df.schema.items()
        if isinstance(dtype, (pl.Enum, pl.Categorical))
    ]
    return df.with_columns(*replaced, *categorical)


def _json_default(value: object) -> object:
    """orjson fallback for the few values polars gives that JSON lacks."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_WRITERS: Final[dict[ExportFormat, Callable[[pl.DataFrame, Path], None]]] = {
    "parquet": _write_parquet,
    "csv": _write_csv,
    "json": _write_json,
    "xlsx": _write_xlsx,
}
