"""The local ``JobQueue``: generation jobs in a process pool, so the event loop never blocks.

A worker that dies (for instance killed by the OOM killer) breaks the pool;
:class:`ProcessPoolJobs` then starts a fresh pool and reports ``GenerationFailed``,
so one bad job does not take the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Mapping

from schemas.errors import AcsError
from server.core.fair import FairQueue
from server.jobs import JOBS, GenerationFailed, warm_up

__all__ = ["ProcessPoolJobs", "new_executor"]

log = logging.getLogger(__name__)

class ProcessPoolJobs:
    """A process pool that survives crashed workers and shares them fairly.

    At most ``workers`` jobs run at once; the others wait in a :class:`FairQueue`
    under the ``owner`` given to :meth:`run` (a session, an experience's batch), so
    no owner's backlog holds up another owner's next job.

    Args:
        workers: number of processes.
        executor: an existing executor to use instead (tests share one).
        jobs: the jobs by name (default :data:`server.jobs.JOBS`).
    """

    def __init__(self, workers: int, *, executor: Executor | None = None,
                 jobs: Mapping[str, Callable] = JOBS):
        self._workers = workers
        self._jobs = jobs
        self._owned = executor is None
        self._executor = executor or self._new_executor()
        self._waiting: FairQueue[asyncio.Future] = FairQueue()
        self._running = 0
        #: Times a dead worker made the pool restart.
        self.restarts = 0
        self.on_restart: Callable[[], None] | None = None

    def _new_executor(self) -> Executor:
        return new_executor(self._workers)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _grant(self) -> None:
        while self._running < self._workers and self._waiting:
            turn = self._waiting.pop()
            if not turn.done():
                turn.set_result(None)
                self._running += 1

    async def _slot(self, owner) -> None:
        turn = asyncio.get_running_loop().create_future()
        self._waiting.push(owner, turn)
        self._grant()
        try:
            await turn
        except asyncio.CancelledError:
            if not self._waiting.remove(owner, turn) and turn.done() and not turn.cancelled():
                self._release()  # granted just as the caller gave up
            raise

    def _release(self) -> None:
        self._running -= 1
        self._grant()

    async def run(self, job: str, *args, owner: str = "server"):
        """Run the job named ``job`` with ``args`` in a worker when it is ``owner``'s turn.

        The worker slot is held until the job really ends: a caller that gives up
        (cancelled) does not stop a job already running in a process, so its slot is
        only handed on when the process is done with it.
        """
        await self._slot(owner)
        loop = asyncio.get_running_loop()
        try:
            job = self._executor.submit(self._jobs[job], *args)
        except (BrokenProcessPool, RuntimeError) as exc:  # broken, or shut down
            self._release()
            return await self._failed(self._executor, job, BrokenProcessPool(str(exc)))

        def done(_job) -> None:
            with contextlib.suppress(RuntimeError):  # the loop already closed (shutdown)
                loop.call_soon_threadsafe(self._release)

        job.add_done_callback(done)
        executor = self._executor
        try:
            return await asyncio.wrap_future(job)
        except (AcsError, asyncio.CancelledError):
            raise
        except Exception as exc:
            return await self._failed(executor, job, exc)

    async def _failed(self, executor, job: str, exc: Exception):
        if isinstance(exc, BrokenProcessPool):
            # Several jobs see the same broken pool; only the first replaces it.
            if self._owned and executor is self._executor:
                log.error("generation worker died; restarting the pool")
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
                self.restarts += 1
                if self.on_restart is not None:
                    self.on_restart()
            raise GenerationFailed("The generation worker stopped unexpectedly; try again.") from exc
        log.error("generation job %s failed", job, exc_info=exc)
        raise GenerationFailed("Generation failed on the server; try again.") from exc

    async def warm(self) -> None:
        """Start every worker now rather than on the first request."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _noop) for _ in range(self._workers)))

    async def health(self) -> dict:
        # ProcessPoolExecutor keeps its processes by pid; it starts them as jobs arrive.
        procs = getattr(self._executor, "_processes", None) or {}
        alive = sum(1 for p in list(procs.values()) if p.is_alive()) if procs else 0
        return {"workers": alive, "expected": self._workers, "waiting": self.waiting, "running": self._running}

    def shutdown(self) -> None:
        if self._owned:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _noop() -> None:
    return None


def new_executor(workers: int) -> Executor:
    """A standalone warmed-up executor that several apps can share (tests)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=warm_up)
