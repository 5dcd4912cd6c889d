"""Session ends over the network: SessionTime expiry, player disconnect, and the load generator."""

from __future__ import annotations

import asyncio

from client_sim.sdk import GameClient, GameServer
from client_sim.sim import run_sim

from .conftest import new_experience, running_server


async def _ended_reasons(gs: GameServer) -> asyncio.Queue:
    reasons: asyncio.Queue = asyncio.Queue()
    gs.conn.on("SessionEnded", lambda d: reasons.put_nowait((d["PlayerId"], d["Reason"])))
    return reasons


async def test_session_time_expiry_hands_the_slot_on(tmp_path, executor, database_url):
    # A SessionTime long enough to ask twice on a busy machine.
    key = await new_experience(tmp_path, SessionTime=1.5, database_url=database_url)
    async with running_server(tmp_path, executor, capacity=1, database_url=database_url) as srv:
        async with GameServer(srv.url, key) as gs:
            reasons = await _ended_reasons(gs)
            ready_a, ready_b = asyncio.Future(), asyncio.Future()
            await gs.RequestAvatarGenerationSessionAsync("a", ready_a.set_result)
            _, wait_b = await gs.RequestAvatarGenerationSessionAsync("b", ready_b.set_result)
            await asyncio.wait_for(ready_a, 5)
            assert 0 < wait_b <= 1.5 + 1e-6
            assert await asyncio.wait_for(reasons.get(), 5) == ("a", "TimeExpired")
            info_b = await asyncio.wait_for(ready_b, 5)
            assert info_b["PlayerId"] == "b"


async def test_player_disconnect_past_grace_ends_the_session(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, capacity=1, disconnect_grace=0.3) as srv:
        async with GameServer(srv.url, key) as gs:
            reasons = await _ended_reasons(gs)
            client = await GameClient(srv.url, await gs.CreatePlayerToken("p")).connect()
            ready = asyncio.Future()
            await gs.RequestAvatarGenerationSessionAsync("p", ready.set_result)
            await asyncio.wait_for(ready, 5)
            # A reconnect inside the grace period keeps the session.
            await client.close()
            client = await GameClient(srv.url, client.token).connect()
            await asyncio.sleep(0.5)
            assert reasons.empty()
            await client.close()
            assert await asyncio.wait_for(reasons.get(), 5) == ("p", "Disconnect")


async def test_sim_runs_players_through_the_whole_flow(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, capacity=1) as srv:
        report = await run_sim(srv.url, key, players=2, timeout=120)
    assert report["succeeded"] == 2, report["failed"]
    assert report["max_wait_estimate_s"] > 0  # one slot: the second player had to queue
