"""Credentials: experience API keys and signed player tokens (SPEC §3).

Sans-I/O: no database and no clock; the caller passes ``now`` and looks keys
up by their hash.

* An **API key** is 32 random bytes, shown once by ``acs admin
  create-experience`` and stored only as its SHA-256 (a random key of that
  length needs no slow hash).  ``acs admin rotate-key`` replaces it; the key
  before keeps working for a grace period (:func:`api_key_valid_until`).
* An **avatar creation token** (the experience's ``CreationTokens`` setting,
  checked as ``PromptCreateAvatarAsync``'s ``TokenId``) is stored only as
  ``"sha256:" + hash_api_key(token)`` (:func:`hash_creation_token`).
* A **player token** is ``base64url(payload).base64url(HMAC-SHA256)`` with the
  payload ``{"x": experience_id, "p": player_id, "e": expiry, "i": issued at}``.
  The server's secret lives in the data directory so tokens survive restarts.
  ``RevokePlayerTokens`` refuses every token of a player issued up to that moment
  (the server compares ``issued_at`` with the stored revocation time).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from schemas.errors import Unauthorized

__all__ = ["Principal", "new_api_key", "hash_api_key", "api_key_valid_until", "hash_creation_token",
           "hashed_creation_tokens", "creation_token_matches", "PlayerTokens"]

KEY_PREFIX = "acs_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a game server (``role="server"``) or a player's client."""

    role: str
    experience_id: str
    player_id: str | None = None
    #: When a player token was issued (0 for tokens from before this was recorded).
    issued_at: float = 0.0


def new_api_key() -> tuple[str, str]:
    """Return ``(key, key_hash)``; only the hash is stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_valid_until(key_hash: str, *, current: str, previous: str | None, previous_until: float | None,
                        now: float) -> float:
    """Until when a key authenticates for an experience whose key hash is ``current`` and whose
    key before the last rotation (``previous``) is accepted until ``previous_until``: forever
    (``inf``) for the current key, ``previous_until`` for the previous one in its grace period.
    Raises ``Unauthorized`` for any other key, the previous one included once its time is up."""
    if hmac.compare_digest(key_hash, current):
        return float("inf")
    if previous is not None and hmac.compare_digest(key_hash, previous):
        if previous_until is not None and now < previous_until:
            return previous_until
        raise Unauthorized("This API key was replaced by a new one and its grace period is over; "
                           "use the new key.", code="InvalidApiKey")
    raise Unauthorized("Unknown API key.", code="InvalidApiKey")


#: Marks a stored creation token as a hash (entries without it predate hashing).
CREATION_TOKEN_HASH_PREFIX = "sha256:"


def hash_creation_token(token: str) -> str:
    """The stored form of an avatar creation token: ``"sha256:<hex>"``."""
    return CREATION_TOKEN_HASH_PREFIX + hash_api_key(token)


def hashed_creation_tokens(stored: object) -> list | None:
    """``stored`` with its plain-text entries (written before tokens were hashed) hashed;
    None when there is nothing to change."""
    if not isinstance(stored, list) or not any(
            isinstance(t, str) and not t.startswith(CREATION_TOKEN_HASH_PREFIX) for t in stored):
        return None
    return [hash_creation_token(t) if isinstance(t, str) and not t.startswith(CREATION_TOKEN_HASH_PREFIX) else t
            for t in stored]


def creation_token_matches(token: str, stored: object) -> bool:
    """Whether ``token`` is one of the experience's stored creation tokens.

    ``stored`` is the ``CreationTokens`` setting: hashes from
    :func:`hash_creation_token`; an entry without the prefix was written before
    tokens were hashed and is compared as the token itself."""
    if not isinstance(stored, (list, tuple)):
        return False
    hashed = hash_creation_token(token)
    found = False
    for entry in stored:
        if not isinstance(entry, str):
            continue
        want = hashed if entry.startswith(CREATION_TOKEN_HASH_PREFIX) else token
        found |= hmac.compare_digest(entry.encode(), want.encode())
    return found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PlayerTokens:
    """Issue and verify player tokens with one HMAC secret."""

    def __init__(self, secret: bytes, *, max_ttl: float = 86400.0):
        if len(secret) < 16:
            raise ValueError("token secret must be at least 16 bytes")
        self._secret = secret
        self.max_ttl = max_ttl

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, experience_id: str, player_id: str, now: float, ttl: float) -> tuple[str, float]:
        expires = now + min(max(ttl, 1.0), self.max_ttl)
        payload = json.dumps({"x": experience_id, "p": player_id, "e": expires, "i": now},
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}", expires

    def verify(self, token: str, now: float) -> Principal:
        try:
            body, sig = token.split(".")
            payload = _unb64(body)
            good = hmac.compare_digest(_unb64(sig), self._sign(payload))
            claims = json.loads(payload) if good else None
        except (ValueError, UnicodeDecodeError):
            claims = None
        if not isinstance(claims, dict) or not {"x", "p", "e"} <= claims.keys():
            raise Unauthorized("The player token is not valid.", code="TokenInvalid")
        if now >= claims["e"]:
            raise Unauthorized("The player token has expired; ask the game server for a new one.",
                               code="TokenExpired")
        issued = claims.get("i", 0.0)
        return Principal("client", claims["x"], claims["p"], issued if isinstance(issued, (int, float)) else 0.0)
