"""RetryPolicy: what is retried, how long to wait, when to give up."""

from __future__ import annotations

import dataclasses

import pytest

from sequence_nb import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from sequence_nb.errors import APIStatusError


def test_the_defaults_are_those_of_the_client() -> None:
    assert RetryPolicy() == RetryPolicy(
        max_retries=2, initial_delay=0.5, max_delay=8.0, max_retry_after=60.0
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_retries = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "error",
    [
        ServerError("x", status_code=500),
        ServerError("x", status_code=503),
        APIStatusError("x", status_code=408),
        RateLimitError("x"),
        APIConnectionError("reset"),
        APITimeoutError("slow"),
    ],
)
def test_transient_failures_are_retried(error: Exception) -> None:
    assert RetryPolicy().delay(error, 1) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("x"),
        ConflictError("x"),
        APIStatusError("x", status_code=418),
    ],
)
def test_rejections_are_not_retried(error: Exception) -> None:
    assert RetryPolicy().delay(error, 1) is None  # type: ignore[arg-type]


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    policy = RetryPolicy(max_retries=10, initial_delay=0.5, max_delay=2.0)
    error = ServerError("x", status_code=500)
    for _ in range(50):
        delays = [policy.delay(error, attempt) for attempt in (1, 2, 3, 9)]
        assert 0.5 * 0.75 <= (delays[0] or 0) <= 0.5
        assert 1.0 * 0.75 <= (delays[1] or 0) <= 1.0
        assert 2.0 * 0.75 <= (delays[2] or 0) <= 2.0
        assert 2.0 * 0.75 <= (delays[3] or 0) <= 2.0


def test_gives_up_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    error = ServerError("x", status_code=500)
    assert policy.delay(error, 2) is not None
    assert policy.delay(error, 3) is None
    assert RetryPolicy(max_retries=0).delay(error, 1) is None


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    assert policy.delay(RateLimitError("slow down", retry_after=3.0), 1) == 3.0
    long = RateLimitError("slow down", retry_after=86400.0)
    assert policy.delay(long, 1) is None
    assert "86400" in long.message and "max_retry_after=5" in long.message


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"initial_delay": -0.1}, "initial_delay"),
        ({"max_delay": -1.0}, "max_delay"),
        ({"max_retry_after": -1.0}, "max_retry_after"),
        ({"initial_delay": 1e300}, "initial_delay must be .* at most 3600 seconds"),
        ({"max_delay": 3600.5}, "max_delay must be .* at most 3600 seconds"),
        ({"max_retry_after": 1e300}, "max_retry_after must be .* at most 3600 seconds"),
        ({"max_retry_after": float("inf")}, "max_retry_after"),
        ({"initial_delay": float("nan")}, "initial_delay"),
        ({"max_delay": True}, "max_delay"),
        ({"max_retries": 2.5}, "max_retries"),
    ],
)
def test_nonsense_settings_are_refused(options: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RetryPolicy(**options)  # type: ignore[arg-type]


def test_an_hour_is_the_longest_wait_a_policy_takes() -> None:
    policy = RetryPolicy(initial_delay=3600, max_delay=3600.0, max_retry_after=3600.0)
    assert policy.delay(RateLimitError("slow down", retry_after=3600.0), 1) == 3600.0
