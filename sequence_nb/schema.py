"""The customer frame's schema: its known columns, their dtypes and their names.

The fixed part of every customer frame (:mod:`sequence_nb.frames` describes the
behaviour): the known columns of an API version in the order of its
:attr:`~sequence_nb.fields.ApiVersion.known_columns`; their dtypes as the JSON
carries them and as the frame holds them where nothing is lost (:func:`schema`);
the same fields as one Arrow record type for the readers (:func:`arrow_record_type`);
the naming of raw columns (``<column>__raw``, which keep values of the wrong JSON
type); and :func:`conform`, which gives a table the readers made this shape: objects
flattened into dotted columns, dtypes settled, known columns first, then raw
columns, then the rest in the order read.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import polars as pl
import pyarrow as pa

from sequence_nb import fields
from sequence_nb.fields import SEED, ApiVersion

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

__all__ = [
    "CREATED_AT_DTYPE",
    "RAW_SUFFIX",
    "TAX_STATUS_DTYPE",
    "WHOLE_SECONDS",
    "arrow_record_type",
    "child_fields",
    "conform",
    "raw_column",
    "raw_columns",
    "schema",
]

_SEP: Final = fields.PATH_SEPARATOR

#: A flat column: its dotted name, the expression selecting it and its dtype.
_Leaf = tuple[str, pl.Expr, "PolarsDataType"]

#: ``createdAt`` when every value of a frame is a timestamp the API writes.
CREATED_AT_DTYPE: Final = pl.Datetime("us", "UTC")
#: ``taxStatus`` when every value of a frame is one the API allows.
TAX_STATUS_DTYPE: Final = pl.Enum(fields.TAX_STATUSES)

#: A ``createdAt`` in whole seconds, each part in its range (the date is checked
#: by parsing it): such text reads and writes back unchanged.
WHOLE_SECONDS: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
)
_WHOLE_SECONDS_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


#: Ends the name of a column keeping, as JSON text, the values of a known field
#: that have the wrong JSON type (``billingEmails__raw``).
RAW_SUFFIX: Final = "__raw"


@cache
def _raw_places(version: ApiVersion) -> dict[str, int]:
    """Every possible raw column, by the place of what it holds among the known columns.

    A known column's raw column sits at that column's place, and an object's (the
    whole ``address``) just before its first part.
    """
    places: dict[str, int] = {}
    for number, column in enumerate(version.known_columns):
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
    return {name: name.removesuffix(RAW_SUFFIX) for name in df.columns if name in _ANY_RAW}


#: Parts of list entries that are not text (2024-07-30's ``integrationIds`` and
#: ``organizations``, as the published document types them).
_NAMED: Final = pl.Struct({"id": pl.String(), "name": pl.String()})
_PART_DTYPES: Final[dict[str, pl.DataType]] = {
    "isPending": pl.Boolean(),
    "owner": _NAMED,
    "members": pl.List(_NAMED),
}


def _list_dtype(entry_fields: tuple[str, ...]) -> pl.DataType:
    """A list field's dtype: text entries, or objects of the parts named (text unless
    :data:`_PART_DTYPES` says otherwise)."""
    if not entry_fields:
        return pl.List(pl.String())
    return pl.List(pl.Struct({name: _PART_DTYPES.get(name, pl.String()) for name in entry_fields}))


@cache
def _wire_schema(version: ApiVersion) -> dict[str, pl.DataType]:
    """Known columns as the JSON carries them (timestamps and enums as text)."""
    return {
        name: _list_dtype(version.list_fields[name]) if name in version.list_fields else pl.String()
        for name in version.known_columns
    }


#: Every raw column any version may hold (raw columns are told by name alone).
_ANY_RAW: Final = frozenset(
    name for version in fields.API_VERSIONS.values() for name in _raw_places(version)
)


def schema(version: ApiVersion = SEED) -> dict[str, pl.DataType]:
    """Return the dtype of every known column of ``version``'s frames, in column order.

    These are the strict dtypes. A frame whose ``taxStatus`` (another enum, such as
    ``status``) or ``createdAt`` holds a value outside them keeps that column as
    ``String`` (see :mod:`sequence_nb.frames`), so code that must work on any frame
    should accept both. A known field without a fixed type (:func:`_wire_schema`)
    is ``String`` here, as a column whose every value is null is.
    """
    wire = _wire_schema(version)
    out = {name: wire.get(name, pl.String()) for name in version.known_columns}
    out[fields.CREATED_AT] = CREATED_AT_DTYPE
    for column, values in version.enums.items():
        out[column] = pl.Enum(values)
    return out


@cache
def arrow_record_type(version: ApiVersion = SEED) -> Any:
    """The known fields of one record as an Arrow struct (address parts nested)."""
    tree: dict[str, Any] = {}
    for name, dtype in _wire_schema(version).items():
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
    """The Arrow type of a wire dtype (text, booleans, lists and structs only)."""
    if isinstance(dtype, pl.Boolean):
        return pa.bool_()
    if isinstance(dtype, pl.List):
        return pa.list_(_arrow_type(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pa.struct([pa.field(f.name, _arrow_type(f.dtype)) for f in dtype.fields])
    # Text as views: polars keeps text as views, so they become its columns uncopied.
    return pa.string_view()


def child_fields(arrow_type: Any) -> list[Any]:
    """The child fields of an Arrow type: a struct's fields, a list's entry, else none."""
    return [arrow_type.field(i) for i in range(arrow_type.num_fields)]


def conform(read: pl.DataFrame, version: ApiVersion = SEED) -> pl.DataFrame:
    """A table the readers made, in the frame's shape: objects flattened into dotted
    columns, dtypes settled and the columns ordered.

    Known columns first, then their raw columns in the same order, then the rest.
    """
    leaves: list[_Leaf] = []
    for name, dtype in read.schema.items():
        leaves.extend(_leaves(name, pl.col(name), dtype))
    wire = _wire_schema(version)
    places = _raw_places(version)
    found = {name: (expr, dtype) for name, expr, dtype in leaves}
    exprs: list[pl.Expr] = []
    for name in version.known_columns:
        want = wire.get(name)
        if name in found:
            expr, have = found[name]
            exprs.append(_settled(expr, have, want).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=want or pl.String()).alias(name))
    raws = sorted((name for name in found if name in places), key=places.__getitem__)
    exprs.extend(pl.col(name) for name in raws)
    known = set(version.known_columns)
    exprs.extend(
        _settled(expr, dtype, None).alias(name)
        for name, expr, dtype in leaves
        if name not in known and name not in places
    )
    frame = read.select(exprs)
    return frame.with_columns(_strict_columns(frame, version))


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


def _strict_columns(frame: pl.DataFrame, version: ApiVersion) -> list[pl.Series]:
    """``createdAt`` and the enums (``taxStatus``) in their strict dtypes where nothing is lost."""
    out: list[pl.Series] = []
    created = frame.get_column(fields.CREATED_AT)
    if created.dtype == pl.String and (parsed := _exact_timestamps(created)) is not None:
        out.append(parsed)
    for column, values in version.enums.items():
        held = frame.get_column(column)
        if held.dtype == pl.String and (held.is_null() | held.is_in(values)).all():
            out.append(held.cast(pl.Enum(values)))
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
    if not created.str.contains(WHOLE_SECONDS).fill_null(True).all():
        return None
    parsed = created.str.strptime(CREATED_AT_DTYPE, _WHOLE_SECONDS_FORMAT, strict=False)
    return parsed if parsed.null_count() == created.null_count() else None
