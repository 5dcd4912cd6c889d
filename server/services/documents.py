"""Shared edit documents: one authoritative avatar per generation (SPEC §7).

The I/O shell around :class:`meshes.sync.DocumentLog`.  A document is the
generated avatar (a blob), the latest persisted snapshot, and the log of accepted
batches after it (``edit_ops`` rows, with the sender's batch id).  Opening replays
the log over the snapshot, so a restart — even after SIGKILL — resumes every
document at its last acknowledged version and still recognises resent batches.

Each accepted batch gets the next version; persistence is a group commit: accepted
batches wait in a queue that one flusher task writes in a single transaction, and
only then are they acknowledged and relayed, in version order.  A batch is never
acknowledged or relayed before it is durable.  Every :data:`SNAPSHOT_EVERY`
versions a snapshot is stored so a reload does not replay the whole history; one
that was due but lost (the server died first) is taken when the document is next
opened, and shutdown waits for the snapshots under way.  Relaying only queues
frames on the subscribers' connections, so a subscriber that does not read holds
up no one (see ``web/ws.py``).

A copy that reconnects calls :meth:`Documents.sync` with its version and gets the
batches it missed (or a snapshot when the history no longer reaches back); it then
resends its unacknowledged batches, which the log answers as duplicates.

Large batches run in a thread and a batch's pixel work is capped, so one edit
cannot stall the event loop.  Documents nobody holds open are dropped from memory.

Scaled out (an ``EditFeed`` is given), every replica may hold a copy of a document
and accept edits to it; the database orders them.  A batch is accepted under the
document's PostgreSQL advisory lock, after the copy has caught up with the rows other
replicas committed, and written in that transaction: the log in the database is the
one authoritative order, and a batch is durable before it is acknowledged.  Then it
goes on the document's stream in Redis; the replicas holding the document apply it to
their copies and relay it to their sockets, in version order (a gap is filled from
the database).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import msgpack
from sqlalchemy import select

from meshes import Avatar, ops_cost
from meshes.sync import DocumentLog, Submitted
from schemas.errors import AcsError, Conflict, InvalidParams
from schemas.frames import event_frame
from server.core.ids import new_id
from server.db import EditOp, EditSnapshot, Generation
from server.ports import EditFeed
from server.services.hub import Connection, Hub
from server.services.locks import take_advisory

__all__ = ["LiveDocument", "Documents", "check_op_count", "MAX_OPS_PER_BATCH", "MAX_PIXELS_PER_BATCH", "INLINE_COST"]

log = logging.getLogger(__name__)

MAX_OPS_PER_BATCH = 1024
#: Pixels one batch may touch (four 1024² images' worth).
MAX_PIXELS_PER_BATCH = 4 * 1024 * 1024
#: Batches of at most INLINE_OPS ops costing at most INLINE_COST (pixels, see ops_cost)
#: are applied on the event loop; bigger ones in a thread, so the loop keeps serving.
INLINE_COST = 64 * 64
INLINE_OPS = 16
#: Documents kept in memory with no socket subscribed (HTTP-only callers).
MAX_IDLE_DOCUMENTS = 32
#: A snapshot is persisted every this many versions.
SNAPSHOT_EVERY = 256


@dataclass(eq=False)
class _Accepted:
    doc: "LiveDocument"
    row: EditOp
    ops: list
    origin: Connection | None
    done: asyncio.Future


@dataclass(eq=False)
class LiveDocument:
    generation_id: str
    experience_id: str
    player_id: str
    log: DocumentLog
    published: bool = False
    #: Set when a batch applied in memory could not be persisted: the copy is dropped.
    broken: bool = False
    #: Set while PromptCreateAvatarAsync exports this document; edits wait for the outcome.
    publishing: bool = False
    subscribers: set = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: batch id → its acceptance, while it waits for the group commit.
    in_flight: dict[str, _Accepted] = field(default_factory=dict)
    #: (version, Avatar.to_wire("PNG"), content hash) of the last bundle handed out.
    _bundle: tuple[int, dict, str] | None = None
    #: (version, glb) of the last current.glb exported.
    glb: tuple[int, bytes] | None = None
    #: Set while a hairstyle is being made for this document (one at a time).
    restyling: bool = False

    @property
    def avatar(self) -> Avatar:
        return self.log.avatar

    @property
    def version(self) -> int:
        return self.log.version

    def wire(self) -> bytes:
        return msgpack.packb(self.avatar.to_wire(), use_bin_type=True)

    async def bundle(self) -> tuple[dict, str]:
        """The document with PNG textures and its content hash, encoded once per version.

        Call with ``lock`` held; the encoding runs off the event loop.
        """
        if self._bundle is None or self._bundle[0] != self.version:
            wire = await asyncio.to_thread(self.avatar.to_wire, "PNG")
            self._bundle = (self.version, wire, self.avatar.content_hash())
        return self._bundle[1], self._bundle[2]

    def check_editable(self) -> None:
        if self.published:
            raise Conflict("This avatar is published; published bundles are immutable.", code="AlreadyPublished")
        if self.publishing:
            raise Conflict("This avatar is being published; wait for the result.", code="PublishInProgress")


def check_op_count(ops, most: int = MAX_OPS_PER_BATCH) -> None:
    """Refuse a batch that is not 1 to ``most`` ops (checked before anything is charged)."""
    if not isinstance(ops, list) or not 1 <= len(ops) <= most:
        raise InvalidParams(f"'Ops' must be a list of 1 to {most} ops.")


class Documents:
    def __init__(self, *, db, blobs, hub: Hub, clock, history: int = 512, feed: EditFeed | None = None):
        self.db = db
        self.feed = feed
        if feed is not None:
            feed.on_entry = self._remote_entry
        self.blobs = blobs
        self.hub = hub
        self.clock = clock
        self.history = history
        self._docs: dict[str, LiveDocument] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._queue: list[_Accepted] = []
        self._queued = asyncio.Event()
        self._flusher: asyncio.Task | None = None
        self._snapshots: set[asyncio.Task] = set()

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="edit-group-commit")

    async def stop(self, timeout: float = 10.0) -> None:
        if self._snapshots:  # the flusher still runs, so the versions they wait for become durable
            await asyncio.wait(set(self._snapshots), timeout=timeout)
            for task in self._snapshots:
                task.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass

    # -- opening ---------------------------------------------------------------

    async def open(self, gen: Generation) -> LiveDocument:
        doc = self._docs.get(gen.id)
        if doc is not None:
            if self.feed is not None:
                async with doc.lock:
                    await self._catch_up(doc)
            return doc
        lock = self._loading.setdefault(gen.id, asyncio.Lock())
        async with lock:
            if gen.id not in self._docs:
                if self.feed is not None:
                    await self.feed.follow(gen.id)  # before loading: nothing committed meanwhile is missed
                try:
                    doc_log, due = await self._load(gen)
                except BaseException:
                    if self.feed is not None:
                        self.feed.unfollow(gen.id)
                    raise
                self._evict_idle()
                doc = self._docs[gen.id] = LiveDocument(gen.id, gen.experience_id, gen.player_id, doc_log,
                                                        published=gen.published_bundle_id is not None)
                if due is not None:  # a snapshot was due and never stored
                    self._snapshot_later(gen.id, doc_log.version, due, None)
                if self.feed is not None:  # what the feed announced while it loaded, it skipped
                    async with doc.lock:
                        await self._catch_up(doc)
        self._loading.pop(gen.id, None)
        return self._docs[gen.id]

    async def _load(self, gen: Generation) -> tuple[DocumentLog, dict | None]:
        """The document replayed from the database, and its wire form when a snapshot is
        overdue (the log reaches SNAPSHOT_EVERY versions past the last one stored)."""
        async with self.db() as db:
            snap = await db.scalar(select(EditSnapshot).where(EditSnapshot.generation_id == gen.id)
                                   .order_by(EditSnapshot.version.desc()).limit(1))
            since = snap.version if snap else 0
            # Batch ids of the whole log (to recognise resends), ops only after the snapshot.
            known = (await db.execute(select(EditOp.version, EditOp.batch_id)
                                      .where(EditOp.generation_id == gen.id, EditOp.version <= since)
                                      .order_by(EditOp.version))).all()
            rows = (await db.scalars(select(EditOp).where(EditOp.generation_id == gen.id, EditOp.version > since)
                                     .order_by(EditOp.version))).all()
        base = await self.blobs.get(snap.document_sha if snap else gen.document_sha)
        entries = [(v, b, "", []) for v, b in known]
        entries += [(r.version, r.batch_id, r.origin, msgpack.unpackb(r.ops, raw=False)) for r in rows]

        def replay() -> tuple[DocumentLog, dict | None]:
            doc_log = DocumentLog(Avatar.from_wire(msgpack.unpackb(base, raw=False)), since, history=self.history)
            doc_log.restore(entries)
            due = doc_log.version - since >= SNAPSHOT_EVERY
            return doc_log, (doc_log.avatar.to_wire() if due else None)

        return await asyncio.to_thread(replay)

    def open_ids(self) -> set[str]:
        """Generations whose documents are in memory (never swept while open)."""
        return set(self._docs)

    def cached(self, generation_id: str) -> LiveDocument | None:
        """The open document, if it is in memory (saves a database read per edit)."""
        return self._docs.get(generation_id)

    def subscribe(self, doc: LiveDocument, conn: Connection | None) -> None:
        if conn is not None:
            doc.subscribers.add(conn)

    def unsubscribe_everywhere(self, conn: Connection) -> None:
        for gen_id, doc in list(self._docs.items()):
            if conn in doc.subscribers:
                doc.subscribers.discard(conn)
                if self._idle(doc):
                    self._drop(gen_id)  # replayed from the database when opened again

    @staticmethod
    def _idle(doc: LiveDocument) -> bool:
        return not doc.subscribers and not doc.lock.locked() and not doc.publishing and not doc.in_flight

    def _evict_idle(self) -> None:
        idle = [g for g, d in self._docs.items() if self._idle(d)]
        for gen_id in idle[: max(0, len(idle) - MAX_IDLE_DOCUMENTS + 1)]:
            self._drop(gen_id)

    def _drop(self, generation_id: str) -> None:
        self._docs.pop(generation_id, None)
        if self.feed is not None:
            self.feed.unfollow(generation_id)

    # -- editing ---------------------------------------------------------------

    async def apply(self, doc: LiveDocument, ops: list, origin: Connection | None, role: str, *,
                    base_version: int, batch_id: str | None = None, most: int = MAX_OPS_PER_BATCH) -> Submitted:
        """Order one batch; returns once it is durable (and relayed).  All or nothing.

        A ``batch_id`` seen before (a resend) is answered with its original version
        and not applied again.  ``most``: the server's own batches (a hairstyle) may be
        longer than a caller's.
        """
        check_op_count(ops, most)
        batch_id = batch_id or new_id(f"{role}-batch")
        if self.feed is not None:
            return await self._apply_shared(doc, ops, origin, role, base_version=base_version, batch_id=batch_id)
        async with doc.lock:
            submitted = await _submit(doc, ops, role, base_version, batch_id)
            if submitted.duplicate:
                earlier = doc.in_flight.get(batch_id)
            else:
                row = self._edit_row(doc, submitted.version, batch_id, role, ops)
                earlier = _Accepted(doc, row, ops, origin, asyncio.get_running_loop().create_future())
                doc.in_flight[batch_id] = earlier
                self._queue.append(earlier)
                self._queued.set()
                if submitted.version % SNAPSHOT_EVERY == 0:
                    # The state at exactly this version, stored once the version is durable.
                    # (copied off the loop; the lock keeps the document still meanwhile).
                    wire = await asyncio.to_thread(doc.avatar.to_wire)
                    self._snapshot_later(doc.generation_id, submitted.version, wire, earlier.done)
        if earlier is not None:
            await asyncio.shield(earlier.done)  # durable, relayed; raises if it could not be persisted
        return submitted

    def _edit_row(self, doc: LiveDocument, version: int, batch_id: str, role: str, ops: list) -> EditOp:
        return EditOp(generation_id=doc.generation_id, version=version, batch_id=batch_id, origin=role,
                      ops=msgpack.packb(ops, use_bin_type=True), created_at=self.clock())

    async def sync(self, doc: LiveDocument, version: int, conn: Connection | None) -> dict:
        """What a reconnecting copy at ``version`` needs: the batches after it, or a snapshot."""
        async with doc.lock:
            if self.feed is not None:
                await self._catch_up(doc)
            self.subscribe(doc, conn)
            durable = doc.version - len(doc.in_flight)
            batches = doc.log.since(version)
            if batches is not None:
                batches = [(v, b, ops) for v, b, ops in batches if v <= durable]
                return {"GenerationId": doc.generation_id, "Version": durable, "Batches": [
                    {"Version": v, "BatchId": b, "Ops": ops} for v, b, ops in batches]}
            document, _hash = await doc.bundle()
            return {"GenerationId": doc.generation_id, "Version": doc.version, "Document": document}

    async def read(self, doc: LiveDocument, fn):
        """``fn(doc)`` on the document as it is now (caught up with the other replicas'
        batches), under its lock; ``fn`` must not block."""
        async with doc.lock:
            if self.feed is not None:
                await self._catch_up(doc)
            return fn(doc)

    async def current(self, doc: LiveDocument) -> tuple[dict, str, int]:
        """The document as it is now (caught up with the other replicas' batches), with PNG
        textures, its content hash and its version."""
        async with doc.lock:
            if self.feed is not None:
                await self._catch_up(doc)
            wire, content_hash = await doc.bundle()
            return wire, content_hash, doc.version

    def _snapshot_later(self, generation_id: str, version: int, wire: dict, durable: asyncio.Future | None) -> None:
        task = asyncio.create_task(self._store_snapshot(generation_id, version, wire, durable))
        self._snapshots.add(task)
        task.add_done_callback(self._snapshots.discard)

    async def _store_snapshot(self, generation_id: str, version: int, wire: dict,
                              durable: asyncio.Future | None) -> None:
        try:
            if durable is not None:
                await asyncio.shield(durable)  # only snapshot durable versions
            data = await asyncio.to_thread(lambda: msgpack.packb(
                Avatar.from_wire(wire).to_wire("PNG"), use_bin_type=True))
            sha = await self.blobs.put(data)
            async with self.db.begin() as db:
                if await db.get(EditSnapshot, (generation_id, version)) is None:
                    db.add(EditSnapshot(generation_id=generation_id, version=version, document_sha=sha,
                                        created_at=self.clock()))
        except Exception:
            log.exception("snapshot of %s at version %s not stored", generation_id, version)

    async def _flush_loop(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._queue = self._queue, []
            durable = [a for a in batch if not a.doc.broken]
            try:
                async with self.db.begin() as db:
                    db.add_all([a.row for a in durable])
            except Exception:
                log.exception("could not persist %d edit batches", len(durable))
                durable = []
            for a in batch:
                a.doc.in_flight.pop(a.row.batch_id, None)
                if a in durable:
                    continue
                # Applied in memory but not persisted: never acknowledged; the copy is
                # dropped and replayed from the database when next opened.
                a.doc.broken = True
                self._drop(a.doc.generation_id)
                a.done.set_exception(Conflict("The edit could not be saved; reload the document.",
                                              code="EditNotSaved"))
            for a in durable:
                others = [c for c in a.doc.subscribers if c is not a.origin]
                await self.hub.to_many(others, "EditsApplied", {
                    "GenerationId": a.doc.generation_id, "Version": a.row.version, "BatchId": a.row.batch_id,
                    "Ops": a.ops, "Origin": a.row.origin,
                })
                a.done.set_result(a.row.version)


    # -- scaled out: the database orders, Redis relays --------------------------------------

    async def hold_for_publish(self, doc: LiveDocument, stack) -> None:
        """Scaled out: take the document's advisory lock for the rest of ``stack`` and bring the
        copy up to date (``doc.lock`` held); nothing embedded, where ``doc.publishing`` suffices."""
        if self.feed is None:
            return
        guard = await stack.enter_async_context(self.db.begin())
        await take_advisory(guard, f"document:{doc.generation_id}")
        await self._catch_up(doc)

    async def _apply_shared(self, doc: LiveDocument, ops: list, origin: Connection | None, role: str, *,
                            base_version: int, batch_id: str) -> Submitted:
        # Once begun, a batch is applied, committed and announced (or the copy dropped) even
        # if its sender goes away meanwhile: a half-done batch would leave this copy ahead of
        # the database.
        task = asyncio.create_task(self._apply_shared_whole(doc, ops, origin, role, base_version, batch_id))
        self._snapshots.add(task)  # awaited on shutdown
        task.add_done_callback(self._snapshots.discard)
        return await asyncio.shield(task)

    async def _apply_shared_whole(self, doc: LiveDocument, ops: list, origin: Connection | None, role: str,
                                  base_version: int, batch_id: str) -> Submitted:
        async with doc.lock:
            try:
                async with self.db.begin() as db:
                    await take_advisory(db, f"document:{doc.generation_id}")
                    await self._catch_up(doc, db)
                    submitted = await _submit(doc, ops, role, base_version, batch_id)
                    if submitted.duplicate:
                        return submitted
                    db.add(self._edit_row(doc, submitted.version, batch_id, role, ops))
            except AcsError:
                raise  # refused before anything changed
            except BaseException:
                # Applied here but not committed: never acknowledged; this copy is dropped and
                # loaded again from the database when next opened.
                log.exception("could not persist an edit batch of %s", doc.generation_id)
                doc.broken = True
                self._drop(doc.generation_id)
                raise Conflict("The edit could not be saved; reload the document.", code="EditNotSaved") from None
            if submitted.version % SNAPSHOT_EVERY == 0:
                self._snapshot_later(doc.generation_id, submitted.version,
                                     await asyncio.to_thread(doc.avatar.to_wire), None)
            self._relay(doc, submitted.version, batch_id, role, ops, origin)
        try:
            await self.feed.publish(doc.generation_id, submitted.version, batch_id, role, ops)
        except Exception:  # durable already; the other replicas catch up from the database
            log.exception("could not announce edit %s of %s", submitted.version, doc.generation_id)
        return submitted

    def _relay(self, doc: LiveDocument, version: int, batch_id: str, origin_role: str, ops: list,
               origin: Connection | None = None) -> None:
        frame = event_frame("EditsApplied", {"GenerationId": doc.generation_id, "Version": version,
                                             "BatchId": batch_id, "Ops": ops, "Origin": origin_role})
        for conn in list(doc.subscribers):
            if conn is not origin:
                conn.push(frame)

    async def _catch_up(self, doc: LiveDocument, db=None) -> None:
        """Apply (and relay) what other replicas committed since this copy's version; the
        document's lock is held."""
        async def read(db):
            rows = (await db.scalars(select(EditOp).where(EditOp.generation_id == doc.generation_id,
                                                          EditOp.version > doc.version)
                                     .order_by(EditOp.version))).all()
            published = await db.scalar(select(Generation.published_bundle_id)
                                        .where(Generation.id == doc.generation_id))
            return rows, published

        if db is None:
            async with self.db() as session:
                rows, published = await read(session)
        else:
            rows, published = await read(db)
        doc.published = doc.published or published is not None
        for r in rows:
            ops = msgpack.unpackb(r.ops, raw=False)
            doc.log.restore([(r.version, r.batch_id, r.origin, ops)])
            self._relay(doc, r.version, r.batch_id, r.origin, ops)

    async def _remote_entry(self, generation_id: str, version: int, batch_id: str, origin: str, ops: list) -> None:
        doc = self._docs.get(generation_id)
        if doc is None or version <= doc.version:
            return  # not open here, or already applied (this replica's own, or caught up)
        task = asyncio.create_task(self._follow(doc, version, batch_id, origin, ops))
        self._snapshots.add(task)  # awaited on shutdown like the snapshots
        task.add_done_callback(self._snapshots.discard)

    async def _follow(self, doc: LiveDocument, version: int, batch_id: str, origin: str, ops: list) -> None:
        try:
            async with doc.lock:
                if version == doc.version + 1:
                    doc.log.restore([(version, batch_id, origin, ops)])
                    self._relay(doc, version, batch_id, origin, ops)
                elif version > doc.version:
                    await self._catch_up(doc)  # an earlier entry is still on its way: read the log
        except Exception:
            log.exception("following edit %s of %s failed; dropping the copy", version, doc.generation_id)
            self._drop(doc.generation_id)


async def _submit(doc: LiveDocument, ops: list, role: str, base_version: int, batch_id: str) -> Submitted:
    """Check and apply a batch to the document's copy (its lock held); raises InvalidEdit or
    InvalidParams and changes nothing when refused."""
    doc.check_editable()
    _check_base(doc, base_version)
    cost = ops_cost(doc.avatar, ops)
    if cost > MAX_PIXELS_PER_BATCH:
        raise InvalidParams(f"This batch would touch more than {MAX_PIXELS_PER_BATCH} pixels; "
                            "split it into smaller batches.")
    # Small batches (a few vertices, a brush stroke) cost less than a thread hop and run inline.
    if cost <= INLINE_COST and len(ops) <= INLINE_OPS:
        return doc.log.submit(batch_id, base_version, ops, role)
    return await asyncio.to_thread(doc.log.submit, batch_id, base_version, ops, role)


def _check_base(doc: LiveDocument, base_version: int) -> None:
    if base_version < 0 or base_version > doc.version:
        raise InvalidParams(f"BaseVersion {base_version} is not a version of this document "
                            f"(latest is {doc.version}).")
