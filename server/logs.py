"""Log lines: plain text, or one JSON object per line (``ACS_LOG_FORMAT=json``).

While a request is served, every line it logs carries the request's id and, once the
caller is known, the experience and player ids: the web shell binds them in a
``contextvars`` context (:func:`bind`), which follows the request's task and the tasks
it starts, and :class:`ContextFilter` adds them to each record.  A line logged outside
any request (start-up, the retention sweep) has none.

No credential reaches a line: API keys and player tokens are masked in every message
(and traceback) by :func:`redact`, whatever logged them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time

__all__ = ["bind", "fresh", "context", "redact", "configure", "ContextFilter", "JsonFormatter"]

_CONTEXT: contextvars.ContextVar[dict] = contextvars.ContextVar("acs_log_context", default={})

#: Experience API keys (``acs_`` + 43 url-safe characters) and player tokens
#: (``base64url(payload).base64url(HMAC-SHA256)``, the signature 43 characters).
_SECRET = re.compile(r"acs_[A-Za-z0-9_-]{20,}|[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")

#: The context fields a line may carry, in the order the text format prints them.
FIELDS = ("request_id", "experience_id", "player_id", "method")


def fresh(**fields) -> None:
    """Start a new context for this task (a request): only ``fields``."""
    _CONTEXT.set({k: v for k, v in fields.items() if v is not None})


def bind(**fields) -> None:
    """Add ``fields`` to this task's context (kept by the tasks it starts from now on)."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})


def context() -> dict:
    return dict(_CONTEXT.get())


def redact(text: str) -> str:
    return _SECRET.sub("***", text)


class ContextFilter(logging.Filter):
    """Puts the context's fields on each record (``record.request_id`` ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _CONTEXT.get()
        for name in FIELDS:
            setattr(record, name, ctx.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context's fields, and
    the traceback (``exc``) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The human format, with ``[request_id exp/player]`` when a request is being served."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        rid = getattr(record, "request_id", None)
        if rid is None:
            return text
        who = "/".join(v for v in (getattr(record, "experience_id", None), getattr(record, "player_id", None)) if v)
        head, sep, rest = text.partition(": ")
        return f"{head} [{rid}{' ' + who if who else ''}]{sep}{rest}"


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every logger's lines to stderr in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its start-up chatter, every start
