"""Rate limiting, sans-I/O: the caller passes the time and does the waiting."""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

__all__ = ["TokenBucket", "BucketTable"]


class TokenBucket:
    """``rate`` units per second with bursts up to ``burst``.

    :meth:`delay` charges ``cost`` units and returns how long the caller should wait
    before acting on them (0 when within budget).  The debt is kept, so a flood is
    slowed to ``rate`` rather than refused: back-pressure, not drops.
    """

    def __init__(self, rate: float, burst: float):
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last: float | None = None

    def delay(self, cost: float, now: float) -> float:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= cost
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class BucketTable:
    """One :class:`TokenBucket` per key (a player, an experience), shared by all of the
    key's connections so opening more sockets buys no more budget.  At most ``size``
    keys are remembered; the least recently used is forgotten (its next use starts
    with a full burst, which is what a key that has been quiet that long deserves)."""

    def __init__(self, rate: float, burst: float, size: int = 10_000):
        self.rate, self.burst, self.size = rate, burst, size
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def delay(self, key: Hashable, cost: float, now: float) -> float:
        bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst)
        self._buckets[key] = bucket
        if len(self._buckets) > self.size:
            self._buckets.popitem(last=False)
        return bucket.delay(cost, now)
