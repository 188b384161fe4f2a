"""Write a customer frame to a file, parquet, CSV, JSON or Excel, and read it back.

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

:func:`read_export` reads each of these files back as the frame it was written
from, so an export edited anywhere can be planned and pushed:

* **parquet** as it is; **json** through :func:`sequence_nb.frames.to_frame`,
  as records fetched from the API are read.
* **csv** and **xlsx** with every cell as text, so text stays text (a postcode
  ``02169`` stays ``02169``, ``TRUE`` stays ``TRUE``), then in the export's
  schema: ``billingEmails``, ``linkedServices`` and every column ``schema=``
  gives a list or struct dtype are decoded from their JSON text; ``createdAt``
  and ``taxStatus`` take their strict dtypes where nothing is lost (as a fetch
  gives them); columns ``schema=`` gives numbers or booleans are parsed. A cell
  that cannot be read so (not JSON, JSON of another shape, a word where numbers
  belong) refuses the file with :class:`ReadBackError`, naming the column, the
  row and the customer. Columns the file lacks stay missing (a push leaves them
  as they were), and Excel's empty cells are nulls.

Every known column is the one of the API version the file was exported in
(``api_version=``; None: ``$SEQUENCE_API_VERSION``, else the seed's): in
2024-07-30, ``status`` comes back as its Enum and each ``customProperties.<key>``
column as text, whatever its cells look like.

:func:`read_contacts_export` reads back an export of the contacts frame
(:func:`sequence_nb.contacts.fetch_contacts`) the same way: every cell as text,
``billingPreference`` as its Enum when every value is one of the version's.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import orjson
import polars as pl
import xlsxwriter  # no stubs or py.typed

from sequence_nb import fields
from sequence_nb.contacts import CUSTOMER_ID, contacts_schema
from sequence_nb.errors import SequenceError
from sequence_nb.fields import ApiVersion
from sequence_nb.frames import to_frame, to_records
from sequence_nb.schema import RAW_SUFFIX, conform
from sequence_nb.schema import schema as customer_schema

if TYPE_CHECKING:
    from polars._typing import OneOrMoreDataTypes, PolarsDataType

__all__ = [
    "ExportError",
    "ExportFormat",
    "ReadBackError",
    "export",
    "export_format",
    "read_contacts_export",
    "read_export",
]

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
#: The sheet an Excel export writes the customers to.
_XLSX_SHEET: Final = "customers"
#: Excel cell format of date-times (written in UTC).
_XLSX_FORMATS: Final[dict[OneOrMoreDataTypes, str]] = {pl.Datetime: "yyyy-mm-dd hh:mm:ss"}


class ExportError(SequenceError, ValueError):
    """The frame cannot be exported as asked (unknown format, too big for Excel...)."""


class ReadBackError(SequenceError, ValueError):
    """A file cannot be read back as the customer frame an export writes; the message
    names the file and, where one is at fault, its column, row and customer."""


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
    if target.exists() and not target.is_file():  # /dev/null, a pipe: never replaced
        raise OSError(errno.EEXIST, "not a regular file, so no export replaces it", str(target))
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
        flat.write_excel(workbook=workbook, worksheet=_XLSX_SHEET, dtype_formats=_XLSX_FORMATS)


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


# -- reading back -------------------------------------------------------------------------

#: The dtypes of a frame's columns, as ``frame.schema`` gives them.
Schema = Mapping[str, pl.DataType]

#: How long a cell quoted in an error may be before it is cut.
_QUOTED_CHARS: Final = 80


def read_export(
    path: str | os.PathLike[str],
    *,
    format: ExportFormat | None = None,
    schema: Schema | None = None,
    api_version: str | ApiVersion | None = None,
) -> pl.DataFrame:
    """The customer frame in ``path``, a file :func:`export` wrote (and someone edited).

    The format comes from ``format=`` or the file's extension, as for :func:`export`.
    ``api_version`` names the version the file was exported in, whose known columns
    take their dtypes (None: ``$SEQUENCE_API_VERSION``, else the seed's; an unknown
    name raises :class:`~sequence_nb.fields.UnknownApiVersionError`).
    ``schema`` (the exported frame's, ``customers.schema``) gives the columns of a CSV
    or Excel file their dtypes beyond the known columns': an unknown list, struct,
    number or boolean column comes back as it was exported, where without it it stays
    text. Parquet and JSON files carry their own types. See the module docstring for
    what each format gives back; a file that is not what an export writes raises
    :class:`ReadBackError`, one that is missing :class:`FileNotFoundError`.
    """
    version = fields.api_version(api_version)
    source, kind = _source(path, format)
    if kind == "parquet":
        return _read_parquet(source)
    if kind == "json":
        try:
            return to_frame(_json_records(source), api_version=version)
        except (TypeError, ValueError) as exc:
            raise ReadBackError(f"{source.name}: {_first_line(exc)}") from None
    text = _csv_text(source) if kind == "csv" else _xlsx_text(source)
    return _typed(text, source.name, schema or {}, version)


def read_contacts_export(
    path: str | os.PathLike[str],
    *,
    format: ExportFormat | None = None,
    api_version: str | ApiVersion | None = None,
) -> pl.DataFrame:
    """The contacts frame in ``path``, a file :func:`export` wrote of
    :func:`~sequence_nb.contacts.fetch_contacts`'s frame (and someone edited).

    Every cell is read as text (timestamps stay the API's text, as the frame holds
    them); ``billingPreference`` takes its Enum when every value is one of the
    version's (else it stays text, and the planner names the bad value). Rows added
    by hand (no ``id``) are kept. ``api_version`` as for :func:`read_export`; a
    version without contacts raises :class:`~sequence_nb.errors.SequenceError`. A
    file without a ``customerId`` or ``id`` column raises :class:`ReadBackError`.
    """
    schema = contacts_schema(api_version)
    source, kind = _source(path, format)
    if kind == "parquet":
        frame = _read_parquet(source)
    elif kind == "json":
        frame = _contact_records(source, tuple(schema))
    else:
        frame = _csv_text(source) if kind == "csv" else _xlsx_text(source, created_at=False)
    customers = sorted(_CUSTOMERS_ONLY & set(frame.columns))
    missing = [name for name in (CUSTOMER_ID, "id") if name not in frame.columns]
    if customers or missing:
        what = f"has {', '.join(customers)} columns: it holds customers, not contacts"
        if not customers:
            what = f"has no {' or '.join(missing)} column"
        raise ReadBackError(
            f"{source.name} {what}: give the file `sequence-nb export --contacts` (or "
            "export of fetch_contacts) wrote"
        )
    return _contact_dtypes(frame, schema, source.name)


#: Columns a customers export has and a contacts export never has.
_CUSTOMERS_ONLY: Final = frozenset({"legalName", "taxStatus", "address.country"})


def _source(path: str | os.PathLike[str], format: ExportFormat | None) -> tuple[Path, str]:
    """The file to read and its format; the errors a missing file or a folder gives."""
    source = Path(path).expanduser()
    kind = export_format(source, format)
    if source.is_dir():
        raise IsADirectoryError(21, "Is a folder", str(source))
    if not source.is_file():
        raise FileNotFoundError(2, "No such file", str(source))
    return source, kind


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ReadBackError(f"cannot read {path.name} as parquet: {_first_line(exc)}") from None


def _json_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON file; it must hold an array of objects."""
    try:
        records = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ReadBackError(f"{path.name} is not JSON ({exc})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        what = type(records).__name__ if not isinstance(records, list) else "other values"
        raise ReadBackError(
            f"{path.name} must hold a JSON array of customer records (as export writes "
            f"FILE.json), not {what}"
        )
    return records


def _contact_records(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    """The contacts of a JSON export, every value as text (a value of another JSON
    type is written back as JSON text, so the planner sees and names it). The export
    leaves null values out, so each of ``columns`` no record holds is a column of nulls."""
    rows = _json_records(path)
    names = list(dict.fromkeys([*columns, *(name for row in rows for name in row)]))
    text = [{name: _as_text(row.get(name)) for name in names} for row in rows]
    return pl.DataFrame(text, schema=dict.fromkeys(names, pl.String()), orient="row")


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _contact_dtypes(frame: pl.DataFrame, schema: Schema, name: str) -> pl.DataFrame:
    """The contacts' known columns as the frame holds them: text, ``billingPreference``
    an Enum when every value is one of its list; other columns as read."""
    out = []
    for column, dtype in schema.items():
        if column not in frame.columns:
            continue
        held = frame.get_column(column)
        if held.dtype == dtype:
            continue
        if isinstance(dtype, pl.Enum):
            text = held.cast(pl.String)
            if (text.is_null() | text.is_in(dtype.categories.to_list())).all():
                out.append(text.cast(dtype))
            else:
                out.append(text)
        elif isinstance(held.dtype, (pl.Enum, pl.Categorical, pl.String, pl.Null)):
            out.append(held.cast(pl.String))
        else:
            raise ReadBackError(
                f"column '{column}' of {name} holds {held.dtype} where contacts hold text: "
                "put back the exported values"
            )
    return frame.with_columns(out)


def _csv_text(path: Path) -> pl.DataFrame:
    """Every cell of a CSV file as text (an empty cell as null)."""
    try:
        text = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.NoDataError:
        raise ReadBackError(f"{path.name} is empty: give a file export wrote") from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = _first_line(exc)
        if "utf-8" in reason.lower() or "utf8" in reason.lower():
            reason = "it is not UTF-8 text; save it as CSV UTF-8"
        raise ReadBackError(f"cannot read {path.name} as CSV: {reason}") from None
    if "id" not in text.columns and len(text.columns) == 1 and ";" in text.columns[0]:
        raise ReadBackError(
            f"{path.name} separates its columns with ';': save it with commas (CSV UTF-8)"
        )
    return text.rename({name: name.removeprefix("\ufeff") for name in text.columns[:1]})


def _xlsx_text(path: Path, *, created_at: bool = True) -> pl.DataFrame:
    """Every cell of the workbook's ``customers`` sheet (else its first) as text, an
    empty cell as null; with ``created_at``, ``createdAt`` as date-times in UTC when every
    cell is one."""
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        names = reader.sheet_names
        sheet = _XLSX_SHEET if _XLSX_SHEET in names else names[0]
        text = _from_arrow(reader.load_sheet(sheet, dtypes="string").to_arrow())
        if created_at and fields.CREATED_AT in text.columns:
            dates = _from_arrow(
                reader.load_sheet(
                    sheet, use_columns=[fields.CREATED_AT], dtypes={fields.CREATED_AT: "datetime"}
                ).to_arrow()
            ).get_column(fields.CREATED_AT)
            text = _with_dates(text, dates)
    except (fastexcel.FastExcelError, IndexError, OSError, pl.exceptions.PolarsError) as exc:
        raise ReadBackError(
            f"cannot read {path.name} as an Excel workbook: {_first_line(exc)}"
        ) from None
    return text.with_columns(
        pl.when(pl.col(name) != "").then(pl.col(name)).alias(name)
        for name, dtype in text.schema.items()
        if dtype == pl.String
    )


def _from_arrow(table: Any) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _with_dates(text: pl.DataFrame, dates: pl.Series) -> pl.DataFrame:
    """``text`` with Excel's date-times in ``createdAt`` when every value is one (the
    export writes a ``createdAt`` of text as text cells: then they stay text)."""
    cells = text.get_column(fields.CREATED_AT)
    if dates.null_count() != cells.null_count() or not isinstance(dates.dtype, pl.Datetime):
        return text
    utc = dates.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    return text.with_columns(utc.alias(fields.CREATED_AT))


def _typed(text: pl.DataFrame, name: str, reference: Schema, version: ApiVersion) -> pl.DataFrame:
    """A frame of text cells in the export's schema: known columns of ``version`` as a
    fetch gives them, keyed columns (``customProperties.<key>``) as text, the others in
    ``reference``'s dtypes (else text); only the file's columns."""
    if "id" not in text.columns:
        return text  # the caller says what is wrong with a file without ids
    ids = text.get_column("id")
    known = customer_schema(version)
    decoded = text.with_columns(
        _decoded(text.get_column(column), known[column], name, ids)
        for column in text.columns
        if column in known and known[column].is_nested()
    )
    conformed = conform(decoded, version)
    frame = conformed.select(column for column in conformed.columns if column in text.columns)
    unknown = [
        column
        for column in frame.columns
        if column not in known
        and version.keyed_column(column) is None
        and not column.endswith(RAW_SUFFIX)
        and frame.schema[column] == pl.String
    ]
    typed = [
        _decoded(frame.get_column(column), reference[column], name, ids)
        if column in reference
        else _json_lists(frame.get_column(column))
        for column in unknown
        if column not in reference or _readable(reference[column])
    ]
    return frame.with_columns(column for column in typed if column is not None)


def _json_lists(cells: pl.Series) -> pl.Series | None:
    """An unknown column of JSON arrays (as an export writes a list column, say
    ``externalIds``) read as a fetch reads those lists; ``None`` when any cell is not
    one, and the column stays text."""
    texts = cells.drop_nulls()
    if texts.is_empty() or not texts.str.strip_chars().str.starts_with("[").all():
        return None
    try:
        values = [None if cell is None else orjson.loads(cell) for cell in cells.to_list()]
    except orjson.JSONDecodeError:
        return None
    if not all(value is None or isinstance(value, list) for value in values):
        return None
    records = [{"id": str(row), "value": value} for row, value in enumerate(values)]
    return to_frame(records).get_column("value").alias(cells.name)


def _readable(dtype: pl.DataType) -> bool:
    """Whether text is read back into ``dtype`` (others stay text)."""
    return dtype.is_nested() or dtype.is_numeric() or dtype == pl.Boolean


def _decoded(cells: pl.Series, dtype: pl.DataType, file: str, ids: pl.Series) -> pl.Series:
    """Text cells read into ``dtype``: lists and structs from their JSON text, numbers
    and booleans as written; a cell that is not refuses the file."""
    values: list[Any] = []
    for row, cell in enumerate(cells.to_list()):
        if cell is None:
            values.append(None)
            continue
        try:
            value = orjson.loads(cell) if dtype.is_nested() else _scalar(cell, dtype)
        except (orjson.JSONDecodeError, ValueError):
            value = _NOT_READ
        if value is _NOT_READ or _misfit(value, dtype):
            raise _cell_error(file, cells.name, row, ids, cell, dtype)
        values.append(value)
    return pl.Series(cells.name, values, dtype=dtype, strict=True)


_NOT_READ: Final = object()


def _scalar(cell: str, dtype: pl.DataType) -> object:
    """A number or boolean cell's value (``ValueError`` when it holds none)."""
    if dtype == pl.Boolean:
        words = {"true": True, "false": False}
        if cell.strip().lower() not in words:
            raise ValueError(cell)
        return words[cell.strip().lower()]
    if dtype.is_integer():
        return int(cell)
    return float(cell)


def _misfit(value: object, dtype: PolarsDataType) -> bool:
    """Whether a decoded value does not have ``dtype``'s shape (a null always has)."""
    if value is None:
        return False
    if isinstance(dtype, (pl.List, pl.Array)):
        return not isinstance(value, list) or any(_misfit(v, dtype.inner) for v in value)
    if isinstance(dtype, pl.Struct):
        parts = {f.name: f.dtype for f in dtype.fields}
        return not isinstance(value, dict) or any(
            key not in parts or _misfit(part, parts[key]) for key, part in value.items()
        )
    if dtype == pl.Boolean:
        return not isinstance(value, bool)
    if dtype.is_integer():
        return isinstance(value, bool) or not isinstance(value, int)
    if dtype.is_float():
        return isinstance(value, bool) or not isinstance(value, (int, float))
    return not isinstance(value, str)


def _cell_error(
    file: str, column: str, row: int, ids: pl.Series, cell: str, dtype: pl.DataType
) -> ReadBackError:
    """The error naming a cell (as read: a command escapes what it prints)."""
    quoted = cell if len(cell) <= _QUOTED_CHARS else cell[:_QUOTED_CHARS] + "…"
    customer = ids[row]
    who = f" (customer {customer})" if customer is not None else ""
    return ReadBackError(
        f"column '{column}' of {file}, row {row + 2}{who}: holds '{quoted}', not "
        f"{_described(dtype)} as the export writes it; put back the exported value (the "
        "column is read-only)"
    )


def _described(dtype: pl.DataType) -> str:
    if isinstance(dtype, (pl.List, pl.Array)):
        return "a JSON list" + (" of objects" if isinstance(dtype.inner, pl.Struct) else "")
    if isinstance(dtype, pl.Struct):
        return "a JSON object with the keys " + ", ".join(f.name for f in dtype.fields)
    if dtype == pl.Boolean:
        return "true or false"
    return "a whole number" if dtype.is_integer() else "a number"
