"""A restart loses nothing committed (issue item 6): queue, sessions, previews, generations, edits."""

from __future__ import annotations

import asyncio

from client_sim.sdk import GameClient, GameServer

from .conftest import Http, active_session, new_experience, running_server


async def test_server_restart_keeps_queue_sessions_previews_generations_and_edits(
        tmp_path, executor, astronaut_jpeg, database_url):
    key = await new_experience(tmp_path, Allowed3DGenerations=2, database_url=database_url)
    async with running_server(tmp_path, executor, capacity=1, database_url=database_url) as srv:
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "alice"))["SessionId"]
            conn_b, wait_b = await gs.RequestAvatarGenerationSessionAsync("bob", lambda info: None)
            token = await gs.CreatePlayerToken("alice")
            _, up = await Http(srv.url, token).upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
            preview = await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": up["FileId"]})
            gen_id = await gs.GenerateAvatarAsync({"SessionId": sid, "PreviewId": preview["PreviewId"]})
            copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            head = copy.avatar.parts["Head"]
            vid = head.GetVertices()[0]
            await copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [0.1, 0.2, 0.3]}])
            await copy.edit([{"op": "DrawRectangle", "Image": "Head", "Position": [0, 0], "Size": [16, 16],
                              "Color": [0.0, 0.0, 1.0], "Transparency": 0.0}])
            hash_before, version_before = copy.content_hash(), copy.version

    # A new server process image on the same data directory.
    async with running_server(tmp_path, executor, capacity=1, database_url=database_url) as srv:
        async with GameServer(srv.url, key) as gs:
            status = await gs.conn.call("GetSessionRequest", {"RequestId": conn_b.RequestId})
            assert status["State"] == "Queued" and status["waitTime"] > 0
            # Alice's session is still active with its counters: one more 3D generation allowed.
            async with GameClient(srv.url, await gs.CreatePlayerToken("alice")) as client:
                image = await client.LoadAvatar2DPreviewAsync(preview["PreviewId"])
                assert image.Size[0] > 0
                copy2 = await client.LoadGeneratedAvatarAsync(gen_id)
            assert copy2.version == version_before == 2
            assert copy2.content_hash() == hash_before
            assert [round(c, 5) for c in copy2.avatar.parts["Head"].GetPosition(vid)] == [0.1, 0.2, 0.3]
            bob_ready = asyncio.Future()
            gs.conn.on("SessionReady", lambda info: info["RequestId"] == conn_b.RequestId
                       and bob_ready.set_result(info))
            await gs.GenerateAvatarAsync({"SessionId": sid, "PreviewId": preview["PreviewId"]})
            # Alice's second (last) generation ends her session; Bob, queued before the restart, gets it.
            info = await asyncio.wait_for(bob_ready, 30)
            assert info["PlayerId"] == "bob"
