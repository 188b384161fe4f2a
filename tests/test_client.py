"""SequenceClient against the sandbox over real sockets (mock transports only for faults)."""

from __future__ import annotations

import gzip
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sequence_nb import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InvalidBodyError,
    InvalidIdError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    SequenceClient,
    ServerError,
    UnexpectedResponseError,
    fields,
)
from sequence_nb.errors import UnsupportedOperationError
from sequence_nb.fields import UnknownApiVersionError
from sequence_nb.models import update_body_of
from sequence_nb.sandbox import Sandbox
from tests import contract
from tests.conftest import SandboxFactory, contract_client
from tests.contract import VALIDATED_BODIES, ContractViolation, check_request
from tests.hostile_server import Script, hostile_server
from tests.hostile_server import answer as raw_answer
from tests.seed import SEED_BODY

Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(handler: Handler, **options: Any) -> SequenceClient:
    """A client over a mock transport: for fault cases the sandbox cannot produce."""
    if "retry_policy" not in options:
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
    # 100 a page, from both ends; the halves abut, so one more page confirms they met.
    assert server.stats.requests["GET"] == 11


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


def test_customer_ids_are_escaped_in_paths(client: SequenceClient, sandbox: Sandbox) -> None:
    gets = sandbox.stats.requests["GET"]
    with pytest.raises(NotFoundError, match=r"id \?x=1#\.\. %2F"):
        client.get_customer("?x=1#.. %2F")
    assert sandbox.stats.requests["GET"] == gets + 1


@pytest.mark.parametrize("bad_id", ["", ".", "..", "a/b", "../customers", "/", "c-1/.."])
def test_ids_that_would_change_the_path_are_refused_before_any_request(
    client: SequenceClient, sandbox: Sandbox, bad_id: str
) -> None:
    before = sandbox.stats.requests.copy()
    calls: list[Callable[[], object]] = [
        lambda: client.get_customer(bad_id),
        lambda: client.update_customer(bad_id, SEED_BODY),
        lambda: client.send_update(bad_id, SEED_BODY),
        lambda: client.get_customer_by_alias(bad_id),
    ]
    for call in calls:
        with pytest.raises(InvalidIdError, match=re.escape(repr(bad_id))) as caught:
            call()
        assert isinstance(caught.value, ValueError)
    assert sandbox.stats.requests == before


def test_a_record_with_another_id_is_an_unexpected_response_naming_both() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "c-2", "legalName": "Someone else"})

    with mock_client(answer) as client:
        with pytest.raises(UnexpectedResponseError, match=r"'c-2'.*'c-1'|'c-1'.*'c-2'"):
            client.get_customer("c-1")
        with pytest.raises(UnexpectedResponseError, match=r"'c-2'.*'c-1'|'c-1'.*'c-2'") as put:
            client.update_customer("c-1", SEED_BODY)
        assert put.value.maybe_applied  # a 2xx answered: something may have been written


def test_a_record_without_an_id_is_an_unexpected_response() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"legalName": "no id"})

    with mock_client(answer) as client, pytest.raises(UnexpectedResponseError, match="'c-1'"):
        client.get_customer("c-1")


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


def test_create_sends_the_billing_emails_the_published_document_requires(
    client: SequenceClient, sandbox: Sandbox
) -> None:
    one = client.create_customer(dict(SEED_BODY, billingEmail="ap@one.example"))
    assert VALIDATED_BODIES[-1]["billingEmails"] == ["ap@one.example"]
    assert "billingEmail" not in VALIDATED_BODIES[-1]
    none = client.create_customer(SEED_BODY)
    assert VALIDATED_BODIES[-1]["billingEmails"] == []
    two = client.create_customer(dict(SEED_BODY, billingEmails=["a@two.example", "b@two.example"]))
    assert VALIDATED_BODIES[-1]["billingEmails"] == ["a@two.example", "b@two.example"]
    assert sandbox.get_record(one["id"])["billingEmails"] == ["ap@one.example"]
    assert sandbox.get_record(none["id"])["billingEmails"] == []
    stored = sandbox.get_record(two["id"])
    assert stored["billingEmails"] == ["a@two.example", "b@two.example"]
    assert stored["billingEmail"] == "a@two.example"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (dict(SEED_BODY, paymentReference="R-1"), r"paymentReference is not a field of the create"),
        (dict(SEED_BODY, billingEmails=["nope"]), r"billingEmails\.0 'nope' is not an email"),
        (
            dict(SEED_BODY, billingEmail="a@x.example", billingEmails=["b@x.example"]),
            r"billingEmail.*not both",
        ),
    ],
)
def test_a_create_body_outside_the_published_document_is_never_sent(
    client: SequenceClient, sandbox: Sandbox, body: dict[str, Any], problem: str
) -> None:
    posts = sandbox.stats.requests["POST"]
    with pytest.raises(InvalidBodyError, match=problem):
        client.create_customer(body)
    assert sandbox.stats.requests["POST"] == posts


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"billingEmails": ["not an address"]}, "billingEmails"),
        ({"billingEmails": "ap@x.example"}, "billingEmails"),
        ({"billingEmails": ["ap@x.example"], "billingEmail": "other@x.example"}, "billingEmail"),
    ],
)
def test_the_sandbox_refuses_a_create_with_bad_billing_emails(
    sandbox: Sandbox, extra: dict[str, Any], field: str
) -> None:
    # sent raw, past the client's own validation, to see the server's answer
    with (
        sandbox.client(rate_limit_per_minute=None) as client,
        pytest.raises(BadRequestError, match=f"{field}: ") as caught,
    ):
        client._request("POST", "/customers", json=dict(SEED_BODY, **extra))
    assert caught.value.maybe_applied is False


def test_the_contract_checks_creates_by_the_published_document_and_updates_by_the_seed() -> None:
    url = "http://127.0.0.1/api/customers"
    auth = {"Authorization": "Basic eDp5"}
    check_request(httpx.Request("POST", url, json=dict(SEED_BODY, billingEmails=[]), headers=auth))
    with pytest.raises(ContractViolation, match="billingEmails"):
        check_request(httpx.Request("POST", url, json=SEED_BODY, headers=auth))
    with pytest.raises(ContractViolation, match="billingEmail"):
        body = dict(SEED_BODY, billingEmails=[], billingEmail="a@b.example")
        check_request(httpx.Request("POST", url, json=body, headers=auth))
    check_request(httpx.Request("PUT", f"{url}/c-1", json=SEED_BODY, headers=auth))
    with pytest.raises(ContractViolation, match="billingEmails"):
        body = dict(SEED_BODY, billingEmails=["a@b.example"])
        check_request(httpx.Request("PUT", f"{url}/c-1", json=body, headers=auth))


def test_the_published_documents_the_tests_use_are_kept_in_the_repository() -> None:
    tests = Path(__file__).resolve().parent
    assert contract.SPEC_PATH.is_relative_to(tests / "openapi")
    for version in ("2023-11-23", "2024-01-01", "2024-07-30"):
        document = tests / "openapi" / f"sequence-customers-openapi-{version}.json"
        assert orjson.loads(document.read_bytes())["openapi"].startswith("3.")
    assert "Sequence" in (tests / "openapi" / "README.md").read_text()


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
            client._request("PUT", f"/customers/{a_customer_id(sandbox, 13)}", json=bad)
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


def test_waits_longer_than_an_hour_are_refused_before_any_call_can_overflow_a_sleep() -> None:
    """time.sleep and Event.wait raise OverflowError on a huge finite wait: an hour is the most."""
    hour = {"retry_initial_delay": 3600, "retry_max_delay": 3600.0, "max_retry_after": 3600.0}
    with mock_client(lambda r: httpx.Response(200, json={}), **hour) as client:
        assert client.retry_policy == RetryPolicy(2, 3600, 3600.0, 3600.0)
    for name in hour:
        with pytest.raises(ValueError, match=rf"^{name} must be .* at most 3600 seconds"):
            SequenceClient("id", "secret-value-1", "http://127.0.0.1:9/api", **{name: 3601.0})


def test_the_retry_keywords_build_the_policy_and_a_policy_can_be_given() -> None:
    with mock_client(
        lambda r: httpx.Response(200, json={}),
        max_retries=5,
        retry_initial_delay=0.25,
        retry_max_delay=3.0,
        max_retry_after=9.0,
    ) as client:
        assert client.retry_policy == RetryPolicy(5, 0.25, 3.0, 9.0)
        assert client.max_retries == 5
    policy = RetryPolicy(max_retries=0)
    with mock_client(lambda r: httpx.Response(503), retry_policy=policy) as client:
        assert client.retry_policy is policy
        with pytest.raises(ServerError) as caught:
            client.get_customer("c-1")
    assert caught.value.attempts == 1


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


def test_plain_http_to_a_remote_host_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http=True") as caught:
        SequenceClient("id", "secret-value-1", "http://eu.sequencehq.com/api")
    assert "https://" in str(caught.value)
    client = SequenceClient(
        "id", "secret-value-1", "http://eu.sequencehq.com/api", allow_insecure_http=True
    )
    assert client.base_url == "http://eu.sequencehq.com/api"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/api",
        "http://127.9.8.7/api",
        "http://localhost:8765/api",
        "http://[::1]:8765/api",
        "https://eu.sequencehq.com/api",
    ],
)
def test_plain_http_to_loopback_and_https_anywhere_are_accepted(url: str) -> None:
    assert SequenceClient("id", "secret-value-1", url).base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "https://ops:hunter2-pass@eu.sequencehq.com/api",
        "https://ops@eu.sequencehq.com/api",
        "http://ops:hunter2-pass@127.0.0.1:8765/api",
        "https://ops:hunter2-pass@eu.sequencehq.com",
        "ftp://ops:hunter2-pass@eu.sequencehq.com/api",
        "http://ops:hunter2-pass@eu.sequencehq.com/api",
        "https://ops:hunter2/pass@eu.sequencehq.com/api",
        "https://ops:hunter2-pass@[::1/api",
    ],
)
def test_credentials_in_the_base_url_are_refused_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SequenceClient("id", "secret-value-1", url)
    message = str(caught.value)
    assert "hunter2" not in message and "ops" not in message
    if url.startswith(("https", "http")) and url.endswith("/api"):
        assert "SEQUENCE_CLIENT_ID" in message and "SEQUENCE_CLIENT_SECRET" in message
    monkeypatch.setenv("SEQUENCE_BASE_URL", url)
    with pytest.raises(ConfigurationError) as from_env:
        SequenceClient("id", "secret-value-1")
    assert "hunter2" not in str(from_env.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://eu.sequencehq.com/api?x=/api",
        "https://eu.sequencehq.com/x?token=SECRET-123&y=/api",
        "https://eu.sequencehq.com/api#SECRET-123/api",
        "https://eu.sequencehq.com/api/?token=SECRET-123",
        "http://127.0.0.1:8765/api?token=SECRET-123#/api",
    ],
)
def test_a_base_url_with_a_query_or_fragment_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="query or fragment") as caught:
        SequenceClient("id", "secret-value-1", url)
    assert "SECRET-123" not in str(caught.value) and "token" not in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("rate_limit_per_minute", float("nan")),
        ("rate_limit_per_minute", float("inf")),
        ("rate_limit_per_minute", 0.5),
        ("rate_limit_per_minute", "1500"),
        ("timeout", -1.0),
        ("timeout", 0),
        ("timeout", float("nan")),
        ("timeout", float("inf")),
        ("answer_deadline", float("inf")),
        ("answer_deadline", float("nan")),
        ("answer_deadline", True),
        ("allow_insecure_http", "no"),
        ("allow_insecure_http", 1),
        ("max_retries", True),
        ("max_retries", 2.5),
        ("page_size", True),
        ("page_size", 50.5),
        ("retry_initial_delay", float("inf")),
        ("retry_max_delay", float("nan")),
        ("max_retry_after", float("inf")),
        ("retry_initial_delay", 1e300),
        ("retry_max_delay", 3600.5),
        ("max_retry_after", 1e300),
    ],
)
def test_odd_settings_are_refused_naming_the_argument(setting: str, value: object) -> None:
    options: dict[str, Any] = {setting: value}
    with pytest.raises(ValueError, match=rf"^{setting} must be .*, not {re.escape(repr(value))}"):
        SequenceClient("id", "secret-value-1", "http://127.0.0.1:9/api", **options)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_this_machine_is_never_reached_through_a_proxy(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    record = {"id": "c-1", "legalName": "Direct Ltd"}
    with (
        hostile_server(Script([raw_answer("502 Bad Gateway", b"{}")])) as proxy,
        hostile_server(Script([raw_answer("200 OK", orjson.dumps(record))])) as target,
    ):
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url.removesuffix("/api"))
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        url = target.url.replace("127.0.0.1", host)
        with SequenceClient("id", "secret-value-1", url, max_retries=0) as client:
            assert client.get_customer("c-1") == record
        assert proxy.requests == [] and len(target.requests) == 1


def test_another_host_is_reached_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with hostile_server(Script([raw_answer("403 Forbidden", b"")])) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.removesuffix("/api"))
        for name in ("https_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        with (
            SequenceClient("id", "secret-value-1", max_retries=0) as client,
            pytest.raises(APIConnectionError, match="ProxyError"),
        ):
            client.get_customer("c-1")
        (tunnel,) = proxy.requests
    assert tunnel.startswith(b"CONNECT eu.sequencehq.com:443 ")
    assert b"authorization" not in tunnel.lower()  # the credentials go inside the tunnel


# -- bounded waits -------------------------------------------------------------------------


def test_a_server_that_never_answers_is_cut_off_by_the_answer_deadline() -> None:
    silent = Script([b"", b""], pause=8.0)  # reads the request, then says nothing for 8 s
    with hostile_server(silent) as server:
        started = time.monotonic()
        with (
            SequenceClient(
                "id", "secret-value-1", server.url, timeout=5.0, answer_deadline=1.0, max_retries=0
            ) as client,
            pytest.raises(APITimeoutError, match="1 s") as caught,
        ):
            client.get_customer("c-1")
        elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"waited {elapsed:.2f} s with answer_deadline=1"
    assert "answer_deadline" in str(caught.value)


def test_the_answer_deadline_bounds_each_attempt_of_a_retried_write() -> None:
    silent = Script([b"", b""], pause=8.0)
    with hostile_server(silent) as server:
        started = time.monotonic()
        with (
            SequenceClient(
                "id",
                "secret-value-1",
                server.url,
                answer_deadline=0.5,
                max_retries=2,
                retry_initial_delay=0.01,
                rate_limit_per_minute=None,
            ) as client,
            pytest.raises(APITimeoutError) as caught,
        ):
            client.update_customer("c-1", SEED_BODY)
        elapsed = time.monotonic() - started
        assert len(server.requests) == 3
    assert elapsed < 3 * 0.5 + 0.6
    assert caught.value.attempts == 3 and caught.value.maybe_applied


def test_a_body_that_stalls_after_its_first_byte_ends_at_the_deadline() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    stalls = Script([head, b"{", *[b""] * 8], pause=0.4)  # "{" at 0.4 s, then nothing
    with hostile_server(stalls) as server:
        started = time.monotonic()
        with (
            SequenceClient("id", "secret-value-1", server.url, answer_deadline=1.0) as client,
            pytest.raises(APITimeoutError, match="longer than 1 s"),
        ):
            client.send_update("c-1", SEED_BODY, retry=False)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.3, f"waited {elapsed:.2f} s with answer_deadline=1"


def test_an_answer_larger_than_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sequence_nb.client.MAX_ANSWER_BYTES", 1000)

    def declared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "5000"}, content=b"x" * 5000)

    def streamed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"[" + b" " * 600] * 3))

    for answer in (declared, streamed):
        with (
            mock_client(answer, max_retries=0) as client,
            pytest.raises(APIConnectionError, match="larger than 1000 bytes"),
        ):
            client.get_customer("c-1")


def test_a_compressed_answer_is_read() -> None:
    record = {"id": "c-1", "legalName": "Zipped Ltd " + "x" * 2000}
    packed = gzip.compress(orjson.dumps(record))
    script = Script([raw_answer("200 OK", packed, Content_Encoding="gzip")])
    with hostile_server(script) as server:
        with SequenceClient("id", "secret-value-1", server.url) as client:
            assert client.get_customer("c-1") == record
        assert b"gzip" in server.requests[0].lower()  # the client asked for it


def test_a_compressed_answer_that_inflates_past_the_cap_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sequence_nb.client.MAX_ANSWER_BYTES", 1000)
    packed = gzip.compress(b"[" + b" " * 100_000 + b"]")
    assert len(packed) < 1000

    def bomb(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=packed)

    with (
        mock_client(bomb, max_retries=0) as client,
        pytest.raises(APIConnectionError, match="larger than 1000 bytes"),
    ):
        client.get_customer("c-1")


# -- writes: maybe applied, one attempt, pre-paid calls ------------------------------------


@pytest.mark.parametrize(
    ("faults", "error", "applied", "maybe_applied"),
    [
        ({"drop_rate": 1.0}, APIConnectionError, 0, True),
        ({"lost_answer_rate": 1.0}, APIConnectionError, 1, True),
        ({"error_rate": 1.0}, ServerError, 0, True),
        ({"rate_limit_rate": 1.0}, RateLimitError, 0, False),
    ],
)
def test_a_failed_write_says_whether_it_may_have_been_applied(
    make_sandbox: SandboxFactory,
    faults: dict[str, float],
    error: type[Exception],
    applied: int,
    maybe_applied: bool,
) -> None:
    server = make_sandbox(customers=3, seed=4)
    customer_id = server.records()[0]["id"]
    server.set_faults(**faults)
    with contract_client(server, max_retries=0) as client, pytest.raises(APIError) as caught:
        client.update_customer(customer_id, SEED_BODY)
    assert type(caught.value) is error
    assert caught.value.maybe_applied is maybe_applied
    assert server.stats.writes_applied[customer_id] == applied


def test_a_rejected_write_and_a_failed_read_were_not_applied(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=3, seed=4)
    customer_id = server.records()[0]["id"]
    # sent raw, past the client's validation and the contract check, for the server's 400
    with server.client() as client, pytest.raises(BadRequestError) as rejected:
        client._request("PUT", f"/customers/{customer_id}", json=dict(SEED_BODY, taxStatus="NO"))
    assert rejected.value.maybe_applied is False
    server.set_faults(error_rate=1.0)
    with contract_client(server, max_retries=0) as client, pytest.raises(ServerError) as read:
        client.get_customer(customer_id)
    assert read.value.maybe_applied is False


def test_a_write_that_may_have_landed_once_stays_maybe_applied_after_a_rejection() -> None:
    statuses = iter([503, 409])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses), json={"message": "busy, then refused"})

    with mock_client(answer) as client, pytest.raises(ConflictError) as caught:
        client.update_customer("c-1", SEED_BODY)
    assert caught.value.attempts == 2 and caught.value.maybe_applied


def test_a_write_that_could_not_connect_was_not_applied_and_an_unreadable_2xx_may_have_been() -> (
    None
):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    with (
        SequenceClient("id", "secret-value-1", url, max_retries=0) as client,
        pytest.raises(APIConnectionError, match="could not connect") as refused,
    ):
        client.update_customer("c-1", SEED_BODY)
    assert refused.value.maybe_applied is False

    with (
        mock_client(lambda r: httpx.Response(200, content=b"<html>ok</html>")) as client,
        pytest.raises(UnexpectedResponseError, match="not JSON") as unreadable,
    ):
        client.update_customer("c-1", SEED_BODY)
    assert unreadable.value.maybe_applied is True


@pytest.mark.parametrize("answer", [b"[]", b'"ok"', b"1", b"null"])
def test_a_write_answered_2xx_with_json_that_is_no_record_may_have_been_applied(
    answer: bytes,
) -> None:
    with (
        mock_client(lambda r: httpx.Response(200, content=answer)) as client,
        pytest.raises(UnexpectedResponseError, match="a JSON object") as caught,
    ):
        client.update_customer("c-1", SEED_BODY)
    assert caught.value.maybe_applied is True  # the server said 200: it may have written
    with (
        mock_client(lambda r: httpx.Response(200, content=answer)) as client,
        pytest.raises(UnexpectedResponseError, match="a JSON object") as read,
    ):
        client.get_customer("c-1")
    assert read.value.maybe_applied is False


def test_send_update_without_retry_makes_exactly_one_attempt(make_sandbox: SandboxFactory) -> None:
    server = make_sandbox(customers=3, seed=5, lost_answer_rate=1.0)
    customer_id = server.records()[0]["id"]
    server.reset_stats()
    with contract_client(server, max_retries=5, retry_initial_delay=0.01) as client:
        with pytest.raises(APIConnectionError) as caught:
            client.send_update(customer_id, SEED_BODY, retry=False)
        assert server.stats.requests["PUT"] == 1
        assert caught.value.attempts == 1 and caught.value.maybe_applied
        server.set_faults(lost_answer_rate=0.0)
        key = "one-attempt-key"
        assert client.send_update(customer_id, SEED_BODY, key, retry=False).attempts == 1


def test_reserved_calls_go_out_back_to_back_for_the_reserving_thread_only(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=3, seed=6)
    customer_id = server.records()[0]["id"]
    with contract_client(server, rate_limit_per_minute=300) as client:  # one call every 0.2 s
        client.get_customer(customer_id)
        waited = client.reserve_calls(2)
        started = time.monotonic()
        client.get_customer(customer_id)
        record = client.get_customer(customer_id)
        back_to_back = time.monotonic() - started
        elsewhere: list[float] = []
        other = threading.Thread(target=lambda: elsewhere.append(client.reserve_calls(1)))
        other.start()
        other.join()
        started = time.monotonic()
        client.get_customer(customer_id)  # not pre-paid: waits its slot
        third = time.monotonic() - started
    assert record["id"] == customer_id
    assert 0.2 <= waited < 0.45  # the second slot of the pair is 0.4 s after the first call
    assert back_to_back < 0.1
    assert elsewhere and elsewhere[0] >= 0.1
    assert third >= 0.15
    assert server.stats.rate_limited == 0


# -- API version 2024-07-30 ----------------------------------------------------------------


def v2024_sandbox(make_sandbox: SandboxFactory, customers: int = 30) -> Sandbox:
    return make_sandbox(customers=customers, seed=6, api_version="2024-07-30")


def us_customer(server: Sandbox) -> dict[str, Any]:
    return next(
        r
        for r in server.records()
        if r["address"]["country"] == "US" and "archivedAt" not in r and r["contacts"]
    )


def test_the_api_version_comes_from_the_argument_else_the_environment_else_the_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = ("id", "secret-value-0123", "http://127.0.0.1:9/api")
    monkeypatch.delenv("SEQUENCE_API_VERSION", raising=False)
    assert SequenceClient(*credentials).api_version is fields.SEED
    monkeypatch.setenv("SEQUENCE_API_VERSION", "2024-07-30")
    from_env = SequenceClient(*credentials)
    assert from_env.api_version is fields.V2024_07_30
    assert "api_version='2024-07-30'" in repr(from_env)
    assert SequenceClient(*credentials, api_version="seed").api_version is fields.SEED
    monkeypatch.setenv("SEQUENCE_API_VERSION", "2099-01-01")
    with pytest.raises(
        UnknownApiVersionError, match=r"'2099-01-01' \(from \$SEQUENCE_API_VERSION\)"
    ):
        SequenceClient(*credentials)
    with pytest.raises(UnknownApiVersionError, match="speaks seed, 2024-07-30"):
        SequenceClient(*credentials, api_version="2024-05-09")


def test_every_request_carries_the_version_header_the_sandbox_checks(
    make_sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    current, seed = v2024_sandbox(make_sandbox), make_sandbox(customers=5)
    monkeypatch.setenv("SEQUENCE_API_VERSION", "2024-07-30")
    with (
        SequenceClient(seed.client_id, seed.client_secret, seed.url) as wrong,
        pytest.raises(BadRequestError, match="'2024-07-30' is not a version this sandbox"),
    ):
        wrong.list_customers()
    monkeypatch.delenv("SEQUENCE_API_VERSION")
    with SequenceClient(current.client_id, current.client_secret, current.url) as plain:
        assert plain.api_version is fields.SEED
        assert "contacts" in plain.get_customer(current.records()[0]["id"])  # served as its own
    with contract_client(current) as client:
        records = client.list_customers()
    assert records and all("customProperties" in r for r in records)
    assert current.stats.statuses[400] == 0


def test_a_us_customer_without_a_state_is_refused_before_sending(
    make_sandbox: SandboxFactory,
) -> None:
    server = v2024_sandbox(make_sandbox)
    record = us_customer(server)
    with contract_client(server) as client:
        body = update_body_of(client.get_customer(record["id"]), fields.V2024_07_30)
        del body["address"]["state"]
        server.reset_stats()
        with pytest.raises(
            InvalidBodyError, match=r"address\.state is required for an address in US"
        ):
            client.update_customer(record["id"], body)
        with pytest.raises(InvalidBodyError, match="contacts"):
            client.update_customer(record["id"], {**body, "contacts": None})
    assert server.stats.total_requests == 0
    assert server.get_record(record["id"]) == record


def test_a_2024_write_lands_with_its_contacts_and_properties(make_sandbox: SandboxFactory) -> None:
    server = v2024_sandbox(make_sandbox)
    record = us_customer(server)
    with contract_client(server) as client:
        body = update_body_of(client.get_customer(record["id"]), fields.V2024_07_30)
        body["contacts"][0]["email"] = "new.address@example.org"
        body["contacts"][0]["billingPreference"] = "PRIMARY"
        body["customProperties"] = {**record["customProperties"], "tier": "platinum"}
        answer = client.update_customer(record["id"], body)
    assert answer["contacts"][0]["email"] == "new.address@example.org"
    assert [c["id"] for c in answer["contacts"][1:]] == [c["id"] for c in record["contacts"][1:]]
    assert answer["customProperties"] == {**record["customProperties"], "tier": "platinum"}
    assert server.get_record(record["id"]) == answer


def test_a_2024_create_sends_the_update_body_and_reads_the_bare_record(
    make_sandbox: SandboxFactory,
) -> None:
    server = v2024_sandbox(make_sandbox)
    body = {
        "legalName": "Northwind Outfitters Inc.",
        "address": {
            "line1": "500 Pine Street",
            "town": "Seattle",
            "state": "WA",
            "postcode": "98101",
            "country": "US",
        },
        "taxStatus": "TAXED",
        "contacts": [
            {
                "name": "Ryan Clark",
                "email": "ryan@northwind.example",
                "billingPreference": "PRIMARY",
            }
        ],
    }
    with contract_client(server) as client:
        made = client.create_customer(body)
        with pytest.raises(InvalidBodyError, match="invalid create body: contacts"):
            client.create_customer({k: v for k, v in body.items() if k != "contacts"})
    assert made == server.get_record(made["id"])
    assert made["status"] == "ACTIVE" and made["customProperties"] == {}
    assert [c["email"] for c in made["contacts"]] == ["ryan@northwind.example"]


def test_archive_lands_and_the_customer_leaves_the_default_listing(
    make_sandbox: SandboxFactory,
) -> None:
    server = v2024_sandbox(make_sandbox)
    record = us_customer(server)
    with contract_client(server) as client:
        before = {r["id"] for r in client.list_customers()}
        archived = client.archive_customer(record["id"])
        after = {r["id"] for r in client.list_customers()}
    assert archived["id"] == record["id"] and archived["archivedAt"]
    assert server.get_record(record["id"])["archivedAt"] == archived["archivedAt"]
    assert before - after == {record["id"]}


def test_archive_is_refused_without_sending_in_the_seed_version(
    make_sandbox: SandboxFactory,
) -> None:
    server = make_sandbox(customers=3)
    with (
        contract_client(server) as client,
        pytest.raises(UnsupportedOperationError, match="speaks 'seed': nothing was sent"),
    ):
        client.archive_customer(server.records()[0]["id"])
    assert server.stats.total_requests == 0


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"id": "other", "archivedAt": "2025-01-01T00:00:00Z"}, "the record of 'other'"),
        ({"id": "c-1"}, "archivedAt is None"),
        ({"id": "c-1", "archivedAt": ""}, "archivedAt is ''"),
    ],
)
def test_an_archive_answer_that_is_not_the_customer_archived_is_unexpected(
    answer: dict[str, Any], problem: str
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=answer)

    with (
        mock_client(handler, api_version="2024-07-30") as client,
        pytest.raises(UnexpectedResponseError, match=re.escape(problem)) as caught,
    ):
        client.archive_customer("c-1")
    assert caught.value.maybe_applied
    assert [(r.method, r.url.path) for r in sent] == [("POST", "/api/customers/c-1/archive")]
    assert sent[0].headers["Sequence-Version"] == "2024-07-30"
    assert sent[0].headers["Idempotency-Key"]


def test_label_and_billing_status_filter_in_2024_and_are_refused_by_the_seed(
    make_sandbox: SandboxFactory,
) -> None:
    server = v2024_sandbox(make_sandbox, customers=60)
    label = server.records()[0]["label"]
    with contract_client(server) as client:
        labelled = client.list_customers(label=label)
        active = client.list_customers(billingStatus="ACTIVE")
        with pytest.raises(ValueError, match="billingStatus must be 'ACTIVE' or 'INACTIVE'"):
            client.list_customers(billingStatus="active")
    assert labelled and all(r["label"] == label for r in labelled)
    assert 0 < len(active) < 60
    with contract_client(server, api_version="seed") as seed_client:
        with pytest.raises(TypeError, match="'label' is not in API version 'seed'"):
            seed_client.list_customers(label=label)
        with pytest.raises(TypeError, match="'billing_status' is not in API version 'seed'"):
            seed_client.list_customers(billing_status="ACTIVE")
