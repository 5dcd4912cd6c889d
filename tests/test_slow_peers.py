"""A peer that stops reading holds up no one but itself (issue 9 item 2).

The stalled peer is an aiohttp websocket that never calls ``receive()``: once its
small read buffer is full aiohttp stops reading the socket, the kernel buffers
fill, and every write the server makes to it would wait forever.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from client_sim.sdk import GameServer
from schemas.frames import pack

from .conftest import active_session, generate, new_experience, running_server


async def _stalled_player(url: str, token: str, generation_id: str, requests: int):
    """Open a player socket, load the avatar ``requests`` times over, and never read.
    Returns the HTTP session and the socket (keep both referenced)."""
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"{url}/v1/ws", headers={"Authorization": f"Bearer {token}"}, max_msg_size=0)
    for i in range(requests):
        await ws.send_bytes(pack({"id": i + 1, "method": "LoadGeneratedAvatarAsync",
                                  "params": {"GenerationId": generation_id}}))
    return http, ws


def _head_op(copy, i: int) -> dict:
    head = copy.avatar.parts["Head"]
    vid = head.GetVertices()[i]
    x, y, z = head.GetPosition(vid)
    return {"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [x, y + 0.001, z]}


async def _timed(coro) -> float:
    t = time.perf_counter()
    await asyncio.wait_for(coro, 20)
    return time.perf_counter() - t


async def test_a_stalled_player_socket_freezes_neither_edits_nor_the_session_queue(tmp_path, executor,
                                                                                  astronaut_jpeg):
    key_a = await new_experience(tmp_path, "attacker")
    key_b = await new_experience(tmp_path, "victim")
    async with running_server(tmp_path, executor) as srv:
        gs_a = await GameServer(srv.url, key_a).connect()
        gs_b = await GameServer(srv.url, key_b).connect()
        sid_a = (await active_session(gs_a, "mallory"))["SessionId"]
        sid_b = (await active_session(gs_b, "alice"))["SessionId"]
        token_a = await gs_a.CreatePlayerToken("mallory")
        token_b = await gs_b.CreatePlayerToken("alice")
        _, gen_a = await generate(gs_a, srv.url, token_a, astronaut_jpeg, sid_a)
        _, gen_b = await generate(gs_b, srv.url, token_b, astronaut_jpeg, sid_b)
        copy_a = await gs_a.LoadGeneratedAvatarAsync(gen_a)
        copy_b = await gs_b.LoadGeneratedAvatarAsync(gen_b)

        # Each answer is the whole document (about 4 MB): far more than the socket buffers hold,
    # less than the send queue allows (the peer stays connected).
        stalled, _ws = await _stalled_player(srv.url, token_a, gen_a, requests=12)
        try:
            await asyncio.sleep(1.0)
            # A's own edits are relayed to the stalled socket (it subscribed by loading).
            for i in range(5):
                await asyncio.wait_for(copy_a.edit([_head_op(copy_a, i)]), 20)
            # Another experience's acknowledgements do not wait on it.
            acks = [await _timed(copy_b.edit([_head_op(copy_b, i)])) for i in range(10)]
            # Nor does the session queue: a new session of the stalled player ends, with a
            # push to its socket...
            sid_a2 = (await active_session(gs_a, "mallory"))["SessionId"]
            ending = asyncio.create_task(gs_a.EndSession(sid_a2))
            await asyncio.sleep(0.2)
            # ...while B asks for a session.
            request = await _timed(gs_b.RequestAvatarGenerationSessionAsync("bob", lambda info: None))
            await asyncio.wait_for(ending, 20)
        finally:
            await stalled.close()
        assert max(acks) < 1.0, acks
        assert request < 1.0, request
        await gs_a.close()
        await gs_b.close()


async def test_a_peer_that_stays_behind_is_disconnected_and_others_are_served(tmp_path, executor,
                                                                            astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, ws_send_queue_bytes=4 * 1024 * 1024) as srv:
        gs = await GameServer(srv.url, key).connect()
        sid = (await active_session(gs, "p"))["SessionId"]
        token = await gs.CreatePlayerToken("p")
        _, gen = await generate(gs, srv.url, token, astronaut_jpeg, sid)
        copy = await gs.LoadGeneratedAvatarAsync(gen)
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(f"{srv.url}/v1/ws", headers={"Authorization": f"Bearer {token}"},
                                       max_msg_size=0)
            for i in range(24):
                await ws.send_bytes(pack({"id": i + 1, "method": "LoadGeneratedAvatarAsync",
                                          "params": {"GenerationId": gen}}))
            await asyncio.sleep(3.0)
            # The server gave up on it: what it can still read ends with the close.
            deadline = time.monotonic() + 20
            while not ws.closed and time.monotonic() < deadline:
                msg = await asyncio.wait_for(ws.receive(), 20)  # reading now drains what is left
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        finally:
            await http.close()
        # The game server's own socket is still served.
        assert await asyncio.wait_for(copy.edit([_head_op(copy, 1)]), 20) == 1
        await gs.close()
