"""The scaled-out ``EditFeed``: accepted edit batches cross replicas through Redis Streams.

One stream per document (``acs:doc:<generation id>``, the newest :data:`MAXLEN` entries
kept).  The replica that commits a batch adds it after the commit, so everything in a
stream is durable in PostgreSQL, which stays the document's authoritative ordered log.
Each replica reads, with one blocking ``XREAD``, the streams of the documents it has
open, from the stream's last id taken *before* it loaded the document from the
database; entries it already has are recognised by their version and skipped, and a
gap (two replicas' adds crossing) is filled from the database by the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable

import msgpack

__all__ = ["RedisEditFeed"]

log = logging.getLogger(__name__)

#: Entries kept per document stream (a replica further behind reads the database).
MAXLEN = 10_000
#: A stream not written for this long is deleted (its batches are in the database).
KEEP_S = 24 * 3600
#: How long one XREAD waits, so a newly opened document joins the read within that time.
BLOCK_MS = 100

Entry = Callable[[str, int, str, str, list], Awaitable[None]]


def _key(generation_id: str) -> str:
    return f"acs:doc:{generation_id}"


class RedisEditFeed:
    def __init__(self, url: str):
        self.url = url
        self._redis = None
        self._reader = None
        self._streams: dict[str, bytes] = {}  # stream key → last id read
        self._task: asyncio.Task | None = None
        #: Called with (generation id, version, batch id, origin, ops) for every entry read.
        self.on_entry: Entry | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(self.url)
        self._reader = aioredis.Redis.from_url(self.url)  # its own connection for the blocking read
        await self._redis.ping()
        self._task = asyncio.create_task(self._read(), name="redis-edit-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._redis, self._reader):
            if client is not None:
                await client.aclose()

    async def publish(self, generation_id: str, version: int, batch_id: str, origin: str, ops: list) -> None:
        entry = msgpack.packb([version, batch_id, origin, ops], use_bin_type=True)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(_key(generation_id), {b"e": entry}, maxlen=MAXLEN, approximate=True)
            pipe.expire(_key(generation_id), KEEP_S)  # a document left alone: its stream goes
            await pipe.execute()

    async def follow(self, generation_id: str) -> None:
        """Read this document's stream from now on (call before loading it from the database)."""
        key = _key(generation_id)
        if key in self._streams:
            return
        last = await self._redis.xrevrange(key, count=1)
        self._streams[key] = last[0][0] if last else b"0-0"
        self._changed.set()

    def unfollow(self, generation_id: str) -> None:
        self._streams.pop(_key(generation_id), None)

    async def _read(self) -> None:
        while True:
            if not self._streams:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                found = await self._reader.xread(dict(self._streams), block=BLOCK_MS, count=256)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading edit streams failed")
                await asyncio.sleep(1.0)
                continue
            for key, entries in found or ():
                key = key.decode() if isinstance(key, bytes) else key
                for entry_id, fields in entries:
                    if key in self._streams:
                        self._streams[key] = entry_id
                    try:
                        version, batch_id, origin, ops = msgpack.unpackb(fields[b"e"], raw=False)
                    except (KeyError, ValueError, TypeError, msgpack.UnpackException):
                        log.warning("ignored a malformed entry in %s", key)
                        continue
                    if self.on_entry is not None:
                        await self.on_entry(key.removeprefix("acs:doc:"), version, batch_id, origin, ops)
