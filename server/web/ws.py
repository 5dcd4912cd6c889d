"""``/v1/ws``: msgpack RPC frames, progress frames and pushed events.

The reader loop only parses frames; each request runs in its own task so a
long generation does not hold up edits or answers on the same socket.  A
malformed frame gets an error frame and the socket stays open.

Nothing in the server ever waits on a peer's socket: every frame to a
connection (answers, progress, pushed events, relayed edits) goes into that
connection's bounded send queue, which its own writer task drains.  A peer that
stops reading only fills its own queue; when the queue is full the peer is
disconnected (its client reconnects and catches up with ``SyncDocument``).

Incoming frames are paced per caller (a player, or an experience's game server)
by count and decompressed size, so extra sockets buy no extra budget, and an ``ApplyEdits``
is checked for its op count before it is charged against the edit rate.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from schemas.errors import AcsError, InvalidParams, RequestError
from schemas.frames import (
    BadFrame,
    Request,
    error_frame,
    pack,
    parse_request,
    progress_frame,
    result_frame,
)
from server import logs
from server.config import Config
from server.core.auth import Principal
from server.core.limits import CallerBudgets
from server.services.documents import check_op_count
from server.services.service import Call, Service
from server.web.common import caller_key, check_origin, credential
from server.web.keys import BUDGETS, CONFIG, SERVICE, SOCKETS

log = logging.getLogger("server.ws")

routes = web.RouteTableDef()

#: Requests one socket may have in flight; more are refused, not queued.
MAX_IN_FLIGHT = 64


class WsConnection:
    """One open websocket and its bounded send queue.

    :meth:`push` never waits: it queues the packed frame for the writer task, or,
    when the peer has let ``max_frames`` frames or ``max_bytes`` bytes pile up (or
    all its caller's sockets together ``caller_bytes``), drops the connection.  A
    single frame larger than ``max_bytes`` (a whole document) is still accepted into
    an empty queue.
    """

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, config: Config, transport,
                 budgets: CallerBudgets):
        self.ws = ws
        self.principal = principal
        self.tasks: set[asyncio.Task] = set()
        self.max_frames = config.ws_send_queue_frames
        self.max_bytes = config.ws_send_queue_bytes
        self.caller_bytes = config.caller_send_queue_bytes
        self._budgets = budgets
        self._key = caller_key(principal)
        self.closed = False
        self._transport = transport
        self._out: deque[bytes] = deque()
        self._out_bytes = 0
        self._ready = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop(), name="ws-writer")

    @property
    def queued(self) -> int:
        return len(self._out)

    def push(self, frame: dict) -> bool:
        """Queue one frame; False when the connection is closed (or was just dropped)."""
        if self.closed:
            return False
        data = pack(frame)
        caller_total = self._budgets.queued.get(self._key, 0) + len(data)
        if self._out and (len(self._out) >= self.max_frames or self._out_bytes + len(data) > self.max_bytes
                          or caller_total > self.caller_bytes):
            log.warning("dropping a slow websocket peer (%s %s): %d frames, %d bytes unread",
                        self.principal.role, self.principal.player_id or self.principal.experience_id,
                        len(self._out), self._out_bytes)
            self.abort()
            return False
        self._out.append(data)
        self._queued(len(data))
        self._ready.set()
        return True

    def _queued(self, n: int) -> None:
        self._out_bytes += n
        self._budgets.add_queued(self._key, n)

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake the peer would have to read."""
        self.stop_writer()
        if self._transport is not None:
            self._transport.abort()

    def stop_writer(self) -> None:
        """No more frames go out; what was queued is dropped."""
        self.closed = True
        self._writer.cancel()
        self._out.clear()
        self._queued(-self._out_bytes)

    async def close(self, code: int, message: bytes, timeout: float = 2.0) -> None:
        """Close politely if the peer answers within ``timeout``, else drop it."""
        self.stop_writer()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message), timeout)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            self.abort()

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._ready.wait()
                while self._out:
                    data = self._out.popleft()
                    self._queued(-len(data))
                    await self.ws.send_bytes(data)  # waits on this peer only
                self._ready.clear()
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket went away; the reader loop ends the connection
            self.closed = True
            log.debug("websocket writer stopped", exc_info=True)


def _refuse(svc: Service, conn: WsConnection, request_id, err: AcsError) -> None:
    svc.metrics.refused(err.code, "ws")
    conn.push(error_frame(request_id, err))


async def _serve_request(svc: Service, conn: WsConnection, req: Request) -> None:
    # this task's own context: the socket's request id, then this frame's number
    logs.bind(request_id=f"{logs.context().get('request_id')}#{req.id}", method=req.method[:64])

    async def progress(value: float, stage: str) -> None:
        conn.push(progress_frame(req.id, value, stage))

    try:
        result = await svc.call(Call(conn.principal, conn, progress), req.method, req.params)
    except AcsError as err:
        _refuse(svc, conn, req.id, err)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error in %s", req)
        _refuse(svc, conn, req.id, AcsError("Internal server error."))
    else:
        conn.push(result_frame(req.id, result))


@routes.get("/v1/ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICE]
    config = request.app[CONFIG]
    principal = await svc.authenticate(credential(request))  # 401 JSON before the upgrade
    logs.bind(experience_id=principal.experience_id, player_id=principal.player_id)
    check_origin(request, config)
    budgets: CallerBudgets = request.app[BUDGETS]
    key = caller_key(principal)
    loop = asyncio.get_running_loop()
    # Opening a socket spends a request, and a caller still paying for earlier frames
    # (an oversize one costs a whole frame) gets no fresh budget by reconnecting.
    if budgets.requests.take(key, 1, loop.time()) > 0 or budgets.bytes.delay(key, 0, loop.time()) > 0:
        raise RequestError("Too many requests or too much data sent recently; wait before reconnecting.",
                           code="TooManyRequests", status=429)
    if principal.role == "client" and len(svc.hub.player_connections(
            principal.experience_id, principal.player_id)) >= config.max_sockets_per_player:
        raise RequestError(f"A player may have at most {config.max_sockets_per_player} websockets open.",
                           code="TooManyConnections", status=429)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=config.max_frame_bytes, protocols=("acs",))
    await ws.prepare(request)
    conn = WsConnection(ws, principal, config, request.transport, budgets)
    request.app[SOCKETS].add(conn)
    try:
        await svc.hub.add(conn)
        if svc.revoked(principal):  # revoked while the socket was opening
            await conn.close(WSCloseCode.POLICY_VIOLATION, b"token revoked")
        while not conn.closed:
            try:
                msg = await ws.receive(timeout=config.ws_idle_timeout)
            except asyncio.TimeoutError:
                await conn.close(WSCloseCode.GOING_AWAY, b"idle timeout")
                break
            if msg.type == WSMsgType.BINARY:
                # Pace the caller by frames and decompressed bytes before any decoding:
                # while this reader sleeps, the socket's buffers fill and the sender is
                # held back.
                now = loop.time()
                wait = max(budgets.bytes.delay(key, len(msg.data), now), budgets.frames.delay(key, 1, now))
                if wait > 0:
                    await asyncio.sleep(wait)
                await _on_frame(svc, conn, msg.data, budgets, key)
            elif msg.type == WSMsgType.TEXT:
                _refuse(svc, conn, None, BadFrame("Frames must be binary msgpack."))
            elif msg.type == WSMsgType.ERROR:
                exc = ws.exception()
                if isinstance(exc, WebSocketError) and exc.code == WSCloseCode.MESSAGE_TOO_BIG:
                    # Inflated up to the limit before it was refused: charged as one largest frame.
                    budgets.bytes.delay(key, config.max_frame_bytes, loop.time())
                log.info("websocket error: %s", exc)
                break
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
    finally:
        request.app[SOCKETS].discard(conn)
        await svc.hub.remove(conn)
        svc.documents.unsubscribe_everywhere(conn)
        for task in conn.tasks:
            task.cancel()
        conn.stop_writer()
    return ws


async def _on_frame(svc: Service, conn: WsConnection, data: bytes, budgets: CallerBudgets, key) -> None:
    try:
        req = parse_request(data)
    except BadFrame as err:
        _refuse(svc, conn, err.request_id, err)
        return
    if req.method == "ApplyEdits":
        ops = req.params.get("Ops")
        try:
            check_op_count(ops)  # before the edit rate is charged: a refused batch costs nothing
        except InvalidParams as err:
            _refuse(svc, conn, req.id, err)
            return
        # Back-pressure: a flood of edits is slowed at this socket's reader (by at most the
        # caller's debt), so only its sender waits.
        wait = budgets.edit_ops.delay(key, len(ops), asyncio.get_running_loop().time())
        if wait > 0:
            await asyncio.sleep(wait)
    if len(conn.tasks) >= MAX_IN_FLIGHT:
        _refuse(svc, conn, req.id, RequestError(
            f"At most {MAX_IN_FLIGHT} requests may be in flight on one socket.", code="TooManyRequests",
            status=429))
        return
    task = asyncio.create_task(_serve_request(svc, conn, req))
    conn.tasks.add(task)
    task.add_done_callback(conn.tasks.discard)
