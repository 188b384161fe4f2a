"""Typed errors. Each carries what went wrong in words, never a credential."""

from __future__ import annotations

from collections.abc import Sequence


class SequenceError(Exception):
    """Base class of every error sequence_nb raises on purpose."""


class ConfigurationError(SequenceError):
    """The client cannot be set up as given (missing credentials, a bad base URL)."""


class InvalidBodyError(SequenceError, ValueError):
    """An update (or create) body failed validation before anything was sent."""

    def __init__(
        self,
        problems: Sequence[tuple[str, str]],
        *,
        customer_id: str | None = None,
        kind: str = "update",
    ):
        self.problems = list(problems)
        self.customer_id = customer_id
        where = f"customer {customer_id}: " if customer_id else ""
        details = "; ".join(f"{column} {message}" for column, message in self.problems)
        super().__init__(f"{where}invalid {kind} body: {details}")


class UnsupportedOperationError(SequenceError):
    """A call the client's API version does not have (archiving in the seed's); nothing was sent."""


class InvalidIdError(SequenceError, ValueError):
    """An id or alias that cannot name one customer in a URL path; nothing was sent.

    Empty, ``.``, ``..`` or holding ``/``: such a value would change which resource
    the path names (``GET /customers/.`` is ``GET /customers``, the list).
    """

    def __init__(self, value: object, *, what: str = "customer id") -> None:
        self.value = value
        self.what = what
        super().__init__(
            f"{what} {value!r} cannot be sent: it must be a non-empty string other than "
            "'.' and '..', without '/' (else the URL would name another resource)"
        )


class APIError(SequenceError):
    """The API answered with an error, or could not be reached.

    ``status_code`` is ``None`` when no answer came. ``message`` is what the
    server said (its error bodies are not documented, so it is shown as given).
    """

    status_code: int | None = None
    #: For a write: whether an attempt may have been applied (it got no definitive
    #: answer: none, a cut one, a timeout, a 5xx). False when every attempt was
    #: refused with a 4xx, and always False for a read.
    maybe_applied: bool = False

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status_code: int | None = None,
        attempts: int = 1,
    ) -> None:
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        self.method = method
        self.path = path
        self.attempts = attempts
        super().__init__(self._describe())

    def _describe(self) -> str:
        call = f"{self.method} {self.path}".strip()
        status = f" -> {self.status_code}" if self.status_code is not None else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{call}{status}{tries}: {self.message}"


class APIStatusError(APIError):
    """The API answered with an error status."""


class BadRequestError(APIStatusError):
    """400: the API rejected the request as invalid."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """401: the client id or secret is wrong."""

    status_code = 401


class PermissionDeniedError(APIStatusError):
    """403: the credentials may not do this."""

    status_code = 403


class NotFoundError(APIStatusError):
    """404: no such customer."""

    status_code = 404


class ConflictError(APIStatusError):
    """409: for instance an idempotency key reused with another body."""

    status_code = 409


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` is the wait the server asked for."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ServerError(APIStatusError):
    """5xx: trouble on the server side."""


class UnexpectedResponseError(APIError):
    """The API answered 2xx with a body that is not what the contract says."""


class APIConnectionError(APIError):
    """No answer: the connection failed, was reset or the answer was cut short."""


class APITimeoutError(APIConnectionError):
    """No answer in time."""


class PaginationError(APIError):
    """Paging would not end: the server gave back a cursor it had given before, an empty
    page that still carries a cursor, or far more pages than its ``totalResultSize`` allows."""


class IncompleteFetchError(SequenceError):
    """A listing, read twice, still held fewer distinct customers than the server counts.

    ``expected`` is the server's ``totalResultSize`` (the largest given on the first and
    last page of each stream), ``found`` the distinct customers read, ``missing`` the
    difference, and ``records`` what was read (distinct, in listing order) for whoever
    wants it anyway.
    """

    def __init__(
        self,
        *,
        expected: int,
        found: int,
        reads: int,
        sort_by: str | None = None,
        records: Sequence[dict[str, object]] = (),
    ) -> None:
        self.expected = expected
        self.found = found
        self.missing = expected - found
        self.reads = reads
        self.sort_by = sort_by
        self.records = list(records)
        moving = (
            f"the listing is sorted by {sort_by!r}, which changes when a customer is edited"
            if sort_by is not None
            else "customers were created, archived or edited during the fetch"
        )
        times = "once" if reads == 1 else f"{reads} times"
        #: What went wrong and why, without the advice (the text of the warning given instead).
        self.summary = (
            f"GET /customers gave {found} distinct customers but the server counts {expected} "
            f"(totalResultSize): {self.missing} missing after reading the listing {times}. "
            "Records that move between pages while they are paged are skipped (and others "
            f"read twice); here {moving}."
        )
        super().__init__(
            f"{self.summary} Fetch again (the default sort, creation time, never changes), or "
            "pass on_incomplete='warn' to take what was read with a warning."
        )


class IncompleteFetchWarning(UserWarning):
    """A fetch that may be missing customers (taken anyway, or on a sort that can move)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP status."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)


class PlanError(SequenceError, ValueError):
    """The frames cannot be compared at all (no ``id`` column, duplicate original ids)."""
