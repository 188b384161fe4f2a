"""Customer records <-> polars frames: the schema and the column naming.

No I/O of its own: :func:`fetch_customers` reads through a client.

One row per customer and one column per leaf field, named by its JSON path joined
with dots as ``pandas.json_normalize`` names it (``address.postCode``). Known
columns come first in the stable order of :data:`fields.KNOWN_COLUMNS`, then any
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

import functools
import gc
import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Final, cast

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from sequence_nb import fields
from sequence_nb.errors import SequenceError
from sequence_nb.progress import progress_bar

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

#: A flat column: its dotted name, the expression selecting it and its dtype.
_Leaf = tuple[str, pl.Expr, "PolarsDataType"]

#: ``createdAt`` when every value of a frame is a timestamp the API writes.
CREATED_AT_DTYPE: Final = pl.Datetime("us", "UTC")
#: ``taxStatus`` when every value of a frame is one the seed allows.
TAX_STATUS_DTYPE: Final = pl.Enum(fields.TAX_STATUSES)

#: A ``createdAt`` in whole seconds, each part in its range (the date is checked
#: by parsing it): such text reads and writes back unchanged.
_WHOLE_SECONDS: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
)
_WHOLE_SECONDS_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"

_LINKED_SERVICE: Final = pl.Struct({name: pl.String() for name in fields.LINKED_SERVICE_FIELDS})
_NESTED: Final[dict[str, pl.DataType]] = {
    fields.BILLING_EMAILS: pl.List(pl.String()),
    fields.LINKED_SERVICES: pl.List(_LINKED_SERVICE),
}

#: Ends the name of a column keeping, as JSON text, the values of a known field
#: that have the wrong JSON type (``billingEmails__raw``).
RAW_SUFFIX: Final = "__raw"

#: Records sent to the JSON reader in one synthetic page by :func:`to_frame`.
_PAGE_SIZE: Final = 100
#: Bytes of pages read first to learn which unknown fields look like timestamps.
_SAMPLE_BYTES: Final = 1 << 20
#: Bytes Arrow's reader parses as one task: twice its default, which measured a
#: little quicker on two cores. A block must be at least as long as the longest line.
_MIN_BLOCK: Final = 2 << 20


def _raw_places() -> dict[str, int]:
    """Every possible raw column, by the place of what it holds among the known columns.

    A known column's raw column sits at that column's place, and an object's (the
    whole ``address``) just before its first part.
    """
    places: dict[str, int] = {}
    for number, column in enumerate(fields.KNOWN_COLUMNS):
        head, _, rest = column.partition(_SEP)
        if rest:
            places.setdefault(raw_column(head), 2 * number)
        places[raw_column(column)] = 2 * number + 1
    return places


def raw_column(column: str) -> str:
    """The name of the column keeping the values of ``column`` that misfit its type."""
    return column + RAW_SUFFIX


def raw_columns(df: pl.DataFrame) -> dict[str, str]:
    """The frame's raw columns, each mapped to the field (column or object) it holds.

    ``{"billingEmails__raw": "billingEmails", "address__raw": "address"}``.
    """
    return {name: name.removesuffix(RAW_SUFFIX) for name in df.columns if name in _RAW_PLACES}


def _wire_schema() -> dict[str, pl.DataType]:
    """Known columns as the JSON carries them: ``createdAt``/``taxStatus`` as text."""
    return {name: _NESTED.get(name, pl.String()) for name in fields.KNOWN_COLUMNS}


#: Every possible raw column and where it goes (:func:`_raw_places`).
_RAW_PLACES: Final = _raw_places()


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


def schema() -> dict[str, pl.DataType]:
    """Return the dtype of every known column, in column order.

    These are the strict dtypes. A frame whose ``taxStatus`` or ``createdAt``
    holds a value outside them keeps that column as ``String`` (see the module
    docstring), so code that must work on any frame should accept both.
    """
    out = _wire_schema()
    out[fields.CREATED_AT] = CREATED_AT_DTYPE
    out[fields.TAX_STATUS] = TAX_STATUS_DTYPE
    return out


# --------------------------------------------------------------------------- in


def to_frame(records: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Build the customer frame from parsed records (dicts as the API returns them).

    The records are serialized with orjson a page at a time, while Arrow's
    fixed-schema reader (the one :func:`frame_from_pages` uses) parses the pages
    already made, rather than built row by row in Python.
    ``to_records(to_frame(r)) == r`` up to null-valued keys (module docstring).
    """
    rows = list(records)

    def items(number: int) -> list[Mapping[str, Any]]:
        return rows[number * _PAGE_SIZE : (number + 1) * _PAGE_SIZE]

    try:
        count = -(-len(rows) // _PAGE_SIZE)
        lines = _Lines(lambda: _serialized(rows), _MIN_BLOCK - 2, count, items)
        return _frame(lines)
    except _LineTooLong:
        # A page of records longer than a block: serialize them all to learn the
        # longest page, then read with blocks that fit it.
        return _frame(_Lines.of(list(_serialized(rows)), items))


def frame_from_pages(pages: Iterable[bytes]) -> pl.DataFrame:
    """Build the customer frame straight from raw ``GET /customers`` page bodies.

    Each body is the bytes of ``{"items": [...], "pagination": {...}}``, pretty
    printed or not. The items are parsed without a Python object per record, and
    the result equals ``to_frame`` of the same records.
    """
    lines: list[bytes] = []
    for page in pages:
        line = bytes(page).strip()
        if b"\n" in line or b"\r" in line:
            # Raw line breaks can only be whitespace between JSON tokens (inside a
            # string they are escaped), so one body becomes one NDJSON line.
            line = line.replace(b"\r", b" ").replace(b"\n", b" ")
        if line:
            lines.append(line)
    return _frame(_Lines.of(lines))


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
    ``True`` forces it). The client does the I/O (:meth:`SequenceClient.list_customers`).
    """
    with progress_bar(None, "Fetching customers", progress) as bar:

        def show(count: int, total: int | None) -> None:
            if total is not None and total != bar.total:
                bar.reset(total=total)
            bar.update(count - bar.n)

        records = client.list_customers(
            on_incomplete=on_incomplete, streams=streams, on_progress=show, **filters
        )
    return to_frame(records)


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


class _LineTooLong(Exception):
    """A line made lazily turned out longer than the block size chosen for it."""


@dataclass(frozen=True)
class _Lines:
    """NDJSON lines to read, made afresh by ``make`` for every pass over them.

    ``longest`` bounds the length of every line (it sets Arrow's block size, which
    must hold the longest line); a line made longer than that raises
    :class:`_LineTooLong`. ``count`` is how many lines ``make`` gives. ``items``
    gives the parsed items of line ``n`` when there is a quicker way than parsing
    it again.
    """

    make: Callable[[], Iterator[bytes]]
    longest: int
    count: int
    items: Callable[[int], Any] | None = None

    @classmethod
    def of(cls, lines: list[bytes], items: Callable[[int], Any] | None = None) -> _Lines:
        return cls(lambda: iter(lines), max(map(len, lines), default=0), len(lines), items)

    def items_of(self, number: int) -> Any:
        """The items of page line ``number``, parsed (None for a page without any)."""
        if self.items is not None:
            return self.items(number)
        page = orjson.loads(next(islice(self.make(), number, None)))
        return page.get(fields.PAGE_ITEMS) if isinstance(page, dict) else None

    def stream(self) -> _LineStream:
        return _LineStream(self.make(), self.longest)

    def prefix(self, size: int) -> tuple[_Lines, bool]:
        """The first lines holding at least ``size`` bytes, and whether that is all."""
        taken: list[bytes] = []
        total = 0
        for line in islice(self.make(), self.count):
            taken.append(line)
            total += len(line)
            if total >= size:
                break
        return _Lines.of(taken, self.items), len(taken) == self.count


class _LineStream(io.RawIOBase):
    """A readable stream of the lines an iterator makes, each ended by a newline.

    Arrow's reader pulls blocks from it on its I/O thread, so lines made lazily
    (records serialized a page at a time) are made while earlier blocks parse,
    and the whole input is never joined into one buffer.
    """

    def __init__(self, lines: Iterator[bytes], longest: int) -> None:
        super().__init__()
        self._lines = lines
        self._longest = longest
        self._parts: deque[bytes | memoryview] = deque()
        self._buffered = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or self._buffered < size:
            line = next(self._lines, None)
            if line is None:
                break
            if len(line) > self._longest:
                raise _LineTooLong(f"a line of {len(line)} bytes, over {self._longest}")
            self._parts.extend((line, b"\n"))
            self._buffered += len(line) + 1
        return self._take(self._buffered if size < 0 else min(size, self._buffered))

    def _take(self, size: int) -> bytes:
        out: list[bytes | memoryview] = []
        left = size
        while left:
            part = self._parts.popleft()
            if len(part) > left:
                self._parts.appendleft(memoryview(part)[left:])
                part = memoryview(part)[:left]
            out.append(part)
            left -= len(part)
        self._buffered -= size
        return b"".join(out)


def _frame(lines: _Lines) -> pl.DataFrame:
    """Parse page lines (fast path, else the lenient one) and finish the frame."""
    if not lines.count:
        return pl.DataFrame(schema=schema())
    try:
        raw = _read_pages(lines)
    except pa.ArrowException:
        with gc_paused():
            raw = _read_leniently(list(lines.make()))
    frame = _finish(raw)
    # The reader's scratch memory is freed into Arrow's pool, which keeps it for
    # reuse; give it back to the system so a big read does not stay resident.
    pa.default_memory_pool().release_unused()
    return frame


def _read_pages(lines: _Lines) -> pl.DataFrame:
    """Read page lines with Arrow: known fields fixed, unknown ones inferred.

    Arrow infers text that looks like a timestamp as a timestamp, losing the exact
    text. So a prefix of the pages is read first: unknown fields it shows to be
    such text are declared as text for the full read (whose own inference still
    finds every field). Only a timestamp-like field first seen after the prefix
    costs a second read. Unknown fields are then put in first-seen order
    (:func:`_first_seen`).
    """
    known = _arrow_record_type()
    sample, complete = lines.prefix(_SAMPLE_BYTES)
    source = sample if complete else lines
    declared = known
    if not complete:
        declared = _merged(known, _temporal_branches(_page_lists(sample, known).type.value_type))
    pages = _page_lists(source, declared)
    if _has_temporal(pages.type):
        pages = _page_lists(source, _untemporal(pages.type.value_type))
    pages = _in_first_seen_order(
        pages,
        pa.list_(known),
        functools.cache(source.items_of),
        lambda ordered: _page_lists(source, ordered.value_type),
    )
    series = cast(pl.Series, pl.from_arrow(pc.list_flatten(pages)))
    return series.struct.unnest()


#: Finds the JSON value at an entry of an array being put in order (None if absent).
_Locate = Callable[[int], Any]


def _in_first_seen_order(
    values: Any, known: Any, locate: _Locate, read_as: Callable[[Any], Any]
) -> Any:
    """``values`` with unknown struct fields in first-seen order (:func:`_first_seen`).

    The values are cast to the ordered type and checked; should the cast not give
    a valid array, ``read_as(ordered type)`` reads them again with that whole type
    declared, which gives the same values the slow way.
    """
    ordered = _first_seen(values, known, locate)
    if ordered.equals(values.type):
        return values
    # All-null fields become text here as in _finish: Arrow's cast of a struct
    # holding a null-typed child inside a list can build an invalid array.
    ordered = _denulled(ordered)
    try:
        moved = values.cast(ordered)
        moved.validate()
    except pa.ArrowException:
        return read_as(ordered)
    return moved


def _first_seen(values: Any, known: Any, locate: _Locate) -> Any:
    """The type of ``values`` with its unknown struct fields in first-seen order.

    Arrow's threads merge what each block of input found in no fixed order, so the
    order is rebuilt from the data. Fields of ``known`` keep their place, first.
    The others follow by the first entry holding a value for them, and fields
    first holding one in the same entry in the order that entry's JSON object
    (found by ``locate``) holds them; fields with no value anywhere come last, by
    name. Nested objects and the entries of lists are ordered the same way.
    """
    have = values.type
    if _only_known(have, known):
        return have
    if pa.types.is_struct(have):
        parts = [_part(values, number, f, known) for number, f in enumerate(_fields(have))]
        ordered = sorted(parts, key=_ranker(_names(known), locate))
        return pa.struct([_ordered_field(part, known, locate) for part in ordered])
    if pa.types.is_list(have):
        entries = _first_seen(pc.list_flatten(values), _value_type(known), _entry(values, locate))
        return pa.list_(have.value_field.with_type(entries))
    return have


def _part(values: Any, number: int, field: Any, known: Any) -> tuple[Any, Any]:
    """A struct's field and its values (None when nothing in it is unknown)."""
    if _only_known(field.type, _field_type(known, field.name)):
        return field, None
    return field, pc.struct_field(values, [number])


def _ordered_field(part: tuple[Any, Any], known: Any, locate: _Locate) -> Any:
    """The field of a ``(field, values)`` part with its own parts put in order."""
    field, values = part
    if values is None:
        return field
    inner = _first_seen(values, _field_type(known, field.name), _member(locate, field.name))
    return field.with_type(inner)


def _only_known(have: Any, known: Any) -> bool:
    """Whether a type holds no field beyond ``known`` (nothing to put in order)."""
    if known is None:
        return False
    if pa.types.is_struct(have):
        return all(_only_known(f.type, _field_type(known, f.name)) for f in _fields(have))
    if pa.types.is_list(have):
        return _only_known(have.value_type, _value_type(known))
    return True


def _ranker(known: list[str], locate: _Locate) -> Callable[[tuple[Any, Any]], tuple[Any, ...]]:
    """Sort key of a ``(field, values)`` part of a struct (see :func:`_first_seen`)."""
    place = {name: number for number, name in enumerate(known)}

    def rank(part: tuple[Any, Any]) -> tuple[Any, ...]:
        field, values = part
        if field.name in place:
            return (0, place[field.name])
        first = _first_value(values)
        if first is None:
            return (2, field.name)
        found = locate(first)
        keys = list(found) if isinstance(found, Mapping) else []
        place_in_entry = keys.index(field.name) if field.name in keys else len(keys)
        return (1, first, place_in_entry, field.name)

    return rank


def _member(locate: _Locate, name: str) -> _Locate:
    """Locate the values of field ``name`` of the objects ``locate`` finds."""

    def member(index: int) -> Any:
        found = locate(index)
        return found.get(name) if isinstance(found, Mapping) else None

    return member


def _entry(lists: Any, locate: _Locate) -> _Locate:
    """Locate the entries of the lists ``locate`` finds, by their flattened index."""
    parents: list[Any] = []

    def entry(index: int) -> Any:
        if not parents:
            parents.append(pc.list_parent_indices(lists))
        row = parents[0][index].as_py()
        found = locate(row)
        place = index - pc.index(parents[0], row).as_py()
        if isinstance(found, (list, tuple)) and place < len(found):
            return found[place]
        return None

    return entry


def _first_value(values: Any) -> int | None:
    """Index of the first non-null entry, or None when every entry is null."""
    found: int = pc.index(pc.is_valid(values), True).as_py()
    return None if found < 0 else found


def _names(arrow_type: Any) -> list[str]:
    """The field names of a struct type (none for anything else or None)."""
    return [f.name for f in _fields(arrow_type)] if _is_struct(arrow_type) else []


def _field_type(arrow_type: Any, name: str) -> Any:
    """The type of field ``name`` of a struct type, or None."""
    if _is_struct(arrow_type) and arrow_type.get_field_index(name) >= 0:
        return arrow_type.field(name).type
    return None


def _value_type(arrow_type: Any) -> Any:
    """The entry type of a list type, or None."""
    if arrow_type is not None and pa.types.is_list(arrow_type):
        return arrow_type.value_type
    return None


def _is_struct(arrow_type: Any) -> bool:
    return arrow_type is not None and bool(pa.types.is_struct(arrow_type))


def _page_lists(lines: _Lines, item_type: Any) -> Any:
    """Every page's list of items (one Arrow list a line), ``item_type`` declared."""
    page_type = pa.schema([pa.field(fields.PAGE_ITEMS, pa.list_(item_type))])
    return _read_ndjson(lines, page_type).column(fields.PAGE_ITEMS)


def _read_ndjson(lines: _Lines, explicit: Any) -> Any:
    """One pass of Arrow's JSON reader: ``explicit`` fields fixed, others inferred."""
    read = pa_json.ReadOptions(block_size=max(_MIN_BLOCK, lines.longest + 2))
    options = pa_json.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
    return pa_json.read_json(lines.stream(), read_options=read, parse_options=options)


def _read_table(lines: list[bytes], explicit: Any) -> Any:
    """Like :func:`_read_ndjson`, read again with text declared if Arrow made timestamps."""
    source = _Lines.of(lines)
    table = _read_ndjson(source, explicit)
    if any(_has_temporal(field.type) for field in table.schema):
        untemporal = [field.with_type(_untemporal(field.type)) for field in table.schema]
        table = _read_ndjson(source, pa.schema(untemporal))
    return table


def _arrow_record_type() -> Any:
    """The known fields of one record as an Arrow struct (address parts nested)."""
    tree: dict[str, Any] = {}
    for name, dtype in _wire_schema().items():
        head, _, rest = name.partition(_SEP)
        if rest:
            tree.setdefault(head, {})[rest] = dtype
        else:
            tree[head] = dtype

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            return pa.struct([pa.field(key, convert(value)) for key, value in node.items()])
        return _arrow_type(node)

    return convert(tree)


def _arrow_type(dtype: PolarsDataType) -> Any:
    """The Arrow type of a wire dtype (text, lists and structs only)."""
    if isinstance(dtype, pl.List):
        return pa.list_(_arrow_type(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pa.struct([pa.field(f.name, _arrow_type(f.dtype)) for f in dtype.fields])
    # Text as views: polars keeps text as views, so they become its columns uncopied.
    return pa.string_view()


def _is_text(arrow_type: Any) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_string_view(arrow_type))


def _has_temporal(arrow_type: Any) -> bool:
    if pa.types.is_temporal(arrow_type):
        return True
    return any(_has_temporal(field.type) for field in _fields(arrow_type))


def _untemporal(arrow_type: Any) -> Any:
    """The same Arrow type with every date/time type replaced by text."""
    if pa.types.is_temporal(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(_untemporal(f.type)) for f in _fields(arrow_type)])
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(_untemporal(arrow_type.value_type)))
    return arrow_type


def _fields(arrow_type: Any) -> list[Any]:
    return [arrow_type.field(i) for i in range(arrow_type.num_fields)]


def _temporal_branches(arrow_type: Any) -> Any:
    """The part of a type that leads to a timestamp, with text in its place (or None)."""
    if pa.types.is_temporal(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        kept = [(f.name, _temporal_branches(f.type)) for f in _fields(arrow_type)]
        found = [pa.field(name, branch) for name, branch in kept if branch is not None]
        return pa.struct(found) if found else None
    if pa.types.is_list(arrow_type):
        branch = _temporal_branches(arrow_type.value_type)
        return None if branch is None else pa.list_(branch)
    return None


def _merged(base: Any, extra: Any) -> Any:
    """``base`` with the fields of ``extra`` merged in (``extra`` wins on leaves)."""
    if extra is None:
        return base
    if pa.types.is_struct(base) and pa.types.is_struct(extra):
        more = {f.name: f.type for f in _fields(extra)}
        out = [pa.field(f.name, _merged(f.type, more.pop(f.name, None))) for f in _fields(base)]
        return pa.struct(out + [pa.field(name, t) for name, t in more.items()])
    if pa.types.is_list(base) and pa.types.is_list(extra):
        return pa.list_(_merged(base.value_type, extra.value_type))
    return extra


def _denulled(arrow_type: Any) -> Any:
    """The same Arrow type with every null type (a field never seen set) as text."""
    if pa.types.is_null(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(_denulled(f.type)) for f in _fields(arrow_type)])
    if pa.types.is_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(_denulled(arrow_type.value_type)))
    return arrow_type


def _read_leniently(lines: list[bytes]) -> pl.DataFrame:
    """Slow path for irregular data: parse the records, then read field by field.

    Known fields are read with their fixed types (:func:`_read_known`): a value
    of the wrong JSON type leaves its cell null and is kept as its JSON text in
    the field's raw column, so the other records keep the column's dtype. Each
    unknown field is read on its own; one Arrow cannot read as one type becomes
    text (strings as they are, other values as JSON).
    """
    items: list[Any] = []
    for number, line in enumerate(lines):
        try:
            page = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"page {number} is not valid JSON: {exc}") from None
        found = page.get(fields.PAGE_ITEMS) if isinstance(page, dict) else page
        if found is None:
            continue
        if not isinstance(found, list):
            raise ValueError(f"page {number} holds no list of customers under 'items'")
        items.extend(found)
    for place, item in enumerate(items):
        if item is not None and not isinstance(item, dict):
            raise ValueError(f"customer {place} is a {type(item).__name__}, not an object")
    rows: list[dict[str, Any]] = [item or {} for item in items]
    known = {field.name: field.type for field in _fields(_arrow_record_type())}
    columns: list[pl.Series] = []
    for key, arrow_type in known.items():
        columns.extend(_read_known(key, [row.get(key) for row in rows], arrow_type))
    others = [key for key in _keys_in_first_seen_order(rows) if key not in known]
    columns.extend(_read_field(key, [row.get(key) for row in rows]) for key in others)
    return pl.DataFrame(columns)


def _keys_in_first_seen_order(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows in the order :func:`_first_seen` gives the fast path.

    By the first row holding a value for the key, keys of one row in that row's
    order; keys with no value in any row last, by name.
    """
    first: dict[str, int] = {}
    keys: set[str] = set()
    for number, row in enumerate(rows):
        keys.update(row)
        for key, value in row.items():
            if value is not None:
                first.setdefault(key, number)

    def rank(key: str) -> tuple[Any, ...]:
        if key not in first:
            return (2, key)
        return (1, first[key], list(rows[first[key]]).index(key))

    return sorted(keys, key=rank)


def _read_known(name: str, values: list[Any], arrow_type: Any) -> list[pl.Series]:
    """A known field's columns: its own, and its raw column when a value misfits.

    A value that does not fit ``arrow_type`` (:func:`_fitter`) is null in the
    field's column and its JSON text is in ``<name>__raw``. An object (the address)
    gives a column per part, read the same way, so one bad part keeps the others;
    its unknown parts are read like unknown fields.
    """
    fits = _fitter(arrow_type)
    misfits = [row for row, value in enumerate(values) if value is not None and not fits(value)]
    kept = values
    if misfits:
        kept = list(values)
        raw: list[str | None] = [None] * len(values)
        for row in misfits:
            raw[row] = _dumps(values[row]).decode()
            kept[row] = None
    if _is_text(arrow_type):
        out = [pl.Series(name, kept, dtype=pl.String())]
    elif pa.types.is_struct(arrow_type):
        out = _read_object(name, kept, arrow_type)
    else:
        out = [_read_declared(name, kept, arrow_type)]
    if misfits:
        out.append(pl.Series(raw_column(name), raw, dtype=pl.String()))
    return out


def _fitter(arrow_type: Any, *, in_list: bool = False) -> Callable[[Any], bool]:
    """Whether a (non-null) JSON value has the shape of a known type.

    Text must be a string; a list a list whose entries fit or are null; an object
    alone (the address, whose parts are read one by one) any object; an object in
    a list an object whose known parts fit or are null, its other parts free.
    """
    if _is_text(arrow_type):
        return lambda value: isinstance(value, str)
    if pa.types.is_list(arrow_type):
        entry = _fitter(arrow_type.value_type, in_list=True)
        return lambda value: isinstance(value, list) and all(v is None or entry(v) for v in value)
    if not in_list:
        return lambda value: isinstance(value, dict)
    parts = {field.name: _fitter(field.type, in_list=True) for field in _fields(arrow_type)}
    return lambda value: (
        isinstance(value, dict)
        and all(v is None or k not in parts or parts[k](v) for k, v in value.items())
    )


def _read_object(name: str, objects: list[Any], arrow_type: Any) -> list[pl.Series]:
    """The dotted columns of a known object: known parts, then unknown ones by first sight."""
    present: list[dict[str, Any]] = [value or {} for value in objects]
    out: list[pl.Series] = []
    parts = _fields(arrow_type)
    for part in parts:
        values = [value.get(part.name) for value in present]
        out.extend(_read_known(name + _SEP + part.name, values, part.type))
    names = {part.name for part in parts}
    if set().union(*present) - names:
        for key in _keys_in_first_seen_order(present):
            if key not in names:
                out.append(_read_field(name + _SEP + key, [value.get(key) for value in present]))
    return out


def _read_declared(name: str, values: list[Any], arrow_type: Any) -> pl.Series:
    """A known list field whose values all fit its type.

    Should unknown parts of its entries disagree on their JSON type, every unknown
    part is read as text instead (the rule for unknown fields of mixed types).
    """
    try:
        return _read_values(name, values, arrow_type)
    except pa.ArrowException:
        texted = [_unknown_parts_as_text(value, arrow_type) for value in values]
        return _read_values(name, texted, arrow_type)


def _unknown_parts_as_text(value: Any, arrow_type: Any) -> Any:
    """``value`` with each part its type does not name written as text."""
    if isinstance(value, list) and pa.types.is_list(arrow_type):
        return [_unknown_parts_as_text(v, arrow_type.value_type) for v in value]
    if isinstance(value, dict) and pa.types.is_struct(arrow_type):
        parts = {field.name: field.type for field in _fields(arrow_type)}
        return {
            k: _unknown_parts_as_text(v, parts[k]) if k in parts else _to_text(v)
            for k, v in value.items()
        }
    return value


def _read_field(key: str, values: list[Any]) -> pl.Series:
    """Read one unknown field's values as a column (text if they share no one type)."""
    try:
        return _read_values(key, values, None)
    except pa.ArrowException:
        return pl.Series(key, [_to_text(value) for value in values], dtype=pl.String())


def _read_values(key: str, values: list[Any], arrow_type: Any) -> pl.Series:
    """One field's values read by Arrow (``arrow_type`` declared, or inferred when None)."""
    lines = [orjson.dumps({"v": value}) for value in values]
    declared = None if arrow_type is None else pa.schema([pa.field("v", arrow_type)])
    column = _read_table(lines, declared).column("v")
    ordered = _in_first_seen_order(
        column, arrow_type, values.__getitem__, lambda t: _reread(lines, t)
    )
    return cast(pl.Series, pl.from_arrow(ordered)).alias(key)


def _reread(lines: list[bytes], value_type: Any) -> Any:
    """The ``v`` column of one field's lines, read with ``value_type`` declared."""
    return _read_table(lines, pa.schema([pa.field("v", value_type)])).column("v")


def _to_text(value: Any) -> str | None:
    """A string as it is, any other JSON value as its JSON text."""
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


def _finish(read: pl.DataFrame) -> pl.DataFrame:
    """Flatten objects into dotted columns, settle dtypes and order the columns.

    Known columns first, then their raw columns in the same order, then the rest.
    """
    leaves: list[_Leaf] = []
    for name, dtype in read.schema.items():
        leaves.extend(_leaves(name, pl.col(name), dtype))
    wire = _wire_schema()
    found = {name: (expr, dtype) for name, expr, dtype in leaves}
    exprs: list[pl.Expr] = []
    for name, want in wire.items():
        if name in found:
            expr, have = found[name]
            exprs.append(_settled(expr, have, want).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=want).alias(name))
    raws = sorted((name for name in found if name in _RAW_PLACES), key=_RAW_PLACES.__getitem__)
    exprs.extend(pl.col(name) for name in raws)
    exprs.extend(
        _settled(expr, dtype, None).alias(name)
        for name, expr, dtype in leaves
        if name not in wire and name not in _RAW_PLACES
    )
    frame = read.select(exprs)
    return frame.with_columns(_strict_columns(frame))


def _leaves(name: str, expr: pl.Expr, dtype: PolarsDataType) -> Iterator[_Leaf]:
    """A column per leaf: objects (structs not inside a list) flattened with dots."""
    if isinstance(dtype, pl.Struct):
        for field in dtype.fields:
            yield from _leaves(name + _SEP + field.name, expr.struct.field(field.name), field.dtype)
    else:
        yield name, expr, dtype


def _settled(expr: pl.Expr, have: PolarsDataType, want: PolarsDataType | None) -> pl.Expr:
    """Cast a column whose values were all null (or empty) to its proper dtype."""
    target = _settle(have, want)
    return expr if target == have else expr.cast(target)


def _settle(have: PolarsDataType, want: PolarsDataType | None) -> PolarsDataType:
    """``have`` with each ``Null`` part replaced by ``want``'s part, else ``String``."""
    if isinstance(have, pl.Null):
        return want if want is not None else pl.String()
    if isinstance(have, pl.List):
        return pl.List(_settle(have.inner, want.inner if isinstance(want, pl.List) else None))
    if isinstance(have, pl.Struct):
        wanted = {f.name: f.dtype for f in want.fields} if isinstance(want, pl.Struct) else {}
        return pl.Struct(
            [pl.Field(f.name, _settle(f.dtype, wanted.get(f.name))) for f in have.fields]
        )
    return have


def _strict_columns(frame: pl.DataFrame) -> list[pl.Series]:
    """``createdAt`` and ``taxStatus`` in their strict dtypes where nothing is lost."""
    out: list[pl.Series] = []
    created = frame.get_column(fields.CREATED_AT)
    if created.dtype == pl.String and (parsed := _exact_timestamps(created)) is not None:
        out.append(parsed)
    status = frame.get_column(fields.TAX_STATUS)
    if status.dtype == pl.String and (status.is_null() | status.is_in(fields.TAX_STATUSES)).all():
        out.append(status.cast(TAX_STATUS_DTYPE))
    return out


def _exact_timestamps(created: pl.Series) -> pl.Series | None:
    """``createdAt`` parsed, when every value writes back to exactly its text."""
    parsed = _timestamps_in_whole_seconds(created)
    if parsed is not None:
        return parsed
    parsed = created.str.strptime(CREATED_AT_DTYPE, fields.TIMESTAMP_FORMAT, strict=False)
    written = parsed.dt.strftime(fields.TIMESTAMP_FORMAT)
    exact = (created.is_null() | (written == created).fill_null(False)).all()
    return parsed if exact else None


def _timestamps_in_whole_seconds(created: pl.Series) -> pl.Series | None:
    """``createdAt`` parsed, when every value is a real moment as ``...T16:47:00Z``.

    The API's usual form, which writes back to the same text by construction; a
    quicker fixed-format parse than the general one (None: use the general one).
    """
    if not created.str.contains(_WHOLE_SECONDS).fill_null(True).all():
        return None
    parsed = created.str.strptime(CREATED_AT_DTYPE, _WHOLE_SECONDS_FORMAT, strict=False)
    return parsed if parsed.null_count() == created.null_count() else None


# -------------------------------------------------------------------------- out


def to_records(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Turn the frame back into records shaped as the API returns them.

    The exact inverse of :func:`to_frame` up to null-valued keys: a null value is
    omitted (also inside list entries), dotted columns are rebuilt into nested
    objects (an object with no non-null part is omitted), ``createdAt`` is written
    back as the API's ISO text (``2022-06-28T16:47:00Z``), a value kept in a raw
    column goes back where it was read (when its cell is still null), and keys
    follow the frame's column order. A raw cell that is not JSON raises
    :class:`RawValueError`.
    """
    return _records(df)


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
                    columns.append((raws[name].split(_SEP), fills[raws[name]]))
                continue
            values = _wire_values(series)
            if name in fills:
                values = [
                    v if v is not None else f for v, f in zip(values, fills[name], strict=True)
                ]
            columns.append((name.split(_SEP), values))
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
