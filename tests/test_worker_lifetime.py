"""Generation workers exit when the server process dies, even by ``kill -9``.

Each test starts a small parent process (the server's role) that makes a pool,
prints its children's pids once the workers are up, then waits; the test kills the
parent with SIGKILL and checks every child it had is gone within a few seconds.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The parent: a pool of one worker made by ``new_executor`` (or with ``INITIALIZER``
#: from this module), warmed up, then it prints "READY <worker pid>" and waits.
PARENT = textwrap.dedent("""
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing
    from server.adapters.local.jobs import new_executor

    if sys.argv[1] == "new_executor":
        pool = new_executor(1)
    else:
        import tests.test_worker_lifetime as t
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=getattr(t, sys.argv[1]))
    print("READY", pool.submit(os.getpid).result(timeout=300), flush=True)
    time.sleep(600)
""")


def ignore_sigterm_thenexit_with_parent() -> None:
    """Worker initializer that takes the kernel's death signal away, so only the
    portable fallback (the thread polling ``getppid()``) can end the worker."""
    from server.jobs import exit_with_parent

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    exit_with_parent()


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.update(int(c) for c in (task / "children").read_text().split())
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone: it holds no memory, only a pid until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def _kill_parent_and_watch(initializer: str, deadline_s: float) -> float:
    """Start the parent, SIGKILL it once its worker is up; the seconds until all of
    its children were gone (fails when some outlive ``deadline_s``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, initializer], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    children: set[int] = set()
    try:
        ready, _, _ = select.select([parent.stdout], [], [], 300)
        line = parent.stdout.readline() if ready else ""
        assert line.startswith("READY "), f"the parent never reported its worker (got {line!r})"
        worker = int(line.split()[1])
        children = _children(parent.pid)
        assert worker in children, (worker, children)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        t0 = time.monotonic()
        while any(_alive(c) for c in children) and time.monotonic() - t0 < deadline_s:
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        left = {c: _cmdline(c) for c in children if _alive(c)}
        assert not left, f"outlived the killed parent by {deadline_s} s: {left}"
        return elapsed
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for c in children:
            if _alive(c):
                os.kill(c, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_server_is_killed():
    # The kernel's death signal: the worker (and the pool's resource tracker) go at once.
    elapsed = _kill_parent_and_watch("new_executor", deadline_s=5.0)
    assert elapsed < 5.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_fallback_watcher_ends_a_worker_that_ignores_the_death_signal():
    # Only the thread polling getppid() (every second) is left to notice.
    _kill_parent_and_watch("ignore_sigterm_thenexit_with_parent", deadline_s=5.0)


def test_a_worker_whose_parent_is_already_gone_exits_at_once():
    # The parent can die before the death signal is armed: the check right after it.
    code = textwrap.dedent("""
        import multiprocessing, server.jobs as jobs
        class Gone:
            pid = -1
        multiprocessing.parent_process = lambda: Gone()
        jobs.exit_with_parent()
        print("still running")
    """)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert run.returncode == 1 and "still running" not in run.stdout, (run.returncode, run.stdout, run.stderr)
