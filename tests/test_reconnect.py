"""Reconnect (issue 5 item 4): missed batches or a snapshot, unacknowledged batches resent once."""

from __future__ import annotations

import asyncio

import pytest

from client_sim.sdk import GameClient, GameServer

from .conftest import Http, active_session, generate, new_experience, running_server


async def _two_copies(srv, key, astronaut_jpeg):
    gs = await GameServer(srv.url, key).connect()
    sid = (await active_session(gs, "p"))["SessionId"]
    client = await GameClient(srv.url, await gs.CreatePlayerToken("p")).connect()
    pre, gen_id = await generate(gs, srv.url, client.token, astronaut_jpeg, sid)
    return gs, client, await gs.LoadGeneratedAvatarAsync(gen_id), await client.LoadGeneratedAvatarAsync(gen_id)


def move(copy, i: int) -> dict:
    head = copy.avatar.parts["Head"]
    vid = head.GetVertices()[i]
    x, y, z = head.GetPosition(vid)
    return {"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [x, y + 0.01, z]}


async def server_version(srv, key, gen_id) -> int:
    _, bundle = await Http(srv.url, key).rpc("LoadGeneratedAvatarAsync", {"GenerationId": gen_id})
    return bundle["Version"]


@pytest.mark.parametrize("history", [512, 2])  # 2: the client falls too far behind and gets a snapshot
async def test_dropped_client_catches_up_and_resends_its_offline_edit_once(tmp_path, executor, astronaut_jpeg,
                                                                         history):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, edit_history=history) as srv:
        gs, client, server_copy, client_copy = await _two_copies(srv, key, astronaut_jpeg)
        client.conn.drop()
        for i in range(4):
            await server_copy.edit([move(server_copy, i)])
        with pytest.raises(ConnectionError):
            await client_copy.edit([move(client_copy, 10)])  # made offline: stays pending
        await client.reconnect()
        await server_copy.wait_version(5)
        await client_copy.wait_version(5)
        assert client_copy.version == server_copy.version == await server_version(srv, key, client_copy.generation_id) == 5
        assert client_copy.content_hash() == server_copy.content_hash()
        assert client_copy.replica.quiescent and server_copy.replica.quiescent
        await client.close()
        await gs.close()


async def test_a_resent_batch_is_not_applied_twice(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        gs, client, server_copy, client_copy = await _two_copies(srv, key, astronaut_jpeg)
        params = {"GenerationId": server_copy.generation_id, "BaseVersion": 0, "Ops": [move(server_copy, 3)],
                  "BatchId": "server-retry-1"}
        http = Http(srv.url, key)  # a third channel, so both copies get the batch relayed
        _, first = await http.rpc("ApplyEdits", params)
        _, again = await http.rpc("ApplyEdits", params)
        assert (first["Version"], first["Duplicate"]) == (1, False)
        assert (again["Version"], again["Duplicate"]) == (1, True)
        await client_copy.wait_version(1)
        await server_copy.wait_version(1)
        assert await server_version(srv, key, server_copy.generation_id) == 1

        # The ack of an edit is lost with the connection; after the reconnect the
        # client learns its batch's version from the catch-up and the resend is a no-op.
        batch_id, base, ops = client_copy.replica.edit([move(client_copy, 4)])
        from schemas.frames import pack
        await client.conn.send_raw(pack({"id": 999, "method": "ApplyEdits", "params": {
            "GenerationId": client_copy.generation_id, "BaseVersion": base, "Ops": ops, "BatchId": batch_id}}))
        await asyncio.sleep(0.3)
        client.conn.drop()
        await client.reconnect()
        await server_copy.wait_version(2)
        assert await server_version(srv, key, server_copy.generation_id) == 2
        assert client_copy.version == 2 and client_copy.content_hash() == server_copy.content_hash()
        await client.close()
        await gs.close()
