"""Fair workers, batch and upload quotas, queue cap, prompt expiry, idempotent end, token
revocation, private data files, retaken snapshots (issue 9 items 4, 5 and 7)."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest

from client_sim.connection import Connection, RemoteError
from client_sim.sdk import GameServer
from server.adapters.local.jobs import ProcessPoolJobs
from server.core.fair import FairQueue
from server.db import EditSnapshot
from server.web.keys import SERVICE

from .conftest import Http, active_session, generate, new_experience, running_server


def test_fair_queue_takes_turns_between_owners_and_keeps_each_owner_in_order():
    q = FairQueue()
    for i in range(5):
        q.push("batch", f"b{i}")
    q.push("session", "s0")
    q.push("session", "s1")
    assert [q.pop() for _ in range(4)] == ["b0", "s0", "b1", "s1"]
    assert q.remove("batch", "b3") and not q.remove("batch", "zz")
    assert [q.pop() for _ in range(len(q))] == ["b2", "b4"]


async def test_a_big_batch_does_not_hold_up_another_owners_job():
    order: list[str] = []
    gate = threading.Event()

    def job(name: str) -> str:
        gate.wait(5)
        order.append(name)
        return name

    with ThreadPoolExecutor(1) as executor:
        pool = ProcessPoolJobs(1, executor=executor, jobs={"job": job})
        batch = [asyncio.create_task(pool.run("job", f"b{i}", owner="exp-a/batch")) for i in range(20)]
        await asyncio.sleep(0.05)
        other = asyncio.create_task(pool.run("job", "preview", owner="session-of-b"))
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*batch, other)
    # Behind the running batch job it waits for at most one job of each other owner
    # (turns alternate), not for the whole batch.
    assert order.index("preview") <= 2, order


async def test_batch_previews_have_an_hourly_quota_per_experience(tmp_path, executor, astronaut_jpeg, database_url):
    key = await new_experience(tmp_path, BatchPhotosPerHour=3, database_url=database_url)
    photo, junk = base64.b64encode(astronaut_jpeg).decode(), base64.b64encode(b"not a photo").decode()
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
        http = Http(srv.url, key)
        status, out = await http.rpc("GenerateAvatar2DPreviewBatch", {"Photos": [photo, junk]})
        assert status == 200 and "PreviewId" in out["Results"][0] and "error" in out["Results"][1]
        # Two left (the refused photo was not counted): a batch of three is refused whole, before any work.
        t = time.perf_counter()
        status, out = await http.rpc("GenerateAvatar2DPreviewBatch", {"Photos": [photo] * 3})
        assert time.perf_counter() - t < 1.0
        assert status == 429 and out["error"]["code"] == "BatchQuotaExceeded"
        assert "2 are left" in out["error"]["message"]
        status, out = await http.rpc("GenerateAvatar2DPreviewBatch", {"Photos": [photo] * 2})
        assert status == 200 and all("PreviewId" in r for r in out["Results"])
        status, out = await http.rpc("GenerateAvatar2DPreviewBatch", {"Photos": [photo]})
        assert status == 429


async def test_uploads_per_session_are_capped_before_any_work(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, uploads_per_session=2,
                              upload_bytes_per_session=3 * len(astronaut_jpeg)) as srv:
        gs = await GameServer(srv.url, key).connect()
        sid = (await active_session(gs, "p"))["SessionId"]
        token = Http(srv.url, await gs.CreatePlayerToken("p"))
        assert (await token.upload("/v1/files", b"junk", {"SessionId": sid}))[0] == 415  # refused: not counted
        for _ in range(2):
            assert (await token.upload("/v1/files", astronaut_jpeg, {"SessionId": sid}))[0] == 200
        status, body = await token.upload("/v1/files", b"junk", {"SessionId": sid})  # no room: not even probed
        assert status == 429 and body["error"]["code"] == "TooManyUploads"

        sid2 = (await active_session(gs, "q"))["SessionId"]
        other = Http(srv.url, await gs.CreatePlayerToken("q"))
        big = astronaut_jpeg + b"\0" * (2 * len(astronaut_jpeg))  # a JPEG with trailing bytes
        assert (await other.upload("/v1/files", big, {"SessionId": sid2}))[0] == 200
        status, body = await other.upload("/v1/files", astronaut_jpeg, {"SessionId": sid2})
        assert status == 413 and body["error"]["code"] == "UploadQuotaExceeded"
        await gs.close()


async def test_a_timed_out_selfie_prompt_accepts_no_late_upload(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        gs = await GameServer(srv.url, key).connect()
        sid = (await active_session(gs, "p"))["SessionId"]
        token = await gs.CreatePlayerToken("p")
        prompts: list[dict] = []
        async with Connection(srv.url, token) as player:  # online, but never answers
            player.on("PromptSelectImage", prompts.append)
            with pytest.raises(RemoteError) as err:
                await gs.PromptSelectAvatarGenerationImageAsync(sid, timeout=0.5)
            assert err.value.code == "Timeout"
            status, body = await Http(srv.url, token).upload(prompts[0]["UploadUrl"], astronaut_jpeg)
        assert status == 409 and body["error"]["code"] == "FileNotPending"
        await gs.close()


async def test_end_session_is_idempotent_and_the_queue_per_experience_is_capped(tmp_path, executor, database_url):
    key = await new_experience(tmp_path, MaxQueuedRequests=2, database_url=database_url)
    async with running_server(tmp_path, executor, capacity=1, database_url=database_url) as srv:
        http = Http(srv.url, key)
        first = (await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "a"}))[1]
        for player in ("b", "c"):
            assert (await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": player}))[0] == 200
        status, body = await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "d"})
        assert status == 429 and body["error"]["code"] == "QueueFull"

        sid = (await http.rpc("GetSessionRequest", {"RequestId": first["RequestId"]}))[1]["SessionId"]
        assert (await http.rpc("EndSession", {"SessionId": sid, "Reason": "Exit"})) == \
            (200, {"SessionId": sid, "Reason": "Exit", "AlreadyEnded": False})
        assert (await http.rpc("EndSession", {"SessionId": sid, "Reason": "Exit"})) == \
            (200, {"SessionId": sid, "Reason": "Exit", "AlreadyEnded": True})
        # A slot freed: the queue has room again.
        assert (await http.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "d"}))[0] == 200


async def test_revoked_player_tokens_are_refused_and_their_sockets_closed(tmp_path, executor, database_url):
    key = await new_experience(tmp_path, database_url=database_url)
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
        http = Http(srv.url, key)
        token = (await http.rpc("CreatePlayerToken", {"PlayerId": "p"}))[1]["Token"]
        player = await Connection(srv.url, token).connect()
        assert await player.call("GetValidationRules", {})
        _, out = await http.rpc("RevokePlayerTokens", {"PlayerId": "p"})
        assert out["ClosedConnections"] == 1
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(player.call("GetValidationRules", {}), 5)
        status, body = await Http(srv.url, token).rpc("GetValidationRules", {})
        assert status == 401 and body["error"]["code"] == "TokenRevoked"
        fresh = (await http.rpc("CreatePlayerToken", {"PlayerId": "p"}))[1]["Token"]
        assert (await Http(srv.url, fresh).rpc("GetValidationRules", {}))[0] == 200
    async with running_server(tmp_path, executor, database_url=database_url) as srv:  # a restart forgets nothing
        assert (await Http(srv.url, token).rpc("GetValidationRules", {}))[0] == 401
        assert (await Http(srv.url, fresh).rpc("GetValidationRules", {}))[0] == 200


async def test_the_data_directory_and_database_are_private(tmp_path, executor):
    data = tmp_path / "data"
    await new_experience(data)
    async with running_server(data, executor) as srv:
        async with aiohttp.ClientSession() as s, s.get(f"{srv.url}/healthz") as r:
            assert r.status == 200
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        for name in ("acs.db", "acs.db-wal", "secret.key"):
            if (data / name).exists():
                assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600, name


async def test_a_snapshot_lost_before_it_was_stored_is_taken_on_the_next_open(tmp_path, executor, astronaut_jpeg,
                                                                           monkeypatch, database_url):
    import server.services.documents as documents

    monkeypatch.setattr(documents, "SNAPSHOT_EVERY", 4)
    key = await new_experience(tmp_path, database_url=database_url)
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
        gs = await GameServer(srv.url, key).connect()
        sid = (await active_session(gs, "p"))["SessionId"]
        _, gen_id = await generate(gs, srv.url, await gs.CreatePlayerToken("p"), astronaut_jpeg, sid)
        copy = await gs.LoadGeneratedAvatarAsync(gen_id)
        # The server "dies" before the snapshot due at version 4 is stored.
        monkeypatch.setattr(documents.Documents, "_snapshot_later", lambda *a: None)
        for i in range(5):
            head = copy.avatar.parts["Head"]
            vid = head.GetVertices()[i]
            x, y, z = head.GetPosition(vid)
            await copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [x, y + 0.01, z]}])
        await gs.close()
    monkeypatch.undo()
    monkeypatch.setattr(documents, "SNAPSHOT_EVERY", 4)
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
        _, bundle = await Http(srv.url, key).rpc("LoadGeneratedAvatarAsync", {"GenerationId": gen_id})
        assert bundle["Version"] == 5
        svc = srv.app[SERVICE]
        for _ in range(50):
            async with svc.db() as db:
                snap = await db.get(EditSnapshot, (gen_id, 5))
            if snap is not None:
                break
            await asyncio.sleep(0.1)
        assert snap is not None


async def test_a_cancelled_job_keeps_its_worker_until_it_really_ends():
    started, finish = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow() -> None:
        started.set()
        finish.wait(5)
        ran.append("slow")

    def quick() -> None:
        ran.append("quick")

    with ThreadPoolExecutor(2) as executor:  # two threads, but the pool grants one slot
        pool = ProcessPoolJobs(1, executor=executor, jobs={"slow": slow, "quick": quick})
        first = asyncio.create_task(pool.run("slow", owner="a"))
        await asyncio.to_thread(started.wait, 5)
        first.cancel()  # the caller gives up; the job runs on
        second = asyncio.create_task(pool.run("quick", owner="b"))
        await asyncio.sleep(0.2)
        assert ran == [] and not second.done()  # the slot is still the running job's
        finish.set()
        await asyncio.wait_for(second, 5)
        assert ran == ["slow", "quick"]


async def test_concurrent_uploads_cannot_all_pass_the_room_check(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, uploads_per_session=2) as srv:
        gs = await GameServer(srv.url, key).connect()
        sid = (await active_session(gs, "p"))["SessionId"]
        player = Http(srv.url, await gs.CreatePlayerToken("p"))
        answers = await asyncio.gather(*(player.upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
                                         for _ in range(8)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 200] + [429] * 6, statuses
        await gs.close()


async def test_a_player_may_hold_only_so_many_sockets(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, max_sockets_per_player=2) as srv:
        http = Http(srv.url, key)
        token = (await http.rpc("CreatePlayerToken", {"PlayerId": "p"}))[1]["Token"]
        first, second = await Connection(srv.url, token).connect(), await Connection(srv.url, token).connect()
        with pytest.raises(Exception) as err:
            await Connection(srv.url, token).connect()
        assert "429" in str(err.value)
        await first.close()
        await asyncio.sleep(0.2)
        third = await Connection(srv.url, token).connect()  # a freed place can be taken again
        await third.close()
        await second.close()
