"""Rate limiting, sans-I/O: the caller passes the time and does the waiting."""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

__all__ = ["TokenBucket", "BucketTable", "CallerBudgets"]


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

    def _refill(self, now: float) -> None:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def delay(self, cost: float, now: float) -> float:
        self._refill(now)
        self._tokens -= cost
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self, cost: float, now: float) -> float:
        """Spend ``cost`` if it is there and return 0; otherwise spend nothing and return
        the seconds until it would be there."""
        self._refill(now)
        if self._tokens < cost:
            return (cost - self._tokens) / self.rate
        self._tokens -= cost
        return 0.0


class BucketTable:
    """One :class:`TokenBucket` per key (a player, an experience), shared by all of the
    key's connections so opening more sockets buys no more budget.  At most ``size``
    keys are remembered; the least recently used is forgotten (its next use starts
    with a full burst, which is what a key that has been quiet that long deserves)."""

    def __init__(self, rate: float, burst: float, size: int = 10_000):
        self.rate, self.burst, self.size = rate, burst, size
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def _bucket(self, key: Hashable) -> TokenBucket:
        bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst)
        self._buckets[key] = bucket
        if len(self._buckets) > self.size:
            self._buckets.popitem(last=False)
        return bucket

    def delay(self, key: Hashable, cost: float, now: float) -> float:
        return self._bucket(key).delay(cost, now)

    def take(self, key: Hashable, cost: float, now: float) -> float:
        return self._bucket(key).take(cost, now)


class CallerBudgets:
    """The rates every caller (a player, or an experience's game server) is held to,
    whatever number of sockets or requests it spreads them over (see ``server.config``):
    websocket frames and their decompressed bytes, edit ops, HTTP requests."""

    def __init__(self, config):
        self.frames = BucketTable(config.frames_per_second, 2 * config.frames_per_second)
        # A burst of at least one largest frame, so a legitimate big edit is never held back.
        self.bytes = BucketTable(config.frame_bytes_per_second,
                                 max(config.max_frame_bytes, 2 * config.frame_bytes_per_second))
        self.edit_ops = BucketTable(config.edit_ops_per_second, 2 * config.edit_ops_per_second)
        self.requests = BucketTable(config.http_requests_per_second, 2 * config.http_requests_per_second)
        #: Pacing of refusals (see web/common.py): as fast as requests would be served.
        self.refusals = BucketTable(config.http_requests_per_second, 2 * config.http_requests_per_second)
        #: Bytes waiting in the send queues of each caller's sockets, all together
        #: (only callers with bytes waiting are kept).
        self.queued: dict[Hashable, int] = {}

    def add_queued(self, key: Hashable, n: int) -> int:
        """Add ``n`` (may be negative) to the caller's queued bytes; returns the new total."""
        total = self.queued.get(key, 0) + n
        if total > 0:
            self.queued[key] = total
        else:
            self.queued.pop(key, None)
        return total
