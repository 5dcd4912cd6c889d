"""``/creator/``: the creator page, static files only, as an aiohttp sub-app.

The page (``server/web/creator/``) is plain ES modules, no build step.  The front-end
packages it imports (three.js, msgpack, a PNG decoder, SHA-256) are npm packages pinned in
``server/web/creator/package-lock.json`` and served from that folder's ``node_modules``
under ``/creator/vendor/<package>/``, never from a CDN: ``npm ci --prefix server/web/creator``
installs them (the README's test command does).  Without them the page answers 503 and
says so.

Credentials never travel in a URL: the page reads its token from the URL fragment, sends it
in ``Authorization`` headers and, for the websocket, as the ``acs.bearer.<token>`` subprotocol.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from pathlib import Path

from aiohttp import web

__all__ = ["creator_app", "STATIC_DIR", "VENDOR_PACKAGES"]

STATIC_DIR = Path(__file__).parent / "creator"
VENDOR_DIR = STATIC_DIR / "node_modules"
#: The npm packages the page may load (the lock file's, dependencies of dependencies included).
VENDOR_PACKAGES = ("three", "@msgpack/msgpack", "@noble/hashes", "fast-png", "fflate", "iobuffer")
#: The page's own files.
PAGE_FILES = re.compile(r"^[a-z_]+\.(js|css|html|svg)$")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")

_NOT_INSTALLED = """<!doctype html><meta charset="utf-8"><title>Creator page not installed</title>
<h1>The creator page's front-end packages are not installed</h1>
<p>Run <code>npm ci --prefix server/web/creator</code> in the server's source folder, then reload.</p>
"""


def _security_headers(index_html: str) -> dict[str, str]:
    """A strict policy: scripts from this server only, plus the page's inline import map."""
    maps = re.findall(r'<script type="importmap">(.*?)</script>', index_html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'" for m in maps)
    return {
        "Content-Security-Policy": (f"default-src 'self'; script-src 'self' {hashes}; img-src 'self' blob: data:; "
                                    "connect-src 'self' ws: wss:; style-src 'self'; object-src 'none'; "
                                    "base-uri 'none'; frame-ancestors 'none'"),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


def creator_app() -> web.Application:
    app = web.Application()
    index_html = (STATIC_DIR / "index.html").read_text()
    headers = _security_headers(index_html)
    installed = all((VENDOR_DIR / pkg / "package.json").is_file() for pkg in VENDOR_PACKAGES)

    async def index(_request: web.Request) -> web.Response:
        if not installed:
            return web.Response(text=_NOT_INSTALLED, status=503, content_type="text/html")
        return web.Response(text=index_html, content_type="text/html", headers=headers)

    async def page_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not PAGE_FILES.match(name) or not (STATIC_DIR / name).is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC_DIR / name, headers=headers)

    app.router.add_get("/", index)
    app.router.add_get("/{name}", page_file)
    if installed:
        for pkg in VENDOR_PACKAGES:
            app.router.add_static(f"/vendor/{pkg}/", VENDOR_DIR / pkg, append_version=False)
    return app


def add_pages(app: web.Application) -> None:
    """Mount the page at ``/creator/``; ``/`` and ``/creator`` lead there."""

    async def to_page(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/creator/")

    app.router.add_get("/", to_page)
    app.router.add_get("/creator", to_page)
    app.add_subapp("/creator/", creator_app())
