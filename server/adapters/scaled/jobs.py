"""The scaled-out ``JobQueue``: procrastinate on PostgreSQL, jobs run by ``acs worker``.

A job's input and its result live in our ``jobs`` table (msgpack), so only the job's id
crosses the engine.  The server writes that row and defers the procrastinate job in one
transaction, through ``procrastinate_defer_jobs_v1`` (the SQL function procrastinate's own
``defer`` calls): both exist or neither does.  A worker marks the row ``Running``, runs the
job in its process pool, then writes the result and ``NOTIFY acs_job_done`` in one
transaction.  The server waiting for it LISTENs on its own connection and reads the row
every :data:`POLL` seconds as well, so a lost notification costs at most that.

A worker killed mid-job stops its heartbeat; every worker looks for jobs whose worker has
been silent for ``job_stalled_after`` seconds and sends them back to the queue
(procrastinate finds them; retrying is left to the application), so another worker runs
them.  Running a job twice is harmless: the result is written once per job id, and the
server charges a quota when it reads the result, once.

Fairness: a job is deferred with priority minus the number of its owner's jobs still
queued or running, so one owner's backlog (a 50-photo batch) does not hold up another
owner's next job by more than one turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from typing import Any, Callable

import msgpack
from sqlalchemy import delete, func, select, text, update

from schemas.errors import AcsError
from server.core.ids import new_id
from server.db import JobRow
from server.jobs import JOBS, GenerationFailed
from server.ports import Store

__all__ = ["ProcrastinateJobs", "procrastinate_app", "execute", "retry_stalled", "pg_dsn", "TASK", "QUEUE"]

log = logging.getLogger(__name__)

TASK = "acs.run_job"
QUEUE = "generation"
#: Seconds between reads of a job's row while waiting for it (the fallback to NOTIFY).
POLL = 1.0
#: The channel a finished job is announced on (payload: the job id).
DONE_CHANNEL = "acs_job_done"

_DEFER = text("""SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
    CAST(:queue AS varchar), CAST(:task AS varchar), CAST(:priority AS integer), CAST(NULL AS text),
    CAST(NULL AS text), CAST(:args AS jsonb), CAST(NULL AS timestamptz)
)::procrastinate_job_to_defer_v1]))""")


def pg_dsn(url: str) -> str:
    """A libpq/asyncpg DSN from SQLAlchemy's ``postgresql+asyncpg://`` URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://...")
    return f"postgresql://{rest}"


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _unpack(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False)


def error_to_row(err: AcsError) -> dict:
    cls = type(err)
    return {"type": f"{cls.__module__}.{cls.__qualname__}", "code": err.code, "message": err.message,
            "status": err.status}


def _error_classes() -> dict[str, type]:
    """Every AcsError subclass loaded in this process, by ``module.QualName``."""
    found, todo = {}, [AcsError]
    while todo:
        cls = todo.pop()
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        todo.extend(cls.__subclasses__())
    return found


def error_from_row(d: dict) -> AcsError:
    """The typed refusal a job raised, rebuilt as its own class when that class is loaded
    here (nothing is imported on the row's say-so), else as a plain AcsError."""
    cls = _error_classes().get(str(d.get("type", "")), AcsError)
    err = cls.__new__(cls)  # its fields, not its constructor's defaults
    AcsError.__init__(err, str(d.get("message", "")), code=str(d.get("code", "GenerationFailed")),
                      status=int(d.get("status", 500)))
    return err


class ProcrastinateJobs:
    """The server side: defer a job, wait for its result.

    Args:
        store: the PostgreSQL store (``jobs`` and procrastinate's tables are in it).
        database_url: its URL, for the LISTEN connection.
    """

    def __init__(self, store: Store, *, database_url: str, clock: Callable[[], float] = time.time,
                 stalled_after: float = 10.0):
        self.store = store
        self.stalled_after = stalled_after
        self.dsn = pg_dsn(database_url)
        self.clock = clock
        self._done: dict[str, asyncio.Event] = {}
        self._listener = None

    async def warm(self) -> None:
        """Open the LISTEN connection (the workers load their own models)."""
        import asyncpg

        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(DONE_CHANNEL, self._notified)

    def _notified(self, _conn, _pid, _channel, job_id: str) -> None:
        event = self._done.get(job_id)
        if event is not None:
            event.set()

    async def health(self) -> dict:
        """The ``acs worker``s heard from within ``stalled_after`` seconds, and the queue."""
        async with self.store() as db:
            alive = await db.scalar(text(
                "SELECT count(*) FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - make_interval(secs => :secs)"), {"secs": self.stalled_after})
            states = dict((await db.execute(text(
                "SELECT status::text, count(*) FROM procrastinate_jobs WHERE queue_name = :queue "
                "AND status IN ('todo', 'doing') GROUP BY status"), {"queue": QUEUE})).all())
        return {"workers": int(alive or 0), "expected": 0, "waiting": int(states.get("todo", 0)),
                "running": int(states.get("doing", 0))}

    def shutdown(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(listener.close(timeout=2))

    async def run(self, job: str, *args, owner: str = "server"):
        if job not in JOBS:
            raise KeyError(job)
        job_id = new_id("job")
        self._done[job_id] = done = asyncio.Event()
        try:
            async with self.store.begin() as db:
                ahead = await db.scalar(select(func.count()).select_from(JobRow).where(
                    JobRow.owner == owner, JobRow.state.in_(("Queued", "Running"))))
                db.add(JobRow(id=job_id, job=job, owner=owner, state="Queued", args=_pack(list(args)),
                              attempts=0, created_at=self.clock()))
                await db.flush()
                engine_id = (await db.execute(_DEFER, {"queue": QUEUE, "task": TASK, "priority": -int(ahead),
                                                       "args": json.dumps({"job_id": job_id})})).scalar_one()
            try:
                row = await self._wait(job_id, engine_id, done)
            except BaseException:
                # The caller went away (or the job was lost): a worker that has not started it
                # skips it, and the row goes.
                with contextlib.suppress(Exception):
                    async with self.store.begin() as db:
                        await db.execute(delete(JobRow).where(JobRow.id == job_id))
                raise
        finally:
            self._done.pop(job_id, None)
        async with self.store.begin() as db:
            await db.execute(delete(JobRow).where(JobRow.id == job_id))
        if row.state == "Failed":
            raise error_from_row(row.error or {"message": "Generation failed on a worker; try again.",
                                               "code": "GenerationFailed", "status": 500})
        return _unpack(row.result)

    async def _wait(self, job_id: str, engine_id: int, done: asyncio.Event) -> JobRow:
        """The job's row once a worker has finished it.  A job the engine gave up on (failed
        or aborted without writing its outcome, or deleted) is ``GenerationFailed``."""
        while True:
            async with self.store() as db:
                row = await db.get(JobRow, job_id, populate_existing=True)
                if row is None:
                    raise GenerationFailed("The generation job was lost; try again.")
                if row.state in ("Done", "Failed"):
                    return row
                status = await db.scalar(text("SELECT status FROM procrastinate_jobs WHERE id = :id"),
                                         {"id": engine_id})
            if status in (None, "failed", "aborted", "cancelled"):
                async with self.store() as db:  # finished just now, or really given up?
                    row = await db.get(JobRow, job_id)
                if row is not None and row.state in ("Done", "Failed"):
                    return row
                log.error("job %s: the engine ended it (%s) without an outcome", job_id, status or "deleted")
                raise GenerationFailed("The generation worker stopped unexpectedly; try again.")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), POLL)
            done.clear()


# -- the worker side -----------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def execute(store: Store, pool, job_id: str, clock: Callable[[], float] = time.time) -> None:
    """Run the job ``job_id`` in ``pool`` (the local ``JobQueue``) and store its outcome."""
    async with store.begin() as db:
        row = await db.get(JobRow, job_id, with_for_update=True)
        if row is None or row.state in ("Done", "Failed"):
            return  # its server gave up (row swept), or a retried copy already finished it
        row.state, row.worker, row.attempts = "Running", worker_name(), row.attempts + 1
        name, owner, args = row.job, row.owner, _unpack(row.args)
    try:
        values = {"state": "Done", "result": _pack(await pool.run(name, *args, owner=owner))}
    except AcsError as err:
        values = {"state": "Failed", "error": error_to_row(err)}
    except Exception as exc:  # the job's own bug: the server gets GenerationFailed
        log.exception("job %s (%s) failed", job_id, name)
        values = {"state": "Failed", "error": error_to_row(GenerationFailed(f"Generation failed: {exc}"))}
    async with store.begin() as db:
        await db.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == "Running")
                         .values(finished_at=clock(), **values))
        await db.execute(text("SELECT pg_notify(:channel, :id)"), {"channel": DONE_CHANNEL, "id": job_id})


def procrastinate_app(database_url: str):
    """The procrastinate app of ``acs worker``, with its one task (``TASK``).

    The task finds what it needs in the worker's ``additional_context``: ``execute``, a
    coroutine function taking the job id.
    """
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=pg_dsn(database_url)))

    @app.task(name=TASK, queue=QUEUE, pass_context=True)
    async def run_job(context, job_id: str) -> None:
        await context.additional_context["execute"](job_id)

    return app


async def retry_stalled(app, *, stalled_after: float) -> int:
    """Send the jobs of workers silent for ``stalled_after`` seconds back to the queue."""
    retried = 0
    for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_after):
        try:
            await app.job_manager.retry_job(job)
        except Exception as exc:  # another worker retried it first
            log.debug("retrying stalled job %s: %s", job.id, exc)
            continue
        log.warning("job %s: its worker stopped answering; retried", job.id)
        retried += 1
    return retried
