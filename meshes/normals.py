"""Vertex / face normal math over plain arrays: face normals, the values of a
normal table (automatic normals resolved from their faces) and
:func:`smooth_normals`."""

from __future__ import annotations

import numpy as np

__all__ = ["face_normals", "resolve_normal_values", "smooth_normals"]


def face_normals(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(m,3) area-weighted (unnormalised) normals of triangles ``a, b, c`` (each (m,3))."""
    return np.cross(b - a, c - a)


def resolve_normal_values(values: np.ndarray, positions: np.ndarray, triangles: np.ndarray,
                          corner_rows: np.ndarray) -> np.ndarray:
    """(k,3) float32 unit value of every normal row.

    ``values`` (k,3) stored normals (zero rows are automatic: computed as the
    area-weighted sum of the face normals of the corners using them);
    ``positions`` (n,3); ``triangles`` (m,3) vertex rows; ``corner_rows`` (m,3)
    normal rows per face corner.  Rows that stay zero become (0, 1, 0)."""
    val = values.astype(np.float64)
    k_rows = len(val)
    auto = ~val.any(axis=1)
    if auto.any() and len(triangles):
        p = positions.astype(np.float64)
        t = triangles
        fn = face_normals(p[t[:, 0]], p[t[:, 1]], p[t[:, 2]])
        acc = np.zeros((k_rows, 3))
        for k in range(3):
            acc[:, k] = np.bincount(corner_rows.reshape(-1), weights=np.repeat(fn[:, k], 3), minlength=k_rows)
        val[auto] = acc[auto]
    ln = np.linalg.norm(val, axis=1)
    ok = ln > 1e-20
    val[ok] /= ln[ok, None]
    val[~ok] = (0.0, 1.0, 0.0)
    return val.astype(np.float32)


def smooth_normals(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(n,3) float64 unit vertex normals from area-weighted face normals, summed over
    all vertices sharing an exact position (so UV seams are shaded smoothly)."""
    pos = np.asarray(positions, np.float64)
    n = len(pos)
    out = np.zeros((n, 3))
    if n == 0 or len(triangles) == 0:
        out[:, 1] = 1.0
        return out
    _, key = np.unique(pos.astype(np.float32), axis=0, return_inverse=True)
    key = key.reshape(-1)
    t = np.asarray(triangles)
    fn = np.cross(pos[t[:, 1]] - pos[t[:, 0]], pos[t[:, 2]] - pos[t[:, 0]])
    acc = np.zeros((key.max() + 1, 3))
    for k in range(3):
        np.add.at(acc, key[t[:, k]], fn)
    out = acc[key]
    ln = np.linalg.norm(out, axis=1)
    ok = ln > 1e-20
    out[ok] /= ln[ok, None]
    out[~ok] = (0.0, 1.0, 0.0)
    return out

