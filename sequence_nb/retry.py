"""``RetryPolicy``: which failed calls are tried again, and how long to wait first.

A value of its own so that the client and the push share one rule: retry only
what may succeed on a second try (408, 429, 5xx, no answer), honour the server's
``Retry-After`` up to a cap, and otherwise back off exponentially with jitter so
that many threads do not retry in step.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sequence_nb.errors import APIConnectionError, APIError, RateLimitError, ServerError

__all__ = ["MAX_WAIT", "RetryPolicy", "check_wait"]

#: Statuses below 500 that are worth another try: request timeout and rate limited.
RETRYABLE_STATUS = frozenset({408, 429})
#: A backoff is scaled by a random factor in (1 - JITTER, 1].
JITTER = 0.25
#: The longest wait, in seconds, any setting may ask for: an hour. A longer one would look
#: like a hang, and a huge one (``1e300``) makes ``time.sleep`` and ``Event.wait`` raise
#: ``OverflowError`` instead of waiting.
MAX_WAIT = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_retries`` more attempts after the first, with capped backoff.

    The n-th retry waits ``initial_delay * 2 ** (n - 1)`` seconds, at most
    ``max_delay``, less up to a quarter of random jitter; a 429's ``Retry-After``
    is waited instead, unless it asks for more than ``max_retry_after`` seconds,
    in which case the call fails at once (waiting an hour would look like a hang).
    Each number of seconds is from 0 to :data:`MAX_WAIT` (an hour).
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"max_retries must be a whole number, 0 or more, not {retries!r}")
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            check_wait(name, getattr(self, name))

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


def check_wait(name: str, value: object) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is a number of seconds (an int or a
    float, not a bool) from 0 to :data:`MAX_WAIT`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        fits = False
    else:
        fits = math.isfinite(value) and 0 <= value <= MAX_WAIT
    if not fits:
        raise ValueError(
            f"{name} must be 0 or a positive, finite number of seconds, at most "
            f"{MAX_WAIT:g} seconds (an hour), not {value!r}"
        )
