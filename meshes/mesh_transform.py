"""Affine transform of a mesh's tables (body of
:meth:`meshes.editable_mesh.EditableMesh.transform`): positions, morph deltas and
explicit normals."""

from __future__ import annotations

import numpy as np

from .limits import MAX_COORDINATE, InvalidEdit
from .id_table import _MORPH, _Table


def transform_tables(V: _Table, N: _Table, morph_names: list[str], matrix, offset) -> None:
    """Apply ``p' = M·p + offset`` to vertex table ``V``; morph deltas become ``M·d``
    and explicit normals in ``N`` become ``normalize(M⁻ᵀ·n)``.  Raises
    :class:`InvalidEdit` (changing nothing) on a bad matrix or out-of-range result."""
    M = np.asarray(matrix, np.float64).reshape(3, 3)
    t = np.asarray(offset, np.float64).reshape(3)
    if not (np.isfinite(M).all() and np.isfinite(t).all()) or abs(np.linalg.det(M)) < 1e-12:
        raise InvalidEdit("transform needs a finite, invertible 3×3 matrix")
    p = V.col("pos").astype(np.float64) @ M.T + t
    if (np.abs(p) > MAX_COORDINATE).any():
        raise InvalidEdit("the transform moves vertices beyond ±2048 studs")
    V.cols["pos"][: V.n] = p
    for k in morph_names:
        V.cols[_MORPH + k][: V.n] = V.col(_MORPH + k).astype(np.float64) @ M.T
    nv = N.col("val").astype(np.float64)
    expl = nv.any(axis=1)
    if expl.any():
        q = nv[expl] @ np.linalg.inv(M)  # rows: (M^-T n)^T = n^T M^-1
        N.cols["val"][np.flatnonzero(expl)] = q / np.linalg.norm(q, axis=1, keepdims=True)
