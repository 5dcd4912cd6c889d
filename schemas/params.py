"""Typed parameter records and the one decoder that builds them from wire dicts.

A params class is a frozen, slotted dataclass whose field names are the wire
keys (Roblox spells them in PascalCase, so do we).  :func:`decode` checks a
decoded JSON/msgpack mapping against the annotations and either returns an
instance or raises :class:`~schemas.errors.InvalidParams` naming the key; an
invalid params object cannot exist past decoding.  :func:`json_schema` derives
the JSON Schema from the same annotations, so docs and checks cannot drift.

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``bytes``,
``list``, ``dict`` and ``X | None`` (optional, default ``None``).
A field's metadata may bound it: ``max_length`` for a ``str``, ``minimum`` /
``maximum`` (inclusive) for an ``int``.

Every string a params object holds -- a ``str`` field, or a string (value or key)
anywhere inside a ``list`` or ``dict`` field -- is a sequence of Unicode scalar
values: a lone surrogate (``"\\ud800"`` is legal JSON, but not UTF-8) is refused
here, so nothing downstream (the database, msgpack, a log line) meets one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, TypeVar

import msgpack

from .errors import InvalidParams

__all__ = ["decode", "json_schema", "MAX_STRING"]

T = TypeVar("T")

#: Longest string accepted in any parameter unless a field says otherwise.
MAX_STRING = 4096

_JSON_TYPES = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    list: {"type": "array"},
    dict: {"type": "object"},
}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A parameter class's resolved annotations (resolving them costs more than a request's checks)."""
    return typing.get_type_hints(cls)


def _field_type(cls: type, field: dataclasses.Field) -> tuple[type, bool]:
    """Return (base type, optional) for one dataclass field."""
    hint = _hints(cls)[field.name]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        non_none = [a for a in args if a is not type(None)]
        return non_none[0], True
    return hint, False


def _is_text(s: str) -> bool:
    """True when ``s`` holds only Unicode scalar values (no lone surrogates)."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _all_text(value: Any) -> bool:
    """True when no string inside ``value`` (a decoded JSON / msgpack tree) holds a surrogate."""
    try:
        # One C-speed pass; it fails on the first string UTF-8 cannot encode.
        msgpack.packb(value, use_bin_type=True)
        return True
    except UnicodeEncodeError:
        return False
    except Exception:  # an int past 64 bits, deep nesting, ...: look at each string
        pass
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not _is_text(v):
                return False
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return True


def _check_value(name: str, value: Any, typ: type, field: dataclasses.Field) -> Any:
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidParams(f"'{name}' must be a number, not {type(value).__name__}.")
        try:
            value = float(value)
        except OverflowError:
            raise InvalidParams(f"'{name}' is out of range.") from None
        if not math.isfinite(value):
            raise InvalidParams(f"'{name}' must be a finite number.")
        return value
    if typ is int and isinstance(value, bool):
        raise InvalidParams(f"'{name}' must be an integer, not a boolean.")
    if typ is bytes and isinstance(value, bytearray):
        value = bytes(value)
    if not isinstance(value, typ):
        want = _JSON_TYPES[typ].get("type")
        raise InvalidParams(f"'{name}' must be of type {want}, not {type(value).__name__}.")
    if typ is str:
        limit = field.metadata.get("max_length", MAX_STRING)
        if len(value) > limit:
            raise InvalidParams(f"'{name}' is longer than {limit} characters.")
        if not value and field.default is dataclasses.MISSING:
            raise InvalidParams(f"'{name}' must not be empty.")
        if not _is_text(value):
            raise InvalidParams(f"'{name}' is not valid Unicode text (it holds an unpaired surrogate).")
    if typ is int:
        low, high = field.metadata.get("minimum"), field.metadata.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidParams(f"'{name}' must be within {low if low is not None else '-inf'}.."
                                f"{high if high is not None else 'inf'}.")
    if typ in (list, dict) and not _all_text(value):
        raise InvalidParams(f"'{name}' holds a string that is not valid Unicode text (an unpaired surrogate).")
    return value


def decode(cls: type[T], params: Any) -> T:
    """Build ``cls`` from a wire mapping, or raise :class:`InvalidParams`."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams("'params' must be an object.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((k for k in params if k not in known), key=str)
    if unknown:
        raise InvalidParams(f"Unknown parameter(s): {', '.join(map(str, unknown))}.")
    values = {}
    for field in dataclasses.fields(cls):
        typ, optional = _field_type(cls, field)
        if field.name not in params or params[field.name] is None:
            if optional or field.default is not dataclasses.MISSING:
                continue
            raise InvalidParams(f"Missing required parameter '{field.name}'.")
        values[field.name] = _check_value(field.name, params[field.name], typ, field)
    return cls(**values)


def json_schema(cls: type) -> dict:
    """JSON Schema (draft 2020-12) of one params class."""
    props, required = {}, []
    for field in dataclasses.fields(cls):
        typ, optional = _field_type(cls, field)
        prop = dict(_JSON_TYPES[typ])
        if typ is str:
            prop["maxLength"] = field.metadata.get("max_length", MAX_STRING)
        for bound in ("minimum", "maximum"):
            if bound in field.metadata:
                prop[bound] = field.metadata[bound]
        if "doc" in field.metadata:
            prop["description"] = field.metadata["doc"]
        props[field.name] = prop
        if not optional and field.default is dataclasses.MISSING:
            required.append(field.name)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": cls.__name__,
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip().splitlines()[0]
    return schema
