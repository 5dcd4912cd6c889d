"""Run the app on a real socket inside the current event loop (demo and tests)."""

from __future__ import annotations

from aiohttp import web

from server.config import Config
from server.web.app import create_app
from server.web.common import AccessLogger

__all__ = ["RunningServer"]


class RunningServer:
    """``async with RunningServer(config) as srv: srv.url`` — binds 127.0.0.1 on a free port by default."""

    def __init__(self, config: Config, *, executor=None):
        self.config = config
        self.app = create_app(config, executor=executor)
        self.runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=2.0,
                                    access_log_class=AccessLogger)
        self.url = ""

    async def start(self) -> "RunningServer":
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def __aenter__(self) -> "RunningServer":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()
