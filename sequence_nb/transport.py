"""The httpx transport every call to Sequence goes through: one exchange, bounded in time and size.

httpx keeps the client, its transports and its ``Timeout``/``Limits`` apart; so
does sequence_nb. httpx's timeouts bound each connect, read or write, not an
exchange: a server that trickles its headers a byte at a time, or sends ``102
Processing`` forever, holds a call as long as it likes. Here an exchange, from
the request to the answer's last byte, is bounded by ``answer_deadline``.

- :class:`SequenceTransport` is the transport the client uses: an
  ``httpcore.ConnectionPool`` over a network backend of its own whose every name
  lookup, connect, TLS handshake, write and read gets at most the time left
  before the deadline, and fails once it has passed. A call ends within
  ``answer_deadline`` plus scheduling slack.
- :class:`BoundedTransport` bounds a transport it is handed (tests wrap fault
  transports around a real one). It can only cut each phase's timeout to the
  time left when the phase starts and check the deadline between the pieces the
  transport hands on: a foreign transport may overrun by one blocking read. A
  :class:`SequenceTransport` inside it keeps the per-read bound.

Both ask for ``gzip`` only, decode one gzip layer themselves a piece at a time
(``max_length``) and refuse stacked or unknown encodings, and refuse an answer
larger than ``max_bytes``, encoded or decoded. What they hand to httpx carries no
``Content-Encoding``, so httpx does not decode it again.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import queue
import socket
import ssl
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_ANSWER_BYTES",
    "BoundedTransport",
    "Deadline",
    "DeadlineBackend",
    "DeadlineStream",
    "Resolver",
    "SequenceTransport",
    "environment_proxy",
    "is_loopback",
]

#: The largest answer read (a page of 100 customers is about 100 kB), encoded or decoded.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Connections the pool keeps, as httpx's defaults.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
#: Looks a host name up: its addresses, in the order to try them.
Resolver = Callable[[str, int], Sequence[str]]

_PIECE = 64 * 1024  # the most a gzip answer is inflated by at a time, and a write's size
_SLACK = 0.01  # a timeout within this of the deadline is the deadline's
_GZIP = 16 + zlib.MAX_WBITS  # zlib's wbits for a gzip header and trailer


# -- the deadline of the exchange under way ------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """When an exchange must be over (``time.monotonic()``), and the seconds it was given."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now, or the current one if that ends sooner."""
        fresh = cls(time.monotonic() + seconds, seconds)
        current = _CURRENT.get()
        return current if current is not None and current.at <= fresh.at else fresh

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= _SLACK

    def message(self) -> str:
        return f"the exchange took longer than {self.seconds:g} s (answer_deadline)"


_CURRENT: ContextVar[Deadline | None] = ContextVar("sequence_nb_deadline", default=None)


@contextmanager
def _within(deadline: Deadline) -> Iterator[None]:
    """Make ``deadline`` the one every socket operation of this thread keeps, for the block."""
    token = _CURRENT.set(deadline)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _bounded(timeout: float | None, late: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` cut to the time left of the current deadline; ``late`` once it has passed."""
    deadline = _CURRENT.get()
    if deadline is None:
        return timeout
    left = deadline.left()
    if left <= 0:
        raise late(deadline.message())
    return left if timeout is None else min(timeout, left)


# -- a network backend whose every operation keeps the deadline ----------------------------


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads, writes and TLS handshake end by the current deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Writes a piece at a time, so that a server that stops reading holds at most one."""
        if len(buffer) <= _PIECE:
            self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))
            return
        view = memoryview(buffer)
        for start in range(0, len(view), _PIECE):
            piece = bytes(view[start : start + _PIECE])
            self._inner.write(piece, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with name lookups and connects inside the deadline too.

    ``socket.create_connection`` resolves names with no timeout at all; here the
    lookup runs on a daemon thread that is waited for only as long as the time
    left, and each address it gives is then connected to with the time left.
    """

    def __init__(
        self, inner: httpcore.NetworkBackend | None = None, resolver: Resolver | None = None
    ) -> None:
        self._inner = inner or httpcore.SyncBackend()
        self._resolver = resolver or _system_addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._addresses(host, port, timeout)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=_bounded(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return DeadlineStream(stream)
        if failure is None:
            raise httpcore.ConnectError(f"{host!r} resolved to no address")
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def _addresses(self, host: str, port: int, timeout: float | None) -> Sequence[str]:
        """The addresses of ``host``, looked up within the time left (an address is itself)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [host]
        outcome: queue.SimpleQueue[Sequence[str] | OSError] = queue.SimpleQueue()

        def look_up() -> None:
            try:
                outcome.put(self._resolver(host, port))
            except OSError as exc:
                outcome.put(exc)

        threading.Thread(target=look_up, name=f"resolve {host}", daemon=True).start()
        try:
            found = outcome.get(timeout=_bounded(timeout, httpcore.ConnectTimeout))
        except queue.Empty:
            deadline = _CURRENT.get()
            late = deadline.message() if deadline is not None and deadline.passed() else "timeout"
            raise httpcore.ConnectTimeout(f"could not resolve {host!r} in time ({late})") from None
        if isinstance(found, OSError):
            reason = found.strerror or str(found)
            raise httpcore.ConnectError(f"could not resolve {host!r} ({reason})")
        return found


def _system_addresses(host: str, port: int) -> Sequence[str]:
    """``host``'s addresses from the system's resolver, each once, in its order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


# -- httpcore's errors as httpx's ----------------------------------------------------------

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors(request: httpx.Request, deadline: Deadline) -> Iterator[None]:
    """httpcore's errors raised as httpx's; a timeout at the deadline says so."""
    try:
        yield
    except httpx.TimeoutException as exc:  # from a transport handed in
        if not deadline.passed():
            raise
        raise type(exc)(deadline.message(), request=request) from exc
    except Exception as exc:
        cls = next((ours for theirs, ours in _ERRORS if isinstance(exc, theirs)), None)
        if cls is None:
            raise
        late = isinstance(exc, httpcore.TimeoutException) and deadline.passed()
        raise cls(deadline.message() if late else str(exc), request=request) from exc


# -- answers: encodings, the size cap, the deadline between pieces -------------------------


def _ask_for_gzip(request: httpx.Request) -> None:
    """Ask for gzip only (or identity, if that is what the request asked for)."""
    if request.headers.get("Accept-Encoding", "").strip().lower() != "identity":
        request.headers["Accept-Encoding"] = "gzip"


def _too_large(max_bytes: int, request: httpx.Request) -> httpx.ReadError:
    return httpx.ReadError(f"the answer is larger than {max_bytes} bytes", request=request)


def _gzipped(headers: httpx.Headers, request: httpx.Request) -> bool:
    """Whether the answer is gzip; :class:`httpx.DecodingError` for any other encoding."""
    codings = [c.strip().lower() for c in headers.get_list("Content-Encoding", split_commas=True)]
    codings = [coding for coding in codings if coding and coding != "identity"]
    if not codings:
        return False
    if codings in (["gzip"], ["x-gzip"]):
        return True
    shown = headers.get("Content-Encoding", "")[:80]
    raise httpx.DecodingError(
        f"the answer is encoded {shown!r}: the client asks for gzip or identity "
        "and decodes one gzip layer only",
        request=request,
    )


def _bounded_answer(
    request: httpx.Request,
    status_code: int,
    headers: httpx.Headers,
    body: _Body,
    deadline: Deadline,
    max_bytes: int,
) -> httpx.Response:
    """The answer to hand to httpx: checked headers, and a body bounded in time and size."""
    try:
        declared = headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes, request)
        gzipped = _gzipped(headers, request)
    except httpx.HTTPError:
        body.close()
        raise
    if gzipped:
        dropped = ("content-encoding", "content-length")
        kept = [(k, v) for k, v in headers.multi_items() if k.lower() not in dropped]
        headers = httpx.Headers(kept)
    stream = _AnswerStream(request, body, deadline, max_bytes, gzipped)
    return httpx.Response(status_code, headers=headers, stream=stream)


@dataclass(frozen=True)
class _Body:
    """An answer's body as it comes: its pieces and how to let its connection go."""

    pieces: Iterable[bytes]
    close: Callable[[], None]


class _AnswerStream(httpx.SyncByteStream):
    """An answer's body, read within the deadline, inflated a piece at a time, capped."""

    def __init__(
        self,
        request: httpx.Request,
        body: _Body,
        deadline: Deadline,
        max_bytes: int,
        gzipped: bool,
    ) -> None:
        self._request = request
        self._body = body
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._gzipped = gzipped

    def __iter__(self) -> Iterator[bytes]:
        if not self._gzipped:
            yield from self._received()
            return
        inflater = zlib.decompressobj(_GZIP)
        received = inflated_size = 0
        for piece in self._received():
            received += len(piece)
            for inflated in self._inflate(inflater, piece):
                inflated_size += len(inflated)
                if inflated_size > self._max_bytes:
                    raise _too_large(self._max_bytes, self._request)
                yield inflated
        if received:  # an empty body labelled gzip (a 204, say) is empty
            self._check_end(inflater)

    def _received(self) -> Iterator[bytes]:
        """The body's pieces as they arrive, each read inside the deadline, counted."""
        pieces = iter(self._body.pieces)
        size = 0
        while True:
            with _within(self._deadline), _as_httpx_errors(self._request, self._deadline):
                piece = next(pieces, None)
            if piece is None:
                return
            size += len(piece)
            if size > self._max_bytes:
                raise _too_large(self._max_bytes, self._request)
            if self._deadline.left() <= 0:
                raise httpx.ReadTimeout(self._deadline.message(), request=self._request)
            yield piece

    def _inflate(self, inflater: Any, data: bytes) -> Iterator[bytes]:
        """``data`` inflated, never more than a piece at a time."""
        while True:
            try:
                inflated = inflater.decompress(data, _PIECE)
            except zlib.error as exc:
                raise httpx.DecodingError(
                    f"the gzip answer is corrupt ({exc})", request=self._request
                ) from None
            if inflated:
                yield inflated
            data = inflater.unconsumed_tail
            if not data and len(inflated) < _PIECE:
                return

    def _check_end(self, inflater: Any) -> None:
        """Refuse a gzip body that stopped early or carries more after its end."""
        if not inflater.eof:
            raise httpx.DecodingError("the gzip answer is cut short", request=self._request)
        if inflater.unused_data:
            raise httpx.DecodingError(
                "the gzip answer has data after the end of its gzip stream", request=self._request
            )

    def close(self) -> None:
        self._body.close()


# -- the transports ------------------------------------------------------------------------


def _checked_limits(answer_deadline: float, max_bytes: int) -> None:
    """``ValueError`` naming a deadline that is not a finite positive number, or a bad cap."""
    if (
        isinstance(answer_deadline, bool)
        or not isinstance(answer_deadline, int | float)
        or not 0 < answer_deadline < math.inf
    ):
        raise ValueError(
            f"answer_deadline must be a positive, finite number of seconds, not {answer_deadline!r}"
        )
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive whole number, not {max_bytes!r}")


class SequenceTransport(httpx.BaseTransport):
    """An httpx transport over httpcore whose every exchange ends by ``answer_deadline``.

    Each name lookup, connect, TLS handshake, write and read gets at most the
    time left (and at most its own ``httpx.Timeout`` value), so a call ends
    within ``answer_deadline`` and scheduling slack, whatever the server does.
    ``proxy`` is an ``http://``, ``https://`` or ``socks5://`` proxy URL (SOCKS
    needs the ``socksio`` package). TLS is verified with the context httpx would
    build: certifi's roots, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set.
    ``resolver`` replaces the system's name lookup (tests use a slow one).
    """

    def __init__(
        self,
        *,
        answer_deadline: float,
        max_bytes: int = MAX_ANSWER_BYTES,
        proxy: str | httpx.Proxy | None = None,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        resolver: Resolver | None = None,
    ) -> None:
        _checked_limits(answer_deadline, max_bytes)
        self.answer_deadline = answer_deadline
        self.max_bytes = max_bytes
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            proxy=_core_proxy(proxy) if proxy is not None else None,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(resolver=resolver),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("SequenceTransport sends synchronous requests only")
        deadline = Deadline.after(self.answer_deadline)
        _ask_for_gzip(request)
        with _within(deadline), _as_httpx_errors(request, deadline):
            answer = self._pool.handle_request(_core_request(request, deadline))
        body = _Body(answer.iter_stream(), answer.close)
        headers = httpx.Headers(answer.headers)
        return _bounded_answer(request, answer.status, headers, body, deadline, self.max_bytes)

    def close(self) -> None:
        self._pool.close()


def _core_request(request: httpx.Request, deadline: Deadline) -> httpcore.Request:
    """``request`` for httpcore, its wait for a pooled connection cut to the time left."""
    timeouts = dict(request.extensions.get("timeout", {}))
    pool, left = timeouts.get("pool"), max(deadline.left(), 0.0)
    timeouts["pool"] = left if pool is None else min(pool, left)
    assert isinstance(request.stream, httpx.SyncByteStream)
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions={**request.extensions, "timeout": timeouts},
    )


def _core_proxy(proxy: str | httpx.Proxy) -> httpcore.Proxy:
    """httpx's description of a proxy, for httpcore; ``ValueError`` for a kind it cannot use."""
    given = proxy if isinstance(proxy, httpx.Proxy) else httpx.Proxy(proxy)
    url = given.url
    if url.scheme not in ("http", "https", "socks5", "socks5h"):
        raise ValueError(
            f"the proxy must be an http://, https:// or socks5:// URL, not a {url.scheme}:// one"
        )
    if url.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise ImportError("a socks5:// proxy needs the socksio package: pip install socksio")
    return httpcore.Proxy(
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        auth=given.raw_auth,
        headers=given.headers.raw,
        ssl_context=given.ssl_context,
    )


class BoundedTransport(httpx.BaseTransport):
    """A transport handed in, bounded as well as it allows (see the module's notes).

    Each phase's timeout is cut to the time left when the phase starts, the
    deadline is checked between the pieces of the body, and a
    :class:`SequenceTransport` anywhere inside keeps it on every read. The
    encoding rules and the size cap are the same as :class:`SequenceTransport`'s.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        answer_deadline: float,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        _checked_limits(answer_deadline, max_bytes)
        self.inner = inner
        self.answer_deadline = answer_deadline
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = Deadline.after(self.answer_deadline)
        _ask_for_gzip(request)
        timeouts = request.extensions.get("timeout", {})
        if isinstance(timeouts, _TimeLeft):  # the same request sent again
            timeouts = timeouts.timeouts
        request.extensions = {**request.extensions, "timeout": _TimeLeft(timeouts, deadline)}
        with _within(deadline), _as_httpx_errors(request, deadline):
            answer = self.inner.handle_request(request)
        if not isinstance(answer.stream, httpx.SyncByteStream):
            answer.close()
            raise TypeError(f"{type(self.inner).__name__} answered with an async stream")
        body = _Body(answer.stream, answer.stream.close)
        return _bounded_answer(
            request, answer.status_code, answer.headers, body, deadline, self.max_bytes
        )

    def close(self) -> None:
        self.inner.close()


class _TimeLeft(Mapping[str, float | None]):
    """httpx's per-phase timeouts, each cut to the time left when the phase looks it up."""

    def __init__(self, timeouts: Mapping[str, float | None], deadline: Deadline) -> None:
        self.timeouts = timeouts
        self.deadline = deadline

    def __getitem__(self, phase: str) -> float | None:
        left = max(self.deadline.left(), 0.001)
        configured = self.timeouts.get(phase)
        return left if configured is None else min(configured, left)

    def __iter__(self) -> Iterator[str]:
        return iter(self.timeouts)

    def __len__(self) -> int:
        return len(self.timeouts)


# -- which proxy, if any -------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def environment_proxy(url: httpx.URL) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY`` ...), if any.

    This machine is never reached through a proxy: a loopback URL may be plain
    ``http://``, and its Basic credentials must not travel to a proxy in clear text.
    """
    if is_loopback(url.host):
        return None
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(url.host):
        return None
    return proxies.get(url.scheme) or proxies.get("all")
