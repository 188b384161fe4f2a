"""Counters of what the sandbox saw and did, for tests to read."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SandboxStats:
    """What the sandbox counted since start (or since ``reset_stats()``).

    ``SandboxState.stats`` hands out a copy, so reading it is safe from any thread.
    """

    #: Requests received, by HTTP method (every request, faults included).
    requests: Counter[str] = field(default_factory=Counter)
    #: The most requests the server was handling at one moment.
    max_in_flight: int = 0
    #: Responses sent, by status code (dropped connections are not responses).
    statuses: Counter[int] = field(default_factory=Counter)
    #: Real applications of PUT/POST per customer id (replays not included).
    writes_applied: Counter[str] = field(default_factory=Counter)
    #: Write bodies answered 400/415 (invalid JSON, invalid fields).
    rejected_bodies: int = 0
    #: Writes answered from the idempotency store instead of being applied.
    replays: int = 0
    #: Idempotency keys reused with another method, path or body (409).
    idempotency_conflicts: int = 0
    #: 429 answers sent (the rate limit and injected ones).
    rate_limited: int = 0
    #: Faults injected, all kinds together.
    faults_injected: int = 0
    #: Faults injected by kind: ``error``, ``rate_limit``, ``drop``, ``lost_answer``.
    faults: Counter[str] = field(default_factory=Counter)
    #: Seconds between a customer's last GET being answered and a PUT of it being
    #: applied: the window in which a remote edit would be overwritten.
    write_windows: list[float] = field(default_factory=list)

    @property
    def total_requests(self) -> int:
        """All requests received."""
        return sum(self.requests.values())

    @property
    def total_writes_applied(self) -> int:
        """All real write applications."""
        return sum(self.writes_applied.values())

    def add_fault(self, kind: str) -> None:
        """Count one injected fault (an injected 429 is also counted as rate limited)."""
        self.faults_injected += 1
        self.faults[kind] += 1
        if kind == "rate_limit":
            self.rate_limited += 1

    def snapshot(self) -> SandboxStats:
        """A deep copy."""
        return copy.deepcopy(self)
