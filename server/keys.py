"""Typed application keys: every shared service a handler may reach."""

from aiohttp import web

from .config import Config
from .limits import BucketTable
from .service import Service

CONFIG = web.AppKey("config", Config)
SERVICE = web.AppKey("service", Service)
SOCKETS = web.AppKey("sockets", set)
#: Incoming websocket bytes per caller (see handlers/ws.py).
FRAME_BUDGETS = web.AppKey("frame_budgets", BucketTable)
