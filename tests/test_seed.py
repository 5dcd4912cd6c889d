"""Seeded results: the same photo, prompt, style and Seed give the same preview PNG and the
same avatar glb, byte for byte, in any session and after a server restart; another Seed
gives another preview."""

from __future__ import annotations

import hashlib

from client_sim.sdk import GameServer
from generation.save import read_metadata

from .conftest import Http, active_session, new_experience, running_server
from .services import free_port
from .test_sigkill_restart import start_server

PROMPT = "red shirt, blue jeans"
STYLE = "anime_character"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _preview(gs, http: Http, token: str, sid: str, photo: bytes, seed: int) -> tuple[dict, bytes]:
    _, up = await Http(http.base_url, token).upload("/v1/files", photo, {"SessionId": sid})
    preview = await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": up["FileId"], "TextPrompt": PROMPT,
                                                     "Style": STYLE, "Seed": seed})
    status, png = await http.get(f"/v1/previews/{preview['PreviewId']}.png")
    assert status == 200
    return preview, png


async def _avatar(gs, http: Http, sid: str, preview_id: str, seed: int | None) -> tuple[bytes, str]:
    params = {"SessionId": sid, "PreviewId": preview_id}
    if seed is not None:
        params["Seed"] = seed
    gen_id = await gs.GenerateAvatarAsync(params)
    status, glb = await http.get(f"/v1/generations/{gen_id}.glb")
    assert status == 200
    bundle = await gs.conn.call("LoadGeneratedAvatarAsync", {"GenerationId": gen_id})
    return glb, bundle["ContentHash"]


async def test_same_seed_same_bytes_across_sessions_and_restart(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path, Allowed2DGenerations=3)
    async with running_server(tmp_path, executor) as srv:
        http = Http(srv.url, key)
        async with GameServer(srv.url, key) as gs:
            sid_a = (await active_session(gs, "alice"))["SessionId"]
            token_a = await gs.CreatePlayerToken("alice")
            pre_a, png_a = await _preview(gs, http, token_a, sid_a, astronaut_jpeg, 1234)
            assert pre_a["seed"] == 1234
            meta = read_metadata(png_a)
            assert meta["seed"] == "1234" and "session" not in meta and meta["style"] == STYLE
            # Without its own Seed the build takes the preview's.
            glb_a, hash_a = await _avatar(gs, http, sid_a, pre_a["PreviewId"], None)

            sid_b = (await active_session(gs, "bob"))["SessionId"]
            token_b = await gs.CreatePlayerToken("bob")
            pre_b, png_b = await _preview(gs, http, token_b, sid_b, astronaut_jpeg, 1234)
            assert sha(png_b) == sha(png_a)
            _, png_other = await _preview(gs, http, token_b, sid_b, astronaut_jpeg, 99)
            assert sha(png_other) != sha(png_a)

            # Out-of-range or non-integer seeds are refused before anything is charged.
            for bad in (-1, 2**31, True, 1.5):
                status, body = await http.rpc("GenerateAvatar2DPreviewAsync", {
                    "SessionId": sid_b, "FileId": pre_b["PreviewId"], "Seed": bad})
                assert status == 400 and body["error"]["code"] == "InvalidParams", (bad, body)
            status, body = await http.rpc("GenerateAvatarAsync", {"SessionId": sid_b,
                                                                  "PreviewId": pre_b["PreviewId"], "Seed": -5})
            assert status == 400 and body["error"]["code"] == "InvalidParams"

    # A new server process on the same data directory (its own generation processes, its own
    # hash seed), a third session.
    port = free_port()
    proc = await start_server(tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}"
        http = Http(url, key)
        async with GameServer(url, key) as gs:
            sid_c = (await active_session(gs, "carol"))["SessionId"]
            token_c = await gs.CreatePlayerToken("carol")
            pre_c, png_c = await _preview(gs, http, token_c, sid_c, astronaut_jpeg, 1234)
            assert sha(png_c) == sha(png_a)
            glb_c, hash_c = await _avatar(gs, http, sid_c, pre_c["PreviewId"], 1234)
            assert sha(glb_c) == sha(glb_a)
            assert hash_c == hash_a
    finally:
        proc.terminate()
        proc.wait(timeout=30)
