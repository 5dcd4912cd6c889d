"""``acs worker``: runs the generation jobs of the scaled-out form.

A composition root: it opens the PostgreSQL store, warms a local process pool
(``ACS_WORKERS`` processes, the models loaded once each), and runs procrastinate's worker
with that many jobs at once.  Every ``job_heartbeat`` seconds it says it is alive and
looks for jobs whose worker has been silent for ``job_stalled_after`` seconds, which it
sends back to the queue.  SIGTERM or SIGINT: it stops taking jobs, finishes the running
ones and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from server.adapters.local.jobs import ProcessPoolJobs
from server.adapters.scaled.jobs import QUEUE, execute, procrastinate_app, retry_stalled, worker_name
from server.config import Config
from server.db import migrate, open_engine

__all__ = ["run_worker"]

log = logging.getLogger(__name__)


async def run_worker(config: Config, *, stop: asyncio.Event | None = None) -> None:
    """Run jobs until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    if not config.db_url.startswith("postgresql"):
        raise ValueError("acs worker runs the scaled-out form's jobs: set ACS_DATABASE_URL=postgresql+asyncpg://...")
    engine, store = open_engine(config.db_url)
    await migrate(engine)
    pool = ProcessPoolJobs(config.workers)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await pool.warm()
        app = procrastinate_app(config.db_url)
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                queues=[QUEUE], concurrency=config.workers, wait=True, install_signal_handlers=False,
                name=worker_name(), delete_jobs="successful", fetch_job_polling_interval=config.job_heartbeat,
                update_heartbeat_interval=config.job_heartbeat,
                stalled_worker_timeout=config.job_stalled_after,
                additional_context={"execute": lambda job_id: execute(store, pool, job_id)}))
            log.info("acs worker %s: %d processes, queue %r", worker_name(), config.workers, QUEUE)
            while not stop.is_set() and not worker.done():
                try:
                    await retry_stalled(app, stalled_after=config.job_stalled_after)
                except Exception:
                    log.exception("looking for stalled jobs failed")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), config.job_heartbeat)
            worker.cancel()  # procrastinate stops fetching and waits for the running jobs
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    finally:
        pool.shutdown()
        await engine.dispose()
