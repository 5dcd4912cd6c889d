"""What every HTTP handler shares: JSON errors, credentials, the caller."""

from __future__ import annotations

import asyncio
import json
import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from schemas.errors import AcsError, Forbidden, RequestError, Unauthorized
from schemas.frames import jsonable
from server import logs
from server.core.auth import Principal
from server.core.ids import new_id
from server.services.service import Call
from server.web.keys import BUDGETS, REQUEST_ID, SERVICE

log = logging.getLogger("server.http")

#: Codes for HTTP errors raised by aiohttp itself (routing, body size).
_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}


def json_response(data, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(jsonable(data)), status=status, content_type="application/json")


def error_response(err: AcsError) -> web.Response:
    return json_response({"error": err.to_wire()}, status=err.status)


def _refused(request: web.Request, err: AcsError) -> web.Response:
    svc = request.app.get(SERVICE)
    if svc is not None:
        svc.metrics.refused(err.code, "http")
    return error_response(err)


#: A request id a caller may choose (``X-Request-Id``), to follow its request through the logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@web.middleware
async def request_context(request: web.Request, handler):
    """Give the request its id (the caller's ``X-Request-Id`` when well-formed), which every
    log line written while serving it carries and the response returns."""
    sent = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = rid = sent if _REQUEST_ID.fullmatch(sent) else new_id("req")
    logs.fresh(request_id=rid)
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every refusal becomes ``{"error": {code, message}}``; never a stack trace."""
    try:
        return await handler(request)
    except AcsError as err:
        return _refused(request, err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, exc.reason.replace(" ", ""))
        if exc.status == 413 and request.path.startswith("/v1/files"):
            code = "ImageTooLarge"
        return _refused(request, AcsError(exc.reason, code=code, status=exc.status))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _refused(request, AcsError("Internal server error."))


def check_origin(request: web.Request, config) -> None:
    """Browsers send ``Origin`` with a websocket upgrade; refuse other sites' pages.

    A request without ``Origin`` (game servers, SDKs) is not a browser's and passes;
    so does this server's own origin and any listed in ``allowed_origins``.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    allowed = {o.strip().rstrip("/") for o in config.allowed_origins.split(",") if o.strip()}
    own = f"{request.scheme}://{request.host}"
    if "*" in allowed or origin.rstrip("/") in allowed | {own}:
        return
    raise Forbidden(f"Websockets from {origin} are not allowed; the operator can add it to ACS_ALLOWED_ORIGINS.",
                    code="OriginNotAllowed")


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&]*")


class AccessLogger(AbstractAccessLogger):
    """One line per request with the credential in ``?token=`` replaced by ``***``."""

    def log(self, request, response, time: float) -> None:
        path = _TOKEN_IN_QUERY.sub(r"\1***", request.path_qs)
        self.logger.info('%s "%s %s" %s %s %.1fms', request.remote, request.method, path,
                         response.status, response.body_length, time * 1000)


async def plain_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """Name the server without its software versions; return the request's id."""
    response.headers["Server"] = "acs"
    if REQUEST_ID in request:
        response.headers["X-Request-Id"] = request[REQUEST_ID]


#: A browser cannot set headers on a websocket: it offers ``["acs", "acs.bearer.<credential>"]``
#: as subprotocols instead (the server answers ``acs``), so the token stays out of URLs and logs.
BEARER_SUBPROTOCOL = "acs.bearer."


def credential(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    for offered in request.headers.getall("Sec-WebSocket-Protocol", ()):
        for proto in offered.split(","):
            if proto.strip().startswith(BEARER_SUBPROTOCOL):
                return proto.strip()[len(BEARER_SUBPROTOCOL):]
    return request.query.get("token")


def caller_key(principal: Principal) -> tuple:
    """Whose rate budgets a request spends: a player, or an experience's game server."""
    return (principal.experience_id, principal.role, principal.player_id)


#: Longest a refused request is held before its 429 goes out.
MAX_REFUSAL_DELAY = 10.0


async def caller(request: web.Request, cost: float = 1.0) -> Call:
    """The authenticated caller, within its HTTP request rate.

    ``cost``: requests' worth this one spends (an upload, more than a call).  Past the
    rate the request spends nothing and is refused with 429, but only once the budget
    would have allowed it, and refusals queue behind each other at the same rate (at
    most :data:`MAX_REFUSAL_DELAY`): a flood of requests, however concurrent, gets its
    refusals no faster than it would have been served.
    """
    principal: Principal = await request.app[SERVICE].authenticate(credential(request))
    logs.bind(experience_id=principal.experience_id, player_id=principal.player_id)
    budgets, key, now = request.app[BUDGETS], caller_key(principal), asyncio.get_running_loop().time()
    wait = budgets.requests.take(key, cost, now)
    if wait > 0:
        wait = max(wait, budgets.refusals.delay(key, cost, now))
        await asyncio.sleep(min(wait, MAX_REFUSAL_DELAY))
        raise RequestError("Too many requests; slow down.", code="TooManyRequests", status=429)
    return Call(principal)


def require(call: Call, role: str) -> None:
    if call.principal.role != role:
        raise Unauthorized("This route needs an experience API key." if role == "server"
                           else "This route needs a player token.")
