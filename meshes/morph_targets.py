"""Morph-target delta validation: builds the vertex-table column of a morph
target (body of :meth:`meshes.editable_mesh.EditableMesh.SetMorphTarget`)."""

from __future__ import annotations

import numpy as np

from .limits import MAX_COORDINATE, InvalidEdit
from .id_table import _Table
from .value_checks import _int_id, _vec


def morph_delta_column(V: _Table, name: str, deltas) -> np.ndarray:
    """(capacity, 3) float32 column for the morph target ``name`` of vertex table ``V``.

    ``deltas``: an (n, 3) array row-aligned with the live vertices, or a
    ``{vertex_id: (dx, dy, dz)}`` dict (vertices not named get zero)."""
    out = np.zeros((len(V.ids), 3), np.float32)
    if isinstance(deltas, dict):
        if deltas:
            ids = np.asarray([_int_id(k, "morph vertex id") for k in deltas], np.int64)
            try:
                rows = V.rows(ids)
            except InvalidEdit:
                raise InvalidEdit(f"morph target {name!r} names a vertex that does not exist") from None
            out[rows] = np.asarray([_vec(v, 3, "morph delta") for v in deltas.values()], np.float32)
    else:
        d = np.asarray(deltas, np.float64)
        if d.shape != (V.n, 3):
            raise InvalidEdit(f"morph target {name!r} needs ({V.n}, 3) deltas, got {d.shape}")
        if not np.isfinite(d).all() or (np.abs(d) > MAX_COORDINATE).any():
            raise InvalidEdit(f"morph target {name!r} deltas must be finite and within ±2048 studs")
        out[: V.n] = d.astype(np.float32)
    return out
