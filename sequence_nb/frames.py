"""Customer records <-> polars frames: the public functions and what they promise.

No I/O of its own: :func:`fetch_customers` reads through a client. The parts live
by concept: the schema, dtypes and column naming in :mod:`sequence_nb.schema`;
the streaming Arrow reader in :mod:`sequence_nb.arrow_reader` and its lenient
fallback in :mod:`sequence_nb.lenient_reader`; the rule ordering unknown columns
in :mod:`sequence_nb.column_order`. This module serializes records for the
reader, chooses the path and turns frames back into records.

One row per customer and one column per leaf field, named by its JSON path joined
with dots as ``pandas.json_normalize`` names it (``address.postCode``). Known
columns come first in the stable order of the API version's ``known_columns``
(:class:`~sequence_nb.fields.ApiVersion`; the seed's unless told), then any
field the toolkit does not know, in first-seen order: by the first record holding
a value for it, fields first holding one in the same record in that record's
order, and fields never holding a value last, by name. The new parts of an object
keep to their object (``address.state`` leads the unknown columns, since
``address`` itself is known), and the parts of objects inside lists are ordered
the same way. The order depends on the data only, never on how the reader's
threads split the work.

Dtypes (:func:`schema`): every known scalar is ``String``, except ``createdAt``
(``Datetime("us", "UTC")``) and ``taxStatus`` (``Enum(fields.TAX_STATUSES)``);
``billingEmails`` is ``List(String)`` and ``linkedServices`` is
``List(Struct({externalId, externalService, syncTime}))`` with ``syncTime`` kept
as the API's text. A field absent from every record, or null in all of them, still
gets its column and dtype, and no input at all gives an empty frame of the known
columns.

Reads are lenient and lose nothing:

* ``taxStatus`` is an ``Enum`` only when every value of the frame is one of the
  seed's statuses; a frame holding any other value (``"LEGACY"``, ``""``) keeps
  the column as ``String`` so that value loads as it is.
* ``createdAt`` is a UTC ``Datetime`` only when every value parses and writes
  back to exactly the text that was read (``2022-06-28T16:47:00Z``,
  ``...00.120Z``); otherwise (an unparsable value, an offset such as
  ``+00:00``, ``.1Z``) the frame keeps the column as the API's ``String``.
* One bad record blocks only itself. A known field holding a value of another
  JSON type than the seed's (a string where ``billingEmails`` has a list, a number
  or object where text belongs, an entry of ``linkedServices`` that is no object)
  keeps its column's dtype: that row's cell is null, and the value is kept, as
  its JSON text, in a raw column named ``<column>__raw`` (``billingEmails__raw``,
  ``address.town__raw``, ``address__raw`` for a whole address that is no object),
  null on every other row. Raw columns exist only when some value needs one, and
  follow the known columns. ``quality.check`` reports each such value as
  ``wrong_type``; :func:`to_records` puts it back where it was read, so the
  record round-trips exactly, unless the cell has been filled since (the cell
  wins). A frame's raw columns: :func:`raw_columns`.
* An unknown field whose values do not share one JSON shape (a string in one
  record, a number or object in another) is kept as ``String``: strings as they
  are, every other value as its JSON text. Only its JSON type is lost, never its
  value. The same holds for the unknown parts of ``address`` and of the entries
  of ``linkedServices``; the known parts keep their dtypes.
* Unknown fields keep the types JSON gives them: text, ``Int64``, ``Float64``,
  ``Boolean``, lists as ``List`` columns (objects in lists as ``Struct``), and
  nested objects flattened into dotted columns like the address. A column whose
  every value is null is ``String``.

Known limits: a key that itself contains a dot cannot be told from a nested one,
and an unknown field named like a raw column (``telephone__raw``) is taken for one;
an integer beyond 64 bits is read as a float.

Round trip: ``to_records(to_frame(r)) == r`` for API-shaped records, also when
known fields hold values of the wrong JSON type, with nulls and absent keys
treated alike (the API treats them alike): :func:`to_records`
omits every null-valued key (also inside list entries), so an object whose parts
are all null, such as an ``address`` with every part null, comes back absent
exactly like a missing ``address``. Empty strings and empty lists are values and
come back as such. Nested objects are rebuilt from their dotted columns, and keys
follow the frame's column order.

Speed: records are never built as Python rows on the way in. Raw ``GET
/customers`` page bodies go straight to Arrow's multi-threaded JSON reader with a
fixed schema for the known fields (unknown ones are inferred), and its columns
become the frame's. :func:`to_frame` serializes parsed records a page at a time
as the reader asks for more, so serializing and parsing overlap. Only input with
an irregular field (one of the mixed cases above) takes a slower path that parses
the records and reads field by field (a few seconds, not a fraction of one, for
100k records).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import orjson
import polars as pl
import pyarrow as pa

from sequence_nb import fields
from sequence_nb.arrow_reader import Lines, LineTooLong, read_pages
from sequence_nb.errors import SequenceError
from sequence_nb.fields import ApiVersion
from sequence_nb.lenient_reader import read_leniently
from sequence_nb.progress import progress_bar
from sequence_nb.schema import (
    CREATED_AT_DTYPE,
    RAW_SUFFIX,
    TAX_STATUS_DTYPE,
    conform,
    raw_column,
    raw_columns,
    schema,
)

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

    from sequence_nb.client import SequenceClient
    from sequence_nb.listing import OnIncomplete

__all__ = [
    "CREATED_AT_DTYPE",
    "RAW_SUFFIX",
    "TAX_STATUS_DTYPE",
    "RawValueError",
    "fetch_customers",
    "frame_from_pages",
    "prune_nulls",
    "raw_column",
    "raw_columns",
    "record_of",
    "schema",
    "to_frame",
    "to_records",
]

_SEP: Final = fields.PATH_SEPARATOR

#: Records sent to the JSON reader in one synthetic page by :func:`to_frame`.
_PAGE_SIZE: Final = 100


class RawValueError(SequenceError, ValueError):
    """A raw column holds text that is not JSON, so its record cannot be rebuilt."""

    def __init__(self, row: int, column: str, text: str, reason: str) -> None:
        self.row = row
        self.column = column
        shown = text if len(text) <= 60 else text[:57] + "..."
        super().__init__(
            f"row {row}, column {column!r} holds {shown!r}, which is not JSON ({reason}): "
            f"a raw column keeps a value exactly as the API sent it; clear the cell, or "
            f"write the value into {column.removesuffix(RAW_SUFFIX)!r} instead"
        )


# --------------------------------------------------------------------------- in


def to_frame(
    records: Iterable[Mapping[str, Any]], *, api_version: str | ApiVersion | None = None
) -> pl.DataFrame:
    """Build the customer frame from parsed records (dicts as the API returns them).

    ``api_version`` names the version the records come from (its known columns and
    dtypes; None: ``$SEQUENCE_API_VERSION``, else the seed's, see
    :func:`~sequence_nb.fields.api_version`).

    The records are serialized with orjson a page at a time, while Arrow's
    fixed-schema reader (the one :func:`frame_from_pages` uses) parses the pages
    already made, rather than built row by row in Python.
    ``to_records(to_frame(r)) == r`` up to null-valued keys (module docstring).
    """
    version = fields.api_version(api_version)
    rows = list(records)

    def items(number: int) -> list[Mapping[str, Any]]:
        return rows[number * _PAGE_SIZE : (number + 1) * _PAGE_SIZE]

    try:
        count = -(-len(rows) // _PAGE_SIZE)
        lines = Lines.lazy(lambda: _serialized(rows), count, items)
        return _frame(lines, version)
    except LineTooLong:
        # A page of records longer than a block: serialize them all to learn the
        # longest page, then read with blocks that fit it.
        return _frame(Lines.of(list(_serialized(rows)), items), version)


def frame_from_pages(
    pages: Iterable[bytes], *, api_version: str | ApiVersion | None = None
) -> pl.DataFrame:
    """Build the customer frame straight from raw ``GET /customers`` page bodies.

    Each body is the bytes of ``{"items": [...], "pagination": {...}}``, pretty
    printed or not. The items are parsed without a Python object per record, and
    the result equals ``to_frame`` of the same records (``api_version`` as there).
    """
    version = fields.api_version(api_version)
    lines: list[bytes] = []
    for page in pages:
        line = bytes(page).strip()
        if b"\n" in line or b"\r" in line:
            # Raw line breaks can only be whitespace between JSON tokens (inside a
            # string they are escaped), so one body becomes one NDJSON line.
            line = line.replace(b"\r", b" ").replace(b"\n", b" ")
        if line:
            lines.append(line)
    return _frame(Lines.of(lines), version)


def fetch_customers(
    client: SequenceClient,
    *,
    progress: bool | None = None,
    on_incomplete: OnIncomplete = "raise",
    streams: int = 2,
    **filters: str | bool,
) -> pl.DataFrame:
    """Every customer the client lists (``GET /customers``), each once, as a frame.

    ``filters`` are those of ``GET /customers`` (``legalName``, ``email``,
    ``alias``, ``includeArchived``, ``sortBy``, ``sortOrder``). Complete or loud:
    the rows are checked against the server's ``totalResultSize``, and a listing
    still short after a second read raises
    :class:`~sequence_nb.errors.IncompleteFetchError` (``on_incomplete="warn"``
    gives the frame and a warning). A listing longer than two pages is read from
    both ends at once (``streams=1`` reads it in one stream); rows come in the
    order one listing gives, newest first by default. A progress bar of distinct
    customers shows in notebooks and terminals (``progress=False`` hides it,
    ``True`` forces it). The client does the I/O (:meth:`SequenceClient.list_customers`);
    the frame has the columns of the client's API version.
    """
    with progress_bar(None, "Fetching customers", progress) as bar:

        def show(count: int, total: int | None) -> None:
            if total is not None and total != bar.total:
                bar.reset(total=total)
            bar.update(count - bar.n)

        records = client.list_customers(
            on_incomplete=on_incomplete, streams=streams, on_progress=show, **filters
        )
    return to_frame(records, api_version=client.api_version)


def _serialized(records: list[Mapping[str, Any]]) -> Iterator[bytes]:
    """The records as synthetic page lines of :data:`_PAGE_SIZE` records each."""
    head = b'{"' + fields.PAGE_ITEMS.encode() + b'":'
    for start in range(0, len(records), _PAGE_SIZE):
        chunk = records[start : start + _PAGE_SIZE]
        try:
            body = _dumps(chunk)
        except orjson.JSONEncodeError as exc:
            raise _not_json(chunk, start, exc) from None
        yield head + body + b"}"


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_jsonable, option=orjson.OPT_UTC_Z)


def _jsonable(value: object) -> object:
    """orjson fallback: serialize any mapping as an object (orjson names other types)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError


def _not_json(chunk: list[Mapping[str, Any]], start: int, error: Exception) -> TypeError:
    """The error naming the first record of ``chunk`` that is not JSON, and its field."""
    for number, record in enumerate(chunk, start):
        try:
            _dumps(record)
        except orjson.JSONEncodeError as exc:
            where = f"record {number}{_field_not_json(record)}"
            return TypeError(f"{where} cannot be written as JSON: {exc}")
    return TypeError(
        f"records {start} to {start + len(chunk) - 1} cannot be written as JSON: {error}"
    )


def _field_not_json(record: Mapping[str, Any]) -> str:
    """``", field 'name'"`` for the first value of ``record`` orjson refuses, else ``""``.

    A record can be refused for its keys (not text) rather than a value.
    """
    for key, value in record.items() if isinstance(record, Mapping) else ():
        try:
            _dumps(value)
        except orjson.JSONEncodeError:
            return f", field {key!r}"
    return ""


def _frame(lines: Lines, version: ApiVersion) -> pl.DataFrame:
    """Parse page lines (fast path, else the lenient one) and finish the frame."""
    if not lines.count:
        return pl.DataFrame(schema=schema(version))
    try:
        raw = read_pages(lines, version)
    except pa.ArrowException:
        with gc_paused():
            raw = read_leniently(list(lines.make()), version)
    frame = conform(raw, version)
    # The reader's scratch memory is freed into Arrow's pool, which keeps it for
    # reuse; give it back to the system so a big read does not stay resident.
    pa.default_memory_pool().release_unused()
    return frame


# -------------------------------------------------------------------------- out


def to_records(
    df: pl.DataFrame, *, api_version: str | ApiVersion | None = None
) -> list[dict[str, Any]]:
    """Turn the frame back into records shaped as the API returns them.

    The exact inverse of :func:`to_frame` up to null-valued keys: a null value is
    omitted (also inside list entries), dotted columns are rebuilt into nested
    objects (an object with no non-null part is omitted), ``createdAt`` is written
    back as the API's ISO text (``2022-06-28T16:47:00Z``), a value kept in a raw
    column goes back where it was read (when its cell is still null), and keys
    follow the frame's column order. A raw cell that is not JSON raises
    :class:`RawValueError`. A keyed object of ``api_version``'s records
    (2024-07-30's ``customProperties``, which every record holds) comes back as
    ``{}`` where the row has no key of it, so such records round-trip exactly.
    """
    version = fields.api_version(api_version)
    records = _records(df)
    for name in version.keyed_fields:
        if name in version.record_fields:
            for record in records:
                record.setdefault(name, {})
    return records


def record_of(df: pl.DataFrame, row: int) -> dict[str, Any]:
    """Return row ``row`` of the frame as one record (negative counts from the end)."""
    height = df.height
    if not -height <= row < height:
        raise IndexError(f"row {row} is outside a frame of {height} rows")
    return _records(df.slice(row % height, 1))[0]


def prune_nulls(value: Any) -> Any:
    """Drop null-valued keys from a JSON value, recursively.

    An object left with no keys counts as absent inside another object; list
    entries are kept (a null entry stays null, an empty object stays ``{}``).
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            item = prune_nulls(item)
            if isinstance(item, dict) and not item:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [prune_nulls(item) for item in value]
    return value


def _records(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Build the records column by column (comprehensions, not a loop per cell).

    A raw column's values go back in the place of the field they were read from,
    in the rows where that field's own cell is null.
    """
    raws = raw_columns(df)
    with gc_paused():
        fills = {field: _raw_values(df.get_column(name)) for name, field in raws.items()}
        columns: list[tuple[list[str], list[Any]]] = []
        for series in df.get_columns():
            name = series.name
            if name in raws:
                if raws[name] not in df.columns:  # an object such as the whole address
                    columns.append((fields.column_path(raws[name]), fills[raws[name]]))
                continue
            values = _wire_values(series)
            if name in fills:
                values = [
                    v if v is not None else f for v, f in zip(values, fills[name], strict=True)
                ]
            columns.append((fields.column_path(name), values))
        return _objects(columns, df.height)


def _raw_values(series: pl.Series) -> list[Any]:
    """A raw column's JSON texts parsed, nulls pruned as in :func:`to_records`."""
    out: list[Any] = []
    for row, text in enumerate(series.to_list()):
        if text is None:
            out.append(None)
            continue
        try:
            value = prune_nulls(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            raise RawValueError(row, series.name, text, str(exc)) from None
        out.append(None if value == {} else value)
    return out


def _objects(columns: list[tuple[list[str], list[Any]]], height: int) -> list[dict[str, Any]]:
    """One object per row from ``(path, values)`` columns; null values are left out.

    Columns sharing a first path part become one nested object per row, built the
    same way; a row where that object would be empty gets no key for it.
    """
    leaves: dict[str, list[Any]] = {}
    groups: dict[str, list[tuple[list[str], list[Any]]]] = {}
    for path, column in columns:
        head = path[0]
        if len(path) == 1:
            leaves[head] = column
        else:
            groups.setdefault(head, []).append((path[1:], column))
    # Keys in the order first seen, whether as a column or as an object's first part.
    keys = list(dict.fromkeys(path[0] for path, _ in columns))
    if not keys:
        return [{} for _ in range(height)]
    filled: list[list[Any]] = []
    for key in keys:
        if key not in groups:
            filled.append(leaves[key])
            continue
        given = leaves.get(key)
        built = [obj or None for obj in _objects(groups[key], height)]
        if given is not None:  # a whole object kept raw, where its parts are null
            built = [
                obj if value is None else value for value, obj in zip(given, built, strict=True)
            ]
        filled.append(built)
    return [
        {key: value for key, value in zip(keys, row, strict=True) if value is not None}
        for row in zip(*filled, strict=True)
    ]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many small objects (they hold no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _wire_values(series: pl.Series) -> list[Any]:
    """A column's values as JSON values: timestamps as API text, nulls pruned."""
    dtype = series.dtype
    if series.name == fields.CREATED_AT and isinstance(dtype, pl.Datetime):
        zoned = series if dtype.time_zone else series.dt.replace_time_zone("UTC")
        series = zoned.dt.convert_time_zone("UTC").dt.strftime(fields.TIMESTAMP_FORMAT)
    if not _has_struct(dtype):
        return series.to_list()
    # Arrow turns nested values into Python several times faster than polars does.
    values: list[Any] = series.to_arrow().to_pylist()
    if _nulls_in_structs(series):
        values = [None if value is None else prune_nulls(value) for value in values]
        values = [None if value == {} else value for value in values]
    return values


def _nulls_in_structs(series: pl.Series) -> bool:
    """Whether any object inside the column has a null part (to prune, else skip)."""
    dtype = series.dtype
    if isinstance(dtype, pl.List):
        return _nulls_in_structs(series.explode().drop_nulls())
    if isinstance(dtype, pl.Array):
        return _nulls_in_structs(series.arr.explode().drop_nulls())
    if isinstance(dtype, pl.Struct):
        parts = series.drop_nulls().struct.unnest().get_columns()
        return any(part.null_count() > 0 or _nulls_in_structs(part) for part in parts)
    return False


def _has_struct(dtype: PolarsDataType) -> bool:
    if isinstance(dtype, pl.Struct):
        return True
    if isinstance(dtype, (pl.List, pl.Array)):
        return _has_struct(dtype.inner)
    return False
