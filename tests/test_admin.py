"""``acs admin`` for a studio's operator: settings a running server sees, key rotation with a grace
period, token revocation, the pool at a glance and erasing a player's data (blobs shared by content
with another player kept)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import pytest
from sqlalchemy import func, select

import server.services.service as service_module
from client_sim.connection import Connection, RemoteError
from client_sim.sdk import GameServer
from schemas.errors import Unauthorized
from server.admin import create_experience
from server.cli import main
from server.config import Config
from server.core.auth import api_key_valid_until
from server.db import (
    Base,
    EditOp,
    EditSnapshot,
    FileRow,
    Generation,
    Preview,
    Published,
    TokenRevocation,
)
from server.web.keys import SERVICE

from .conftest import Http, active_session, generate, running_server
from .test_cli import acs


async def run_acs(*args, data_dir) -> tuple[int, dict | None, str]:
    """``acs admin ARGS`` in a process of its own (off the event loop the server runs on):
    (exit status, its JSON or None, stderr)."""
    out = await asyncio.to_thread(acs, "admin", *args, data_dir=data_dir)
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else None, out.stderr


async def experience(data_dir, name="game", **settings) -> tuple[str, str]:
    return await create_experience(Config(data_dir=data_dir), name, settings)


async def eventually(check, timeout: float = 10.0):
    """Poll ``check()`` (async, truthy when done) until it holds; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def test_api_key_validity_takes_the_clock_from_the_caller():
    hashes = {"current": "c" * 64, "previous": "p" * 64, "previous_until": 100.0}
    assert api_key_valid_until("c" * 64, **hashes, now=1e12) == float("inf")
    assert api_key_valid_until("p" * 64, **hashes, now=99.9) == 100.0
    with pytest.raises(Unauthorized, match="grace period is over"):
        api_key_valid_until("p" * 64, **hashes, now=100.0)
    with pytest.raises(Unauthorized, match="Unknown API key"):
        api_key_valid_until("x" * 64, **hashes, now=0.0)


def test_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACS_DATA_DIR", str(tmp_path))
    exp_id, _key = asyncio.run(experience(tmp_path))
    (tmp_path / "blobs").mkdir()
    bad = [
        ["show-experience", "nope"],
        ["update-experience", "nope", "--set", "QueueShare=2"],
        ["update-experience", exp_id, "--set", "Allowed2DGenerations=-1"],
        ["update-experience", exp_id, "--set", "Allowed2DGenerations=true"],
        ["update-experience", exp_id, "--set", "QueueShare=NaN"],
        ["update-experience", exp_id, "--set", "NoSuchSetting=1"],
        ["update-experience", exp_id, "--unset", "NoSuchSetting"],
        ["update-experience", exp_id, "--set", "QueueShare"],
        ["update-experience", exp_id, "--set", "CreationTokens=just-one"],
        ["update-experience", exp_id],
        ["rotate-key", exp_id, "--grace", "-5"],
        ["rotate-key", "nope"],
        ["revoke-tokens", "nope", "p"],
        ["status", "nope"],
        ["erase-player", "nope", "p", "--yes"],
    ]
    for argv in bad:
        assert main(["admin", *argv]) == 2, argv
        out = capsys.readouterr()
        assert out.out == "" and out.err.count("\n") == 1 and out.err.startswith(f"acs admin {argv[0]}: "), out
    assert json.loads(_run(capsys, "show-experience", "game"))["settings"] == {}  # nothing changed


def _run(capsys, *argv) -> str:
    assert main(["admin", *argv]) == 0
    return capsys.readouterr().out


async def test_updated_settings_reach_a_running_server(tmp_path, executor, astronaut_jpeg):
    exp_id, key = await experience(tmp_path, Allowed2DGenerations=3)
    async with running_server(tmp_path, executor) as srv, GameServer(srv.url, key) as gs:
        status, shown, err = await run_acs(
            "update-experience", exp_id, "--set", "Allowed2DGenerations=0", "--set", "QueueShare=2.5",
            "--set", 'CreationTokens=["studio-token"]', "--set", "DefaultStyle=anime_character",
            data_dir=tmp_path)
        assert status == 0, err
        assert shown["settings"]["QueueShare"] == 2.5 and shown["settings"]["Allowed2DGenerations"] == 0
        assert shown["settings"]["CreationTokens"][0].startswith("sha256:")
        assert b"studio-token" not in (tmp_path / "acs.db").read_bytes()

        # The server, running all along, gives the next session the new allowance and holds it to it.
        info = await active_session(gs, "p")
        assert info["Allowed2DGenerations"] == 0
        token = await gs.CreatePlayerToken("p")
        _, up = await Http(srv.url, token).upload("/v1/files", astronaut_jpeg, {"SessionId": info["SessionId"]})
        with pytest.raises(RemoteError) as refused:
            await gs.GenerateAvatar2DPreviewAsync({"SessionId": info["SessionId"], "FileId": up["FileId"]})
        assert refused.value.code == "Allowed2DGenerationsExceeded"

        status, shown, _ = await run_acs("update-experience", "game", "--unset", "Allowed2DGenerations",
                                         data_dir=tmp_path)
        assert status == 0 and "Allowed2DGenerations" not in shown["settings"]
        await gs.EndSession(info["SessionId"])
        assert (await active_session(gs, "p"))["Allowed2DGenerations"] == srv.config.allowed_2d


async def test_a_rotated_key_works_through_its_grace_period_then_is_refused(tmp_path, executor, monkeypatch):
    monkeypatch.setattr(service_module, "API_KEY_RECHECK", 0.3)
    exp_id, old = await experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        assert (await Http(srv.url, old).rpc("GetValidationRules"))[0] == 200  # known to the server now
        status, rotated, err = await run_acs("rotate-key", exp_id, "--grace", "1.5", data_dir=tmp_path)
        assert status == 0, err
        new = rotated["key"]
        assert new.startswith("acs_") and new != old and new.encode() not in (tmp_path / "acs.db").read_bytes()
        assert (await Http(srv.url, new).rpc("GetValidationRules"))[0] == 200
        await asyncio.sleep(0.4)  # past the server's recheck: it has read the rotation
        assert time.time() < rotated["previous_key_until"]
        assert (await Http(srv.url, old).rpc("GetValidationRules"))[0] == 200  # in its grace period

        async def old_refused():
            return (await Http(srv.url, old).rpc("GetValidationRules"))[0] == 401

        assert await eventually(old_refused, 5)
        assert time.time() >= rotated["previous_key_until"]
        status, body = await Http(srv.url, old).rpc("GetValidationRules")
        assert status == 401 and body["error"]["code"] == "InvalidApiKey"
        with pytest.raises(Exception):
            await GameServer(srv.url, old).connect()
        assert (await Http(srv.url, new).rpc("GetValidationRules"))[0] == 200

        # No grace: the key just replaced is refused at once.
        status, again, _ = await run_acs("rotate-key", exp_id, "--grace", "0", data_dir=tmp_path)
        assert status == 0
        await asyncio.sleep(0.4)
        assert (await Http(srv.url, new).rpc("GetValidationRules"))[0] == 401
        assert (await Http(srv.url, again["key"]).rpc("GetValidationRules"))[0] == 200


async def test_tokens_revoked_from_the_cli_are_refused_by_a_running_server(tmp_path, executor, monkeypatch):
    monkeypatch.setattr(service_module, "REVOCATION_POLL", 0.2)
    exp_id, key = await experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        http = Http(srv.url, key)
        token = (await http.rpc("CreatePlayerToken", {"PlayerId": "p"}))[1]["Token"]
        other = (await http.rpc("CreatePlayerToken", {"PlayerId": "q"}))[1]["Token"]
        player = await Connection(srv.url, token).connect()
        assert await player.call("GetValidationRules", {})

        status, out, err = await run_acs("revoke-tokens", exp_id, "p", data_dir=tmp_path)
        assert status == 0, err
        assert out["player_id"] == "p" and out["known_player"] is True

        async def refused():
            return (await Http(srv.url, token).rpc("GetValidationRules"))[0] == 401

        assert await eventually(refused, 5)
        status, body = await Http(srv.url, token).rpc("GetValidationRules")
        assert body["error"]["code"] == "TokenRevoked"
        with pytest.raises(ConnectionError):  # its open socket was closed too
            await asyncio.wait_for(player.call("GetValidationRules", {}), 5)
        assert (await Http(srv.url, other).rpc("GetValidationRules"))[0] == 200  # another player's stays
        fresh = (await http.rpc("CreatePlayerToken", {"PlayerId": "p"}))[1]["Token"]
        assert (await Http(srv.url, fresh).rpc("GetValidationRules"))[0] == 200


async def test_status_shows_the_pool_and_a_player_in_a_session_is_not_erased(tmp_path, executor, database_url,
                                                                             monkeypatch):
    if database_url:
        monkeypatch.setenv("ACS_DATABASE_URL", database_url)
    config = Config(data_dir=tmp_path, database_url=database_url)
    exp_id, key = await create_experience(config, "game", {})
    _other, other_key = await create_experience(config, "other", {})
    async with running_server(tmp_path, executor, database_url=database_url, capacity=1) as srv:
        async with GameServer(srv.url, key) as gs, GameServer(srv.url, other_key) as other:
            info = await active_session(gs, "a")
            _, wait = await gs.RequestAvatarGenerationSessionAsync("b", lambda _info: None)
            await other.RequestAvatarGenerationSessionAsync("stranger", lambda _info: None)

            status, pool, err = await run_acs("status", exp_id, data_dir=tmp_path)
            assert status == 0, err
            assert [s["PlayerId"] for s in pool["Sessions"]] == ["a"]
            assert pool["Sessions"][0]["SessionId"] == info["SessionId"]
            assert [r["PlayerId"] for r in pool["Requests"]] == ["b"]
            assert pool["ActiveSessions"] == 1 and pool["QueuedRequests"] == 2

            for player, what in (("a", "active session"), ("b", "queued session request")):
                status, out, err = await run_acs("erase-player", exp_id, player, "--yes", data_dir=tmp_path)
                assert status == 1 and out is None and what in err and err.count("\n") == 1, err
            async with srv.app[SERVICE].db() as db:
                assert await db.scalar(select(func.count()).select_from(TokenRevocation)) == 0
            assert (await Http(srv.url, key).rpc("GetSessionRequest", {"RequestId": info["RequestId"]}))[1][
                "State"] == "Active"

            # Once the session is over, the player can be erased (b's request takes the slot).
            await gs.EndSession(info["SessionId"])
            status, report, err = await run_acs("erase-player", exp_id, "a", "--yes", data_dir=tmp_path)
            assert status == 0, err
            assert report["deleted"]["sessions"] == 1 and report["deleted"]["session_requests"] == 1
            assert report["ids"]["sessions"] == [info["SessionId"]]
            assert await _player_rows(srv.app[SERVICE], exp_id, "a") == 0
            status, pool, _ = await run_acs("status", exp_id, data_dir=tmp_path)
            assert [s["PlayerId"] for s in pool["Sessions"]] == ["b"] and pool["Requests"] == []


async def test_erase_player_deletes_every_row_and_blob_of_theirs_and_keeps_shared_ones(
        tmp_path, executor, astronaut_jpeg, monkeypatch):
    import server.services.documents as documents

    monkeypatch.setattr(documents, "SNAPSHOT_EVERY", 2)
    monkeypatch.setattr(service_module, "REVOCATION_POLL", 0.2)
    exp_id, key = await experience(tmp_path, InputCaching=True)
    async with running_server(tmp_path, executor) as srv:
        svc = srv.app[SERVICE]
        async with GameServer(srv.url, key) as gs:
            sid_a = (await active_session(gs, "a"))["SessionId"]
            token_a = await gs.CreatePlayerToken("a")
            preview, gen_id = await generate(gs, srv.url, token_a, astronaut_jpeg, sid_a)
            copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            head = copy.avatar.parts["Head"]
            for vid in head.GetVertices()[:2]:
                x, y, z = head.GetPosition(vid)
                await copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [x, y + 0.01, z]}])
            await gs.EndSession(sid_a)
            # Player b uploads the very same photo: one selfie blob, named by both players' rows.
            sid_b = (await active_session(gs, "b"))["SessionId"]
            token_b = await gs.CreatePlayerToken("b")
            status, up_b = await Http(srv.url, token_b).upload("/v1/files", astronaut_jpeg, {"SessionId": sid_b})
            assert status == 200, up_b

        async def snapshot_stored():
            async with svc.db() as db:
                return await db.get(EditSnapshot, (gen_id, 2))

        assert await eventually(snapshot_stored)
        async with svc.db.begin() as db:  # a published bundle of a's (the publish flow is tested elsewhere)
            gen = await db.get(Generation, gen_id)
            db.add(Published(bundle_id="bnd_a", outfit_id="out_a", experience_id=exp_id, player_id="a",
                             generation_id=gen_id, name="mine", glb_sha=gen.glb_sha,
                             preview_sha=(await db.get(Preview, preview["PreviewId"])).png_sha,
                             description={}, content_hash="0" * 64, created_at=time.time()))
        selfie = hashlib.sha256(astronaut_jpeg).hexdigest()
        a_blobs = await _player_blobs(svc, exp_id, "a", gen_id)
        assert selfie in a_blobs and len(a_blobs) >= 6 and all(svc.blobs.path(s).exists() for s in a_blobs)

        # Without --yes: what would go, and nothing goes.
        status, dry, err = await run_acs("erase-player", exp_id, "a", data_dir=tmp_path)
        assert status == 0, err
        assert dry["erased"] is False and dry["deleted"]["generations"] == 1
        assert await _player_rows(svc, exp_id, "a") > 0 and all(svc.blobs.path(s).exists() for s in a_blobs)

        status, report, err = await run_acs("erase-player", exp_id, "a", "--yes", data_dir=tmp_path)
        assert status == 0, err
        assert report["erased"] is True and {k: v for k, v in report["deleted"].items() if k != "blobs"} == {
            **{k: v for k, v in dry["deleted"].items() if k != "blobs"}}
        deleted = report["deleted"]
        assert (deleted["files"], deleted["previews"], deleted["generations"], deleted["published"],
                deleted["sessions"], deleted["session_requests"], deleted["players"]) == (1, 1, 1, 1, 1, 1, 1)
        assert deleted["edit_batches"] == 2 and deleted["edit_snapshots"] == 1
        assert report["ids"]["generations"] == [gen_id] and report["ids"]["bundles"] == ["bnd_a"]
        assert report["ids"]["previews"] == [preview["PreviewId"]] and report["ids"]["sessions"] == [sid_a]
        assert set(report["ids"]["blobs"]) == a_blobs - {selfie} and report["blobs_kept_shared"] == 1

        # Nothing of a's is left: no row, no edit document, no blob file but the one b's row names.
        assert await _player_rows(svc, exp_id, "a") == 0
        async with svc.db() as db:
            for model in (EditOp, EditSnapshot):
                assert await db.scalar(select(func.count()).select_from(model)
                                       .where(model.generation_id == gen_id)) == 0
        assert [s for s in a_blobs if svc.blobs.path(s).exists()] == [selfie]
        status, _ = await Http(srv.url, key).get(f"/v1/previews/{preview['PreviewId']}.png")
        assert status == 404

        # b's data is whole: its selfie row and blob, its session, its player row.
        async with svc.db() as db:
            f = await db.get(FileRow, up_b["FileId"])
        assert f.state == "Uploaded" and f.sha256 == selfie and svc.blobs.path(selfie).exists()
        assert await _player_rows(svc, exp_id, "b") == 4  # player, request, session, file

        # a's tokens went with the data.
        async def a_refused():
            return (await Http(srv.url, token_a).rpc("GetValidationRules"))[0] == 401

        assert await eventually(a_refused, 5)
        assert (await Http(srv.url, token_b).rpc("GetValidationRules"))[0] == 200

        # Again: nothing left to erase.
        status, again, _ = await run_acs("erase-player", exp_id, "a", "--yes", data_dir=tmp_path)
        assert status == 0 and not any(again["deleted"].values())


async def _player_rows(svc, exp_id: str, player_id: str) -> int:
    """Rows naming the player in every table with a player_id column (revocations aside)."""
    total = 0
    async with svc.db() as db:
        for table in Base.metadata.sorted_tables:
            if "player_id" in table.c and table.name != TokenRevocation.__tablename__:
                total += await db.scalar(select(func.count()).select_from(table).where(
                    table.c.experience_id == exp_id, table.c.player_id == player_id))
    return total


async def _player_blobs(svc, exp_id: str, player_id: str, gen_id: str) -> set[str]:
    async with svc.db() as db:
        def mine(model):
            return (model.experience_id == exp_id) & (model.player_id == player_id)

        shas = set((await db.scalars(select(FileRow.sha256).where(mine(FileRow)))).all())
        for p in (await db.scalars(select(Preview).where(mine(Preview)))).all():
            shas |= {p.png_sha, p.thumb_sha, p.features_sha}
        for g in (await db.scalars(select(Generation).where(mine(Generation)))).all():
            shas |= {g.document_sha, g.glb_sha}
        shas |= set((await db.scalars(select(EditSnapshot.document_sha)
                                      .where(EditSnapshot.generation_id == gen_id))).all())
    return {s for s in shas if s}
