"""The async driver of the session queue: persistence, pushes, deadlines.

It does the four websockets-style steps around :class:`~server.core.queue.SessionQueue`:
call the core, take the events it returns, persist them and push them, then
sleep until ``next_deadline()``.  Every step runs under :meth:`SessionService.step`,
which serialises core steps with their writes, so the database never sees events out
of order.

A session's whole state is in its row (counters, reservations in flight, the
disconnect deadline, selfie counters).  Embedded, the core stays in memory and the
rows follow it.  Scaled out (``shared=True``), the pool is one for all replicas: a
step holds a PostgreSQL advisory lock and rebuilds the core from the rows under it,
so capacity, FIFO order, fair shares and quotas stay exact whichever replica acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from schemas.errors import InvalidParams, NotFound
from server.core.ids import new_id
from server.core.queue import (
    Allowance,
    QueuedRequest,
    Session,
    SessionQueue,
    SessionStarted,
)
from server.db import Experience, FileRow, SessionRequest, SessionRow
from server.ports import EventBus
from server.services.locks import take_advisory
from server.services.retention import unreferenced_blobs

__all__ = ["SessionService", "allowance_for"]

log = logging.getLogger(__name__)


def allowance_for(exp: Experience, config) -> tuple[Allowance, float]:
    """Per-experience overrides over the server defaults; returns (allowance, share)."""
    s = exp.settings or {}
    allowance = Allowance(
        allowed_2d=int(s.get("Allowed2DGenerations", config.allowed_2d)),
        allowed_3d=int(s.get("Allowed3DGenerations", config.allowed_3d)),
        session_time=float(s.get("SessionTime", config.session_time)),
    )
    return allowance, float(s.get("QueueShare", 1.0))


def session_info(s: Session) -> dict:
    """The SessionInfo table Roblox passes to the SessionReady callback."""
    return {
        "RequestId": s.request_id,
        "SessionId": s.session_id,
        "PlayerId": s.player_id,
        "Allowed2DGenerations": s.allowance.allowed_2d,
        "Allowed3DGenerations": s.allowance.allowed_3d,
        "SessionTime": s.allowance.session_time,
    }


#: The advisory lock of the shared session pool.
POOL_LOCK = "session-pool"
#: How long a reservation holds when nothing releases it (its replica died mid-job).
RESERVATION_TTL = 15 * 60.0
#: Scaled out, how often a replica looks at the shared pool's deadlines (sessions that
#: other replicas started are not in its view until it does).
SHARED_POLL = 1.0


def _session(r: SessionRow, now: float) -> Session:
    s = Session(r.id, r.request_id, r.experience_id, r.player_id, r.started_at,
                Allowance(r.allowed_2d, r.allowed_3d, r.session_time), r.used_2d, r.used_3d)
    s.reserved = {job: kind for job, (kind, until) in (r.reserved or {}).items() if until > now}
    s.disconnect_deadline = r.disconnect_deadline
    s.uploads, s.upload_bytes = r.uploads or 0, r.upload_bytes or 0
    return s


class SessionService:
    """Args: shared: the pool is shared with other replicas through the database (scaled out)."""

    def __init__(self, *, config, db: async_sessionmaker, bus: EventBus, blobs,
                 clock: Callable[[], float] = time.time, shared: bool = False, metrics=None):
        self.config = config
        self.metrics = metrics
        self.db = db
        self.bus = bus
        self.blobs = blobs
        self.clock = clock
        self.shared = shared
        self.core = self._new_core()
        self.lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        #: Extra work when a session ends (e.g. closing pending prompts).
        self.on_ended: list[Callable[[Session, str], Awaitable[None]]] = []

    def _new_core(self) -> SessionQueue:
        return SessionQueue(capacity=self.config.capacity, new_session_id=lambda: new_id("ses"),
                            default_hold=self.config.default_hold)

    # -- the step -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def step(self):
        """Hold the pool for one core step and yield its core.

        Embedded: an asyncio lock around the in-memory core.  Shared: also a PostgreSQL
        advisory lock, held by a transaction of its own until the step's writes are
        committed, and the core rebuilt from the rows under it.
        """
        async with self.lock:
            if not self.shared:
                yield self.core
                return
            async with self.db.begin() as guard:
                await take_advisory(guard, POOL_LOCK)
                self.core = await self._load()
                yield self.core

    async def _load(self) -> SessionQueue:
        """The pool as the database has it: active sessions, queued requests, recent holds."""
        now = self.clock()
        async with self.db() as db:
            rows = (await db.scalars(select(SessionRow).where(SessionRow.ended_at.is_(None)))).all()
            reqs = (await db.scalars(select(SessionRequest).where(SessionRequest.state == "Queued")
                                     .order_by(SessionRequest.seq))).all()
            ended = (await db.execute(select(SessionRow.started_at, SessionRow.ended_at)
                                      .where(SessionRow.ended_at.is_not(None))
                                      .order_by(SessionRow.ended_at.desc()).limit(50))).all()
        queued = [QueuedRequest(r.id, r.experience_id, r.player_id, r.created_at,
                                Allowance(**r.settings["allowance"]), r.settings.get("share", 1.0))
                  for r in reqs]
        core = self._new_core()
        core.restore([_session(r, now) for r in rows], queued, [e - s for s, e in reversed(ended)])
        return core

    async def _save(self, s: Session) -> None:
        """Write a session's counters, reservations and deadline to its row."""
        until = self.clock() + RESERVATION_TTL
        async with self.db.begin() as db:
            await db.execute(update(SessionRow).where(SessionRow.id == s.session_id).values(
                used_2d=s.used_2d, used_3d=s.used_3d,
                reserved={job: [kind, until] for job, kind in s.reserved.items()} or None,
                disconnect_deadline=s.disconnect_deadline, uploads=s.uploads, upload_bytes=s.upload_bytes))

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        if not self.shared:
            # One process: the previous one's jobs, reservations and sockets are gone with it.
            async with self.db.begin() as db:
                await db.execute(update(SessionRow).where(SessionRow.ended_at.is_(None)).values(reserved=None))
        async with self.lock:
            self.core = await self._load()
        async with self.step() as core:
            if not self.shared:
                # Every client socket went with the old process: restored sessions get the
                # disconnect grace period, cleared as soon as their player reconnects.
                for s in core.sessions.values():
                    core.player_disconnected(s.session_id, self.clock(), self.config.disconnect_grace)
                    await self._save(s)
            await self._dispatch(core.fill(self.clock()))
            active, queued = len(core.sessions), len(core.queued())
        self._task = asyncio.create_task(self._deadline_loop(), name="session-deadlines")
        log.info("session queue restored: %d active, %d queued%s", active, queued,
                 " (shared by every replica)" if self.shared else "")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _deadline_loop(self) -> None:
        while True:
            deadline = self.core.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            if self.shared:
                timeout = SHARED_POLL if timeout is None else min(timeout, SHARED_POLL)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            try:
                async with self.step() as core:
                    await self._dispatch(core.expire(self.clock()) + core.fill(self.clock()))
            except Exception:
                log.exception("session expiry step failed")
                await asyncio.sleep(1.0)

    # -- commands -----------------------------------------------------------------

    async def request(self, exp: Experience, player_id: str) -> dict:
        allowance, share = allowance_for(exp, self.config)
        now = self.clock()
        req = QueuedRequest(new_id("req"), exp.id, player_id, now, allowance, share)
        max_queued = int((exp.settings or {}).get("MaxQueuedRequests", self.config.max_queued_per_experience))
        row = SessionRequest(id=req.request_id, experience_id=exp.id, player_id=player_id, state="Queued",
                             created_at=now, settings={"allowance": dataclasses.asdict(allowance), "share": share})
        async with self.step() as core:
            events = core.request(req, now, max_queued=max_queued)
            wait = core.wait_time(req.request_id, now) if core.is_queued(req.request_id) else 0.0
            await self._dispatch(events, write=lambda db: db.add(row))  # the request and its start: one commit
        self._wake.set()
        return {"RequestId": req.request_id, "waitTime": round(wait, 3)}

    async def cancel(self, experience_id: str, request_id: str) -> bool:
        async with self.step() as core:
            row = await self._request_row(experience_id, request_id)
            if row.state != "Queued" or not core.cancel(request_id):
                return False
            async with self.db.begin() as db:
                await db.execute(update(SessionRequest).where(SessionRequest.id == request_id)
                                 .values(state="Cancelled"))
        return True

    async def status(self, experience_id: str, request_id: str) -> dict:
        row = await self._request_row(experience_id, request_id)
        out = {"RequestId": request_id, "State": row.state, "SessionId": row.session_id}
        if row.state == "Queued":
            core = await self._load() if self.shared else self.core
            if core.is_queued(request_id):
                out["waitTime"] = round(core.wait_time(request_id, self.clock()), 3)
                out["Position"] = core.queued().index(request_id)
        return out

    async def overview(self, experience_id: str) -> dict:
        """The experience's queue and sessions as they are now (the creator page shows them)."""
        core = await self._load() if self.shared else self.core
        return core.overview(experience_id, self.clock())

    async def active(self, session_id: str) -> Session | None:
        """The active session ``session_id`` as it is now (None when it is not active)."""
        if not self.shared:
            return self.core.sessions.get(session_id)
        async with self.db() as db:
            row = await db.get(SessionRow, session_id)
        return _session(row, self.clock()) if row is not None and row.ended_at is None else None

    async def end(self, session_id: str, reason: str) -> None:
        if reason not in ("Exit", "Gen3D", "TimeExpired", "EquipModel"):
            raise InvalidParams("Reason must be Exit, Gen3D, TimeExpired or EquipModel.")
        async with self.step() as core:
            core.session(session_id)
            await self._dispatch(core.end(session_id, reason, self.clock()))
        self._wake.set()

    async def ended(self, experience_id: str, session_id: str) -> str | None:
        """How an ended session of ``experience_id`` ended; None if there is no such ended session."""
        async with self.db() as db:
            row = await db.get(SessionRow, session_id)
        if row is None or row.experience_id != experience_id or row.ended_at is None:
            return None
        return row.end_reason

    async def reserve(self, session_id: str, kind: str, job_id: str) -> None:
        async with self.step() as core:
            core.reserve(session_id, kind, job_id)
            await self._save(core.sessions[session_id])

    async def commit(self, session_id: str, job_id: str, write: Callable[[object], None]) -> None:
        """Store a job's result (``write(db)`` adds its rows) and charge it in one transaction.

        A session that ended while the job ran still gets the result stored, uncharged.
        """
        async with self.step() as core:
            s = core.sessions.get(session_id)
            charged = s is not None and job_id in s.reserved
            async with self.db.begin() as db:
                write(db)
                if charged:
                    kind = s.reserved[job_id]
                    reserved = {j: [k, self.clock() + RESERVATION_TTL] for j, k in s.reserved.items() if j != job_id}
                    await db.execute(update(SessionRow).where(SessionRow.id == session_id).values(
                        used_2d=s.used_2d + (kind == "2d"), used_3d=s.used_3d + (kind == "3d"),
                        reserved=reserved or None))
            if charged:
                await self._dispatch(core.commit(session_id, job_id, self.clock()))
        self._wake.set()

    @contextlib.asynccontextmanager
    async def while_active(self, session_id: str):
        """Hold the pool while ``session_id`` is active, so it cannot end meanwhile."""
        async with self.step() as core:
            core.session(session_id)  # raises SessionNotActive
            yield

    async def release(self, session_id: str, job_id: str) -> None:
        async with self.step() as core:
            core.release(session_id, job_id)
            s = core.sessions.get(session_id)
            if s is not None:
                await self._save(s)

    async def take_upload_room(self, session_id: str, size: int, check: Callable[[Session, int], None]) -> Session:
        """Count a selfie of ``size`` bytes against the session's caps (``check`` refuses it)
        before any work is done on it; :meth:`give_back_upload_room` undoes it."""
        async with self.step() as core:
            s = core.session(session_id)
            check(s, size)
            s.uploads += 1
            s.upload_bytes += size
            await self._save(s)
            return s

    async def give_back_upload_room(self, session_id: str, size: int) -> None:
        async with self.step() as core:
            s = core.sessions.get(session_id)
            if s is not None:
                s.uploads -= 1
                s.upload_bytes -= size
                await self._save(s)

    async def player_presence(self, experience_id: str, player_id: str, online: bool) -> None:
        """A player's first socket here opened, or its last one here closed."""
        async with self.step() as core:
            s = core.session_for_player(experience_id, player_id)
            if s is None:
                return
            # Asked under the pool's lock: a reconnect through another replica that cleared
            # the deadline is not undone by this replica's late close.
            if not online and self.shared and await self.bus.player_online(experience_id, player_id):
                return  # still connected through another replica
            if online:
                core.player_connected(s.session_id)
            else:
                core.player_disconnected(s.session_id, self.clock(), self.config.disconnect_grace)
            await self._save(s)
        self._wake.set()

    # -- internals -------------------------------------------------------------------

    async def _request_row(self, experience_id: str, request_id: str) -> SessionRequest:
        async with self.db() as db:
            row = await db.scalar(select(SessionRequest).where(SessionRequest.id == request_id))
        if row is None or row.experience_id != experience_id:
            raise NotFound("No such session request.", code="RequestNotFound")
        return row

    async def _dispatch(self, events, write: Callable[[object], None] | None = None) -> None:
        """Persist the events of one core step, with ``write(db)``'s rows, in one transaction;
        then delete the blobs it freed and push the events (lock held)."""
        freed: set[str] = set()
        if events or write is not None:
            async with self.db.begin() as db:
                if write is not None:
                    write(db)
                for ev in events:
                    freed |= await self._persist(ev, db)
        for sha in freed:
            self.blobs.delete_sync(sha)
        for ev in events:
            await self._push(ev)

    async def _persist(self, ev, db) -> set[str]:
        """Write one event; returns the blobs nothing refers to any more."""
        s = ev.session
        if isinstance(ev, SessionStarted):
            db.add(SessionRow(id=s.session_id, request_id=s.request_id,
                              experience_id=s.experience_id, player_id=s.player_id,
                              started_at=s.started_at, session_time=s.allowance.session_time,
                              allowed_2d=s.allowance.allowed_2d, allowed_3d=s.allowance.allowed_3d))
            await db.execute(update(SessionRequest).where(SessionRequest.id == s.request_id)
                             .values(state="Active", session_id=s.session_id))
            return set()
        await db.execute(update(SessionRow).where(SessionRow.id == s.session_id)
                         .values(ended_at=ev.at, end_reason=ev.reason, used_2d=s.used_2d, used_3d=s.used_3d))
        await db.execute(update(SessionRequest).where(SessionRequest.id == s.request_id).values(state="Ended"))
        exp = await db.get(Experience, s.experience_id)
        if exp and (exp.settings or {}).get("InputCaching"):
            return set()
        # Retention (SPEC §4): selfies go when their session ends.
        files = (await db.scalars(select(FileRow).where(FileRow.session_id == s.session_id))).all()
        shas = {f.sha256 for f in files if f.sha256}
        for f in files:
            f.state, f.sha256 = "Deleted", None
        await db.flush()
        return await unreferenced_blobs(db, shas)

    async def _push(self, ev) -> None:
        """Push an event; its state is committed already, so a bus that fails (Redis down) is
        logged, not raised: clients read the state again (GetSessionRequest)."""
        try:
            await self._push_event(ev)
        except Exception:
            log.exception("pushing %s of session %s failed", type(ev).__name__, ev.session.session_id)

    async def _push_event(self, ev) -> None:
        s = ev.session
        if isinstance(ev, SessionStarted):
            if self.metrics is not None:
                self.metrics.queue_wait.observe(ev.waited)
            await self.bus.to_experience(s.experience_id, "SessionReady", session_info(s))
            return
        data = {"SessionId": s.session_id, "RequestId": s.request_id, "PlayerId": s.player_id,
                "Reason": ev.reason}
        await self.bus.to_experience(s.experience_id, "SessionEnded", data)
        await self.bus.to_player(s.experience_id, s.player_id, "SessionEnded", data)
        for callback in self.on_ended:
            await callback(s, ev.reason)
