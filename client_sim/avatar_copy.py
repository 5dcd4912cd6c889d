"""A side's local copy of the shared edit document: the I/O shell of :class:`meshes.sync.Replica`.

Edits go to the server with a batch id; the copy applies every batch, its own and
relayed ones, strictly in the server's version order, so all copies converge on
the server's document.  After a dropped connection, :meth:`AvatarCopy.resync`
fetches what was missed (or a snapshot) and resends the unacknowledged batches;
the server recognises resends by their batch id and does not apply them twice.

Edits made while a batch is on its way ride together in the next one (Nagle-style):
one frame, one server commit and one acknowledgement for many small edits.  Should
the server refuse such a merged batch, each edit in it is sent again on its own,
so every edit still gets its own outcome.
"""

from __future__ import annotations

import asyncio
from collections import deque

from meshes import Avatar
from meshes.sync import SIDE_CLIENT, SIDE_SERVER, IdAllocator, Replica
from schemas.errors import AcsError

from .connection import Connection

__all__ = ["AvatarCopy", "MAX_MERGED_OPS"]

#: The most ops merged into one batch (the server's limit per batch).
MAX_MERGED_OPS = 1024


class AvatarCopy:
    def __init__(self, conn: Connection, bundle: dict, *, side: int):
        self.conn = conn
        self.generation_id: str = bundle["GenerationId"]
        self.description: dict = bundle["HumanoidDescription"]
        self.glb_url: str = bundle["GlbUrl"]
        self.replica = Replica(Avatar.from_wire(bundle["Document"]), bundle["Version"], side)
        self._changed = asyncio.Condition()
        #: Edits waiting for the batch in flight to be acknowledged: (ops, future of the version).
        self._outbox: deque[tuple[list, asyncio.Future]] = deque()
        self._sending = False
        conn.on("EditsApplied", self.receive_relayed)

    @classmethod
    def for_role(cls, conn: Connection, bundle: dict, role: str) -> "AvatarCopy":
        return cls(conn, bundle, side=SIDE_SERVER if role == "server" else SIDE_CLIENT)

    @property
    def avatar(self) -> Avatar:
        """The confirmed copy (the server's document at :attr:`version`)."""
        return self.replica.avatar

    @property
    def version(self) -> int:
        return self.replica.version

    @property
    def ids(self) -> IdAllocator:
        """Ids for AddVertex / AddTriangle that never collide with the other side's."""
        return self.replica.ids

    def content_hash(self) -> str:
        return self.replica.content_hash()

    async def edit(self, ops: list[dict]) -> int:
        """Send a batch; returns its version once applied to this copy.

        If the connection is down the batch stays pending and is resent by
        :meth:`resync`; a batch the server refuses is dropped and its error raised.
        While an earlier batch is on its way, this one waits and goes with the next.
        """
        ops = list(ops)
        if self._sending or self._outbox:
            done = asyncio.get_running_loop().create_future()
            self._outbox.append((ops, done))
            return await done
        self._sending = True
        try:
            batch_id, base, ops = self.replica.edit(ops)
            return await self._send(batch_id, base, ops)
        finally:
            self._sending = False
            self._flush_soon()

    def _flush_soon(self) -> None:
        if self._outbox and not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Send the waiting edits as one batch (up to :data:`MAX_MERGED_OPS` ops)."""
        try:
            take = [self._outbox.popleft()]
            count = len(take[0][0])
            while self._outbox and count + len(self._outbox[0][0]) <= MAX_MERGED_OPS:
                count += len(self._outbox[0][0])
                take.append(self._outbox.popleft())
            waiting = [done for _ops, done in take if not done.cancelled()]
            try:
                batch_id, base, merged = self.replica.edit([op for ops, _done in take for op in ops])
                version = await self._send(batch_id, base, merged)
            except AcsError as err:
                if len(take) == 1:
                    _settle(take[0][1], error=err)
                    return
                for ops, done in take:  # refused together: each edit gets its own answer
                    try:
                        batch_id, base, ops = self.replica.edit(ops)
                        _settle(done, await self._send(batch_id, base, ops))
                    except Exception as one:
                        _settle(done, error=one)
                return
            except Exception as err:  # the connection went: pending in the replica, resent by resync
                for done in waiting:
                    _settle(done, error=err)
                return
            for done in waiting:
                _settle(done, version)
        finally:
            self._sending = False
            self._flush_soon()

    async def _send(self, batch_id: str, base: int, ops: list) -> int:
        try:
            result = await self.conn.call("ApplyEdits", {"GenerationId": self.generation_id, "BaseVersion": base,
                                                         "Ops": ops, "BatchId": batch_id})
        except AcsError:
            self.replica.rejected(batch_id)
            raise
        async with self._changed:
            self.replica.acked(batch_id, result["Version"])
            self._changed.notify_all()
        return result["Version"]

    async def resync(self) -> None:
        """After a reconnect: catch up, then resend what was never acknowledged."""
        state = await self.conn.call("SyncDocument", {"GenerationId": self.generation_id,
                                                      "Version": self.replica.version})
        async with self._changed:
            if "Document" in state:
                self.replica.reset(Avatar.from_wire(state["Document"]), state["Version"])
            for b in state.get("Batches", ()):
                self.replica.relayed(b["Version"], b["BatchId"], b["Ops"])
            self._changed.notify_all()
        for batch_id, base, ops in self.replica.pending():
            await self._send(batch_id, base, ops)

    async def wait_version(self, version: int, timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.version >= version), timeout)

    async def receive_relayed(self, data: dict) -> None:
        """An ``EditsApplied`` event; batches of other documents are ignored."""
        if data.get("GenerationId") != self.generation_id:
            return
        async with self._changed:
            self.replica.relayed(data["Version"], data.get("BatchId", ""), data["Ops"])
            self._changed.notify_all()


def _settle(done: asyncio.Future, value=None, *, error: BaseException | None = None) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(value)
