"""The ports: what the services need from the outside world, as Protocols.

Services (``server/services``) are written against these and never against a
concrete store, bus or pool; the composition root (``server/web/app.py``,
``server/worker.py``, ``server/cli.py``) picks the adapters:

==============  =================================  ====================================
port            embedded default                   scaled out
==============  =================================  ====================================
``Store``       SQLAlchemy on SQLite               SQLAlchemy on PostgreSQL (asyncpg)
``BlobStore``   a folder                           the same folder on a shared volume
``JobQueue``    a local process pool               a job engine and ``acs worker``
``EventBus``    the hub of this process's sockets   Redis pub/sub to every replica's hub
``PromptRelay`` none (prompts wait in this process)    Redis: open prompts and answers
``EditFeed``    none (one process holds each document)  Redis Streams, one per document
``Purchases``   HTTP to ``PurchaseCallbackUrl``       the same
``Clock``       ``time.time``                      ``time.time``
==============  =================================  ====================================

The store is one adapter for both databases: the tables are :mod:`server.db`'s
SQLAlchemy models, and the engine behind the sessionmaker is chosen by the
database URL (``server.db.open_engine``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker

__all__ = ["BlobStore", "Clock", "EventBus", "JobQueue", "PromptInfo", "PromptRelay", "Purchases", "Store", "EditFeed"]

#: Seconds since the epoch; tests pass a fake one.
Clock = Callable[[], float]

#: Transactions over :mod:`server.db`'s tables: ``async with store() as db`` to read,
#: ``async with store.begin() as db`` to write.
Store = async_sessionmaker


class BlobStore(Protocol):
    """Content-addressed bytes: a blob's name is the SHA-256 of its content.

    A write is atomic (a reader never sees half a blob under a valid name), and
    writing the same content twice is a no-op.
    """

    async def put(self, data: bytes) -> str:
        """Store ``data``; returns its name."""
        ...

    async def get(self, sha: str) -> bytes:
        """The blob's bytes; ``NotFound`` when there is none."""
        ...

    def size(self, sha: str) -> int:
        """Bytes of a stored blob (0 when it is gone)."""
        ...

    def delete_sync(self, sha: str) -> None:
        """Remove a blob (no error when it is already gone)."""
        ...


class JobQueue(Protocol):
    """Runs the generation jobs of :data:`server.jobs.JOBS` away from the event loop."""

    async def run(self, job: str, *args: Any, owner: str = "server") -> Any:
        """Run job ``job`` with ``args`` when it is ``owner``'s turn, and return its result.

        Owners (a session, an experience's batch, a publish) share the workers
        fairly.  A job's typed refusal is raised as that ``AcsError``; a job that
        fails otherwise raises ``GenerationFailed``.
        """
        ...

    async def warm(self) -> None:
        """Get the workers ready (models loaded) before the first request."""
        ...

    async def health(self) -> dict:
        """``workers`` alive, ``expected`` (configured here; 0 when workers run elsewhere),
        jobs ``waiting`` and ``running``."""
        ...

    def shutdown(self) -> None:
        ...


class Purchases(Protocol):
    """An experience's purchase service, asked before a bundle is published."""

    async def confirm(self, url: str, payload: dict) -> str | None:
        """None when the purchase at ``url`` is approved; otherwise why not, for the player."""
        ...


class EventBus(Protocol):
    """Pushes events to sockets, wherever they are connected.

    An event for an experience with no game server connected anywhere is kept (bounded)
    and delivered when one connects, so a ``SessionReady`` is not lost to a game server
    that is reconnecting.
    """

    async def to_experience(self, experience_id: str, event: str, data: dict) -> None:
        """To the experience's game server sockets."""
        ...

    async def to_player(self, experience_id: str, player_id: str, event: str, data: dict) -> object:
        """To the player's game client sockets (nothing is kept for a player who has none)."""
        ...

    async def tokens_revoked(self, experience_id: str, player_id: str, revoked_at: float) -> None:
        """Tell the other replicas that the player's tokens issued until ``revoked_at`` are refused."""
        ...

    async def player_presence(self, experience_id: str, player_id: str, connected: bool) -> None:
        """This process's first socket of the player opened, or its last one closed."""
        ...

    async def player_online(self, experience_id: str, player_id: str) -> bool:
        """Whether the player has a game client socket open anywhere."""
        ...


@dataclass(eq=False)
class PromptInfo:
    """An open question to a player's client (a selfie, or the publish confirmation)."""

    prompt_id: str
    experience_id: str
    player_id: str
    session_id: str | None
    #: "selfie" or "publish": an answer to one kind never resolves the other.
    kind: str


class PromptRelay(Protocol):
    """Open prompts as every replica sees them: a player's answer may reach another replica
    than the one whose call waits for it."""

    async def claim_prompt(self, info: PromptInfo, ttl: float) -> bool:
        """List the prompt; False when its session already has one open."""

    async def prompt_info(self, prompt_id: str) -> PromptInfo | None: ...

    async def answer_prompt(self, prompt_id: str, outcome: list) -> bool:
        """Hand an answer to the replica that waits; False when it was answered or closed."""

    async def forget_prompt(self, info: PromptInfo) -> None: ...

    async def session_ended_everywhere(self, session_id: str, reason: str) -> None: ...


class EditFeed(Protocol):
    """Accepted edit batches, announced to every replica holding the document.

    The database's log is authoritative; the feed only tells the others to look.
    """

    #: Called with (generation id, version, batch id, origin role, ops) for each batch read.
    on_entry: Callable[..., Any] | None

    async def publish(self, generation_id: str, version: int, batch_id: str, origin: str, ops: list) -> None:
        """Announce a committed batch."""
        ...

    async def follow(self, generation_id: str) -> None:
        """Read this document's batches from now on (call before loading it)."""
        ...

    def unfollow(self, generation_id: str) -> None:
        ...
