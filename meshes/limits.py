"""Limits of the editable data model and its one exception family (SPEC §7).

Every module of the mesh model imports these from here, so none depends on the
:class:`~meshes.editable_mesh.EditableMesh` facade to get them.
"""

from __future__ import annotations

from schemas.errors import InputRejected

__all__ = ["InvalidEdit", "MeshLimitExceeded", "MAX_VERTICES", "MAX_TRIANGLES", "MAX_ATTRIBUTES",
           "MAX_INFLUENCES", "MAX_COORDINATE", "MAX_MORPH_TARGETS", "MAX_MORPH_NAME", "WIRE_VERSION",
           "EXPLICIT_ID_BASE", "INT64_MIN", "INT64_MAX", "MAX_ACCESSORIES", "MAX_PROPERTY_VALUES"]

MAX_VERTICES = 60_000
MAX_TRIANGLES = 20_000
#: Most normals, UVs or colours (each) one mesh may hold.
MAX_ATTRIBUTES = 60_000
MAX_INFLUENCES = 4
#: Largest accepted |coordinate| in studs (Roblox's largest part size).
MAX_COORDINATE = 2048.0
#: Most morph targets one mesh may hold, and the longest name.
MAX_MORPH_TARGETS = 64
MAX_MORPH_NAME = 100
WIRE_VERSION = 2
#: Ids from here up are only ever chosen by their creators (explicit ids); the
#: per-table counter hands out 1, 2, 3, ... below it.
EXPLICIT_ID_BASE = 1 << 40
#: Every integer an op carries (ids, indices, pixel coordinates) is an int64 on the
#: wire; anything outside this range is refused before numpy ever sees it.
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_MAX_ID = INT64_MAX
#: Most AccessoryDescriptions a ``SetProperty Accessories`` may carry (the
#: HumanoidDescription schema's ``maxItems``); a longer list is refused by its length,
#: before any per-item work.
MAX_ACCESSORIES = 16
#: Most values (list items, dict entries and scalars, counted recursively) one
#: ``SetProperty`` value may hold: 16 accessories of a dozen fields fit many times over.
MAX_PROPERTY_VALUES = 2048


class InvalidEdit(InputRejected):
    """An edit (or a wire document) that cannot be applied; nothing was changed."""

    status = 422
    default_code = "InvalidEdit"


class MeshLimitExceeded(InvalidEdit):
    """The edit would take a mesh past 60,000 vertices or 20,000 triangles."""

    default_code = "MeshLimitExceeded"
