"""Shared edit documents: one authoritative avatar per generation (SPEC §7).

A document is the generated avatar (a blob) plus the ordered log of accepted
op batches (``edit_ops`` rows).  Loading replays the log over the base, so a
restart resumes every document at its last acknowledged version.  The server
orders batches: each accepted batch gets the next version, is persisted, acked
to its sender and relayed, with its version, to every other copy.  Copies
apply batches in version order and therefore converge.

Applying ops and encoding snapshots run in a thread, and a batch's pixel work
is capped, so one large edit cannot stall the event loop.  Documents nobody
holds open are dropped from memory and replayed from the database when needed.

Persistence is a group commit: accepted batches wait in a queue that one flusher
task writes in a single transaction; only then are they acknowledged and relayed,
in version order.  Under load many batches share one fsync; a batch is never
acknowledged or relayed before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import msgpack
from sqlalchemy import select

from meshes import Avatar, apply_ops, ops_cost
from schemas.errors import Conflict, InvalidParams

from .db import EditOp, Generation
from .hub import Connection, Hub

__all__ = ["LiveDocument", "Documents", "MAX_OPS_PER_BATCH", "MAX_PIXELS_PER_BATCH"]

log = logging.getLogger(__name__)

MAX_OPS_PER_BATCH = 1024
#: Pixels one batch may touch (four 1024² images' worth).
MAX_PIXELS_PER_BATCH = 4 * 1024 * 1024
#: Batches up to this cost (pixels, see ops_cost) are applied on the event loop.
INLINE_COST = 64 * 64
#: Documents kept in memory with no socket subscribed (HTTP-only callers).
MAX_IDLE_DOCUMENTS = 32


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
    avatar: Avatar
    version: int
    published: bool = False
    #: Set when a batch applied in memory could not be persisted: the copy is dropped.
    broken: bool = False
    #: Set while PromptCreateAvatarAsync exports this document; edits wait for the outcome.
    publishing: bool = False
    subscribers: set = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: (version, Avatar.to_wire("PNG"), content hash) of the last bundle handed out.
    _bundle: tuple[int, dict, str] | None = None

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


class Documents:
    def __init__(self, *, db, blobs, hub: Hub, clock):
        self.db = db
        self.blobs = blobs
        self.hub = hub
        self.clock = clock
        self._docs: dict[str, LiveDocument] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._queue: list[_Accepted] = []
        self._queued = asyncio.Event()
        self._flusher: asyncio.Task | None = None

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="edit-group-commit")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass

    async def open(self, gen: Generation) -> LiveDocument:
        doc = self._docs.get(gen.id)
        if doc is not None:
            return doc
        lock = self._loading.setdefault(gen.id, asyncio.Lock())
        async with lock:
            if gen.id not in self._docs:
                base = await self.blobs.get(gen.document_sha)
                async with self.db() as db:
                    rows = (await db.scalars(select(EditOp).where(EditOp.generation_id == gen.id)
                                             .order_by(EditOp.version))).all()
                batches = [msgpack.unpackb(r.ops, raw=False) for r in rows]
                avatar = await asyncio.to_thread(_replay, base, batches)
                self._evict_idle()
                self._docs[gen.id] = LiveDocument(gen.id, gen.experience_id, gen.player_id, avatar,
                                                  rows[-1].version if rows else 0,
                                                  published=gen.published_bundle_id is not None)
        self._loading.pop(gen.id, None)
        return self._docs[gen.id]

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
                if not doc.subscribers and not doc.lock.locked() and not doc.publishing:
                    del self._docs[gen_id]  # replayed from the database when opened again

    def _evict_idle(self) -> None:
        idle = [g for g, d in self._docs.items() if not d.subscribers and not d.lock.locked() and not d.publishing]
        for gen_id in idle[: max(0, len(idle) - MAX_IDLE_DOCUMENTS + 1)]:
            del self._docs[gen_id]

    async def apply(self, doc: LiveDocument, ops: list, origin: Connection | None, role: str) -> int:
        """Validate and apply one batch; returns its version.  All or nothing."""
        if not ops:
            raise InvalidParams("'Ops' must hold at least one op.")
        if len(ops) > MAX_OPS_PER_BATCH:
            raise InvalidParams(f"At most {MAX_OPS_PER_BATCH} ops per batch.")
        async with doc.lock:
            doc.check_editable()
            cost = ops_cost(doc.avatar, ops)
            if cost > MAX_PIXELS_PER_BATCH:
                raise InvalidParams(f"This batch would touch more than {MAX_PIXELS_PER_BATCH} pixels; "
                                    "split it into smaller batches.")
            # Raises InvalidEdit and changes nothing.  Small batches (a few vertices, a
            # brush stroke) cost less than a thread hop and run inline.
            if cost <= INLINE_COST:
                apply_ops(doc.avatar, ops)
            else:
                await asyncio.to_thread(apply_ops, doc.avatar, ops)
            doc.version += 1
            row = EditOp(generation_id=doc.generation_id, version=doc.version, origin=role,
                         ops=msgpack.packb(ops, use_bin_type=True), created_at=self.clock())
            accepted = _Accepted(doc, row, ops, origin, asyncio.get_running_loop().create_future())
            self._queue.append(accepted)
            self._queued.set()
        await asyncio.shield(accepted.done)  # durable, relayed; raises if it could not be persisted
        return row.version

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
                if a in durable:
                    continue
                # Applied in memory but not persisted: never acknowledged; the copy is
                # dropped and replayed from the database when next opened.
                a.doc.broken = True
                self._docs.pop(a.doc.generation_id, None)
                a.done.set_exception(Conflict("The edit could not be saved; reload the document.",
                                              code="EditNotSaved"))
            for a in durable:
                others = [c for c in a.doc.subscribers if c is not a.origin]
                await self.hub.to_many(others, "EditsApplied", {
                    "GenerationId": a.doc.generation_id, "Version": a.row.version, "Ops": a.ops,
                    "Origin": a.row.origin,
                })
                a.done.set_result(a.row.version)


def _replay(base: bytes, batches: list[list]) -> Avatar:
    avatar = Avatar.from_wire(msgpack.unpackb(base, raw=False))
    for ops in batches:
        apply_ops(avatar, ops)
    return avatar
