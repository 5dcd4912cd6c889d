"""Named locks for a critical section that must be exclusive in this process and, scaled
out, across replicas.

Across replicas the lock is a PostgreSQL advisory lock held by a transaction of its own
(``pg_advisory_xact_lock``): the section's own writes commit in other transactions before
it ends, so the next holder reads them.  A replica that dies releases its locks with its
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref

from sqlalchemy import text

from server.ports import Store

__all__ = ["lock_key", "take_advisory", "held"]

#: name → the lock of this process; entries vanish once no section holds them.
_local: "weakref.WeakValueDictionary[str, asyncio.Lock]" = weakref.WeakValueDictionary()


def lock_key(name: str) -> int:
    """The advisory lock key of ``name``: a signed 64-bit hash."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def take_advisory(db, name: str) -> None:
    """Take the advisory lock ``name`` for the rest of ``db``'s transaction."""
    await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


@contextlib.asynccontextmanager
async def held(store: Store, name: str, *, shared: bool):
    """Hold the lock ``name`` here and, when ``shared``, on every replica."""
    lock = _local.get(name)
    if lock is None:
        lock = _local[name] = asyncio.Lock()
    async with lock:
        if not shared:
            yield
            return
        async with store.begin() as guard:
            await take_advisory(guard, name)
            yield
