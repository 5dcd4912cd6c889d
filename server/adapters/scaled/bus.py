"""The scaled-out ``EventBus``: events cross replicas through Redis.

Every replica subscribes to one pub/sub channel and hands what arrives to its own hub,
which pushes it to the sockets it holds (``Hub.deliver``).  Pub/sub is at most once, and
that is enough for pushes whose state a client can always read again
(``GetSessionRequest``, ``SyncDocument``).

An experience's events must not be lost while no game server of it is connected
anywhere (SPEC: a reconnecting game server still gets its ``SessionReady``).  Each
replica keeps, per experience it serves, an entry in the sorted set ``acs:gs:<id>``
scored by when it expires (refreshed every ``ttl``/3 s, so a killed replica's entry
lapses).  Publishing to an experience is one Lua script, atomic in Redis: with a live
entry it PUBLISHes; with none it appends to the list ``acs:backlog:<id>`` (the newest
:data:`BACKLOG` kept).  A replica whose first game server socket of that experience
opens adds its entry and takes the backlog in one script, so an event is either
published while the entry exists or kept and taken by the next game server: never both,
never neither.  Entry updates for one key are serialised and follow what the hub holds
when they run, and each refresh takes the backlog again, so nothing stays kept while a
game server is connected.

Open prompts are listed in Redis too (``acs:prompt:<id>``, with a time limit), so a
player's answer reaching another replica is checked against its owner there and
handed, once (the entry is deleted by the first answer), to the replica that waits.
A session's open selfie prompt is also held by ``acs:prompt-session:<id>`` (SET NX),
so a session never has two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import weakref

import msgpack

from schemas.frames import event_frame
from server.ports import PromptInfo

__all__ = ["RedisBus"]

log = logging.getLogger(__name__)

CHANNEL = "acs:events"
BACKLOG = 1000

# KEYS: presence zset, backlog list.  ARGV: channel, message, backlog size.
_PUBLISH_OR_KEEP = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) > 0 then
  return redis.call('PUBLISH', ARGV[1], ARGV[2])
end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[2], 86400)
return -1
"""

# KEYS: the prompt's entry.  ARGV: channel, message.  The first answer deletes the entry.
_ANSWER = """
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: presence zset, backlog list.  ARGV: replica id, ttl seconds.  Returns the backlog.
_ARRIVE_AND_TAKE = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(2 * tonumber(ARGV[2])))
local kept = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
return kept
"""


class RedisBus:
    """Args: hub: this process's sockets; url: ``redis://…``; ttl: seconds a replica's
    presence entry outlives its last refresh."""

    def __init__(self, hub, url: str, *, ttl: float = 15.0):
        self.hub = hub
        self.url = url
        self.ttl = ttl
        self.replica_id = secrets.token_hex(8)
        self._redis = None
        self._pubsub = None
        self._tasks: list[asyncio.Task] = []
        self._prompts = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        #: Called with (experience id, player id, revoked at) for revocations made on any replica.
        self.on_revoked = None
        hub.on_server_presence = self._server_presence

    def attach_prompts(self, prompts) -> None:
        """Settle this process's waiting prompts (``Prompts.deliver``) from other replicas' answers."""
        self._prompts = prompts

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(self.url)
        await self._redis.ping()
        self._publish_or_keep = self._redis.register_script(_PUBLISH_OR_KEEP)
        self._arrive_and_take = self._redis.register_script(_ARRIVE_AND_TAKE)
        self._answer = self._redis.register_script(_ANSWER)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(CHANNEL)
        self._tasks = [asyncio.create_task(self._listen(), name="redis-bus"),
                       asyncio.create_task(self._refresh(), name="redis-presence")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._redis is not None:
            keys = [self._presence_key(exp) for exp in self.hub.experiences_served()]
            keys += [self._player_key(exp, player) for exp, player in self.hub.players_here()]
            for key in keys:
                with contextlib.suppress(Exception):
                    await self._redis.zrem(key, self.replica_id)
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            await self._redis.aclose()

    @staticmethod
    def _presence_key(exp: str) -> str:
        return f"acs:gs:{exp}"

    @staticmethod
    def _player_key(exp: str, player: str) -> str:
        return f"acs:pc:{exp}:{player}"

    # -- EventBus -----------------------------------------------------------------------------

    async def to_experience(self, experience_id: str, event: str, data: dict) -> None:
        message = msgpack.packb(["push", experience_id, None, event_frame(event, data)], use_bin_type=True)
        await self._publish_or_keep(keys=[self._presence_key(experience_id), f"acs:backlog:{experience_id}"],
                                    args=[CHANNEL, message, BACKLOG])

    async def to_player(self, experience_id: str, player_id: str, event: str, data: dict) -> None:
        message = msgpack.packb(["push", experience_id, player_id, event_frame(event, data)], use_bin_type=True)
        await self._redis.publish(CHANNEL, message)

    async def tokens_revoked(self, experience_id: str, player_id: str, revoked_at: float) -> None:
        await self._redis.publish(CHANNEL, msgpack.packb(["revoked", experience_id, player_id, revoked_at]))

    async def player_presence(self, experience_id: str, player_id: str, _connected: bool) -> None:
        key = self._player_key(experience_id, player_id)
        async with self._lock(key):  # as for game servers: the hub's state when it runs
            try:
                if self.hub.player_connections(experience_id, player_id):
                    now = float((await self._redis.time())[0])
                    await self._redis.zadd(key, {self.replica_id: now + self.ttl})
                    await self._redis.expire(key, int(2 * self.ttl))
                else:
                    await self._redis.zrem(key, self.replica_id)
            except Exception:
                log.exception("redis bus: updating the presence of player %s failed", player_id)

    async def player_online(self, experience_id: str, player_id: str) -> bool:
        now = float((await self._redis.time())[0])
        return await self._redis.zcount(self._player_key(experience_id, player_id), now, "+inf") > 0

    # -- the replica's side ----------------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _server_presence(self, experience_id: str, _connected: bool) -> None:
        """Make Redis say what the hub holds now.  Updates of one key are serialised and read
        the hub's state when they run, so a socket closing and another opening at once never
        leave the entry removed while a game server is connected."""
        key = self._presence_key(experience_id)
        async with self._lock(key):
            try:
                if self.hub.serves(experience_id):
                    await self._arrive(experience_id)
                else:
                    await self._redis.zrem(key, self.replica_id)
            except Exception:  # Redis down: sockets still open; the refresh catches up
                log.exception("redis bus: updating the presence of %s failed", experience_id)

    async def _arrive(self, experience_id: str) -> None:
        """Renew this replica's entry and deliver what was kept while there was none."""
        kept = await self._arrive_and_take(keys=[self._presence_key(experience_id), f"acs:backlog:{experience_id}"],
                                           args=[self.replica_id, self.ttl])
        for message in kept:
            self._handle(msgpack.unpackb(message, raw=False))

    async def _listen(self) -> None:
        while True:
            try:
                async for msg in self._pubsub.listen():
                    if msg.get("type") != "message":
                        continue
                    try:
                        self._handle(msgpack.unpackb(msg["data"], raw=False))
                    except (ValueError, TypeError, msgpack.UnpackException):
                        log.warning("ignored a malformed message on %s", CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis bus: listening failed; resubscribing")
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await self._pubsub.subscribe(CHANNEL)

    def _handle(self, message: list) -> None:
        kind, *rest = message
        if kind == "push":
            exp, player, frame = rest
            self.hub.deliver(exp, player, frame)
        elif kind == "prompt" and self._prompts is not None:
            prompt_id, outcome = rest
            self._prompts.deliver(prompt_id, outcome)
        elif kind == "session-ended" and self._prompts is not None:
            session_id, reason = rest
            self._prompts.session_ended_here(session_id, reason)
        elif kind == "revoked" and self.on_revoked is not None:
            exp, player, revoked_at = rest
            self.on_revoked(exp, player, revoked_at)

    # -- PromptRelay -------------------------------------------------------------------------------

    async def claim_prompt(self, info: PromptInfo, ttl: float) -> bool:
        ttl_ms = max(1000, int(ttl * 1000))
        if info.session_id is not None and not await self._redis.set(
                f"acs:prompt-session:{info.session_id}", info.prompt_id, nx=True, px=ttl_ms):
            return False
        entry = [info.experience_id, info.player_id, info.session_id, info.kind]
        await self._redis.set(f"acs:prompt:{info.prompt_id}", msgpack.packb(entry), px=ttl_ms)
        return True

    async def prompt_info(self, prompt_id: str) -> PromptInfo | None:
        entry = await self._redis.get(f"acs:prompt:{prompt_id}")
        if entry is None:
            return None
        exp, player, session, kind = msgpack.unpackb(entry, raw=False)
        return PromptInfo(prompt_id, exp, player, session, kind)

    async def answer_prompt(self, prompt_id: str, outcome: list) -> bool:
        message = msgpack.packb(["prompt", prompt_id, outcome], use_bin_type=True)
        return bool(await self._answer(keys=[f"acs:prompt:{prompt_id}"], args=[CHANNEL, message]))

    async def forget_prompt(self, info: PromptInfo) -> None:
        keys = [f"acs:prompt:{info.prompt_id}"]
        if info.session_id is not None:
            keys.append(f"acs:prompt-session:{info.session_id}")
        await self._redis.delete(*keys)

    async def session_ended_everywhere(self, session_id: str, reason: str) -> None:
        await self._redis.publish(CHANNEL, msgpack.packb(["session-ended", session_id, reason]))

    async def _refresh(self) -> None:
        """Keep this replica's presence entries (game servers, players) alive while it holds their sockets."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                for exp in self.hub.experiences_served():  # also delivers anything kept meanwhile
                    async with self._lock(self._presence_key(exp)):
                        if self.hub.serves(exp):
                            await self._arrive(exp)
                keys = [self._player_key(exp, player) for exp, player in self.hub.players_here()]
                if keys:
                    now = float((await self._redis.time())[0])
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for key in keys:
                            pipe.zadd(key, {self.replica_id: now + self.ttl})
                            pipe.expire(key, int(2 * self.ttl))
                        await pipe.execute()
            except Exception:
                log.exception("redis bus: refreshing presence failed")
