"""Websocket frames: RPC requests, progress, results, errors and pushed events.

Frames are msgpack maps (SPEC §4)::

    {"id": n, "method": M, "params": {...}}                      client → server
    {"id": n, "progress": {"Progress": 0..1, "Stage": str}}       server → client, any number
    {"id": n, "result": ...}  or  {"id": n, "error": {"code", "message"}}
    {"event": E, "data": {...}}                                   pushed by the server

``parse_request`` never lets a malformed frame through: it raises
:class:`BadFrame` (code ``MalformedFrame``), which the server answers with an
error frame and keeps the connection open.  It also bounds the work one frame
can cause while it is decoded: msgpack's own length limits refuse an oversize
map, array, string or ext as soon as its header is read, and a budget on the
number of decoded objects (:data:`MAX_FRAME_OBJECTS`) stops a frame made of
millions of tiny containers part-way, so no frame costs more than a few tens of
milliseconds of CPU whatever its size.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import msgpack

from .errors import AcsError, InvalidParams

__all__ = [
    "BadFrame",
    "Request",
    "parse_request",
    "pack",
    "unpack",
    "result_frame",
    "error_frame",
    "progress_frame",
    "event_frame",
    "elide",
    "jsonable",
    "bytes_from_json",
]

#: Longest payload shown when a frame is logged.
MAX_LOG_SIZE = 75

#: Decoding limits of a request frame.  The largest legitimate arrays are a
#: BatchSetValues op's 60,000 vertex ids and positions; maps are params, ops and
#: descriptions (tens of keys); byte payloads (pixel buffers, photos) are bins,
#: bounded by the frame size alone.
MAX_FRAME_ARRAY = 65_536
MAX_FRAME_MAP = 256
MAX_FRAME_STR = 1024 * 1024
#: Objects (array items and map entries, counted as containers close) one frame
#: may decode to: a full 60,000-vertex BatchSetValues is about 300,000.
MAX_FRAME_OBJECTS = 600_000


class BadFrame(InvalidParams):
    """A frame that is not a request; ``request_id`` is its ``id`` when that could still be read,
    so the caller's pending call gets the answer."""

    default_code = "MalformedFrame"
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    method: str
    params: dict

    def __str__(self) -> str:
        return f"#{self.id} {self.method} {elide(self.params)}"


def pack(frame: dict) -> bytes:
    return msgpack.packb(frame, use_bin_type=True)


def unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise BadFrame("Frame is not valid msgpack.") from exc


class _TooManyObjects(Exception):
    pass


def _unpack_bounded(data: bytes) -> Any:
    budget = MAX_FRAME_OBJECTS

    def spend(n: int) -> None:
        nonlocal budget
        budget -= n
        if budget < 0:
            raise _TooManyObjects

    def on_list(items: list) -> list:
        spend(len(items) + 1)
        return items

    def on_map(pairs: list) -> dict:
        spend(len(pairs) + 1)
        return dict(pairs)

    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, list_hook=on_list, object_pairs_hook=on_map,
                               max_array_len=MAX_FRAME_ARRAY, max_map_len=MAX_FRAME_MAP,
                               max_str_len=MAX_FRAME_STR, max_bin_len=len(data), max_ext_len=0)
    except _TooManyObjects:
        raise BadFrame(f"Frame decodes to more than {MAX_FRAME_OBJECTS:,} values.", code="FrameTooComplex") from None
    except ValueError as exc:
        if "exceeds max" in str(exc):  # msgpack's length limits
            raise BadFrame(f"Frame holds a map, array or string over the limits (maps {MAX_FRAME_MAP} "
                           f"keys, arrays {MAX_FRAME_ARRAY:,} items, strings {MAX_FRAME_STR:,} bytes).",
                           code="FrameTooComplex") from None
        raise BadFrame("Frame is not valid msgpack.") from exc
    except Exception as exc:  # msgpack raises several unrelated types
        raise BadFrame("Frame is not valid msgpack.") from exc


def _frame_id(data: bytes) -> int | None:
    """The ``id`` of a frame too big to decode whole, if it comes before the oversize part."""
    try:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(data) + 1, max_array_len=MAX_FRAME_ARRAY,
                                    max_map_len=MAX_FRAME_MAP, max_str_len=MAX_FRAME_STR, max_ext_len=0)
        unpacker.feed(data)
        for _ in range(min(unpacker.read_map_header(), 3)):
            if unpacker.unpack() == "id":
                fid = unpacker.unpack()
                return fid if isinstance(fid, int) and not isinstance(fid, bool) else None
            unpacker.skip()
    except Exception:  # the id is a courtesy: a frame that hides it gets an answer without one
        return None
    return None


def parse_request(data: bytes) -> Request:
    try:
        frame = _unpack_bounded(data)
    except BadFrame as err:
        if err.code == "FrameTooComplex":
            err.request_id = _frame_id(data)
        raise
    if not isinstance(frame, dict):
        raise BadFrame("Frame must be a map with 'id', 'method' and 'params'.")
    fid, method, params = frame.get("id"), frame.get("method"), frame.get("params", {})
    if not isinstance(fid, int) or isinstance(fid, bool):
        raise BadFrame("Frame 'id' must be an integer.")
    if not isinstance(method, str):
        raise BadFrame("Frame 'method' must be a string.")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadFrame("Frame 'params' must be a map.")
    return Request(fid, method, params)


def result_frame(fid: int, result: Any) -> dict:
    return {"id": fid, "result": result}


def error_frame(fid: int | None, err: AcsError) -> dict:
    return {"id": fid, "error": err.to_wire()}


def progress_frame(fid: int, progress: float, stage: str) -> dict:
    return {"id": fid, "progress": {"Progress": round(float(progress), 4), "Stage": stage}}


def event_frame(event: str, data: dict) -> dict:
    return {"event": event, "data": data}


def elide(value: Any) -> str:
    """A short printable form for logs: byte payloads become their length."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {elide(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(elide(v) for v in value[:8]) + (", ..." if len(value) > 8 else "") + "]"
    else:
        text = repr(value)
    return text if len(text) <= MAX_LOG_SIZE else text[: MAX_LOG_SIZE - 3] + "..."


def jsonable(value: Any) -> Any:
    """The JSON form of a result: byte payloads become base64 strings."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise InvalidParams(f"{what} must be base64 in JSON requests.") from None


def bytes_from_json(params: Any) -> Any:
    """The inverse of :func:`jsonable` for request params: the byte payloads
    (``Ops[].Buffer``, ``Photos[]``, ``Images[]``) arrive as base64 strings in JSON."""
    if not isinstance(params, dict):
        return params
    params = dict(params)
    if isinstance(params.get("Ops"), list):
        params["Ops"] = [{**op, "Buffer": _b64(op["Buffer"], "An op's 'Buffer'")}
                         if isinstance(op, dict) and isinstance(op.get("Buffer"), str) else op
                         for op in params["Ops"]]
    for key, what in (("Photos", "Each photo"), ("Images", "Each image")):
        if isinstance(params.get(key), list):
            params[key] = [_b64(x, what) if isinstance(x, str) else x for x in params[key]]
    return params
