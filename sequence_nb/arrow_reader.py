"""The streaming Arrow reader: NDJSON page lines into one table of records.

Page lines (one ``{"items": [...]}`` body a line) go to Arrow's multi-threaded
JSON reader through a stream that makes them as the reader asks for blocks, so
lines made lazily (records serialized a page at a time) are made while earlier
blocks parse and the input is never joined into one buffer. Known fields are
read with their fixed types (:func:`~sequence_nb.schema.arrow_record_type`),
unknown ones inferred; text Arrow would take for a timestamp stays text, and
unknown fields come in first-seen order (:mod:`sequence_nb.column_order`).
Input Arrow cannot read with one type a field raises ``pyarrow.ArrowException``
(the caller then reads it leniently).
"""

from __future__ import annotations

import functools
import io
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, cast

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from sequence_nb import fields
from sequence_nb.column_order import in_first_seen_order
from sequence_nb.fields import SEED, ApiVersion
from sequence_nb.schema import arrow_record_type, child_fields

__all__ = [
    "MIN_BLOCK",
    "SAMPLE_BYTES",
    "LineTooLong",
    "Lines",
    "read_pages",
    "read_table",
]

#: Bytes of pages read first to learn which unknown fields look like timestamps.
SAMPLE_BYTES: Final = 1 << 20
#: Bytes Arrow's reader parses as one task: twice its default, which measured a
#: little quicker on two cores. A block must be at least as long as the longest line.
MIN_BLOCK: Final = 2 << 20


class LineTooLong(Exception):
    """A line made lazily turned out longer than the block size chosen for it."""


@dataclass(frozen=True)
class Lines:
    """NDJSON lines to read, made afresh by ``make`` for every pass over them.

    ``longest`` bounds the length of every line (it sets Arrow's block size, which
    must hold the longest line); a line made longer than that raises
    :class:`LineTooLong`. ``count`` is how many lines ``make`` gives. ``items``
    gives the parsed items of line ``n`` when there is a quicker way than parsing
    it again.
    """

    make: Callable[[], Iterator[bytes]]
    longest: int
    count: int
    items: Callable[[int], Any] | None = None

    @classmethod
    def of(cls, lines: list[bytes], items: Callable[[int], Any] | None = None) -> Lines:
        return cls(lambda: iter(lines), max(map(len, lines), default=0), len(lines), items)

    @classmethod
    def lazy(
        cls,
        make: Callable[[], Iterator[bytes]],
        count: int,
        items: Callable[[int], Any] | None = None,
    ) -> Lines:
        """Lines made as they are read, each to fit one block of :data:`MIN_BLOCK`.

        Their length is not known ahead, so a longer line raises
        :class:`LineTooLong` while it is read (then make them all with :meth:`of`).
        """
        return cls(make, MIN_BLOCK - 2, count, items)

    def items_of(self, number: int) -> Any:
        """The items of page line ``number``, parsed (None for a page without any)."""
        if self.items is not None:
            return self.items(number)
        page = orjson.loads(next(islice(self.make(), number, None)))
        return page.get(fields.PAGE_ITEMS) if isinstance(page, dict) else None

    def stream(self) -> _LineStream:
        return _LineStream(self.make(), self.longest)

    def prefix(self, size: int) -> tuple[Lines, bool]:
        """The first lines holding at least ``size`` bytes, and whether that is all."""
        taken: list[bytes] = []
        total = 0
        for line in islice(self.make(), self.count):
            taken.append(line)
            total += len(line)
            if total >= size:
                break
        return Lines.of(taken, self.items), len(taken) == self.count


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
                raise LineTooLong(f"a line of {len(line)} bytes, over {self._longest}")
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


def read_pages(lines: Lines, version: ApiVersion = SEED) -> pl.DataFrame:
    """Read page lines with Arrow: known fields fixed, unknown ones inferred.

    Arrow infers text that looks like a timestamp as a timestamp, losing the exact
    text. So a prefix of the pages is read first: unknown fields it shows to be
    such text are declared as text for the full read (whose own inference still
    finds every field). Only a timestamp-like field first seen after the prefix
    costs a second read. Unknown fields are then put in first-seen order
    (:func:`~sequence_nb.column_order.in_first_seen_order`).
    """
    known = arrow_record_type(version)
    sample, complete = lines.prefix(SAMPLE_BYTES)
    source = sample if complete else lines
    declared = known
    if not complete:
        declared = _merged(known, _temporal_branches(_page_lists(sample, known).type.value_type))
    pages = _page_lists(source, declared)
    if _has_temporal(pages.type):
        pages = _page_lists(source, _untemporal(pages.type.value_type))
    pages = in_first_seen_order(
        pages,
        pa.list_(known),
        functools.cache(source.items_of),
        lambda ordered: _page_lists(source, ordered.value_type),
    )
    series = cast(pl.Series, pl.from_arrow(pc.list_flatten(pages)))
    return series.struct.unnest()


def _page_lists(lines: Lines, item_type: Any) -> Any:
    """Every page's list of items (one Arrow list a line), ``item_type`` declared."""
    page_type = pa.schema([pa.field(fields.PAGE_ITEMS, pa.list_(item_type))])
    return _read_ndjson(lines, page_type).column(fields.PAGE_ITEMS)


def _read_ndjson(lines: Lines, explicit: Any) -> Any:
    """One pass of Arrow's JSON reader: ``explicit`` fields fixed, others inferred."""
    read = pa_json.ReadOptions(block_size=max(MIN_BLOCK, lines.longest + 2))
    options = pa_json.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
    return pa_json.read_json(lines.stream(), read_options=read, parse_options=options)


def read_table(lines: list[bytes], explicit: Any) -> Any:
    """Like :func:`_read_ndjson`, read again with text declared if Arrow made timestamps."""
    source = Lines.of(lines)
    table = _read_ndjson(source, explicit)
    if any(_has_temporal(field.type) for field in table.schema):
        untemporal = [field.with_type(_untemporal(field.type)) for field in table.schema]
        table = _read_ndjson(source, pa.schema(untemporal))
    return table


def _has_temporal(arrow_type: Any) -> bool:
    if pa.types.is_temporal(arrow_type):
        return True
    return any(_has_temporal(field.type) for field in child_fields(arrow_type))


def _untemporal(arrow_type: Any) -> Any:
    """The same Arrow type with every date/time type replaced by text."""
    if pa.types.is_temporal(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(_untemporal(f.type)) for f in child_fields(arrow_type)])
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(_untemporal(arrow_type.value_type)))
    return arrow_type


def _temporal_branches(arrow_type: Any) -> Any:
    """The part of a type that leads to a timestamp, with text in its place (or None)."""
    if pa.types.is_temporal(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        kept = [(f.name, _temporal_branches(f.type)) for f in child_fields(arrow_type)]
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
        more = {f.name: f.type for f in child_fields(extra)}
        out = [
            pa.field(f.name, _merged(f.type, more.pop(f.name, None))) for f in child_fields(base)
        ]
        return pa.struct(out + [pa.field(name, t) for name, t in more.items()])
    if pa.types.is_list(base) and pa.types.is_list(extra):
        return pa.list_(_merged(base.value_type, extra.value_type))
    return extra
