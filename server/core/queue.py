"""Session queue and quota accounting: the sans-I/O core of SPEC §4.

:class:`SessionQueue` decides who holds one of the ``capacity`` generation
sessions, who waits, for how long, and what each session may still spend.
It owns no socket, database, task or clock: every method that depends on time
takes ``now`` (seconds, any epoch) and returns the :class:`Event` values the
caller must persist and deliver.  ``next_deadline()`` tells the driver when to
call :meth:`expire` again, like websockets' ``close_expected()``.  One task
steps a given queue; the core is not thread-safe and need not be.

Rules implemented here:

* FIFO within an experience; across experiences the next free slot goes to the
  experience with the fewest active sessions per unit of ``share`` (ties: the
  oldest waiting request), so one experience flooding the queue cannot starve
  another.
* ``wait_time`` replays that scheduling over the current queue with slot
  release times estimated from measured session hold times.
* Quotas are reservations: :meth:`reserve` before a job, :meth:`commit` when it
  produced a result, :meth:`release` when it was refused or crashed.  Both are
  idempotent per job id, so a job is charged at most once, only when it
  succeeds, and refused input is never charged.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from schemas.errors import Conflict, RequestError
from schemas.methods import END_REASONS

__all__ = [
    "Allowance",
    "Session",
    "QueuedRequest",
    "SessionStarted",
    "SessionEnded",
    "SessionQueue",
    "QueueFull",
]


class QueueFull(RequestError):
    status = 429
    default_code = "QueueFull"


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a session may spend (per-experience config)."""

    allowed_2d: int = 5
    allowed_3d: int = 1
    session_time: float = 600.0


@dataclass(slots=True)
class QueuedRequest:
    request_id: str
    experience_id: str
    player_id: str
    enqueued_at: float
    allowance: Allowance
    share: float = 1.0


@dataclass(slots=True)
class Session:
    session_id: str
    request_id: str
    experience_id: str
    player_id: str
    started_at: float
    allowance: Allowance
    used_2d: int = 0
    used_3d: int = 0
    #: job id → "2d" | "3d" for charges in flight.
    reserved: dict[str, str] = field(default_factory=dict)
    #: Set while the player's client is gone; the session ends at this time.
    disconnect_deadline: float | None = None
    #: Selfies accepted into this session, and their bytes (capped per session).
    uploads: int = 0
    upload_bytes: int = 0

    @property
    def expires_at(self) -> float:
        return self.started_at + self.allowance.session_time

    def remaining(self, kind: str) -> int:
        allowed, used = self._counts(kind)
        pending = sum(1 for k in self.reserved.values() if k == kind)
        return allowed - used - pending

    def _counts(self, kind: str) -> tuple[int, int]:
        if kind == "2d":
            return self.allowance.allowed_2d, self.used_2d
        return self.allowance.allowed_3d, self.used_3d


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session: Session
    #: Seconds its request waited in the queue.
    waited: float = 0.0


@dataclass(frozen=True, slots=True)
class SessionEnded:
    session: Session
    reason: str
    at: float


Event = SessionStarted | SessionEnded


class SessionQueue:
    """Capacity-limited, fair session scheduler with quota reservations.

    Args:
        capacity: sessions active at once.
        new_session_id: factory for session ids (the core has no randomness).
        default_hold: assumed session hold time (s) until some were measured.
        hold_window: how many recent hold times the estimate averages.
    """

    def __init__(
        self,
        *,
        capacity: int,
        new_session_id: Callable[[], str],
        default_hold: float = 60.0,
        hold_window: int = 50,
    ):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._new_session_id = new_session_id
        self._default_hold = default_hold
        self._holds: deque[float] = deque(maxlen=hold_window)
        self._queues: dict[str, deque[QueuedRequest]] = {}
        self._requests: dict[str, QueuedRequest] = {}
        self._seq = itertools.count()
        self._order: dict[str, int] = {}
        self.sessions: dict[str, Session] = {}

    # -- queries -----------------------------------------------------------

    @property
    def mean_hold(self) -> float:
        return sum(self._holds) / len(self._holds) if self._holds else self._default_hold

    def queued(self) -> list[str]:
        """Request ids in the order they would get a slot."""
        return [r.request_id for r in self._schedule_order()]

    def overview(self, experience_id: str, now: float, most: int = 100) -> dict:
        """One experience's queued requests and active sessions at a glance (at most ``most``
        of each), with the pool's totals; nothing of another experience's players."""
        order = self._schedule_order()
        requests = [{"RequestId": r.request_id, "PlayerId": r.player_id, "Position": i,
                     "QueuedFor": round(now - r.enqueued_at, 3)}
                    for i, r in enumerate(order) if r.experience_id == experience_id][:most]
        for r in requests:
            r["waitTime"] = round(self.wait_time(r["RequestId"], now), 3)
        sessions = [{"SessionId": s.session_id, "PlayerId": s.player_id, "StartedAt": s.started_at,
                     "TimeLeft": round(max(0.0, s.expires_at - now), 3),
                     "Used2DGenerations": s.used_2d, "Allowed2DGenerations": s.allowance.allowed_2d,
                     "Used3DGenerations": s.used_3d, "Allowed3DGenerations": s.allowance.allowed_3d,
                     "PlayerConnected": s.disconnect_deadline is None}
                    for s in sorted(self.sessions.values(), key=lambda s: s.started_at)
                    if s.experience_id == experience_id][:most]
        return {"Capacity": self.capacity, "ActiveSessions": len(self.sessions), "QueuedRequests": len(order),
                "MeanHoldSeconds": round(self.mean_hold, 3), "Sessions": sessions, "Requests": requests}

    def is_queued(self, request_id: str) -> bool:
        return request_id in self._requests

    def session(self, session_id: str) -> Session:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise Conflict("That session is not active (it ended or never started).",
                           code="SessionNotActive") from None

    def session_for_player(self, experience_id: str, player_id: str) -> Session | None:
        for s in self.sessions.values():
            if s.experience_id == experience_id and s.player_id == player_id:
                return s
        return None

    def wait_time(self, request_id: str, now: float) -> float:
        """Estimated seconds until ``request_id`` gets a session."""
        order = self._schedule_order()
        position = next(i for i, r in enumerate(order) if r.request_id == request_id)
        hold = self.mean_hold
        free = [now] * (self.capacity - len(self.sessions))
        free += [max(now, min(s.expires_at, s.started_at + hold)) for s in self.sessions.values()]
        heapq.heapify(free)
        for r in order[:position]:
            t = heapq.heappop(free)
            heapq.heappush(free, t + min(hold, r.allowance.session_time))
        return max(0.0, free[0] - now)

    def next_deadline(self) -> float | None:
        deadlines = [s.expires_at for s in self.sessions.values()]
        deadlines += [s.disconnect_deadline for s in self.sessions.values() if s.disconnect_deadline]
        return min(deadlines, default=None)

    # -- commands ----------------------------------------------------------

    def request(self, req: QueuedRequest, now: float, *, max_queued: int | None = None) -> list[Event]:
        """Queue a request; it may start at once if a slot is free.  ``max_queued``: the
        most requests the experience may have waiting (refused with ``QueueFull``)."""
        if not req.share > 0:
            raise ValueError(f"queue share must be positive, not {req.share!r}")
        if req.request_id in self._requests:
            raise Conflict("That request is already queued.", code="RequestAlreadyQueued")
        for other in self._requests.values():
            if (other.experience_id, other.player_id) == (req.experience_id, req.player_id):
                raise Conflict(
                    f"Player {req.player_id!r} already has a queued request ({other.request_id}).",
                    code="GenerationInProgress",
                )
        if self.session_for_player(req.experience_id, req.player_id):
            raise Conflict(f"Player {req.player_id!r} already has an active session.",
                           code="GenerationInProgress")
        waiting = len(self._queues.get(req.experience_id, ()))
        if max_queued is not None and waiting >= max_queued and len(self.sessions) >= self.capacity:
            raise QueueFull(f"This experience already has {waiting} requests waiting, the most it may; "
                            "try again when the queue is shorter.")
        self._enqueue(req)
        return self._fill(now)

    def cancel(self, request_id: str) -> bool:
        """Withdraw a queued request.  Returns False if it was not queued."""
        req = self._requests.pop(request_id, None)
        if req is None:
            return False
        self._queues[req.experience_id].remove(req)
        if not self._queues[req.experience_id]:
            del self._queues[req.experience_id]
        del self._order[request_id]
        return True

    def end(self, session_id: str, reason: str, now: float) -> list[Event]:
        """End an active session and hand its slot to the next request."""
        if reason not in END_REASONS:
            raise ValueError(f"unknown end reason {reason!r}")
        session = self.sessions.pop(session_id, None)
        if session is None:
            raise Conflict("That session is not active (it ended or never started).", code="SessionNotActive")
        self._holds.append(max(0.0, now - session.started_at))
        return [SessionEnded(session, reason, now), *self._fill(now)]

    def expire(self, now: float) -> list[Event]:
        """End sessions past their SessionTime or disconnect grace period."""
        events: list[Event] = []
        for s in list(self.sessions.values()):
            if now >= s.expires_at:
                events += self.end(s.session_id, "TimeExpired", now)
            elif s.disconnect_deadline is not None and now >= s.disconnect_deadline:
                events += self.end(s.session_id, "Disconnect", now)
        return events

    def player_disconnected(self, session_id: str, now: float, grace: float) -> None:
        s = self.sessions.get(session_id)
        if s is not None and s.disconnect_deadline is None:
            s.disconnect_deadline = now + grace

    def player_connected(self, session_id: str) -> None:
        s = self.sessions.get(session_id)
        if s is not None:
            s.disconnect_deadline = None

    # -- quotas ------------------------------------------------------------

    def reserve(self, session_id: str, kind: str, job_id: str) -> None:
        """Hold one unit of the ``kind`` ("2d"/"3d") allowance for ``job_id``."""
        s = self.session(session_id)
        if s.reserved.get(job_id) == kind:
            return
        if s.remaining(kind) <= 0:
            name = "Allowed2DGenerations" if kind == "2d" else "Allowed3DGenerations"
            allowed, _ = s._counts(kind)
            raise Conflict(f"This session's {name} ({allowed}) is used up.", code=f"{name}Exceeded")
        s.reserved[job_id] = kind

    def commit(self, session_id: str, job_id: str, now: float) -> list[Event]:
        """Charge a reserved unit; ending the session when its 3D allowance is spent."""
        s = self.sessions.get(session_id)
        if s is None or job_id not in s.reserved:
            return []
        kind = s.reserved.pop(job_id)
        if kind == "2d":
            s.used_2d += 1
            return []
        s.used_3d += 1
        if s.used_3d >= s.allowance.allowed_3d:
            return self.end(session_id, "Gen3D", now)
        return []

    def release(self, session_id: str, job_id: str) -> None:
        """Give back a reservation whose job was refused or failed."""
        s = self.sessions.get(session_id)
        if s is not None:
            s.reserved.pop(job_id, None)

    # -- restore after restart ----------------------------------------------

    def restore(self, sessions: Iterable[Session], queued: Iterable[QueuedRequest],
                holds: Iterable[float]) -> None:
        """Load persisted state; ``queued`` in original arrival order."""
        for s in sessions:
            self.sessions[s.session_id] = s
        for r in queued:
            self._enqueue(r)
        self._holds.extend(holds)

    def fill(self, now: float) -> list[Event]:
        """Start queued requests while slots are free (after :meth:`restore`)."""
        return self._fill(now)

    # -- internals -----------------------------------------------------------

    def _enqueue(self, req: QueuedRequest) -> None:
        self._requests[req.request_id] = req
        self._order[req.request_id] = next(self._seq)
        self._queues.setdefault(req.experience_id, deque()).append(req)

    def _pick(self, queues: dict[str, deque[QueuedRequest]], active: dict[str, int]) -> QueuedRequest:
        def key(exp: str) -> tuple[float, int]:
            head = queues[exp][0]
            return (active.get(exp, 0) / head.share, self._order[head.request_id])

        return queues[min(queues, key=key)][0]

    def _active_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.sessions.values():
            counts[s.experience_id] = counts.get(s.experience_id, 0) + 1
        return counts

    def _schedule_order(self) -> list[QueuedRequest]:
        queues = {e: deque(q) for e, q in self._queues.items()}
        active = self._active_counts()
        order = []
        while queues:
            req = self._pick(queues, active)
            order.append(req)
            queues[req.experience_id].popleft()
            if not queues[req.experience_id]:
                del queues[req.experience_id]
            active[req.experience_id] = active.get(req.experience_id, 0) + 1
        return order

    def _fill(self, now: float) -> list[Event]:
        events: list[Event] = []
        while self._queues and len(self.sessions) < self.capacity:
            req = self._pick(self._queues, self._active_counts())
            self.cancel(req.request_id)
            session = Session(
                session_id=self._new_session_id(),
                request_id=req.request_id,
                experience_id=req.experience_id,
                player_id=req.player_id,
                started_at=now,
                allowance=req.allowance,
            )
            self.sessions[session.session_id] = session
            events.append(SessionStarted(session, waited=max(0.0, now - req.enqueued_at)))
        return events
