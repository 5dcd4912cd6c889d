"""What an operator's tools read: ``GET /metrics`` (Prometheus), ``GET /v1/openapi.json`` and
the API reference page ``GET /docs``."""

from __future__ import annotations

import functools
import hmac
import html

from aiohttp import web

from schemas.codes import CODES
from schemas.errors import Unauthorized
from schemas.openapi import openapi_document
from server.metrics import CONTENT_TYPE_LATEST
from server.web.common import json_response
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


@routes.get("/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(_document())


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_docs_page(), content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


@functools.cache
def _document() -> dict:
    return openapi_document()


@functools.cache
def _docs_page() -> str:
    """The OpenAPI document as one static page: operations by tag, parameters, error codes."""
    doc, e = _document(), html.escape
    out = [f"<!doctype html><html lang=en><meta charset=utf-8><title>{e(doc['info']['title'])} API</title>",
           "<style>body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
           "color:#1d2430}code{background:#eef1f5;padding:0 .25em;border-radius:3px}h2{margin-top:2.2rem;"
           "border-bottom:1px solid #ccd}h3{font-size:1rem;margin:1.4rem 0 .3rem}.m{display:inline-block;"
           "min-width:3.6em;font:bold 12px monospace;color:#fff;background:#3a6ea5;padding:2px 5px;"
           "border-radius:3px;margin-right:.5em}.post{background:#3b8a4a}table{border-collapse:collapse;"
           "margin:.3rem 0}td,th{border:1px solid #dde;padding:3px 7px;text-align:left;vertical-align:top}"
           "</style>",
           f"<h1>{e(doc['info']['title'])} API</h1><p>{e(doc['info']['description'])}</p>",
           "<p>Machine-readable: <a href=/v1/openapi.json><code>/v1/openapi.json</code></a> (OpenAPI 3.1). "
           "Authentication: <code>Authorization: Bearer &lt;API key or player token&gt;</code>.</p>"]
    schemas = doc["components"]["schemas"]
    for tag in [t["name"] for t in doc["tags"]]:
        out.append(f"<h2>{e(tag)}</h2>")
        for path, ops in doc["paths"].items():
            for verb, op in ops.items():
                if tag not in op["tags"]:
                    continue
                out.append(f"<h3 id={e(op['operationId'])}><span class='m {verb}'>{verb.upper()}</span>"
                           f"<code>{e(path)}</code></h3><p>{e(op['summary'])} {e(op.get('description', ''))}</p>")
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                params = schemas.get(body.get("$ref", "").rsplit("/", 1)[-1], {})
                required = set(params.get("required", ()))
                rows = [(n, p.get("type", ""), n in required, p.get("description", ""))
                        for n, p in params.get("properties", {}).items()]
                rows += [(q["name"], q["schema"].get("type", ""), q["required"], q.get("description", ""))
                         for q in op.get("parameters", ())]
                if rows:
                    out.append("<table><tr><th>Parameter<th>Type<th>Required<th>Meaning")
                    out += [f"<tr><td><code>{e(n)}</code><td>{e(t)}<td>{'yes' if r else ''}<td>{e(d)}"
                            for n, t, r, d in rows]
                    out.append("</table>")
                errors = [s for s in op["responses"] if s.startswith(("4", "5"))]
                if errors:
                    out.append("<p>Errors: " + ", ".join(f"<a href=#e{s}>{s}</a>" for s in errors) + "</p>")
    out.append("<h2>Error codes</h2><p>Every refusal is <code>{\"error\": {\"code\", \"message\"}}</code>.</p>"
               "<table><tr><th>Status<th>Code<th>Meaning")
    for code, (status, meaning) in CODES.items():
        out.append(f"<tr id=e{status}><td>{status}<td><code>{e(code)}</code><td>{e(meaning)}")
    out.append("</table>")
    return "\n".join(out)
