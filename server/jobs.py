"""Generation jobs in a process pool, so the event loop never blocks.

The functions at the top run inside worker processes; they take and return
plain picklable values (bytes, dicts).  Typed refusals (:class:`AcsError`)
cross the process boundary intact.  A worker that dies (for instance killed
by the OOM killer) breaks the pool; :class:`JobPool` then starts a fresh pool
and reports ``GenerationFailed``, so one bad job does not take the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import msgpack
import numpy as np

from schemas.errors import AcsError

from .fair import FairQueue

__all__ = ["JobPool", "GenerationFailed", "probe_job", "preview_job", "avatar_job", "export_job",
           "pack_features", "unpack_features", "new_executor"]

log = logging.getLogger(__name__)


class GenerationFailed(AcsError):
    status = 500
    default_code = "GenerationFailed"


# -- worker-side functions -------------------------------------------------


#: How often the fallback watcher looks for a dead parent (seconds).
_PARENT_POLL_S = 1.0


def _exit_with_parent() -> None:
    """Make this worker exit when the server process that started it dies.

    A ``kill -9`` of the server leaves no one to shut the pool down, and a worker holds
    its models (~570 MB).  On Linux, ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` has the kernel
    signal the worker when its parent goes; the parent may already be gone before that
    call, so ``getppid()`` is checked right after it.  A daemon thread that polls
    ``getppid()`` backs it up everywhere (and is the only guard off Linux).

    The kernel sends the death signal when the *thread* that started the worker exits;
    the pool starts workers from the thread that submits jobs (the event loop's), which
    lives as long as the pool does.
    """
    import sys
    import threading
    import time

    parent = multiprocessing.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # the running process's symbols: libc's prctl
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl(PR_SET_PDEATHSIG) unavailable: %s", exc)
    if os.getppid() != parent_pid:
        os._exit(1)  # the server died before the death signal was armed

    def watch() -> None:
        while True:
            time.sleep(_PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="acs-parent-watch", daemon=True).start()


def _warm_up() -> None:
    """Pool initializer: exit with the server (see :func:`_exit_with_parent`), then load
    the pipelines and face models once per worker process."""
    _exit_with_parent()
    import generation.avatar_builder
    import generation.preview
    import meshes  # noqa: F401

    generation.avatar_builder.warm_up()
    # mediapipe's C++ side prints model set-up chatter straight to fd 2; keep it out of the
    # server's output while the models load (later warnings still show).
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            generation.preview.warm_up()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def pack_features(landmarks: np.ndarray, skin_rgb, hair_rgb) -> bytes:
    """What the 3D builder needs from a preview, as one msgpack blob."""
    lm = np.ascontiguousarray(landmarks, dtype="<f4")
    return msgpack.packb({"landmarks": lm.tobytes(), "shape": list(lm.shape),
                          "skin_rgb": list(skin_rgb), "hair_rgb": list(hair_rgb)})


def unpack_features(blob: bytes) -> dict:
    d = msgpack.unpackb(blob)
    d["landmarks"] = np.frombuffer(d["landmarks"], dtype="<f4").reshape(d["shape"])
    return d


def probe_job(data: bytes) -> dict:
    from generation.photo import probe_photo

    return probe_photo(data)


def preview_job(data: bytes, options: dict) -> dict:
    """``options`` are make_preview's keywords (text_prompt, style, size, backend, ...)."""
    from generation.preview import make_preview

    result = make_preview(data, **options)
    return {
        "png": result.png,
        "thumbnail": result.thumbnail_png,
        "report": result.report,
        "features": pack_features(result.landmarks, result.skin_rgb, result.hair_rgb),
    }


def avatar_job(preview_png: bytes, features: bytes, text_prompt: str | None) -> dict:
    from generation.avatar_builder import build_avatar
    from meshes import export_glb

    f = unpack_features(features)
    avatar = build_avatar(preview_png, landmarks=f["landmarks"], skin_rgb=tuple(f["skin_rgb"]),
                          hair_rgb=tuple(f["hair_rgb"]), text_prompt=text_prompt)
    return {
        # Stored with PNG textures: a quarter of the raw size, same content hash.
        "document": msgpack.packb(avatar.to_wire("PNG"), use_bin_type=True),
        "glb": export_glb(avatar),
        "description": avatar.description,
    }


def export_job(document: bytes) -> dict:
    """Validate and export an edit document (msgpack of Avatar.to_wire())."""
    from meshes import Avatar, export_glb, validate_full_body

    avatar = Avatar.from_wire(msgpack.unpackb(document, raw=False))
    ok, reasons = validate_full_body(avatar)
    return {"ok": ok, "reasons": reasons, "glb": export_glb(avatar) if ok else None}


# -- the pool -----------------------------------------------------------------


class JobPool:
    """A process pool that survives crashed workers and shares them fairly.

    At most ``workers`` jobs run at once; the others wait in a :class:`FairQueue`
    under the ``owner`` given to :meth:`run` (a session, an experience's batch), so
    no owner's backlog holds up another owner's next job.

    Args:
        workers: number of processes.
        executor: an existing executor to use instead (tests share one).
    """

    def __init__(self, workers: int, *, executor: Executor | None = None):
        self._workers = workers
        self._owned = executor is None
        self._executor = executor or self._new_executor()
        self._waiting: FairQueue[asyncio.Future] = FairQueue()
        self._running = 0

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

    async def run(self, fn, *args, owner="server"):
        """Run ``fn(*args)`` in a worker when it is ``owner``'s turn.

        The worker slot is held until the job really ends: a caller that gives up
        (cancelled) does not stop a job already running in a process, so its slot is
        only handed on when the process is done with it.
        """
        await self._slot(owner)
        loop = asyncio.get_running_loop()
        try:
            job = self._executor.submit(fn, *args)
        except (BrokenProcessPool, RuntimeError) as exc:  # broken, or shut down
            self._release()
            return await self._failed(self._executor, fn, BrokenProcessPool(str(exc)))

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
            return await self._failed(executor, fn, exc)

    async def _failed(self, executor, fn, exc: Exception):
        if isinstance(exc, BrokenProcessPool):
            # Several jobs see the same broken pool; only the first replaces it.
            if self._owned and executor is self._executor:
                log.error("generation worker died; restarting the pool")
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
            raise GenerationFailed("The generation worker stopped unexpectedly; try again.") from exc
        log.error("generation job %s failed", getattr(fn, "__name__", fn), exc_info=exc)
        raise GenerationFailed("Generation failed on the server; try again.") from exc

    async def warm(self) -> None:
        """Start every worker now rather than on the first request."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _noop) for _ in range(self._workers)))

    def shutdown(self) -> None:
        if self._owned:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _noop() -> None:
    return None


def new_executor(workers: int) -> Executor:
    """A standalone warmed-up executor that several apps can share (tests)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_warm_up)
