"""Typed application keys: every shared service a handler may reach."""

from aiohttp import web

from .config import Config
from .limits import CallerBudgets
from .service import Service

CONFIG = web.AppKey("config", Config)
SERVICE = web.AppKey("service", Service)
SOCKETS = web.AppKey("sockets", set)
#: Rate budgets per caller (see handlers/ws.py and handlers/common.py).
BUDGETS = web.AppKey("budgets", CallerBudgets)
