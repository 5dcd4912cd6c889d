"""Wire contract shared by the server and the SDK: frames, methods, errors."""

from .errors import (
    AcsError,
    Conflict,
    Forbidden,
    InputRejected,
    InvalidParams,
    NotFound,
    RequestError,
    Unauthorized,
)
from .frames import BadFrame, Request, error_frame, event_frame, pack, parse_request, unpack
from .methods import END_REASONS, METHODS, PROMPT_CREATE_AVATAR_RESULT, MethodSpec
from .params import decode, json_schema

__all__ = [
    "AcsError", "Conflict", "Forbidden", "InputRejected", "InvalidParams", "NotFound",
    "RequestError", "Unauthorized", "BadFrame", "Request", "event_frame", "error_frame",
    "pack", "parse_request", "unpack", "END_REASONS", "METHODS", "PROMPT_CREATE_AVATAR_RESULT",
    "MethodSpec", "decode", "json_schema", "export_json_schema",
]


def export_json_schema() -> dict:
    """JSON Schema of every method's params, keyed by method name."""
    return {name: json_schema(spec.params) for name, spec in METHODS.items()}
