"""The scaled-out topology on loopback: N ``acs serve`` replicas and M ``acs worker`` processes
sharing one PostgreSQL database, one Redis and one data folder, each a real subprocess.

Every process's output goes to a log file in the data folder, named in assertion messages.
``kill(proc)`` is a ``kill -9``; :meth:`Topology.stop` ends whatever is left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from .services import free_port

__all__ = ["Topology", "Proc"]


class Proc:
    def __init__(self, kind: str, popen: subprocess.Popen, log: Path, url: str | None = None):
        self.kind, self.popen, self.log, self.url = kind, popen, log, url

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


class Topology:
    """``async with Topology(data_dir, database_url, redis_url, replicas=2, workers=2) as t: t.urls``"""

    def __init__(self, data_dir: Path, database_url: str, redis_url: str, *, replicas: int = 2,
                 workers: int = 2, **env: str):
        self.data_dir = Path(data_dir)
        self.n_replicas, self.n_workers = replicas, workers
        self.env = {
            **os.environ,
            "ACS_DATA_DIR": str(self.data_dir), "ACS_DATABASE_URL": database_url, "ACS_REDIS_URL": redis_url,
            "ACS_WORKERS": "1", "ACS_JOB_HEARTBEAT": "0.5", "ACS_JOB_STALLED_AFTER": "2",
            **{k: str(v) for k, v in env.items()},
        }
        self.replicas: list[Proc] = []
        self.workers: list[Proc] = []

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]

    def _spawn(self, kind: str, args: list[str], env: dict, name: str) -> tuple[subprocess.Popen, Path]:
        log = self.data_dir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "server.cli", *args], env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        return popen, log

    async def start_replica(self, timeout: float = 60.0) -> Proc:
        port = free_port()
        i = len(self.replicas)
        popen, log = self._spawn("replica", ["serve"], {**self.env, "ACS_PORT": str(port)}, f"replica{i}")
        proc = Proc("replica", popen, log, f"http://127.0.0.1:{port}")
        self.replicas.append(proc)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                try:
                    async with http.get(f"{proc.url}/healthz") as r:
                        if r.status == 200:
                            return proc
                except aiohttp.ClientError:
                    pass
                assert proc.alive(), f"replica {i} exited during start-up:\n{proc.output()}"
                await asyncio.sleep(0.1)
        raise AssertionError(f"replica {i} did not start in {timeout:g} s:\n{proc.output()}")

    async def start_worker(self, timeout: float = 180.0) -> Proc:
        i = len(self.workers)
        popen, log = self._spawn("worker", ["worker"], self.env, f"worker{i}")
        proc = Proc("worker", popen, log)
        self.workers.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "acs worker" in proc.output():  # logged once its processes are warm
                return proc
            assert proc.alive(), f"worker {i} exited during start-up:\n{proc.output()}"
            await asyncio.sleep(0.2)
        raise AssertionError(f"worker {i} did not start in {timeout:g} s:\n{proc.output()}")

    async def start(self) -> "Topology":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            # Replicas one after another: the first migrates the database, the others find it done.
            for _ in range(self.n_replicas):
                await self.start_replica()
            await asyncio.gather(*(self.start_worker() for _ in range(self.n_workers)))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in self.replicas + self.workers:
            if proc.alive():
                proc.popen.terminate()
        for proc in self.replicas + self.workers:
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()}" for p in self.replicas + self.workers)

    async def __aenter__(self) -> "Topology":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        self.stop()
