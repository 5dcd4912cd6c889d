"""Bulk construction of :class:`meshes.editable_mesh.EditableMesh` tables from
plain arrays (the body of :meth:`EditableMesh.from_arrays`)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .limits import MAX_ATTRIBUTES, MAX_COORDINATE, MAX_TRIANGLES, MAX_VERTICES, InvalidEdit, MeshLimitExceeded
from .id_table import _Table


def fill_tables_from_arrays(
    V: _Table,
    attr: Callable[[str], _Table],
    F: _Table,
    positions: np.ndarray,
    triangles: np.ndarray,
    *,
    normals: np.ndarray | None = None,
    uvs: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    face_normals: np.ndarray | None = None,
    face_uvs: np.ndarray | None = None,
    face_colors: np.ndarray | None = None,
    joints: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> None:
    """Validate the arrays (see :meth:`EditableMesh.from_arrays`) and fill the empty
    vertex table ``V``, attribute tables ``attr(kind)`` and face table ``F``."""
    pos = np.asarray(positions, np.float32).reshape(-1, 3)
    tri = np.asarray(triangles, np.int64).reshape(-1, 3)
    n, m = len(pos), len(tri)
    if n > MAX_VERTICES:
        raise MeshLimitExceeded(f"{n} vertices is over the limit of {MAX_VERTICES}")
    if m > MAX_TRIANGLES:
        raise MeshLimitExceeded(f"{m} triangles is over the limit of {MAX_TRIANGLES}")
    if not np.isfinite(pos).all() or (np.abs(pos) > MAX_COORDINATE).any():
        raise InvalidEdit("positions must be finite and within ±2048 studs")
    if m and (tri.min() < 0 or tri.max() >= n):
        raise InvalidEdit("triangle indices out of range")
    if m and ((tri[:, 0] == tri[:, 1]) | (tri[:, 1] == tri[:, 2]) | (tri[:, 0] == tri[:, 2])).any():
        raise InvalidEdit("a triangle repeats a vertex")
    vid = np.arange(1, n + 1, dtype=np.int64)
    jnt = np.zeros((n, 4), np.uint16) if joints is None else np.asarray(joints, np.uint16).reshape(n, 4).copy()
    wgt = np.zeros((n, 4), np.float32) if weights is None else np.asarray(weights, np.float32).reshape(n, 4).copy()
    V.set_full(vid, {"pos": pos.copy(), "jnt": jnt, "wgt": wgt}, n + 1)

    def table(kind: str, vals, face, cols: int, default) -> np.ndarray:
        if vals is None:
            if face is not None:
                raise InvalidEdit(f"face_{kind}s needs {kind} values")
            k = n
            arr = np.tile(np.asarray(default, np.float32), (n, 1))
            fidx = tri
        else:
            arr = np.asarray(vals, np.float32)
            arr = arr.reshape(len(arr), -1) if arr.size else arr.reshape(0, cols)
            if kind == "color" and arr.shape[1] == 3:
                arr = np.concatenate([arr, np.ones((len(arr), 1), np.float32)], axis=1)
            if arr.shape[1] != cols:
                raise InvalidEdit(f"{kind}s need {cols} columns")
            k = len(arr)
            if face is None:
                if k != n:
                    raise InvalidEdit(f"per-vertex {kind}s need {n} rows, got {k}")
                fidx = tri
            else:
                fidx = np.asarray(face, np.int64).reshape(-1, 3)
                if len(fidx) != m or (m and (fidx.min() < 0 or fidx.max() >= k)):
                    raise InvalidEdit(f"face_{kind}s must be ({m}, 3) indices into {k} {kind}s")
        if k > MAX_ATTRIBUTES:
            raise MeshLimitExceeded(f"{k} {kind}s is over the limit of {MAX_ATTRIBUTES}")
        if not np.isfinite(arr).all():
            raise InvalidEdit(f"{kind}s must be finite")
        if kind == "normal":
            ln = np.linalg.norm(arr.astype(np.float64), axis=1, keepdims=True)
            arr = np.where(ln > 1e-12, arr / np.maximum(ln, 1e-30), 0.0).astype(np.float32)
        attr(kind).set_full(np.arange(1, k + 1, dtype=np.int64), {"val": np.ascontiguousarray(arr)}, k + 1)
        return fidx + 1

    fn = table("normal", normals, face_normals, 3, (0.0, 0.0, 0.0))
    fu = table("uv", uvs, face_uvs, 2, (0.0, 0.0))
    fc = table("color", colors, face_colors, 4, (1.0, 1.0, 1.0, 1.0))
    F.set_full(np.arange(1, m + 1, dtype=np.int64),
               {"v": vid[tri] if m else np.zeros((0, 3), np.int64), "n": fn, "u": fu, "c": fc}, m + 1)
