"""A side's local copy of the shared edit document.

Edits go to the server; the copy applies every batch, its own and relayed
ones, strictly in the server's version order, so all copies converge on the
server's document.
"""

from __future__ import annotations

import asyncio

from meshes import Avatar, apply_ops, ops_cost
from server.documents import INLINE_COST

from .connection import Connection

__all__ = ["AvatarCopy"]


class AvatarCopy:
    def __init__(self, conn: Connection, bundle: dict):
        self.conn = conn
        self.generation_id: str = bundle["GenerationId"]
        self.description: dict = bundle["HumanoidDescription"]
        self.avatar = Avatar.from_wire(bundle["Document"])
        self.version: int = bundle["Version"]
        self.glb_url: str = bundle["GlbUrl"]
        self._pending: dict[int, list] = {}
        self._changed = asyncio.Condition()
        conn.on("EditsApplied", self.receive_relayed)

    def content_hash(self) -> str:
        return self.avatar.content_hash()

    async def edit(self, ops: list[dict]) -> int:
        """Send a batch; returns its version once applied to this copy."""
        result = await self.conn.call("ApplyEdits", {"GenerationId": self.generation_id,
                                                     "BaseVersion": self.version, "Ops": ops})
        await self._received(result["Version"], ops)
        return result["Version"]

    async def wait_version(self, version: int, timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.version >= version), timeout)

    async def receive_relayed(self, data: dict) -> None:
        """An ``EditsApplied`` event; batches of other documents are ignored."""
        if data.get("GenerationId") == self.generation_id:
            await self._received(data["Version"], data["Ops"])

    async def _received(self, version: int, ops: list) -> None:
        async with self._changed:
            if version > self.version:
                self._pending[version] = ops
            while self.version + 1 in self._pending:
                ops = self._pending.pop(self.version + 1)
                if ops_cost(self.avatar, ops) <= INLINE_COST:
                    apply_ops(self.avatar, ops)
                else:
                    await asyncio.to_thread(apply_ops, self.avatar, ops)
                self.version += 1
            self._changed.notify_all()
