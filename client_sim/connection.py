"""One websocket to the server: RPC calls with progress, and pushed events.

Uses the ``websockets`` library, so client and server are independent
websocket implementations.  Frames are msgpack (``schemas.frames``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
from collections import defaultdict
from typing import Any, Callable

import websockets

from schemas.errors import AcsError
from schemas.frames import pack, unpack

__all__ = ["RemoteError", "Connection"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict], Any]
EventHandler = Callable[[dict], Any]


class RemoteError(AcsError):
    """An error frame from the server; ``code`` and ``message`` as sent."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


def _ws_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]
    return base + "/v1/ws"


class Connection:
    """Args:
        base_url: ``http://host:port`` of the server.
        credential: an experience API key or a player token.
    """

    def __init__(self, base_url: str, credential: str, *, max_size: int = 16 * 1024 * 1024):
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self._max_size = max_size
        self._ws = None
        self._ids = itertools.count(1)
        self._calls: dict[int, tuple[asyncio.Future, ProgressCallback | None]] = {}
        self._handlers: dict[str, list[EventHandler]] = defaultdict(list)
        self._reader: asyncio.Task | None = None
        self._handler_tasks: set[asyncio.Task] = set()
        #: Error frames that answered no request (malformed frames).
        self.orphan_errors: asyncio.Queue[dict] = asyncio.Queue()

    async def connect(self) -> "Connection":
        self._ws = await websockets.connect(
            _ws_url(self.base_url),
            additional_headers={"Authorization": f"Bearer {self.credential}"},
            max_size=self._max_size,
        )
        self._reader = asyncio.create_task(self._read_loop())
        return self

    async def close(self) -> None:
        await self._close_socket()
        for task in list(self._handler_tasks):
            task.cancel()

    async def _close_socket(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def drop(self) -> None:
        """Lose the connection abruptly, as a network failure would (for tests and drills)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def reconnect(self, base_url: str | None = None) -> "Connection":
        """A fresh socket with the same credential; event handlers stay registered.

        ``base_url``: connect there instead (another replica of a scaled-out server)."""
        await self._close_socket()
        if base_url is not None:
            self.base_url = base_url.rstrip("/")
        return await self.connect()

    async def __aenter__(self) -> "Connection":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def on(self, event: str, handler: EventHandler) -> None:
        """Call ``handler(data)`` (sync or async) for each pushed ``event``."""
        self._handlers[event].append(handler)

    def off(self, event: str, handler: EventHandler) -> None:
        """Stop calling ``handler`` for ``event``."""
        if handler in self._handlers.get(event, ()):
            self._handlers[event].remove(handler)

    async def call(self, method: str, params: dict | None = None,
                   on_progress: ProgressCallback | None = None) -> Any:
        fid = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._calls[fid] = (future, on_progress)
        try:
            try:
                await self._ws.send(pack({"id": fid, "method": method, "params": params or {}}))
            except websockets.ConnectionClosed as exc:
                raise ConnectionError(f"connection to the server closed ({exc})") from exc
            return await future
        finally:
            self._calls.pop(fid, None)

    async def send_raw(self, data: bytes | str) -> None:
        """Send a frame as is (for tests of malformed input)."""
        await self._ws.send(data)

    async def _read_loop(self) -> None:
        try:
            async for data in self._ws:
                frame = unpack(data)
                if "event" in frame:
                    self._dispatch(frame["event"], frame.get("data") or {})
                    continue
                entry = self._calls.get(frame.get("id"))
                if entry is None:
                    if "error" in frame:
                        self.orphan_errors.put_nowait(frame["error"])
                    continue
                future, on_progress = entry
                if "progress" in frame:
                    if on_progress is not None:
                        on_progress(frame["progress"])
                elif "error" in frame:
                    err = frame["error"]
                    if not future.done():
                        future.set_exception(RemoteError(err.get("code"), err.get("message")))
                elif not future.done():
                    future.set_result(frame.get("result"))
        except websockets.ConnectionClosed:
            pass
        finally:
            for future, _ in self._calls.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection to the server closed"))

    def _dispatch(self, event: str, data: dict) -> None:
        for handler in self._handlers.get(event, ()):
            result = handler(data)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event handler failed", exc_info=task.exception())
