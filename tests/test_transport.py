"""The transport every call goes through: one exchange bounded in time and size.

Real sockets throughout (the sandbox, raw hostile servers); a mock transport only
stands in for a foreign transport the client is handed.
"""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from collections.abc import Callable, Iterator, Sequence

import httpx
import orjson
import pytest

from sequence_nb.sandbox import Sandbox
from sequence_nb.transport import BoundedTransport, SequenceTransport, environment_proxy
from tests.hostile_server import (
    Script,
    answer,
    deaf_server,
    hostile_server,
    unaccepting_listener,
)

RECORD = {"id": "c-1", "legalName": "Transport Ltd"}


def fetch(transport: httpx.BaseTransport, url: str, **options: object) -> httpx.Response:
    """One GET through ``transport`` with httpx's own client, as the client sends it."""
    with httpx.Client(transport=transport, timeout=httpx.Timeout(10.0)) as client:
        return client.get(url, **options)  # type: ignore[arg-type]


def timed(work: Callable[[], object]) -> tuple[float, BaseException]:
    """How long ``work`` took to fail, and what it raised."""
    started = time.monotonic()
    try:
        work()
    except BaseException as exc:
        return time.monotonic() - started, exc
    raise AssertionError("expected a failure")


# -- ordinary exchanges --------------------------------------------------------------------


def test_a_call_reaches_the_sandbox_and_back(sandbox: Sandbox) -> None:
    auth = (sandbox.client_id, sandbox.client_secret)
    with SequenceTransport(answer_deadline=5.0) as transport:
        answered = fetch(transport, f"{sandbox.url}/customers", params={"limit": 2}, auth=auth)
    assert answered.status_code == 200
    assert len(answered.json()["items"]) == 2


@pytest.mark.parametrize(
    ("asked", "sent"),
    [(None, b"gzip"), (b"gzip, deflate, br", b"gzip"), (b"identity", b"identity")],
)
def test_it_asks_for_gzip_only(asked: bytes | None, sent: bytes) -> None:
    headers = {"Accept-Encoding": asked.decode()} if asked else {}
    with hostile_server(Script([answer("200 OK", orjson.dumps(RECORD))])) as server:
        fetch(SequenceTransport(answer_deadline=5.0), server.url, headers=headers)
        lines = server.requests[0].lower().split(b"\r\n")
    assert [line for line in lines if line.startswith(b"accept-encoding:")] == [
        b"accept-encoding: " + sent
    ]


def test_a_gzip_answer_is_handed_on_decoded_without_its_encoding_headers() -> None:
    body = orjson.dumps({**RECORD, "note": "x" * 5000})
    script = Script([answer("200 OK", gzip.compress(body), Content_Encoding="gzip")])
    with hostile_server(script) as server:
        answered = fetch(SequenceTransport(answer_deadline=5.0), server.url)
    assert answered.content == body
    assert "content-encoding" not in answered.headers
    assert "content-length" not in answered.headers


@pytest.mark.parametrize("encoding", ["gzip, gzip", "deflate", "br", "gzip, zstd", "compress"])
def test_stacked_and_unknown_encodings_are_a_decoding_error(encoding: str) -> None:
    script = Script([answer("200 OK", gzip.compress(b"{}"), Content_Encoding=encoding)])
    with hostile_server(script) as server, pytest.raises(httpx.DecodingError) as caught:
        fetch(SequenceTransport(answer_deadline=5.0), server.url)
    assert repr(encoding) in str(caught.value) and "gzip or identity" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (gzip.compress(b'{"id": "c-1"}')[:-6], "cut short"),
        (gzip.compress(b'{"id": "c-1"}') + b"more", "after the end"),
        (b"\x1f\x8b\x08\x00not gzip at all", "corrupt"),
    ],
)
def test_a_gzip_body_that_is_cut_short_corrupt_or_followed_by_more_is_refused(
    body: bytes, problem: str
) -> None:
    script = Script([answer("200 OK", body, Content_Encoding="gzip")])
    with hostile_server(script) as server, pytest.raises(httpx.DecodingError, match=problem):
        fetch(SequenceTransport(answer_deadline=5.0), server.url)


def test_an_empty_body_labelled_gzip_is_empty() -> None:
    with hostile_server(Script([answer("204 No Content", b"", Content_Encoding="gzip")])) as server:
        answered = fetch(SequenceTransport(answer_deadline=5.0), server.url)
    assert answered.status_code == 204 and answered.content == b""


# -- the size cap --------------------------------------------------------------------------


def test_a_declared_length_past_the_cap_is_refused_before_the_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    with (
        hostile_server(Script([head, b"x" * 10], pause=5.0)) as server,
        pytest.raises(httpx.ReadError, match="larger than 1000 bytes"),
    ):
        fetch(SequenceTransport(answer_deadline=5.0, max_bytes=1000), server.url)


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_bytes_past_the_cap_are_refused_as_they_come(encoding: str | None) -> None:
    body = b"[" + b" " * 200_000 + b"]"
    sent = gzip.compress(body) if encoding else body
    headers = {"Content_Encoding": encoding} if encoding else {}
    chunked = b"HTTP/1.1 200 OK\r\n" + b"".join(
        f"{name.replace('_', '-')}: {value}\r\n".encode() for name, value in headers.items()
    )
    chunked += b"Transfer-Encoding: chunked\r\n\r\n"
    chunked += f"{len(sent):x}\r\n".encode() + sent + b"\r\n0\r\n\r\n"
    with (
        hostile_server(Script([chunked])) as server,
        pytest.raises(httpx.ReadError, match="larger than 1000 bytes"),
    ):
        fetch(SequenceTransport(answer_deadline=5.0, max_bytes=1000), server.url)


# -- the deadline, per phase ---------------------------------------------------------------


def test_each_read_gets_only_the_time_left_of_the_deadline() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
    script = Script([head[i : i + 1] for i in range(len(head))], pause=0.05)  # about 4 s
    with hostile_server(script) as server:
        elapsed, error = timed(lambda: fetch(SequenceTransport(answer_deadline=0.5), server.url))
    assert isinstance(error, httpx.ReadTimeout)
    assert str(error) == "the exchange took longer than 0.5 s (answer_deadline)"
    assert elapsed < 0.5 + 0.3


def test_name_resolution_is_inside_the_deadline() -> None:
    def slow(host: str, port: int) -> Sequence[str]:
        time.sleep(5)
        return ["127.0.0.1"]

    transport = SequenceTransport(answer_deadline=0.5, resolver=slow)
    elapsed, error = timed(lambda: fetch(transport, "http://slow-dns.test/api"))
    assert isinstance(error, httpx.ConnectTimeout)
    assert "0.5 s (answer_deadline)" in str(error)
    assert elapsed < 0.5 + 0.3


def test_a_name_that_does_not_resolve_is_a_connect_error_naming_it() -> None:
    def unknown(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    transport = SequenceTransport(answer_deadline=5.0, resolver=unknown)
    with pytest.raises(httpx.ConnectError, match=r"could not resolve 'nowhere\.test'"):
        fetch(transport, "http://nowhere.test/api")


def test_every_address_of_a_name_is_tried_in_turn() -> None:
    with hostile_server(Script([answer("200 OK", orjson.dumps(RECORD))])) as server:
        port = httpx.URL(server.url).port

        def two(host: str, given: int) -> Sequence[str]:
            return ["127.0.0.2", "127.0.0.1"]  # nothing listens on the first

        transport = SequenceTransport(answer_deadline=5.0, resolver=two)
        answered = fetch(transport, f"http://two-addresses.test:{port}/api")
        assert len(server.requests) == 1
    assert answered.json() == RECORD


def test_a_connect_that_hangs_ends_at_the_deadline() -> None:
    with unaccepting_listener() as url:
        elapsed, error = timed(lambda: fetch(SequenceTransport(answer_deadline=0.5), url))
    assert isinstance(error, httpx.ConnectTimeout)
    assert "0.5 s (answer_deadline)" in str(error)
    assert elapsed < 0.5 + 0.3


def test_a_write_the_server_never_reads_ends_at_the_deadline() -> None:
    body = b"x" * (32 << 20)
    with deaf_server() as url, httpx.Client(transport=SequenceTransport(answer_deadline=0.5)) as c:
        elapsed, error = timed(lambda: c.post(url, content=body))
    assert isinstance(error, httpx.WriteTimeout)
    assert elapsed < 0.5 + 0.3


def test_the_wait_for_a_pooled_connection_is_inside_the_deadline() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    script = Script([head, b"{", b"}"], pause=3.0)
    limits = httpx.Limits(max_connections=1)
    transport = SequenceTransport(answer_deadline=0.5, limits=limits)
    with (
        hostile_server(script) as server,
        httpx.Client(transport=transport) as client,
        client.stream("GET", server.url),  # holds the only connection
    ):
        elapsed, error = timed(lambda: client.get(server.url))
    assert isinstance(error, httpx.PoolTimeout)
    assert elapsed < 0.5 + 0.3


# -- errors are httpx's --------------------------------------------------------------------


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        fetch(SequenceTransport(answer_deadline=5.0), f"http://127.0.0.1:{port}/api")


def test_an_answer_cut_by_a_reset_is_a_read_error() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    with (
        hostile_server(Script([head, b"{"], reset=True)) as server,
        pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        fetch(SequenceTransport(answer_deadline=5.0), server.url)


def test_garbage_instead_of_http_is_a_protocol_error() -> None:
    with (
        hostile_server(Script([b"SSH-2.0-OpenSSH_9.6\r\n"])) as server,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        fetch(SequenceTransport(answer_deadline=5.0), server.url)


# -- proxies -------------------------------------------------------------------------------


def test_plain_http_goes_through_a_given_proxy() -> None:
    with hostile_server(Script([answer("200 OK", orjson.dumps(RECORD))])) as proxy:
        transport = SequenceTransport(answer_deadline=5.0, proxy=proxy.url.removesuffix("/api"))
        answered = fetch(transport, "http://sequence.test/api/customers/c-1")
        (sent,) = proxy.requests
    assert answered.json() == RECORD
    assert sent.startswith(b"GET http://sequence.test/api/customers/c-1 HTTP/1.1\r\n")


def test_the_environment_proxy_is_used_for_other_hosts_never_for_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3129")
    for name in ("http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy(httpx.URL("https://eu.sequencehq.com/api")) == "http://proxy.test:3129"
    assert environment_proxy(httpx.URL("http://api.example.test/api")) == "http://proxy.test:3128"
    for url in ("http://localhost:8765/api", "http://127.0.0.1/api", "http://[::1]:1/api"):
        assert environment_proxy(httpx.URL(url)) is None, url
    monkeypatch.setenv("NO_PROXY", "eu.sequencehq.com")
    assert environment_proxy(httpx.URL("https://eu.sequencehq.com/api")) is None


def test_a_proxy_of_an_unknown_kind_is_refused_without_echoing_its_password() -> None:
    with pytest.raises(ValueError, match="ftp") as caught:
        SequenceTransport(answer_deadline=5.0, proxy="ftp://user:hunter2@proxy.test:21")
    assert "hunter2" not in str(caught.value)


# -- a transport handed in -----------------------------------------------------------------


def slow_chunks(count: int, pause: float) -> Iterator[bytes]:
    yield b"["
    for _ in range(count):
        time.sleep(pause)
        yield b" "
    yield b"]"


def test_a_given_transport_is_bounded_between_the_pieces_it_hands_on() -> None:
    def trickle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=slow_chunks(40, 0.1))

    bounded = BoundedTransport(httpx.MockTransport(trickle), answer_deadline=0.5)
    elapsed, error = timed(lambda: fetch(bounded, "http://sequence.test/api"))
    assert isinstance(error, httpx.ReadTimeout)
    assert str(error) == "the exchange took longer than 0.5 s (answer_deadline)"
    assert elapsed < 0.5 + 0.1 + 0.2  # at most one piece late


def test_a_given_transport_gets_the_same_encoding_rules_and_cap() -> None:
    body = b"[" + b" " * 100_000 + b"]"

    def bomb(request: httpx.Request) -> httpx.Response:
        assert request.headers["Accept-Encoding"] == "gzip"
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body)
        )

    def stacked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip, gzip"}, content=b"")

    with pytest.raises(httpx.ReadError, match="larger than 1000 bytes"):
        fetch(
            BoundedTransport(httpx.MockTransport(bomb), answer_deadline=5, max_bytes=1000),
            "http://x.test/",
        )
    with pytest.raises(httpx.DecodingError, match="'gzip, gzip'"):
        fetch(BoundedTransport(httpx.MockTransport(stacked), answer_deadline=5), "http://x.test/")


class _Passing(httpx.BaseTransport):
    """A fault-injecting wrapper as the tests write them: here it only passes calls on."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)


def test_a_sequence_transport_inside_a_given_one_keeps_the_per_read_deadline() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
    script = Script([head[i : i + 1] for i in range(len(head))], pause=0.05)
    with hostile_server(script) as server:
        inner = _Passing(SequenceTransport(answer_deadline=60.0))
        bounded = BoundedTransport(inner, answer_deadline=0.5)
        elapsed, error = timed(lambda: fetch(bounded, server.url))
    assert isinstance(error, httpx.ReadTimeout)
    assert elapsed < 0.5 + 0.3


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("answer_deadline", 0),
        ("answer_deadline", float("nan")),
        ("answer_deadline", float("inf")),
        ("max_bytes", 0),
        ("max_bytes", True),
    ],
)
def test_odd_transport_settings_are_refused_naming_them(setting: str, value: object) -> None:
    options: dict[str, object] = {"answer_deadline": 5.0, setting: value}
    with pytest.raises(ValueError, match=f"^{setting} must be"):
        SequenceTransport(**options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"^{setting} must be"):
        BoundedTransport(httpx.MockTransport(lambda r: httpx.Response(200)), **options)  # type: ignore[arg-type]


def test_x_gzip_is_read_as_gzip() -> None:
    body = orjson.dumps(RECORD)
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    packed = packer.compress(body) + packer.flush()
    script = Script([answer("200 OK", packed, Content_Encoding="x-gzip")])
    with hostile_server(script) as server:
        assert fetch(SequenceTransport(answer_deadline=5.0), server.url).json() == RECORD
