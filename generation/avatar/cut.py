"""Cut one continuous body into R15 parts along planar joint loops.

Vertices are kept as rows of a sparse "combination" matrix over the source mesh's
vertices: a source vertex is its own row, a vertex made on a cut is ``(1 − t)·a +
t·b`` of the edge it splits.  Two parts that share a cut hold the *same* row for
each seam vertex, so whatever shape the source mesh later takes (shape targets, a
face fit, expressions), both sides of every seam land on identical positions,
normals and skin weights: no crack can open.

Each joint cuts with a plane through the joint, normal along the child bone.  The
plane only decides vertices close to the joint (within ``radius``) whose rig label is
the parent or the child side; farther vertices keep the side their skin weights give
them, so a shoulder plane never slices the hip.  Triangles crossing the resulting
zero set are split exactly on it, so each seam is one clean loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Soup", "cut_by_joints", "boundary_loops"]


@dataclass
class Soup:
    """A triangle mesh whose vertices are combinations of source vertices.

    ``rows``: list of (source indices, weights) per vertex; ``tris`` (m,3); ``uvs``
    (m,3,2) per-corner UVs; ``label`` (m,) part index per triangle."""

    rows: list[tuple[np.ndarray, np.ndarray]]
    tris: np.ndarray
    uvs: np.ndarray
    label: np.ndarray


def cut_by_joints(
    src_pos: np.ndarray,
    tris: np.ndarray,
    uvs: np.ndarray,
    vertex_label: np.ndarray,
    joints: list[tuple[int, int, np.ndarray, np.ndarray, float]],
    descendants: dict[int, set[int]],
    root_label: int,
) -> Soup:
    """Split ``tris`` into labelled parts.

    ``joints``: (parent label, child label, point (3,), unit normal (3,) pointing into
    the child, radius), ordered parents first.  ``vertex_label``: the part each source
    vertex's skin weights give it; ``descendants[c]``: labels on the child side of c
    (c included)."""
    n = len(src_pos)
    rows = [(np.array([i]), np.array([1.0])) for i in range(n)]
    pos = [p for p in src_pos]
    vlab = list(vertex_label)
    soup = Soup(rows, np.asarray(tris, np.int64).copy(), np.asarray(uvs, np.float64).copy(),
                np.full(len(tris), root_label, np.int64))
    for parent, child, point, normal, radius in joints:
        _one_cut(soup, pos, vlab, parent, child, point, normal, radius, descendants[child])
    return soup


def _one_cut(soup: Soup, pos: list, vlab: list, parent: int, child: int, point, normal, radius,
             child_side: set[int]) -> None:
    sel = np.flatnonzero(soup.label == parent)
    if len(sel) == 0:
        return
    P = np.asarray(pos)
    vl = np.asarray(vlab)
    in_child = np.isin(vl, list(child_side))
    d = (P - point) @ normal
    near = np.linalg.norm(P - point, axis=1) < radius
    s = np.where(near, d, np.where(in_child, 1e3, -1e3))
    # keep vertices off the plane so no split makes a degenerate sliver
    s = np.where(s == 0, 1e-9, s)

    edge_vertex: dict[tuple[int, int], int] = {}

    def split_vertex(a: int, b: int) -> int:
        key = (a, b) if a < b else (b, a)
        got = edge_vertex.get(key)
        if got is not None:
            return got
        ka, kb = key
        t = _edge_t(s[ka], s[kb])
        ia, wa = soup.rows[ka]
        ib, wb = soup.rows[kb]
        idx = np.concatenate([ia, ib])
        w = np.concatenate([wa * (1 - t), wb * t])
        uniq, inv = np.unique(idx, return_inverse=True)
        soup.rows.append((uniq, np.bincount(inv, weights=w)))
        pos.append(P[ka] * (1 - t) + P[kb] * t)
        vlab.append(child)
        new = len(soup.rows) - 1
        edge_vertex[key] = new
        return new

    new_tris, new_uvs, new_lab = [], [], []
    keep = np.ones(len(soup.tris), bool)
    for ti in sel:
        tri = soup.tris[ti]
        sd = s[tri] > 0
        if sd.all():
            soup.label[ti] = child
            continue
        if not sd.any():
            continue
        keep[ti] = False
        # rotate so corner 0 is the lone one
        lone = int(np.flatnonzero(sd)[0]) if sd.sum() == 1 else int(np.flatnonzero(~sd)[0])
        order = [lone, (lone + 1) % 3, (lone + 2) % 3]
        a, b, c = (int(tri[k]) for k in order)
        ua, ub, uc = (soup.uvs[ti][k] for k in order)
        ab, ac = split_vertex(a, b), split_vertex(a, c)
        tab = _edge_t(s[a], s[b])
        tac = _edge_t(s[a], s[c])
        uab, uac = ua * (1 - tab) + ub * tab, ua * (1 - tac) + uc * tac
        lone_side = child if s[a] > 0 else parent
        other = parent if lone_side == child else child
        new_tris += [[a, ab, ac], [ab, b, c], [ab, c, ac]]
        new_uvs += [[ua, uab, uac], [uab, ub, uc], [uab, uc, uac]]
        new_lab += [lone_side, other, other]
    if new_tris:
        soup.tris = np.concatenate([soup.tris[keep], np.asarray(new_tris, np.int64)])
        soup.uvs = np.concatenate([soup.uvs[keep], np.asarray(new_uvs, np.float64)])
        soup.label = np.concatenate([soup.label[keep], np.asarray(new_lab, np.int64)])


def _edge_t(sa: float, sb: float) -> float:
    """Where the zero of s lies on an edge, kept off its ends: a cut that grazes a
    vertex then leaves a thin but never degenerate triangle, and the seam moves by
    at most 5 % of an edge (both sides still share the same point)."""
    return min(max(sa / (sa - sb), 0.05), 0.95)


def boundary_loops(tris: np.ndarray) -> list[list[int]]:
    """Closed boundary loops (vertex index lists, in the winding of the open side)."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    fwd = {(int(a), int(b)) for a, b in e}
    nxt: dict[int, int] = {}
    for a, b in fwd:
        if (b, a) not in fwd:
            if a in nxt:
                raise ValueError("boundary is not a set of simple loops")
            nxt[a] = b
    loops = []
    while nxt:
        start = next(iter(nxt))
        loop = [start]
        cur = nxt.pop(start)
        while cur != start:
            loop.append(cur)
            cur = nxt.pop(cur)
        loops.append(loop)
    return loops
