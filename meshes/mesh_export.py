"""Export splitting: per-output-vertex arrays (glTF-ready) from per-corner
vertex / normal / UV / colour rows, splitting vertices only at attribute seams."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ExportArrays", "split_at_seams", "build_export_arrays"]


class ExportArrays(NamedTuple):
    """Per-output-vertex arrays from :meth:`EditableMesh.export_arrays` (glTF-ready,
    still in model-space studs).  ``N`` output vertices, ``m`` triangles."""

    positions: np.ndarray     # (N,3) float32
    normals: np.ndarray       # (N,3) float32 unit
    uvs: np.ndarray           # (N,2) float32
    colors: np.ndarray        # (N,4) float32 rgba 0..1
    joints: np.ndarray        # (N,4) uint16
    weights: np.ndarray       # (N,4) float32
    morphs: dict              # name -> (N,3) float32 deltas
    triangles: np.ndarray     # (m,3) int64 indices into the N rows
    vertex_rows: np.ndarray   # (N,) int64 row of the source vertex (into vertex_ids)
    face_ids: np.ndarray      # (m,) int64 face id of each triangle



def split_at_seams(key: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``key`` (3m, 4): (vertex row, normal row, UV row, colour row) per face corner.

    Returns ``(uniq, inv)``: the distinct keys sorted by vertex, normal, UV, colour
    row ((N,4)) and, per corner, the index of its key in ``uniq`` ((3m,))."""
    if m:
        order = np.lexsort(key.T[::-1])
        ks = key[order]
        new = np.ones(len(ks), bool)
        new[1:] = (ks[1:] != ks[:-1]).any(axis=1)
        uniq = ks[new]
        inv = np.empty(len(ks), np.int64)
        inv[order] = np.cumsum(new) - 1
    else:
        uniq = np.zeros((0, 4), np.int64)
        inv = np.zeros(0, np.int64)
    return uniq, inv


def build_export_arrays(
    *,
    triangles: np.ndarray,
    corner_rows: list[np.ndarray],
    positions: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    morphs: dict[str, np.ndarray],
    normal_values: np.ndarray,
    uv_values: np.ndarray,
    color_values: np.ndarray,
    face_ids: np.ndarray,
) -> ExportArrays:
    """One output vertex per distinct (vertex, normal, UV, colour) row used by a face
    corner; vertices no face uses are dropped.  ``triangles`` (m,3) vertex rows,
    ``corner_rows`` the (m,3) normal, UV and colour rows; the other arrays are the
    row-aligned tables (``morphs``: name -> (n,3) deltas)."""
    m = len(triangles)
    tri = triangles.reshape(-1)
    key = np.stack([tri] + [r.reshape(-1) for r in corner_rows], axis=1)
    uniq, inv = split_at_seams(key, m)
    vr, nr, ur, cr = uniq.T
    return ExportArrays(
        positions=positions[vr].copy(),
        normals=normal_values[nr],
        uvs=uv_values[ur].copy(),
        colors=color_values[cr].copy(),
        joints=joints[vr].copy(),
        weights=weights[vr].copy(),
        morphs={name: deltas[vr].copy() for name, deltas in morphs.items()},
        triangles=inv.reshape(m, 3),
        vertex_rows=vr.astype(np.int64),
        face_ids=face_ids.copy(),
    )
