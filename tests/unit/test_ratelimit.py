"""joerl.ratelimit: the one token bucket, and buckets per key."""

from __future__ import annotations

import pytest

from joerl.ratelimit import KeyedBuckets, TokenBucket
from joerl.testing import FakeClock


def test_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.advance(0.5)  # one token back
    assert bucket.take() and not bucket.take()
    clock.advance(100)
    assert bucket.full and bucket.tokens == 2.0  # never more than the burst


def test_a_burst_of_its_own() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, burst=5, clock=clock)
    assert sum(bucket.take() for _ in range(10)) == 5


@pytest.mark.parametrize("rate, burst", [(0, None), (-1, None), (1, 0)])
def test_bad_parameters_are_refused(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate, burst)


def test_keyed_buckets_are_independent_and_bounded() -> None:
    clock = FakeClock()
    buckets = KeyedBuckets(1.0, max_keys=2, clock=clock)
    assert buckets.take("a") and not buckets.take("a")
    assert buckets.take("b")  # another key has its own bucket
    clock.advance(10)  # both refill: idle
    assert buckets.take("c") and len(buckets) <= 2  # the idle ones were forgotten
    with pytest.raises(ValueError):
        KeyedBuckets(0)
