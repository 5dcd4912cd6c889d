"""How honest is ``waitTime``?  Estimated against actual waits, on the real scheduler.

Drives :class:`server.queue.SessionQueue` (the sans-I/O core the server runs) through a
discrete-event simulation: players arrive, wait for a slot, hold it for a drawn time and end.
For each request it records the ``waitTime`` the server would have answered at arrival, and the
estimate a ``GetSessionRequest`` poll a quarter of the way through the actual wait would have
answered, against the actual wait.  Two populations, each from a fixed seed:

- ``burst``: 200 simulated players (the SDK's flow, holds ~1.5 s, log-normal) arriving within 2 s
  at a 4-slot server that has measured no session yet: the case where only the prior speaks;
- ``people``: 400 players arriving at random (one per 15 s on average) holding a slot about a
  minute (log-normal, median 60 s), 4 slots.

Printed per population and estimator: the median and 90th percentile of estimate/actual over the
requests that waited at least 1 s, and the share of those within a factor of two.  The prior
(``ACS_DEFAULT_HOLD``, the hold assumed before any is measured) is printed with the results;
``--prior`` compares others in the same run.

    .venv/bin/python bench/queue_wait.py [--prior 60 --prior 120]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import statistics

from server.config import Config
from server.core.queue import Allowance, QueuedRequest, SessionQueue, SessionStarted


def simulate(arrivals: list[float], holds: list[float], capacity: int, prior: float) -> list[tuple]:
    """Returns (estimate at arrival, actual wait) per request."""
    ids = (f"s{i}" for i in itertools.count())
    q = SessionQueue(capacity=capacity, new_session_id=lambda: next(ids), default_hold=prior)
    allowance = Allowance(session_time=3600.0)
    events: list[tuple[float, int, str, str]] = []  # (time, seq, kind, id)
    seq = itertools.count()
    for i, t in enumerate(arrivals):
        heapq.heappush(events, (t, next(seq), "arrive", f"r{i}"))
    first: dict[str, float] = {}
    started: dict[str, float] = {}
    arrived: dict[str, float] = {}
    hold_of = {f"r{i}": h for i, h in enumerate(holds)}

    def on_started(evs, now):
        for ev in evs:
            if isinstance(ev, SessionStarted):
                rid = ev.session.request_id
                started[rid] = now
                heapq.heappush(events, (now + hold_of[rid], next(seq), "end", ev.session.session_id))

    while events:
        now, _, kind, key = heapq.heappop(events)
        if kind == "arrive":
            arrived[key] = now
            evs = q.request(QueuedRequest(key, "exp", key, now, allowance), now)
            first[key] = q.wait_time(key, now) if q.is_queued(key) else 0.0
            on_started(evs, now)
        elif kind == "end":
            on_started(q.end(key, "Exit", now), now)
    return [(first[r], started[r] - arrived[r]) for r in arrived]


def simulate_with_polls(arrivals, holds, capacity, prior):
    """Two passes: the first gives actual waits, the second asks waitTime at a quarter of each."""
    first_pass = simulate(arrivals, holds, capacity, prior)
    poll_at = {f"r{i}": arrivals[i] + 0.25 * actual for i, (_e, actual) in enumerate(first_pass)}
    ids = (f"s{i}" for i in itertools.count())
    q = SessionQueue(capacity=capacity, new_session_id=lambda: next(ids), default_hold=prior)
    allowance = Allowance(session_time=3600.0)
    events, seq = [], itertools.count()
    for i, t in enumerate(arrivals):
        heapq.heappush(events, (t, next(seq), "arrive", f"r{i}"))
        if first_pass[i][1] > 0:
            heapq.heappush(events, (poll_at[f"r{i}"], next(seq), "poll", f"r{i}"))
    hold_of = {f"r{i}": h for i, h in enumerate(holds)}
    polled = {}

    def on_started(evs, now):
        for ev in evs:
            if isinstance(ev, SessionStarted):
                heapq.heappush(events, (now + hold_of[ev.session.request_id], next(seq), "end",
                                        ev.session.session_id))

    while events:
        now, _, kind, key = heapq.heappop(events)
        if kind == "arrive":
            on_started(q.request(QueuedRequest(key, "exp", key, now, allowance), now), now)
        elif kind == "end":
            on_started(q.end(key, "Exit", now), now)
        elif kind == "poll" and q.is_queued(key):
            polled[key] = (now - arrivals[int(key[1:])]) + q.wait_time(key, now)
    return [(e, polled.get(f"r{i}"), a) for i, (e, a) in enumerate(first_pass)]


def summary(pairs: list[tuple[float, float]]) -> str:
    ratios = [e / a for e, a in pairs if a >= 1.0 and e is not None]
    if not ratios:
        return "no request waited 1 s"
    q = statistics.quantiles(ratios, n=10)
    within = sum(0.5 <= r <= 2.0 for r in ratios) / len(ratios)
    return f"median ×{statistics.median(ratios):.2f}  p90 ×{q[-1]:.2f}  within 2×: {within:.0%}  (n={len(ratios)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", type=float, action="append", help="hold assumed before any is measured (s)")
    args = ap.parse_args()
    priors = args.prior or [Config().default_hold]
    rng = random.Random(9)
    burst_arrivals = sorted(rng.uniform(0, 2) for _ in range(200))
    burst_holds = [rng.lognormvariate(0.4, 0.3) for _ in range(200)]  # median ~1.5 s
    t, people_arrivals = 0.0, []
    for _ in range(400):
        t += rng.expovariate(1 / 15)
        people_arrivals.append(t)
    people_holds = [rng.lognormvariate(4.1, 0.5) for _ in range(400)]  # median ~60 s
    for prior in priors:
        print(f"prior hold {prior:g} s (server default {Config().default_hold:g} s)")
        populations = (("burst", burst_arrivals, burst_holds), ("people", people_arrivals, people_holds))
        for name, arrivals, holds in populations:
            rows = simulate_with_polls(arrivals, holds, 4, prior)
            actual_total = max(a for _e, _p, a in rows)
            print(f"  {name:6s} longest wait {actual_total:7.1f} s")
            print(f"    at request : {summary([(e, a) for e, _p, a in rows])}")
            print(f"    at 1/4 wait: {summary([(p, a) for _e, p, a in rows])}")


if __name__ == "__main__":
    main()
