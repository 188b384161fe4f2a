"""Stored answers of writes sent with an ``Idempotency-Key``."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

#: How long a key is kept (Sequence documents 24 hours).
TTL_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class StoredAnswer:
    """What a key was first used for and what was answered."""

    method: str
    path: str
    body_hash: str
    status: int
    body: bytes
    stored_at: float


class IdempotencyStore:
    """Answers by (client id, key), forgotten after :data:`TTL_SECONDS`. Not locked."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._answers: OrderedDict[tuple[str, str], StoredAnswer] = OrderedDict()

    def get(self, client_id: str, key: str, now: float) -> StoredAnswer | None:
        """The stored answer for a key, if still kept."""
        self._expire(now)
        return self._answers.get((client_id, key))

    def put(self, client_id: str, key: str, answer: StoredAnswer) -> None:
        """Remember an answer."""
        self._answers[(client_id, key)] = answer
        self._answers.move_to_end((client_id, key))

    def __len__(self) -> int:
        return len(self._answers)

    def _expire(self, now: float) -> None:
        while self._answers:
            oldest = next(iter(self._answers.values()))
            if now - oldest.stored_at < self.ttl:
                break
            self._answers.popitem(last=False)
