"""A sliding 60-second request window per client id."""

from __future__ import annotations

import math
from collections import deque

WINDOW_SECONDS = 60.0


class SlidingWindowLimiter:
    """Allows ``per_minute`` requests in any 60 s window per client. Not locked."""

    def __init__(self, per_minute: int | None = None) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def acquire(self, client_id: str, now: float) -> int | None:
        """Count a request; ``None`` if allowed, else the whole seconds to wait (>= 1)."""
        if self.per_minute is None:
            return None
        seen = self._seen.setdefault(client_id, deque())
        while seen and now - seen[0] >= WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= self.per_minute:
            wait = seen[len(seen) - self.per_minute] + WINDOW_SECONDS - now
            return max(1, math.ceil(wait))
        seen.append(now)
        return None

    def reset(self) -> None:
        """Forget every request seen."""
        self._seen.clear()
