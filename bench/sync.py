"""Edit sync throughput and latency between two copies, against a raw websocket echo.

Both sides load one generated avatar through a real server on loopback. Latency: the game
server's copy sends single-op batches one at a time; each is timed from send until the game
client's copy has applied it (ack to the sender, relay to the other side). Throughput: the game
server makes single-op edits, 32 outstanding at a time, then all of them at once (as the echo
baseline sends all its frames at once), and we count ops/s until the client's copy has applied
them all. The SDK merges edits made while a batch is on its way into the next batch (one frame,
one commit, one ack). Baseline, measured in the same run: an aiohttp websocket that echoes the
very same msgpack frames back to a `websockets` client (RTT, and pipelined frames/s).

With ``--scaled`` the same runs through the scaled-out form as well (two ``acs serve`` replicas
and an ``acs worker`` on a throwaway PostgreSQL and Redis, started as in bench/scale.py): the two
copies on one replica, then on different replicas (each batch crosses Redis).

    python bench/sync.py [--ops 400] [--scaled]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import websockets
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/sync.py`: tests.services

from client_sim.flow import default_photo
from client_sim.sdk import GameClient, GameServer
from schemas.frames import pack
from server.admin import create_experience
from server.config import Config
from server.web.runner import RunningServer


def op(vid: int, i: int) -> dict:
    return {"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [0.001 * i, 2.5, -0.3]}


async def through_server(n: int) -> dict:
    """The embedded default, in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), port=0, workers=1, edit_ops_per_second=1e6, frames_per_second=1e6)
        _, key = await create_experience(config, "bench")
        async with RunningServer(config) as srv:
            return await sync_between(srv.url, srv.url, key, "p", n)


async def sync_between(server_url: str, client_url: str, key: str, player: str, n: int) -> dict:
    """The game server's copy on ``server_url``, the game client's on ``client_url``."""
    async with GameServer(server_url, key) as gs:
        ready = asyncio.Future()
        await gs.RequestAvatarGenerationSessionAsync(player, ready.set_result)
        sid = (await asyncio.wait_for(ready, 60))["SessionId"]

        async def photo(_):
            return default_photo()

        async with GameClient(client_url, await gs.CreatePlayerToken(player), choose_photo=photo) as client:
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
                await b.wait_version(max(versions), timeout=60)
                rates[outstanding] = (n / (time.perf_counter() - t0), max(versions) - start)
                assert a.content_hash() == b.content_hash()
    (rate, batches), (rate_all, batches_all) = rates[32], rates[n]
    return {"rtts": rtts, "ops_per_s": rate, "batches": batches, "ops_per_s_all": rate_all,
            "batches_all": batches_all, "frame": pack({"id": 1, "method": "ApplyEdits", "params": {
                "GenerationId": gen, "BaseVersion": 0, "Ops": [op(vid, 0)]}})}


async def through_replicas(n: int) -> dict[str, dict]:
    """The scaled-out form: two replicas and a worker on a throwaway PostgreSQL and Redis; the
    two copies on one replica, then on different replicas."""
    from scale import Procs, start_serve, start_worker  # bench/scale.py

    from tests.services import PostgresCluster, RedisServer

    with tempfile.TemporaryDirectory() as tmp, PostgresCluster() as pg, RedisServer() as redis:
        procs = Procs(Path(tmp))
        try:
            db_url = await pg.create_database()
            data = Path(tmp) / "data"
            _, key = await create_experience(Config(data_dir=data, database_url=db_url), "bench")
            env = {"ACS_DATA_DIR": str(data), "ACS_DATABASE_URL": db_url, "ACS_REDIS_URL": redis.url,
                   "ACS_WORKERS": "1", "ACS_EDIT_OPS_PER_SECOND": "1000000", "ACS_FRAMES_PER_SECOND": "1000000"}
            a = await start_serve(procs, "replica0", env)
            b = await start_serve(procs, "replica1", env)
            await start_worker(procs, "worker0", env)
            return {"one replica": await sync_between(a, a, key, "p1", n),
                    "two replicas": await sync_between(a, b, key, "p2", n)}
        finally:
            procs.stop()


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


async def main(n: int, scaled: bool) -> None:
    runs = {"embedded": await through_server(n)}
    if scaled:
        runs.update({f"scaled, {k}": v for k, v in (await through_replicas(n)).items()})
    base = await echo_baseline(runs["embedded"]["frame"], n)
    print(f"{'':<28}{'p50 ms':>8}{'p99 ms':>8}{'ops/s 32':>10}{'ops/s all':>11}{'ratio 32':>10}{'ratio all':>11}")
    for name, r in runs.items():
        print(f"{name:<28}{statistics.median(r['rtts']):8.2f}{np.percentile(r['rtts'], 99):8.2f}"
              f"{r['ops_per_s']:10.0f}{r['ops_per_s_all']:11.0f}{r['ops_per_s'] / base['ops_per_s']:10.2f}"
              f"{r['ops_per_s_all'] / base['ops_per_s']:11.2f}   ({r['batches']} / {r['batches_all']} batches)")
    print(f"{'raw websocket echo':<28}{statistics.median(base['rtts']):8.2f}{np.percentile(base['rtts'], 99):8.2f}"
          f"{base['ops_per_s']:10.0f}{base['ops_per_s']:11.0f}{1:10.2f}{1:11.2f}")
    print("ops/s 32: single-op edits, 32 outstanding; ops/s all: all edits at once (as the echo sends its frames);"
          " ratios against the echo's frames/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--scaled", action="store_true",
                        help="also through 2 replicas on PostgreSQL and Redis (copies on one replica, and on two)")
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.scaled))
