"""Administration (``acs admin``): experiences, their settings and API keys, player tokens,
the session pool at a glance, and erasing a player's data.

Every function opens the database itself (``ACS_DATABASE_URL`` or the data directory's
SQLite file), so it works with the server running or not: servers read an experience's
settings per request, check rotated keys again within ``API_KEY_RECHECK`` seconds and read
the revocation table every ``REVOCATION_POLL`` seconds (``server/services/service.py``).
Bad input raises ``ValueError``; a refusal because of the state of things an ``AcsError``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from urllib.parse import urlsplit

from sqlalchemy import select

from server.config import Config
from server.core.auth import hash_creation_token, new_api_key
from server.core.ids import new_id
from server.db import Experience, Player, migrate, open_engine
from server.services import retention
from server.services.service import API_KEY_RECHECK, REVOCATION_POLL, record_revocation
from server.services.sessions import SessionService

__all__ = ["create_experience", "list_experiences", "check_settings", "SETTING_KEYS", "parse_setting",
           "show_experience", "update_experience", "rotate_key", "revoke_tokens", "pool_status", "erase_player",
           "DEFAULT_GRACE"]

#: How long the key before a rotation keeps working unless told otherwise.
DEFAULT_GRACE = 86400.0

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
        "Allowed2DGenerations": lambda v: _is_int(v) and v >= 0,
        "Allowed3DGenerations": lambda v: _is_int(v) and v >= 0,
        "SessionTime": lambda v: isinstance(v, (int, float)) and 0 < v <= 86400,
        "QueueShare": lambda v: isinstance(v, (int, float)) and 0 < v <= 1000,
        "LikenessThreshold": lambda v: isinstance(v, (int, float)) and 0 <= v <= 1,
        "CreationTokens": lambda v: isinstance(v, (list, tuple)) and all(
            isinstance(t, str) and 0 < len(t) <= 256 for t in v),
        "MaxOutfitsPerPlayer": lambda v: _is_int(v) and v >= 1,
        "BatchPhotosPerHour": lambda v: _is_int(v) and v >= 0,
        "MaxQueuedRequests": lambda v: _is_int(v) and v >= 1,
        "PurchaseCallbackUrl": _is_http_url,
        "InputCaching": lambda v: isinstance(v, bool),
        "DefaultStyle": lambda v: isinstance(v, str) and 0 < len(v) <= 64,
    }
    for key, ok in rules.items():
        if key in settings and not ok(settings[key]):
            raise ValueError(f"invalid {key}: {settings[key]!r}")
    return settings


def _stored_settings(settings: dict) -> dict:
    """``settings`` checked, in the form they are stored: creation tokens as their hashes
    (publish compares hashes)."""
    check_settings(settings)
    if "CreationTokens" in settings:
        settings = {**settings, "CreationTokens": [hash_creation_token(t) for t in settings["CreationTokens"]]}
    return settings


async def create_experience(config: Config, name: str, settings: dict | None = None) -> tuple[str, str]:
    """Create an experience; returns ``(experience_id, api_key)``.  The key is not stored."""
    settings = _stored_settings({k: v for k, v in (settings or {}).items() if v is not None})
    config.data_dir.mkdir(parents=True, exist_ok=True)
    key, key_hash = new_api_key()
    exp_id = new_id("exp")
    async with _database(config) as store, store.begin() as db:
        db.add(Experience(id=exp_id, name=name, key_hash=key_hash, created_at=time.time(), settings=settings))
    return exp_id, key


async def list_experiences(config: Config) -> list[dict]:
    async with _database(config) as store, store() as db:
        rows = (await db.scalars(select(Experience).order_by(Experience.created_at))).all()
    return [{"id": r.id, "name": r.name, "settings": r.settings} for r in rows]


@contextlib.asynccontextmanager
async def _database(config: Config):
    """The store, migrated to the newest schema, for one command."""
    engine, sessionmaker = open_engine(config.db_url)
    try:
        await migrate(engine)
        yield sessionmaker
    finally:
        await engine.dispose()


async def _experience(db, ref: str) -> Experience:
    """The experience with id ``ref``, or the only one named ``ref``."""
    exp = await db.get(Experience, ref)
    if exp is not None:
        return exp
    named = (await db.scalars(select(Experience).where(Experience.name == ref))).all()
    if len(named) == 1:
        return named[0]
    if named:
        raise ValueError(f"{len(named)} experiences are named {ref!r}; give its id (acs admin list-experiences)")
    raise ValueError(f"no experience {ref!r} (acs admin list-experiences shows them)")


def _player_id(player_id: str) -> str:
    if not player_id or len(player_id) > 128:
        raise ValueError(f"a player id is 1 to 128 characters, not {player_id!r}")
    return player_id


def _describe(exp: Experience, now: float) -> dict:
    out = {"id": exp.id, "name": exp.name, "created_at": exp.created_at, "settings": exp.settings or {}}
    if exp.previous_key_until is not None and exp.previous_key_until > now:
        out["previous_key_until"] = exp.previous_key_until
    return out


def parse_setting(text: str) -> tuple[str, object]:
    """``Key=Value`` → (key, value); the value is read as JSON (``2.5``, ``true``, ``["a"]``)
    and, when it is not JSON, taken as a string (``DefaultStyle=anime_character``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set takes Key=Value, not {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if value is None:
        raise ValueError(f"{key}=null: use --unset {key} to go back to the server's default")
    return key, value


async def show_experience(config: Config, ref: str) -> dict:
    """The experience's id, name and settings (and, after a rotation, until when the old key works)."""
    async with _database(config) as store, store() as db:
        return _describe(await _experience(db, ref), time.time())


async def update_experience(config: Config, ref: str, values: dict | None = None,
                            unset: list[str] | tuple = ()) -> dict:
    """Set ``values`` and remove the ``unset`` settings (back to the server's defaults);
    returns the experience as :func:`show_experience` does.  Servers read settings per
    request: the next session request, preview or publish sees the change.  Allowances are
    fixed when a session is requested, so sessions already queued or running keep theirs."""
    values = dict(values or {})
    unknown = set(unset) - set(SETTING_KEYS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    both = set(values) & set(unset)
    if both:
        raise ValueError(f"both set and unset: {', '.join(sorted(both))}")
    if not values and not unset:
        raise ValueError("nothing to change: give --set Key=Value or --unset Key")
    values = _stored_settings(values)
    async with _database(config) as store, store.begin() as db:
        exp = await _experience(db, ref)
        settings = {k: v for k, v in {**(exp.settings or {}), **values}.items() if k not in unset}
        exp.settings = settings
        return _describe(exp, time.time())


async def rotate_key(config: Config, ref: str, grace: float = DEFAULT_GRACE) -> dict:
    """Give the experience a new API key (returned, not stored); the key it had keeps
    authenticating for ``grace`` seconds, then is refused.  A key from an earlier rotation
    stops at once (one previous key is kept)."""
    if not (math.isfinite(grace) and 0 <= grace <= 30 * 86400):
        raise ValueError(f"--grace is 0 to {30 * 86400} seconds, not {grace}")
    key, key_hash = new_api_key()
    now = time.time()
    async with _database(config) as store, store.begin() as db:
        exp = await _experience(db, ref)
        exp.previous_key_hash, exp.previous_key_until = exp.key_hash, now + grace
        exp.key_hash = key_hash
        return {"id": exp.id, "name": exp.name, "key": key, "previous_key_until": now + grace,
                "servers_see_it_within_seconds": API_KEY_RECHECK}


async def revoke_tokens(config: Config, ref: str, player_id: str) -> dict:
    """What ``RevokePlayerTokens`` does: the player's tokens issued until now are refused.
    Written to the revocation table, which running servers read every ``REVOCATION_POLL``
    seconds; they then refuse the tokens and close the player's sockets."""
    player_id = _player_id(player_id)
    async with _database(config) as store, store.begin() as db:
        exp = await _experience(db, ref)
        known = await db.get(Player, (exp.id, player_id)) is not None
        revoked_at = await record_revocation(db, exp.id, player_id, time.time())
    return {"experience_id": exp.id, "player_id": player_id, "revoked_at": revoked_at, "known_player": known,
            "servers_see_it_within_seconds": REVOCATION_POLL}


async def pool_status(config: Config, ref: str) -> dict:
    """The experience's queued requests and active sessions, as ``GET /v1/sessions`` shows
    them, read from the database (where every server keeps the pool's state).  Wait times are
    estimated with this configuration's capacity (``ACS_CAPACITY``)."""
    async with _database(config) as store:
        async with store() as db:
            exp = await _experience(db, ref)
        pool = SessionService(config=config, db=store, bus=None, blobs=None, shared=True)
        return {"experience_id": exp.id, **await pool.overview(exp.id)}


async def erase_player(config: Config, blobs, ref: str, player_id: str, *, dry_run: bool = False) -> dict:
    """Delete everything of one player (``retention.erase_player``) from the store and
    ``blobs``, then revoke the player's tokens; returns the report.  Refused with a
    ``Conflict`` while the player has an active session or a queued request."""
    player_id = _player_id(player_id)
    async with _database(config) as store:
        async with store() as db:
            exp = await _experience(db, ref)
        report = await retention.erase_player(store, blobs, exp.id, player_id, dry_run=dry_run)
        if not dry_run:
            async with store.begin() as db:
                report["tokens_revoked_at"] = await record_revocation(db, exp.id, player_id, time.time())
    return report
