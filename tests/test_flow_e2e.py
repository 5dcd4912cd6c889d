"""The whole flow through real sockets: two players, one slot (SPEC §4)."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pygltflib
from PIL import Image

from client_sim.sdk import GameClient, GameServer
from meshes.gltf import read_image
from meshes.r15 import BONES, PARTS

from .conftest import new_experience, running_server

TIMEOUT = 60


def load_glb(data: bytes) -> pygltflib.GLTF2:
    return pygltflib.GLTF2.load_from_bytes(data)


async def test_full_flow_two_players_one_slot(tmp_path, executor, astronaut_jpeg, database_url):
    key = await new_experience(tmp_path, database_url=database_url)
    async with running_server(tmp_path, executor, capacity=1, database_url=database_url) as srv:
        async with GameServer(srv.url, key) as gs:
            timeline: list[tuple[str, str]] = []
            gs.conn.on("SessionEnded", lambda d: timeline.append(("SessionEnded", d["PlayerId"])))

            async def photo(_prompt):
                return astronaut_jpeg

            async def confirm(_prompt):
                return True

            client = GameClient(srv.url, await gs.CreatePlayerToken("alice"),
                                choose_photo=photo, confirm_publish=confirm)
            await client.connect()

            ready_a, ready_b = asyncio.Future(), asyncio.Future()

            def on_ready_b(info):
                timeline.append(("SessionReady", info["PlayerId"]))
                ready_b.set_result(info)

            _conn_a, wait_a = await gs.RequestAvatarGenerationSessionAsync("alice", ready_a.set_result)
            info_a = await asyncio.wait_for(ready_a, TIMEOUT)
            _conn_b, wait_b = await gs.RequestAvatarGenerationSessionAsync("bob", on_ready_b)
            assert wait_a == 0
            assert wait_b > 0
            assert info_a["Allowed2DGenerations"] == 5 and info_a["Allowed3DGenerations"] == 1
            assert info_a["SessionTime"] == 600
            sid = info_a["SessionId"]

            file_id = await gs.PromptSelectAvatarGenerationImageAsync(sid)
            progress = []
            preview = await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": file_id},
                                                            progress.append)
            assert preview["face_detected"] is True and preview["face_count"] == 1
            assert progress and progress[-1]["Progress"] == 1.0
            assert all(0 <= p["Progress"] <= 1 for p in progress)
            image = await client.LoadAvatar2DPreviewAsync(preview["PreviewId"])
            assert image.Size[0] == image.Size[1] >= 256
            assert not ready_b.done(), "bob must wait while alice holds the only slot"

            generation_id = await gs.GenerateAvatarAsync({"SessionId": sid, "PreviewId": preview["PreviewId"]})
            # Alice's one 3D generation ends her session (Gen3D); the slot goes to Bob at once.
            info_b = await asyncio.wait_for(ready_b, TIMEOUT)
            assert timeline.index(("SessionEnded", "alice")) < timeline.index(("SessionReady", "bob"))
            assert info_b["PlayerId"] == "bob"

            server_copy = await gs.LoadGeneratedAvatarAsync(generation_id)
            client_copy = await client.LoadGeneratedAvatarAsync(generation_id)
            assert server_copy.content_hash() == client_copy.content_hash()

            # An edit on each side reaches the other.
            head = server_copy.avatar.parts["Head"]
            vid = head.GetVertices()[5]
            moved = [c + 0.05 for c in head.GetPosition(vid)]
            v1 = await server_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                          "Position": moved}])
            red = np.zeros((4, 4, 4), np.uint8)
            red[..., 0] = red[..., 3] = 255
            v2 = await client_copy.edit([{"op": "WritePixelsBuffer", "Image": "Head", "Position": [2, 3],
                                          "Size": [4, 4], "Buffer": red.tobytes()}])
            await server_copy.wait_version(v2)
            await client_copy.wait_version(v1)
            assert np.allclose(client_copy.avatar.parts["Head"].GetPosition(vid), moved, atol=1e-6)
            assert server_copy.avatar.images["Head"].ReadPixelsBuffer((2, 3), (4, 4)) == red.tobytes()
            assert server_copy.content_hash() == client_copy.content_hash()

            result = await gs.PromptCreateAvatarAsync(None, "alice", server_copy)
            assert result["Result"] == "Success" and result["ResultCode"] == 1
            assert result["BundleId"] and result["OutfitId"]

            from .conftest import Http
            status, glb = await Http(srv.url, key).get(f"/v1/published/{result['BundleId']}.glb")
            assert status == 200
            await gs.EndSession(info_b["SessionId"], "Exit")
            await client.close()

    gltf = load_glb(glb)
    primitives = [p for m in gltf.meshes for p in m.primitives]
    assert len(primitives) >= 15
    [skin] = gltf.skins
    joint_names = {gltf.nodes[j].name for j in skin.joints}
    assert set(BONES) <= joint_names
    assert gltf.textures and gltf.images
    assert {f"{part}_Geo" for part in PARTS} <= {m.name for m in gltf.meshes}
    # The published Head texture carries the red patch the client painted.
    head = next(m for m in gltf.meshes if m.name == "Head_Geo")
    texture = gltf.textures[gltf.materials[head.primitives[0].material].pbrMetallicRoughness.baseColorTexture.index]
    pixels = np.asarray(Image.open(io.BytesIO(read_image(gltf, texture.source))).convert("RGBA"))
    assert (pixels[3:7, 2:6] == [255, 0, 0, 255]).all()
    assert not (pixels[8:12, 8:12] == [255, 0, 0, 255]).all()


async def test_cancel_status_end_reason_and_http_edits(tmp_path, executor, astronaut_jpeg):
    from .conftest import Http

    key = await new_experience(tmp_path, Allowed3DGenerations=2)
    async with running_server(tmp_path, executor, capacity=1) as srv:
        http = Http(srv.url, key)
        _, first = await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "p1"})
        _, second = await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "p2"})
        _, third = await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "p3"})
        assert first["waitTime"] == 0 < second["waitTime"] < third["waitTime"]
        _, st = await http.rpc("GetSessionRequest", {"RequestId": third["RequestId"]})
        assert st["State"] == "Queued" and st["Position"] == 1
        _, cancelled = await http.rpc("CancelSessionRequest", {"RequestId": second["RequestId"]})
        assert cancelled == {"Cancelled": True}
        _, st = await http.rpc("GetSessionRequest", {"RequestId": third["RequestId"]})
        assert st["Position"] == 0
        _, active = await http.rpc("GetSessionRequest", {"RequestId": first["RequestId"]})
        sid = active["SessionId"]
        status, body = await http.rpc("EndSession", {"SessionId": sid, "Reason": "Bored"})
        assert status == 400 and body["error"]["code"] == "InvalidParams"

        # The rest of the flow over plain HTTP JSON, edits with base64 pixel buffers.
        token = (await http.rpc("CreatePlayerToken", {"PlayerId": "p1"}))[1]["Token"]
        _, up = await Http(srv.url, token).upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
        _, pre = await http.rpc("GenerateAvatar2DPreviewAsync", {"SessionId": sid, "FileId": up["FileId"]})
        _, gen = await http.rpc("GenerateAvatarAsync", {"SessionId": sid, "PreviewId": pre["PreviewId"]})
        _, bundle = await http.rpc("LoadGeneratedAvatarAsync", {"GenerationId": gen["GenerationId"]})
        assert bundle["Version"] == 0 and len(bundle["ContentHash"]) == 64
        import base64
        status, res = await http.rpc("ApplyEdits", {
            "GenerationId": gen["GenerationId"], "BaseVersion": 0,
            "Ops": [{"op": "WritePixelsBuffer", "Image": "Head", "Position": [0, 0], "Size": [1, 1],
                     "Buffer": base64.b64encode(b"\x01\x02\x03\xff").decode()}]})
        assert status == 200 and res["Version"] == 1
        status, res = await http.rpc("ApplyEdits", {
            "GenerationId": gen["GenerationId"], "BaseVersion": 1,
            "Ops": [{"op": "WritePixelsBuffer", "Image": "Head", "Position": [0, 0], "Size": [2, 2],
                     "Buffer": base64.b64encode(b"\x00" * 4).decode()}]})
        assert status == 422 and res["error"]["code"] == "InvalidEdit"
        _, bundle2 = await http.rpc("LoadGeneratedAvatarAsync", {"GenerationId": gen["GenerationId"]})
        assert bundle2["Version"] == 1 and bundle2["ContentHash"] != bundle["ContentHash"]

        await http.rpc("EndSession", {"SessionId": sid, "Reason": "Exit"})
        _, st = await http.rpc("GetSessionRequest", {"RequestId": third["RequestId"]})
        assert st["State"] == "Active"
        # The session's selfie is deleted once it ended (no input caching); its previews stay.
        import hashlib

        from server.web.keys import SERVICE
        blobs = srv.app[SERVICE].blobs
        assert not blobs.path(hashlib.sha256(astronaut_jpeg).hexdigest()).exists()
        assert (await Http(srv.url, key).get(f"/v1/previews/{pre['PreviewId']}.png"))[0] == 200
        status, body = await http.rpc("GenerateAvatar2DPreviewAsync", {"SessionId": sid, "FileId": up["FileId"]})
        assert status == 409 and body["error"]["code"] == "SessionNotActive"
