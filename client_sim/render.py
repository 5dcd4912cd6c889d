"""Avatar thumbnails and three.js load checks, rendered by a real glTF client.

The avatar glb is loaded by three.js' ``GLTFLoader`` in the system's headless
chromium (WebGL through SwiftShader, no GPU needed), driven by npm
``playwright-core``.  The page and node driver live in ``tests/web/``
(``viewer.html``, ``viewer.js``; npm packages pinned in its ``package-lock.json``);
``tests/web/install.sh`` installs them and Debian's ``chromium``.

* :func:`view_glb` loads a glb and returns what three.js sees (skinned meshes,
  bones, morph target names, triangles, bounding box) plus any rendered shots;
* :func:`render_portrait` renders one PNG (full body or head, any angle);
* :func:`render_turntable` renders N PNGs turned evenly about +Y.

The page and the glb are served from a loopback HTTP server on a free port that
lives only for the call.  Each call starts a fresh browser (≈ 0.2 s launch,
≈ 0.6 s load and first render for a 600 KB avatar).

Set ``ACS_WEB_DIR`` to use a ``tests/web``-like folder elsewhere (the default is
the source checkout's ``tests/web``), ``ACS_CHROMIUM`` for another browser binary.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["ToolingMissing", "web_dir", "find_tooling", "view_glb", "render_portrait", "render_turntable"]

INSTALL_HINT = "run `bash tests/web/install.sh` from the repository root (npm packages + Debian chromium)"


class ToolingMissing(RuntimeError):
    """node, the npm packages of tests/web or chromium are not installed."""


def web_dir() -> Path:
    """The folder holding viewer.html, viewer.js, validate.js and node_modules/."""
    env = os.environ.get("ACS_WEB_DIR")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[1] / "tests" / "web"


def find_tooling() -> dict[str, str]:
    """Paths of node, chromium and the web folder; raises :class:`ToolingMissing`
    naming what is missing and how to install it."""
    wd = web_dir()
    node = shutil.which("node")
    chromium = os.environ.get("ACS_CHROMIUM") or shutil.which("chromium")
    missing = []
    if node is None:
        missing.append("node (Debian: apt-get install -y nodejs npm)")
    if chromium is None:
        missing.append("chromium (`command -v chromium` fails)")
    for pkg in ("three", "playwright-core", "gltf-validator"):
        if not (wd / "node_modules" / pkg / "package.json").is_file():
            missing.append(f"npm package {pkg} in {wd / 'node_modules'}")
    if missing:
        raise ToolingMissing("missing: " + "; ".join(missing) + f" -- {INSTALL_HINT}")
    return {"node": node, "chromium": chromium, "web_dir": str(wd)}  # type: ignore[dict-item]


# --------------------------------------------------------------------------- loopback server


def _handler(root: Path, files: dict[str, bytes]):
    three = (root / "node_modules" / "three").resolve()
    static = {"/viewer.html": root / "viewer.html"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            body: bytes | None = None
            ctype = "application/octet-stream"
            if path in files:
                body = files[path]
                ctype = "model/gltf-binary" if path.endswith(".glb") else ctype
            elif path in static:
                body = static[path].read_bytes()
                ctype = "text/html; charset=utf-8"
            elif path.startswith("/three/"):
                target = (three / path[len("/three/"):]).resolve()
                if target.is_relative_to(three) and target.is_file():
                    body = target.read_bytes()
                    ctype = "text/javascript" if target.suffix == ".js" else (
                        mimetypes.guess_type(target.name)[0] or ctype)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def _serve(root: Path, files: dict[str, bytes]):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, files))
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)


# --------------------------------------------------------------------------- API


def view_glb(glb: bytes, shots: list[dict] | tuple = (), *, timeout: float = 60.0) -> dict:
    """Load ``glb`` in three.js (headless chromium) and render ``shots``.

    shots: ``[{"angle": degrees about +Y, "view": "body" | "head", "size": px}]``.
    Returns ``{"report": {...}, "pngs": [bytes per shot], "console": [...],
    "timings_ms": {"launch", "load", "render"}}``; the report has ``skinnedMeshes``,
    ``skinnedMeshNames``, ``bones`` (distinct bones of all skeletons), ``boneNames``,
    ``skeletonBones``, ``morphTargets`` (sorted names), ``meshes``, ``triangles``,
    ``vertices``, ``bboxMeters``, ``threeRevision``, ``glRenderer``.
    Raises :class:`ToolingMissing`, or RuntimeError when the page fails to load the glb
    or the browser times out.
    """
    tools = find_tooling()
    root = Path(tools["web_dir"])
    with tempfile.TemporaryDirectory(prefix="acs-render-") as tmp, _serve(root, {"/model.glb": bytes(glb)}) as base:
        spec = {
            "url": f"{base}/viewer.html?glb=/model.glb",
            "chromium": tools["chromium"],
            "timeoutMs": int(timeout * 1000 * 0.8),
            "shots": [{"angle": float(s.get("angle", 0.0)), "view": str(s.get("view", "body")),
                       "size": int(s.get("size", 512)), "out": str(Path(tmp) / f"shot{i}.png")}
                      for i, s in enumerate(shots)],
        }
        for s in spec["shots"]:
            if not 16 <= s["size"] <= 2048 or s["view"] not in ("body", "head"):
                raise ValueError(f"bad shot {s}")
        try:
            proc = subprocess.run([tools["node"], str(root / "viewer.js"), json.dumps(spec)], capture_output=True,
                                  timeout=timeout, cwd=root, text=True,
                                  env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the headless browser did not finish within {timeout} s") from None
        try:
            out = json.loads(proc.stdout)
        except ValueError:
            raise RuntimeError(f"viewer.js failed (rc {proc.returncode}): {proc.stderr.strip()[-2000:]}") from None
        report = out.get("report") or {}
        if proc.returncode != 0 or "error" in report or out.get("error"):
            raise RuntimeError(f"three.js could not load/render the glb: {report.get('error') or out.get('error')}"
                               f"\nconsole: {out.get('console')}")
        pngs = [Path(p).read_bytes() for p in out["shots"]]
    return {"report": report, "pngs": pngs, "console": out.get("console", []), "timings_ms": out.get("timingsMs", {})}


def render_portrait(glb: bytes, size: int = 512, *, view: str = "body", angle: float = 0.0,
                    timeout: float = 60.0) -> bytes:
    """One square PNG of the avatar, ``size`` px: ``view="body"`` frames the whole
    avatar, ``"head"`` the head (headshot thumbnail); ``angle`` turns it about +Y
    (0 = facing the camera).  Light grey opaque background."""
    return view_glb(glb, [{"angle": angle, "view": view, "size": size}], timeout=timeout)["pngs"][0]


def render_turntable(glb: bytes, n: int = 8, size: int = 256, *, view: str = "body",
                     timeout: float = 60.0) -> list[bytes]:
    """``n`` square PNGs at angles 0, 360/n, ... degrees about +Y, one browser load."""
    if not 1 <= n <= 72:
        raise ValueError("n must be 1..72")
    return view_glb(glb, [{"angle": 360.0 * i / n, "view": view, "size": size} for i in range(n)],
                    timeout=timeout)["pngs"]
