"""A side's local copy of the shared edit document: the I/O shell of :class:`meshes.sync.Replica`.

Edits go to the server with a batch id; the copy applies every batch, its own and
relayed ones, strictly in the server's version order, so all copies converge on
the server's document.  After a dropped connection, :meth:`AvatarCopy.resync`
fetches what was missed (or a snapshot) and resends the unacknowledged batches;
the server recognises resends by their batch id and does not apply them twice.
"""

from __future__ import annotations

import asyncio

from meshes import Avatar
from meshes.sync import SIDE_CLIENT, SIDE_SERVER, IdAllocator, Replica
from schemas.errors import AcsError

from .connection import Connection

__all__ = ["AvatarCopy"]


class AvatarCopy:
    def __init__(self, conn: Connection, bundle: dict, *, side: int):
        self.conn = conn
        self.generation_id: str = bundle["GenerationId"]
        self.description: dict = bundle["HumanoidDescription"]
        self.glb_url: str = bundle["GlbUrl"]
        self.replica = Replica(Avatar.from_wire(bundle["Document"]), bundle["Version"], side)
        self._changed = asyncio.Condition()
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
        """
        batch_id, base, ops = self.replica.edit(ops)
        return await self._send(batch_id, base, ops)

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
