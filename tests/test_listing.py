"""Reading a whole listing (sequence_nb.listing) over real sockets.

Complete or loud, always bounded, two streams. Mock transports only for answers the
sandbox does not give (no totalResultSize, empty pages from the very first).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sequence_nb
from sequence_nb import (
    IncompleteFetchError,
    IncompleteFetchWarning,
    PaginationError,
    SequenceClient,
    fetch_customers,
    frame_from_pages,
)
from sequence_nb.sandbox import Sandbox, start
from tests.conftest import SandboxFactory
from tests.contract import ContractTransport
from tests.seed import SEED_BODY


class RecordingTransport(ContractTransport):
    """Checks each request against the contract and notes when it left and its query."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append((time.monotonic(), dict(request.url.params)))
        return super().handle_request(request)

    def orders(self) -> list[str]:
        """The ``sortOrder`` of each request sent (``""`` when it named none)."""
        return [params.get("sortOrder", "") for _, params in self.sent]


def recording_client(server: Sandbox, **options: Any) -> tuple[SequenceClient, RecordingTransport]:
    transport = RecordingTransport()
    options.setdefault("rate_limit_per_minute", None)
    return server.client(transport=transport, **options), transport


def run_bounded(work: Callable[[], object], server: Sandbox, seconds: float) -> object:
    """What ``work`` returned or raised; fails the test if it is still running after ``seconds``.

    A fetch that never ends is stopped by stopping the server under it.
    """
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        requests = server.stats.total_requests
        server.stop()
        thread.join(10)
        pytest.fail(f"still paging after {seconds} s and {requests} requests")
    return outcome[0]


def ids_of(frame: pl.DataFrame) -> list[str]:
    return [str(i) for i in frame.get_column("id").to_list()]


def one_stream_frame(client: SequenceClient, **filters: Any) -> pl.DataFrame:
    """The frame of one newest-first walk of the raw pages, the reference to compare with."""
    return frame_from_pages(page.content for page in client.iter_customer_pages(**filters))


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> SequenceClient:
    """A client over a mock transport: for answers the sandbox does not give."""
    return SequenceClient(
        "test-id",
        "test-secret-0123456789",
        "https://example.test/api",
        transport=httpx.MockTransport(handler),
        rate_limit_per_minute=None,
    )


def first_pages(transport: RecordingTransport) -> int:
    """How many requests started a listing (no cursor)."""
    return sum(1 for _, params in transport.sent if "after" not in params)


@pytest.fixture(scope="module")
def crowd() -> Iterator[Sandbox]:
    """250 customers: 7 share a legal name and 5 an email, so filtered listings are long."""
    with start(customers=250, seed=8) as server:
        records = server.records()
        for record in records[10:17]:
            server.edit_remote(record["id"], {"legalName": "Twin Holdings Ltd"})
        for record in records[20:25]:
            server.edit_remote(record["id"], {"email": "shared@example.com"})
        yield server


# -- complete or loud ----------------------------------------------------------------------


@pytest.mark.parametrize("sort", [{"sortBy": "legalName"}, {}], ids=["legalName", "createdAt"])
def test_records_moved_during_the_fetch_never_give_a_silent_short_frame(
    make_sandbox: SandboxFactory, sort: dict[str, str]
) -> None:
    server = make_sandbox(customers=450, seed=5)
    server.set_faults(move_records=3, move_times=1)  # the first listing read is disturbed
    client, transport = recording_client(server)
    with client, warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFetchWarning)  # sortBy=legalName warns
        frame = fetch_customers(client, progress=False, includeArchived=True, **sort)
    ids = ids_of(frame)
    assert len(ids) == len(set(ids)) == 450
    assert set(ids) == {record["id"] for record in server.records()}
    # short where the streams met, the one still reading reads on, or the listing is read again
    assert first_pages(transport) in (2, 4)


class _Caught:
    value: IncompleteFetchError | None = None


@contextmanager
def _complete_or_loud() -> Iterator[_Caught]:
    """Catches an IncompleteFetchError if one comes (two streams may meet the moved
    records from the other end and read them all: then the frame must be whole)."""
    caught = _Caught()
    try:
        yield caught
    except IncompleteFetchError as error:
        caught.value = error


@pytest.mark.parametrize("streams", [1, 2])
def test_records_that_keep_moving_raise_incomplete_fetch_error_saying_how_many(
    make_sandbox: SandboxFactory, streams: int
) -> None:
    server = make_sandbox(customers=450, seed=5)
    server.set_faults(move_records=3)  # every listing read is disturbed
    client, transport = recording_client(server)
    with (
        client,
        pytest.warns(IncompleteFetchWarning, match="sortBy='legalName'"),
        pytest.raises(IncompleteFetchError) if streams == 1 else _complete_or_loud() as caught,
    ):
        frame = fetch_customers(
            client, progress=False, streams=streams, includeArchived=True, sortBy="legalName"
        )
    if caught.value is None:  # two streams: the reverse one may read the moved records
        assert set(ids_of(frame)) == {record["id"] for record in server.records()}
        return
    error = caught.value
    assert error.expected == 450 and error.missing >= 3 and error.found + error.missing == 450
    assert len({record["id"] for record in error.records}) == error.found
    message = str(error)
    assert f"{error.missing} missing" in message and "450" in message
    assert "'legalName'" in message and "on_incomplete='warn'" in message
    assert first_pages(transport) == 2 * streams  # read twice, never a third time


def test_warn_gives_the_frame_without_duplicates_keeping_the_copy_read_last(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=450, seed=5)
    server.set_faults(move_records=3, move_times=2)  # both reads are disturbed
    with (
        server.client(rate_limit_per_minute=None) as client,
        pytest.warns(IncompleteFetchWarning) as caught,
    ):
        frame = fetch_customers(
            client,
            progress=False,
            on_incomplete="warn",
            streams=1,
            includeArchived=True,
            sortBy="legalName",
        )
    assert any("3 missing" in str(w.message) for w in caught)
    ids = ids_of(frame)
    assert len(ids) == len(set(ids)) == 447
    now = {record["id"]: record["legalName"] for record in server.records()}
    names = dict(zip(ids, frame.get_column("legalName").to_list(), strict=True))
    assert names == {i: now[i] for i in ids}  # the records read twice hold their new names


def test_list_customers_is_complete_or_loud_too(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=450, seed=5)
    server.set_faults(move_records=3)
    with server.client(rate_limit_per_minute=None) as client:
        with pytest.raises(IncompleteFetchError):
            client.list_customers(includeArchived=True)
        with pytest.warns(IncompleteFetchWarning, match="missing"):
            records = client.list_customers(on_incomplete="warn", includeArchived=True)
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids)) < 450


def test_a_sort_on_a_field_that_can_change_warns_and_a_stable_sort_does_not(
    crowd: Sandbox,
) -> None:
    with crowd.client(rate_limit_per_minute=None) as client:
        with pytest.warns(IncompleteFetchWarning, match="edited during the fetch") as caught:
            fetch_customers(client, progress=False, sortBy="legalName")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fetch_customers(client, progress=False)
            fetch_customers(client, progress=False, sortBy="createdAt", sortOrder="ASC")
    assert caught[0].filename == __file__  # the warning points at the caller's line


def test_a_server_without_total_result_size_gets_a_warning() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": "a"}], "pagination": {}})

    with mock_client(answer) as client, pytest.warns(IncompleteFetchWarning, match="cannot be"):
        assert client.list_customers() == [{"id": "a"}]


def test_incomplete_fetch_error_and_warning_are_exported_from_the_package_root() -> None:
    assert "IncompleteFetchError" in sequence_nb.__all__
    assert issubclass(IncompleteFetchError, sequence_nb.SequenceError)
    assert issubclass(IncompleteFetchWarning, UserWarning)


def test_bad_listing_options_are_refused_before_anything_is_sent() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    with mock_client(answer) as client:
        with pytest.raises(ValueError, match="streams"):
            client.list_customers(streams=3)
        with pytest.raises(ValueError, match="on_incomplete"):
            client.list_customers(on_incomplete="ignore")  # type: ignore[arg-type]


# -- always bounded ------------------------------------------------------------------------


def test_endless_empty_pages_stop_one_stream_with_a_pagination_error_in_bounded_time(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=50, seed=2)
    server.set_faults(endless_pages="empty")
    with server.client(rate_limit_per_minute=None) as client:
        outcome = run_bounded(lambda: list(client.iter_customer_pages()), server, 5)
    assert isinstance(outcome, PaginationError), outcome
    assert "empty" in str(outcome)
    assert server.stats.total_requests == 2


def test_a_fetch_holding_every_customer_ends_at_an_empty_page_with_a_cursor_and_warns(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=50, seed=2)
    server.set_faults(endless_pages="empty")
    with (
        server.client(rate_limit_per_minute=None) as client,
        pytest.warns(IncompleteFetchWarning, match="cursor past the last customer"),
    ):
        outcome = run_bounded(lambda: fetch_customers(client, progress=False), server, 5)
    assert isinstance(outcome, pl.DataFrame), outcome
    assert outcome.height == len([r for r in server.records() if "archivedAt" not in r])
    assert server.stats.total_requests == 2  # the cursor left at the total is followed once


def test_empty_pages_from_the_first_stop_a_fetch_with_a_pagination_error_at_once() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        pagination = {"totalResultSize": 50, "after": f"cursor-{len(calls)}"}
        return httpx.Response(200, json={"items": [], "pagination": pagination})

    with mock_client(answer) as client, pytest.raises(PaginationError, match="empty"):
        fetch_customers(client, progress=False)
    assert len(calls) == 1


def test_a_server_without_totals_that_serves_the_same_page_again_is_stopped() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        pagination = {"after": f"cursor-{len(calls)}"}
        return httpx.Response(200, json={"items": [{"id": "a"}], "pagination": pagination})

    with mock_client(answer) as client, pytest.raises(PaginationError, match="already read"):
        client.list_customers()
    assert len(calls) == 2


def test_a_listing_that_starts_over_stops_paging_one_stream_in_bounded_time(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=50, seed=2)
    server.set_faults(endless_pages="again")
    with server.client(rate_limit_per_minute=None, page_size=10) as client:

        def walk() -> int:
            return sum(1 for _ in client.iter_customer_pages(includeArchived=True))

        outcome = run_bounded(walk, server, 5)
    assert isinstance(outcome, PaginationError), outcome
    assert "page 6 held only customers already read" in str(outcome)
    assert server.stats.total_requests == 5 + 1


def test_a_listing_that_starts_over_is_still_fetched_whole_and_once(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=50, seed=2)
    server.set_faults(endless_pages="again")
    with server.client(rate_limit_per_minute=None, page_size=10) as client:
        frame = fetch_customers(client, progress=False, includeArchived=True)
    assert sorted(ids_of(frame)) == sorted(record["id"] for record in server.records())
    assert server.stats.total_requests <= 5 + 1


# -- two streams ---------------------------------------------------------------------------


def test_a_long_listing_is_read_from_both_ends_at_once(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=1001, seed=4, latency=0.05)
    client, transport = recording_client(server)
    with client:
        frame = fetch_customers(client, progress=False, includeArchived=True)
    orders = transport.orders()
    assert orders.count("ASC") >= 4 and orders.count("DESC") >= 4
    assert server.stats.max_in_flight == 2
    assert len(transport.sent) == 11  # each page once: no stream reads past where they meet
    assert frame.height == 1001


@pytest.mark.parametrize(
    ("customers", "page_size"), [(1, 1), (2, 1), (3, 1), (250, 100), (250, 7), (1001, 100)]
)
def test_two_streams_equal_one_stream_row_for_row(
    make_sandbox: SandboxFactory, customers: int, page_size: int
) -> None:
    server = make_sandbox(customers=customers, seed=customers)
    client, transport = recording_client(server, page_size=page_size)
    with client:
        one = one_stream_frame(client, includeArchived=True)
        transport.sent.clear()
        two = fetch_customers(client, progress=False, includeArchived=True)
        single = fetch_customers(client, progress=False, streams=1, includeArchived=True)
    assert one.height == customers
    assert_frame_equal(two, one)
    assert_frame_equal(single, one)
    assert ("ASC" in transport.orders()) == (customers > 2 * page_size)


TWIN = {"legalName": "Twin Holdings Ltd"}


@pytest.mark.parametrize(
    ("filters", "page_size"),
    [
        (TWIN, 2),
        ({**TWIN, "includeArchived": True, "sortOrder": "ASC"}, 2),
        ({"email": "shared@example.com"}, 1),
        ({"alias": "ALIAS"}, 1),
        ({"includeArchived": True}, 25),
        ({"includeArchived": False}, 25),
        ({"sortBy": "legalName"}, 25),
        ({"sortBy": "legalName", "sortOrder": "ASC", "include_archived": True}, 25),
        ({"sortBy": "createdAt", "sortOrder": "ASC"}, 25),
        ({"sort_order": "DESC"}, 30),
    ],
)
def test_two_streams_equal_one_stream_with_each_filter(
    crowd: Sandbox, filters: dict[str, Any], page_size: int
) -> None:
    if filters.get("alias") == "ALIAS":
        owner = next(r for r in crowd.records() if crowd.aliases_of(r["id"]))
        filters = {"alias": crowd.aliases_of(owner["id"])[0], "includeArchived": True}
    client, transport = recording_client(crowd, page_size=page_size)
    with client, warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFetchWarning)  # sortBy=legalName warns
        one = one_stream_frame(client, **filters)
        transport.sent.clear()
        two = fetch_customers(client, progress=False, **filters)
    assert one.height > 0
    assert_frame_equal(two, one)
    long = one.height > 2 * page_size
    assert ({"ASC", "DESC"} <= set(transport.orders())) == long


def test_two_streams_together_keep_to_the_rate_limit(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=1001, seed=4, rate_limit_per_minute=600)
    client, transport = recording_client(server, page_size=50, rate_limit_per_minute=600)
    with client:
        frame = fetch_customers(client, progress=False, includeArchived=True)
    times = [sent for sent, _ in transport.sent]
    assert frame.height == 1001
    assert server.stats.rate_limited == 0
    assert "ASC" in transport.orders()
    assert times[-1] - times[0] >= (len(times) - 1) * 0.1 - 0.02  # 600 a minute: one per 0.1 s


def test_progress_counts_distinct_customers(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=450, seed=5)
    server.set_faults(move_records=3, move_times=1)
    heard: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def note(count: int, total: int | None) -> None:
        with lock:
            heard.append((count, total))

    with server.client(rate_limit_per_minute=None) as client:
        records = client.list_customers(on_progress=note, includeArchived=True)
    assert len(records) == 450
    assert all(total == 450 and count <= 450 for count, total in heard)
    assert heard[-1] == (450, 450)
    # Whether the first read falls short depends on which stream passes the moved
    # records first; when it does, the count starts again once, below the total.
    drops = [i for i in range(1, len(heard)) if heard[i][0] < heard[i - 1][0]]
    assert len(drops) <= 1
    if drops:
        assert max(count for count, _ in heard[: drops[0]]) < 450


def test_the_progress_bar_shows_distinct_customers_of_the_total(
    crowd: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with crowd.client(rate_limit_per_minute=None, page_size=20) as client:
        frame = fetch_customers(client, progress=True, includeArchived=True)
    assert frame.height == 250
    assert "Fetching customers" in (err := capsys.readouterr().err) and "250/250" in err


def test_iter_customer_pages_stays_one_stream(crowd: Sandbox) -> None:
    client, transport = recording_client(crowd, page_size=20)
    with client:
        pages = list(client.iter_customer_pages(includeArchived=True))
    assert len(pages) == 13 and sum(len(page.items) for page in pages) == 250
    assert set(transport.orders()) == {""}
    assert pages[0].total == 250 and pages[-1].after is None


class SlowTransport(RecordingTransport):
    """Holds back the follow-up pages of one order, so the other stream reads first."""

    def __init__(self, slow_order: str) -> None:
        super().__init__()
        self.slow_order = slow_order

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if "after" in params and params.get("sortOrder") == self.slow_order:
            time.sleep(0.2)
        return super().handle_request(request)


@pytest.mark.parametrize("slow_order", ["ASC", "DESC"])
def test_the_order_holds_whichever_stream_reads_where_they_meet_last(
    make_sandbox: SandboxFactory, slow_order: str
) -> None:
    server = make_sandbox(customers=1001, seed=250)  # the last two pages overlap by 99
    transport = SlowTransport(slow_order)
    with server.client(transport=transport, rate_limit_per_minute=None) as client:
        one = one_stream_frame(client, includeArchived=True)
        transport.sent.clear()
        two = fetch_customers(client, progress=False, includeArchived=True)
    assert_frame_equal(two, one)
    assert len(transport.sent) == 11 and transport.sent[-1][1]["sortOrder"] == slow_order


class FailingTransport(RecordingTransport):
    """Answers 503 to the follow-up pages of one order: one stream fails mid-listing."""

    def __init__(self, failing_order: str) -> None:
        super().__init__()
        self.failing_order = failing_order

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if "after" in params and params.get("sortOrder") == self.failing_order:
            with self._lock:
                self.sent.append((time.monotonic(), dict(params)))
            return httpx.Response(503, json={"message": "stream trouble"})
        return super().handle_request(request)


def test_an_asked_stream_that_fails_stops_the_reverse_one_and_the_error_reaches_the_caller(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=1001, seed=4, latency=0.02)
    transport = FailingTransport("DESC")
    options = {"rate_limit_per_minute": None, "max_retries": 0}
    with (
        server.client(transport=transport, **options) as client,
        pytest.raises(sequence_nb.ServerError, match="stream trouble"),
    ):
        fetch_customers(client, progress=False, includeArchived=True)
    time.sleep(0.2)  # a stream still running would go on sending
    assert len(transport.sent) <= 5


# -- attacks on issue 12's fetching ----------------------------------------------------------


class LowTotalTransport(RecordingTransport):
    """Rewrites each answer's ``totalResultSize`` (a stale or wrong count)."""

    def __init__(self, total: Callable[[dict[str, Any]], int]) -> None:
        super().__init__()
        self.total = total

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = super().handle_request(request)
        body = orjson.loads(answer.read())
        body["pagination"]["totalResultSize"] = self.total(body)
        return httpx.Response(answer.status_code, json=body, request=request)


@pytest.mark.parametrize("streams", [1, 2])
@pytest.mark.parametrize(
    "total",
    [lambda body: body["pagination"]["totalResultSize"] - 300, lambda body: 800],
    ids=["stale", "stale-by-less-than-a-page"],
)
def test_a_total_below_the_listing_never_ends_a_fetch_early_and_is_warned_of(
    make_sandbox: SandboxFactory, streams: int, total: Callable[[dict[str, Any]], int]
) -> None:
    server = make_sandbox(customers=1001, seed=4)
    transport = LowTotalTransport(total)
    with (
        server.client(transport=transport, rate_limit_per_minute=None) as client,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        frame = fetch_customers(client, progress=False, streams=streams, includeArchived=True)
    assert frame.height == 1001
    assert sorted(ids_of(frame)) == sorted(record["id"] for record in server.records())
    said = [str(w.message) for w in caught if w.category is IncompleteFetchWarning]
    assert any("more than its totalResultSize" in message for message in said), said


@pytest.mark.parametrize("streams", [1, 2])
@pytest.mark.parametrize("total", [0, 100], ids=["zero", "one-page"])
def test_a_total_far_below_the_listing_stops_with_a_pagination_error_naming_it(
    make_sandbox: SandboxFactory, streams: int, total: int
) -> None:
    server = make_sandbox(customers=1001, seed=4)
    transport = LowTotalTransport(lambda body: total)
    with (
        server.client(transport=transport, rate_limit_per_minute=None) as client,
        pytest.raises(PaginationError, match=f"first totalResultSize was {total};"),
    ):
        fetch_customers(client, progress=False, streams=streams, includeArchived=True)
    assert len(transport.sent) <= streams * (2 * total // 100 + 3)


@pytest.mark.parametrize(
    "item",
    [{"id": 7, "legalName": "Int Ltd"}, {"legalName": "Nobody Ltd"}, {"id": "", "legalName": "X"}],
    ids=["int", "missing", "empty"],
)
def test_a_customer_without_a_usable_id_is_refused_naming_the_item(item: dict[str, Any]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        items = [{"id": "good", "legalName": "Good Ltd"}, item]
        return httpx.Response(200, json={"items": items, "pagination": {"totalResultSize": 2}})

    with mock_client(answer) as client:
        with pytest.raises(sequence_nb.UnexpectedResponseError, match=r"item 1 .*'id'") as caught:
            client.list_customers()
        assert "good" not in str(caught.value)  # names the bad item, not its neighbour
        with pytest.raises(sequence_nb.UnexpectedResponseError, match="item 1"):
            list(client.iter_customer_pages())


@pytest.mark.parametrize("streams", [1, 2])
@pytest.mark.parametrize("total", [lambda calls: 10**9, lambda calls: 500 + 100 * calls])
def test_a_server_repeating_one_page_with_fresh_cursors_stops_whatever_its_total(
    streams: int, total: Callable[[int], int]
) -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if len(calls) > 50:  # the fetch is not stopping: end the test (with another error)
            return httpx.Response(400, json={"message": "still paging"})
        items = [{"id": f"c{i}"} for i in range(100)]
        pagination = {"totalResultSize": total(len(calls)), "after": f"cursor-{len(calls)}"}
        return httpx.Response(200, json={"items": items, "pagination": pagination})

    with mock_client(answer) as client, pytest.raises(PaginationError, match="already read"):
        client.list_customers(streams=streams)
    assert len(calls) <= 2 * streams


def test_a_fresh_customers_server_is_bounded_by_the_first_total_not_a_growing_one() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if len(calls) > 50:  # the fetch is not stopping: end the test (with another error)
            return httpx.Response(400, json={"message": "still paging"})
        items = [{"id": f"c{len(calls)}-{i}"} for i in range(100)]
        pagination = {"totalResultSize": 500 + 200 * len(calls), "after": f"cursor-{len(calls)}"}
        return httpx.Response(200, json={"items": items, "pagination": pagination})

    with mock_client(answer) as client, pytest.raises(PaginationError, match="was 700;"):
        list(client.iter_customer_pages())
    assert len(calls) == (2 * 700 + 2 * 100) // 100 + 1  # not stretched by the growing total


class CappedListing:
    """A keyset listing that answers at most ``cap`` customers a page, whatever was asked."""

    def __init__(self, customers: int, cap: int) -> None:
        self.ids = [f"c{number:05d}" for number in range(customers)]
        self.cap = cap
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        query = request.url.params
        ids = self.ids if query.get("sortOrder") == "ASC" else self.ids[::-1]
        start = int(query.get("after", "0"))
        pagination: dict[str, Any] = {"totalResultSize": len(ids)}
        if start + self.cap < len(ids):
            pagination["after"] = str(start + self.cap)
        items = [{"id": one} for one in ids[start : start + self.cap]]
        return httpx.Response(200, json={"items": items, "pagination": pagination})


@pytest.mark.parametrize("streams", [1, 2])
def test_pages_smaller_than_asked_still_give_the_whole_listing(streams: int) -> None:
    server = CappedListing(1000, cap=20)
    with mock_client(server) as client:
        assert sum(len(page.items) for page in client.iter_customer_pages()) == 1000
        records = client.list_customers(streams=streams)
    assert sorted(record["id"] for record in records) == server.ids
    assert server.calls <= 2 * 50 + 2


class SignupTransport(RecordingTransport):
    """Creates a customer (through a client of its own) after every ``every``-th page."""

    def __init__(self, server: Sandbox, every: int) -> None:
        super().__init__()
        self.every = every
        self.writer = server.client(rate_limit_per_minute=None)
        self.created: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = super().handle_request(request)
        if len(self.sent) % self.every == 0:
            body = dict(SEED_BODY, legalName=f"Signup {len(self.sent)}")
            self.created.append(self.writer.create_customer(body)["id"])
        return answer


@pytest.mark.parametrize("streams", [1, 2])
def test_customers_created_during_a_fetch_by_creation_time_are_said_and_do_not_fail_it(
    make_sandbox: SandboxFactory, streams: int
) -> None:
    server = make_sandbox(customers=2000, seed=3)
    before = {record["id"] for record in server.records() if "archivedAt" not in record}
    transport = SignupTransport(server, every=5)
    with (
        server.client(transport=transport, rate_limit_per_minute=None, page_size=50) as client,
        pytest.warns(IncompleteFetchWarning, match="created during the fetch"),
    ):
        frame = fetch_customers(client, progress=False, streams=streams)
    transport.writer.close()
    assert transport.created and before <= set(ids_of(frame))
    assert first_pages(transport) == streams  # read once: nothing existing was missed


def test_a_reverse_stream_that_fails_leaves_the_asked_stream_to_finish_alone(
    make_sandbox: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_sandbox(customers=1001, seed=4, latency=0.02)
    transport = FailingTransport("ASC")
    options = {"rate_limit_per_minute": None, "max_retries": 0}
    with server.client(transport=transport, **options) as client:
        frame = fetch_customers(client, progress=False, includeArchived=True)
        one = one_stream_frame(client, includeArchived=True)
    assert_frame_equal(frame, one)
    assert "reverse stream" in caplog.text and "stream trouble" in caplog.text


class ShortReverseListing(CappedListing):
    """A keyset listing whose oldest-first order ends early: empty, or one page without a cursor."""

    def __init__(self, customers: int, reverse_items: int) -> None:
        super().__init__(customers, cap=100)
        self.reverse_items = reverse_items

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("sortOrder") != "ASC":
            return super().__call__(request)
        self.calls += 1
        items = [{"id": one} for one in self.ids[: self.reverse_items]]
        return httpx.Response(
            200, json={"items": items, "pagination": {"totalResultSize": len(self.ids)}}
        )


@pytest.mark.parametrize("reverse_items", [0, 100], ids=["empty", "one-page"])
def test_a_reverse_stream_that_ends_before_meeting_leaves_the_asked_stream_to_finish_alone(
    reverse_items: int, caplog: pytest.LogCaptureFixture
) -> None:
    server = ShortReverseListing(1000, reverse_items)
    with mock_client(server) as client:
        records = client.list_customers()
        one = client.list_customers(streams=1)
    assert [record["id"] for record in records] == [record["id"] for record in one]
    assert len(records) == 1000 and server.calls == 10 + 1 + 10
    assert "reverse stream" in caplog.text and "ended" in caplog.text


class InterruptingTransport(RecordingTransport):
    """Raises ``KeyboardInterrupt`` (Ctrl-C) at the first newest-first request sent after
    the oldest-first stream has sent two: both streams are then mid-listing."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("sortOrder") == "DESC" and self.orders().count("ASC") >= 2:
            raise KeyboardInterrupt
        return super().handle_request(request)


def test_ctrl_c_reaches_the_caller_and_no_stream_asks_for_another_page(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=3000, seed=4, latency=0.05)
    transport = InterruptingTransport()
    with server.client(transport=transport, rate_limit_per_minute=None) as client:
        with pytest.raises(KeyboardInterrupt):
            fetch_customers(client, progress=False, includeArchived=True)
        sent = len(transport.sent)
        time.sleep(0.5)  # ten pages' time: a stream still running would go on sending
        assert len(transport.sent) <= sent + 1  # the page being read when Ctrl-C came
    assert sent < 30  # interrupted mid-listing (30 pages in one stream)


SHARED = {"email": "shared@example.com"}


@pytest.mark.parametrize(
    "query",
    [
        SHARED,
        {**SHARED, "includeArchived": True, "sortBy": "legalName"},
        {**SHARED, "sortBy": "legalName", "sortOrder": "ASC"},
        {**SHARED, "includeArchived": True, "sortBy": "createdAt", "sortOrder": "ASC"},
        {"includeArchived": False, "sortBy": "legalName", "sortOrder": "DESC"},
    ],
)
@pytest.mark.parametrize("streams", [1, 2])
def test_records_moved_during_a_filtered_fetch_give_every_match_once_or_a_loud_error(
    make_sandbox: SandboxFactory, query: dict[str, Any], streams: int
) -> None:
    server = make_sandbox(customers=300, seed=12)
    for record in server.records()[:200]:
        server.edit_remote(record["id"], SHARED)
    archived = query.get("includeArchived", False)
    client = server.client(rate_limit_per_minute=None, page_size=20)
    with client, warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFetchWarning)  # sortBy=legalName warns
        server.set_faults(move_records=3, move_times=1)  # the first read is disturbed
        ids = ids_of(fetch_customers(client, progress=False, streams=streams, **query))
        server.set_faults(move_records=3, move_times=None)  # every read is disturbed
        with pytest.raises(IncompleteFetchError) as caught:
            fetch_customers(client, progress=False, streams=streams, **query)
    matching = {
        record["id"]
        for record in server.records()
        if (archived or "archivedAt" not in record)
        and ("email" not in query or record.get("email") == query["email"])
    }
    assert len(ids) == len(set(ids)) and set(ids) == matching  # moves change no match
    error = caught.value
    assert error.expected == len(matching) and error.missing >= 3
    assert len({record["id"] for record in error.records}) == error.found
