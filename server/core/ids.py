"""Opaque resource ids: a short type prefix and 96 random bits."""

import secrets

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
