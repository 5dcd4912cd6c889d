"""``/v1/ws``: msgpack RPC frames, progress frames and pushed events.

The reader loop only parses frames; each request runs in its own task so a
long generation does not hold up edits or answers on the same socket.  A
malformed frame gets an error frame and the socket stays open.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from schemas.errors import AcsError, RequestError
from schemas.frames import BadFrame, Request, error_frame, pack, parse_request, progress_frame, result_frame

from ..auth import Principal
from ..keys import CONFIG, SERVICE, SOCKETS
from ..limits import TokenBucket
from ..service import Call, Service
from .common import credential

log = logging.getLogger("server.ws")

routes = web.RouteTableDef()

#: Requests one socket may have in flight; more are refused, not queued.
MAX_IN_FLIGHT = 64


class WsConnection:
    def __init__(self, ws: web.WebSocketResponse, principal: Principal, edit_rate: float):
        self.ws = ws
        self.principal = principal
        self._send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        self.edits = TokenBucket(edit_rate, 2 * edit_rate)

    async def send(self, frame: dict) -> None:
        data = pack(frame)
        async with self._send_lock:
            await self.ws.send_bytes(data)


async def _serve_request(svc: Service, conn: WsConnection, req: Request) -> None:
    async def progress(value: float, stage: str) -> None:
        await conn.send(progress_frame(req.id, value, stage))

    try:
        result = await svc.call(Call(conn.principal, conn, progress), req.method, req.params)
        frame = result_frame(req.id, result)
    except AcsError as err:
        frame = error_frame(req.id, err)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error in %s", req)
        frame = error_frame(req.id, AcsError("Internal server error."))
    try:
        await conn.send(frame)
    except Exception:
        log.debug("client went away before the answer to %s", req)


@routes.get("/v1/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    svc = request.app[SERVICE]
    principal = await svc.authenticate(credential(request))  # 401 JSON before the upgrade
    config = request.app[CONFIG]
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=config.max_frame_bytes)
    await ws.prepare(request)
    conn = WsConnection(ws, principal, config.edit_ops_per_second)
    request.app[SOCKETS].add(ws)
    await svc.hub.add(conn)
    try:
        while True:
            try:
                msg = await ws.receive(timeout=config.ws_idle_timeout)
            except asyncio.TimeoutError:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle timeout")
                break
            if msg.type == WSMsgType.BINARY:
                await _on_frame(svc, conn, msg.data)
            elif msg.type == WSMsgType.TEXT:
                await conn.send(error_frame(None, BadFrame("Frames must be binary msgpack.")))
            elif msg.type == WSMsgType.ERROR:
                log.info("websocket error: %s", ws.exception())
                break
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
    finally:
        request.app[SOCKETS].discard(ws)
        await svc.hub.remove(conn)
        svc.documents.unsubscribe_everywhere(conn)
        for task in conn.tasks:
            task.cancel()
    return ws


async def _on_frame(svc: Service, conn: WsConnection, data: bytes) -> None:
    try:
        req = parse_request(data)
    except BadFrame as err:
        await conn.send(error_frame(None, err))
        return
    if req.method == "ApplyEdits":
        # Back-pressure: a flood of edits is slowed at this socket's reader, so the
        # sender's TCP window fills up; other sockets are not affected.
        ops = req.params.get("Ops")
        wait = conn.edits.delay(len(ops) if isinstance(ops, list) else 1, asyncio.get_running_loop().time())
        if wait > 0:
            await asyncio.sleep(wait)
    if len(conn.tasks) >= MAX_IN_FLIGHT:
        await conn.send(error_frame(req.id, RequestError(
            f"At most {MAX_IN_FLIGHT} requests may be in flight on one socket.", code="TooManyRequests",
            status=429)))
        return
    task = asyncio.create_task(_serve_request(svc, conn, req))
    conn.tasks.add(task)
    task.add_done_callback(conn.tasks.discard)
