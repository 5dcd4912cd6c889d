"""Mesh geometry of the avatar parts: closed superellipsoid "lathe" grids (rings ×
segments, poles closed with single triangles), column patches of those grids, outward
orientation and area-weighted vertex normals, and the per-part geometry -- a full
lathe for body parts, and for the Head a planar-mapped front patch (with a nose bump)
plus a cylindrically mapped back patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generation.body_layout import Shape

__all__ = ["spow", "PartGeo", "body_part_geo"]


def spow(v: np.ndarray, e: float) -> np.ndarray:
    return np.sign(v) * np.abs(v) ** e


class _Grid:
    """Unique surface points of a superellipsoid: top pole, (rings-1)×segs, bottom pole."""

    def __init__(self, shape: Shape):
        R, S = shape.rings, shape.segs
        self.R, self.S = R, S
        theta = np.pi * np.arange(1, R) / R                 # interior rings, top → bottom
        phi = -np.pi + 2 * np.pi * np.arange(S) / S         # φ = 0 is the front (−Z)
        hx, hy, hz = shape.half
        st = spow(np.sin(theta), shape.ev)[:, None]
        y = np.repeat((hy * spow(np.cos(theta), shape.ev))[:, None], S, axis=1)
        x = hx * st * spow(np.sin(phi), shape.eh)[None, :]
        z = -hz * st * spow(np.cos(phi), shape.eh)[None, :]
        ring = np.stack([x, y, z], axis=-1).reshape(-1, 3)
        self.points = np.concatenate([[[0.0, hy, 0.0]], ring, [[0.0, -hy, 0.0]]])
        # taper x/z linearly from 1 at the top to ``taper`` at the bottom
        t = (hy - self.points[:, 1]) / (2 * hy)
        f = 1.0 - (1.0 - shape.taper) * t
        self.points[:, 0] *= f
        self.points[:, 2] *= f
        self.theta, self.phi = theta, phi

    def index(self, r: int, c: int) -> int:
        """Grid point of ring r (0 = top pole .. R = bottom pole), column c (mod S)."""
        if r == 0:
            return 0
        if r == self.R:
            return 1 + (self.R - 1) * self.S
        return 1 + (r - 1) * self.S + (c % self.S)


def _key_normals(points: np.ndarray, keys: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Unit vertex normals: area-weighted face normals accumulated per grid point."""
    p = points[keys]
    fn = np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]])
    acc = np.zeros_like(points)
    for k in range(3):
        np.add.at(acc, keys[tris[:, k]], fn)
    n = acc[keys]
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)


def _orient_outward(p: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Flip all triangles if the closed mesh has negative signed volume."""
    c = p.mean(axis=0)
    a, b, d = p[tris[:, 0]] - c, p[tris[:, 1]] - c, p[tris[:, 2]] - c
    vol = np.einsum("ij,ij->i", a, np.cross(b, d)).sum()
    return tris if vol > 0 else tris[:, ::-1].copy()


@dataclass
class PartGeo:
    positions: np.ndarray   # (n,3) unscaled studs, model space
    normals: np.ndarray     # (n,3)
    uvs: np.ndarray         # (n,2) per vertex, or (k,2) UV table when face_uvs is given
    triangles: np.ndarray   # (m,3)
    theta: np.ndarray       # (n,) for texture painting
    phi: np.ndarray
    face_uvs: np.ndarray | None = None   # (m,3) rows of ``uvs`` per face corner


def body_part_geo(shape: Shape) -> PartGeo:
    """A closed, welded superellipsoid: every grid point is one vertex (so the mesh is
    a closed 2-manifold by vertex id), and the texture seam at φ = ±180° and the poles
    are expressed with per-corner UV ids (``face_uvs``) -- a seam vertex has two UVs."""
    grid = _Grid(shape)
    R, S = grid.R, grid.S
    pts = grid.points + np.asarray(shape.center)
    top, bot = 0, 1 + (R - 1) * S
    ring = lambda r, c: 1 + (r - 1) * S + (c % S)  # noqa: E731  (r in 1..R-1)
    # UV table: rings 1..R-1 × columns 0..S (column S repeats column 0 at u = 1),
    # then one top-pole and one bottom-pole UV per column (at the column's mid u).
    uring = lambda r, c: (r - 1) * (S + 1) + c  # noqa: E731
    utop = (R - 1) * (S + 1)
    ubot = utop + S
    th = grid.theta
    u_cols = np.arange(S + 1) / S
    uv_ring = np.stack(np.broadcast_arrays(u_cols[None, :], (th / np.pi)[:, None]), axis=-1).reshape(-1, 2)
    u_mid = (np.arange(S) + 0.5) / S
    uv = np.concatenate([uv_ring, np.stack([u_mid, np.zeros(S)], 1), np.stack([u_mid, np.ones(S)], 1)])
    k = np.arange(S)
    tv, tu = [], []
    # top cap
    tv.append(np.stack([np.full(S, top), ring(1, k + 1), ring(1, k)], 1))
    tu.append(np.stack([utop + k, uring(1, k + 1), uring(1, k)], 1))
    # quads between rings r and r+1
    r = np.repeat(np.arange(1, R - 1), S)
    c = np.tile(k, R - 2)
    a, b, cc, d = ring(r, c), ring(r, c + 1), ring(r + 1, c), ring(r + 1, c + 1)
    ua, ub, uc, ud = uring(r, c), uring(r, c + 1), uring(r + 1, c), uring(r + 1, c + 1)
    tv += [np.stack([a, b, d], 1), np.stack([a, d, cc], 1)]
    tu += [np.stack([ua, ub, ud], 1), np.stack([ua, ud, uc], 1)]
    # bottom cap
    tv.append(np.stack([ring(R - 1, k), ring(R - 1, k + 1), np.full(S, bot)], 1))
    tu.append(np.stack([uring(R - 1, k), uring(R - 1, k + 1), ubot + k], 1))
    tris = np.concatenate(tv).astype(np.int64)
    ftu = np.concatenate(tu).astype(np.int64)
    flipped = _orient_outward(pts, tris)
    if flipped is not tris:
        tris, ftu = flipped, ftu[:, ::-1].copy()
    keys = np.arange(len(pts))
    theta = np.concatenate([[0.0], np.repeat(th, S), [np.pi]])
    phi = np.concatenate([[0.0], np.tile(-np.pi + 2 * np.pi * k / S, R - 1), [0.0]])
    return PartGeo(pts, _key_normals(pts, keys, tris), np.clip(uv, 0, 1), tris, theta, phi, ftu)
