"""The client against a server that answers badly: typed errors, bounded waits, no hang,
and a journal that never keeps a half-written row."""

from __future__ import annotations

import gzip
import re
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import orjson
import polars as pl
import pytest

from sequence_nb import (
    APIConnectionError,
    APITimeoutError,
    RateLimitError,
    SequenceClient,
    ServerError,
    UnexpectedResponseError,
)
from sequence_nb.frames import to_frame
from sequence_nb.journal import Journal
from sequence_nb.plan import plan_updates
from sequence_nb.sandbox.data import generate_customers
from tests.hostile_server import HostileServer, Script, answer, hostile_server

RECORD = next(r for r in generate_customers(20, seed=41)[0] if "label" in r)


def client_of(server: HostileServer, **options: object) -> SequenceClient:
    options.setdefault("retry_initial_delay", 0.01)
    options.setdefault("rate_limit_per_minute", None)
    return SequenceClient("hostile-id", "hostile-secret-123", server.url, **options)  # type: ignore[arg-type]


def test_malformed_json_is_an_unexpected_response_not_retried() -> None:
    with hostile_server(Script([answer("200 OK", b'{"id": "c-1", ')])) as server:
        with client_of(server) as client, pytest.raises(UnexpectedResponseError, match="not JSON"):
            client.get_customer("c-1")
        assert len(server.requests) == 1


def test_an_html_gateway_page_is_named_and_retried_a_bounded_number_of_times() -> None:
    page = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>"
    script = Script([answer("502 Bad Gateway", page, content_type="text/html")])
    with hostile_server(script) as server:
        with client_of(server, max_retries=3) as client, pytest.raises(ServerError) as caught:
            client.get_customer("c-1")
        assert len(server.requests) == 4
    assert "an HTML page ('502 Bad Gateway')" in str(caught.value)
    assert caught.value.attempts == 4


@pytest.mark.parametrize(
    ("status", "error"),
    [("500 Internal Server Error", ServerError), ("200 OK", UnexpectedResponseError)],
)
def test_an_empty_body_is_a_typed_error(status: str, error: type[Exception]) -> None:
    with (
        hostile_server(Script([answer(status, b"")])) as server,
        client_of(server, max_retries=1) as client,
        pytest.raises(error, match=r"empty body|not JSON"),
    ):
        client.get_customer("c-1")


def test_a_page_without_items_is_an_unexpected_response() -> None:
    body = orjson.dumps({"pagination": {"totalResultSize": 3}})
    with (
        hostile_server(Script([answer("200 OK", body)])) as server,
        client_of(server) as client,
        pytest.raises(UnexpectedResponseError, match="'items'"),
    ):
        client.list_customers()


def test_a_huge_retry_after_fails_at_once() -> None:
    script = Script([answer("429 Too Many Requests", b"{}", Retry_After="999999")])
    with hostile_server(script) as server:
        started = time.monotonic()
        with client_of(server) as client, pytest.raises(RateLimitError, match="max_retry_after=60"):
            client.get_customer("c-1")
        assert time.monotonic() - started < 2
        assert len(server.requests) == 1


def test_a_trickling_answer_is_cut_off_by_the_answer_deadline() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
    script = Script([head, *[b" "] * 100], pause=0.2)
    with hostile_server(script) as server:
        started = time.monotonic()
        with (
            client_of(server, answer_deadline=1.0, max_retries=1) as client,
            pytest.raises(APITimeoutError, match="longer than 1 s"),
        ):
            client.get_customer("c-1")
        elapsed = time.monotonic() - started
    assert elapsed < 2 * 1.0 + 0.4  # two attempts, each ended at its deadline


def test_a_connection_reset_mid_body_is_a_connection_error() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    with hostile_server(Script([head, b'{"id": "c-'], reset=True)) as server:
        with (
            client_of(server, max_retries=2) as client,
            pytest.raises(APIConnectionError) as caught,
        ):
            client.get_customer("c-1")
        assert len(server.requests) == 3
    assert caught.value.attempts == 3


def test_a_write_cut_short_leaves_a_finished_journal_row(tmp_path: Path) -> None:
    original = to_frame([RECORD])
    plan = plan_updates(original, original.with_columns(pl.lit("changed").alias("label")))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    with hostile_server(
        Script([answer("200 OK", orjson.dumps(RECORD))]),
        PUT=Script([head, b'{"id"'], reset=True),
    ) as server:
        journal = Journal(tmp_path / "journal.sqlite3")
        with client_of(server, max_retries=2) as client:
            result = plan.apply(client, journal=journal, progress=False)
    (row,) = result.rows
    # Cut mid-answer, it may have landed: sent without an answer, not "failed".
    assert row.status == "unconfirmed" and row.attempts == 3
    (write,) = journal.writes(result.run_id or "")
    assert write.status == "unconfirmed"
    assert write.idempotency_key == row.idempotency_key
    assert write.body == plan.rows[0].body  # what was attempted stays on record for a retry


# -- the answer deadline holds per read: headers, 1xx answers ------------------------------


def assert_cut_off_at_one_second(script: Script) -> None:
    """A read from a server playing ``script`` ends by ``answer_deadline=1`` (and a margin)."""
    with hostile_server(script) as server:
        started = time.monotonic()
        with (
            client_of(server, answer_deadline=1.0, max_retries=0) as client,
            pytest.raises(APITimeoutError, match=r"longer than 1 s \(answer_deadline\)"),
        ):
            client.get_customer(RECORD["id"])
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.3, f"held {elapsed:.2f} s with answer_deadline=1"


def test_headers_trickled_a_byte_at_a_time_end_at_the_answer_deadline() -> None:
    whole = answer("200 OK", orjson.dumps(RECORD))
    head = whole[: whole.index(b"\r\n\r\n") + 4]
    script = Script([*(head[i : i + 1] for i in range(len(head))), whole[len(head) :]], pause=0.04)
    assert len(head) * 0.04 > 3  # the headers alone would take over 3 s
    assert_cut_off_at_one_second(script)


def test_endless_informational_answers_end_at_the_answer_deadline() -> None:
    script = Script([b"HTTP/1.1 102 Processing\r\n\r\n"] * 40, pause=0.1)  # 4 s of 102s
    assert_cut_off_at_one_second(script)


# -- encodings: one gzip layer, decoded within the cap -------------------------------------


def test_the_client_asks_for_gzip_only() -> None:
    with hostile_server(Script([answer("200 OK", orjson.dumps(RECORD))])) as server:
        with client_of(server) as client:
            client.get_customer(RECORD["id"])
        assert b"\r\naccept-encoding: gzip\r\n" in server.requests[0].lower()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip, gzip", lambda body: gzip.compress(gzip.compress(body))),
        ("gzip,gzip", lambda body: gzip.compress(gzip.compress(body))),
        ("deflate", zlib.compress),
        ("br", lambda body: body),
        ("gzip, br", lambda body: gzip.compress(body)),
    ],
)
def test_stacked_or_unknown_encodings_are_refused_naming_them(
    encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    script = Script([answer("200 OK", encode(orjson.dumps(RECORD)), Content_Encoding=encoding)])
    with hostile_server(script) as server:
        with (
            client_of(server, max_retries=2) as client,
            pytest.raises(UnexpectedResponseError, match=re.escape(repr(encoding))) as caught,
        ):
            client.get_customer(RECORD["id"])
        assert len(server.requests) == 1  # another try would get the same answer
    assert "gzip or identity" in str(caught.value)


def test_a_gzip_bomb_is_refused_without_inflating_past_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sequence_nb.client.MAX_ANSWER_BYTES", 1 << 20)
    bomb = gzip.compress(b" " * (64 << 20), 9)  # 64 MiB of spaces in about 64 kB
    script = Script([answer("200 OK", bomb, Content_Encoding="gzip")])
    with hostile_server(script) as server, client_of(server, max_retries=0) as client:
        tracemalloc.start()
        try:
            with pytest.raises(APIConnectionError, match=f"larger than {1 << 20} bytes"):
                client.get_customer(RECORD["id"])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak >> 20} MiB to refuse a 1 MiB cap"
