"""List queries: parameters, opaque cursors and keyset pages.

A cursor holds the sort key (value, id) of the item at a page edge, so pages stay
right when records change between requests (no offsets).
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson

SORT_FIELDS = ("createdAt", "legalName", "id")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

#: The sort key of one record: (value of the sort field, id).
SortKey = tuple[str, str]


class QueryError(ValueError):
    """A bad query parameter; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ListQuery:
    """A parsed ``GET /customers`` query."""

    limit: int = DEFAULT_LIMIT
    sort_by: str = "createdAt"
    descending: bool = True
    after: SortKey | None = None
    before: SortKey | None = None
    legal_name: str | None = None
    email: str | None = None
    alias: str | None = None
    include_archived: bool = False
    #: 2024-07-30's filters (a seed sandbox leaves them unset).
    label: str | None = None
    billing_status: str | None = None
    #: The serial of the cursor followed, passed on to the page's own cursors (so a
    #: listing that starts over, ``endless_pages="again"``, gives new cursors each round).
    serial: int | None = None

    @property
    def filtered(self) -> bool:
        """Whether any filter narrows the listing (beyond hiding archived customers)."""
        return any(
            value is not None
            for value in (self.legal_name, self.email, self.alias, self.label, self.billing_status)
        )


@dataclass(frozen=True)
class Page:
    """The ids of one page in display order and the cursors around it."""

    ids: list[str]
    after: str | None
    before: str | None
    total: int


#: The values of 2024-07-30's ``billingStatus`` filter.
BILLING_STATUSES = ("ACTIVE", "INACTIVE")


def parse_query(params: Mapping[str, str], filters: tuple[str, ...] = ()) -> ListQuery:
    """Parse and check the query string of a list request.

    ``filters`` names the version's filters beyond the seed's (``label``,
    ``billingStatus``); others of them are ignored, as the seed's sandbox always did.
    """
    limit = _parse_limit(params.get("limit"))
    sort_by = params.get("sortBy")
    if sort_by is not None and sort_by not in SORT_FIELDS:
        raise QueryError("sortBy", f"must be one of {', '.join(SORT_FIELDS)}")
    order = params.get("sortOrder")
    if order is not None and order.upper() not in ("ASC", "DESC"):
        raise QueryError("sortOrder", "must be ASC or DESC")
    descending = None if order is None else order.upper() == "DESC"
    if "after" in params and "before" in params:
        raise QueryError("after", "give after or before, not both")
    after = before = serial = None
    for name in ("after", "before"):
        if name in params:
            c_sort, c_desc, key, serial = decode_cursor(params[name], name)
            if (sort_by is not None and sort_by != c_sort) or (
                descending is not None and descending != c_desc
            ):
                raise QueryError(name, "cursor was made for another sortBy/sortOrder")
            sort_by, descending = c_sort, c_desc
            after, before = (key, None) if name == "after" else (None, key)
    billing_status = params.get("billingStatus") if "billingStatus" in filters else None
    if billing_status is not None and billing_status not in BILLING_STATUSES:
        raise QueryError("billingStatus", f"must be {' or '.join(BILLING_STATUSES)}")
    return ListQuery(
        label=params.get("label") if "label" in filters else None,
        billing_status=billing_status,
        limit=limit,
        sort_by=sort_by or "createdAt",
        descending=True if descending is None else descending,
        after=after,
        before=before,
        legal_name=params.get("legalName"),
        email=params.get("email"),
        alias=params.get("alias"),
        include_archived=_parse_bool(params.get("includeArchived")),
        serial=serial,
    )


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise QueryError("limit", "must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def _parse_bool(raw: str | None) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise QueryError("includeArchived", "must be true or false")


def encode_cursor(sort_by: str, descending: bool, key: SortKey, serial: int | None = None) -> str:
    """An opaque, URL-safe cursor for a position in one sort order.

    ``serial`` makes cursors to one position differ (the knobs that never end a listing).
    """
    cursor: dict[str, object] = {"s": sort_by, "d": descending, "k": list(key)}
    if serial is not None:
        cursor["n"] = serial
    raw = orjson.dumps(cursor)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


#: Sort keys below and above every record's (ids are never empty).
_LOWEST: SortKey = ("", "")
_HIGHEST: SortKey = ("\U0010ffff", "\U0010ffff")


def edge_cursor(query: ListQuery, *, past_end: bool, serial: int) -> str:
    """A fresh cursor (told apart by ``serial``) past the end of the listing, or before its start.

    Following one past the end gives an empty page; following one before the start
    gives the listing's first page again.
    """
    key = _HIGHEST if past_end != query.descending else _LOWEST
    return encode_cursor(query.sort_by, query.descending, key, serial)


def decode_cursor(cursor: str, name: str = "after") -> tuple[str, bool, SortKey, int | None]:
    """Read a cursor back (sort field, order, key, serial); any damage is a :class:`QueryError`."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise QueryError(name, "is not a valid cursor") from None
    if not (
        isinstance(data, dict)
        and data.get("s") in SORT_FIELDS
        and isinstance(data.get("d"), bool)
        and isinstance(data.get("k"), list)
        and len(data["k"]) == 2
        and all(isinstance(part, str) for part in data["k"])
        and (data.get("n") is None or type(data["n"]) is int)
    ):
        raise QueryError(name, "is not a valid cursor")
    return data["s"], data["d"], (data["k"][0], data["k"][1]), data.get("n")


def page(
    entries: Sequence[SortKey], query: ListQuery, visible: Callable[[str], bool], total: int
) -> Page:
    """Cut one page out of ``entries`` (sorted ascending) for ``query``."""
    step = -1 if query.descending else 1
    n = len(entries)

    def walk(i: int, direction: int, count: int) -> list[int]:
        found: list[int] = []
        while 0 <= i < n and len(found) < count:
            if visible(entries[i][1]):
                found.append(i)
            i += direction
        return found

    def cursor(key: SortKey) -> str:
        return encode_cursor(query.sort_by, query.descending, key, query.serial)

    after = before = None
    if query.before is None:
        if query.after is None:
            start = 0 if step == 1 else n - 1
        elif step == 1:
            start = bisect_right(entries, query.after)
        else:
            start = bisect_left(entries, query.after) - 1
        found = walk(start, step, query.limit + 1)
        index = found[: query.limit]
        if len(found) > query.limit:
            after = cursor(entries[index[-1]])
        if query.after is not None:
            edge = index[0] if index else start
            if walk(edge - step, -step, 1):
                before = cursor(entries[index[0]]) if index else cursor(query.after)
    else:
        start = (
            bisect_left(entries, query.before) - 1
            if step == 1
            else bisect_right(entries, query.before)
        )
        found = walk(start, -step, query.limit + 1)
        index = found[: query.limit][::-1]
        if len(found) > query.limit:
            before = cursor(entries[index[0]])
        edge = index[-1] if index else start
        if walk(edge + step, step, 1):
            after = cursor(entries[index[-1]]) if index else cursor(query.before)
    return Page([entries[i][1] for i in index], after, before, total)
