"""``SequenceClient``: the one place that talks HTTP to Sequence's customers API.

It authenticates, pages, paces requests under the rate limit, retries what is
safe to retry (every write carries an ``Idempotency-Key`` reused across its
retries, so a retried write is applied once) and turns failures into typed
errors. It knows nothing about polars. Many threads may share one client.

Every attempt is bounded as a whole by the transport of :mod:`sequence_nb.transport`:
each name lookup, connect, write and read of an exchange gets only the time left
of ``answer_deadline``, and the answer is capped in size, decoded or not.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeGuard
from urllib.parse import quote

import httpx
import orjson
from pydantic import SecretStr

from sequence_nb import fields
from sequence_nb.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    InvalidIdError,
    RateLimitError,
    UnexpectedResponseError,
    UnsupportedOperationError,
    status_error_class,
)
from sequence_nb.listing import CustomerPage, OnIncomplete, Progress, iter_pages, read_listing
from sequence_nb.models import validate_body_2024, validate_create_body, validate_update_body
from sequence_nb.ratelimit import RateLimiter
from sequence_nb.retry import RetryPolicy, check_wait
from sequence_nb.transport import (
    MAX_ANSWER_BYTES,
    BoundedTransport,
    SequenceTransport,
    environment_proxy,
    is_loopback,
)

__all__ = ["PRODUCTION_URL", "SANDBOX_URL", "CustomerPage", "Response", "SequenceClient"]

logger = logging.getLogger("sequence_nb.client")

PRODUCTION_URL = "https://eu.sequencehq.com/api"
SANDBOX_URL = "https://sandbox.sequencehq.com/api"

#: Filters of ``GET /customers``, by the API's name and by a Python name.
_FILTERS = {
    "legalName": "legalName",
    "legal_name": "legalName",
    "email": "email",
    "alias": "alias",
    "includeArchived": "includeArchived",
    "include_archived": "includeArchived",
    "sortBy": "sortBy",
    "sort_by": "sortBy",
    "sortOrder": "sortOrder",
    "sort_order": "sortOrder",
    "label": "label",
    "billingStatus": "billingStatus",
    "billing_status": "billingStatus",
}
#: The values a filter takes, where the API lists them.
_FILTER_VALUES = {
    "sortOrder": ("ASC", "DESC"),
    "billingStatus": ("ACTIVE", "INACTIVE"),
}
#: Filters every version takes (the others only where ``ApiVersion.listing_filters`` names them).
_SEED_FILTERS = frozenset({"legalName", "email", "alias", "includeArchived", "sortBy", "sortOrder"})
_MESSAGE_LIMIT = 500
#: Methods that change something on the server.
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: httpx errors raised before a request could leave: such an attempt wrote nothing.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Response:
    """A successful answer: the parsed JSON, the raw bytes and how it was obtained."""

    status_code: int
    data: Any
    content: bytes
    attempts: int
    idempotency_key: str | None
    replayed: bool


class _BasicAuth(httpx.Auth):
    """Basic auth that builds its header at send time from a ``SecretStr``."""

    def __init__(self, client_id: str, client_secret: SecretStr) -> None:
        self._client_id = client_id
        self._client_secret = client_secret

    def token(self) -> str:
        pair = f"{self._client_id}:{self._client_secret.get_secret_value()}"
        return base64.b64encode(pair.encode()).decode()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Basic {self.token()}"
        yield request

    def __repr__(self) -> str:
        return f"_BasicAuth(client_id={self._client_id!r})"


def _bounded_transport(
    transport: httpx.BaseTransport | None, base_url: str, answer_deadline: float
) -> httpx.BaseTransport:
    """The transport every call goes through, bounded in time and size.

    Without ``transport=``, a :class:`~sequence_nb.transport.SequenceTransport`
    through the proxy the environment names for the base URL's host, if any (given
    a transport, httpx no longer reads proxies from the environment itself). A
    transport handed in is wrapped in a :class:`~sequence_nb.transport.BoundedTransport`.
    """
    if transport is None:
        proxy = environment_proxy(httpx.URL(base_url))
        return SequenceTransport(
            answer_deadline=answer_deadline, max_bytes=MAX_ANSWER_BYTES, proxy=proxy
        )
    return BoundedTransport(transport, answer_deadline=answer_deadline, max_bytes=MAX_ANSWER_BYTES)


def _check_settings(
    *,
    timeout: float,
    answer_deadline: float,
    page_size: int,
    rate_limit_per_minute: float | None,
    allow_insecure_http: bool,
) -> None:
    """``ValueError`` naming the first setting that is not what it must be.

    A NaN or infinite number would quietly turn a bound or the pacing off, and a
    string such as ``"no"`` would count as true: each is refused here instead.
    """
    _check_seconds("timeout", timeout)
    _check_seconds("answer_deadline", answer_deadline)
    _check_whole("page_size", page_size, 1, 100, " (the API's limit)")
    rate = rate_limit_per_minute
    if rate is not None and not (_is_finite_number(rate) and rate >= 1):
        raise ValueError(
            "rate_limit_per_minute must be a finite number of calls a minute, at least 1 "
            f"(or None for no pacing), not {rate!r}"
        )
    if not isinstance(allow_insecure_http, bool):
        raise ValueError(f"allow_insecure_http must be True or False, not {allow_insecure_http!r}")


def _retry_policy(
    policy: RetryPolicy | None,
    max_retries: int,
    initial_delay: float,
    max_delay: float,
    max_retry_after: float,
) -> RetryPolicy:
    """The policy given, or the one the retry keywords build; each number checked."""
    _check_whole("max_retries", max_retries, 0, None)
    check_wait("retry_initial_delay", initial_delay)
    check_wait("retry_max_delay", max_delay)
    check_wait("max_retry_after", max_retry_after)
    keywords = RetryPolicy(max_retries, initial_delay, max_delay, max_retry_after)
    if policy is None:
        return keywords
    if keywords != _DEFAULT_RETRY:
        raise ValueError(
            "pass retry_policy or the retry keywords (max_retries, retry_initial_delay, "
            "retry_max_delay, max_retry_after), not both"
        )
    _check_whole("retry_policy.max_retries", policy.max_retries, 0, None)
    for field in ("initial_delay", "max_delay", "max_retry_after"):
        check_wait(f"retry_policy.{field}", getattr(policy, field))
    return policy


def _is_finite_number(value: object) -> TypeGuard[float]:
    """A real int or float, not a bool, neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_seconds(name: str, value: object, *, zero: bool = False) -> None:
    """``ValueError`` unless ``value`` is a finite number of seconds above 0 (or 0, if allowed)."""
    if not _is_finite_number(value) or value < 0 or (value == 0 and not zero):
        kind = "0 or a positive" if zero else "a positive"
        raise ValueError(f"{name} must be {kind}, finite number of seconds, not {value!r}")


def _check_whole(name: str, value: object, low: int, high: int | None, why: str = "") -> None:
    """``ValueError`` unless ``value`` is an int (not a bool) from ``low`` to ``high``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        span = f"from {low} to {high}" if high is not None else f"of {low} or more"
        raise ValueError(f"{name} must be a whole number {span}{why}, not {value!r}")


def new_idempotency_key() -> str:
    """A fresh, unique ``Idempotency-Key``."""
    return str(uuid.uuid4())


class SequenceClient:
    """A thread-safe client for Sequence's customers API.

    Omitted arguments come from ``SEQUENCE_CLIENT_ID``, ``SEQUENCE_CLIENT_SECRET``
    and ``SEQUENCE_BASE_URL`` (default :attr:`production_url`; Sequence's own
    test environment is :attr:`sandbox_url`). The base URL carries no
    credentials, and plain ``http://`` is refused for any host but this machine
    unless ``allow_insecure_http=True`` (the secret would cross the network in
    clear text); a query or fragment is refused too. ``timeout`` bounds each
    connect, write and read; ``answer_deadline`` bounds each attempt as a whole,
    from the name lookup to the answer's last byte (see :mod:`sequence_nb.transport`;
    a ``transport=`` handed in is bounded only as well as it allows). Settings
    that are NaN, infinite, negative or of the wrong type raise ``ValueError``.
    Retries follow ``retry_policy`` (a :class:`~sequence_nb.retry.RetryPolicy`),
    or one built from ``max_retries`` more attempts after the first on 408, 429,
    5xx, connection errors and timeouts, waiting ``Retry-After`` (up to
    ``max_retry_after`` seconds) or a backoff from ``retry_initial_delay`` to
    ``retry_max_delay`` with jitter. ``rate_limit_per_minute`` paces all threads
    together (``None`` turns pacing off).

    ``api_version`` names the API version spoken (``"2024-07-30"``, or an
    :class:`~sequence_nb.fields.ApiVersion`); omitted, ``SEQUENCE_API_VERSION``,
    else the seed page's version. Every request carries the version's
    ``Sequence-Version`` header (the seed's sends none), and write bodies are
    validated in its shape. An unknown name raises
    :class:`~sequence_nb.fields.UnknownApiVersionError` naming the known ones.
    """

    production_url: ClassVar[str] = PRODUCTION_URL
    sandbox_url: ClassVar[str] = SANDBOX_URL

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | SecretStr | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        answer_deadline: float = 120.0,
        max_retries: int = 2,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        max_retry_after: float = 60.0,
        rate_limit_per_minute: float | None = 1500,
        page_size: int = 100,
        transport: httpx.BaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        api_version: str | fields.ApiVersion | None = None,
    ) -> None:
        version = fields.api_version(api_version)
        client_id = client_id if client_id is not None else os.environ.get("SEQUENCE_CLIENT_ID")
        if client_secret is None:
            client_secret = os.environ.get("SEQUENCE_CLIENT_SECRET")
        base_url = base_url or os.environ.get("SEQUENCE_BASE_URL") or PRODUCTION_URL
        if not client_id:
            raise ConfigurationError(
                "No Sequence client id: pass client_id=... or set SEQUENCE_CLIENT_ID"
            )
        if not client_secret:
            raise ConfigurationError(
                "No Sequence client secret: pass client_secret=... or set SEQUENCE_CLIENT_SECRET"
            )
        _check_settings(
            timeout=timeout,
            answer_deadline=answer_deadline,
            page_size=page_size,
            rate_limit_per_minute=rate_limit_per_minute,
            allow_insecure_http=allow_insecure_http,
        )
        self.retry_policy = _retry_policy(
            retry_policy, max_retries, retry_initial_delay, retry_max_delay, max_retry_after
        )
        self.client_id = client_id
        self.base_url = _checked_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self.answer_deadline = answer_deadline
        self.page_size = page_size
        #: The API version this client speaks (its names, its bodies, its header).
        self.api_version: fields.ApiVersion = version
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self._auth = _BasicAuth(client_id, self._secret)
        self._limiter = RateLimiter(rate_limit_per_minute)
        self._prepaid = threading.local()
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self._auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=_bounded_transport(transport, self.base_url, answer_deadline),
            headers=_default_headers(version),
        )

    def __repr__(self) -> str:
        version = (
            "" if self.api_version is fields.SEED else f", api_version={self.api_version.name!r}"
        )
        return f"SequenceClient(base_url={self.base_url!r}, client_id={self.client_id!r}{version})"

    def __enter__(self) -> SequenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    @property
    def rate_limit_per_minute(self) -> float | None:
        """The pace all threads share, in requests per minute."""
        return self._limiter.per_minute

    @property
    def max_retries(self) -> int:
        """More attempts after the first (from :attr:`retry_policy`)."""
        return self.retry_policy.max_retries

    @property
    def retry_initial_delay(self) -> float:
        """The first backoff, in seconds (from :attr:`retry_policy`)."""
        return self.retry_policy.initial_delay

    @property
    def retry_max_delay(self) -> float:
        """The longest backoff, in seconds (from :attr:`retry_policy`)."""
        return self.retry_policy.max_delay

    @property
    def max_retry_after(self) -> float:
        """The longest ``Retry-After`` honoured, in seconds (from :attr:`retry_policy`)."""
        return self.retry_policy.max_retry_after

    def reserve_calls(self, count: int) -> float:
        """Wait until ``count`` calls may go out back to back; returns the seconds waited.

        The calls are paid for at once: the next ``count`` calls this thread makes
        through the client do not wait on the rate limiter (their retries do). The
        push reserves a re-read and the write after it, so that no wait sits
        between reading a record and writing it. A new reservation replaces what
        is left of the thread's last one.
        """
        waited = self._limiter.acquire(count)
        self._prepaid.calls = count
        return waited

    # -- reads -----------------------------------------------------------------

    def iter_customer_pages(self, **filters: str | bool) -> Iterator[CustomerPage]:
        """Every page of ``GET /customers`` in one stream, following ``pagination.after``.

        Filters: ``legalName``, ``email``, ``alias``, ``includeArchived``,
        ``sortBy``, ``sortOrder`` (or their snake_case names), and where the version
        lists them (2024-07-30) ``label`` and ``billingStatus``. Bounded:
        :class:`PaginationError` at an empty page that carries a cursor, a cursor
        given twice, or far more pages than ``totalResultSize`` allows. Pages come
        as the server gives them: :meth:`list_customers` drops duplicates and checks
        the count.
        """
        params = _list_params(filters, self.api_version)
        params["limit"] = str(self.page_size)
        return iter_pages(functools.partial(_customer_page, self), params, self.page_size)

    def list_customers(
        self,
        *,
        on_incomplete: OnIncomplete = "raise",
        streams: int = 2,
        on_progress: Progress | None = None,
        **filters: str | bool,
    ) -> list[dict[str, Any]]:
        """Every customer matching the filters, each once, newest first (or as ``sortOrder`` asks).

        Complete or loud (:mod:`sequence_nb.listing`): the distinct count is checked
        against ``totalResultSize``, a shortfall reads the listing again once, and
        one still short raises :class:`~sequence_nb.errors.IncompleteFetchError`
        (``on_incomplete="warn"``: a warning, and what was read). A listing longer
        than two pages is read from both ends at once (``streams=1`` turns that
        off); both streams share this client's rate limiter. ``on_progress(count,
        total)`` hears the distinct customers read after each page.
        """
        params = _list_params(filters, self.api_version)
        params["limit"] = str(self.page_size)
        listing = read_listing(
            functools.partial(_customer_page, self),
            params,
            page_size=self.page_size,
            streams=streams,
            on_incomplete=on_incomplete,
            on_progress=on_progress,
        )
        return listing.records

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        """One customer record (checked to be the one asked for)."""
        path = _customer_path(customer_id)
        return _own_record(self._request("GET", path), customer_id, "GET", path)

    def get_customer_by_alias(self, alias: str) -> dict[str, Any]:
        """The customer with this alias."""
        path = f"/customers/by-alias/{path_segment(alias, 'alias')}"
        return _record(self._request("GET", path), "GET", path)

    # -- writes ----------------------------------------------------------------

    def update_customer(
        self,
        customer_id: str,
        body: Mapping[str, Any] | Any,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Replace a customer's editable fields with ``body`` (validated first).

        ``body`` is a :class:`~sequence_nb.models.CustomerUpdate` or a dict. A PUT
        clears optional fields it leaves out: send the full record plus edits.
        """
        return _record(self.send_update(customer_id, body, idempotency_key))

    def send_update(
        self,
        customer_id: str,
        body: Mapping[str, Any] | Any,
        idempotency_key: str | None = None,
        *,
        retry: bool = True,
    ) -> Response:
        """Like :meth:`update_customer`, returning the whole :class:`Response`.

        ``retry=False`` makes exactly one attempt (a caller that re-reads the
        record before trying again retries itself).
        """
        path = _customer_path(customer_id)
        payload = validate_update_body(body, customer_id=customer_id, version=self.api_version)
        key = idempotency_key or new_idempotency_key()
        response = self._request("PUT", path, json=payload, idempotency_key=key, retry=retry)
        _own_record(response, customer_id, "PUT", path)
        return response

    def create_customer(
        self, body: Mapping[str, Any] | Any, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Create a customer (body validated first); the new record.

        The body is sent as Sequence's published ``POST /customers`` document has
        it, with the ``billingEmails`` list it requires: give ``billingEmails``, or
        an update-shaped body whose ``billingEmail`` becomes the list (see
        :func:`~sequence_nb.models.validate_create_body`). The API answers
        ``{"customer": record}``; a bare record is accepted too. In 2024-07-30 the
        body is the update's (``CreateOrUpdateCustomerRequest``).
        """
        if self.api_version is fields.SEED:
            payload = validate_create_body(body)
        else:
            payload = validate_body_2024(body, version=self.api_version, kind="create")
        key = idempotency_key or new_idempotency_key()
        response = self._request("POST", "/customers", json=payload, idempotency_key=key)
        answer = _record(response, "POST", "/customers")
        wrapped = answer.get("customer")
        return wrapped if isinstance(wrapped, dict) and "id" not in answer else answer

    def archive_customer(
        self, customer_id: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Archive a customer (``POST /customers/{id}/archive``); the archived record.

        Sequence documents no way back. Only versions that have the call
        (:attr:`ApiVersion.can_archive`) send it: the seed's raises
        :class:`UnsupportedOperationError` without sending anything. The answer must
        be the customer asked for with ``archivedAt`` set, else
        :class:`~sequence_nb.errors.UnexpectedResponseError` (``maybe_applied``).
        """
        version = self.api_version
        if not version.can_archive:
            having = ", ".join(v.name for v in fields.API_VERSIONS.values() if v.can_archive)
            raise UnsupportedOperationError(
                "archiving a customer needs an API version with POST /customers/{id}/archive "
                f"({having}); this client speaks {version.name!r}: nothing was sent"
            )
        path = f"{_customer_path(customer_id)}/archive"
        key = idempotency_key or new_idempotency_key()
        response = self._request("POST", path, idempotency_key=key)
        record = _own_record(response, customer_id, "POST", path)
        archived = record.get("archivedAt")
        if not isinstance(archived, str) or not archived:
            error = UnexpectedResponseError(
                f"archived customer {customer_id!r} but the answer's archivedAt is "
                f"{archived!r}, not a time: the customer may or may not be archived",
                method="POST",
                path=path,
                status_code=response.status_code,
                attempts=response.attempts,
            )
            error.maybe_applied = True
            raise error
        return record

    # -- transport ---------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        retry: bool = True,
    ) -> Response:
        """Send one call with pacing and retries; raise a typed error if it fails.

        ``retry=False`` makes exactly one attempt. The error of a write says in
        ``maybe_applied`` whether any attempt may have been applied (it was sent
        and got no answer, a cut one, a 5xx, or a 2xx that could not be read).
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        content = orjson.dumps(json) if json is not None else None
        write = method.upper() in _WRITE_METHODS
        maybe_applied = False
        attempt = 0
        while True:
            attempt += 1
            self._pace(attempt)
            try:
                outcome = self._attempt(method, path, params, content, headers, attempt, write)
            except UnexpectedResponseError as unexpected:
                unexpected.maybe_applied = unexpected.maybe_applied or maybe_applied
                raise
            if isinstance(outcome, Response):
                return outcome
            error = outcome
            maybe_applied = error.maybe_applied = maybe_applied or error.maybe_applied
            error.attempts = attempt
            delay = self.retry_policy.delay(error, attempt) if retry else None
            if delay is None:
                self._hold_back_after(error)
                raise _with_attempts(error, attempt)
            logger.info(
                "retrying %s %s in %.2f s after %s (attempt %d of %d)",
                method,
                path,
                delay,
                error.status_code or type(error).__name__,
                attempt + 1,
                self.retry_policy.max_retries + 1,
            )
            if isinstance(error, RateLimitError):
                self._limiter.pause(delay)
            time.sleep(delay)

    def _pace(self, attempt: int) -> None:
        """Wait for a rate-limit slot, unless this thread pre-paid a first attempt."""
        if attempt == 1:
            prepaid: int = getattr(self._prepaid, "calls", 0)
            if prepaid > 0:
                self._prepaid.calls = prepaid - 1
                return
        self._limiter.acquire()

    def _hold_back_after(self, error: APIError) -> None:
        """After giving up on a 429, make every caller wait what the server asked."""
        wait = error.retry_after if isinstance(error, RateLimitError) else None
        if wait is not None and wait <= self.retry_policy.max_retry_after:
            self._limiter.pause(wait)

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        attempt: int,
        write: bool,
    ) -> Response | APIError:
        """One attempt: the answer, or the error it ended in with ``maybe_applied`` set.

        A 2xx that is not JSON, and an answer in an encoding the client did not
        ask for, raise :class:`UnexpectedResponseError` (not retried: another try
        would get the same).
        """
        started = time.monotonic()
        try:
            answer = self._exchange(method, path, params, content, headers)
        except httpx.TransportError as exc:
            error = self._transport_error(exc, method, path)
            error.maybe_applied = write and not isinstance(exc, _NOT_SENT)
            return error
        except httpx.DecodingError as exc:
            unreadable = UnexpectedResponseError(
                self._scrub(str(exc)), method=method, path=path, attempts=attempt
            )
            unreadable.maybe_applied = write
            raise unreadable from None
        logger.debug(
            "%s %s -> %s in %.3f s (attempt %d)",
            method,
            path,
            answer.status_code,
            time.monotonic() - started,
            attempt,
        )
        if answer.is_success:
            key = headers.get("Idempotency-Key")
            try:
                return self._response(answer, method, path, attempt, key)
            except UnexpectedResponseError as exc:
                exc.maybe_applied = write
                raise
        error = self._status_error(answer, method, path)
        error.maybe_applied = write and not 400 <= answer.status_code < 500
        return error

    def _transport_error(self, exc: httpx.TransportError, method: str, path: str) -> APIError:
        """The typed error for a call that got no (whole) answer."""
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"no answer in time ({type(exc).__name__}: {exc})", method=method, path=path
            )
        if isinstance(exc, httpx.ConnectError):
            message = (
                f"could not connect to {self.base_url} ({exc}); "
                "check SEQUENCE_BASE_URL and the network"
            )
        else:
            message = f"{type(exc).__name__}: {exc}"
        return APIConnectionError(self._scrub(message), method=method, path=path)

    def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """One request and its whole answer, read and decoded by the transport.

        The transport bounds the exchange in time and size and hands on a body
        that is already decoded, without ``Content-Encoding``: httpx reads it as is.
        """
        request = self._http.build_request(
            method, path, params=params, content=content, headers=headers
        )
        return self._http.send(request)

    def _response(
        self, answer: httpx.Response, method: str, path: str, attempt: int, key: str | None
    ) -> Response:
        try:
            data = orjson.loads(answer.content)
        except orjson.JSONDecodeError:
            raise UnexpectedResponseError(
                f"answered {answer.status_code} with a body that is not JSON: "
                f"{_describe_body(answer)}",
                method=method,
                path=path,
                status_code=answer.status_code,
                attempts=attempt,
            ) from None
        return Response(
            status_code=answer.status_code,
            data=data,
            content=answer.content,
            attempts=attempt,
            idempotency_key=key,
            replayed=answer.headers.get("Idempotent-Replayed", "").lower() == "true",
        )

    def _status_error(self, answer: httpx.Response, method: str, path: str) -> APIError:
        cls = status_error_class(answer.status_code)
        message = self._scrub(_error_message(answer))
        if cls is RateLimitError:
            return RateLimitError(
                message,
                retry_after=_retry_after(answer),
                method=method,
                path=path,
                status_code=answer.status_code,
            )
        return cls(message, method=method, path=path, status_code=answer.status_code)

    def _scrub(self, text: str) -> str:
        """``text`` with the secret and the auth token blanked out."""
        for secret in (self._secret.get_secret_value(), self._auth.token()):
            text = text.replace(secret, "[REDACTED]")
        return text


def _with_attempts(error: APIError, attempts: int) -> APIError:
    error.attempts = attempts
    error.args = (error._describe(),)
    return error


def _checked_base_url(base_url: str, *, allow_insecure_http: bool = False) -> str:
    """The base URL without a trailing slash, or :class:`ConfigurationError`.

    Refused: credentials in the URL (they would show wherever the URL is shown),
    a scheme other than http(s), plain http to a host that is not this machine
    (unless allowed: Basic auth would cross the network in clear text), a query
    or fragment (calls would land under it, and a token in it would show wherever
    the URL is shown), and a path that does not end with ``/api``. Messages
    repeat neither credentials nor a query or fragment.
    """
    shown = _without_query(_without_credentials(base_url))
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        if "@" in base_url:  # the parser's message may quote a password
            raise _credentials_refused(shown) from None
        raise ConfigurationError(f"SEQUENCE_BASE_URL {shown!r} is not a URL ({exc})") from None
    if url.userinfo:
        raise _credentials_refused(shown)
    if "?" in base_url or "#" in base_url:
        raise ConfigurationError(
            f"SEQUENCE_BASE_URL must not carry a query or fragment, but {shown!r} does: "
            f"give the URL alone, e.g. {PRODUCTION_URL!r}"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"SEQUENCE_BASE_URL must be an http(s) URL such as {PRODUCTION_URL!r}, not {shown!r}"
        )
    if url.scheme == "http" and not allow_insecure_http and not is_loopback(url.host):
        secure = str(url.copy_with(scheme="https")).rstrip("/")
        raise ConfigurationError(
            f"SEQUENCE_BASE_URL {shown!r} is plain http:// to another machine: the client "
            f"secret would cross the network in clear text. Use {secure!r}, or pass "
            "allow_insecure_http=True if the connection is safe another way"
        )
    cleaned = str(url).rstrip("/")
    if not cleaned.endswith("/api"):
        raise ConfigurationError(
            f"SEQUENCE_BASE_URL must end with /api (the API lives there), "
            f"e.g. {url.scheme}://{url.netloc.decode()}/api, not {shown!r}"
        )
    return cleaned


def _credentials_refused(shown: str) -> ConfigurationError:
    return ConfigurationError(
        f"SEQUENCE_BASE_URL must not hold credentials, but {shown!r} does: pass "
        "client_id= and client_secret= or set SEQUENCE_CLIENT_ID and SEQUENCE_CLIENT_SECRET, "
        f"and give the URL alone, e.g. {PRODUCTION_URL!r}"
    )


def _without_query(text: str) -> str:
    """``text`` with a query or fragment blanked out."""
    cut = re.search(r"[?#]", text)
    return f"{text[: cut.start()]}[query or fragment removed]" if cut else text


def _without_credentials(text: str) -> str:
    """``text`` with whatever comes before an ``@`` in its host part blanked out."""
    before, at, after = text.rpartition("@")
    if not at:
        return text
    scheme, separator, _ = before.partition("://")
    return f"{scheme}{separator}[credentials removed]@{after}" if separator else f"[...]@{after}"


def path_segment(value: str, what: str) -> str:
    """``value`` escaped as one path segment; :class:`InvalidIdError` if it cannot be one.

    Escaping cannot save ``.`` and ``..`` (URLs resolve them: ``/customers/.`` is
    the list), and a ``/`` would be read as a separator by some servers and proxies.
    """
    if not isinstance(value, str) or value in ("", ".", "..") or "/" in value:
        raise InvalidIdError(value, what=what)
    return quote(value, safe="")


def _customer_path(customer_id: str) -> str:
    return f"/customers/{path_segment(customer_id, 'customer id')}"


def _default_headers(version: fields.ApiVersion) -> dict[str, str]:
    """The headers every request carries, the version's ``Sequence-Version`` among them."""
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "gzip",
        "Content-Type": "application/json",
        "User-Agent": "sequence-nb",
    }
    if version.header is not None:
        headers["Sequence-Version"] = version.header
    return headers


def _list_params(filters: Mapping[str, str | bool], version: fields.ApiVersion) -> dict[str, str]:
    """The query of ``GET /customers`` for ``filters``; a filter the version lacks is refused."""
    known = _SEED_FILTERS | set(version.listing_filters)
    params: dict[str, str] = {}
    for name, value in filters.items():
        api_name = _FILTERS.get(name)
        if api_name is None:
            allowed = ", ".join(sorted(known))
            raise TypeError(f"unknown filter {name!r}; the API filters by {allowed}")
        if api_name not in known:
            having = ", ".join(
                v.name for v in fields.API_VERSIONS.values() if api_name in v.listing_filters
            )
            raise TypeError(
                f"filter {name!r} is not in API version {version.name!r} (it is in {having}): "
                "pass api_version= to the client; this version filters by "
                + ", ".join(sorted(known))
            )
        if isinstance(value, bool):
            params[api_name] = "true" if value else "false"
        else:
            params[api_name] = str(value)
    for api_name, allowed_values in _FILTER_VALUES.items():
        given = params.get(api_name)
        if given is not None and given not in allowed_values:
            shown = " or ".join(repr(v) for v in allowed_values)
            raise ValueError(f"{api_name} must be {shown}, not {given!r}")
    return params


def _customer_page(client: SequenceClient, params: Mapping[str, str]) -> CustomerPage:
    """Read one page of ``GET /customers`` (the page reader of :mod:`sequence_nb.listing`)."""
    response = client._request("GET", "/customers", params=params)
    data = response.data
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponseError(
            "GET /customers answered without a list of customers under 'items'",
            method="GET",
            path="/customers",
            status_code=response.status_code,
        )
    for number, item in enumerate(items):
        if not isinstance(item.get("id"), str) or not item["id"]:
            raise UnexpectedResponseError(
                f"GET /customers answered item {number} of a page ({len(items)} items) with "
                f"'id' {item.get('id')!r}, not a non-empty string: without it the customer "
                "cannot be told apart from the others, so duplicates could not be dropped",
                method="GET",
                path="/customers",
                status_code=response.status_code,
            )
    pagination = data.get("pagination")
    total: object = pagination.get("totalResultSize") if isinstance(pagination, dict) else None
    return CustomerPage(
        content=response.content,
        items=items,
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        after=_next_cursor(data),
    )


def _next_cursor(data: dict[str, Any]) -> str | None:
    pagination = data.get("pagination")
    if not isinstance(pagination, dict):
        return None
    cursor = pagination.get("after")
    return cursor if isinstance(cursor, str) and cursor else None


def _record(response: Response, method: str = "", path: str = "") -> dict[str, Any]:
    """The record in a 2xx answer. A write answered with something else may still
    have been applied (the server said it succeeded): its error says ``maybe_applied``."""
    if not isinstance(response.data, dict):
        error = UnexpectedResponseError(
            "expected a customer record (a JSON object)",
            method=method,
            path=path,
            status_code=response.status_code,
            attempts=response.attempts,
        )
        error.maybe_applied = method in _WRITE_METHODS
        raise error
    return response.data


def _own_record(response: Response, customer_id: str, method: str, path: str) -> dict[str, Any]:
    """The record in ``response``, checked to be the customer asked for.

    A write answered with another customer's record may have changed something:
    its error says ``maybe_applied``.
    """
    record = _record(response, method, path)
    found = record.get("id")
    if found == customer_id:
        return record
    what = f"the record of {found!r}" if found is not None else "a record without an id"
    error = UnexpectedResponseError(
        f"asked for customer {customer_id!r} but the answer is {what}",
        method=method,
        path=path,
        status_code=response.status_code,
        attempts=response.attempts,
    )
    error.maybe_applied = method in _WRITE_METHODS
    raise error


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _describe_body(answer: httpx.Response) -> str:
    content = answer.content
    if not content.strip():
        return "(an empty body)"
    if b"<html" in content[:500].lower() or b"<!doctype" in content[:500].lower():
        title = _TITLE.search(content)
        name = title.group(1).decode(errors="replace").strip() if title else "untitled"
        return f"an HTML page ({name!r}): a proxy or gateway may be in the way"
    return content[:_MESSAGE_LIMIT].decode(errors="replace")


def _error_message(answer: httpx.Response) -> str:
    """The server's own words from an error answer, whatever shape they come in."""
    try:
        data = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        return f"{answer.reason_phrase or 'error'}: {_describe_body(answer)}"
    if not isinstance(data, dict):
        return str(data)[:_MESSAGE_LIMIT]
    message = data.get("message") or data.get("error") or data.get("detail")
    text = str(message) if message else str(data)[:_MESSAGE_LIMIT]
    details = data.get("errors")
    if isinstance(details, list) and details:
        parts = [
            f"{item.get('field', '?')}: {item.get('message', '')}"
            if isinstance(item, dict)
            else str(item)
            for item in details
        ]
        text = f"{text} ({'; '.join(parts)})"
    return text
