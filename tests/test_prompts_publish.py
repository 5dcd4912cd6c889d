"""Player prompts: selfie refusal, and every publish outcome the issue names (declined, out of sync, success)."""

from __future__ import annotations

import asyncio

import pytest

from client_sim.connection import RemoteError
from client_sim.sdk import GameClient, GameServer

from .conftest import Http, active_session, generate, new_experience, running_server


async def test_selfie_prompt_declined_and_no_client(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            with pytest.raises(RemoteError) as err:
                await gs.PromptSelectAvatarGenerationImageAsync(sid)
            assert err.value.code == "FeatureUnavailable"  # the player's client is not connected
            async with GameClient(srv.url, await gs.CreatePlayerToken("p")):  # declines: no photo chosen
                with pytest.raises(RemoteError) as err:
                    await gs.PromptSelectAvatarGenerationImageAsync(sid)
            assert err.value.code == "SelfieConsentDenied"
            assert err.value.message == "Selfie consent not accepted"


async def test_publish_declined_out_of_sync_timeout_then_success(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            answers = ["no", "yes", "yes"]

            async def confirm(_prompt):
                return answers.pop(0) == "yes"

            client = await GameClient(srv.url, await gs.CreatePlayerToken("p"), confirm_publish=confirm).connect()
            pre, gen_id = await generate(gs, srv.url, client.token, astronaut_jpeg, sid)
            server_copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            client_copy = await client.LoadGeneratedAvatarAsync(gen_id)

            result = await gs.PromptCreateAvatarAsync(None, "p", server_copy)
            assert (result["Result"], result["ResultCode"]) == ("NoUserInput", 5)

            # The client's copy drifts (a local change the server never saw): refused, nothing stored.
            head = client_copy.avatar.parts["Head"]
            vid = head.GetVertices()[0]
            head.SetPosition(vid, [0.0, 0.0, 0.0])
            result = await gs.PromptCreateAvatarAsync(None, "p", server_copy)
            assert result["Result"] == "InvalidHumanoidDescription"
            assert "game client" in result["Message"] and "game server" not in result["Message"]
            status, listing = await Http(srv.url, key).rpc("ValidateUGCFullBodyAsync", {"GenerationId": gen_id})
            assert status == 200 and listing["Ok"] is True, listing["FailureReasons"]

            # The client reloads, gets back in sync; it does not answer in time → Timeout.
            client_copy = await client.LoadGeneratedAvatarAsync(gen_id)
            await client.close()
            result = await gs.PromptCreateAvatarAsync(None, "p", server_copy, timeout=0.3)
            assert (result["Result"], result["ResultCode"]) == ("Timeout", 3)

            client = await GameClient(srv.url, client.token, confirm_publish=confirm).connect()
            await client.LoadGeneratedAvatarAsync(gen_id)
            result = await gs.PromptCreateAvatarAsync(None, "p", server_copy, name="Space Me")
            assert result["Result"] == "Success"
            status, bundle = await Http(srv.url, key).get(f"/v1/published/{result['BundleId']}")
            assert status == 200 and b'"Name": "Space Me"' in bundle
            # Published bundles are immutable.
            with pytest.raises(RemoteError) as err:
                await server_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                         "Position": [0.0, 1.0, 0.0]}])
            assert err.value.code == "AlreadyPublished"
            # A player token cannot list the experience's bundles; another experience cannot see this one.
            status, _ = await Http(srv.url, client.token).get("/v1/published")
            assert status == 401
            other = await new_experience(tmp_path, "other")
            status, _ = await Http(srv.url, other).get(f"/v1/published/{result['BundleId']}.glb")
            assert status == 404
            await client.close()


async def test_concurrent_publish_upload_after_end_and_oversized_batch(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]

            async def confirm(_prompt):
                return True

            client = await GameClient(srv.url, await gs.CreatePlayerToken("p"), confirm_publish=confirm).connect()
            pre, gen_id = await generate(gs, srv.url, client.token, astronaut_jpeg, sid)
            server_copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            await client.LoadGeneratedAvatarAsync(gen_id)

            # One batch that would repaint the head a thousand times is refused before any work.
            huge = [{"op": "DrawCircle", "Image": "Head", "Center": [10, 10], "Radius": 4096,
                     "Color": [1.0, 0.0, 0.0], "Transparency": 0.0}] * 1024
            with pytest.raises(RemoteError) as err:
                await server_copy.edit(huge)
            assert err.value.code == "InvalidParams" and "pixels" in err.value.message

            # Two publishes of one generation at once: exactly one bundle.
            results = await asyncio.gather(gs.PromptCreateAvatarAsync(None, "p", server_copy),
                                           gs.PromptCreateAvatarAsync(None, "p", server_copy),
                                           return_exceptions=True)
            wins = [r for r in results if isinstance(r, dict) and r["Result"] == "Success"]
            losses = [r for r in results if isinstance(r, RemoteError)]
            assert len(wins) == 1 and [e.code for e in losses] in (["AlreadyPublished"], ["PublishInProgress"])
            status, listing = await Http(srv.url, key).get("/v1/published")
            assert status == 200 and listing.count(b'"BundleId"') == 1
            await client.close()

        # A selfie that arrives after its session ended is refused and not kept.
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "q"))["SessionId"]
            prompts = asyncio.Queue()

            async def hold_photo(prompt):
                await prompts.put(prompt)
                await asyncio.Event().wait()  # the player dawdles; the upload comes by hand below

            token = await gs.CreatePlayerToken("q")
            async with GameClient(srv.url, token, choose_photo=hold_photo):
                select = asyncio.ensure_future(gs.PromptSelectAvatarGenerationImageAsync(sid))
                prompt = await asyncio.wait_for(prompts.get(), 10)
                await gs.EndSession(sid, "Exit")
                with pytest.raises(RemoteError) as err:
                    await select
                assert err.value.code == "SessionNotActive"
            status, body = await Http(srv.url, token).upload(f"/v1/files/{prompt['FileId']}", astronaut_jpeg)
            assert status == 409 and body["error"]["code"] == "SessionNotActive"


async def test_publish_token_name_and_validation_results(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path, CreationTokens=["tok-body-1"])
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            asked = []

            async def confirm(prompt):
                asked.append(prompt["PromptId"])
                return True

            client = await GameClient(srv.url, await gs.CreatePlayerToken("p"), confirm_publish=confirm).connect()
            pre, gen_id = await generate(gs, srv.url, client.token, astronaut_jpeg, sid)
            server_copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            client_copy = await client.LoadGeneratedAvatarAsync(gen_id)

            result = await gs.PromptCreateAvatarAsync("not-our-token", "p", server_copy)
            assert (result["Result"], result["ResultCode"]) == ("TokenInvalid", 12)
            result = await gs.PromptCreateAvatarAsync("tok-body-1", "p", server_copy, name="fucking avatar")
            assert (result["Result"], result["ResultCode"]) == ("ModeratedName", 8)
            assert asked == []  # refused before the player was asked

            # An edit that pulls the head apart: still a valid op, but not a valid body.
            head = server_copy.avatar.parts["Head"]
            vid = head.GetVertices()[0]
            original = list(head.GetPosition(vid))
            version = await server_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                               "Position": [0.0, 40.0, 0.0]}])
            await client_copy.wait_version(version)
            ok, reasons = await gs.ValidateUGCFullBodyAsync(gen_id)
            assert not ok and any("Head" in r for r in reasons)
            result = await gs.PromptCreateAvatarAsync("tok-body-1", "p", server_copy)
            assert (result["Result"], result["ResultCode"]) == ("UGCValidationFailed", 7)
            assert "Head" in result["Message"]
            # Moving it back makes it publishable with the right token.
            await server_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": original}])
            await client_copy.wait_version(server_copy.version)
            result = await gs.PromptCreateAvatarAsync("tok-body-1", "p", server_copy, name="Space Me")
            assert result["Result"] == "Success"
            await client.close()
