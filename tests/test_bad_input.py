"""Bad input and other callers' ids: typed refusals, nothing charged, server stays up (issue item 10)."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from client_sim.connection import Connection, RemoteError
from client_sim.sdk import GameClient, GameServer

from .conftest import Http, active_session, generate, new_experience, running_server



@pytest.fixture(scope="module")
async def world(tmp_path_factory, executor):
    """One server; experience A with Allowed2DGenerations=2 and an active session; experience B."""
    data = tmp_path_factory.mktemp("bad-input")
    key_a = await new_experience(data, "A", Allowed2DGenerations=2)
    key_b = await new_experience(data, "B")
    async with running_server(data, executor, capacity=4) as srv:
        async with GameServer(srv.url, key_a) as gs:
            ready = asyncio.Future()
            await gs.RequestAvatarGenerationSessionAsync("alice", ready.set_result)
            info = await asyncio.wait_for(ready, 30)
            token_alice = await gs.CreatePlayerToken("alice")
            token_mallory = await gs.CreatePlayerToken("mallory")
            yield {"url": srv.url, "key_a": key_a, "key_b": key_b, "session": info["SessionId"],
                   "alice": token_alice, "mallory": token_mallory, "gs": gs}


async def upload(world, data: bytes, token_key="alice"):
    return await Http(world["url"], world[token_key]).upload("/v1/files", data,
                                                           {"SessionId": world["session"]})


async def test_non_image_upload_is_415(world):
    status, body = await upload(world, b"%PDF-1.4 definitely not a photo" * 20)
    assert status == 415 and body["error"]["code"] == "UnsupportedImageFormat"
    assert body["error"]["message"]


async def test_truncated_jpeg_is_422(world, astronaut_jpeg):
    status, body = await upload(world, astronaut_jpeg[: len(astronaut_jpeg) // 2])
    assert status == 422 and body["error"]["code"] == "InvalidImage"


async def test_image_over_10_mb_is_413(world):
    blob = b"\xff\xd8\xff\xe0" + b"\0" * (10 * 1024 * 1024 + 10)
    status, body = await upload(world, blob)
    assert status == 413 and body["error"]["code"] == "ImageTooLarge"


async def test_unknown_method_http_and_ws(world):
    status, body = await Http(world["url"], world["key_a"]).rpc("NoSuchMethodAsync", {})
    assert status == 404 and body["error"]["code"] == "UnknownMethod"
    with pytest.raises(RemoteError) as err:
        await world["gs"].conn.call("NoSuchMethodAsync", {})
    assert err.value.code == "UnknownMethod"


async def test_missing_keys_and_wrong_types(world):
    http = Http(world["url"], world["key_a"])
    status, body = await http.rpc("GenerateAvatar2DPreviewAsync", {"SessionId": world["session"]})
    assert status == 400 and body["error"]["code"] == "InvalidParams" and "FileId" in body["error"]["message"]
    status, body = await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": 12})
    assert status == 400 and "PlayerId" in body["error"]["message"]
    status, body = await http.rpc("EndSession", raw=b"{not json")
    assert status == 400 and body["error"]["code"] == "InvalidParams"
    with pytest.raises(RemoteError) as err:
        await world["gs"].conn.call("ApplyEdits", {"GenerationId": "g", "BaseVersion": "zero", "Ops": []})
    assert err.value.code == "InvalidParams"


async def test_malformed_msgpack_gets_an_error_frame_and_the_socket_lives_on(world):
    conn = world["gs"].conn
    await conn.send_raw(b"\xc1\xc1\xc1")
    err = await asyncio.wait_for(conn.orphan_errors.get(), 5)
    assert err["code"] == "MalformedFrame"
    await conn.send_raw("text frames are not msgpack")
    err = await asyncio.wait_for(conn.orphan_errors.get(), 5)
    assert err["code"] == "MalformedFrame"
    rules = await world["gs"].GetValidationRules()
    assert "MeshRules" in rules


async def test_credentials_are_checked(world):
    status, body = await Http(world["url"], "acs_wrong").rpc("GetValidationRules", {})
    assert status == 401 and body["error"]["code"] == "InvalidApiKey"
    status, body = await Http(world["url"], None).rpc("GetValidationRules", {})
    assert status == 401
    status, body = await Http(world["url"], "garbage.token").rpc("GetValidationRules", {})
    assert status == 401 and body["error"]["code"] == "TokenInvalid"
    # A player token cannot call game-server methods.
    status, body = await Http(world["url"], world["alice"]).rpc("RequestAvatarGenerationSessionAsync",
                                                                {"PlayerId": "alice"})
    assert status == 403


async def test_quota_refused_input_is_not_charged_and_third_preview_is_refused(world, astronaut_jpeg,
                                                                                coffee_jpeg):
    gs, sid = world["gs"], world["session"]
    status, good = await upload(world, astronaut_jpeg)
    assert status == 200
    status, no_face = await upload(world, coffee_jpeg)
    assert status == 200  # a valid photo; whether it has a face is the pipeline's call

    with pytest.raises(RemoteError) as err:
        await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": no_face["FileId"]})
    assert err.value.code == "NoFaceDetected"
    with pytest.raises(RemoteError) as err:
        await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": good["FileId"],
                                               "TextPrompt": "x" * 501})
    assert err.value.code == "PromptTooLong"

    # Allowed2DGenerations is 2: the refusals above cost nothing.  Of three concurrent
    # requests exactly two succeed, and the third is refused, whichever it is.
    results = await asyncio.gather(
        *(gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": good["FileId"]}) for _ in range(3)),
        return_exceptions=True)
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, RemoteError)]
    assert len(ok) == 2 and ok[0]["PreviewId"] != ok[1]["PreviewId"]
    assert [r.code for r in refused] == ["Allowed2DGenerationsExceeded"]
    with pytest.raises(RemoteError) as err:
        await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": good["FileId"]})
    assert err.value.code == "Allowed2DGenerationsExceeded"


async def test_other_players_and_experiences_ids(tmp_path, executor, astronaut_jpeg):
    key_a, key_b = await new_experience(tmp_path, "A"), await new_experience(tmp_path, "B")
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key_a) as gs:
            sid = (await active_session(gs, "alice"))["SessionId"]
            alice, mallory = await gs.CreatePlayerToken("alice"), await gs.CreatePlayerToken("mallory")
            _, up = await Http(srv.url, alice).upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
            preview_id = (await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": up["FileId"]}))[
                "PreviewId"]
        world = {"url": srv.url, "alice": alice, "mallory": mallory, "key_b": key_b, "session": sid}
        await _check_other_callers(world, preview_id)


async def _check_other_callers(world, preview_id):    # Another player of the same experience: 403.
    with pytest.raises(RemoteError) as err:
        async with GameClient(world["url"], world["mallory"]) as mallory:
            await mallory.LoadAvatar2DPreviewAsync(preview_id)
    assert err.value.code == "Forbidden"
    status, _ = await Http(world["url"], world["mallory"]).get(f"/v1/previews/{preview_id}.png")
    assert status == 403
    # Another experience: 404, as if it did not exist.
    status, body = await Http(world["url"], world["key_b"]).rpc("LoadAvatar2DPreviewAsync",
                                                                {"PreviewId": preview_id})
    assert status == 404 and body["error"]["code"] == "PreviewNotFound"
    # Another experience's active session answers exactly as an id that never existed.
    status, body = await Http(world["url"], world["key_b"]).rpc("EndSession", {"SessionId": world["session"],
                                                                              "Reason": "Exit"})
    unknown = await Http(world["url"], world["key_b"]).rpc("EndSession", {"SessionId": "ses_000000000000000000000000",
                                                                          "Reason": "Exit"})
    assert (status, body) == unknown and status == 409 and body["error"]["code"] == "SessionNotActive"
    # The owner still reaches it.
    status, png = await Http(world["url"], world["alice"]).get(f"/v1/previews/{preview_id}.png")
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"


async def test_server_still_healthy(world):
    status, body = await Http(world["url"], None).get("/healthz")
    assert status == 200 and b'"ok": true' in body


async def test_websocket_without_credentials_is_refused_with_401(world):
    with pytest.raises(websockets.InvalidStatus) as err:
        await Connection(world["url"], "").connect()
    assert err.value.response.status_code == 401


async def test_oversized_numbers_and_nesting_are_400_not_500(world):
    http = Http(world["url"], world["key_a"])
    for body in (b'{"PlayerId": 1' + b"0" * 5000 + b"}", b"[" * 100000, b'{"PlayerId": "p", "TtlSeconds": 1e400}'):
        status, reply = await http.rpc("CreatePlayerToken", raw=body)
        assert status == 400, reply
    status, reply = await http.rpc("CreatePlayerToken", {"PlayerId": "p", "TtlSeconds": 10 ** 12})
    assert status == 400 and "TtlSeconds" in reply["error"]["message"]
    status, reply = await http.rpc("CreatePlayerToken", {"PlayerId": ""})
    assert status == 400 and "empty" in reply["error"]["message"]


def test_lone_surrogates_are_refused_by_the_params_decoder():
    from schemas import decode
    from schemas import methods as m
    from schemas.errors import InvalidParams

    with pytest.raises(InvalidParams, match="PlayerId.*Unicode"):
        decode(m.CreatePlayerToken, {"PlayerId": "a\ud800b"})
    assert decode(m.CreatePlayerToken, {"PlayerId": "Zoë 🙂"}).PlayerId == "Zoë 🙂"  # real non-ASCII is fine
    # Inside list params too, as a value or a key, also next to an int msgpack could not carry.
    for ops in ([{"op": "SetProperty", "Property": "Accessories", "Value": [{"AccessoryType": "Hat",
                                                                            "Instance": "x\udfff"}]}],
                [{"op\ud83d": 1}],
                [{"op": "RemoveFace", "Part": "Head", "FaceId": 2**70, "Note": ["\udc00"]}]):
        with pytest.raises(InvalidParams, match="Ops.*Unicode"):
            decode(m.ApplyEdits, {"GenerationId": "g", "BaseVersion": 0, "Ops": ops})


async def test_hostile_values_get_typed_refusals_not_500s(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        http = Http(srv.url, key)
        # A lone surrogate (legal JSON, not Unicode text) in a str param.
        status, body = await http.rpc("CreatePlayerToken", raw=b'{"PlayerId": "a\\ud800b"}')
        assert status == 400 and body["error"]["code"] == "InvalidParams", body
        assert "PlayerId" in body["error"]["message"]

        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            token = await gs.CreatePlayerToken("p")
            _, gen_id = await generate(gs, srv.url, token, astronaut_jpeg, sid)
            copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            base = copy.version
            hash_before = copy.content_hash()
            vid = copy.avatar.parts["Head"].GetVertices()[0]

            def circle(radius):
                return {"op": "DrawCircle", "Image": "Head", "Center": [10, 10], "Radius": radius,
                        "Color": [1.0, 0.0, 0.0], "Transparency": 0.0}

            def rectangle(size):
                return {"op": "DrawRectangle", "Image": "Head", "Position": [0, 0], "Size": size,
                        "Color": [1.0, 0.0, 0.0], "Transparency": 0.0}

            inf, nan = float("inf"), float("nan")
            hostile = [
                {"op": "BatchSetValues", "Part": "Head", "VertexIds": [2**64 - 1], "Positions": [[0.0, 0.0, 0.0]]},
                {"op": "BatchSetValues", "Part": "Head", "VertexIds": [-1, 2**63],
                 "Positions": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]},
                circle(inf), circle(nan), circle(-inf),
                rectangle([inf, 1]), rectangle([nan, 1]), rectangle([1, inf]),
            ]
            for op in hostile:  # over the websocket (msgpack carries uint64, NaN and Infinity)
                with pytest.raises(RemoteError) as err:
                    await gs.conn.call("ApplyEdits", {"GenerationId": gen_id, "BaseVersion": base, "Ops": [op]})
                assert err.value.code == "InvalidEdit", (op, err.value)
                assert err.value.message
            # ... and over HTTP JSON.
            status, body = await http.rpc("ApplyEdits", {"GenerationId": gen_id, "BaseVersion": base,
                                                         "Ops": hostile[:2]})
            assert status == 422 and body["error"]["code"] == "InvalidEdit", body
            raw = ('{"GenerationId": "%s", "BaseVersion": %d, "Ops": [{"op": "SetProperty", "Property": '
                   '"Accessories", "Value": [{"AccessoryType": "Hat", "Instance": "a\\ud800"}]}]}' % (gen_id, base))
            status, body = await http.rpc("ApplyEdits", raw=raw.encode())
            assert status == 400 and body["error"]["code"] == "InvalidParams", body

            # 60,000 accessories (as many as a frame may carry): refused by their count.
            many = [{"AccessoryType": "Hat"}] * 60_000
            with pytest.raises(RemoteError) as err:
                await gs.conn.call("ApplyEdits", {"GenerationId": gen_id, "BaseVersion": base, "Ops": [
                    {"op": "SetProperty", "Property": "Accessories", "Value": many}]})
            assert err.value.code == "InvalidEdit" and "16" in err.value.message

            # Nothing was applied (no refused batch took a version), and good edits still work.
            assert copy.content_hash() == hash_before
            version = await copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                        "Position": [0.0, 1.0, 0.0]}])
            assert version == base + 1
            status, _ = await Http(srv.url, None).get("/healthz")
            assert status == 200
