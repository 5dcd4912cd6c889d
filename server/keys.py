"""Typed application keys: every shared service a handler may reach."""

from aiohttp import web

from .config import Config
from .service import Service

CONFIG = web.AppKey("config", Config)
SERVICE = web.AppKey("service", Service)
SOCKETS = web.AppKey("sockets", set)
