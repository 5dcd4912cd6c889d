"""The scaled-out form against the embedded default: whole flows and session grants per second.

Everything runs on loopback (127.0.0.1 only) as real subprocesses, each writing its log to a temp folder:

- **embedded**: one ``acs serve`` (its own data dir, SQLite, ``ACS_WORKERS=2`` local generation
  processes, ``ACS_CAPACITY=32``);
- **scaled**: two ``acs serve`` replicas and two ``acs worker`` processes (``ACS_WORKERS=1`` each)
  sharing one data dir, a throwaway PostgreSQL cluster and a throwaway redis-server (tests/services.py),
  replicas with the same ``ACS_CAPACITY``; heartbeat and stall timeouts are the server's defaults;
- **bare**: a bare aiohttp app in a subprocess of its own that reads each POST's JSON body and
  answers one small fixed JSON object (the baseline for the HTTP part).

Every server process gets ``ACS_HTTP_REQUESTS_PER_SECOND=1000000``: all the load below comes from one
game server (one API key per experience), which the default per-caller rate (100 requests/s) would
otherwise refuse with 429; it is the server's throughput that is measured here, not that limit.

1. **Whole flow** (``client_sim.flow.run_player_flow``: session request, upload of the bundled photo,
   preview, 3D generation, both copies loaded, an edit on each side synced, publish, download) for
   ``--players`` players, at most ``--concurrency`` at once, each player id used once.  Embedded: game
   server and game client both on the one server.  Scaled: player *i*'s game server on replica A and its
   game client on replica B, the next player the other way round.  One experience per mode with
   generous allowances.  Two warm-up flows per mode are not counted.  Reported: flows/s (players /
   wall time of the whole batch), p50/p99 of each flow's own wall time (connect to disconnect),
   errors (exceptions, time-outs after ``--flow-timeout`` s, and publishes whose Result is not
   Success; the goal is 0), and the scaled/embedded ratio of flows/s.
2. **Session grants**: ``--grants`` cycles over HTTP RPC (``POST /v1/rpc/<Method>`` with
   ``Authorization: Bearer <api key>``), ``--concurrency`` loops at once over one keep-alive client
   session: ``RequestAvatarGenerationSessionAsync {PlayerId}`` (a new player id per cycle; with free
   capacity the session starts inside that call), ``GetSessionRequest {RequestId}`` for its SessionId
   (polled while Queued), ``EndSession {SessionId, Reason: "Exit"}`` so its slot frees at once.
   Scaled: each call goes to the next replica in turn (round robin over all calls, as a balancer
   would send them), so the calls of one cycle land on both replicas.  The bare app is driven by the
   very same loop (every answer carries the fields the loop reads).  ``2 * concurrency`` warm-up cycles per target are not counted.
   Reported: grants/s, p50/p99 of a cycle, errors, and the ratio to the bare handler (goal >= 0.5).

Client, servers, workers, PostgreSQL and Redis all share this machine's cores: on a 2-core machine the
scaled form has no more CPU than the embedded one (differences either way are how the work is spread
over processes); its numbers there show what the scaled-out machinery (PostgreSQL, advisory locks,
Redis hops, job queue) costs, not the speed-up more machines would give.  At the end every
process log is searched for ERROR lines and tracebacks, which are counted and quoted.  Nothing is
asserted: this is a benchmark; the exit status is 0 unless the setup itself fails.

    .venv/bin/python bench/scale.py [--players 200] [--concurrency 16] [--grants 1000] [--quick]

``--quick`` (20 players, 200 grants) takes about 2 minutes; the defaults about 11 minutes on two cores
(``--players 160`` stays under 10).
Run as root: the PostgreSQL cluster runs as the ``postgres`` user (``bash tests/install_services.sh``
installs PostgreSQL and redis-server when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/scale.py` from anywhere

from client_sim.flow import default_photo, run_player_flow  # noqa: E402
from server.admin import create_experience  # noqa: E402
from server.config import Config  # noqa: E402
from tests.services import PostgresCluster, RedisServer, free_port  # noqa: E402

CAPACITY = 32
#: Settings of the experiences: no allowance, quota or queue limit is reached by the benchmark.
GENEROUS = {"Allowed2DGenerations": 5, "Allowed3DGenerations": 2, "SessionTime": 3600,
            "MaxQueuedRequests": 10000, "MaxOutfitsPerPlayer": 1000, "BatchPhotosPerHour": 10000}
COMMON_ENV = {"ACS_CAPACITY": str(CAPACITY), "ACS_HTTP_REQUESTS_PER_SECOND": "1000000", "ACS_HOST": "127.0.0.1"}

BARE_APP = """
import sys
from aiohttp import web

ANSWER = {"RequestId": "req_bare", "waitTime": 0.0, "State": "Active", "SessionId": "ses_bare",
          "Reason": "Exit", "AlreadyEnded": False}

async def rpc(request):
    await request.json()
    return web.json_response(ANSWER)

async def healthz(request):
    return web.json_response({"ok": True})

app = web.Application()
app.router.add_post("/v1/rpc/{method}", rpc)
app.router.add_get("/healthz", healthz)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


# -- processes -------------------------------------------------------------------------------------

class Procs:
    """Every subprocess the benchmark starts, each in a session of its own, its output in a log file.
    :meth:`stop` terminates them all, then kills (the whole process group) whatever is left."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(args, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((name, popen, log))
        return popen, log

    def stop(self, only: list[subprocess.Popen] | None = None) -> None:
        procs = [p for _, p, _ in self.started if only is None or p in only]
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    p.terminate()
        deadline = time.monotonic() + 20
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in procs:
            # The leader's group: its generation processes too, should any outlive it.
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)

    def logs(self) -> list[Path]:
        return [log for _, _, log in self.started]


def tail(log: Path, n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else ""


async def wait_http(url: str, popen: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return
            if popen.poll() is not None:
                raise RuntimeError(f"{log.stem} exited during start-up:\n{tail(log)}")
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{log.stem} did not answer /healthz in {timeout:g} s:\n{tail(log)}")


async def start_serve(procs: Procs, name: str, env: dict[str, str]) -> str:
    port = free_port()
    popen, log = procs.spawn(name, [sys.executable, "-m", "server.cli", "serve"],
                             {**COMMON_ENV, **env, "ACS_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    await wait_http(url, popen, log)
    return url


async def start_worker(procs: Procs, name: str, env: dict[str, str], timeout: float = 180.0) -> None:
    popen, log = procs.spawn(name, [sys.executable, "-m", "server.cli", "worker"], {**COMMON_ENV, **env})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "acs worker" in tail(log, 100_000):  # logged once its processes are warm
            return
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up:\n{tail(log)}")
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} did not start in {timeout:g} s:\n{tail(log)}")


async def start_bare(procs: Procs) -> tuple[str, subprocess.Popen]:
    port = free_port()
    popen, log = procs.spawn("bare", [sys.executable, "-c", BARE_APP, str(port)], {})
    url = f"http://127.0.0.1:{port}"
    await wait_http(url, popen, log)
    return url, popen


# -- 1. whole flows --------------------------------------------------------------------------------

async def run_flows(pairs: list[tuple[str, str]], key: str, prefix: str, n: int, concurrency: int,
                    photo: bytes, timeout: float) -> dict:
    """``n`` flows, player ``i`` with game server on ``pairs[i % len][0]``, client on ``[1]``."""
    window = asyncio.Semaphore(concurrency)
    times: list[float] = []
    errors: list[str] = []
    steps: dict[str, list[float]] = {}

    async def one(i: int, count: bool) -> None:
        gs_url, client_url = pairs[i % len(pairs)]
        player = f"{prefix}-{i}"
        async with window:
            t0 = time.perf_counter()
            try:
                flow = await asyncio.wait_for(run_player_flow(gs_url, key, player, photo=photo,
                                                              client_url=client_url), timeout)
                if flow.publish.get("Result") != "Success":
                    errors.append(f"{player}: publish {flow.publish}")
                if count:
                    for step, seconds in flow.timings.items():
                        steps.setdefault(step, []).append(seconds)
            except asyncio.TimeoutError:
                errors.append(f"{player}: no result in {timeout:g} s")
            except Exception as exc:  # noqa: BLE001 -- counted and shown, the others go on
                errors.append(f"{player}: {type(exc).__name__}: {exc}")
            if count:
                times.append(time.perf_counter() - t0)
                if len(times) % max(1, n // 4) == 0 and len(times) < n:
                    print(f"    {len(times)}/{n} flows done, {len(errors)} errors", flush=True)

    warm = [one(i, False) for i in range(2)]
    await asyncio.gather(*warm)
    warm_errors, errors[:] = list(errors), []
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, True) for i in range(2, n + 2)))
    wall = time.perf_counter() - t0
    return {"rate": n / wall, "wall": wall, "p50": float(np.percentile(times, 50)),
            "p99": float(np.percentile(times, 99)), "errors": errors, "warm_errors": warm_errors,
            "steps": {k: float(np.median(v)) for k, v in steps.items() if k != "total"}}


# -- 2. session grants -----------------------------------------------------------------------------

class CallFailed(Exception):
    pass


async def run_grants(urls: list[str], key: str, prefix: str, n: int, concurrency: int) -> dict:
    """``n`` Request/GetSessionRequest/EndSession cycles, ``concurrency`` at once, one client session."""
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {key}"}) as http:
        rr = itertools.count()
        per_call: dict[str, list[float]] = {}

        async def post(method: str, body: dict) -> dict:
            url = urls[next(rr) % len(urls)]
            t0 = time.perf_counter()
            async with http.post(f"{url}/v1/rpc/{method}", json=body) as r:
                data = await r.json(content_type=None)
                if r.status != 200:
                    raise CallFailed(f"{method} on {url}: {r.status} {data}")
            per_call.setdefault(method, []).append(time.perf_counter() - t0)
            return data

        async def cycle(i: int) -> None:
            req = await post("RequestAvatarGenerationSessionAsync", {"PlayerId": f"{prefix}-{i}"})
            while True:
                status = await post("GetSessionRequest", {"RequestId": req["RequestId"]})
                if status["State"] != "Queued":
                    break
                await asyncio.sleep(0.005)
            if status["State"] != "Active":
                raise CallFailed(f"request {req['RequestId']} is {status['State']}")
            await post("EndSession", {"SessionId": status["SessionId"], "Reason": "Exit"})

        async def loops(first: int, count: int, times: list[float], errors: list[str]) -> float:
            ids = iter(range(first, first + count))

            async def loop() -> None:
                for i in ids:
                    t0 = time.perf_counter()
                    try:
                        await cycle(i)
                        times.append(time.perf_counter() - t0)
                    except Exception as exc:  # noqa: BLE001 -- counted and shown
                        errors.append(f"{prefix}-{i}: {type(exc).__name__}: {exc}")

            t0 = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            return time.perf_counter() - t0

        warm_errors: list[str] = []
        await loops(0, 2 * concurrency, [], warm_errors)
        per_call.clear()
        times: list[float] = []
        errors: list[str] = []
        wall = await loops(2 * concurrency, n, times, errors)
    return {"rate": len(times) / wall, "wall": wall, "p50": float(np.percentile(times, 50)) if times else 0.0,
            "p99": float(np.percentile(times, 99)) if times else 0.0, "errors": errors, "warm_errors": warm_errors,
            "per_call": {m: float(np.median(v)) for m, v in per_call.items()}}


# -- the run ---------------------------------------------------------------------------------------

def log_problems(logs: list[Path]) -> list[tuple[str, int, list[str]]]:
    """Per log: how many ERROR/CRITICAL lines and tracebacks, and the first few with context."""
    found = []
    for log in logs:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        hits = [i for i, line in enumerate(lines)
                if re.search(r"\b(ERROR|CRITICAL)\b", line) or line.startswith("Traceback")]
        if hits:
            excerpts = ["\n".join(lines[i:i + 12]) for i in hits[:3]]
            found.append((log.name, len(hits), excerpts))
    return found


async def run(args, procs: Procs, tmp: Path, pg: PostgresCluster, redis: RedisServer) -> dict:
    photo = default_photo()
    run_id = f"{int(time.time()) % 100000}"
    results: dict = {}

    # Embedded: one `acs serve`.
    data = tmp / "embedded"
    config = Config(data_dir=data)
    _, flow_key = await create_experience(config, "bench-scale-flows", GENEROUS)
    _, grant_key = await create_experience(config, "bench-scale-grants", GENEROUS)
    print("starting the embedded server ...", flush=True)
    url = await start_serve(procs, "embedded", {"ACS_DATA_DIR": str(data), "ACS_WORKERS": "2"})
    embedded_procs = [p for _, p, _ in procs.started]
    print(f"  flows: {args.players} players, {args.concurrency} at once ...", flush=True)
    results["flow", "embedded"] = await run_flows([(url, url)], flow_key, f"emb-{run_id}", args.players,
                                                  args.concurrency, photo, args.flow_timeout)
    print(f"  grants: {args.grants} cycles ...", flush=True)
    results["grant", "embedded"] = await run_grants([url], grant_key, f"emb-{run_id}-g", args.grants,
                                                    args.concurrency)
    procs.stop(embedded_procs)

    # Scaled: 2 replicas + 2 workers on PostgreSQL + Redis + one data folder.
    data = tmp / "scaled"
    db_url = await pg.create_database()
    config = Config(data_dir=data, database_url=db_url)
    _, flow_key = await create_experience(config, "bench-scale-flows", GENEROUS)
    _, grant_key = await create_experience(config, "bench-scale-grants", GENEROUS)
    env = {"ACS_DATA_DIR": str(data), "ACS_DATABASE_URL": db_url, "ACS_REDIS_URL": redis.url, "ACS_WORKERS": "1"}
    print("starting 2 replicas and 2 workers ...", flush=True)
    before = len(procs.started)
    a = await start_serve(procs, "replica0", env)  # one after the other: the first migrates
    b = await start_serve(procs, "replica1", env)
    await asyncio.gather(start_worker(procs, "worker0", env), start_worker(procs, "worker1", env))
    scaled_procs = [p for _, p, _ in procs.started[before:]]
    print(f"  flows: {args.players} players, {args.concurrency} at once ...", flush=True)
    results["flow", "scaled"] = await run_flows([(a, b), (b, a)], flow_key, f"sc-{run_id}", args.players,
                                                args.concurrency, photo, args.flow_timeout)
    print(f"  grants: {args.grants} cycles ...", flush=True)
    results["grant", "scaled"] = await run_grants([a, b], grant_key, f"sc-{run_id}-g", args.grants,
                                                  args.concurrency)
    procs.stop(scaled_procs)

    # Bare aiohttp JSON handler, the same client loop.
    print("bare aiohttp handler ...", flush=True)
    bare_url, bare = await start_bare(procs)
    results["grant", "bare"] = await run_grants([bare_url], "bare", f"bare-{run_id}", args.grants,
                                                args.concurrency)
    procs.stop([bare])
    return results


def report(args, results: dict, procs: Procs, wall: float) -> None:
    cores = os.cpu_count()
    print()
    print(f"machine: {cores} cores (os.cpu_count); players {args.players}, concurrency {args.concurrency}, "
          f"grant cycles {args.grants}; capacity {CAPACITY} per server")
    print("embedded = 1 acs serve (SQLite, ACS_WORKERS=2); scaled = 2 replicas + 2 acs workers (ACS_WORKERS=1 each), "
          "PostgreSQL + Redis")
    if cores is not None and cores <= 2:
        print(f"NOTE: on a {cores}-core machine client, servers, workers, PostgreSQL and Redis share the same cores: "
              "the scaled run shows the overhead of the scaled-out form, not a speed-up.")
    print()
    print(f"{'whole flow':<22}{'flows/s':>9}{'p50 s':>9}{'p99 s':>9}{'errors':>8}{'wall s':>9}")
    for mode in ("embedded", "scaled"):
        r = results["flow", mode]
        print(f"  {mode:<20}{r['rate']:9.2f}{r['p50']:9.2f}{r['p99']:9.2f}{len(r['errors']):8d}"
              f"{r['wall']:9.1f}")
    ratio = results["flow", "scaled"]["rate"] / results["flow", "embedded"]["rate"]
    print(f"  ratio scaled/embedded flows/s: {ratio:.2f}")
    for mode in ("embedded", "scaled"):
        steps = "  ".join(f"{k} {v:.2f}" for k, v in results["flow", mode]["steps"].items())
        print(f"  {mode:<10} p50 per step, s: {steps}")
    print()
    print(f"{'session grants':<22}{'grants/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs bare':>9}")
    bare = results["grant", "bare"]["rate"]
    for mode in ("embedded", "scaled", "bare"):
        r = results["grant", mode]
        print(f"  {mode:<20}{r['rate']:9.1f}{r['p50'] * 1000:9.1f}{r['p99'] * 1000:9.1f}"
              f"{len(r['errors']):8d}{r['rate'] / bare:9.2f}")
    print("  (a grant = RequestAvatarGenerationSessionAsync + GetSessionRequest + EndSession over HTTP RPC; "
          "goal: >= 0.50 of bare)")
    print(f"  ratio scaled/embedded grants/s: {results['grant', 'scaled']['rate'] / results['grant', 'embedded']['rate']:.2f}")
    short = {"RequestAvatarGenerationSessionAsync": "Request", "GetSessionRequest": "Get", "EndSession": "End"}
    for mode in ("embedded", "scaled", "bare"):
        calls = "  ".join(f"{short.get(m, m)} {v * 1000:.1f}" for m, v in results["grant", mode]["per_call"].items())
        print(f"  {mode:<10} p50 per call, ms: {calls}")
    for (part, mode), r in results.items():
        for label, errs in (("errors", r["errors"]), ("warm-up errors", r["warm_errors"])):
            if errs:
                print(f"\n{part} {mode}: {len(errs)} {label}, first ones:")
                for e in errs[:5]:
                    print(f"  {e[:500]}")
    problems = log_problems(procs.logs())
    print()
    if not problems:
        print("server logs: no ERROR lines or tracebacks")
    for name, count, excerpts in problems:
        print(f"server log {name}: {count} ERROR/traceback lines; first ones:")
        for ex in excerpts:
            print("    " + ex.replace("\n", "\n    "))
    print(f"\ntotal wall time {wall:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=200, help="simulated players per mode (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="flows / grant loops at once (default 16)")
    parser.add_argument("--grants", type=int, default=1000, help="session grant cycles per target (default 1000)")
    parser.add_argument("--flow-timeout", type=float, default=300.0, help="seconds one flow may take (default 300)")
    parser.add_argument("--quick", action="store_true", help="20 players, 200 grant cycles")
    args = parser.parse_args()
    if args.quick:
        args.players, args.grants = min(args.players, 20), min(args.grants, 200)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="acs-bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "logs").mkdir()
        procs = Procs(tmp / "logs")
        print(f"{os.cpu_count()} cores; starting PostgreSQL and Redis ...", flush=True)
        pg = PostgresCluster()
        redis = RedisServer()
        try:
            pg.start()
            redis.start()
            results = asyncio.run(run(args, procs, tmp, pg, redis))
        except KeyboardInterrupt:
            print("interrupted; stopping every process started", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception:
            for log in procs.logs():  # what the servers said, for whatever went wrong
                if log.exists():
                    print(f"--- tail of {log.name}:\n{tail(log, 1500)}", file=sys.stderr)
            raise
        finally:
            procs.stop()
            redis.stop()
            pg.stop()
        report(args, results, procs, time.perf_counter() - t0)  # reads the logs: before they are removed


if __name__ == "__main__":
    main()
