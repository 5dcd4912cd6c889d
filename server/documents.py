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
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import msgpack
from sqlalchemy import select

from meshes import Avatar, apply_ops, ops_cost
from schemas.errors import Conflict, InvalidParams

from .db import EditOp, Generation
from .hub import Connection, Hub

__all__ = ["LiveDocument", "Documents", "MAX_OPS_PER_BATCH", "MAX_PIXELS_PER_BATCH"]

MAX_OPS_PER_BATCH = 1024
#: Pixels one batch may touch (four 1024² images' worth).
MAX_PIXELS_PER_BATCH = 4 * 1024 * 1024
#: Documents kept in memory with no socket subscribed (HTTP-only callers).
MAX_IDLE_DOCUMENTS = 32


@dataclass(eq=False)
class LiveDocument:
    generation_id: str
    avatar: Avatar
    version: int
    published: bool = False
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
                self._docs[gen.id] = LiveDocument(gen.id, avatar, rows[-1].version if rows else 0,
                                                  published=gen.published_bundle_id is not None)
        self._loading.pop(gen.id, None)
        return self._docs[gen.id]

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
            if ops_cost(doc.avatar, ops) > MAX_PIXELS_PER_BATCH:
                raise InvalidParams(f"This batch would touch more than {MAX_PIXELS_PER_BATCH} pixels; "
                                    "split it into smaller batches.")
            await asyncio.to_thread(apply_ops, doc.avatar, ops)  # raises InvalidEdit, changes nothing
            doc.version += 1
            try:
                async with self.db.begin() as db:
                    db.add(EditOp(generation_id=doc.generation_id, version=doc.version, origin=role,
                                  ops=msgpack.packb(ops, use_bin_type=True), created_at=self.clock()))
            except BaseException:
                # Not persisted, so not acknowledged: reload from the database next time.
                self._docs.pop(doc.generation_id, None)
                raise
            others = [c for c in doc.subscribers if c is not origin]
            await self.hub.to_many(others, "EditsApplied", {
                "GenerationId": doc.generation_id, "Version": doc.version, "Ops": ops, "Origin": role,
            })
            return doc.version


def _replay(base: bytes, batches: list[list]) -> Avatar:
    avatar = Avatar.from_wire(msgpack.unpackb(base, raw=False))
    for ops in batches:
        apply_ops(avatar, ops)
    return avatar
