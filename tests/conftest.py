"""Shared fixtures: one warmed process pool, real servers on loopback, real photos."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from server.admin import create_experience
from server.config import Config
from server.jobs import new_executor
from server.runner import RunningServer


@pytest.fixture(scope="session")
def executor():
    pool = new_executor(2)
    # Start both workers now so the first test does not pay for it.
    list(pool.map(abs, [0, 0]))
    yield pool
    pool.shutdown(cancel_futures=True)


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


async def new_experience(data_dir: Path, name: str = "game", **settings) -> str:
    _exp_id, key = await create_experience(Config(data_dir=Path(data_dir)), name, settings)
    return key


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
