"""Websocket limits (issue 5 item 7): back-pressure per socket, idle timeout, frame size."""

from __future__ import annotations

import asyncio
import time

import pytest

from client_sim.connection import Connection, RemoteError
from server.core.limits import TokenBucket

from .conftest import new_experience, running_server


def test_token_bucket_allows_a_burst_then_paces_to_the_rate():
    bucket = TokenBucket(rate=100, burst=200)
    assert bucket.delay(200, now=0.0) == 0.0
    assert bucket.delay(50, now=0.0) == pytest.approx(0.5)
    # Debt is kept: at t=0.5 the 50 are paid for, the next 100 wait one second.
    assert bucket.delay(100, now=0.5) == pytest.approx(1.0)
    assert bucket.delay(1, now=10.0) == 0.0


async def test_a_flooding_socket_is_slowed_without_slowing_another(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, edit_ops_per_second=200) as srv:
        async with Connection(srv.url, key) as flooder, Connection(srv.url, key) as other:
            ops = [{"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [0, 0, 0]}] * 200

            async def flood() -> float:
                t0 = time.perf_counter()
                for _ in range(5):  # 1000 ops at 200/s with a burst of 400: about 3 s
                    with pytest.raises(RemoteError):  # no such generation; still paced first
                        await flooder.call("ApplyEdits", {"GenerationId": "gen_x", "BaseVersion": 0, "Ops": ops})
                return time.perf_counter() - t0

            task = asyncio.ensure_future(flood())
            await asyncio.sleep(0.3)
            worst = 0.0
            while not task.done():
                t0 = time.perf_counter()
                await other.call("GetValidationRules")
                worst = max(worst, time.perf_counter() - t0)
                await asyncio.sleep(0.1)
            assert await task >= 2.5  # paced, not dropped: every frame got its answer
            assert worst < 0.5


async def test_idle_sockets_are_closed_and_oversized_frames_refused(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, ws_idle_timeout=0.5, max_frame_bytes=64 * 1024) as srv:
        conn = await Connection(srv.url, key).connect()
        await asyncio.sleep(1.0)
        with pytest.raises(ConnectionError):
            await conn.call("GetValidationRules")
        await conn.close()

        conn = await Connection(srv.url, key).connect()
        with pytest.raises(ConnectionError):
            await conn.call("ApplyEdits", {"GenerationId": "g", "BaseVersion": 0,
                                           "Ops": [{"op": "WritePixelsBuffer", "Buffer": b"\0" * 100_000}]})
        await conn.close()
        async with Connection(srv.url, key) as fresh:  # the server itself is fine
            assert "MeshRules" in await fresh.call("GetValidationRules")
