"""``SequenceClient``: the one place that talks HTTP to Sequence's customers API.

It authenticates, pages, paces requests under the rate limit, retries what is
safe to retry (every write carries an ``Idempotency-Key`` reused across its
retries, so a retried write is applied once) and turns failures into typed
errors. It knows nothing about polars. Many threads may share one client.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import SecretStr

from sequence_nb.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    PaginationError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    status_error_class,
)
from sequence_nb.models import validate_update_body
from sequence_nb.ratelimit import RateLimiter

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
}
_RETRYABLE_STATUS = frozenset({408, 429})
#: The largest answer the client reads (a page of 100 customers is about 100 kB).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
_MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class Response:
    """A successful answer: the parsed JSON, the raw bytes and how it was obtained."""

    status_code: int
    data: Any
    content: bytes
    attempts: int
    idempotency_key: str | None
    replayed: bool


@dataclass(frozen=True)
class CustomerPage:
    """One page of ``GET /customers``: its raw bytes (for polars) and parsed items."""

    content: bytes
    items: list[dict[str, Any]]
    total: int | None


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


def new_idempotency_key() -> str:
    """A fresh, unique ``Idempotency-Key``."""
    return str(uuid.uuid4())


class SequenceClient:
    """A thread-safe client for Sequence's customers API.

    Omitted arguments come from ``SEQUENCE_CLIENT_ID``, ``SEQUENCE_CLIENT_SECRET``
    and ``SEQUENCE_BASE_URL`` (default :attr:`production_url`; Sequence's own
    test environment is :attr:`sandbox_url`). ``timeout`` bounds connecting and
    each read; ``answer_deadline`` bounds a whole answer. Retries: ``max_retries`` more
    attempts after the first on 408, 429, 5xx, connection errors and timeouts,
    waiting ``Retry-After`` (up to ``max_retry_after`` seconds) or a capped
    exponential backoff with jitter. ``rate_limit_per_minute`` paces all
    threads together (``None`` turns pacing off).
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
    ) -> None:
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
        if not 1 <= page_size <= 100:
            raise ValueError("page_size must be between 1 and 100 (the API's limit)")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.client_id = client_id
        self.base_url = _checked_base_url(base_url)
        self.answer_deadline = answer_deadline
        self.max_retries = max_retries
        self.retry_initial_delay = retry_initial_delay
        self.retry_max_delay = retry_max_delay
        self.max_retry_after = max_retry_after
        self.page_size = page_size
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self._auth = _BasicAuth(client_id, self._secret)
        self._limiter = RateLimiter(rate_limit_per_minute)
        self._random = random.Random()
        self._random_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self._auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "sequence-nb",
            },
        )

    def __repr__(self) -> str:
        return f"SequenceClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

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

    # -- reads -----------------------------------------------------------------

    def iter_customer_pages(self, **filters: str | bool) -> Iterator[CustomerPage]:
        """Every page of ``GET /customers``, following ``pagination.after`` to the end.

        Filters: ``legalName``, ``email``, ``alias``, ``includeArchived``,
        ``sortBy``, ``sortOrder`` (or their snake_case names).
        """
        params = _list_params(filters)
        params["limit"] = str(self.page_size)
        seen: set[str] = set()
        while True:
            response = self.request("GET", "/customers", params=params)
            page = _customer_page(response)
            yield page
            cursor = _next_cursor(response.data)
            if cursor is None:
                return
            if cursor in seen:
                raise PaginationError(
                    f"the server returned the cursor {cursor!r} a second time; "
                    "stopping instead of looping forever",
                    method="GET",
                    path="/customers",
                )
            seen.add(cursor)
            params["after"] = cursor

    def list_customers(self, **filters: str | bool) -> list[dict[str, Any]]:
        """Every customer matching the filters, across all pages."""
        return [item for page in self.iter_customer_pages(**filters) for item in page.items]

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        """One customer record."""
        return _record(self.request("GET", _customer_path(customer_id)))

    def get_customer_by_alias(self, alias: str) -> dict[str, Any]:
        """The customer with this alias."""
        return _record(self.request("GET", f"/customers/by-alias/{_path_part(alias, 'alias')}"))

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
    ) -> Response:
        """Like :meth:`update_customer`, returning the whole :class:`Response`."""
        payload = validate_update_body(body, customer_id=customer_id)
        key = idempotency_key or new_idempotency_key()
        return self.request("PUT", _customer_path(customer_id), json=payload, idempotency_key=key)

    def create_customer(
        self, body: Mapping[str, Any] | Any, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Create a customer from an update-shaped body (validated first); the new record.

        The API answers ``{"customer": record}``; a bare record is accepted too.
        """
        payload = validate_update_body(body)
        key = idempotency_key or new_idempotency_key()
        answer = _record(self.request("POST", "/customers", json=payload, idempotency_key=key))
        wrapped = answer.get("customer")
        return wrapped if isinstance(wrapped, dict) and "id" not in answer else answer

    # -- transport ---------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Response:
        """Send one call with pacing and retries; raise a typed error if it fails."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        content = orjson.dumps(json) if json is not None else None
        attempt = 0
        while True:
            attempt += 1
            self._limiter.acquire()
            started = time.monotonic()
            try:
                answer = self._exchange(method, path, params, content, headers)
            except httpx.TimeoutException as exc:
                error: APIError = APITimeoutError(
                    f"no answer in time ({type(exc).__name__}: {exc})", method=method, path=path
                )
            except httpx.ConnectError as exc:
                error = APIConnectionError(
                    self._scrub(
                        f"could not connect to {self.base_url} ({exc}); "
                        "check SEQUENCE_BASE_URL and the network"
                    ),
                    method=method,
                    path=path,
                )
            except httpx.TransportError as exc:
                error = APIConnectionError(
                    self._scrub(f"{type(exc).__name__}: {exc}"), method=method, path=path
                )
            else:
                logger.debug(
                    "%s %s -> %s in %.3f s (attempt %d)",
                    method,
                    path,
                    answer.status_code,
                    time.monotonic() - started,
                    attempt,
                )
                if answer.is_success:
                    return self._response(answer, method, path, attempt, idempotency_key)
                error = self._status_error(answer, method, path)
            error.attempts = attempt
            delay = self._retry_delay(error, attempt)
            if delay is None:
                raise _with_attempts(error, attempt)
            logger.info(
                "retrying %s %s in %.2f s after %s (attempt %d of %d)",
                method,
                path,
                delay,
                error.status_code or type(error).__name__,
                attempt + 1,
                self.max_retries + 1,
            )
            if isinstance(error, RateLimitError):
                self._limiter.pause(delay)
            time.sleep(delay)

    def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """One request and its whole answer, read within ``answer_deadline`` seconds.

        httpx's timeouts bound each read, not the answer: a server that trickles
        a byte at a time would otherwise hold the call for ever. Answers larger
        than ``MAX_ANSWER_BYTES`` are refused.
        """
        request = self._http.build_request(
            method, path, params=params, content=content, headers=headers
        )
        deadline = time.monotonic() + self.answer_deadline
        answer = self._http.send(request, stream=True)
        try:
            chunks, size = [], 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise httpx.ReadError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(
                        f"the answer took longer than {self.answer_deadline:g} s to arrive"
                    )
                chunks.append(chunk)
        finally:
            answer.close()
        return httpx.Response(
            answer.status_code,
            headers=answer.headers,
            content=b"".join(chunks),
            request=request,
        )

    def _retry_delay(self, error: APIError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        retryable = isinstance(error, ServerError | APIConnectionError) or (
            error.status_code in _RETRYABLE_STATUS
        )
        if not retryable or attempt > self.max_retries:
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                error.message += (
                    f" (the server asked to wait {error.retry_after:g} s, more than "
                    f"max_retry_after={self.max_retry_after:g} s)"
                )
                return None
            return error.retry_after
        backoff = min(self.retry_initial_delay * 2.0 ** (attempt - 1), self.retry_max_delay)
        with self._random_lock:
            jitter = 1 - 0.25 * self._random.random()
        return backoff * jitter

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


def _checked_base_url(base_url: str) -> str:
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"SEQUENCE_BASE_URL must be an http(s) URL such as {PRODUCTION_URL!r}, not {base_url!r}"
        )
    cleaned = str(url).rstrip("/")
    if not cleaned.endswith("/api"):
        raise ConfigurationError(
            f"SEQUENCE_BASE_URL must end with /api (the API lives there), "
            f"e.g. {url.scheme}://{url.netloc.decode()}/api, not {base_url!r}"
        )
    return cleaned


def _path_part(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return quote(value, safe="")


def _customer_path(customer_id: str) -> str:
    return f"/customers/{_path_part(customer_id, 'customer id')}"


def _list_params(filters: Mapping[str, str | bool]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in filters.items():
        if name not in _FILTERS:
            allowed = ", ".join(sorted({v for v in _FILTERS.values()}))
            raise TypeError(f"unknown filter {name!r}; the API filters by {allowed}")
        api_name = _FILTERS[name]
        if isinstance(value, bool):
            params[api_name] = "true" if value else "false"
        else:
            params[api_name] = str(value)
    order = params.get("sortOrder")
    if order is not None and order not in ("ASC", "DESC"):
        raise ValueError(f"sortOrder must be 'ASC' or 'DESC', not {order!r}")
    return params


def _customer_page(response: Response) -> CustomerPage:
    data = response.data
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponseError(
            "GET /customers answered without a list of customers under 'items'",
            method="GET",
            path="/customers",
            status_code=response.status_code,
        )
    pagination = data.get("pagination")
    total: object = pagination.get("totalResultSize") if isinstance(pagination, dict) else None
    return CustomerPage(
        content=response.content,
        items=items,
        total=total if isinstance(total, int) else None,
    )


def _next_cursor(data: dict[str, Any]) -> str | None:
    pagination = data.get("pagination")
    if not isinstance(pagination, dict):
        return None
    cursor = pagination.get("after")
    return cursor if isinstance(cursor, str) and cursor else None


def _record(response: Response) -> dict[str, Any]:
    if not isinstance(response.data, dict):
        raise UnexpectedResponseError(
            "expected a customer record (a JSON object)", status_code=response.status_code
        )
    return response.data


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
