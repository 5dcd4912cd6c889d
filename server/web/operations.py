"""What an operator's tools read: ``GET /metrics`` (Prometheus), ``GET /v1/openapi.json`` and
the API reference page ``GET /docs``."""

from __future__ import annotations

import hmac

from aiohttp import web

from schemas.errors import Unauthorized
from server.metrics import CONTENT_TYPE_LATEST
from server.web.keys import CONFIG, SERVICE

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    token = request.app[CONFIG].metrics_token
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("This server's metrics need 'Authorization: Bearer <ACS_METRICS_TOKEN>'.")
    body = await request.app[SERVICE].scrape()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
