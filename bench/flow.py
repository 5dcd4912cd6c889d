"""Server overhead of the whole flow.

Runs the full photo-to-avatar flow through a real server on loopback (queue, upload, preview, generate,
load on both sides, edits, publish) and, in the same run, the same work called directly in this process
(LoadPhoto..SaveAvatar, build, export) as the baseline. Prints the median of each and their ratio:
how much the network API, persistence and sync add on top of the pipelines themselves.

    python bench/flow.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from client_sim.flow import default_photo, run_player_flow
from generation.avatar_builder import build_avatar
from generation.preview import make_preview, warm_up
from meshes import export_glb
from server.admin import create_experience
from server.config import Config
from server.web.runner import RunningServer


def direct(photo: bytes) -> float:
    t0 = time.perf_counter()
    p = make_preview(photo)
    avatar = build_avatar(p.png, landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb)
    export_glb(avatar)
    return time.perf_counter() - t0


async def through_server(runs: int, photo: bytes) -> tuple[list[float], dict[str, list[float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), port=0, workers=1, capacity=1)
        _, key = await create_experience(config, "bench")
        totals, steps = [], {}
        async with RunningServer(config) as srv:
            for i in range(runs + 1):
                flow = await run_player_flow(srv.url, key, f"bench-{i}", photo=photo)
                if i == 0:
                    continue  # warm-up
                totals.append(flow.timings["total"])
                for k, v in flow.timings.items():
                    steps.setdefault(k, []).append(v)
        return totals, steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    photo = default_photo()
    warm_up()
    direct(photo)
    base = [direct(photo) for _ in range(args.runs)]
    totals, steps = asyncio.run(through_server(args.runs, photo))
    for name, values in steps.items():
        print(f"  {name:<13} median {statistics.median(values) * 1000:7.1f} ms")
    b, s = statistics.median(base), statistics.median(totals)
    print(f"baseline (pipelines in-process): median {b * 1000:.1f} ms")
    print(f"whole flow through the server:   median {s * 1000:.1f} ms")
    print(f"ratio server/baseline: {s / b:.2f}")


if __name__ == "__main__":
    main()
