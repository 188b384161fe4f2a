"""The shared limiter paces callers evenly, across threads too."""

from __future__ import annotations

import random
import threading
import time

import pytest

from sequence_nb.ratelimit import ARRIVAL_SLACK, RateLimiter
from sequence_nb.sandbox.ratelimit import SlidingWindowLimiter

#: The spacing at 600 a minute: a minute and the slack over 600.
SLOT_AT_600 = (60 + ARRIVAL_SLACK) / 600


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_requests_are_spaced_by_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(600, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([SLOT_AT_600] * 4)
    assert clock.now == pytest.approx(4 * SLOT_AT_600)
    assert 0.1 < SLOT_AT_600 < 0.102  # just under the limit


def test_no_limit_never_waits() -> None:
    limiter = RateLimiter(None)
    assert all(limiter.acquire() == 0 for _ in range(1000))


def test_pause_holds_back_the_next_caller() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    limiter.pause(2.0)
    assert limiter.acquire() == pytest.approx(2.0)


def test_non_positive_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RateLimiter(0)


def test_threads_together_stay_under_the_limit() -> None:
    limiter = RateLimiter(1200)  # one slot every 50 ms
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 20
    assert stamps[-1] - stamps[0] >= 19 * 0.05 * 0.95


def test_a_reservation_of_several_calls_waits_for_the_last_of_its_slots() -> None:
    clock = FakeClock()
    limiter = RateLimiter(600, clock=clock, sleep=clock.sleep)  # a slot every ~0.1 s
    assert limiter.acquire() == 0
    assert limiter.acquire(3) == pytest.approx(3 * SLOT_AT_600)  # slots 1, 2 and 3
    assert clock.now == pytest.approx(3 * SLOT_AT_600)
    assert limiter.acquire() == pytest.approx(SLOT_AT_600)  # the next free slot is 4


def test_reservations_never_beat_the_long_run_rate() -> None:
    """Every call, pre-paid or not, goes out no earlier than its own slot would allow."""
    clock = FakeClock()
    limiter = RateLimiter(600, clock=clock, sleep=clock.sleep)
    stamps: list[float] = []
    for count in [2, 1, 3, 2, 1, 1, 4, 2] * 25:
        limiter.acquire(count)
        stamps += [clock.now] * count  # the reserved calls go out back to back
    assert all(stamp >= n * 0.1 - 1e-9 for n, stamp in enumerate(stamps))
    # over the whole run: 400 calls took at least 39.9 s, i.e. at most 600 a minute
    assert len(stamps) == 400 and stamps[-1] >= 399 * 0.1 - 1e-9


def test_a_reservation_of_fewer_than_one_call_is_refused() -> None:
    with pytest.raises(ValueError, match="count must be 1 or more"):
        RateLimiter(600).acquire(0)


@pytest.mark.parametrize("per_minute", [60, 1500])
def test_requests_that_reach_the_server_up_to_a_second_late_keep_to_its_window(
    per_minute: int,
) -> None:
    """A server counts requests as they arrive, in any 60 s window (as the sandbox does).

    Paced exactly at the limit, a request that arrives a little early after one that
    arrived a little late makes a window hold one too many: a 429 on any run that
    lasts past a minute.
    """
    clock = FakeClock()
    limiter = RateLimiter(per_minute, clock=clock, sleep=clock.sleep)
    delays = random.Random(12)
    arrivals = []
    for _ in range(3 * per_minute):
        limiter.acquire()
        arrivals.append(clock.now + delays.uniform(0.0, 0.99))  # network and scheduling
    server = SlidingWindowLimiter(per_minute)
    refused = [at for at in sorted(arrivals) if server.acquire("client", at) is not None]
    assert refused == []
    assert clock.now < 3 * 60 * 1.02  # the margin costs at most 2% at these limits
