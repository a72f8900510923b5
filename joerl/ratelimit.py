"""Token buckets: rate limits for accepting connections and for log lines.

One implementation, used by the node listener (admission), the port mapper
daemon (per remote address) and rate-limited warnings.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from time import monotonic


class TokenBucket:
    """``rate`` events per second, in bursts of up to ``burst`` (default: ``rate``).

    Raises:
        ValueError: ``rate`` or ``burst`` is not positive.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp", "_clock")

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = monotonic) -> None:
        if rate <= 0 or (burst is not None and burst <= 0):
            raise ValueError(f"a token bucket needs a positive rate and burst, got {rate!r} and {burst!r}")
        self.rate = rate
        self.burst = rate if burst is None else burst
        self.tokens = self.burst
        self._clock = clock
        self.stamp = clock()

    def refill(self) -> float:
        """Add what accrued since the last look; the tokens now available."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def take(self) -> bool:
        """Spend one token; False (nothing spent) when none is left."""
        if self.refill() >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    @property
    def full(self) -> bool:
        """True when the bucket has refilled to its burst (nothing spent recently)."""
        return self.refill() >= self.burst


class KeyedBuckets:
    """One :class:`TokenBucket` per key (a remote address, a peer name), bounded in number.

    Past ``max_keys`` keys, buckets that have refilled (idle keys) are forgotten;
    a key seen again starts with a full bucket, which is what an idle key has anyway.
    """

    __slots__ = ("rate", "burst", "max_keys", "_buckets", "_clock")

    def __init__(
        self, rate: float, burst: float | None = None, max_keys: int = 65536, clock: Callable[[], float] = monotonic
    ) -> None:
        TokenBucket(rate, burst)  # validates
        self.rate, self.burst, self.max_keys, self._clock = rate, burst, max_keys, clock
        self._buckets: dict[Hashable, TokenBucket] = {}

    def take(self, key: Hashable) -> bool:
        """Spend one token of ``key``'s bucket; False when it has none left."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                for k in [k for k, b in self._buckets.items() if b.full]:
                    del self._buckets[k]
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
        return bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)
