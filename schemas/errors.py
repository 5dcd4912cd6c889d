"""Typed errors shared by the server, the pipelines and the SDK.

Every refusal the product makes is an :class:`AcsError`: a stable ``code``
(Roblox's error name where Roblox has one), a ``message`` a player or a game
developer can read, and ``status``, the HTTP status a server should answer
with (like h11's ``error_status_hint``).  The wire form is always
``{"error": {"code": ..., "message": ...}}``.

Hierarchy::

    AcsError
    ├── RequestError          the caller broke a rule (400..409)
    │   ├── InvalidParams     missing key, wrong type, bad value (400)
    │   ├── Unauthorized      no or bad credentials (401)
    │   ├── Forbidden         valid credentials, wrong resource (403)
    │   ├── NotFound          no such resource *for this caller* (404)
    │   └── Conflict          state does not allow it (409)
    └── InputRejected         the input itself is unusable (413/415/422)
"""

from __future__ import annotations

__all__ = [
    "AcsError",
    "RequestError",
    "InvalidParams",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "InputRejected",
]


class AcsError(Exception):
    """Base of every typed refusal.  ``code`` and ``message`` go on the wire."""

    status: int = 500
    default_code: str = "InternalError"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        if status is not None:
            self.status = status

    def to_wire(self) -> dict:
        return {"code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self):
        # Errors cross the process-pool boundary; rebuild them field by field
        # so subclasses with other constructor signatures pickle too.
        return (_rebuild, (type(self), self.message, self.code, self.status))


def _rebuild(cls: type[AcsError], message: str, code: str, status: int) -> AcsError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.message, err.code, err.status = message, code, status
    return err


class RequestError(AcsError):
    status = 400
    default_code = "BadRequest"


class InvalidParams(RequestError):
    status = 400
    default_code = "InvalidParams"


class Unauthorized(RequestError):
    status = 401
    default_code = "Unauthorized"


class Forbidden(RequestError):
    status = 403
    default_code = "Forbidden"


class NotFound(RequestError):
    status = 404
    default_code = "NotFound"


class Conflict(RequestError):
    status = 409
    default_code = "Conflict"


class InputRejected(AcsError):
    """The photo, prompt or edit is unusable.  Never charged against a quota."""

    status = 422
    default_code = "InputRejected"
