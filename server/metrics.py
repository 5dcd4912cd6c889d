"""What an operator's Prometheus scrapes at ``GET /metrics``: one :class:`Metrics` per server.

Every instrument lives in the server's own ``CollectorRegistry`` (several servers in
one process, as in the tests, do not share counts).  Labels take values from fixed
sets only (method names of :data:`schemas.METHODS`, error codes the server defines,
job and stage names), never from a caller's input, so a scrape stays small.

Counters and histograms are updated where things happen; the gauges of the session
pool and of the generation workers are read when scraped (:meth:`Metrics.refresh`),
from the database and the job queue, so they are exact across replicas.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from schemas import METHODS
from schemas.errors import AcsError

__all__ = ["Metrics", "MeteredJobs", "CONTENT_TYPE_LATEST"]

#: Seconds; from a cache hit to a slow avatar build on a busy machine.
_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_WAIT_BUCKETS = (0.1, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.calls = Counter("acs_calls", "Method calls answered, by method and outcome (ok, or the error code).",
                             ["method", "outcome"], registry=r)
        self.call_seconds = Histogram("acs_call_duration_seconds", "Time to answer a method call.", ["method"],
                                      buckets=_CALL_BUCKETS, registry=r)
        self.refusals = Counter("acs_refusals", "Requests refused, by error code and transport (http, ws).",
                                ["code", "transport"], registry=r)
        self.queue_length = Gauge("acs_session_queue_length", "Session requests waiting for a slot.", registry=r)
        self.active_sessions = Gauge("acs_active_sessions", "Generation sessions active now.", registry=r)
        self.capacity = Gauge("acs_session_capacity", "Sessions that may be active at once.", registry=r)
        self.queue_wait = Histogram("acs_session_queue_wait_seconds",
                                    "From a session request to its session's start.", buckets=_WAIT_BUCKETS,
                                    registry=r)
        self.job_seconds = Histogram("acs_job_duration_seconds",
                                     "Generation jobs from submission to result (waiting for a worker included), "
                                     "by job and outcome.", ["job", "outcome"], buckets=_JOB_BUCKETS, registry=r)
        self.stage_seconds = Histogram("acs_generation_stage_seconds", "Stages inside generation jobs.",
                                       ["job", "stage"], buckets=_JOB_BUCKETS, registry=r)
        self.jobs_waiting = Gauge("acs_jobs_waiting", "Generation jobs waiting for a worker.", registry=r)
        self.jobs_running = Gauge("acs_jobs_running", "Generation jobs running.", registry=r)
        self.workers = Gauge("acs_generation_workers",
                             "Generation worker processes alive (the server's pool), or acs workers whose "
                             "heartbeat is recent (scaled out).", registry=r)
        self.workers_expected = Gauge("acs_generation_workers_expected",
                                      "Generation worker processes configured (the server's pool; 0 scaled out).",
                                      registry=r)
        self.worker_restarts = Counter("acs_generation_worker_restarts",
                                       "Times the generation pool was restarted after a worker died.", registry=r)
        self.websockets = Gauge("acs_websocket_connections", "Open websockets, by role (server, client).",
                                ["role"], registry=r)
        self.edit_ops = Counter("acs_edit_ops", "Edit ops applied to edit documents, by who sent them.", ["origin"],
                                registry=r)
        self.edit_batches = Counter("acs_edit_batches", "Edit batches applied, by who sent them.", ["origin"],
                                    registry=r)
        self.publish_results = Counter("acs_publish_results", "PromptCreateAvatarAsync outcomes, by Result.",
                                       ["result"], registry=r)

    # -- updated where things happen ---------------------------------------------

    def observe_call(self, method: str, outcome: str, seconds: float) -> None:
        method = method if method in METHODS else "unknown"
        self.calls.labels(method, outcome).inc()
        self.call_seconds.labels(method).observe(seconds)

    def refused(self, code: str, transport: str) -> None:
        self.refusals.labels(code, transport).inc()

    def job(self, name: str, outcome: str, seconds: float, result=None) -> None:
        """One generation job's duration, and its stages' when its report has ``timings_ms``
        (the preview pipeline's, stage by stage)."""
        self.job_seconds.labels(name, outcome).observe(seconds)
        report = result.get("report") if isinstance(result, dict) else None
        timings = report.get("timings_ms") if isinstance(report, dict) else None
        if isinstance(timings, dict):
            for stage, ms in timings.items():
                if isinstance(ms, (int, float)):
                    self.stage_seconds.labels(name, str(stage)).observe(ms / 1000.0)

    def edits(self, origin: str, ops: int) -> None:
        self.edit_batches.labels(origin).inc()
        self.edit_ops.labels(origin).inc(ops)

    # -- read when scraped ---------------------------------------------------------

    def refresh(self, *, queued: int, active: int, capacity: int, jobs: dict, sockets: dict[str, int]) -> None:
        self.queue_length.set(queued)
        self.active_sessions.set(active)
        self.capacity.set(capacity)
        self.jobs_waiting.set(jobs.get("waiting", 0))
        self.jobs_running.set(jobs.get("running", 0))
        self.workers.set(jobs.get("workers", 0))
        self.workers_expected.set(jobs.get("expected", 0))
        for role, n in sockets.items():
            self.websockets.labels(role).set(n)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MeteredJobs:
    """A ``JobQueue`` that times each job (and the stages a job reports) into ``metrics``."""

    def __init__(self, jobs, metrics: Metrics) -> None:
        self.inner = jobs
        self.metrics = metrics

    async def run(self, job: str, *args, owner: str = "server"):
        start, outcome, result = time.perf_counter(), "ok", None
        try:
            result = await self.inner.run(job, *args, owner=owner)
            return result
        except AcsError as err:
            outcome = err.code
            raise
        except Exception:
            outcome = "error"
            raise
        except BaseException:  # the caller went away
            outcome = "cancelled"
            raise
        finally:
            self.metrics.job(job, outcome, time.perf_counter() - start, result)

    async def health(self) -> dict:
        return await self.inner.health()

    async def warm(self) -> None:
        await self.inner.warm()

    def shutdown(self) -> None:
        self.inner.shutdown()
