"""The lenient reader: irregular records read field by field, nothing lost.

The slow path for input Arrow's reader cannot read in one pass
(:mod:`sequence_nb.arrow_reader`): a known field holding a value of the wrong
JSON type, or an unknown field whose values do not share one JSON type. The
records are parsed and each field read on its own, so one bad record blocks only
itself: a misfit value of a known field is null in its column and kept as JSON
text in the field's raw column, and an unknown field of mixed types is read as
text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

import orjson
import polars as pl
import pyarrow as pa

from sequence_nb import fields
from sequence_nb.arrow_reader import read_table
from sequence_nb.column_order import in_first_seen_order, keys_in_first_seen_order
from sequence_nb.fields import SEED, ApiVersion
from sequence_nb.schema import arrow_record_type, child_fields, raw_column

__all__ = ["read_leniently"]

_SEP: Final = fields.PATH_SEPARATOR


def read_leniently(lines: list[bytes], version: ApiVersion = SEED) -> pl.DataFrame:
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
    known = {field.name: field.type for field in child_fields(arrow_record_type(version))}
    columns: list[pl.Series] = []
    for key, arrow_type in known.items():
        columns.extend(_read_known(key, [row.get(key) for row in rows], arrow_type))
    others = [key for key in keys_in_first_seen_order(rows) if key not in known]
    columns.extend(_read_field(key, [row.get(key) for row in rows]) for key in others)
    return pl.DataFrame(columns)


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
            raw[row] = orjson.dumps(values[row]).decode()
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

    Text must be a string, a boolean true or false; a list a list whose entries fit
    or are null; an object alone (the address, whose parts are read one by one) any
    object; an object in a list an object whose known parts fit or are null, its
    other parts free.
    """
    if _is_text(arrow_type):
        return lambda value: isinstance(value, str)
    if pa.types.is_boolean(arrow_type):
        return lambda value: isinstance(value, bool)
    if pa.types.is_list(arrow_type):
        entry = _fitter(arrow_type.value_type, in_list=True)
        return lambda value: isinstance(value, list) and all(v is None or entry(v) for v in value)
    if not in_list:
        return lambda value: isinstance(value, dict)
    parts = {field.name: _fitter(field.type, in_list=True) for field in child_fields(arrow_type)}
    return lambda value: (
        isinstance(value, dict)
        and all(v is None or k not in parts or parts[k](v) for k, v in value.items())
    )


def _read_object(name: str, objects: list[Any], arrow_type: Any) -> list[pl.Series]:
    """The dotted columns of a known object: known parts, then unknown ones by first sight."""
    present: list[dict[str, Any]] = [value or {} for value in objects]
    out: list[pl.Series] = []
    parts = child_fields(arrow_type)
    for part in parts:
        values = [value.get(part.name) for value in present]
        out.extend(_read_known(name + _SEP + part.name, values, part.type))
    names = {part.name for part in parts}
    if set().union(*present) - names:
        for key in keys_in_first_seen_order(present):
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
        parts = {field.name: field.type for field in child_fields(arrow_type)}
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
    column = read_table(lines, declared).column("v")
    ordered = in_first_seen_order(
        column, arrow_type, values.__getitem__, lambda t: _reread(lines, t)
    )
    return cast(pl.Series, pl.from_arrow(ordered)).alias(key)


def _reread(lines: list[bytes], value_type: Any) -> Any:
    """The ``v`` column of one field's lines, read with ``value_type`` declared."""
    return read_table(lines, pa.schema([pa.field("v", value_type)])).column("v")


def _to_text(value: Any) -> str | None:
    """A string as it is, any other JSON value as its JSON text."""
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


def _is_text(arrow_type: Any) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_string_view(arrow_type))
