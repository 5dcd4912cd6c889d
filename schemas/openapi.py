"""The OpenAPI 3.1 document of the HTTP API, generated from the wire contract.

Each RPC method of :data:`schemas.methods.METHODS` is a path of its own,
``POST /v1/rpc/{Name}``, whose request body is the JSON Schema of its parameters
(:func:`schemas.params.json_schema`, the same checks the server applies).  The other
routes are described in :data:`ROUTES`.  Every operation lists the error statuses it may
answer with, each with the codes of :data:`schemas.codes.CODES` that carry that status.
The server serves the document at ``GET /v1/openapi.json``; a test checks that its paths
and the server's routes are the same set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .codes import CODES, codes_for
from .methods import METHODS
from .params import json_schema

__all__ = ["Route", "ROUTES", "openapi_document", "API_VERSION"]

API_VERSION = "1"

_ID = {"type": "string", "maxLength": 128}


@dataclass(frozen=True)
class Route:
    """One HTTP route besides ``/v1/rpc/{Method}``."""

    method: str
    path: str
    summary: str
    #: Who may call it: ``server`` (an experience API key), ``client`` (a player token),
    #: ``any`` (either), or None (no credential).
    auth: str | None
    tag: str
    #: name → description of the ``{name}`` parts of ``path``.
    path_params: dict = field(default_factory=dict)
    #: name → (schema, description) of query parameters.
    query: dict = field(default_factory=dict)
    #: media type → schema of the request body, or None.
    body: dict | None = None
    #: media type of a successful answer → schema (None: not JSON), and its status.
    answer: tuple = ("application/json", {"type": "object"})
    status: int = 200
    #: the error statuses it may answer with (beyond the authentication and rate ones).
    errors: tuple = ()


_PNG = ("image/png", None)
_GLB = ("model/gltf-binary", None)
_HTML = ("text/html", None)
_UPLOAD = {
    "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string",
                                                                      "contentMediaType": "application/octet-stream"}},
                            "required": ["file"]},
    "application/octet-stream": {"type": "string", "contentMediaType": "application/octet-stream"},
}

ROUTES: tuple[Route, ...] = (
    Route("get", "/v1/ws", "The websocket: msgpack frames {id, method, params} → {id, progress}* → {id, result} or "
          "{id, error}; pushed {event, data}. Browsers offer the subprotocols acs and acs.bearer.<credential>.",
          "any", "Transport", status=101, answer=(None, None), errors=(400, 403)),
    Route("post", "/v1/files/{FileId}", "Upload the selfie a PromptSelectImage event asked for (multipart field "
          "'file', or the raw body).", "any", "Files", {"FileId": "FileId from the PromptSelectImage event."},
          body=_UPLOAD, errors=(400, 404, 409, 413, 415, 422)),
    Route("post", "/v1/files", "Upload a selfie straight into a session.", "any", "Files",
          query={"SessionId": (_ID, "An active session.")}, body=_UPLOAD, errors=(400, 404, 409, 413, 415, 422)),
    Route("get", "/v1/previews/{PreviewId}.png", "A preview's PNG.", "any", "Previews",
          {"PreviewId": "Id returned by GenerateAvatar2DPreviewAsync."}, answer=_PNG, errors=(403, 404)),
    Route("get", "/v1/previews/{PreviewId}/thumbnail.png", "A preview's 100×100 thumbnail.", "any", "Previews",
          {"PreviewId": "Id returned by GenerateAvatar2DPreviewAsync."}, answer=_PNG, errors=(403, 404)),
    Route("post", "/v1/previews/batch", "GenerateAvatar2DPreviewBatch as multipart: repeated 'photo' files, "
          "Style, TextPrompt, HighRes.", "server", "Previews",
          body={"multipart/form-data": {"type": "object", "properties": {
              "photo": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                        "maxItems": 50},
              "Style": {"type": "string", "maxLength": 64}, "TextPrompt": {"type": "string", "maxLength": 500},
              "HighRes": {"type": "string", "enum": ["true", "false"]}}}},
          errors=(400, 413, 422)),
    Route("get", "/v1/generations/{GenerationId}.glb", "The generated avatar as first built.", "any", "Avatars",
          {"GenerationId": "Id returned by GenerateAvatarAsync."}, answer=_GLB, errors=(403, 404)),
    Route("get", "/v1/generations/{GenerationId}/current.glb", "The shared edit document as it is now, as a glb.",
          "any", "Avatars", {"GenerationId": "Id returned by GenerateAvatarAsync."}, answer=_GLB,
          errors=(403, 404)),
    Route("get", "/v1/published", "The experience's published bundles.", "server", "Published",
          answer=("application/json", {"type": "object", "properties": {"Bundles": {"type": "array"}}})),
    Route("get", "/v1/published/{BundleId}", "One published bundle.", "any", "Published",
          {"BundleId": "BundleId from PromptCreateAvatarAsync."}, errors=(403, 404)),
    Route("get", "/v1/published/{BundleId}.glb", "A published bundle's glb.", "any", "Published",
          {"BundleId": "BundleId from PromptCreateAvatarAsync."}, answer=_GLB, errors=(403, 404)),
    Route("get", "/v1/published/{BundleId}.png", "A published bundle's preview.", "any", "Published",
          {"BundleId": "BundleId from PromptCreateAvatarAsync."}, answer=_PNG, errors=(403, 404)),
    Route("get", "/v1/sessions", "The experience's active sessions and waiting requests.", "server", "Sessions"),
    Route("get", "/v1/schema", "JSON Schema of every method's parameters.", None, "Reference"),
    Route("get", "/v1/openapi.json", "This document.", None, "Reference"),
    Route("get", "/docs", "This document as a page.", None, "Reference", answer=_HTML),
    Route("get", "/healthz", "Liveness: active sessions, queued requests, capacity.", None, "Operations"),
    Route("get", "/metrics", "Prometheus metrics (Authorization: Bearer ACS_METRICS_TOKEN when that is set).", None,
          "Operations", answer=("text/plain", None)),
    Route("get", "/", "Leads to the creator page.", None, "Creator page", status=302, answer=(None, None)),
    Route("get", "/creator", "Leads to the creator page.", None, "Creator page", status=302, answer=(None, None)),
    Route("get", "/creator/", "The creator page (the player's token travels in the URL fragment).", None,
          "Creator page", answer=_HTML, errors=(503,)),
    Route("get", "/creator/{name}", "The creator page's scripts and styles.", None, "Creator page",
          {"name": "A file of the page."}, answer=("application/octet-stream", None), errors=(404,)),
)

#: Statuses every authenticated operation may answer with.
_AUTH_ERRORS = (401, 429)
_RPC_ERRORS = (400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 500, 503)
_REASONS = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
            408: "Timeout", 409: "Conflict", 413: "Too large", 415: "Unsupported media type",
            422: "Unusable input", 429: "Too many requests", 500: "Server error", 503: "Unavailable"}


def _error_response(status: int) -> dict:
    codes = codes_for(status)
    lines = "\n".join(f"- `{c}`: {CODES[c][1]}" for c in codes)
    return {"description": f"{_REASONS[status]}. Codes:\n{lines}",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"},
                                              "examples": {c: {"value": {"error": {"code": c,
                                                                                   "message": CODES[c][1]}}}
                                                           for c in codes[:3]}}}}


def _responses(ok_status: int, answer: tuple, description: str, errors) -> dict:
    media, schema = answer
    ok: dict = {"description": description}
    if media is not None:
        ok["content"] = {media: {"schema": schema} if schema is not None else {}}
    out = {str(ok_status): ok}
    for status in sorted(set(errors)):
        out[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return out


_ROLES = {"server": "game servers (experience API key)", "client": "game clients (player token)",
          "any": "game servers and game clients"}


def _rpc_operation(name: str, params: dict) -> dict:
    """``params``: the method's parameter schema (its description is the summary)."""
    spec = METHODS[name]
    roles = "server" if spec.roles == {"server"} else "client" if spec.roles == {"client"} else "any"
    return {
        "operationId": name,
        "tags": ["Methods"],
        "summary": params.get("description", name),
        "description": f"Called by {_ROLES[roles]}. Also a websocket request `{{id, method: \"{name}\", params}}` "
                       "on `/v1/ws`, where long calls send progress frames first. Bytes are base64 strings in JSON.",
        "x-roles": sorted(spec.roles),
        "security": [{"bearer": []}],
        "requestBody": {"required": False, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{name}"}}}},
        "responses": _responses(200, ("application/json", {"type": "object"}), "The method's result.",
                                _RPC_ERRORS),
    }


def _route_operation(r: Route) -> dict:
    op: dict = {
        "operationId": (r.method + r.path).replace("/", "_").replace("{", "").replace("}", "").replace(".", "_"),
        "tags": [r.tag], "summary": r.summary,
    }
    if r.auth is not None:
        op["description"] = f"Called by {_ROLES[r.auth]}."
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    parameters = [{"name": n, "in": "path", "required": True, "description": d, "schema": _ID}
                  for n, d in r.path_params.items()]
    parameters += [{"name": n, "in": "query", "required": False, "description": d, "schema": s}
                   for n, (s, d) in r.query.items()]
    if parameters:
        op["parameters"] = parameters
    if r.body is not None:
        op["requestBody"] = {"required": True, "content": {m: {"schema": s} for m, s in r.body.items()}}
    errors = r.errors + (_AUTH_ERRORS if r.auth is not None else ())
    op["responses"] = _responses(r.status, r.answer, "OK", errors)
    return op


def openapi_document() -> dict:
    """The whole OpenAPI 3.1 document (a plain JSON-able dict)."""
    params = {}
    for name, spec in METHODS.items():
        params[name] = json_schema(spec.params)
        params[name].pop("$schema", None)
    paths: dict = {f"/v1/rpc/{name}": {"post": _rpc_operation(name, schema)} for name, schema in params.items()}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method] = _route_operation(r)
    schemas = {"Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "enum": list(CODES)},
            "message": {"type": "string", "description": "Readable by a player or a game developer."}}}}},
        **params}
    statuses = sorted({s for s, _ in CODES.values()})
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "Avatar Creation Server", "version": API_VERSION,
                 "description": "Photo-to-avatar sessions: queued generation sessions, 2D previews, a rigged 3D "
                                "avatar edited in sync by game server and game client, then published. Every "
                                "refusal is `{\"error\": {\"code\", \"message\"}}` with the status of its code."},
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in dict.fromkeys(["Methods", *(r.tag for r in ROUTES)])],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An experience API key (acs_…) or a player token."}},
            "schemas": schemas,
            "responses": {f"E{s}": _error_response(s) for s in statuses},
        },
    }
