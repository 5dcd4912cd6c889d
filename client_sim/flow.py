"""One simulated player's whole photo-to-avatar flow, timed step by step.

The simulated game server and game client are two independent connections;
everything goes through the network API exactly as a game would use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .sdk import GameClient, GameServer

__all__ = ["FlowResult", "run_player_flow", "default_photo"]


def default_photo() -> bytes:
    """The bundled public-domain photo (NASA portrait of Eileen Collins, via scikit-image)."""
    return resources.files("client_sim").joinpath("data/astronaut.jpg").read_bytes()


@dataclass
class FlowResult:
    player_id: str
    timings: dict[str, float] = field(default_factory=dict)
    wait_time: float = 0.0
    session: dict = field(default_factory=dict)
    preview: dict = field(default_factory=dict)
    preview_png: bytes = b""
    generation_id: str = ""
    description: dict = field(default_factory=dict)
    publish: dict = field(default_factory=dict)
    glb: bytes = b""
    hashes: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _step(timings: dict[str, float], name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - t0


async def run_player_flow(base_url: str, api_key: str, player_id: str, *, photo: bytes | None = None,
                          text_prompt: str | None = None, session_timeout: float = 300.0,
                          end_with: str = "Exit", client_url: str | None = None) -> FlowResult:
    """Drive request → queue → upload → preview → generate → edit on both sides → publish.

    ``client_url``: where the game client connects (default ``base_url``), e.g. another
    replica of a scaled-out server than the game server's."""
    photo = photo if photo is not None else default_photo()
    result = FlowResult(player_id)
    def step(name: str):
        return _step(result.timings, name)

    async with GameServer(base_url, api_key) as server:
        token = await server.CreatePlayerToken(player_id)

        async def choose_photo(_prompt: dict) -> bytes:
            return photo

        async def confirm(_prompt: dict) -> bool:
            return True

        async with GameClient(client_url or base_url, token, choose_photo=choose_photo,
                              confirm_publish=confirm) as client:
            ready: asyncio.Future = asyncio.get_running_loop().create_future()
            with step("queue"):
                _conn, result.wait_time = await server.RequestAvatarGenerationSessionAsync(
                    player_id, ready.set_result)
                result.session = await asyncio.wait_for(ready, session_timeout)
            session_id = result.session["SessionId"]

            with step("upload"):
                file_id = await server.PromptSelectAvatarGenerationImageAsync(session_id)
            with step("preview"):
                params = {"SessionId": session_id, "FileId": file_id}
                if text_prompt:
                    params["TextPrompt"] = text_prompt
                result.preview = await server.GenerateAvatar2DPreviewAsync(params)
            with step("load_preview"):
                image = await client.LoadAvatar2DPreviewAsync(result.preview["PreviewId"])
                result.preview_png = image.to_png()
            with step("generate"):
                result.generation_id = await server.GenerateAvatarAsync(
                    {"SessionId": session_id, "PreviewId": result.preview["PreviewId"]})
            with step("load_avatar"):
                server_copy, client_copy = await asyncio.gather(
                    server.LoadGeneratedAvatarAsync(result.generation_id),
                    client.LoadGeneratedAvatarAsync(result.generation_id))
            result.description = server_copy.description

            with step("edit_sync"):
                await _edit_on_both_sides(server_copy, client_copy)
            result.hashes = {"server_copy": server_copy.content_hash(), "client_copy": client_copy.content_hash()}

            with step("publish"):
                result.publish = await server.PromptCreateAvatarAsync(None, player_id, server_copy)
            if result.publish.get("Result") == "Success":
                with step("download"):
                    result.glb = await _download(base_url, api_key, f"/v1/published/{result.publish['BundleId']}.glb")
            status = await server.conn.call("GetSessionRequest", {"RequestId": result.session["RequestId"]})
            if status["State"] == "Active":
                await server.EndSession(session_id, end_with)
    result.timings["total"] = sum(result.timings.values())
    return result


async def _edit_on_both_sides(server_copy, client_copy) -> None:
    """The game server nudges a head vertex; the game client paints a patch on the head texture."""
    head = server_copy.avatar.parts["Head"]
    vid = head.GetVertices()[0]
    x, y, z = head.GetPosition(vid)
    v1 = await server_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                  "Position": [x, y + 0.01, z]}])
    patch = np.zeros((8, 8, 4), np.uint8)
    patch[..., 0], patch[..., 3] = 255, 255
    v2 = await client_copy.edit([{"op": "WritePixelsBuffer", "Image": "Head", "Position": [0, 0],
                                  "Size": [8, 8], "Buffer": patch.tobytes()}])
    await asyncio.gather(server_copy.wait_version(max(v1, v2)), client_copy.wait_version(max(v1, v2)))


async def _download(base_url: str, credential: str, path: str) -> bytes:
    import aiohttp

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {credential}"}) as http:
        async with http.get(base_url.rstrip("/") + path) as r:
            r.raise_for_status()
            return await r.read()
