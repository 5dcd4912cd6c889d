"""``create_app(config)``: the one place that knows every piece of the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
import weakref
from pathlib import Path

from aiohttp import WSCloseCode, web

import server.services  # noqa: F401  (registers the method handlers)
from server.adapters.blobs import FolderBlobStore
from server.adapters.local.jobs import ProcessPoolJobs
from server.adapters.purchases import HttpPurchases
from server.adapters.scaled.bus import RedisBus
from server.adapters.scaled.edits import RedisEditFeed
from server.adapters.scaled.jobs import ProcrastinateJobs
from server.config import MAX_UPLOAD_BYTES, Config
from server.core.limits import CallerBudgets
from server.db import migrate, open_engine
from server.services.hub import Hub
from server.services.service import Service
from server.web import files, operations, rpc, ws
from server.web.common import error_middleware, plain_server_header, request_context
from server.web.keys import BUDGETS, CONFIG, SERVICE, SOCKETS
from server.web.pages import add_pages

__all__ = ["create_app", "load_secret"]

log = logging.getLogger(__name__)


def load_secret(data_dir: Path) -> bytes:
    """The token-signing secret, created on first start and kept in the data dir.

    Replicas sharing the data dir (scaled out) may start together: the secret is written
    to a file of its own and linked into place, so exactly one is kept and no replica
    reads a half-written one.
    """
    path = Path(data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another replica's came first
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_bytes()


def create_app(config: Config, *, executor=None) -> web.Application:
    """Build the application.  ``executor`` lets tests share one process pool."""
    app = web.Application(middlewares=[request_context, error_middleware], client_max_size=MAX_UPLOAD_BYTES + 64 * 1024)
    app[CONFIG] = config
    app[SOCKETS] = weakref.WeakSet()
    app[BUDGETS] = CallerBudgets(config)

    async def service_ctx(app: web.Application):
        Path(config.data_dir).mkdir(parents=True, exist_ok=True)
        Path(config.data_dir).chmod(0o700)  # selfies, tokens' secret and the database: the owner's only
        engine, sessionmaker = open_engine(config.db_url)
        await migrate(engine)
        if config.scaled:  # generation runs on `acs worker`s
            jobs = ProcrastinateJobs(sessionmaker, database_url=config.db_url, stalled_after=config.job_stalled_after)
        else:
            jobs = ProcessPoolJobs(config.workers, executor=executor)
        await jobs.warm()  # load the face models now, not on the first player's request
        hub = Hub()
        # Scaled out, events, prompts and edit batches cross replicas through Redis.
        bus = RedisBus(hub, config.redis_url) if config.scaled else None
        feed = RedisEditFeed(config.redis_url) if config.scaled else None
        for part in (bus, feed):
            if part is not None:
                await part.start()
        svc = Service(config=config, db=sessionmaker, blobs=FolderBlobStore(config.blob_dir), jobs=jobs,
                      purchases=HttpPurchases(), secret=load_secret(config.data_dir), hub=hub, bus=bus,
                      prompt_relay=bus, edit_feed=feed)
        if bus is not None:
            bus.attach_prompts(svc.prompts)
            bus.on_revoked = svc.tokens_revoked
        await svc.start()
        app[SERVICE] = svc
        yield
        await svc.stop()
        for part in (feed, bus):
            if part is not None:
                await part.stop()
        jobs.shutdown()
        await engine.dispose()

    async def close_sockets(app: web.Application) -> None:
        # All at once, each bounded: a peer that does not answer is dropped.
        await asyncio.gather(*(conn.close(WSCloseCode.GOING_AWAY, b"server shutdown")
                               for conn in list(app[SOCKETS])))

    app.cleanup_ctx.append(service_ctx)
    app.on_shutdown.append(close_sockets)
    app.on_response_prepare.append(plain_server_header)
    app.add_routes(rpc.routes)
    app.add_routes(ws.routes)
    app.add_routes(files.routes)
    app.add_routes(operations.routes)
    add_pages(app)
    return app
