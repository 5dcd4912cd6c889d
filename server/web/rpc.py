"""``POST /v1/rpc/{Method}``: every method as JSON over HTTP (no progress frames)."""

from __future__ import annotations

import json

from aiohttp import web

from schemas import export_json_schema
from schemas.errors import InvalidParams
from schemas.frames import bytes_from_json
from server import logs
from server.web.common import caller, json_response, require
from server.web.keys import SERVICE

routes = web.RouteTableDef()


@routes.post("/v1/rpc/{method}")
async def rpc(request: web.Request) -> web.Response:
    logs.bind(method=request.match_info["method"][:64])
    call = await caller(request)
    body = await request.read()
    try:
        params = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, absurd numbers, absurd nesting
        raise InvalidParams("The request body must be a JSON object of parameters.") from None
    result = await request.app[SERVICE].call(call, request.match_info["method"], bytes_from_json(params))
    return json_response(result)


@routes.get("/v1/sessions")
async def sessions_overview(request: web.Request) -> web.Response:
    """The experience's queued requests and active sessions (experience key)."""
    call = await caller(request)
    require(call, "server")
    return json_response(await request.app[SERVICE].sessions.overview(call.principal.experience_id))


@routes.get("/v1/schema")
async def schema(request: web.Request) -> web.Response:
    return json_response(export_json_schema())


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    core = svc.sessions.core
    return json_response({"ok": True, "activeSessions": len(core.sessions), "queued": len(core.queued()),
                          "capacity": core.capacity})
