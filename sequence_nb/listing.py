"""Reading a whole ``GET /customers`` listing: complete or loud, always bounded, two streams.

Following ``pagination.after`` page by page can go wrong in three ways, each handled here.

* **Records that move.** A record whose sort value changes while the listing is paged
  (``sortBy="legalName"`` while someone renames customers) is skipped, and another is read
  twice. Duplicate ids are dropped, keeping the copy read last, and the distinct count is
  compared with ``totalResultSize`` (the largest given on the first and last page of each
  stream). On a shortfall the listing is read once more; still short,
  :class:`~sequence_nb.errors.IncompleteFetchError` says how many are missing and why
  (``on_incomplete="warn"`` takes the records with an
  :class:`~sequence_nb.errors.IncompleteFetchWarning` instead). A ``sortBy`` on a field that
  can change warns up front; the default, creation time, never changes.
* **Listings that never end.** One stream stops with
  :class:`~sequence_nb.errors.PaginationError` at an empty page that carries a cursor, at a
  cursor given twice, and once it has read far more pages than ``totalResultSize`` needs
  (:func:`customer_budget`), and at a page holding only customers already read.
* **Latency.** A listing longer than two pages is read from both ends at once: in the asked
  order (newest first by default) and in the reverse one, each stream stopping where it
  reaches customers the other holds, both once the union reaches ``totalResultSize``. Both
  streams read through the one page reader they are given, so a client's rate limiter
  paces them together. The records come out in the order one listing in the asked order
  gives.

No HTTP here: the caller hands over a function that reads one page (the client's), so
:mod:`sequence_nb.client` imports this module and never the reverse.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from sequence_nb.errors import IncompleteFetchError, IncompleteFetchWarning, PaginationError

__all__ = [
    "STABLE_SORTS",
    "CustomerPage",
    "Listing",
    "OnIncomplete",
    "PageReader",
    "Progress",
    "customer_budget",
    "iter_pages",
    "read_listing",
]

logger = logging.getLogger("sequence_nb.listing")


@dataclass(frozen=True)
class CustomerPage:
    """One page of ``GET /customers``: raw bytes, parsed items, total and next cursor."""

    content: bytes
    items: list[dict[str, Any]]
    total: int | None
    #: ``pagination.after``: the cursor to the next page, None on the last.
    after: str | None = None


#: Reads one page for a query (``limit``, ``after``, filters, ``sortOrder``).
PageReader = Callable[[Mapping[str, str]], CustomerPage]
#: Told the distinct customers read so far and the server's total, after each page.
Progress = Callable[[int, int | None], None]
OnIncomplete = Literal["raise", "warn"]

#: Sort fields whose values never change, so records cannot move while they are paged.
STABLE_SORTS = frozenset({"createdAt", "id"})
_REVERSE = {"ASC": "DESC", "DESC": "ASC"}
_PACKAGE = str(Path(__file__).resolve().parent)


def customer_budget(total: int, page_size: int) -> int:
    """The most distinct customers one stream reads of a listing of ``total``.

    Twice the total, plus two pages.

    The slack covers customers created while the listing is read. It is set by the
    first total the server gives, so a total that grows page after page cannot
    stretch it; a server still giving cursors past it is not ending the listing.
    """
    return 2 * max(total, 0) + 2 * page_size


def iter_pages(
    read: PageReader,
    params: Mapping[str, str],
    page_size: int,
    *,
    counted: Callable[[], bool] | None = None,
) -> Iterator[CustomerPage]:
    """Every page of one stream, following ``after`` to the end, bounded (module docstring).

    ``counted()`` says whether every customer the server counts is already held: an
    empty page that still carries a cursor then ends the stream with a warning
    instead of a :class:`PaginationError` (the server gave a cursor past its last
    customer; nothing is lost by stopping).
    """
    guard = _Guard(page_size)
    query = dict(params)
    while True:
        page = read(query)
        if not page.items and page.after is not None and counted is not None and counted():
            _warn(
                "GET /customers gave a cursor past the last customer its totalResultSize "
                "counts, then an empty page with yet another cursor; the listing is taken "
                "as ended there"
            )
            yield CustomerPage(page.content, page.items, page.total, after=None)
            return
        guard.check(page)
        yield page
        if page.after is None:
            return
        query["after"] = page.after


@dataclass(frozen=True)
class Listing:
    """A whole listing read: distinct records in the asked order, and how the read went."""

    records: list[dict[str, Any]]
    #: The server's ``totalResultSize`` (None if it gave none).
    expected: int | None
    #: 1, or 2 when the first read fell short.
    reads: int
    #: Pages read, over every read and stream.
    pages: int
    #: Streams of the last read: 2 when it was read from both ends.
    streams: int

    @property
    def missing(self) -> int:
        """How many customers the server counts that the records lack."""
        return 0 if self.expected is None else max(0, self.expected - len(self.records))


def read_listing(
    read: PageReader,
    params: Mapping[str, str],
    *,
    page_size: int,
    streams: int = 2,
    on_incomplete: OnIncomplete = "raise",
    on_progress: Progress | None = None,
) -> Listing:
    """Read a whole listing: complete or loud, bounded, from both ends when long (module docstring).

    ``params`` is the query of the first page (``limit`` and filters); ``streams=1``
    reads it in one stream however long it is.
    """
    if streams not in (1, 2):
        raise ValueError(f"streams must be 1 or 2, not {streams!r}")
    if on_incomplete not in ("raise", "warn"):
        raise ValueError(f"on_incomplete must be 'raise' or 'warn', not {on_incomplete!r}")
    query = {**params, "sortOrder": params.get("sortOrder", "DESC")}
    moving = _unstable_sort(params)
    if moving is not None:
        _warn(
            f"sortBy={moving!r} is a field that can change: customers edited during the fetch "
            "can move between pages, be missed and others read twice. A shortfall against "
            "totalResultSize is caught (the listing is read again, then the fetch fails), "
            "but a miss offset by customers created or archived meanwhile is not; the "
            "default sort, creation time, does not move customers"
        )
    first = _read_whole(read, query, page_size, streams, on_progress, earlier=None)
    if first.expected is None or not first.missing:
        return first
    logger.info(
        "GET /customers gave %d distinct customers of %d; reading the listing again",
        len(first.records),
        first.expected,
    )
    again = _read_whole(read, query, page_size, streams, on_progress, earlier=first)
    if again.expected is None or not again.missing:
        return again
    error = IncompleteFetchError(
        expected=again.expected,
        found=len(again.records),
        reads=again.reads,
        sort_by=moving,
        records=again.records,
    )
    if on_incomplete == "raise":
        raise error
    _warn(error.summary)
    return again


def _read_whole(
    read: PageReader,
    query: Mapping[str, str],
    page_size: int,
    streams: int,
    on_progress: Progress | None,
    earlier: Listing | None,
) -> Listing:
    """One read of the listing as a :class:`Listing` (after ``earlier``, if it fell short)."""
    done = _read_once(read, query, page_size, streams, on_progress)
    expected = done.expected()
    if expected is None:
        _warn(
            "GET /customers gave no totalResultSize: whether every customer was read "
            "cannot be checked"
        )
    else:
        _say_counts(done, expected)
    reads, pages = (1, 0) if earlier is None else (earlier.reads + 1, earlier.pages)
    return Listing(done.records(), expected, reads, pages + done.pages, len(done.streams))


def _say_counts(done: _Read, expected: int) -> None:
    """Warn when the count read and the server's totals disagree without a shortfall.

    More customers than every total counts: the totals are stale or wrong, so the
    completeness check proves nothing. Under a stable sort, totals that grew past
    what was read: customers created during the fetch, which it may not hold.
    """
    count, largest = done.count, done.total if done.total is not None else expected
    if count > largest:
        _warn(
            f"GET /customers gave {count} distinct customers, more than its totalResultSize "
            f"of {largest}: the server's count is stale or wrong, so whether every customer "
            "was read cannot be checked against it"
        )
    elif done.stable and expected <= count < largest:
        _warn(
            f"the server's totalResultSize grew from {expected} to {largest} while the listing "
            f"was read: up to {largest - count} customers created during the fetch may be "
            f"missing; the {count} read are at least as many as there were when it began"
        )


def _unstable_sort(params: Mapping[str, str]) -> str | None:
    """The ``sortBy`` of a listing when it is a field that can change, else None."""
    sort_by = params.get("sortBy")
    return sort_by if sort_by is not None and sort_by not in STABLE_SORTS else None


def _warn(message: str) -> None:
    """Warn at the first caller outside sequence_nb (the user's own line)."""
    level = 1
    caller: FrameType | None = sys._getframe()
    while caller is not None and caller.f_code.co_filename.startswith(_PACKAGE):
        caller, level = caller.f_back, level + 1
    warnings.warn(message, IncompleteFetchWarning, stacklevel=level)


# -- one stream, bounded ---------------------------------------------------------------


class _Guard:
    """Stops one stream of pages that would never end.

    Bounded by progress, not by page counts: pages may hold fewer customers than
    asked, and a total may grow or lie. A page that brings no customer this stream
    has not read stops it, whatever the total; so does reading far more distinct
    customers than the first total counts (:func:`customer_budget`).
    """

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.pages = 0
        self.first_total: int | None = None
        self.cursors: set[str] = set()
        self.ids: set[str] = set()

    def check(self, page: CustomerPage) -> None:
        """Raise :class:`PaginationError` if following ``page.after`` would not end the stream."""
        self.pages += 1
        if self.first_total is None and page.total is not None:
            self.first_total = page.total
        ids = _ids(page.items)
        fresh = len(ids - self.ids)
        self.ids |= ids
        cursor = page.after
        if cursor is None:
            return
        if not page.items:
            raise _endless(
                f"page {self.pages} was empty but still carried a cursor ({cursor!r}); a server "
                "that keeps doing so would be followed forever, so paging stops here"
            )
        if cursor in self.cursors:
            raise _endless(
                f"the server returned the cursor {cursor!r} a second time; "
                "stopping instead of looping forever"
            )
        self.cursors.add(cursor)
        if not fresh:
            raise _endless(
                f"page {self.pages} held only customers already read and still carried a "
                "cursor: the listing is going round, so paging stops here"
            )
        if self.first_total is not None:
            budget = customer_budget(self.first_total, self.page_size)
            if len(self.ids) > budget:
                raise _endless(
                    f"{len(self.ids)} distinct customers were read in {self.pages} pages and the "
                    f"server still gives a cursor, but its first totalResultSize was "
                    f"{self.first_total}; stopping instead of paging on"
                )


def _endless(message: str) -> PaginationError:
    return PaginationError(message, method="GET", path="/customers")


def _id(item: Mapping[str, Any]) -> str | None:
    value = item.get("id")
    return value if isinstance(value, str) else None


def _ids(items: list[dict[str, Any]]) -> set[str]:
    return {value for value in map(_id, items) if value is not None}


# -- one read, by one or two streams ---------------------------------------------------


@dataclass
class _Stream:
    """What one stream read, in its own order."""

    #: 0: the asked order; 1: the reverse one.
    rank: int
    #: (number of the page in the whole read, item), in the order read.
    items: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    pages: int = 0
    first_total: int | None = None
    last_total: int | None = None
    #: Customers the page this stream is reading may bring (0 when it reads none).
    claim: int = 0
    #: False once it stopped reading (it met the other, ended, or failed).
    active: bool = True
    error: BaseException | None = None


class _Read:
    """One read of a listing by one or two streams: what they hold, and whether they met."""

    def __init__(self, page_size: int, on_progress: Progress | None, stable: bool) -> None:
        self.stable = stable
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.done = threading.Event()
        self.streams: list[_Stream] = []
        self.union: set[str] = set()
        self.without_id = 0
        self.total: int | None = None
        self.pages = 0
        self.page_size = page_size
        self.on_progress = on_progress

    @property
    def count(self) -> int:
        """Distinct customers held (each record without an id counts as one)."""
        return len(self.union) + self.without_id

    @property
    def target(self) -> int | None:
        """How many customers the listing should hold (see :meth:`expected`)."""
        first = self.streams[0].first_total if self.streams else None
        return first if self.stable and first is not None else self.total

    def counted(self) -> bool:
        """Whether every customer the server counts is held."""
        target = self.target
        return target is not None and self.count >= target

    def claim(self, stream: _Stream) -> bool:
        """Whether ``stream`` should read its next page, waiting while it need not yet.

        A page is read only if the customers still missing are more than the pages
        in flight may bring: where the streams meet, a stream waits for the other's
        page rather than read one that would bring nothing new. When that page falls
        short (records moved), the waiting stream reads on.
        """
        with self.changed:
            while not self.done.is_set():
                in_flight = sum(other.claim for other in self.streams)
                target = self.target
                if target is None or not in_flight or target - self.count > in_flight:
                    stream.claim = self.page_size
                    return True
                self.changed.wait()
            return False

    def stop(self) -> None:
        """Stop every stream after the page it is reading (a stream failed)."""
        with self.changed:
            self.done.set()
            self.changed.notify_all()

    def drop(self, stream: _Stream) -> None:
        """Stop ``stream`` alone (it failed): the others read on without waiting for it."""
        with self.changed:
            stream.claim = 0
            stream.active = False
            self.changed.notify_all()

    def add_stream(self) -> _Stream:
        with self.lock:
            stream = _Stream(rank=len(self.streams))
            self.streams.append(stream)
            return stream

    def take(self, stream: _Stream, page: CustomerPage) -> bool:
        """Keep ``page`` of ``stream``; whether that stream should read on.

        Never stops on the count alone while a cursor is left (a total can be stale
        or wrong). Every stream stops once one reaches the end of the listing, or
        once the streams meet (a page holds customers another stream holds) with
        every counted customer held. Met short of the count, a stream stops if
        another still reads (that one reads on to meet it too), else it reads on.
        A reverse stream that ends without meeting the asked one, while that one
        still reads, was cut short by the server: it stops alone, as when it fails.
        """
        with self.changed:
            stream.claim = 0
            self.changed.notify_all()
            self.pages += 1
            ids = _ids(page.items)
            others = (other for other in self.streams if other is not stream)
            met = any(not other.ids.isdisjoint(ids) for other in others)
            stream.items.extend((self.pages, item) for item in page.items)
            stream.ids |= ids
            self.union |= ids
            self.without_id += sum(1 for item in page.items if _id(item) is None)
            if page.total is not None:
                if stream.pages == 0:
                    stream.first_total = page.total
                self.total = max(page.total, self.total or 0)
            stream.last_total = page.total if page.total is not None else stream.last_total
            stream.pages += 1
            alone = not any(other.active for other in self.streams if other is not stream)
            early = page.after is None and stream.rank > 0 and not (met or alone)
            if early:
                logger.warning(
                    "the reverse stream of GET /customers ended after %d pages without "
                    "reaching the customers the asked stream read; the asked stream reads "
                    "the listing on alone",
                    stream.pages,
                )
            elif page.after is None or (met and self.counted()):
                self.done.set()
            if self.on_progress is not None:
                self.on_progress(self.count, self.total)
            stream.active = not (self.done.is_set() or early or (met and not alone))
            return stream.active

    def expected(self) -> int | None:
        """How many customers the listing holds, by the server's ``totalResultSize``.

        Under a stable sort (creation time, id), the first total of the asked stream:
        the listing as it was when the read began, since customers created during it
        can land where a stream has passed. Otherwise the largest total of the first
        and last page of each stream.
        """
        if self.stable and self.target is not None:
            return self.target
        totals = [
            total
            for stream in self.streams
            for total in (stream.first_total, stream.last_total)
            if total is not None
        ]
        return max(totals) if totals else None

    def records(self) -> list[dict[str, Any]]:
        """Distinct records (the copy read last of each) in the order of the asked listing.

        The asked stream's records come first, then the reverse stream's, in reverse.
        A record read twice by one stream stands where that stream read it last; one
        both streams read stands where the asked stream has it. Records without an
        id are kept, each on its own.
        """
        latest: dict[object, tuple[int, dict[str, Any]]] = {}
        places: dict[object, tuple[int, int]] = {}
        for stream in self.streams:
            size = len(stream.items)
            for position, (number, item) in enumerate(stream.items):
                place = (stream.rank, position if stream.rank == 0 else size - position)
                key: object = _id(item) or place
                held = latest.get(key)
                if held is None or number >= held[0]:
                    latest[key] = (number, item)
                if places.get(key, place)[0] == stream.rank:
                    places[key] = place
        order = sorted(places, key=places.__getitem__)
        return [latest[key][1] for key in order]


def _read_once(
    read: PageReader,
    query: Mapping[str, str],
    page_size: int,
    streams: int,
    on_progress: Progress | None,
) -> _Read:
    """Read the listing once: in the asked order, and in the reverse one too when it is long."""
    shared = _Read(page_size, on_progress, stable=_unstable_sort(query) is None)
    asked = shared.add_stream()
    pages = iter_pages(read, query, page_size, counted=shared.counted)
    reverse: threading.Thread | None = None
    try:
        if _step(shared, asked, pages):
            if streams == 2 and shared.total is not None and shared.total > 2 * page_size:
                reverse = _start_reverse(read, query, page_size, shared)
            while _step(shared, asked, pages):
                pass
        if reverse is not None:
            reverse.join()
    except BaseException:  # Ctrl-C included: the reverse stream stops after its page
        shared.stop()
        raise
    for stream in shared.streams:
        if stream.error is not None:
            raise stream.error
    return shared


class _Stopped(Exception):
    """The read was stopped before the reverse stream sent its next page."""


def _step(shared: _Read, stream: _Stream, pages: Iterator[CustomerPage]) -> bool:
    """Read the next page of ``stream`` if it should; whether it should read on after it."""
    return shared.claim(stream) and shared.take(stream, next(pages))


def _start_reverse(
    read: PageReader, query: Mapping[str, str], page_size: int, shared: _Read
) -> threading.Thread:
    """Start reading the listing in the reverse order in a thread of its own.

    The reverse stream only speeds the read up: if it fails, it is dropped (and
    logged) and the asked stream reads on alone. Only an interrupt stops both.
    """
    stream = shared.add_stream()

    def read_unless_stopped(params: Mapping[str, str]) -> CustomerPage:
        if shared.done.is_set():  # checked before each send: the caller may have gone
            raise _Stopped
        return read(params)

    reverse = {**query, "sortOrder": _REVERSE[query["sortOrder"]]}
    pages = iter_pages(read_unless_stopped, reverse, page_size, counted=shared.counted)

    def follow() -> None:
        try:
            while _step(shared, stream, pages):
                pass
        except _Stopped:
            pass
        except Exception as exc:  # the asked stream reads on alone
            logger.warning(
                "the reverse stream of GET /customers failed after %d pages (%s: %s); "
                "the asked stream reads the listing on alone",
                stream.pages,
                type(exc).__name__,
                exc,
            )
            shared.drop(stream)
        except BaseException as exc:  # raised by the caller's thread once it has joined
            stream.error = exc
            shared.stop()  # the asked stream stops after the page it is reading

    thread = threading.Thread(target=follow, name="sequence-nb-listing", daemon=True)
    thread.start()
    return thread
