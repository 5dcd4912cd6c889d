"""Per-connection rate limiting, sans-I/O: the caller passes the time and does the waiting."""

from __future__ import annotations

__all__ = ["TokenBucket"]


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
