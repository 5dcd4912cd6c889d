"""Spatial queries over plain arrays, used by :class:`meshes.editable_mesh.EditableMesh`:
closest vertex, vertices within a sphere, ray casts (Möller–Trumbore) and the
closest point on a triangle soup.  Functions return rows / face indices; the
facade maps them to ids."""

from __future__ import annotations

import numpy as np

__all__ = [
    "triangle_points",
    "closest_vertex_row",
    "within_sphere_mask",
    "raycast_triangles",
    "closest_point_on_triangles",
]


def triangle_points(positions: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, c): float64 (m,3) corner positions of ``triangles`` (m,3) vertex rows."""
    p = positions.astype(np.float64)
    t = triangles
    return p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]


def _squared_distances(positions: np.ndarray, q: np.ndarray) -> np.ndarray:
    return ((positions.astype(np.float64) - q) ** 2).sum(axis=1)


def closest_vertex_row(positions: np.ndarray, q: np.ndarray) -> int:
    """Row of the position nearest to ``q`` (ties: the lowest row)."""
    return int(np.argmin(_squared_distances(positions, q)))


def within_sphere_mask(positions: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """(n,) bool: positions within ``radius`` of ``center`` (boundary included)."""
    return _squared_distances(positions, center) <= radius * radius


def raycast_triangles(o: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Nearest hit of the ray ``o + t·d`` (t ≥ 0, both face sides) with the triangles
    ``a, b, c`` (vectorised Möller–Trumbore).

    Returns ``(triangle index, point (x, y, z), (b0, b1, b2))`` or ``None`` on a miss."""
    e1, e2 = b - a, c - a
    pv = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, pv)
    ok = np.abs(det) > 1e-12 * max(float(np.abs(det).max()), 1e-300)
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tv = o - a
    u = np.einsum("ij,ij->i", tv, pv) * inv
    qv = np.cross(tv, e1)
    v = (qv @ d) * inv
    t = np.einsum("ij,ij->i", e2, qv) * inv
    eps = 1e-9
    hit = ok & (u >= -eps) & (v >= -eps) & (u + v <= 1 + eps) & (t >= 0)
    if not hit.any():
        return None
    k = int(np.flatnonzero(hit)[np.argmin(t[hit])])
    uu, vv = float(np.clip(u[k], 0, 1)), float(np.clip(v[k], 0, 1))
    bary = (1.0 - uu - vv, uu, vv)
    point = o + t[k] * d
    return k, tuple(float(x) for x in point), bary


def closest_point_on_triangles(q: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest point to ``q`` over the triangles ``a, b, c``.

    Returns ``(triangle index, closest (x, y, z), (b0, b1, b2))``."""
    bary = _closest_barycentric(q, a, b, c)
    cp = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    k = int(np.argmin(((cp - q) ** 2).sum(axis=1)))
    return k, tuple(float(x) for x in cp[k]), tuple(float(x) for x in bary[k])


def _closest_barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(m,3) barycentric weights of the closest point to ``p`` on each triangle
    (Ericson, Real-Time Collision Detection §5.1.5, vectorised)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    m = len(a)
    out = np.zeros((m, 3))
    done = np.zeros(m, bool)

    def put(mask, w):
        nonlocal done
        mask = mask & ~done
        out[mask] = w[mask] if w.ndim == 2 else w
        done |= mask

    with np.errstate(divide="ignore", invalid="ignore"):
        put((d1 <= 0) & (d2 <= 0), np.array([1.0, 0, 0]))
        put((d3 >= 0) & (d4 <= d3), np.array([0, 1.0, 0]))
        put((d6 >= 0) & (d5 <= d6), np.array([0, 0, 1.0]))
        v = d1 / (d1 - d3)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - v, v, 0 * v], axis=1))
        w = d2 / (d2 - d6)
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - w, 0 * w, w], axis=1))
        w2 = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), np.stack([0 * w2, 1 - w2, w2], axis=1))
        den = va + vb + vc
        den = np.where(np.abs(den) > 1e-300, den, 1.0)
        vv, ww = vb / den, vc / den
        put(np.ones(m, bool), np.stack([1 - vv - ww, vv, ww], axis=1))
    return np.nan_to_num(out)


def lowest_corner_attributes(face_vertices: np.ndarray, face_attrs: dict[str, np.ndarray],
                             vertex_ids: list[int]) -> dict[str, list[int | None]]:
    """Per attribute kind, per vertex id: the lowest attribute id any face corner on
    that vertex uses, or ``None`` when no face uses the vertex.  ``face_vertices``
    (m,3) vertex ids; ``face_attrs`` kind -> (m,3) attribute ids."""
    found: dict[str, list[int | None]] = {k: [] for k in face_attrs}
    for v in vertex_ids:
        mask = face_vertices == v
        for kind, col in face_attrs.items():
            a = col[mask]
            found[kind].append(int(a.min()) if a.size else None)
    return found
