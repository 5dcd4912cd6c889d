"""Shared fixtures: one warmed process pool, real servers on loopback, real photos."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
import time
from multiprocessing import resource_tracker
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from server.adapters.local.jobs import new_executor
from server.admin import create_experience
from server.config import Config
from server.web.runner import RunningServer


@pytest.fixture(scope="session")
def executor():
    pool = new_executor(2)
    # Start both workers now so the first test does not pay for it.
    list(pool.map(abs, [0, 0]))
    yield pool
    # Joins the workers: no_leftover_processes (torn down after this) checks they are gone.
    pool.shutdown(wait=True, cancel_futures=True)


def _child_processes() -> dict[int, tuple[str, str]]:
    """This process's children: ``{pid: (state, command line)}`` (Linux ``/proc``)."""
    me, found = str(os.getpid()), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # it exited meanwhile
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if ppid == me:
            found[int(entry.name)] = (state, cmd or stat.split("(", 1)[1].rsplit(")", 1)[0])
    return found


def _become_subreaper() -> None:
    """Have processes orphaned by the tests (the workers of a server subprocess that a
    test killed, say) reparented to pytest rather than to init, so the check below sees
    every process the tests started, not only pytest's direct children."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes():
    """A test run leaves no process behind.

    Autouse and session-scoped, so it is set up first and torn down last: after every
    other session fixture (the shared ``executor`` included) has shut down.  Exited
    children (zombies) are reaped; multiprocessing's resource tracker is stopped once
    nothing else is left (it would only exit with pytest); anything still running after
    a grace period fails the session with its command line (and is then killed).
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    _become_subreaper()
    yield
    tracker = resource_tracker._resource_tracker  # multiprocessing's, one per process

    def running() -> dict[int, str]:
        """Children still running, once the exited ones are reaped."""
        kids = _child_processes()
        for pid, (state, _cmd) in kids.items():
            if state == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
        return {pid: cmd for pid, (state, cmd) in kids.items() if state != "Z"}

    deadline = time.monotonic() + 10  # a killed server's workers take up to ~1 s to notice
    while (left := {p: c for p, c in running().items() if p != getattr(tracker, "_pid", None)}) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    if not left and getattr(tracker, "_pid", None) is not None and hasattr(tracker, "_stop"):
        with contextlib.suppress(ChildProcessError):  # already reaped above
            tracker._stop()  # closes its pipe (it exits on EOF) and waits for it
        left = running()
    if left:
        lines = "\n".join(f"  {pid}: {cmd}" for pid, cmd in sorted(left.items()))
        for pid in left:  # reported below; ended so that the run still leaves nothing
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        pytest.fail(f"the tests left {len(left)} process(es) running:\n{lines}", pytrace=False)


def jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    return jpeg(skdata.astronaut())


@pytest.fixture(scope="session")
def coffee_jpeg() -> bytes:
    return jpeg(skdata.coffee())


@contextlib.asynccontextmanager
async def running_server(data_dir: Path, executor, **config):
    cfg = Config(data_dir=Path(data_dir), port=0, **config)
    async with RunningServer(cfg, executor=executor) as srv:
        yield srv


async def new_experience(data_dir: Path, name: str = "game", *, database_url: str | None = None, **settings) -> str:
    _exp_id, key = await create_experience(Config(data_dir=Path(data_dir), database_url=database_url), name,
                                           settings)
    return key


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the whole run (tests/services.py); fails when not installed."""
    from .services import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis():
    """A redis-server of the run's own, without persistence (tests/services.py); fails when not installed."""
    from .services import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request) -> str | None:
    """Run a test on both stores: the embedded SQLite file (None) and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return await request.getfixturevalue("postgres").create_database()


class Http:
    """Tiny JSON-over-HTTP client for the RPC routes."""

    def __init__(self, base_url: str, credential: str | None):
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {credential}"} if credential else {}

    async def rpc(self, method: str, params=None, *, raw: bytes | None = None) -> tuple[int, dict]:
        async with aiohttp.ClientSession(headers=self.headers) as http:
            body = raw if raw is not None else aiohttp.payload.JsonPayload(params or {})
            async with http.post(f"{self.base_url}/v1/rpc/{method}", data=body) as r:
                return r.status, await r.json()

    async def upload(self, path: str, data: bytes, params=None) -> tuple[int, dict]:
        form = aiohttp.FormData()
        form.add_field("file", data, filename="selfie", content_type="application/octet-stream")
        async with aiohttp.ClientSession(headers=self.headers) as http:
            async with http.post(f"{self.base_url}{path}", data=form, params=params) as r:
                return r.status, await r.json()

    async def get(self, path: str) -> tuple[int, bytes]:
        async with aiohttp.ClientSession(headers=self.headers) as http:
            async with http.get(f"{self.base_url}{path}") as r:
                return r.status, await r.read()


async def active_session(gs, player_id: str, timeout: float = 30) -> dict:
    """Request a session for ``player_id`` and wait for its SessionReady info."""
    ready = asyncio.get_running_loop().create_future()
    await gs.RequestAvatarGenerationSessionAsync(player_id, ready.set_result)
    return await asyncio.wait_for(ready, timeout)


async def generate(gs, url: str, token: str, photo: bytes, session_id: str) -> tuple[dict, str]:
    """Upload ``photo`` into the session, make a preview and a 3D generation: ``(preview, generation_id)``."""
    _, up = await Http(url, token).upload("/v1/files", photo, {"SessionId": session_id})
    preview = await gs.GenerateAvatar2DPreviewAsync({"SessionId": session_id, "FileId": up["FileId"]})
    return preview, await gs.GenerateAvatarAsync({"SessionId": session_id, "PreviewId": preview["PreviewId"]})


def closed_and_consistent(pos: np.ndarray, tri: np.ndarray) -> bool:
    """Watertight with consistent winding, checked independently of meshes.validation:
    merging vertices by position, every directed edge appears once and its reverse once."""
    _, key = np.unique(pos, axis=0, return_inverse=True)
    t = key.reshape(-1)[tri]
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    if (e[:, 0] == e[:, 1]).any():
        return False
    fwd = {tuple(x) for x in e.tolist()}
    return len(fwd) == len(e) and all((b, a) in fwd for a, b in fwd)
