"""Typed application keys: every shared service a handler may reach."""

from aiohttp import web

from server.config import Config
from server.core.limits import CallerBudgets
from server.services.service import Service

CONFIG = web.AppKey("config", Config)
SERVICE = web.AppKey("service", Service)
SOCKETS = web.AppKey("sockets", set)
#: Rate budgets per caller (see web/ws.py and web/common.py).
BUDGETS = web.AppKey("budgets", CallerBudgets)
#: The request's id (every log line of the request carries it; the response returns it).
REQUEST_ID = web.RequestKey("request_id", str)
