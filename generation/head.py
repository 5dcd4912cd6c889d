"""The Head MeshPart from the player's face: MediaPipe's 468-point face mesh fused
into a closed head (skull, ears, neck base), UV-mapped onto the preview, with
FACS expression morph targets.

Geometry (unscaled studs like :mod:`generation.body_layout`; +Y up, facing −Z, the
avatar's left is −X):

* **Face**: the preview landmarks, turned into model axes ((x, y, z) →
  (−x, −y, z)), are similarity-aligned (rotation, uniform scale, translation; no
  shape change) onto the canonical face, which removes head pose and photo scale but
  keeps the person's proportions and depth.  The 852 triangles of MediaPipe's
  tesselation (reconstructed from ``FACEMESH_TESSELATION``'s edge set, cached in
  ``data/face_tesselation.npy``) leave holes at the eyes and the mouth; they are
  closed with strips between the upper and lower lids / inner lips (the mouth strip
  gets a recessed middle row so that JawDrop opens a cavity).
* **Skull**: an ellipsoid fitted to the face oval (width from the face, centre depth
  so the 36 ``FACE_OVAL`` points lie on it), meshed as rings of great-circle
  "spokes" running from the oval to the back pole (+Z).  Ring 0 is the face oval
  itself (shared positions, so the head is one closed 2-manifold); ring 1 doubles to
  72 points.  Ear bumps at the sides, and the bottom is pulled into a short neck that
  ends at the neck base.
* **UVs**: the head texture is 1024×512: the left 512² tile is a square crop of the
  preview around the face, and face vertices take their landmark's image position in
  it; the right tile holds the skull in an azimuthal projection around the back
  pole, painted in the skin tone with a hair cap (see
  :func:`generation.avatar_textures.head_texture_from_face`).
* **Morph targets**: LeftEyeClosed, RightEyeClosed, JawDrop, LeftLipCornerPuller,
  RightLipCornerPuller, LeftLipCornerDown, RightLipCornerDown (Roblox FACS names,
  left/right = the avatar's own), built from the landmark regions.

Landmarks that do not look like a face mesh (many tesselation triangles flipped
after alignment, e.g. synthetic points) and ``landmarks=None`` use the canonical face
(affinely fitted to the given eye/mouth/nose/oval points when there are some).

``data/canonical_face.npy`` (468×3, model axes, nose tip at the origin, chin→forehead
distance 1) was derived once, offline, by :func:`derive_canonical_face`: MediaPipe's
face mesh (refine_landmarks=True) on ``skimage.data.astronaut()`` aligned by the
photo pipeline, frontalised (yaw/roll removed by a symmetry fit) and made exactly
left/right symmetric with the mirror map saved in ``data/face_mirror.npy``.  Nothing
runs MediaPipe at build time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["HeadGeo", "FACS_MORPHS", "head_from_landmarks", "face_tesselation", "canonical_face",
           "FACE_OVAL", "HEAD_TOP", "NECK_BASE"]

_DATA = Path(__file__).resolve().parent / "data"

#: Morph target names (Roblox FACS) in export order.
FACS_MORPHS = ("LeftEyeClosed", "RightEyeClosed", "JawDrop", "LeftLipCornerPuller", "RightLipCornerPuller",
               "LeftLipCornerDown", "RightLipCornerDown")

# Boundary loops of the tesselation (ordered as the face's boundary, front winding).
FACE_OVAL = [10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400,
             378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338]
# Eyes: corner, upper lid (outer → inner), corner, lower lid (outer → inner).  "Right" is the
# person's right eye (image left, model +X); "Left" the person's left (model −X).
_EYES = {
    "Right": (33, [246, 161, 160, 159, 158, 157, 173], 133, [7, 163, 144, 145, 153, 154, 155]),
    "Left": (263, [466, 388, 387, 386, 385, 384, 398], 362, [249, 390, 373, 374, 380, 381, 382]),
}
# Inner lips: right corner 78, upper (right → left), left corner 308, lower (right → left).
_LIP_R, _LIP_L = 78, 308
_LIP_UP = [191, 80, 81, 82, 13, 312, 311, 310, 415]
_LIP_LO = [95, 88, 178, 87, 14, 317, 402, 318, 324]
_MOUTH_CORNERS = {"Right": 61, "Left": 291}
_NOSE_TIP, _CHIN, _FOREHEAD = 1, 152, 10

# Head layout, unscaled studs (matches the old parametric head: 1.78 .. 3.06).
HEAD_TOP = 3.06
NECK_BASE = 1.78
_FACE_H = 0.78          # chin → forehead landmark distance of the canonical face
_CHIN_Y = 2.02          # where the canonical chin sits
_HY, _HZ = 0.62, 0.56   # skull half height / depth
_NECK_R, _NECK_Z = 0.27, 0.06
_RINGS = 16             # skull rings between the oval and the back pole


def face_tesselation() -> np.ndarray:
    """(852, 3) int64 triangles over the 468 face-mesh points, counter-clockwise seen
    from the front, cached from :func:`derive_tesselation`."""
    return _cached("tris", lambda: np.load(_DATA / "face_tesselation.npy").astype(np.int64))


def canonical_face() -> np.ndarray:
    """(468, 3) float64 canonical face (model axes, nose tip at 0, chin→forehead 1)."""
    return _cached("canon", lambda: np.load(_DATA / "canonical_face.npy").astype(np.float64))


_CACHE: dict[str, np.ndarray] = {}


def _cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


# --------------------------------------------------------------------------- data derivation (offline)


def derive_tesselation() -> np.ndarray:
    """Triangles of ``FACEMESH_TESSELATION``: the 3-cliques of its edge graph minus the
    separating ones (all three edges already used twice), consistently oriented and
    facing the front.  Returns (852, 3)."""
    import collections
    import itertools

    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adj = collections.defaultdict(set)
    for a, b in FACEMESH_TESSELATION:
        adj[a].add(b)
        adj[b].add(a)
    cl = sorted({tuple(sorted((a, b, c))) for a, b in FACEMESH_TESSELATION for c in adj[a] & adj[b]})
    uses = collections.Counter(e for t in cl for e in itertools.combinations(t, 2))
    tris = [list(t) for t in cl if not all(uses[e] == 3 for e in itertools.combinations(t, 2))]
    by_edge = collections.defaultdict(list)
    for i, t in enumerate(tris):
        for k in range(3):
            by_edge[frozenset((t[k], t[(k + 1) % 3]))].append(i)
    done, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for k in range(3):
            a, b = tris[i][k], tris[i][(k + 1) % 3]
            for j in by_edge[frozenset((a, b))]:
                if j not in done:
                    t = tris[j]
                    if any((t[q], t[(q + 1) % 3]) == (a, b) for q in range(3)):
                        tris[j] = t[::-1]
                    done.add(j)
                    todo.append(j)
    out = np.asarray(tris, np.int64)
    c = canonical_face()
    n = np.cross(c[out[:, 1]] - c[out[:, 0]], c[out[:, 2]] - c[out[:, 0]])
    if (n[:, 2] < 0).mean() < 0.5:
        out = out[:, ::-1].copy()
    assert len(out) == 852, len(out)
    return out


def derive_canonical_face(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical face and mirror map from one frontal face's (478, 3) preview landmarks
    (used once on the astronaut; see the module docstring)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.transform import Rotation

    p = _model_axes(landmarks)[:468]
    p -= p.mean(0)
    flip = np.array([-1.0, 1.0, 1.0])
    mirror = np.arange(468)
    for _ in range(4):
        q = p * flip
        _, mirror = linear_sum_assignment(((p[:, None] - q[None]) ** 2).sum(-1))
        s, r, t = _similarity3(p, q[mirror], scale=False)
        p = p @ Rotation.from_rotvec(Rotation.from_matrix(r).as_rotvec() / 2).as_matrix().T
        p -= p.mean(0)
    sym = (p + (p * flip)[mirror]) / 2
    sym[mirror == np.arange(468), 0] = 0.0
    sym = (sym - sym[_NOSE_TIP]) / np.linalg.norm(sym[_FOREHEAD] - sym[_CHIN])
    return sym, mirror


# --------------------------------------------------------------------------- helpers


def _model_axes(lm: np.ndarray) -> np.ndarray:
    """Image-normalised landmarks → model axes (x left→right flipped, y up, z = depth)."""
    a = np.asarray(lm, np.float64)
    return np.stack([-a[:, 0], -a[:, 1], a[:, 2]], axis=1)


def _similarity3(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama: (s, R, t) with s·R·src + t ≈ dst (proper rotation)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1
    r = u @ np.diag(d) @ vt
    s = float((sv * d).sum() / (a ** 2).sum() * len(src)) if scale else 1.0
    return s, r, md - s * r @ ms


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _flipped_fraction(p2: np.ndarray, tris: np.ndarray) -> float:
    e1 = p2[tris[:, 1]] - p2[tris[:, 0]]
    e2 = p2[tris[:, 2]] - p2[tris[:, 0]]
    return float(((e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) <= 0).mean())


_KEY_POINTS = FACE_OVAL + [33, 133, 362, 263, 61, 291, 13, 14, 1, 168, 6]


def _fit_canonical(image_xy: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Canonical face fitted (2D affine on key points) to given image points.

    Returns (image-normalised x, y of all 468 points, model-axes 3D face)."""
    c = canonical_face()
    if image_xy is None:
        # default aligned-preview placement: eyes at y 0.42, 0.2 apart, face centred
        eye = (c[[33, 133]].mean(0) + c[[362, 263]].mean(0)) / 2
        eye_d = np.linalg.norm(c[[33, 133]].mean(0) - c[[362, 263]].mean(0))
        s = 0.2 / eye_d
        xy = np.stack([0.5 - (c[:, 0] - eye[0]) * s, 0.42 - (c[:, 1] - eye[1]) * s], axis=1)
        return xy, c.copy()
    src = np.c_[-c[_KEY_POINTS, 0], -c[_KEY_POINTS, 1], np.ones(len(_KEY_POINTS))]
    a, *_ = np.linalg.lstsq(src, image_xy[_KEY_POINTS], rcond=None)
    sv = np.linalg.svd(a[:2], compute_uv=False)
    resid = np.sqrt(((src @ a - image_xy[_KEY_POINTS]) ** 2).sum(1).mean())
    if not (sv[1] > 1e-6 and sv[0] / sv[1] < 1.4 and resid < 0.15 * sv[0] and np.linalg.det(a[:2]) > 0):
        # key points that are no face at all: the canonical face stretched over their bounding box
        lo, hi = image_xy[:468].min(0), image_xy[:468].max(0)
        clo, chi = -c[:, :2].max(0), -c[:, :2].min(0)
        k = np.maximum(hi - lo, 1e-3) / (chi - clo)
        k = np.clip(k, k.max() / 1.3, None)
        a = np.array([[k[0], 0.0], [0.0, k[1]], [lo[0] - clo[0] * k[0], lo[1] - clo[1] * k[1]]])
    xy = np.c_[-c[:, 0], -c[:, 1], np.ones(468)] @ a
    det = abs(np.linalg.det(a[:2]))
    p3 = np.c_[-xy[:, 0], -xy[:, 1], c[:, 2] * np.sqrt(max(det, 1e-12))]
    return xy, p3


# --------------------------------------------------------------------------- the head


@dataclass
class HeadGeo:
    """The head mesh (unscaled studs), its UVs and morph deltas, and face landmarks."""

    positions: np.ndarray            # (n, 3)
    triangles: np.ndarray            # (m, 3), counter-clockwise from outside
    uvs: np.ndarray                  # (n, 2), left half face tile, right half skull tile
    morphs: dict[str, np.ndarray]    # FACS name → (n, 3) deltas (unscaled studs)
    face_rows: np.ndarray            # (468,) row of each face-mesh landmark
    crop: tuple[float, float, float]  # preview crop of the face tile: x0, y0, side (normalised)
    skull_dirs: np.ndarray           # (k, 3) ellipsoid-space directions of skull rows (for painting)
    skull_rows: np.ndarray           # (k,) rows of those vertices
    info: dict = field(default_factory=dict)

    @property
    def eye_y(self) -> float:
        return float(self.positions[self.face_rows[[33, 133, 362, 263]], 1].mean())

    @property
    def front_z(self) -> float:
        return float(self.positions[:, 2].min())


def head_from_landmarks(landmarks: np.ndarray | None) -> HeadGeo:
    """Build the Head (see module docstring).  ``landmarks``: (≥468, 3) x, y normalised
    to the preview, z in x's scale; None for the canonical face."""
    tris_f = face_tesselation()
    canon = canonical_face()
    used_landmarks = landmarks is not None
    plausible = False
    if landmarks is not None:
        lm = np.asarray(landmarks, np.float64)[:468]
        p = _model_axes(lm)
        s, r, t = _similarity3(p, canon)
        face = s * p @ r.T + t
        rms = float(np.sqrt(((face - canon) ** 2).sum(1).mean()))
        plausible = _flipped_fraction(face[:, :2] * (-1, 1), tris_f) < 0.06 and rms < 0.12
        if plausible:
            img_xy = lm[:, :2]
        else:
            img_xy, p3 = _fit_canonical(lm[:, :2])
            s, r, t = _similarity3(p3, canon)
            face = s * p3 @ r.T + t
    else:
        img_xy, face = _fit_canonical(None)

    # ---- place the face: canonical nose tip at the origin, scale to studs
    face = face * _FACE_H
    face[:, 1] += _CHIN_Y - (canon[_CHIN, 1] * _FACE_H)
    oval = face[FACE_OVAL]
    hx = float(np.clip(np.abs(oval[:, 0]).max() * 1.30, 0.36, 0.62))
    hy, hz = _HY, _HZ
    cy = HEAD_TOP - hy
    q = (oval[:, 0] / hx) ** 2 + ((oval[:, 1] - cy) / hy) ** 2
    ok = q < 0.97
    root = np.sqrt(np.clip(1 - q, 0, 1))
    cz_i = oval[:, 2] + hz * root
    cz = float((cz_i[ok] * root[ok]).sum() / max(root[ok].sum(), 1e-9)) if ok.any() else float(cz_i.mean())
    face[:, 2] -= cz                      # skull centre at z = 0
    C = np.array([0.0, cy, 0.0])
    H = np.array([hx, hy, hz])
    chin_y = float(face[_CHIN, 1])
    jaw_w = float(np.abs(face[[172, 397, 136, 365], 0]).mean())

    def surface(d: np.ndarray) -> np.ndarray:
        """Skull point in ellipsoid direction d: the ellipsoid, narrowed below its
        equator towards the jaw width (sides) and the nape (back)."""
        p = C + H * d
        t = _smoothstep((cy - p[:, 1]) / max(cy - chin_y, 1e-6))
        p[:, 0] *= 1 + (min(jaw_w * 1.1 / hx, 1.0) - 1) * t
        p[:, 2] = np.where(p[:, 2] > 0, p[:, 2] * (1 - 0.25 * t), p[:, 2])
        return p

    # ---- face surface + eye/mouth fills
    pos = [face]
    tris = [tris_f]
    for side, (c0, up, c1, lo) in _EYES.items():
        tris.append(_orient_like(_strip(c0, up, c1, lo), tris_f))
    # mouth: middle row, recessed, between the inner lips
    mid = (face[_LIP_UP] + face[_LIP_LO]) / 2
    mouth_w = np.linalg.norm(face[_LIP_L] - face[_LIP_R])
    mid[:, 2] += 0.12 * mouth_w
    mid_rows = np.arange(468, 468 + len(mid))
    pos.append(mid)
    tris.append(_orient_like(_strip(_LIP_R, _LIP_UP, _LIP_L, list(mid_rows)), tris_f))
    tris.append(_orient_like(_strip(_LIP_R, list(mid_rows), _LIP_L, _LIP_LO), tris_f))
    n_face = 468 + len(mid)
    mid_xy = (img_xy[_LIP_UP] + img_xy[_LIP_LO]) / 2
    face_xy = np.concatenate([img_xy[:468], mid_xy])

    # ---- skull rings
    B = np.array([0.0, 0.0, 1.0])
    d0 = (face[FACE_OVAL] - C) / H
    d0 /= np.linalg.norm(d0, axis=1, keepdims=True)
    off0 = face[FACE_OVAL] - surface(d0)
    n_ov = len(FACE_OVAL)
    # 72 spokes: the oval points and the midpoints between them
    dm = d0 + np.roll(d0, -1, axis=0)
    dm /= np.linalg.norm(dm, axis=1, keepdims=True)
    dirs = np.empty((2 * n_ov, 3))
    dirs[0::2], dirs[1::2] = d0, dm
    offs = np.empty((2 * n_ov, 3))
    offs[0::2], offs[1::2] = off0, (off0 + np.roll(off0, -1, axis=0)) / 2
    rho = np.arccos(np.clip(dirs @ B, -1, 1))
    alpha = np.arctan2(dirs[:, 1], dirs[:, 0])
    K = _RINGS
    ring_pts, ring_dirs = [], []
    for k in range(1, K + 1):
        f = 1.0 - k / (K + 1)
        rr = rho * f
        d = (np.cos(rr)[:, None] * B + np.sin(rr)[:, None] * np.stack([np.cos(alpha), np.sin(alpha),
                                                                         np.zeros_like(alpha)], 1))
        w = max(0.0, 1.0 - k / 4.0) ** 2
        ring_pts.append(surface(d) + w * offs)
        ring_dirs.append(d)
    pole_pt = surface(B[None])[0]
    skull = np.concatenate(ring_pts + [pole_pt[None]])
    skull_dirs = np.concatenate(ring_dirs + [B[None]])
    skull = _ears_and_neck(skull, C, H, chin_y=chin_y)
    # oval copies (ring 0) for the skull's UV seam
    base_ov = n_face
    base_ring = base_ov + n_ov
    pos += [face[FACE_OVAL], skull]
    all_dirs = np.concatenate([d0, skull_dirs])
    R2 = 2 * n_ov
    st = []
    ov = np.arange(n_ov)
    r1 = base_ring + np.arange(R2)
    # oval (face boundary order) → ring 1: the skull uses the oval edges reversed
    a, b = base_ov + ov, base_ov + (ov + 1) % n_ov
    m0, m1, m2 = r1[(2 * ov) % R2], r1[(2 * ov + 1) % R2], r1[(2 * ov + 2) % R2]
    st += [np.stack([b, a, m1], 1), np.stack([a, m0, m1], 1), np.stack([b, m1, m2], 1)]
    j = np.arange(R2)
    for k in range(K - 1):
        ra = base_ring + k * R2
        rb = ra + R2
        p0, p1 = ra + j, ra + (j + 1) % R2
        q0, q1 = rb + j, rb + (j + 1) % R2
        st += [np.stack([p1, p0, q0], 1), np.stack([p1, q0, q1], 1)]
    pole = base_ring + K * R2
    last = base_ring + (K - 1) * R2
    st.append(np.stack([last + (j + 1) % R2, last + j, np.full(R2, pole)], 1))
    tris.append(np.concatenate(st))

    positions = np.concatenate(pos)
    triangles = np.concatenate(tris).astype(np.int64)
    if _signed_volume(positions, triangles) < 0:   # orientation sanity (skull winding follows the oval)
        raise AssertionError("head mesh is inside out")

    # ---- UVs
    x0y0, side = _face_crop(face_xy)
    uv_face = (face_xy - x0y0) / side
    uv_face = np.stack([0.002 + 0.496 * np.clip(uv_face[:, 0], 0, 1), 0.002 + 0.996 * np.clip(uv_face[:, 1], 0, 1)], 1)
    rho_all = np.arccos(np.clip(all_dirs @ B, -1, 1))
    alpha_all = np.arctan2(all_dirs[:, 1], all_dirs[:, 0])
    rmax = float(rho.max()) * 1.001
    X, Y = rho_all / rmax * np.cos(alpha_all), rho_all / rmax * np.sin(alpha_all)
    uv_skull = np.stack([0.75 + 0.246 * X, 0.5 - 0.496 * Y], 1)
    uvs = np.concatenate([uv_face, uv_skull])

    morphs = _morphs(positions, n_face, mid_rows, H, C)
    skull_rows = np.arange(base_ov, len(positions))
    return HeadGeo(positions, triangles, np.clip(uvs, 0, 1), morphs, np.arange(468),
                   (float(x0y0[0]), float(x0y0[1]), float(side)), all_dirs, skull_rows,
                   {"hx": hx, "center": C.tolist(), "half": H.tolist(), "rho_max": rmax,
                    "used_landmarks": used_landmarks, "plausible_landmarks": plausible,
                    "face_xy": face_xy, "oval_rows": np.asarray(FACE_OVAL)})


def _strip(c0: int, a: list[int], c1: int, b: list[int]) -> np.ndarray:
    """Triangles filling the loop c0 → a… → c1 → reversed(b)… between two polylines of
    equal length sharing the end points c0 and c1 (winding fixed by :func:`_orient_like`)."""
    out = []
    A = [c0] + list(a) + [c1]
    Bv = [c0] + list(b) + [c1]
    for i in range(len(A) - 1):
        a0, a1, b0, b1 = A[i], A[i + 1], Bv[i], Bv[i + 1]
        if a0 == b0:
            out.append((a0, a1, b1))
        elif a1 == b1:
            out.append((a0, a1, b0))
        else:
            out += [(a0, a1, b1), (a0, b1, b0)]
    return np.asarray(out, np.int64)


def _orient_like(fill: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Flip ``fill`` if it runs along one of ``surface``'s directed edges the same way
    (two triangles sharing an edge must traverse it in opposite directions)."""
    have = {(int(t[k]), int(t[(k + 1) % 3])) for t in surface for k in range(3)}
    for t in fill:
        for k in range(3):
            e = (int(t[k]), int(t[(k + 1) % 3]))
            if e in have:
                return fill[:, ::-1].copy()
            if e[::-1] in have:
                return fill
    return fill


def _signed_volume(p: np.ndarray, t: np.ndarray) -> float:
    c = p.mean(0)
    a, b, d = p[t[:, 0]] - c, p[t[:, 1]] - c, p[t[:, 2]] - c
    return float(np.einsum("ij,ij->i", a, np.cross(b, d)).sum() / 6)


def _face_crop(xy: np.ndarray) -> tuple[np.ndarray, float]:
    lo, hi = xy.min(0), xy.max(0)
    side = float((hi - lo).max()) * 1.08
    return (lo + hi) / 2 - side / 2, max(side, 1e-6)


def _ears_and_neck(p: np.ndarray, C: np.ndarray, H: np.ndarray, chin_y: float) -> np.ndarray:
    p = p.copy()
    # ears: outward bumps at the sides, a little behind the centre, around eye-to-nose height
    for sx in (-1.0, 1.0):
        g = np.exp(-(((p[:, 1] - (C[1] - 0.10)) / 0.13) ** 2 + ((p[:, 2] - 0.05) / 0.09) ** 2))
        g *= (p[:, 0] * sx > 0.6 * H[0])
        p[:, 0] += sx * 0.07 * g
    # neck: below the jaw, pull in towards the neck column and stretch down to the neck base
    yj = chin_y - 0.02
    bottom = float(p[:, 1].min())
    below = p[:, 1] < yj
    w = _smoothstep((yj - p[:, 1]) / 0.10) * below
    axis = np.array([0.0, _NECK_Z])
    xz = p[:, [0, 2]] - axis
    r = np.linalg.norm(xz, axis=1)
    target = xz * np.minimum(1.0, _NECK_R / np.maximum(r, 1e-9))[:, None]
    p[:, [0, 2]] = axis + xz + (target - xz) * w[:, None]
    stretch = (yj - NECK_BASE) / max(yj - bottom, 1e-6)
    p[:, 1] = np.where(below, yj - (yj - p[:, 1]) * (1 + (stretch - 1) * w), p[:, 1])
    return p


# --------------------------------------------------------------------------- expressions


def _morphs(pos: np.ndarray, n_face: int, mid_rows: np.ndarray, H: np.ndarray, C: np.ndarray) -> dict[str, np.ndarray]:
    n = len(pos)
    out: dict[str, np.ndarray] = {}
    face = pos[:468]
    nose_y = face[_NOSE_TIP, 1]

    # eyes: upper lid onto the lower lid; the skin above follows with a falloff
    for side, (c0, up, c1, lo) in _EYES.items():
        d = np.zeros((n, 3))
        lid = face[lo] - face[up]
        eh = float(np.abs(lid[:, 1]).mean()) + 1e-4
        xs = face[up, 0]
        order = np.argsort(xs)
        x_lo, x_hi = min(face[c0, 0], face[c1, 0]), max(face[c0, 0], face[c1, 0])
        top_y = np.interp(pos[:, 0], xs[order], face[up, 1][order])
        above = pos[:, 1] - top_y
        width = x_hi - x_lo
        inx = _smoothstep((pos[:, 0] - x_lo) / (0.25 * width)) * _smoothstep((x_hi - pos[:, 0]) / (0.25 * width))
        fall = np.clip(1 - above / (3.0 * eh), 0, 1) ** 2 * 0.55 * (above > 0) * inx
        shift = np.stack([np.interp(pos[:, 0], xs[order], lid[order, k]) for k in range(3)], 1)
        d = shift * fall[:, None]
        d[up] = lid
        d[lo] = 0.0
        d[[c0, c1]] = 0.0
        d[pos[:, 1] < nose_y] = 0.0
        d[pos[:, 2] > 0.1] = 0.0
        out[f"{side}EyeClosed"] = d

    # jaw: rotate the chin / lower lip / jaw about a pivot near the ears
    pivot = np.array([0.0, C[1] - 0.12, 0.05])
    ang = np.radians(13.0)
    mouth_y = float(face[[_LIP_R, _LIP_L, 13, 14]][:, 1].mean())
    mw = float(np.linalg.norm(face[_LIP_L] - face[_LIP_R]))
    rel = pos - pivot
    rot = np.array([[1, 0, 0], [0, np.cos(ang), np.sin(ang)], [0, -np.sin(ang), np.cos(ang)]])
    w = _smoothstep((mouth_y - pos[:, 1]) / (0.25 * mw) + 0.2) * _smoothstep((0.10 - pos[:, 2]) / 0.25)
    w[_LIP_LO] = 1.0
    w[[_LIP_R, _LIP_L]] = 0.5
    w[mid_rows] = 0.5
    w[_LIP_UP] = 0.0
    w[pos[:, 1] < NECK_BASE + 0.12] *= _smoothstep((pos[pos[:, 1] < NECK_BASE + 0.12, 1] - NECK_BASE) / 0.12)
    # rotating by +ang about X moves points in front (−z) downwards
    out["JawDrop"] = (rel @ rot.T - rel) * w[:, None]

    # lip corners: Gaussian around the corner, only on its own side
    for side, sx in (("Left", -1.0), ("Right", 1.0)):
        c = face[_MOUTH_CORNERS[side]]
        sig = 0.32 * mw
        g = np.exp(-((pos - c) ** 2).sum(1) / (2 * sig ** 2))
        g = np.where(g < 0.03, 0.0, g) * _smoothstep(sx * pos[:, 0] / (0.25 * mw)) * (pos[:, 2] < 0.0)
        amp = 0.32 * mw
        up = np.array([sx * 0.45, 0.75, 0.25]) * amp
        down = np.array([sx * 0.2, -0.6, 0.05]) * amp
        out[f"{side}LipCornerPuller"] = g[:, None] * up
        out[f"{side}LipCornerDown"] = g[:, None] * down
    return {k: out[k].astype(np.float32) for k in FACS_MORPHS}
