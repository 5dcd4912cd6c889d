"""``acs sim``: N simulated players against a running server, bounded in time."""

from __future__ import annotations

import asyncio
import statistics
import time

from .flow import run_player_flow

__all__ = ["run_sim"]


async def run_sim(url: str, api_key: str, players: int, *, timeout: float = 600.0,
                  photo: bytes | None = None) -> dict:
    t0 = time.perf_counter()
    tasks = [run_player_flow(url, api_key, f"sim-player-{i}", photo=photo, session_timeout=timeout)
             for i in range(players)]
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout)
    ok = [r for r in results if not isinstance(r, BaseException) and r.publish.get("Result") == "Success"]
    failed = [repr(r) if isinstance(r, BaseException) else str(r.publish) for r in results if r not in ok]
    totals = [r.timings["total"] for r in ok]
    return {
        "players": players,
        "succeeded": len(ok),
        "failed": failed,
        "wall_s": round(time.perf_counter() - t0, 3),
        "flow_median_s": round(statistics.median(totals), 3) if totals else None,
        "max_wait_estimate_s": max((r.wait_time for r in ok), default=0.0),
    }
