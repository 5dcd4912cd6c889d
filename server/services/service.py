"""The service: every shared part of the server, and RPC dispatch.

Transports (``web/rpc.py`` for HTTP, ``web/ws.py`` for websockets)
authenticate the caller, then call :meth:`Service.call` with the method name
and raw params.  Dispatch checks the role, decodes the params with
``schemas`` (so a handler only ever sees valid params) and runs the handler
registered for the method in ``server/services/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy import func, select, update

from schemas import METHODS, decode
from schemas.errors import AcsError, Conflict, Forbidden, NotFound, Unauthorized
from server.config import Config
from server.core.auth import (
    PlayerTokens,
    Principal,
    api_key_valid_until,
    hash_api_key,
    hashed_creation_tokens,
)
from server.db import Experience, FileRow, SessionRequest, SessionRow, TokenRevocation
from server.metrics import MeteredJobs, Metrics
from server.ports import BlobStore, Clock, EditFeed, EventBus, JobQueue, PromptRelay, Purchases, Store
from server.services.documents import Documents
from server.services.hub import Connection, Hub
from server.services.prompts import Prompts
from server.services.retention import SWEEP_INTERVAL, sweep
from server.services.sessions import SessionService
from server.services.style_fits import StyleFits

__all__ = ["Call", "Service", "HANDLERS", "method", "record_revocation"]

log = logging.getLogger(__name__)

#: How often a server reads the revocation table: revocations written by another replica
#: (a missed Redis message) or by ``acs admin revoke-tokens`` reach it this way.
REVOCATION_POLL = 5.0
#: How long an API key found in the database is trusted without reading it again, so a
#: rotation (``acs admin rotate-key``) made elsewhere is seen within this many seconds.
API_KEY_RECHECK = 2.0

Progress = Callable[[float, str], Awaitable[None]]


async def _no_progress(_p: float, _stage: str) -> None:
    return None


@dataclass
class Call:
    """One method call: who makes it, over which socket, where progress goes."""

    principal: Principal
    conn: Connection | None = None
    progress: Progress = _no_progress


Handler = Callable[["Service", Call, Any], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}


def method(name: str):
    """Register the handler of one SPEC §4 method."""
    if name not in METHODS:
        raise KeyError(name)

    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


async def record_revocation(db, experience_id: str, player_id: str, now: float) -> float:
    """Store that the player's tokens issued until ``now`` are refused (in ``db``'s transaction);
    returns the revocation time kept (never earlier than one stored before)."""
    row = await db.get(TokenRevocation, (experience_id, player_id))
    if row is None:
        db.add(TokenRevocation(experience_id=experience_id, player_id=player_id, revoked_at=now))
        return now
    row.revoked_at = max(row.revoked_at, now)
    return row.revoked_at


class Service:
    def __init__(self, *, config: Config, db: Store, blobs: BlobStore, jobs: JobQueue, purchases: Purchases,
                 secret: bytes, clock: Clock = time.time, hub: Hub | None = None, bus: EventBus | None = None,
                 prompt_relay: PromptRelay | None = None, edit_feed: EditFeed | None = None,
                 metrics: Metrics | None = None):
        self.config = config
        self.db = db
        self.blobs = blobs
        self.metrics = metrics or Metrics()
        self.jobs = MeteredJobs(jobs, self.metrics)
        if hasattr(jobs, "on_restart"):
            jobs.on_restart = self.metrics.worker_restarts.inc
        self.purchases = purchases
        self.clock = clock
        #: This process's sockets; ``bus`` reaches every socket, here or on another replica.
        self.hub = hub or Hub()
        self.bus = bus or self.hub
        self.tokens = PlayerTokens(secret)
        self.sessions = SessionService(config=config, db=db, bus=self.bus, blobs=blobs, clock=clock,
                                       shared=config.scaled, metrics=self.metrics)
        self.documents = Documents(db=db, blobs=blobs, hub=self.hub, clock=clock, history=config.edit_history,
                                   feed=edit_feed)
        self.prompts = Prompts(relay=prompt_relay)
        #: Custom styles and their fitting in the background (CreateStyle).
        self.styles = StyleFits(db=db, blobs=blobs, jobs=jobs, clock=clock, shared=config.scaled)
        #: API key hash → (experience id, until when to trust it without reading the database).
        self._api_keys: dict[str, tuple[str, float]] = {}
        #: (experience id, player id) → when its tokens were last revoked; the whole table,
        #: loaded at start, so checking a player token needs no database read.
        self._revoked: dict[tuple[str, str], float] = {}
        self.hub.on_player_presence = self._player_presence
        self.sessions.on_ended.append(self.prompts.session_ended)

    # -- auth -------------------------------------------------------------------

    async def authenticate(self, credential: str | None) -> Principal:
        """An experience API key or a player token → the caller."""
        if not credential:
            raise Unauthorized("Send 'Authorization: Bearer <API key or player token>'.")
        if credential.startswith("acs_"):
            key_hash, now = hash_api_key(credential), self.clock()
            known = self._api_keys.get(key_hash)
            if known is None or now >= known[1]:
                self._api_keys.pop(key_hash, None)
                async with self.db() as db:
                    row = (await db.execute(select(
                        Experience.id, Experience.key_hash, Experience.previous_key_hash,
                        Experience.previous_key_until).where(
                        (Experience.key_hash == key_hash) | (Experience.previous_key_hash == key_hash)))).first()
                if row is None:
                    raise Unauthorized("Unknown API key.", code="InvalidApiKey")
                until = api_key_valid_until(key_hash, current=row.key_hash, previous=row.previous_key_hash,
                                            previous_until=row.previous_key_until, now=now)
                known = self._api_keys[key_hash] = (row.id, min(until, now + API_KEY_RECHECK))
            return Principal("server", known[0])
        principal = self.tokens.verify(credential, self.clock())
        if self.revoked(principal):
            raise Unauthorized("This player token was revoked; ask the game server for a new one.",
                               code="TokenRevoked")
        return principal

    def revoked(self, principal: Principal) -> bool:
        """Whether the player token ``principal`` came from was revoked since it was issued."""
        revoked_at = self._revoked.get((principal.experience_id, principal.player_id))
        return principal.role == "client" and revoked_at is not None and principal.issued_at <= revoked_at

    async def revoke_player_tokens(self, experience_id: str, player_id: str) -> tuple[float, int]:
        """Refuse the player's tokens issued until now and close its sockets, on every
        replica; returns the revocation time and how many sockets closed here."""
        async with self.db.begin() as db:
            now = await record_revocation(db, experience_id, player_id, self.clock())
        closed = self.tokens_revoked(experience_id, player_id, now)
        await self.bus.tokens_revoked(experience_id, player_id, now)
        return now, closed

    def tokens_revoked(self, experience_id: str, player_id: str, revoked_at: float) -> int:
        """Apply a revocation (made here or on another replica): refuse the tokens from now
        on without a database read, and close the player's sockets here; returns how many."""
        key = (experience_id, player_id)
        self._revoked[key] = max(self._revoked.get(key, revoked_at), revoked_at)
        conns = self.hub.player_connections(experience_id, player_id)
        for conn in conns:
            conn.abort()
        return len(conns)

    async def experience(self, principal: Principal) -> Experience:
        async with self.db() as db:
            exp = await db.get(Experience, principal.experience_id)
        if exp is None:
            raise Unauthorized("This experience no longer exists.", code="InvalidApiKey")
        return exp

    @staticmethod
    def check_owner(row, principal: Principal, what: str):
        """Let a caller reach only its experience's (and, for players, its own) rows."""
        if row is None or row.experience_id != principal.experience_id:
            raise NotFound(f"No such {what}.", code=f"{what.title().replace(' ', '')}NotFound")
        if principal.role == "client" and row.player_id != principal.player_id:
            raise Forbidden(f"That {what} belongs to another player.")
        return row

    async def active_session(self, session_id: str, principal: Principal):
        """The caller's active session.  Unknown, ended and other callers' sessions all
        get the same answer, so a session id's existence is never revealed."""
        s = await self.sessions.active(session_id)
        if s is None or s.experience_id != principal.experience_id or (
                principal.role == "client" and s.player_id != principal.player_id):
            raise Conflict("That session is not active (it ended or never started).", code="SessionNotActive")
        return s

    def shared_progress(self, call: Call, session, kind: str, ident: str) -> Progress:
        """Progress of a generation, to its caller and, as ``GenerationProgress`` events,
        to the player's own sockets (the page shows a progress bar while the game server waits)."""
        data = {"SessionId": session.session_id, "Kind": kind, "Id": ident}

        async def progress(value: float, stage: str) -> None:
            await call.progress(value, stage)
            try:
                await self.bus.to_player(session.experience_id, session.player_id, "GenerationProgress",
                                         {**data, "Progress": value, "Stage": stage})
            except Exception:  # a lost progress event is not worth failing the generation for
                log.warning("could not push progress to player %s", session.player_id, exc_info=True)

        return progress

    async def _player_presence(self, experience_id: str, player_id: str, online: bool) -> None:
        await self.bus.player_presence(experience_id, player_id, online)
        await self.sessions.player_presence(experience_id, player_id, online)

    # -- dispatch ------------------------------------------------------------------

    async def call(self, call: Call, name: str, raw_params: Any) -> Any:
        start, outcome = time.perf_counter(), "ok"
        try:
            return await self._call(call, name, raw_params)
        except AcsError as err:
            outcome = err.code
            raise
        except Exception:
            outcome = "InternalError"
            raise
        except BaseException:  # the caller went away
            outcome = "cancelled"
            raise
        finally:
            self.metrics.observe_call(name, outcome, time.perf_counter() - start)

    async def _call(self, call: Call, name: str, raw_params: Any) -> Any:
        spec = METHODS.get(name)
        if spec is None or name not in HANDLERS:
            raise NotFound(f"Unknown method {name!r}.", code="UnknownMethod")
        if call.principal.role not in spec.roles:
            who = "game servers" if "server" in spec.roles else "game clients"
            raise Forbidden(f"{name} can only be called by {who}.")
        params = decode(spec.params, raw_params)
        return await HANDLERS[name](self, call, params)

    async def scrape(self) -> bytes:
        """The metrics exposition, with the pool and the workers read now."""
        async with self.db() as db:
            queued = await db.scalar(select(func.count()).select_from(SessionRequest)
                                     .where(SessionRequest.state == "Queued"))
            active = await db.scalar(select(func.count()).select_from(SessionRow)
                                     .where(SessionRow.ended_at.is_(None)))
        try:
            jobs = await self.jobs.health()
        except Exception:  # a scrape still answers; no worker is counted as alive
            log.warning("reading the generation workers' health failed", exc_info=True)
            jobs = {}
        sockets = {"server": 0, "client": 0}
        for conn in self.hub.connections():
            sockets[conn.principal.role] += 1
        self.metrics.refresh(queued=queued or 0, active=active or 0, capacity=self.config.capacity, jobs=jobs,
                             sockets=sockets)
        return self.metrics.exposition()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        async with self.db.begin() as db:
            if not self.config.scaled:
                # One process: the selfie prompts and batches of the previous one are over.
                # (Scaled out, other replicas' prompts and batches are alive; theirs lapse.)
                await db.execute(update(FileRow).where(FileRow.state == "Pending").values(state="Expired"))
                await db.execute(update(Experience).where(Experience.batch_holds.is_not(None))
                                 .values(batch_holds=None))
            rows = (await db.scalars(select(TokenRevocation))).all()
            # Creation tokens written in plain text by earlier versions are stored hashed now.
            for exp in (await db.scalars(select(Experience))).all():
                hashed = hashed_creation_tokens((exp.settings or {}).get("CreationTokens"))
                if hashed is not None:
                    exp.settings = {**exp.settings, "CreationTokens": hashed}
        self._revoked = {(r.experience_id, r.player_id): r.revoked_at for r in rows}
        self.documents.start()
        await self.sessions.start()
        await self.styles.start()
        self._tasks = [asyncio.create_task(self._sweep_loop(), name="retention"),
                       asyncio.create_task(self._revocation_loop(), name="revocations")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.styles.stop()
        await self.sessions.stop()
        await self.documents.stop()
        self.prompts.cancel_all()

    async def _revocation_loop(self) -> None:
        """Revocations of other replicas arrive over Redis at most once, and ``acs admin
        revoke-tokens`` writes only the table: it is read again every :data:`REVOCATION_POLL`
        seconds, so none stays missed."""
        while True:
            await asyncio.sleep(REVOCATION_POLL)
            try:
                async with self.db() as db:
                    rows = (await db.scalars(select(TokenRevocation))).all()
                for r in rows:
                    if r.revoked_at > self._revoked.get((r.experience_id, r.player_id), float("-inf")):
                        self.tokens_revoked(r.experience_id, r.player_id, r.revoked_at)
            except Exception:
                log.exception("reading token revocations failed")

    async def _sweep_loop(self) -> None:
        while True:
            try:
                counts = await sweep(self.db, self.blobs, self.clock(), open_documents=self.documents.open_ids())
                if any(counts.values()):
                    log.info("retention sweep: %s", counts)
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(SWEEP_INTERVAL)
