"""``/v1/ws``: msgpack RPC frames, progress frames and pushed events.

The reader loop only parses frames; each request runs in its own task so a
long generation does not hold up edits or answers on the same socket.  A
malformed frame gets an error frame and the socket stays open.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from schemas.errors import AcsError, RequestError
from schemas.frames import BadFrame, Request, error_frame, pack, parse_request, progress_frame, result_frame

from ..auth import Principal
from ..keys import CONFIG, SERVICE, SOCKETS
from ..service import Call, Service
from .common import credential

log = logging.getLogger("server.ws")

routes = web.RouteTableDef()

#: Requests one socket may have in flight; more are refused, not queued.
MAX_IN_FLIGHT = 64


class WsConnection:
    def __init__(self, ws: web.WebSocketResponse, principal: Principal):
        self.ws = ws
        self.principal = principal
        self._send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()

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
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=request.app[CONFIG].max_frame_bytes)
    await ws.prepare(request)
    conn = WsConnection(ws, principal)
    request.app[SOCKETS].add(ws)
    await svc.hub.add(conn)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await _on_frame(svc, conn, msg.data)
            elif msg.type == WSMsgType.TEXT:
                await conn.send(error_frame(None, BadFrame("Frames must be binary msgpack.")))
            elif msg.type == WSMsgType.ERROR:
                log.info("websocket error: %s", ws.exception())
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
    if len(conn.tasks) >= MAX_IN_FLIGHT:
        await conn.send(error_frame(req.id, RequestError(
            f"At most {MAX_IN_FLIGHT} requests may be in flight on one socket.", code="TooManyRequests",
            status=429)))
        return
    task = asyncio.create_task(_serve_request(svc, conn, req))
    conn.tasks.add(task)
    task.add_done_callback(conn.tasks.discard)
