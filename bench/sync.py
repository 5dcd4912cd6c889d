"""Edit sync throughput and latency between two copies, against a raw websocket echo.

Both sides load one generated avatar through a real server on loopback. Latency: the game
server's copy sends single-op batches one at a time; each is timed from send until the game
client's copy has applied it (ack to the sender, relay to the other side). Throughput: the game
server makes single-op edits, 32 outstanding at a time, then all of them at once (as the echo
baseline sends all its frames at once), and we count ops/s until the client's copy has applied
them all. The SDK merges edits made while a batch is on its way into the next batch (one frame,
one commit, one ack). Baseline, measured in the same run: an aiohttp websocket that echoes the
very same msgpack frames back to a `websockets` client (RTT, and pipelined frames/s).

    python bench/sync.py [--ops 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import websockets
from aiohttp import web

from client_sim.flow import default_photo
from client_sim.sdk import GameClient, GameServer
from schemas.frames import pack
from server.admin import create_experience
from server.config import Config
from server.web.runner import RunningServer


def op(vid: int, i: int) -> dict:
    return {"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [0.001 * i, 2.5, -0.3]}


async def through_server(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), port=0, workers=1, edit_ops_per_second=1e6, frames_per_second=1e6)
        _, key = await create_experience(config, "bench")
        async with RunningServer(config) as srv, GameServer(srv.url, key) as gs:
            ready = asyncio.Future()
            await gs.RequestAvatarGenerationSessionAsync("p", ready.set_result)
            sid = (await ready)["SessionId"]

            async def photo(_):
                return default_photo()

            async with GameClient(srv.url, await gs.CreatePlayerToken("p"), choose_photo=photo) as client:
                file_id = await gs.PromptSelectAvatarGenerationImageAsync(sid)
                pre = await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": file_id})
                gen = await gs.GenerateAvatarAsync({"SessionId": sid, "PreviewId": pre["PreviewId"]})
                a, b = await gs.LoadGeneratedAvatarAsync(gen), await client.LoadGeneratedAvatarAsync(gen)
                vid = a.avatar.parts["Head"].GetVertices()[0]
                rtts = []
                for i in range(n):
                    t0 = time.perf_counter()
                    v = await a.edit([op(vid, i)])
                    await b.wait_version(v)
                    rtts.append((time.perf_counter() - t0) * 1000)
                rates = {}
                for outstanding in (32, n):
                    window = asyncio.Semaphore(outstanding)
                    start = a.version

                    async def send(i: int) -> int:
                        async with window:
                            return await a.edit([op(vid, i)])

                    t0 = time.perf_counter()
                    versions = await asyncio.gather(*(send(i) for i in range(n)))
                    await b.wait_version(max(versions))
                    rates[outstanding] = (n / (time.perf_counter() - t0), max(versions) - start)
                    assert a.content_hash() == b.content_hash()
    (rate, batches), (rate_all, batches_all) = rates[32], rates[n]
    return {"rtts": rtts, "ops_per_s": rate, "batches": batches, "ops_per_s_all": rate_all,
            "batches_all": batches_all, "frame": pack({"id": 1, "method": "ApplyEdits", "params": {
        "GenerationId": gen, "BaseVersion": 0, "Ops": [op(vid, 0)]}})}


async def echo_baseline(frame: bytes, n: int) -> dict:
    async def echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as ws:
            rtts = []
            for _ in range(n):
                t0 = time.perf_counter()
                await ws.send(frame)
                await ws.recv()
                rtts.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            for _ in range(n):
                await ws.send(frame)
            for _ in range(n):
                await ws.recv()
            rate = n / (time.perf_counter() - t0)
    finally:
        await runner.cleanup()
    return {"rtts": rtts, "ops_per_s": rate}


async def main(n: int) -> None:
    ours = await through_server(n)
    base = await echo_baseline(ours["frame"], n)
    for name, r in (("sync through server", ours), ("raw websocket echo", base)):
        print(f"{name:<20} p50 {statistics.median(r['rtts']):6.2f} ms  p99 {np.percentile(r['rtts'], 99):6.2f} ms"
              f"  {r['ops_per_s']:8.0f} ops/s")
    print(f"sync, all {n} edits at once: {ours['ops_per_s_all']:8.0f} ops/s in {ours['batches_all']} batches "
          f"(32 outstanding: {ours['batches']} batches)")
    print(f"throughput ratio sync/echo, 32 outstanding: {ours['ops_per_s'] / base['ops_per_s']:.2f}")
    print(f"throughput ratio sync/echo, all at once:    {ours['ops_per_s_all'] / base['ops_per_s']:.2f}")
    print(f"p99 latency ratio sync/echo: {np.percentile(ours['rtts'], 99) / np.percentile(base['rtts'], 99):.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=400)
    asyncio.run(main(parser.parse_args().ops))
