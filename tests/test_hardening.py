"""Sizes checked before work, origins, headers and logs (issue 9 items 3 and 7)."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import msgpack
import pytest
import websockets

from client_sim.connection import Connection, RemoteError
from schemas.frames import pack, unpack

from .conftest import new_experience, running_server


def _frame_with_nils(n: int) -> bytes:
    """An ApplyEdits frame whose Ops is ``n`` msgpack nils (array32 header), assembled by hand."""
    p = msgpack.packb
    ops = b"\xdd" + n.to_bytes(4, "big") + b"\xc0" * n
    params = b"\x83" + p("GenerationId") + p("gen_x") + p("BaseVersion") + p(0) + p("Ops") + ops
    return b"\x83" + p("id") + p(7) + p("method") + p("ApplyEdits") + p("params") + params


async def _ws_answer(ws, timeout: float = 10) -> dict:
    return unpack(await asyncio.wait_for(ws.recv(), timeout))


async def test_oversize_structures_are_refused_while_decoding_and_cost_nothing(tmp_path, executor):
    key = await new_experience(tmp_path)
    # Pacing by bytes is tested below; here only the cost of decoding is timed.
    async with running_server(tmp_path, executor, frame_bytes_per_second=1e9) as srv:
        url = "ws" + srv.url[4:] + "/v1/ws"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"},
                                      max_size=None) as ws:
            bomb = _frame_with_nils(16_000_000)  # ~16 MB decompressed, a few KB on the wire
            await ws.send(bomb)  # the client's own compression is not timed
            t = time.perf_counter()
            answer = await _ws_answer(ws)
            nils = time.perf_counter() - t
            # The id is read before the oversize part, so the caller's call gets its answer.
            assert answer["error"]["code"] == "FrameTooComplex" and answer["id"] == 7

            keys = msgpack.packb({"id": 8, "method": "GetValidationRules",
                                  "params": {f"k{i}": None for i in range(1_000_000)}})
            await ws.send(keys)
            t = time.perf_counter()
            answer = await _ws_answer(ws)
            many_keys = time.perf_counter() - t
            assert answer["error"]["code"] == "FrameTooComplex" and answer["id"] == 8

            # The socket still works.
            await ws.send(pack({"id": 9, "method": "GetValidationRules", "params": {}}))
            assert "result" in await _ws_answer(ws)
        assert nils < 1.0 and many_keys < 1.0, (nils, many_keys)


async def test_apply_edits_with_too_many_ops_is_refused_before_the_rate_limiter(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, edit_ops_per_second=10.0) as srv:
        async with Connection(srv.url, key) as conn:
            t = time.perf_counter()
            with pytest.raises(RemoteError) as err:
                await conn.call("ApplyEdits", {"GenerationId": "gen_x", "BaseVersion": 0,
                                               "Ops": [{"op": "SetProperty"}] * 60_000})
            # At 10 ops/s a charged 60,000-op batch would have held the socket for 100 minutes.
            assert time.perf_counter() - t < 2.0
            assert err.value.code == "InvalidParams"
            assert (await conn.call("GetValidationRules", {}))


async def test_a_flood_of_big_frames_is_paced_per_caller(tmp_path, executor):
    key = await new_experience(tmp_path)
    rate = 1024 * 1024
    async with running_server(tmp_path, executor, frame_bytes_per_second=rate,
                              max_frame_bytes=1024 * 1024) as srv:
        url = "ws" + srv.url[4:] + "/v1/ws"
        junk = b"\x00" * (1024 * 1024 - 16)
        headers = {"Authorization": f"Bearer {key}"}
        async with websockets.connect(url, additional_headers=headers) as a, \
                websockets.connect(url, additional_headers=headers) as b:
            t = time.perf_counter()
            for ws in (a, b) * 3:  # two sockets of one caller share the budget
                await ws.send(junk)
            for ws in (a, b) * 3:
                assert (await _ws_answer(ws, 20))["error"]["code"] == "MalformedFrame"
            took = time.perf_counter() - t
        # 6 MB at 1 MB/s after a 2 MB burst: about 4 s, not the instant an unpaced server takes.
        assert took > 3.0, took


async def test_websocket_origins(tmp_path, executor):
    key = await new_experience(tmp_path)
    headers = {"Authorization": f"Bearer {key}"}
    async with running_server(tmp_path, executor, allowed_origins="https://studio.example") as srv:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.url}/v1/ws", headers={**headers, "Origin": "https://evil.example",
                                                              "Connection": "Upgrade", "Upgrade": "websocket",
                                                              "Sec-WebSocket-Version": "13",
                                                              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
                assert r.status == 403
                assert (await r.json())["error"]["code"] == "OriginNotAllowed"
            for origin in ("https://studio.example", srv.url, None):
                extra = {"Origin": origin} if origin else {}
                ws = await http.ws_connect(f"{srv.url}/v1/ws", headers={**headers, **extra})
                await ws.close()


async def test_server_header_and_access_log_reveal_nothing(tmp_path, executor, caplog):
    async with running_server(tmp_path, executor) as srv:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{srv.url}/healthz?token=secret-player-token&x=1") as r:
                    assert r.headers["Server"] == "acs"
            await asyncio.sleep(0.1)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/healthz?token=***&x=1" in line for line in lines), lines
    assert not any("secret-player-token" in line for line in lines)


async def test_http_requests_beyond_the_callers_rate_get_a_delayed_429_and_spend_nothing(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, http_requests_per_second=5.0) as srv:
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async def one() -> tuple[int, float]:
                t = time.perf_counter()
                async with http.post(f"{srv.url}/v1/rpc/GetValidationRules", json={}) as r:
                    if r.status == 429:
                        assert (await r.json())["error"]["code"] == "TooManyRequests"
                    return r.status, time.perf_counter() - t

            start = time.perf_counter()
            answers = [await one() for _ in range(30)]
            took = time.perf_counter() - start
            served = [t for status, t in answers if status == 200]
            refused = [t for status, t in answers if status == 429]
            assert len(served) + len(refused) == 30
            # Within the budget: a burst of 10, then 5 per second.
            assert len(served) <= 10 + 5 * took + 1 and len(refused) >= 5, (len(served), took)
            # A refusal goes out only when the budget would have allowed a request (1/5 s),
            # so a flood is refused no faster than it would have been served.
            assert min(refused) >= 0.1, refused
            await asyncio.sleep(1.0)  # refused requests spent nothing: the budget is back
            assert [(await one())[0] for _ in range(4)] == [200] * 4


async def test_small_frames_are_paced_per_caller(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, frames_per_second=20.0) as srv:
        url = "ws" + srv.url[4:] + "/v1/ws"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            t = time.perf_counter()
            for i in range(100):
                await ws.send(pack({"id": i, "method": "GetValidationRules", "params": {}}))
            for _ in range(100):
                assert "result" in await _ws_answer(ws, 20)
            took = time.perf_counter() - t
        # 100 frames at 20/s after a burst of 40: about 3 s, none refused.
        assert took > 2.5, took


async def test_an_oversize_frame_is_charged_and_reconnecting_buys_no_fresh_budget(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, max_frame_bytes=1024 * 1024,
                              frame_bytes_per_second=1024 * 1024) as srv:
        url = "ws" + srv.url[4:] + "/v1/ws"
        headers = {"Authorization": f"Bearer {key}"}
        refused = None
        for _attempt in range(5):  # the burst holds two largest frames; then reconnecting is refused
            try:
                ws = await websockets.connect(url, additional_headers=headers)
            except websockets.InvalidStatus as exc:
                refused = exc
                break
            await ws.send(b"\x00" * (3 * 1024 * 1024))  # inflated up to the limit, then refused
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == 1009
        assert refused is not None and refused.response.status_code == 429
        assert 2 <= _attempt <= 3  # two or three oversize frames, with what refilled meanwhile
        await asyncio.sleep(1.5)  # the debt is paid off at 1 MiB/s: welcome back
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(pack({"id": 1, "method": "GetValidationRules", "params": {}}))
            assert "result" in await _ws_answer(ws)


async def test_a_frame_of_millions_of_tiny_values_is_stopped_part_way(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, frame_bytes_per_second=1e9) as srv:
        url = "ws" + srv.url[4:] + "/v1/ws"
        # 240 arrays of 65,000 nils: every length within msgpack's limits, 15.6 M values in all.
        frame = msgpack.packb({"id": 5, "method": "GetValidationRules",
                               "params": {"X": [[None] * 65_000] * 240}})
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"},
                                      max_size=None) as ws:
            await ws.send(frame)
            t = time.perf_counter()
            answer = await _ws_answer(ws)
            took = time.perf_counter() - t
        assert answer["error"]["code"] == "FrameTooComplex" and answer["id"] == 5
        assert took < 1.0, took
