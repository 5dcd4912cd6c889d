"""Handlers of the SPEC §4 methods, one module per part of the flow.

Importing this package registers every handler in ``server.service.HANDLERS``.
"""

from . import avatars, batch, previews, publish, sessions  # noqa: F401
