"""Everything a running sandbox holds, behind one lock.

The server runs in its own thread and tests read from another; every method takes
``lock`` and hands out copies, never the stored objects.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import hmac
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sequence_nb import fields
from sequence_nb.sandbox.data import PlantedProblem, format_time, generate_dataset
from sequence_nb.sandbox.idempotency import IdempotencyStore
from sequence_nb.sandbox.ratelimit import SlidingWindowLimiter
from sequence_nb.sandbox.stats import SandboxStats
from sequence_nb.sandbox.store import CustomerStore

DEMO_CLIENT_ID = "demo-client"
#: The sandbox's fixed demo secret: a local test credential, not a real one.
DEMO_CLIENT_SECRET = "sandbox-demo-secret-4f1c2b9e7a6d5c3e"

_T = TypeVar("_T")

#: The values of :attr:`Faults.endless_pages`.
ENDLESS_PAGES = (None, "empty", "again")


@dataclass(frozen=True)
class Faults:
    """Fault-injection knobs. Rates are fractions of requests in [0, 1]."""

    #: Seconds added to every request (``asyncio.sleep``, the loop keeps serving).
    latency: float = 0.0
    #: Requests answered 500/502/503 before anything else happens.
    error_rate: float = 0.0
    #: Requests answered 429 (``Retry-After: 1``) before anything else happens.
    rate_limit_rate: float = 0.0
    #: Requests whose connection is dropped mid-answer before anything is applied.
    drop_rate: float = 0.0
    #: Writes that are applied (and stored for idempotency) but whose answer is lost.
    lost_answer_rate: float = 0.0
    #: A PUT whose body carries no ``externalIds`` empties the record's
    #: ``linkedServices`` (one reading of "PUT replaces" that the documents leave open):
    #: a write with a side effect nobody asked for.
    unlink_on_put: bool = False
    #: After a listing's first page (a request without a cursor) is served, this many of
    #: its records swap their sort value (``legalName`` or ``createdAt``, whichever the
    #: listing sorts by) with as many records from the middle of the listing, as when
    #: customers are renamed while someone pages through them: the listing then skips the
    #: ones moved back and reads the ones moved on twice. A listing sorted by ``id`` is
    #: left alone (ids never change).
    move_records: int = 0
    #: How many first pages ``move_records`` disturbs before it stops (None: every one).
    #: Setting either knob starts the count again.
    move_times: int | None = None
    #: A server that never ends a listing: ``"empty"`` gives the last page a fresh cursor
    #: anyway, and every page past the end is empty with another fresh cursor;
    #: ``"again"`` makes the cursor past the last page start the listing over (with a
    #: fresh cursor each time round). None: listings end.
    endless_pages: str | None = None

    def __post_init__(self) -> None:
        if not self.latency >= 0:
            raise ValueError("latency must be >= 0 seconds")
        if self.move_records < 0 or (self.move_times is not None and self.move_times < 0):
            raise ValueError("move_records and move_times must be >= 0")
        if self.endless_pages not in ENDLESS_PAGES:
            raise ValueError(f"endless_pages must be one of {ENDLESS_PAGES}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request: ``kind`` is None, error, rate_limit, drop or lost_answer."""

    kind: str | None = None
    status: int = 0


class SandboxState:
    """Records, aliases, credentials, limits, faults, idempotency answers and stats."""

    def __init__(
        self,
        records: list[dict[str, Any]] | None = None,
        *,
        aliases: dict[str, list[str]] | None = None,
        planted: list[PlantedProblem] | None = None,
        account_id: str | None = None,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        rate_limit_per_minute: int | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        copy_records: bool = True,
        api_version: fields.ApiVersion | str = fields.SEED,
        billing_active: set[str] | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret must be non-empty")
        #: The API version the sandbox serves (its records, bodies and header).
        self.version = fields.api_version(api_version)
        self.lock = threading.RLock()
        self.store = CustomerStore(
            records or [],
            aliases,
            copy_records=copy_records,
            version=self.version,
            billing_active=billing_active,
        )
        self._planted = list(planted or [])
        given = [r.get("sequenceAccountId") for r in records or [] if r.get("sequenceAccountId")]
        self.account_id = (
            account_id
            or (str(given[0]) if given else None)
            or str(uuid.UUID(int=random.Random(f"account:{seed}").getrandbits(128), version=4))
        )
        self.client_id = client_id
        #: A local demo credential, so a plain string.
        self.client_secret = client_secret
        self._credentials = (client_id.encode(), client_secret.encode())
        self.limiter = SlidingWindowLimiter()
        self.set_rate_limit(rate_limit_per_minute)
        self._faults = faults or Faults()
        self._fault_rng = random.Random(f"faults:{seed}")
        self._moves_done = 0
        self._id_rng = random.Random(f"ids:{seed}")
        self.idempotency = IdempotencyStore()
        self._stats = SandboxStats()
        self._in_flight = 0
        self._last_read: dict[str, float] = {}

    @classmethod
    def generated(
        cls,
        customers: int,
        seed: int = 0,
        api_version: fields.ApiVersion | str = fields.SEED,
        **options: Any,
    ) -> SandboxState:
        """A state holding ``customers`` generated records (see :mod:`.data`) of ``api_version``."""
        data = generate_dataset(customers, seed, api_version)
        return cls(
            data.records,
            aliases=data.aliases,
            planted=data.planted,
            account_id=data.account_id,
            seed=seed,
            api_version=api_version,
            billing_active=data.billing_active,
            copy_records=False,  # freshly generated: nobody else holds them
            **options,
        )

    def locked(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` holding the lock."""
        with self.lock:
            return work()

    # -- auth and limits -----------------------------------------------------

    def authenticate(self, header: str | None) -> str | None:
        """The client id if ``header`` carries the right Basic credentials, else None."""
        if not header or header[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        given_id, sep, given_secret = decoded.partition(b":")
        good_id, good_secret = self._credentials
        ok = hmac.compare_digest(given_id, good_id) & hmac.compare_digest(given_secret, good_secret)
        return self.client_id if sep and ok else None

    def set_rate_limit(self, per_minute: int | None) -> None:
        """Change the per-client limit (None: unlimited)."""
        if per_minute is not None and per_minute < 1:
            raise ValueError("rate_limit_per_minute must be >= 1 or None")
        with self.lock:
            self.limiter.per_minute = per_minute

    def take_rate_slot(self, client_id: str) -> int | None:
        """Count a request against the limit; seconds to wait if over it."""
        with self.lock:
            wait = self.limiter.acquire(client_id, time.monotonic())
            if wait is not None:
                self._stats.rate_limited += 1
            return wait

    # -- faults --------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The current fault knobs."""
        return self._faults

    def set_faults(self, **knobs: Any) -> Faults:
        """Change fault knobs (and ``rate_limit_per_minute``) while running."""
        with self.lock:
            if "rate_limit_per_minute" in knobs:
                self.set_rate_limit(knobs.pop("rate_limit_per_minute"))
            self._faults = dataclasses.replace(self._faults, **knobs)
            if "move_records" in knobs or "move_times" in knobs:
                self._moves_done = 0
            return self._faults

    def take_move(self) -> int:
        """How many records to move after the listing's first page just served (0: none).

        Counts the first page against ``move_times``.
        """
        with self.lock:
            f = self._faults
            if not f.move_records or (
                f.move_times is not None and self._moves_done >= f.move_times
            ):
                return 0
            self._moves_done += 1
            return f.move_records

    def draw_fault(self, is_write: bool) -> FaultDecision:
        """Decide (with the seeded RNG) which fault, if any, hits this request."""
        with self.lock:
            f, rng = self._faults, self._fault_rng
            if f.error_rate and rng.random() < f.error_rate:
                return FaultDecision("error", rng.choice((500, 502, 503)))
            if f.rate_limit_rate and rng.random() < f.rate_limit_rate:
                return FaultDecision("rate_limit", 429)
            if f.drop_rate and rng.random() < f.drop_rate:
                return FaultDecision("drop")
            if is_write and f.lost_answer_rate and rng.random() < f.lost_answer_rate:
                return FaultDecision("lost_answer")
            return FaultDecision()

    # -- stats ---------------------------------------------------------------

    def enter(self, method: str) -> None:
        """Count a request arriving (by method) and the requests now in flight."""
        with self.lock:
            self._in_flight += 1
            self._stats.requests[method] += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._in_flight)

    def leave(self) -> None:
        """Count a request finished (answered, rejected or dropped)."""
        with self.lock:
            self._in_flight -= 1

    @property
    def stats(self) -> SandboxStats:
        """A snapshot of the counters."""
        with self.lock:
            return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self.lock:
            self._stats = SandboxStats()

    def count(self, update: Callable[[SandboxStats], None]) -> None:
        """Change the counters under the lock."""
        with self.lock:
            update(self._stats)

    def note_read(self, customer_id: str) -> None:
        """Remember when a customer was last read, to time the read → write window."""
        with self.lock:
            self._last_read[customer_id] = time.monotonic()

    def note_write(self, customer_id: str) -> None:
        """Count the seconds between a customer's last read and this write of it."""
        with self.lock:
            read_at = self._last_read.pop(customer_id, None)
            if read_at is not None:
                self._stats.write_windows.append(time.monotonic() - read_at)

    # -- records -------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh customer id (from a seeded RNG, so runs repeat)."""
        with self.lock:
            return str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))

    @staticmethod
    def now() -> str:
        """The current time in the API's format."""
        return format_time(datetime.now(UTC))

    def get_record(self, customer_id: str) -> dict[str, Any]:
        """A deep copy of one record (KeyError if unknown)."""
        with self.lock:
            record = self.store.get(customer_id)
            if record is None:
                raise KeyError(customer_id)
            return copy.deepcopy(record)

    def records(self) -> list[dict[str, Any]]:
        """Deep copies of every record, archived ones included, oldest first."""
        with self.lock:
            return [copy.deepcopy(self.store.records[i]) for i in self.store.ids_by_creation()]

    def edit_remote(self, customer_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a record as someone in the dashboard would; nested dicts merge, None clears."""
        with self.lock:
            return copy.deepcopy(self.store.edit(customer_id, changes))

    def aliases_of(self, customer_id: str) -> list[str]:
        """The internal aliases of a customer."""
        with self.lock:
            return list(self.store.aliases.get(customer_id, []))

    @property
    def planted(self) -> list[PlantedProblem]:
        """The problems the generator planted (empty for given records)."""
        return list(self._planted)

    def __len__(self) -> int:
        with self.lock:
            return len(self.store.records)
