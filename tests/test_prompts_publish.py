"""Player prompts: selfie refusal, and every publish outcome the issue names (declined, out of sync, success)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging

import pytest

from client_sim.connection import RemoteError
from client_sim.sdk import GameClient, GameServer
from server.config import Config

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


async def test_publish_declined_out_of_sync_timeout_then_success(tmp_path, executor, astronaut_jpeg, database_url):
    key = await new_experience(tmp_path, database_url=database_url)
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
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
            other = await new_experience(tmp_path, "other", database_url=database_url)
            status, _ = await Http(srv.url, other).get(f"/v1/published/{result['BundleId']}.glb")
            assert status == 404
            await client.close()


async def test_concurrent_publish_upload_after_end_and_oversized_batch(tmp_path, executor, astronaut_jpeg,
                                                                      database_url):
    key = await new_experience(tmp_path, database_url=database_url)
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
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


# --------------------------------------------------------------------------- stored tokens, settings


async def test_creation_tokens_are_stored_only_as_hashes(tmp_path):
    from server.admin import list_experiences
    from server.config import Config

    await new_experience(tmp_path, CreationTokens=["tok-very-secret-1", "tok-very-secret-2"])
    (row,) = await list_experiences(Config(data_dir=tmp_path))
    assert row["settings"]["CreationTokens"] == [
        "sha256:" + hashlib.sha256(t.encode()).hexdigest() for t in ("tok-very-secret-1", "tok-very-secret-2")]
    # Nowhere on disk (database, its WAL, blobs) in plain text.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"tok-very-secret" not in path.read_bytes(), path


@pytest.mark.parametrize("settings", [
    {"MaxOutfitsPerPlayer": 0}, {"MaxOutfitsPerPlayer": True}, {"MaxOutfitsPerPlayer": "3"},
    {"MaxOutfitsPerPlayer": 1.5},
    {"PurchaseCallbackUrl": "ftp://shop.example/buy"}, {"PurchaseCallbackUrl": "file:///etc/passwd"},
    {"PurchaseCallbackUrl": "http://"}, {"PurchaseCallbackUrl": "shop.example/buy"},
    {"PurchaseCallbackUrl": "http://shop.example:99999/buy"}, {"PurchaseCallbackUrl": 5},
    {"CreationTokens": "tok"}, {"CreationTokens": [""]}, {"CreationTokens": [7]},
])
def test_publish_settings_are_type_checked(settings):
    from server.admin import check_settings

    with pytest.raises(ValueError, match=next(iter(settings))):
        check_settings(dict(settings))


def test_publish_settings_accepted():
    from server.admin import SETTING_KEYS, check_settings

    good = {"MaxOutfitsPerPlayer": 3, "PurchaseCallbackUrl": "https://shop.example:8443/buy?game=1",
            "CreationTokens": ["a", "b"]}
    assert check_settings(dict(good)) == good
    assert {"MaxOutfitsPerPlayer", "PurchaseCallbackUrl"} <= set(SETTING_KEYS)


# --------------------------------------------------------------------------- UploadFailed, UnknownFailure


async def _published_count(url: str, key: str) -> int:
    status, listing = await Http(url, key).get("/v1/published")
    assert status == 200
    return listing.count(b'"BundleId"')


async def test_upload_failed_and_unknown_failure_store_nothing(tmp_path, executor, astronaut_jpeg, caplog):
    from server.web.keys import SERVICE

    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        blobs = srv.app[SERVICE].blobs
        real_put = blobs.put
        failure: list[BaseException] = []

        async def put(data: bytes) -> str:
            if data[:4] == b"glTF" and failure:  # the exported bundle
                raise failure[0]
            return await real_put(data)

        blobs.put = put
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]

            async def confirm(_prompt):
                return True

            client = await GameClient(srv.url, await gs.CreatePlayerToken("p"), confirm_publish=confirm).connect()
            _, gen_id = await generate(gs, srv.url, client.token, astronaut_jpeg, sid)
            server_copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            client_copy = await client.LoadGeneratedAvatarAsync(gen_id)

            failure[:] = [OSError(errno.ENOSPC, "No space left on device")]
            result = await gs.PromptCreateAvatarAsync(None, "p", server_copy)
            assert (result["Result"], result["ResultCode"]) == ("UploadFailed", 4)
            assert result["Message"] and "BundleId" not in result
            assert await _published_count(srv.url, key) == 0

            # Not published: still editable.
            head = server_copy.avatar.parts["Head"]
            vid = head.GetVertices()[0]
            version = await server_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                               "Position": list(head.GetPosition(vid))}])
            await client_copy.wait_version(version)

            failure[:] = [RuntimeError("the disk controller caught fire")]
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="server.services.publish"):
                result = await gs.PromptCreateAvatarAsync(None, "p", server_copy)
            assert (result["Result"], result["ResultCode"]) == ("UnknownFailure", 11)
            assert result["Message"] and "fire" not in result["Message"]  # no internals to the caller
            assert any(r.exc_info and "fire" in str(r.exc_info[1]) for r in caplog.records)
            assert await _published_count(srv.url, key) == 0

            failure.clear()
            result = await gs.PromptCreateAvatarAsync(None, "p", server_copy)
            assert result["Result"] == "Success"
            assert await _published_count(srv.url, key) == 1
            await client.close()


# --------------------------------------------------------------------------- MaxOutfits


async def test_max_outfits_per_player(tmp_path, executor, astronaut_jpeg, database_url):
    key = await new_experience(tmp_path, MaxOutfitsPerPlayer=1, Allowed3DGenerations=2, database_url=database_url)
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            asked = []

            async def confirm(prompt):
                asked.append(prompt["GenerationId"])
                return True

            client = await GameClient(srv.url, await gs.CreatePlayerToken("p"), confirm_publish=confirm).connect()
            preview, gen_a = await generate(gs, srv.url, client.token, astronaut_jpeg, sid)
            gen_b = await gs.GenerateAvatarAsync({"SessionId": sid, "PreviewId": preview["PreviewId"]})
            copies = [await gs.LoadGeneratedAvatarAsync(g) for g in (gen_a, gen_b)]
            for g in (gen_a, gen_b):
                await client.LoadGeneratedAvatarAsync(g)

            # Both publishes at once, one outfit allowed: exactly one is stored.
            results = await asyncio.gather(*(gs.PromptCreateAvatarAsync(None, "p", c) for c in copies))
            assert sorted(r["Result"] for r in results) == ["MaxOutfits", "Success"], results
            refused = next(r for r in results if r["Result"] == "MaxOutfits")
            assert refused["ResultCode"] == 9 and refused["Message"]
            assert await _published_count(srv.url, key) == 1

            # Trying again is refused before the player is asked.
            loser = copies[[r["Result"] for r in results].index("MaxOutfits")]
            n_asked = len(asked)
            result = await gs.PromptCreateAvatarAsync(None, "p", loser)
            assert (result["Result"], result["ResultCode"]) == ("MaxOutfits", 9)
            assert len(asked) == n_asked
            await client.close()


# --------------------------------------------------------------------------- PurchaseFailure


async def test_purchase_callback_refusals_and_approval(tmp_path, executor, astronaut_jpeg):
    from aiohttp import web

    from server.web.keys import SERVICE

    mode = {"answer": "402"}
    received = []

    async def purchase(request: web.Request) -> web.Response:
        received.append(await request.json())
        if mode["answer"] == "402":
            return web.json_response({"Error": "insufficient funds"}, status=402)
        if mode["answer"] == "declined":
            return web.json_response({"Approved": False})
        if mode["answer"] == "slow":
            await asyncio.sleep(5)
        return web.json_response({"Approved": True})

    shop = web.Application()
    shop.router.add_post("/purchase", purchase)
    runner = web.AppRunner(shop)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    key = await new_experience(tmp_path, PurchaseCallbackUrl=f"http://127.0.0.1:{port}/purchase")
    try:
        async with running_server(tmp_path, executor) as srv:
            srv.app[SERVICE].purchases.timeout = 0.5
            async with GameServer(srv.url, key) as gs:
                sid = (await active_session(gs, "p"))["SessionId"]

                async def confirm(_prompt):
                    return True

                client = await GameClient(srv.url, await gs.CreatePlayerToken("p"),
                                          confirm_publish=confirm).connect()
                _, gen_id = await generate(gs, srv.url, client.token, astronaut_jpeg, sid)
                server_copy = await gs.LoadGeneratedAvatarAsync(gen_id)
                await client.LoadGeneratedAvatarAsync(gen_id)

                async def attempt(name="Shop Me"):
                    return await gs.PromptCreateAvatarAsync(None, "p", server_copy, name=name)

                for answer, words in (("402", "402"), ("declined", "declined"), ("slow", "answer")):
                    mode["answer"] = answer
                    result = await attempt()
                    assert (result["Result"], result["ResultCode"]) == ("PurchaseFailure", 10), (answer, result)
                    assert words in result["Message"]
                    assert await _published_count(srv.url, key) == 0

                await site.stop()  # the shop is down
                n = len(received)
                result = await attempt()
                assert (result["Result"], result["ResultCode"]) == ("PurchaseFailure", 10)
                assert "reached" in result["Message"] and len(received) == n
                assert await _published_count(srv.url, key) == 0

                site = web.TCPSite(runner, "127.0.0.1", port)
                await site.start()
                mode["answer"] = "approve"
                result = await attempt()
                assert result["Result"] == "Success", result
                assert received[-1] == {"ExperienceId": received[0]["ExperienceId"], "PlayerId": "p",
                                        "GenerationId": gen_id, "Name": "Shop Me"}
                assert received[0]["ExperienceId"].startswith("exp")
                assert await _published_count(srv.url, key) == 1
                await client.close()
    finally:
        await runner.cleanup()


async def test_plain_creation_tokens_from_earlier_versions_are_hashed_at_start(tmp_path, executor):
    from server.core.auth import creation_token_matches
    from server.db import Experience, migrate, open_engine

    engine, sessionmaker = open_engine(Config(data_dir=tmp_path).db_url)
    await migrate(engine)
    async with sessionmaker.begin() as db:  # as an earlier version stored them
        db.add(Experience(id="exp_old", name="old", key_hash="k" * 64, created_at=1.0,
                          settings={"CreationTokens": ["plain-token-1"]}))
    await engine.dispose()
    async with running_server(tmp_path, executor):
        pass
    engine, sessionmaker = open_engine(Config(data_dir=tmp_path).db_url)
    async with sessionmaker() as db:
        stored = (await db.get(Experience, "exp_old")).settings["CreationTokens"]
    await engine.dispose()
    assert stored != ["plain-token-1"] and creation_token_matches("plain-token-1", stored)
    assert not creation_token_matches("plain-token-2", stored)
