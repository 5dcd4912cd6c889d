"""Real services for the tests that need them: a throwaway PostgreSQL cluster and a Redis server.

The cluster is made with the installed server binaries (``initdb`` / ``pg_ctl``, PostgreSQL 15 on
Debian under ``/usr/lib/postgresql``) in a temporary folder, listens on 127.0.0.1 on a free port
with trust authentication, and is stopped and removed when the test session ends.  Run as root,
the cluster belongs to the ``postgres`` user (PostgreSQL refuses to run as root).  When the binaries
are missing the fixture fails: a test that needs PostgreSQL never passes without it.

The Redis server is Debian's ``redis-server`` on 127.0.0.1 on a free port, without persistence
(``--save '' --appendonly no``), its working folder a temporary one; it is killed and the folder
removed when stopped.  ``bash tests/install_services.sh`` installs both when they are missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresCluster", "RedisServer", "pg_bin_dir", "free_port"]


def pg_bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                       "apt-get install -y postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """``with PostgresCluster() as pg: pg.url(dbname)``; :meth:`create_database` makes a fresh one."""

    def __init__(self) -> None:
        self.bin = pg_bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="acs-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0
        self._count = 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> "PostgresCluster":
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{dbname}"

    async def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import asyncpg

        self._count += 1
        name = f"acs_test_{self._count}"
        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database="postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class RedisServer:
    """``with RedisServer() as redis: redis.url``; a redis-server of its own, gone after :meth:`stop`."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (not on PATH): "
                               "run `bash tests/install_services.sh` (Debian's redis-server package)")
        self.bin = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="acs-redis-"))
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> "RedisServer":
        cmd = [self.bin, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
               "--save", "", "--appendonly", "no", "--daemonize", "no"]
        with open(self.dir / "log", "wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._pong():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log_text = (self.dir / "log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{log_text}")
            time.sleep(0.05)
        return self

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
