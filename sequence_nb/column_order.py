"""The rule that orders the fields the toolkit does not know.

Known fields keep their place, first. The others follow by the first record (or
list entry) holding a value for them, and fields first holding one in the same
record in the order that record's JSON object holds them; fields with no value
anywhere come last, by name. Nested objects and the entries of lists are ordered
the same way, so the new parts of an object keep to their object.

Arrow's reader merges what each of its threads found in no fixed order, so
:func:`in_first_seen_order` rebuilds the order from the data;
:func:`keys_in_first_seen_order` gives the same order for parsed records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sequence_nb.schema import child_fields

__all__ = ["Locate", "in_first_seen_order", "keys_in_first_seen_order"]

#: Finds the JSON value at an entry of an array being put in order (None if absent).
Locate = Callable[[int], Any]


def in_first_seen_order(
    values: Any, known: Any, locate: Locate, read_as: Callable[[Any], Any]
) -> Any:
    """``values`` with unknown struct fields in first-seen order (:func:`_first_seen`).

    The values are cast to the ordered type and checked; should the cast not give
    a valid array, ``read_as(ordered type)`` reads them again with that whole type
    declared, which gives the same values the slow way.
    """
    ordered = _first_seen(values, known, locate)
    if ordered.equals(values.type):
        return values
    # All-null fields become text here as in schema.conform: Arrow's cast of a struct
    # holding a null-typed child inside a list can build an invalid array.
    ordered = _denulled(ordered)
    try:
        moved = values.cast(ordered)
        moved.validate()
    except pa.ArrowException:
        return read_as(ordered)
    return moved


def _first_seen(values: Any, known: Any, locate: Locate) -> Any:
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
        parts = [_part(values, number, f, known) for number, f in enumerate(child_fields(have))]
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


def _ordered_field(part: tuple[Any, Any], known: Any, locate: Locate) -> Any:
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
        return all(_only_known(f.type, _field_type(known, f.name)) for f in child_fields(have))
    if pa.types.is_list(have):
        return _only_known(have.value_type, _value_type(known))
    return True


def _ranker(known: list[str], locate: Locate) -> Callable[[tuple[Any, Any]], tuple[Any, ...]]:
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


def _member(locate: Locate, name: str) -> Locate:
    """Locate the values of field ``name`` of the objects ``locate`` finds."""

    def member(index: int) -> Any:
        found = locate(index)
        return found.get(name) if isinstance(found, Mapping) else None

    return member


def _entry(lists: Any, locate: Locate) -> Locate:
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
    return [f.name for f in child_fields(arrow_type)] if _is_struct(arrow_type) else []


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


def _denulled(arrow_type: Any) -> Any:
    """The same Arrow type with every null type (a field never seen set) as text."""
    if pa.types.is_null(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(_denulled(f.type)) for f in child_fields(arrow_type)])
    if pa.types.is_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(_denulled(arrow_type.value_type)))
    return arrow_type


def keys_in_first_seen_order(rows: list[dict[str, Any]]) -> list[str]:
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
