"""A pacing rate limiter shared by every thread that uses one client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Seconds of slack in the pacing: ``per_minute`` requests span a minute plus this, so
#: requests that reach the server up to this much later or earlier than they were sent
#: still leave no 60-second window there holding more than ``per_minute``.
ARRIVAL_SLACK = 1.0


class RateLimiter:
    """Spaces requests evenly so that no minute holds more than ``per_minute``.

    Each caller reserves the next free slot under a lock and sleeps until it,
    so many threads together never go faster than the limit, and a steady
    stream runs just under the limit (:data:`ARRIVAL_SLACK`: paced exactly at
    it, any jitter on the way would make a run longer than a minute draw a
    429) rather than in bursts that the server would answer with 429.
    ``pause(seconds)`` holds every caller back, e.g. after a 429.
    """

    def __init__(
        self,
        per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute is not None and per_minute <= 0:
            raise ValueError("rate_limit_per_minute must be positive (or None for no limit)")
        self.per_minute = per_minute
        self._interval = (60.0 + ARRIVAL_SLACK) / per_minute if per_minute else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def acquire(self, count: int = 1) -> float:
        """Wait for this caller's ``count`` consecutive slots; returns the seconds waited.

        With ``count > 1`` the caller waits for the last of its slots, after which
        its ``count`` calls may go out back to back: none of them goes out earlier
        than its own slot would have allowed, so the long-run rate stays at the limit.
        """
        if count < 1:
            raise ValueError(f"count must be 1 or more, not {count!r}")
        if not self._interval and self._next_slot == 0.0:
            return 0.0
        with self._lock:
            now = self._clock()
            last = max(now, self._next_slot) + (count - 1) * self._interval
            self._next_slot = last + self._interval
        wait = last - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now."""
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={self.per_minute})"
