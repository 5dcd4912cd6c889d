"""Administration: experiences and their API keys."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from sqlalchemy import select

from server.config import Config
from server.core.auth import hash_creation_token, new_api_key
from server.core.ids import new_id
from server.db import Experience, migrate, open_engine

__all__ = ["create_experience", "list_experiences", "check_settings", "SETTING_KEYS"]

#: Per-experience settings an operator may set (SPEC §3).
SETTING_KEYS = ("Allowed2DGenerations", "Allowed3DGenerations", "SessionTime", "QueueShare",
                "DefaultStyle", "LikenessThreshold", "InputCaching", "CreationTokens",
                "MaxOutfitsPerPlayer", "PurchaseCallbackUrl", "BatchPhotosPerHour", "MaxQueuedRequests")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_http_url(v) -> bool:
    if not isinstance(v, str) or len(v) > 2048:
        return False
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_settings(settings: dict) -> dict:
    """Refuse settings the queue or the pipeline could not honour."""
    unknown = set(settings) - set(SETTING_KEYS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    rules = {
        "Allowed2DGenerations": lambda v: isinstance(v, int) and v >= 0,
        "Allowed3DGenerations": lambda v: isinstance(v, int) and v >= 0,
        "SessionTime": lambda v: isinstance(v, (int, float)) and 0 < v <= 86400,
        "QueueShare": lambda v: isinstance(v, (int, float)) and 0 < v <= 1000,
        "LikenessThreshold": lambda v: isinstance(v, (int, float)) and 0 <= v <= 1,
        "CreationTokens": lambda v: isinstance(v, (list, tuple)) and all(
            isinstance(t, str) and 0 < len(t) <= 256 for t in v),
        "MaxOutfitsPerPlayer": lambda v: _is_int(v) and v >= 1,
        "BatchPhotosPerHour": lambda v: _is_int(v) and v >= 0,
        "MaxQueuedRequests": lambda v: _is_int(v) and v >= 1,
        "PurchaseCallbackUrl": _is_http_url,
    }
    for key, ok in rules.items():
        if key in settings and not ok(settings[key]):
            raise ValueError(f"invalid {key}: {settings[key]!r}")
    return settings


async def create_experience(config: Config, name: str, settings: dict | None = None) -> tuple[str, str]:
    """Create an experience; returns ``(experience_id, api_key)``.  The key is not stored."""
    settings = check_settings({k: v for k, v in (settings or {}).items() if v is not None})
    if "CreationTokens" in settings:  # only their hashes are stored (publish compares hashes)
        settings["CreationTokens"] = [hash_creation_token(t) for t in settings["CreationTokens"]]
    engine, sessionmaker = open_engine(config.db_url)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        await migrate(engine)
        key, key_hash = new_api_key()
        exp_id = new_id("exp")
        async with sessionmaker.begin() as db:
            db.add(Experience(id=exp_id, name=name, key_hash=key_hash, created_at=time.time(),
                              settings=settings))
        return exp_id, key
    finally:
        await engine.dispose()


async def list_experiences(config: Config) -> list[dict]:
    engine, sessionmaker = open_engine(config.db_url)
    try:
        await migrate(engine)
        async with sessionmaker() as db:
            rows = (await db.scalars(select(Experience).order_by(Experience.created_at))).all()
        return [{"id": r.id, "name": r.name, "settings": r.settings} for r in rows]
    finally:
        await engine.dispose()
