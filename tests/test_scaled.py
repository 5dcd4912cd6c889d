"""The scaled-out form on loopback, against real PostgreSQL and Redis: ``acs serve`` replicas and
``acs worker`` processes as subprocesses (tests/scaled.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from client_sim.connection import RemoteError
from client_sim.sdk import GameServer
from server.db import JobRow, Preview, SessionRow, open_engine

from .conftest import Http, active_session, new_experience
from .scaled import Topology
from .test_operations import scrape, value


async def _running_job(store, job: str, timeout: float = 60.0) -> JobRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with store() as db:
            row = await db.scalar(select(JobRow).where(JobRow.job == job, JobRow.state == "Running"))
        if row is not None:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {job} job started in {timeout:g} s")


async def test_a_worker_killed_mid_job_is_replaced_and_the_session_charged_once(tmp_path, postgres, redis,
                                                                                astronaut_jpeg):
    db_url = await postgres.create_database()
    key = await new_experience(tmp_path, database_url=db_url, Allowed2DGenerations=3)
    engine, store = open_engine(db_url)
    try:
        async with Topology(tmp_path / "shared", db_url, redis.url, replicas=1, workers=2) as topo:
            url = topo.urls[0]
            async with GameServer(url, key) as gs:
                sid = (await active_session(gs, "p"))["SessionId"]
                token = await gs.CreatePlayerToken("p")
                status, up = await Http(url, token).upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
                assert status == 200, up
                preview = asyncio.create_task(gs.GenerateAvatar2DPreviewAsync({"SessionId": sid,
                                                                               "FileId": up["FileId"]}))
                running = await _running_job(store, "preview")
                victim = next(w for w in topo.workers if running.worker.endswith(f":{w.pid}"))
                survivor = next(w for w in topo.workers if w is not victim)
                healthy = await scrape(url)  # the workers' heartbeats, read from PostgreSQL
                assert value(healthy, "acs_generation_workers") == 2
                assert value(healthy, "acs_jobs_running") == 1
                victim.kill()
                t_kill = time.monotonic()
                result = await asyncio.wait_for(preview, 120)
                recovered_in = time.monotonic() - t_kill
                assert result["PreviewId"].startswith("pre_"), topo.logs()
                assert survivor.alive() and not victim.alive()
                # The other worker took it up once the victim's heartbeat had been silent 2 s.
                assert 1.0 < recovered_in < 60, recovered_in
                assert value(await scrape(url), "acs_generation_workers") == 1  # the victim's heartbeat stopped
                async with store() as db:
                    session = await db.get(SessionRow, sid)
                    previews = (await db.scalars(select(Preview).where(Preview.session_id == sid))).all()
                    leftover = (await db.scalars(select(JobRow))).all()
                assert session.used_2d == 1  # charged once, though two workers started the job
                assert len(previews) == 1
                assert leftover == []  # the server read the result and removed the job's row
    finally:
        await engine.dispose()


async def test_pushes_reach_sockets_on_another_replica_and_wait_for_a_game_server_that_is_away(tmp_path, postgres,
                                                                                                redis):
    from client_sim.sdk import GameClient

    db_url = await postgres.create_database()
    key = await new_experience(tmp_path, database_url=db_url)
    async with Topology(tmp_path / "shared", db_url, redis.url, replicas=2, workers=0) as topo:
        a, b = topo.urls
        on_b = Http(b, key)

        async def next_event(queue: asyncio.Queue, timeout: float = 10.0) -> dict:
            return await asyncio.wait_for(queue.get(), timeout)

        async with GameServer(a, key) as gs:
            ready, ended, player_ended = asyncio.Queue(), asyncio.Queue(), asyncio.Queue()
            gs.conn.on("SessionReady", ready.put_nowait)
            gs.conn.on("SessionEnded", ended.put_nowait)
            client = await GameClient(a, await gs.CreatePlayerToken("p1")).connect()
            client.conn.on("SessionEnded", player_ended.put_nowait)
            # Requested through replica B; the game server and the player are on replica A.
            status, req = await on_b.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "p1"})
            assert status == 200, req
            info = await next_event(ready)
            assert info["RequestId"] == req["RequestId"] and info["PlayerId"] == "p1"
            status, body = await on_b.rpc("EndSession", {"SessionId": info["SessionId"], "Reason": "Exit"})
            assert status == 200, body
            assert (await next_event(ended))["SessionId"] == info["SessionId"]
            assert (await next_event(player_ended))["SessionId"] == info["SessionId"]
            await client.close()

        # No game server connected anywhere: the SessionReady is kept, then delivered to the
        # next game server (here on replica B), once.
        await asyncio.sleep(0.2)
        status, req = await on_b.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": "p2"})
        assert status == 200, req
        await asyncio.sleep(0.5)
        later = GameServer(b, key)
        kept = asyncio.Queue()
        later.conn.on("SessionReady", kept.put_nowait)  # before connecting: the backlog comes at once
        async with later:
            assert (await next_event(kept))["RequestId"] == req["RequestId"]
            another = GameServer(a, key)
            again = asyncio.Queue()
            another.conn.on("SessionReady", again.put_nowait)
            async with another:
                await asyncio.sleep(1.0)
            assert again.empty() and kept.empty()  # delivered once, not to every later game server

        # A game server leaving just as another arrives on the same replica: the newcomer gets
        # the next events at once (the leaver's presence update must not undo the arrival's).
        for i in range(6):
            leaving = await GameServer(a, key).connect()
            arriving, got = GameServer(a, key), asyncio.Queue()
            arriving.conn.on("SessionReady", got.put_nowait)
            if i % 2:
                await asyncio.gather(leaving.close(), arriving.connect())
            else:
                await leaving.close()
                await arriving.connect()
            status, req = await on_b.rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": f"r{i}"})
            assert status == 200, req
            info = await next_event(got, timeout=3.0)
            assert info["RequestId"] == req["RequestId"]
            await on_b.rpc("EndSession", {"SessionId": info["SessionId"], "Reason": "Exit"})
            await arriving.close()


async def test_one_session_pool_and_exact_quotas_across_replicas(tmp_path, postgres, redis, astronaut_jpeg):
    db_url = await postgres.create_database()
    key = await new_experience(tmp_path, database_url=db_url, Allowed2DGenerations=3)
    engine, store = open_engine(db_url)
    try:
        async with Topology(tmp_path / "shared", db_url, redis.url, replicas=2, workers=2,
                            ACS_CAPACITY=2) as topo:
            a, b = (Http(url, key) for url in topo.urls)
            # Six players, asking in turn through replica A and replica B.
            requests = []
            for i in range(6):
                status, body = await (a, b)[i % 2].rpc("RequestAvatarGenerationSessionAsync", {"PlayerId": f"p{i}"})
                assert status == 200, body
                requests.append(body["RequestId"])
            states = [(await (b, a)[i % 2].rpc("GetSessionRequest", {"RequestId": r}))[1]
                      for i, r in enumerate(requests)]
            assert [s["State"] for s in states] == ["Active", "Active", "Queued", "Queued", "Queued", "Queued"]
            assert [s.get("Position") for s in states[2:]] == [0, 1, 2, 3]  # first come, first served
            # Ending a session on one replica hands its slot to the next request, whichever
            # replica that request came through.
            status, body = await b.rpc("EndSession", {"SessionId": states[0]["SessionId"], "Reason": "Exit"})
            assert status == 200, body
            assert (await a.rpc("GetSessionRequest", {"RequestId": requests[2]}))[1]["State"] == "Active"

            # Twenty more at once, through both replicas: capacity is never exceeded.
            answers = await asyncio.gather(*((a, b)[i % 2].rpc("RequestAvatarGenerationSessionAsync",
                                                                {"PlayerId": f"q{i}"}) for i in range(20)))
            assert all(status == 200 for status, _ in answers), answers
            async with store() as db:
                active = (await db.scalars(select(SessionRow).where(SessionRow.ended_at.is_(None)))).all()
            assert len(active) == 2

            # Fifty previews of one session at once, half through each replica: exactly
            # Allowed2DGenerations (3) are made and charged.
            sid = states[1]["SessionId"]
            token = (await a.rpc("CreatePlayerToken", {"PlayerId": "p1"}))[1]["Token"]
            status, up = await Http(topo.urls[1], token).upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
            assert status == 200, up
            answers = await asyncio.gather(*((a, b)[i % 2].rpc("GenerateAvatar2DPreviewAsync",
                                                                {"SessionId": sid, "FileId": up["FileId"]})
                                             for i in range(50)))
            made = [body for status, body in answers if status == 200]
            refused = {body["error"]["code"] for status, body in answers if status != 200}
            assert len(made) == 3, (len(made), refused)
            assert refused == {"Allowed2DGenerationsExceeded"}
            async with store() as db:
                row = await db.get(SessionRow, sid)
                previews = (await db.scalars(select(Preview).where(Preview.session_id == sid))).all()
            assert (row.used_2d, row.reserved, len(previews)) == (3, None, 3)
    finally:
        await engine.dispose()


async def test_the_whole_flow_with_the_game_server_on_one_replica_and_the_client_on_another(tmp_path, postgres,
                                                                                            redis):
    from client_sim.flow import run_player_flow

    db_url = await postgres.create_database()
    key = await new_experience(tmp_path, database_url=db_url)
    async with Topology(tmp_path / "shared", db_url, redis.url, replicas=2, workers=2) as topo:
        a, b = topo.urls
        result = await asyncio.wait_for(run_player_flow(a, key, "p", client_url=b), 300)
        assert result.publish["Result"] == "Success", (result.publish, topo.logs())
        # The edit each side made reached the other side's copy through the other replica.
        assert result.hashes["server_copy"] == result.hashes["client_copy"]
        assert result.glb[:4] == b"glTF"


async def test_a_replica_killed_its_client_reconnects_to_the_other_converges_and_loses_nothing_acked(
        tmp_path, postgres, redis, astronaut_jpeg):
    from client_sim.sdk import GameClient

    from .conftest import generate

    db_url = await postgres.create_database()
    key = await new_experience(tmp_path, database_url=db_url)
    async with Topology(tmp_path / "shared", db_url, redis.url, replicas=2, workers=1) as topo:
        a, b = topo.urls
        async with GameServer(a, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            client = await GameClient(b, await gs.CreatePlayerToken("p")).connect()
            _, gen_id = await generate(gs, a, client.conn.credential, astronaut_jpeg, sid)
            server_copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            client_copy = await client.LoadGeneratedAvatarAsync(gen_id)
            head = client_copy.avatar.parts["Head"]
            vids = head.GetVertices()[:10]
            acked = []
            for i, vid in enumerate(vids):  # edits acknowledged through replica B
                x, y, z = head.GetPosition(vid)
                acked.append(await client_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                                      "Position": [x, y + 0.002 * (i + 1), z]}]))
            await server_copy.wait_version(acked[-1])
            acked_hash = client_copy.content_hash()

            topo.replicas[1].kill()  # kill -9: no goodbye to anyone
            await client.reconnect(a)  # the client's retry lands on replica A
            assert client_copy.version == acked[-1] and client_copy.content_hash() == acked_hash
            # Both sides go on editing through replica A and converge.
            v1 = await server_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vids[0],
                                          "Position": [0.0, 1.0, 0.0]}])
            v2 = await client_copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vids[1],
                                          "Position": [0.0, 1.1, 0.0]}])
            await asyncio.gather(server_copy.wait_version(max(v1, v2)), client_copy.wait_version(max(v1, v2)))
            assert server_copy.content_hash() == client_copy.content_hash()
            assert max(v1, v2) == acked[-1] + 2  # nothing acknowledged was lost or applied twice
            fresh = await GameServer(a, key).connect()
            try:
                again = await fresh.LoadGeneratedAvatarAsync(gen_id)
                assert again.content_hash() == server_copy.content_hash()
            finally:
                await fresh.close()
            await client.close()


# -- convergence across replicas, property-tested ------------------------------------------------


@pytest.fixture(scope="module")
async def shared_document(tmp_path_factory, postgres, redis):
    """Two replicas, one worker, and a generated avatar whose document the examples edit."""
    from tests.faces import jpeg, real_faces

    from .conftest import generate

    tmp = tmp_path_factory.mktemp("scaled-doc")
    db_url = await postgres.create_database()
    key = await new_experience(tmp, database_url=db_url, Allowed3DGenerations=1)
    async with Topology(tmp / "shared", db_url, redis.url, replicas=2, workers=1) as topo:
        async with GameServer(topo.urls[0], key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            token = await gs.CreatePlayerToken("p", 3600)
            _, gen_id = await generate(gs, topo.urls[0], token, jpeg(real_faces()["astronaut"]), sid)
        yield topo, key, token, gen_id


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_concurrent_edits_converge_across_two_replicas(shared_document, data):
    """Game server and game client edit at once, each through a replica, drop their sockets and come
    back through either replica; once quiet, both copies and a fresh load from each replica agree."""
    from client_sim.sdk import GameClient

    topo, key, token, gen_id = shared_document
    urls = topo.urls
    gs = await GameServer(urls[data.draw(st.integers(0, 1), label="server replica")], key).connect()
    client = await GameClient(urls[data.draw(st.integers(0, 1), label="client replica")], token).connect()
    try:
        copies = {"server": await gs.LoadGeneratedAvatarAsync(gen_id),
                  "client": await client.LoadGeneratedAvatarAsync(gen_id)}
        sides = {"server": gs, "client": client}
        vids = copies["server"].avatar.parts["Head"].GetVertices()[:50]
        for _ in range(data.draw(st.integers(3, 10), label="rounds")):
            sends = []
            for name, copy in copies.items():
                for _ in range(data.draw(st.integers(0, 3), label=f"{name} edits")):
                    if data.draw(st.booleans(), label="paint"):
                        x, y = data.draw(st.integers(0, 200)), data.draw(st.integers(0, 200))
                        rgb = [data.draw(st.integers(0, 10)) / 10 for _ in range(3)]
                        ops = [{"op": "DrawRectangle", "Image": "Head", "Position": [x, y], "Size": [4, 4],
                                "Color": rgb, "Transparency": 0.0}]
                    else:
                        vid = data.draw(st.sampled_from(vids))
                        ops = [{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                "Position": [data.draw(st.integers(-100, 100)) / 1000, 1.5, 0.1]}]
                    sends.append(copy.edit(ops))
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
            assert not [o for o in outcomes if isinstance(o, RemoteError)], outcomes  # valid edits are never refused
            for name, side in sides.items():
                if data.draw(st.booleans(), label=f"{name} drops its socket"):
                    side.conn.drop()
                    await side.reconnect(urls[data.draw(st.integers(0, 1), label=f"{name} comes back to")])
        for side in sides.values():  # settle: whatever is still unacknowledged is resent
            await side.reconnect()
        top = max(c.version for c in copies.values())
        await asyncio.gather(*(c.wait_version(top, timeout=20) for c in copies.values()))
        hashes = {name: c.content_hash() for name, c in copies.items()}
        for url in urls:
            async with GameServer(url, key) as fresh:
                hashes[url] = (await fresh.LoadGeneratedAvatarAsync(gen_id)).content_hash()
        assert len(set(hashes.values())) == 1, hashes
    finally:
        await gs.close()
        await client.close()


async def test_revocations_and_batch_quotas_hold_across_replicas(tmp_path, postgres, redis, astronaut_jpeg):
    import base64

    from client_sim.sdk import GameClient

    db_url = await postgres.create_database()
    key = await new_experience(tmp_path, database_url=db_url, BatchPhotosPerHour=3)
    async with Topology(tmp_path / "shared", db_url, redis.url, replicas=2, workers=1) as topo:
        a, b = topo.urls
        # A revocation made through replica A closes the player's socket on replica B, and B
        # refuses the token from then on.
        token = (await Http(a, key).rpc("CreatePlayerToken", {"PlayerId": "p"}))[1]["Token"]
        client = await GameClient(b, token).connect()
        assert await client.conn.call("GetValidationRules")
        status, body = await Http(a, key).rpc("RevokePlayerTokens", {"PlayerId": "p"})
        assert status == 200, body
        deadline = time.monotonic() + 10
        with pytest.raises(ConnectionError):  # the socket on replica B is closed by the server
            while time.monotonic() < deadline:
                await asyncio.wait_for(client.conn.call("GetValidationRules"), 5)
                await asyncio.sleep(0.05)
        await client.close()
        status, body = await Http(b, token).rpc("GetValidationRules", {})
        assert status == 401 and body["error"]["code"] == "TokenRevoked"

        # Two batches of two at once, one through each replica, against a quota of three per hour:
        # one is made, the other refused whole.
        photo = base64.b64encode(astronaut_jpeg).decode()
        answers = await asyncio.gather(*(Http(url, key).rpc("GenerateAvatar2DPreviewBatch", {"Photos": [photo] * 2})
                                         for url in (a, b)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 429], answers
        refused = next(body for status, body in answers if status == 429)
        assert refused["error"]["code"] == "BatchQuotaExceeded"
