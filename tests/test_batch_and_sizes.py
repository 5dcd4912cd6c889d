"""GenerateAvatar2DPreviewBatch, high-res previews and thumbnails through the server (issue 3 items 8, 10)."""

from __future__ import annotations

import io

import aiohttp
from PIL import Image

from client_sim.sdk import GameServer

from .conftest import Http, active_session, new_experience, running_server


async def test_batch_keeps_input_order_and_per_photo_errors(tmp_path, executor, astronaut_jpeg, coffee_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            progress = []
            out = await gs.conn.call("GenerateAvatar2DPreviewBatch",
                                     {"Photos": [astronaut_jpeg, coffee_jpeg, b"not an image at all"],
                                      "Style": "corporate_headshot"}, progress.append)
        results = out["Results"]
        assert [r["Index"] for r in results] == [0, 1, 2]
        assert results[0]["style"] == "corporate_headshot" and results[0]["face_count"] == 1
        assert results[1]["error"]["code"] == "NoFaceDetected"
        assert results[2]["error"]["code"] == "UnsupportedImageFormat"
        assert progress[-1]["Progress"] == 1.0

        # The same over multipart HTTP; the preview is the experience's, not any player's.
        form = aiohttp.FormData()
        for photo in (coffee_jpeg, astronaut_jpeg):
            form.add_field("photo", photo, filename="p.jpg", content_type="image/jpeg")
        form.add_field("Style", "anime_character")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            async with http.post(f"{srv.url}/v1/previews/batch", data=form) as r:
                assert r.status == 200
                body = await r.json()
        first, second = body["Results"]
        assert first["error"]["code"] == "NoFaceDetected" and second["style"] == "anime_character"
        status, png = await Http(srv.url, key).get(second["Url"])
        assert status == 200 and Image.open(io.BytesIO(png)).size == (800, 800)

        status, body = await Http(srv.url, key).rpc("GenerateAvatar2DPreviewBatch", {"Photos": []})
        assert status == 400
        status, body = await Http(srv.url, key).rpc("GenerateAvatar2DPreviewBatch", {"Photos": ["x"] * 51})
        assert status == 400 and body["error"]["code"] == "InvalidParams"


async def test_high_res_preview_and_thumbnail(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            token = await gs.CreatePlayerToken("p")
            _, up = await Http(srv.url, token).upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
            pre = await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": up["FileId"], "HighRes": True,
                                                          "Palette": [[10, 20, 200], [250, 250, 250]]})
        http = Http(srv.url, token)
        _, png = await http.get(f"/v1/previews/{pre['PreviewId']}.png")
        _, thumb = await http.get(f"/v1/previews/{pre['PreviewId']}/thumbnail.png")
        big = Image.open(io.BytesIO(png))
        assert big.size == (1200, 1200)
        assert Image.open(io.BytesIO(thumb)).size == (100, 100)
        assert big.text.get("session") == sid or sid in " ".join(big.text.values())
