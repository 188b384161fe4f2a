"""SequenceClient against the sandbox over real sockets (mock transports only for faults)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sequence_nb import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InvalidBodyError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    SequenceClient,
    ServerError,
    UnexpectedResponseError,
)
from sequence_nb.sandbox import Sandbox
from tests.conftest import SandboxFactory, contract_client
from tests.seed import SEED_BODY

Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(handler: Handler, **options: Any) -> SequenceClient:
    """A client over a mock transport: for fault cases the sandbox cannot produce."""
    options.setdefault("retry_initial_delay", 0.001)
    options.setdefault("rate_limit_per_minute", None)
    return SequenceClient(
        "test-id",
        "test-secret-0123456789",
        "https://example.test/api",
        transport=httpx.MockTransport(handler),
        **options,
    )


def a_customer_id(sandbox: Sandbox, index: int) -> str:
    return str(sorted(record["id"] for record in sandbox.records())[index])


# -- reads ---------------------------------------------------------------------------------


def test_lists_1000_customers_across_pages(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=1000, seed=3)
    with contract_client(server) as client:
        customers = client.list_customers(includeArchived=True)
    assert len(customers) == 1000
    assert {c["id"] for c in customers} == {r["id"] for r in server.records()}
    assert server.stats.requests["GET"] == 10  # 100 a page


def test_list_hides_archived_customers_unless_asked(client: SequenceClient) -> None:
    visible = client.list_customers()
    everyone = client.list_customers(include_archived=True)
    archived = [c for c in everyone if c.get("archivedAt")]
    assert archived, "the sandbox seeds some archived customers"
    assert len(visible) == len(everyone) - len(archived)


def test_list_follows_sort_order(client: SequenceClient) -> None:
    ascending = client.list_customers(sortOrder="ASC")
    stamps = [c["createdAt"] for c in ascending]
    assert stamps == sorted(stamps)
    assert [c["id"] for c in client.list_customers(sort_order="DESC")] == [
        c["id"] for c in reversed(ascending)
    ]


def test_list_filters_by_legal_name_and_email(client: SequenceClient, sandbox: Sandbox) -> None:
    target = sandbox.get_record(a_customer_id(sandbox, 5))
    by_name = client.list_customers(legalName=target["legalName"], includeArchived=True)
    by_email = client.list_customers(email=target["email"], includeArchived=True)
    assert target["id"] in {c["id"] for c in by_name}
    assert all(c["legalName"] == target["legalName"] for c in by_name)
    assert [c["id"] for c in by_email] == [target["id"]]


def test_list_and_lookup_by_alias(client: SequenceClient, sandbox: Sandbox) -> None:
    customer_id, alias = next(
        (r["id"], names[0]) for r in sandbox.records() if (names := sandbox.aliases_of(r["id"]))
    )
    assert [c["id"] for c in client.list_customers(alias=alias, includeArchived=True)] == [
        customer_id
    ]
    assert client.get_customer_by_alias(alias)["id"] == customer_id


def test_unknown_filter_is_refused_before_sending(client: SequenceClient) -> None:
    with pytest.raises(TypeError, match="unknown filter 'country'"):
        client.list_customers(country="GB")


def test_get_customer_returns_the_record(client: SequenceClient, sandbox: Sandbox) -> None:
    customer_id = a_customer_id(sandbox, 7)
    assert client.get_customer(customer_id) == sandbox.get_record(customer_id)


def test_customer_ids_are_escaped_in_paths(client: SequenceClient) -> None:
    with pytest.raises(NotFoundError):
        client.get_customer("../customers")


# -- writes --------------------------------------------------------------------------------


def test_update_with_the_seed_example_body(client: SequenceClient, sandbox: Sandbox) -> None:
    customer_id = a_customer_id(sandbox, 11)
    before = sandbox.get_record(customer_id)
    record = client.update_customer(customer_id, SEED_BODY)
    assert record == sandbox.get_record(customer_id)
    assert {k: record[k] for k in SEED_BODY} == SEED_BODY
    # a PUT is a full replacement: what the body leaves out is cleared
    assert "billingEmail" not in record and record["billingEmails"] == []
    assert "telephone" not in record and "label" not in record
    for kept in ("id", "createdAt", "sequenceAccountId", "linkedServices"):
        assert record[kept] == before[kept]


def test_create_customer_answers_the_new_record(client: SequenceClient, sandbox: Sandbox) -> None:
    record = client.create_customer(dict(SEED_BODY, legalName="Brand New Ltd"))
    assert sandbox.get_record(record["id"])["legalName"] == "Brand New Ltd"


def test_invalid_body_is_never_sent(client: SequenceClient, sandbox: Sandbox) -> None:
    puts_before = sandbox.stats.requests["PUT"]
    with pytest.raises(InvalidBodyError, match=r"address\.country 'France' is not an ISO"):
        client.update_customer(
            a_customer_id(sandbox, 12),
            dict(SEED_BODY, address=dict(SEED_BODY["address"], country="France")),
        )
    assert sandbox.stats.requests["PUT"] == puts_before


# -- errors from the sandbox ---------------------------------------------------------------


def test_server_validation_error_is_a_bad_request_naming_the_field(
    sandbox: Sandbox,
) -> None:
    # sent raw, past the client's own validation, to see the server's answer
    with sandbox.client(rate_limit_per_minute=None) as client:
        bad = dict(SEED_BODY, taxStatus="SOMETIMES")
        with pytest.raises(BadRequestError, match="taxStatus") as caught:
            client.request("PUT", f"/customers/{a_customer_id(sandbox, 13)}", json=bad)
    assert caught.value.status_code == 400
    assert caught.value.attempts == 1  # a 400 is not retried


def test_wrong_credentials_raise_an_authentication_error_without_the_secret(
    sandbox: Sandbox,
) -> None:
    secret = "wrong-secret-that-must-not-leak-42"
    with (
        SequenceClient(sandbox.client_id, secret, sandbox.url) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.list_customers()
    assert caught.value.status_code == 401
    text = f"{caught.value} {caught.value!r} {caught.value.message}"
    assert secret not in text
    assert "wrong-secret" not in text


def test_unknown_customer_is_not_found(client: SequenceClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.get_customer("no-such-customer")
    assert caught.value.status_code == 404


def test_reusing_an_idempotency_key_with_another_body_is_a_conflict(
    client: SequenceClient, sandbox: Sandbox
) -> None:
    customer_id = a_customer_id(sandbox, 14)
    client.update_customer(customer_id, dict(SEED_BODY, label="one"), idempotency_key="k-14")
    with pytest.raises(ConflictError):
        client.update_customer(customer_id, dict(SEED_BODY, label="two"), idempotency_key="k-14")
    assert sandbox.get_record(customer_id)["label"] == "one"


def test_same_idempotency_key_and_body_is_applied_once(
    client: SequenceClient, sandbox: Sandbox
) -> None:
    customer_id = a_customer_id(sandbox, 15)
    applied = sandbox.stats.writes_applied[customer_id]
    first = client.send_update(customer_id, SEED_BODY, idempotency_key="k-15")
    second = client.send_update(customer_id, SEED_BODY, idempotency_key="k-15")
    assert first.data == second.data
    assert (first.replayed, second.replayed) == (False, True)
    assert sandbox.stats.writes_applied[customer_id] == applied + 1


def test_rate_limited_answer_carries_retry_after(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=5, rate_limit_per_minute=3)
    with contract_client(server, max_retries=0) as client:
        for _ in range(3):
            client.list_customers()
        with pytest.raises(RateLimitError) as caught:
            client.list_customers()
    assert caught.value.status_code == 429
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1


def test_client_pacing_avoids_429s(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=5, rate_limit_per_minute=1200)
    customer_id = server.records()[0]["id"]
    with contract_client(server, rate_limit_per_minute=1200, max_retries=0) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: client.get_customer(customer_id), range(40)))
        elapsed = time.monotonic() - started
    assert server.stats.rate_limited == 0
    assert elapsed >= 39 * 0.05 * 0.95  # 1,200 a minute is one every 50 ms


def test_one_client_serves_many_threads(client: SequenceClient, sandbox: Sandbox) -> None:
    ids = [record["id"] for record in sandbox.records()[:64]]
    with ThreadPoolExecutor(8) as pool:
        records = list(pool.map(client.get_customer, ids))
    assert [record["id"] for record in records] == ids


def test_faulty_writes_each_land_exactly_once(make_sandbox: SandboxFactory) -> None:
    """100 writes under 25% 5xx, 15% 429 and 15% lost answers: each lands, none twice."""
    server = make_sandbox(
        customers=130,
        seed=9,
        error_rate=0.25,
        rate_limit_rate=0.15,
        lost_answer_rate=0.15,
    )
    dirty = {problem.id for problem in server.planted}
    records = [record for record in server.records() if record["id"] not in dirty][:100]
    assert len(records) == 100
    server.reset_stats()
    options = {"max_retries": 15, "retry_initial_delay": 0.02, "retry_max_delay": 0.3}
    started = time.monotonic()
    with contract_client(server, **options) as client:

        def relabel(record: dict[str, Any]) -> dict[str, Any]:
            body = {k: record[k] for k in SEED_BODY}
            return client.update_customer(record["id"], dict(body, label=f"new {record['id']}"))

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(relabel, records))
    elapsed = time.monotonic() - started
    stats = server.stats
    assert stats.faults_injected > 50, "the faults were really injected"
    assert stats.replays > 0, "some answers were lost and the retry was replayed"
    assert all(a["label"] == f"new {a['id']}" for a in answers)
    assert all(server.get_record(r["id"])["label"] == f"new {r['id']}" for r in records)
    assert {r["id"]: stats.writes_applied[r["id"]] for r in records} == {
        r["id"]: 1 for r in records
    }
    assert elapsed < 30


# -- faults the sandbox does not produce (mock transport) ----------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, APIStatusError),
    ],
)
def test_each_status_raises_its_error_class(status: int, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": f"status {status} said so"})

    with mock_client(answer, max_retries=0) as client, pytest.raises(error) as caught:
        client.get_customer("c-1")
    assert type(caught.value) is error
    assert f"status {status} said so" in str(caught.value)


def test_retries_of_one_write_reuse_its_idempotency_key() -> None:
    keys: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) < 3:
            return httpx.Response(503, json={"message": "busy"})
        return httpx.Response(200, json={"id": "c-1"})

    with mock_client(answer) as client:
        client.update_customer("c-1", SEED_BODY)
        client.update_customer("c-1", SEED_BODY)
    assert len(keys) == 4
    assert keys[0] == keys[1] == keys[2] != keys[3]


def test_retry_after_is_honoured() -> None:
    calls: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.3"}, json={})
        return httpx.Response(200, json={"id": "c-1"})

    with mock_client(answer) as client:
        client.get_customer("c-1")
    assert calls[1] - calls[0] >= 0.3


def test_a_retry_after_longer_than_the_cap_fails_at_once() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "86400"}, json={"message": "slow"})

    started = time.monotonic()
    with mock_client(answer, max_retry_after=5) as client, pytest.raises(RateLimitError) as caught:
        client.get_customer("c-1")
    assert time.monotonic() - started < 1
    assert "86400" in str(caught.value) and "max_retry_after=5" in str(caught.value)


def test_gives_up_after_max_retries_and_says_how_often_it_tried() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with mock_client(answer, max_retries=2) as client, pytest.raises(APIConnectionError) as caught:
        client.get_customer("c-1")
    assert caught.value.attempts == 3
    assert "after 3 attempts" in str(caught.value)


def test_backoff_grows_and_is_capped() -> None:
    with mock_client(
        lambda r: httpx.Response(200, json={}), retry_initial_delay=0.5, retry_max_delay=2.0
    ) as client:
        error = ServerError("x", status_code=500)
        delays = [client._retry_delay(error, attempt) for attempt in (1, 2, 3)]
        client.max_retries = 10
        late = client._retry_delay(error, 9)
    assert delays[2] is None  # max_retries=2 by default
    assert 0.5 * 0.75 <= (delays[0] or 0) <= 0.5
    assert 1.0 * 0.75 <= (delays[1] or 0) <= 1.0
    assert late is not None and 2.0 * 0.75 <= late <= 2.0


def test_a_repeated_cursor_stops_paging() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": "a"}], "pagination": {"after": "same"}})

    with mock_client(answer) as client, pytest.raises(PaginationError, match="second time"):
        client.list_customers()


def test_a_page_without_items_is_an_unexpected_response() -> None:
    with (
        mock_client(lambda r: httpx.Response(200, json={"pagination": {}})) as client,
        pytest.raises(UnexpectedResponseError, match="'items'"),
    ):
        client.list_customers()


def test_an_html_error_page_is_described_not_dumped() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, content=page, headers={"Content-Type": "text/html"})

    with mock_client(answer, max_retries=0) as client, pytest.raises(ServerError) as caught:
        client.get_customer("c-1")
    assert "HTML page ('502 Bad Gateway')" in str(caught.value)


def test_server_messages_never_echo_credentials() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        echoed = request.headers["Authorization"]
        return httpx.Response(401, json={"message": f"bad header {echoed}"})

    with mock_client(answer) as client, pytest.raises(AuthenticationError) as caught:
        client.get_customer("c-1")
    assert "[REDACTED]" in str(caught.value)
    assert "Basic " + client._auth.token() not in str(caught.value)


# -- set-up --------------------------------------------------------------------------------


def test_credentials_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEQUENCE_CLIENT_ID", "env-id")
    monkeypatch.setenv("SEQUENCE_CLIENT_SECRET", "env-secret-value")
    monkeypatch.setenv("SEQUENCE_BASE_URL", "http://127.0.0.1:9/api/")
    client = SequenceClient()
    assert repr(client) == "SequenceClient(base_url='http://127.0.0.1:9/api', client_id='env-id')"


def test_the_base_url_defaults_to_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEQUENCE_BASE_URL", raising=False)
    client = SequenceClient("id", "secret")
    assert client.base_url == SequenceClient.production_url == "https://eu.sequencehq.com/api"
    assert SequenceClient.sandbox_url == "https://sandbox.sequencehq.com/api"


@pytest.mark.parametrize("missing", ["SEQUENCE_CLIENT_ID", "SEQUENCE_CLIENT_SECRET"])
def test_missing_credentials_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setenv("SEQUENCE_CLIENT_ID", "id")
    monkeypatch.setenv("SEQUENCE_CLIENT_SECRET", "secret")
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=missing):
        SequenceClient()


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be an http"):
        SequenceClient("id", "secret", "eu.sequencehq.com/api")


def test_a_base_url_without_api_says_what_to_fix() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SequenceClient("id", "secret", "https://eu.sequencehq.com")
    assert str(caught.value) == (
        "SEQUENCE_BASE_URL must end with /api (the API lives there), "
        "e.g. https://eu.sequencehq.com/api, not 'https://eu.sequencehq.com'"
    )


def test_an_unreachable_host_is_one_line_that_names_the_setting() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    with (
        SequenceClient("id", "secret", url, max_retries=0) as client,
        pytest.raises(APIConnectionError) as caught,
    ):
        client.list_customers()
    message = str(caught.value)
    assert "\n" not in message
    assert f"could not connect to {url}" in message and "check SEQUENCE_BASE_URL" in message
