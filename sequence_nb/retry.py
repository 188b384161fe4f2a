"""``RetryPolicy``: which failed calls are tried again, and how long to wait first.

A value of its own so that the client and the push share one rule: retry only
what may succeed on a second try (408, 429, 5xx, no answer), honour the server's
``Retry-After`` up to a cap, and otherwise back off exponentially with jitter so
that many threads do not retry in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sequence_nb.errors import APIConnectionError, APIError, RateLimitError, ServerError

__all__ = ["RetryPolicy"]

#: Statuses below 500 that are worth another try: request timeout and rate limited.
RETRYABLE_STATUS = frozenset({408, 429})
#: A backoff is scaled by a random factor in (1 - JITTER, 1].
JITTER = 0.25


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_retries`` more attempts after the first, with capped backoff.

    The n-th retry waits ``initial_delay * 2 ** (n - 1)`` seconds, at most
    ``max_delay``, less up to a quarter of random jitter; a 429's ``Retry-After``
    is waited instead, unless it asks for more than ``max_retry_after`` seconds,
    in which case the call fails at once (waiting an hour would look like a hang).
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries!r}")
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more seconds, not {getattr(self, name)!r}")

    @staticmethod
    def is_retryable(error: APIError) -> bool:
        """Whether another attempt may succeed: 408, 429, 5xx, no answer or no answer in time."""
        return isinstance(error, ServerError | APIConnectionError) or (
            error.status_code in RETRYABLE_STATUS
        )

    def delay(self, error: APIError, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        When a ``Retry-After`` is too long, the error's message says so.
        """
        if not self.is_retryable(error) or attempt > self.max_retries:
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                error.message += (
                    f" (the server asked to wait {error.retry_after:g} s, more than "
                    f"max_retry_after={self.max_retry_after:g} s)"
                )
                return None
            return error.retry_after
        backoff = min(self.initial_delay * 2.0 ** (attempt - 1), self.max_delay)
        return backoff * (1 - JITTER * random.random())
