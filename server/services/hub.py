"""Open websocket connections and pushed events.

The hub knows which sockets belong to which experience (game servers) and to
which player (game clients), and pushes ``{"event": E, "data": ...}`` frames to
them.  Events for an experience with no game server connected are kept in a
bounded backlog and delivered when one connects, so a ``SessionReady`` is not
lost to a reconnecting game server.  The backlog lives in memory: after a server
restart a game server recovers with ``GetSessionRequest``.

Pushing never waits on a socket: :meth:`Connection.push` only queues the frame
on that connection (see ``web/ws.py``), so the hub may be called with a
lock held or from a loop that serves many peers.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Awaitable, Callable, Protocol

from schemas.frames import event_frame
from server.core.auth import Principal

__all__ = ["Connection", "Hub"]


BACKLOG = 1000


class Connection(Protocol):
    principal: Principal

    def push(self, frame: dict) -> bool:
        """Queue ``frame`` for the peer without waiting; False if the connection is gone."""
        ...

    def abort(self) -> None:
        """Drop the connection now."""
        ...


class Hub:
    def __init__(self) -> None:
        self._servers: dict[str, set[Connection]] = defaultdict(set)
        self._clients: dict[tuple[str, str], set[Connection]] = defaultdict(set)
        self._backlog: dict[str, deque[dict]] = defaultdict(lambda: deque(maxlen=BACKLOG))
        #: Called with (experience_id, player_id, connected: bool) when a
        #: player's first socket opens or last one closes.
        self.on_player_presence: Callable[[str, str, bool], Awaitable[None]] | None = None
        #: Called with (experience_id, connected: bool) when an experience's first game
        #: server socket here opens or its last one closes (a cross-replica bus keeps its
        #: backlog and presence elsewhere; then the hub keeps no backlog of its own).
        self.on_server_presence: Callable[[str, bool], Awaitable[None]] | None = None

    async def add(self, conn: Connection) -> None:
        p = conn.principal
        if p.role == "server":
            first = not self._servers[p.experience_id]
            self._servers[p.experience_id].add(conn)
            backlog = self._backlog.pop(p.experience_id, ())
            for frame in backlog:
                conn.push(frame)
            if first and self.on_server_presence:
                await self.on_server_presence(p.experience_id, True)
        else:
            key = (p.experience_id, p.player_id)
            first = not self._clients[key]
            self._clients[key].add(conn)
            if first and self.on_player_presence:
                await self.on_player_presence(p.experience_id, p.player_id, True)

    async def remove(self, conn: Connection) -> None:
        p = conn.principal
        if p.role == "server":
            self._servers[p.experience_id].discard(conn)
            if not self._servers[p.experience_id]:
                del self._servers[p.experience_id]
                if self.on_server_presence:
                    await self.on_server_presence(p.experience_id, False)
            return
        key = (p.experience_id, p.player_id)
        self._clients[key].discard(conn)
        if not self._clients[key]:
            del self._clients[key]
            if self.on_player_presence:
                await self.on_player_presence(p.experience_id, p.player_id, False)

    async def tokens_revoked(self, experience_id: str, player_id: str, revoked_at: float) -> None:
        """The hub is the only replica (``EventBus``): the revocation is applied already."""

    async def player_presence(self, experience_id: str, player_id: str, connected: bool) -> None:
        """The hub is its own presence (``EventBus``): nothing to record elsewhere."""

    async def player_online(self, experience_id: str, player_id: str) -> bool:
        return bool(self._clients.get((experience_id, player_id)))

    def connections(self) -> list[Connection]:
        conns = [c for s in self._servers.values() for c in s]
        return conns + [c for s in self._clients.values() for c in s]

    async def to_experience(self, experience_id: str, event: str, data: dict) -> None:
        frame = event_frame(event, data)
        conns = list(self._servers.get(experience_id, ()))
        if not conns:
            self._backlog[experience_id].append(frame)
        for conn in conns:
            conn.push(frame)

    def deliver(self, experience_id: str, player_id: str | None, frame: dict) -> int:
        """Push ``frame`` to this process's sockets of a game server (``player_id`` None) or a
        player, keeping nothing back; returns how many received it."""
        if player_id is None:
            conns = list(self._servers.get(experience_id, ()))
        else:
            conns = list(self._clients.get((experience_id, player_id), ()))
        return sum(conn.push(frame) for conn in conns)

    def players_here(self) -> list[tuple[str, str]]:
        """(experience id, player id) of every player with a socket open here."""
        return [key for key, conns in self._clients.items() if conns]

    def serves(self, experience_id: str) -> bool:
        """Whether a game server socket of the experience is open here."""
        return bool(self._servers.get(experience_id))

    def experiences_served(self) -> list[str]:
        """Experiences with a game server socket open here."""
        return [exp for exp, conns in self._servers.items() if conns]

    async def to_player(self, experience_id: str, player_id: str, event: str, data: dict) -> int:
        """Push to every socket of a player; returns how many received it."""
        frame = event_frame(event, data)
        conns = list(self._clients.get((experience_id, player_id), ()))
        return sum(conn.push(frame) for conn in conns)

    async def to_many(self, conns: list[Connection], event: str, data: dict) -> None:
        frame = event_frame(event, data)
        for conn in conns:
            conn.push(frame)

    def player_connections(self, experience_id: str, player_id: str) -> list[Connection]:
        return list(self._clients.get((experience_id, player_id), ()))
