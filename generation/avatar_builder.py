"""Build a rigged, textured 15-part R15 avatar from a styled 2D preview.

``build_avatar(preview_png, landmarks=..., skin_rgb=..., hair_rgb=..., text_prompt=...)``
returns a :class:`meshes.Avatar` in model-space studs (+Y up, facing −Z, LowerTorso
bone at the origin), about 5.5 studs tall, standing in an I-pose.

Geometry: every MeshPart is a closed superellipsoid "lathe" (rings × segments grid,
poles closed with single triangles), optionally tapered; the Head gets a nose bump
placed (and sized) from the face landmarks.  Triangle counts: Head 3744, each torso
part 816, each limb part 384 -- inside Roblox's budgets (4000 / 1750 / 1248).

Texturing: the Head is split into a front patch (±75° around −Z), planar-mapped onto
the left half of a 1024×512 texture, and a back patch mapped onto the right half.
The preview is warped into the face tile with a similarity transform that puts the
player's eyes and mouth (from the landmarks, or from the aligned-preview defaults)
on the head's eye and mouth positions; outside the feathered face oval the tile is
skin, with a hair cap in ``hair_rgb``.  Body parts get 128×128 textures: skin,
shirt (UpperTorso + sleeves), pants (LowerTorso + legs), shoes.  Colour words in
``text_prompt`` ("red shirt", "blue jeans", "white sneakers") pick clothing colours.

Rig: the 17 R15 bones at the joints, rigid skinning per part with 50/50 blends
fading over 0.12 studs at every joint (weights are multiples of 1/256 so rows sum
to exactly 1), rig attachments at the joints and accessory attachments in their
Roblox regions.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from meshes.avatar import Avatar
from meshes.editable_image import EditableImage
from meshes.editable_mesh import EditableMesh
from meshes.r15 import BODY_PARTS, BONE_HIERARCHY, BONE_INDEX, BONE_PARENTS, JOINTS, PART_NAMES
from schemas.errors import InputRejected, InvalidParams

__all__ = ["build_avatar", "parse_clothing_prompt", "BODY_SCALE", "DEFAULT_CLOTHING"]

#: Uniform scale applied to the layout below (unscaled height 5.82 → ~5.5 studs).
BODY_SCALE = 0.95
#: Skin blend half-width around each joint, studs (before BODY_SCALE).
_BLEND_RADIUS = 0.12
_BODY_TEX = 128
_FACE_TILE = 512

DEFAULT_CLOTHING = {"shirt": (46, 94, 170), "pants": (42, 46, 60), "shoes": (34, 30, 30)}

# MediaPipe face-mesh landmark indices.
_FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
              152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
_RIGHT_EYE = (33, 133)     # the person's right eye: image left
_LEFT_EYE = (362, 263)
_MOUTH = (61, 291, 13, 14)
_NOSE_TIP = 1
_FOREHEAD = 10
_CHEEKS = (234, 454)

# Canonical face-tile (512²) positions of the right eye, left eye and mouth centre.
_CANON = np.array([[159.0, 218.0], [353.0, 218.0], [256.0, 388.0]])
# Where those features sit in an aligned preview when no landmarks are given
# (fractions of width / height of the square preview from the 2D pipeline).
_DEFAULT_PREVIEW_FEATURES = np.array([[0.40, 0.42], [0.60, 0.42], [0.50, 0.62]])


@dataclass(frozen=True)
class _Shape:
    """A superellipsoid part: centre/half extents in unscaled studs, vertical and
    horizontal exponents (1 = round, <1 = boxier), grid resolution, x/z taper
    (scale at the bottom relative to the top)."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    ev: float
    eh: float
    rings: int
    segs: int
    taper: float = 1.0


def _limb(cx: float, cy: float, cz: float, hx: float, hy: float, hz: float, taper: float = 1.0, ev: float = 0.55,
          eh: float = 0.85) -> _Shape:
    return _Shape((cx, cy, cz), (hx, hy, hz), ev, eh, 13, 16, taper)


def _layout() -> dict[str, _Shape]:
    s: dict[str, _Shape] = {
        "Head": _Shape((0.0, 2.42, 0.0), (0.56, 0.64, 0.60), 0.85, 0.85, 40, 48, 0.85),
        "UpperTorso": _Shape((0.0, 1.05, 0.0), (0.86, 0.85, 0.42), 0.35, 0.55, 18, 24, 0.85),
        "LowerTorso": _Shape((0.0, -0.07, 0.0), (0.76, 0.36, 0.40), 0.40, 0.60, 18, 24, 0.95),
    }
    for side, sx in (("Left", -1.0), ("Right", 1.0)):
        s[f"{side}UpperArm"] = _limb(1.12 * sx, 1.30, 0.0, 0.24, 0.58, 0.26, 0.9)
        s[f"{side}LowerArm"] = _limb(1.12 * sx, 0.33, 0.0, 0.21, 0.55, 0.23, 0.85)
        s[f"{side}Hand"] = _limb(1.12 * sx, -0.38, 0.0, 0.12, 0.30, 0.22, 0.9, ev=0.6, eh=0.7)
        s[f"{side}UpperLeg"] = _limb(0.42 * sx, -0.78, 0.0, 0.30, 0.68, 0.32, 0.8)
        s[f"{side}LowerLeg"] = _limb(0.42 * sx, -1.92, 0.0, 0.25, 0.62, 0.27, 0.85)
        s[f"{side}Foot"] = _limb(0.42 * sx, -2.60, -0.12, 0.26, 0.16, 0.45, 1.0, ev=0.4, eh=0.5)
    return s


def _bone_layout() -> dict[str, tuple[float, float, float]]:
    b = {"Root": (0.0, 0.0, 0.0), "HumanoidRootNode": (0.0, 0.0, 0.0), "LowerTorso": (0.0, 0.0, 0.0),
         "UpperTorso": (0.0, 0.25, 0.0), "Head": (0.0, 1.85, 0.0)}
    for side, sx in (("Left", -1.0), ("Right", 1.0)):
        b[f"{side}UpperArm"] = (0.88 * sx, 1.62, 0.0)
        b[f"{side}LowerArm"] = (1.12 * sx, 0.80, 0.0)
        b[f"{side}Hand"] = (1.12 * sx, -0.14, 0.0)
        b[f"{side}UpperLeg"] = (0.42 * sx, -0.30, 0.0)
        b[f"{side}LowerLeg"] = (0.42 * sx, -1.38, 0.0)
        b[f"{side}Foot"] = (0.42 * sx, -2.45, 0.0)
    return b


def _accessory_layout(head_front_z: float, eye_y: float) -> dict[str, dict[str, tuple]]:
    """part → accessory attachment → (position, orientation); unscaled studs."""
    a: dict[str, dict[str, tuple]] = {
        "Head": {"FaceCenterAttachment": ((0.0, 2.42, 0.0), (0, 0, 0)),
                 "FaceFrontAttachment": ((0.0, eye_y, head_front_z), (0, 0, 0)),
                 "HatAttachment": ((0.0, 3.06, 0.0), (0, 0, 0)),
                 "HairAttachment": ((0.0, 3.06, 0.0), (0, 0, 0))},
        "UpperTorso": {"NeckAttachment": ((0.0, 1.90, 0.0), (0, 0, 0)),
                       "BodyFrontAttachment": ((0.0, 1.05, -0.42), (0, 0, 0)),
                       "BodyBackAttachment": ((0.0, 1.05, 0.42), (0, 0, 0)),
                       "LeftCollarAttachment": ((-0.5, 1.90, 0.0), (0, 0, 0)),
                       "RightCollarAttachment": ((0.5, 1.90, 0.0), (0, 0, 0))},
        "LowerTorso": {"WaistFrontAttachment": ((0.0, 0.0, -0.40), (0, 0, 0)),
                       "WaistBackAttachment": ((0.0, 0.0, 0.40), (0, 0, 0)),
                       "WaistCenterAttachment": ((0.0, 0.0, 0.0), (0, 0, 0))},
    }
    for side, sx in (("Left", -1.0), ("Right", 1.0)):
        a[f"{side}UpperArm"] = {f"{side}ShoulderAttachment": ((1.12 * sx, 1.88, 0.0), (0, 0, 0))}
        a[f"{side}Hand"] = {f"{side}GripAttachment": ((1.12 * sx, -0.45, 0.0), (90, 0, 0))}
        a[f"{side}Foot"] = {f"{side}FootAttachment": ((0.42 * sx, -2.76, -0.12), (0, 0, 0))}
    return a


# --------------------------------------------------------------------------- geometry


def _spow(v: np.ndarray, e: float) -> np.ndarray:
    return np.sign(v) * np.abs(v) ** e


class _Grid:
    """Unique surface points of a superellipsoid: top pole, (rings-1)×segs, bottom pole."""

    def __init__(self, shape: _Shape):
        R, S = shape.rings, shape.segs
        self.R, self.S = R, S
        theta = np.pi * np.arange(1, R) / R                 # interior rings, top → bottom
        phi = -np.pi + 2 * np.pi * np.arange(S) / S         # φ = 0 is the front (−Z)
        hx, hy, hz = shape.half
        st = _spow(np.sin(theta), shape.ev)[:, None]
        y = np.repeat((hy * _spow(np.cos(theta), shape.ev))[:, None], S, axis=1)
        x = hx * st * _spow(np.sin(phi), shape.eh)[None, :]
        z = -hz * st * _spow(np.cos(phi), shape.eh)[None, :]
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


def _patch(grid: _Grid, c0: int, ncols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (as grid keys) and triangles of the columns c0..c0+ncols.

    Returns (keys (n,), theta (n,), phi (n,), triangles (m,3) local rows)."""
    R = grid.R
    keys, th, ph = [], [], []
    dphi = 2 * np.pi / grid.S
    row_start = {}
    # top pole: one vertex per quad column, at the column's mid angle
    row_start[0] = 0
    for k in range(ncols):
        keys.append(grid.index(0, 0)); th.append(0.0); ph.append(-np.pi + (c0 + k + 0.5) * dphi)
    for r in range(1, R):
        row_start[r] = len(keys)
        for k in range(ncols + 1):
            keys.append(grid.index(r, c0 + k)); th.append(grid.theta[r - 1]); ph.append(-np.pi + (c0 + k) * dphi)
    row_start[R] = len(keys)
    for k in range(ncols):
        keys.append(grid.index(R, 0)); th.append(np.pi); ph.append(-np.pi + (c0 + k + 0.5) * dphi)
    tris = []
    for k in range(ncols):
        a, b = row_start[1] + k, row_start[1] + k + 1
        tris.append((row_start[0] + k, b, a))
    for r in range(1, R - 1):
        for k in range(ncols):
            a, b = row_start[r] + k, row_start[r] + k + 1
            c, d = row_start[r + 1] + k, row_start[r + 1] + k + 1
            tris.append((a, b, d))
            tris.append((a, d, c))
    for k in range(ncols):
        a, b = row_start[R - 1] + k, row_start[R - 1] + k + 1
        tris.append((a, b, row_start[R] + k))
    return np.asarray(keys), np.asarray(th), np.asarray(ph), np.asarray(tris, np.int64)


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
class _PartGeo:
    positions: np.ndarray   # (n,3) unscaled studs, model space
    normals: np.ndarray     # (n,3)
    uvs: np.ndarray         # (n,2)
    triangles: np.ndarray   # (m,3)
    theta: np.ndarray       # (n,) for texture painting
    phi: np.ndarray


def _body_part_geo(shape: _Shape) -> _PartGeo:
    grid = _Grid(shape)
    keys, th, ph, tris = _patch(grid, 0, grid.S)
    pts = grid.points + np.asarray(shape.center)
    tris = _orient_outward(pts[keys], tris)
    uv = np.stack([(ph + np.pi) / (2 * np.pi), th / np.pi], axis=1)
    return _PartGeo(pts[keys], _key_normals(pts, keys, tris), np.clip(uv, 0, 1), tris, th, ph)


@dataclass
class _HeadInfo:
    half_x: float          # max |x| of the head surface (planar UV extent)
    half_y: float
    center_y: float
    front_z: float         # most forward z (negative)


def _head_geo(shape: _Shape, nose_uv: tuple[float, float], nose_height: float) -> tuple[_PartGeo, _HeadInfo]:
    """Head: front patch (φ ∈ [−75°, 75°]) planar-mapped to the face tile (u 0..0.5),
    back patch cylindrically mapped to u 0.5..1.  Nose bump at face-tile ``nose_uv``."""
    grid = _Grid(shape)
    S = grid.S
    pts = grid.points.copy()
    hx_eff = float(np.abs(pts[:, 0]).max())
    hy = shape.half[1]
    # nose: push front-facing points forward with a Gaussian around the nose tip
    nx = (0.5 - nose_uv[0]) * 2 * hx_eff
    ny = (0.5 - nose_uv[1]) * 2 * hy
    front = pts[:, 2] < 0
    g = np.exp(-(((pts[:, 0] - nx) / 0.085) ** 2 + ((pts[:, 1] - ny) / 0.11) ** 2))
    pts[:, 2] -= np.where(front, nose_height * g, 0.0)
    cols_front = int(round(S * 150 / 360))          # 20 of 48 columns = 150°
    c0 = S // 2 - cols_front // 2                   # column of φ = −75°
    kf, thf, phf, tf = _patch(grid, c0, cols_front)
    kb, thb, phb, tb = _patch(grid, c0 + cols_front, S - cols_front)
    keys = np.concatenate([kf, kb])
    tris = np.concatenate([tf, tb + len(kf)])
    center = np.asarray(shape.center)
    world = pts + center
    tris = _orient_outward(world[keys], tris)
    # UVs
    pf = pts[kf]
    uf = 0.5 - pf[:, 0] / (2 * hx_eff)
    vf = 0.5 - pf[:, 1] / (2 * hy)
    span = 2 * np.pi * (S - cols_front) / S
    ub = (phb - (-np.pi + (c0 + cols_front) * 2 * np.pi / S)) / span   # φ runs 75° → 285° unwrapped
    uv = np.concatenate([
        np.stack([0.002 + np.clip(uf, 0, 1) * 0.496, np.clip(vf, 0, 1)], axis=1),
        np.stack([0.504 + np.clip(ub, 0, 1) * 0.492, thb / np.pi], axis=1),
    ])
    geo = _PartGeo(world[keys], _key_normals(world, keys, tris), np.clip(uv, 0, 1), tris,
                   np.concatenate([thf, thb]), np.concatenate([phf, phb]))
    info = _HeadInfo(hx_eff, hy, shape.center[1], float(world[:, 2].min()))
    return geo, info


# --------------------------------------------------------------------------- skinning


def _skin(part: str, pos: np.ndarray, bones: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n,4) joints and weights: rigid to the part's bone, blended 50/50 at each joint
    plane and fading to rigid over ``_BLEND_RADIUS`` into the part."""
    n = len(pos)
    own = BONE_INDEX[part]
    # (other bone, joint y) pairs touching this part
    pairs: list[tuple[str, float]] = []
    if part != "LowerTorso":
        pairs.append((BONE_PARENTS[part], float(bones[part][1])))
    for child, par in BONE_HIERARCHY:
        if par == part and part not in ("UpperTorso", "LowerTorso"):
            pairs.append((child, float(bones[child][1])))
    centre_y = (pos[:, 1].min() + pos[:, 1].max()) / 2
    r = _BLEND_RADIUS * BODY_SCALE
    best_w = np.zeros(n)
    best_j = np.full(n, own)
    for other, jy in pairs:
        direction = 1.0 if centre_y >= jy else -1.0
        s = (pos[:, 1] - jy) * direction
        w = np.clip(0.5 * (1.0 - s / r), 0.0, 0.5)
        w = np.round(w * 256) / 256
        take = w > best_w
        best_w[take] = w[take]
        best_j[take] = BONE_INDEX[other]
    joints = np.zeros((n, 4), np.uint16)
    weights = np.zeros((n, 4), np.float32)
    joints[:, 0] = own
    weights[:, 0] = 1.0 - best_w
    blended = best_w > 0
    joints[blended, 1] = best_j[blended]
    weights[blended, 1] = best_w[blended]
    return joints, weights


# --------------------------------------------------------------------------- textures


def _rgb01(c) -> np.ndarray:
    return np.asarray(c, np.float32) / 255.0


def _row_heights(shape: _Shape, h: int) -> np.ndarray:
    """Normalised height (−1 bottom .. 1 top) of each texture row of a lathe part."""
    v = (np.arange(h) + 0.5) / h
    return _spow(np.cos(np.pi * v), shape.ev)


def _col_angles(w: int) -> np.ndarray:
    """Azimuth φ of each texture column (0 = front)."""
    return (np.arange(w) + 0.5) / w * 2 * np.pi - np.pi


def _shade(tex: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Soft top-lit shading so flat colours read as cloth/skin."""
    return tex * (0.9 + 0.1 * (yn[:, None, None] + 1) / 2)


def _body_texture(part: str, shape: _Shape, colors: dict[str, np.ndarray]) -> np.ndarray:
    H = W = _BODY_TEX
    yn = _row_heights(shape, H)
    phi = _col_angles(W)
    skin, shirt, pants, shoes = colors["skin"], colors["shirt"], colors["pants"], colors["shoes"]
    tex = np.empty((H, W, 3), np.float32)
    Y = yn[:, None]
    P = np.abs(phi)[None, :]
    if part == "UpperTorso":
        tex[:] = shirt
        vneck = (Y > 0.78) & (P < 0.45 * (Y - 0.78) / 0.22)
        tex[vneck] = skin
        tex[(Y < -0.93)[:, 0]] = shirt * 0.8
    elif part == "LowerTorso":
        tex[:] = pants
        belt = ((Y > 0.72) & (Y < 0.95))[:, 0]
        tex[belt] = pants * 0.55
        tex[(Y > 0.72) & (Y < 0.95) & (P < 0.12)] = (0.75, 0.72, 0.6)
    elif part.endswith("UpperArm"):
        tex[:] = skin
        tex[(Y > -0.15)[:, 0]] = shirt
        tex[((Y > -0.15) & (Y < 0.0))[:, 0]] = shirt * 0.8
    elif part.endswith(("LowerArm", "Hand")):
        tex[:] = skin
    elif part.endswith(("UpperLeg", "LowerLeg")):
        tex[:] = pants
        if part.endswith("LowerLeg"):
            tex[(Y < -0.85)[:, 0]] = pants * 0.8
    elif part.endswith("Foot"):
        tex[:] = shoes
        tex[(Y < -0.55)[:, 0]] = (0.92, 0.92, 0.9)
        tex[((Y > 0.6) & (P < 0.5))] = shoes * 1.4 + 0.05
    tex = _shade(tex, yn)
    return _to_rgba8(tex)


def _to_rgba8(rgb: np.ndarray) -> np.ndarray:
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _hair_masks(shape: _Shape, t_front: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft hair masks (0..1) for the face tile (512×512) and the back tile (512×512).

    The hairline is a height (normalised to the head half-height): ``t_front`` at
    the forehead, 0.25 at the temples, −0.45 at the nape; both tiles agree at the seam."""
    T = _FACE_TILE
    t_temple, t_nape, soft = 0.25, -0.45, 0.04
    # face tile: planar coordinates
    v = (np.arange(T) + 0.5) / T
    u = (np.arange(T) + 0.5) / T
    ty = ((0.5 - v) * 2)[:, None]
    xn = np.abs((0.5 - u) * 2)[None, :]
    hl = t_front + (t_temple - t_front) * _smoothstep(xn / 0.85)
    face = _smoothstep((ty - hl) / soft + 0.5)
    # back tile: θ by row, φ by column over [75°, 285°]
    th = np.pi * v
    tyb = _spow(np.cos(th), shape.ev)[:, None]
    ph = np.deg2rad(75.0) + u * np.deg2rad(210.0)
    away = np.abs(((ph + np.pi) % (2 * np.pi)) - np.pi)          # |φ| folded to 0..π
    hlb = t_temple + (t_nape - t_temple) * _smoothstep((away - np.deg2rad(90)) / np.deg2rad(90))[None, :]
    back = _smoothstep((tyb - hlb) / soft + 0.5)
    return face, back


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 least-squares similarity (Umeyama) mapping src (k,2) onto dst (k,2)."""
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[1, 1] = -1
    R = U @ D @ Vt
    var = (s0 ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(S) @ D) / var)
    t = md - scale * R @ ms
    return np.hstack([scale * R, t[:, None]])


@dataclass
class _Face:
    tile: np.ndarray          # (512,512,3) float32 0..1, warped preview
    mask: np.ndarray          # (512,512) float32 feathered face region
    nose_uv: tuple[float, float]
    nose_height: float        # studs, unscaled
    t_front: float            # forehead hairline (normalised head height)
    width_factor: float       # head width multiplier from the face aspect


def _face_from_preview(rgb: np.ndarray, landmarks: np.ndarray | None) -> _Face:
    h, w = rgb.shape[:2]
    T = _FACE_TILE
    if landmarks is not None:
        px = landmarks[:, :2].astype(np.float64) * (w, h)
        feats = np.array([px[list(_RIGHT_EYE)].mean(0), px[list(_LEFT_EYE)].mean(0), px[list(_MOUTH)].mean(0)])
    else:
        feats = _DEFAULT_PREVIEW_FEATURES * (w, h)
    if np.linalg.norm(feats[1] - feats[0]) < 4:
        raise InputRejected("The face in the preview is too small to texture the head.", code="InvalidLandmarks")
    M = _similarity(feats, _CANON)
    tile = cv2.warpAffine(rgb, M, (T, T), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((T, T), np.uint8)
    if landmarks is not None:
        oval = np.c_[px[_FACE_OVAL], np.ones(len(_FACE_OVAL))] @ M.T
        hull = cv2.convexHull(oval.astype(np.float32)).astype(np.int32)
        cv2.fillPoly(mask, [hull], 255)
        mask = cv2.erode(mask, np.ones((9, 9), np.uint8))
        nose = np.r_[px[_NOSE_TIP], 1.0] @ M.T
        fore = np.r_[px[_FOREHEAD], 1.0] @ M.T
        nose_uv = (float(np.clip(nose[0] / T, 0.4, 0.6)), float(np.clip(nose[1] / T, 0.5, 0.72)))
        t_front = float(np.clip((0.5 - fore[1] / T) * 2 + 0.06, 0.35, 0.85))
        face_w = np.linalg.norm(px[_CHEEKS[1]] - px[_CHEEKS[0]])
        face_h = np.linalg.norm(px[152] - px[_FOREHEAD])
        width_factor = float(np.clip((face_w / max(face_h, 1e-6)) / 0.85, 0.92, 1.08))
        z = landmarks[:, 2].astype(np.float64)
        depth = (z[list(_CHEEKS)].mean() - z[_NOSE_TIP]) / max(face_w / w, 1e-6)
        nose_height = float(np.clip(0.03 + 0.25 * depth, 0.03, 0.12))
    else:
        cv2.ellipse(mask, (256, 290), (180, 215), 0, 0, 360, 255, -1)
        nose_uv, t_front, width_factor, nose_height = (0.5, 0.61), 0.72, 1.0, 0.07
    mask_f = cv2.GaussianBlur(mask, (0, 0), 9).astype(np.float32) / 255.0
    return _Face(tile.astype(np.float32) / 255.0, mask_f, nose_uv, nose_height, t_front, width_factor)


def _head_texture(face: _Face, shape: _Shape, skin: np.ndarray, hair: np.ndarray) -> np.ndarray:
    T = _FACE_TILE
    hair_face, hair_back = _hair_masks(shape, face.t_front)
    base = np.empty((T, T, 3), np.float32)
    base[:] = skin
    front = face.mask[..., None] * face.tile + (1 - face.mask[..., None]) * base
    front = hair_face[..., None] * hair + (1 - hair_face[..., None]) * front
    back = hair_back[..., None] * hair + (1 - hair_back[..., None]) * base
    # a little strand texture in the hair so it does not read as a flat decal
    stripes = 0.94 + 0.06 * np.sin(np.arange(T) * 0.9)[None, :, None]
    front = np.where(hair_face[..., None] > 0.5, front * stripes, front)
    back = np.where(hair_back[..., None] > 0.5, back * stripes, back)
    return _to_rgba8(np.concatenate([front, back], axis=1))


# --------------------------------------------------------------------------- prompt


_COLOR_WORDS = {
    "red": (190, 40, 45), "orange": (230, 120, 40), "yellow": (235, 200, 50), "green": (50, 140, 70),
    "blue": (46, 94, 170), "navy": (30, 40, 90), "teal": (30, 130, 130), "purple": (110, 60, 150),
    "pink": (230, 130, 170), "black": (25, 25, 28), "white": (235, 235, 235), "gray": (128, 128, 130),
    "grey": (128, 128, 130), "brown": (110, 70, 40), "beige": (215, 195, 160), "maroon": (110, 25, 35),
    "blonde": (225, 190, 110), "blond": (225, 190, 110),
}
_GARMENTS = {
    "shirt": "shirt", "t-shirt": "shirt", "tshirt": "shirt", "tee": "shirt", "top": "shirt", "hoodie": "shirt",
    "sweater": "shirt", "jacket": "shirt", "blouse": "shirt", "jersey": "shirt", "pants": "pants",
    "trousers": "pants", "jeans": "pants", "shorts": "pants", "skirt": "pants", "leggings": "pants",
    "shoes": "shoes", "shoe": "shoes", "sneakers": "shoes", "boots": "shoes", "hair": "hair",
}
_PROMPT_RE = re.compile(
    r"\b(" + "|".join(sorted(_COLOR_WORDS, key=len, reverse=True)) + r")\s+(?:[a-z]+\s+)?("
    + "|".join(sorted((re.escape(g) for g in _GARMENTS), key=len, reverse=True)) + r")\b"
)


def parse_clothing_prompt(text: str | None) -> dict[str, tuple[tuple[int, int, int], str]]:
    """Colour + garment phrases in ``text`` → {slot: (rgb, phrase)} for slots
    shirt / pants / shoes / hair.  The first phrase for a slot wins."""
    out: dict[str, tuple[tuple[int, int, int], str]] = {}
    if not text:
        return out
    for m in _PROMPT_RE.finditer(text.lower()):
        slot = _GARMENTS[m.group(2)]
        out.setdefault(slot, (_COLOR_WORDS[m.group(1)], m.group(0)))
    return out


# --------------------------------------------------------------------------- inputs


def _check_rgb(v, name: str) -> tuple[int, int, int]:
    if (not isinstance(v, (tuple, list, np.ndarray)) or len(v) != 3
            or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255 for c in v)):
        raise InvalidParams(f"{name} must be three integers 0..255")
    return tuple(int(c) for c in v)  # type: ignore[return-value]


def _decode_preview(data: bytes) -> np.ndarray:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidParams("preview_png must be bytes")
    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            if im.width * im.height > 4096 * 4096:
                raise InputRejected("The preview image is too large.", code="ImageTooLarge", status=413)
            if min(im.width, im.height) < 64:
                raise InputRejected("The preview image is too small (under 64 px).", code="ImageTooSmall")
            return np.asarray(im.convert("RGB"), np.uint8)
    except InputRejected:
        raise
    except Exception as e:
        raise InputRejected(f"The preview is not a readable image ({e}).", code="UnsupportedImageFormat", status=415) from None


def _check_landmarks(lm) -> np.ndarray | None:
    if lm is None:
        return None
    a = np.asarray(lm, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 468 or a.shape[1] != 3:
        raise InputRejected(f"landmarks must be (478, 3) face-mesh points, got {a.shape}", code="InvalidLandmarks")
    if not np.isfinite(a).all() or (np.abs(a[:, :2] - 0.5) > 1.0).any():
        raise InputRejected("landmarks must be finite with x, y normalised to the preview", code="InvalidLandmarks")
    return a


# --------------------------------------------------------------------------- main entry


def build_avatar(
    preview_png: bytes,
    *,
    landmarks: np.ndarray | None = None,
    skin_rgb: tuple[int, int, int] = (224, 172, 140),
    hair_rgb: tuple[int, int, int] = (60, 40, 30),
    text_prompt: str | None = None,
) -> Avatar:
    """Build the 15-part R15 avatar for a chosen preview (see module docstring).

    ``landmarks``: (478, 3) MediaPipe face-mesh points of the preview, x/y in 0..1
    of the image, z relative depth; when given they place the face on the head,
    size the nose and the hairline.  Raises :class:`InputRejected` for an
    unreadable preview or malformed landmarks, :class:`InvalidParams` for bad colours.
    """
    rgb_img = _decode_preview(preview_png)
    lm = _check_landmarks(landmarks)
    skin_t = _check_rgb(skin_rgb, "skin_rgb")
    hair_t = _check_rgb(hair_rgb, "hair_rgb")
    if text_prompt is not None and not isinstance(text_prompt, str):
        raise InvalidParams("text_prompt must be a string")

    prompt = parse_clothing_prompt(text_prompt)
    clothing = dict(DEFAULT_CLOTHING)
    for slot in ("shirt", "pants", "shoes"):
        if slot in prompt:
            clothing[slot] = prompt[slot][0]
    if "hair" in prompt:
        hair_t = prompt["hair"][0]
    colors = {"skin": _rgb01(skin_t), "hair": _rgb01(hair_t), **{k: _rgb01(v) for k, v in clothing.items()}}

    face = _face_from_preview(rgb_img, lm)
    layout = _layout()
    hs = layout["Head"]
    head_shape = _Shape(hs.center, (hs.half[0] * face.width_factor, hs.half[1], hs.half[2]), hs.ev, hs.eh,
                        hs.rings, hs.segs, hs.taper)
    layout["Head"] = head_shape

    bones_u = _bone_layout()
    bones = {k: np.asarray(v) * BODY_SCALE for k, v in bones_u.items()}
    parts: dict[str, EditableMesh] = {}
    images: dict[str, EditableImage] = {}
    head_info = None
    for part in PART_NAMES:
        shape = layout[part]
        if part == "Head":
            geo, head_info = _head_geo(shape, face.nose_uv, face.nose_height)
        else:
            geo = _body_part_geo(shape)
        pos = geo.positions * BODY_SCALE
        joints, weights = _skin(part, pos, bones)
        parts[part] = EditableMesh.from_arrays(pos, geo.triangles, normals=geo.normals, uvs=geo.uvs,
                                               joints=joints, weights=weights)
        if part == "Head":
            tex = _head_texture(face, shape, colors["skin"], colors["hair"])
        else:
            tex = _body_texture(part, shape, colors)
        images[part] = EditableImage.from_array(tex)

    assert head_info is not None
    eye_y = head_info.center_y + (0.5 - _CANON[0, 1] / _FACE_TILE) * 2 * head_info.half_y
    attachments = _attachments(bones_u, _accessory_layout(head_info.front_z + 0.02, eye_y))
    bone_list = [{"Name": n, "Parent": p, "Position": [round(float(c), 6) for c in bones[n]]} for n, p in BONE_HIERARCHY]

    skin01 = [round(float(c), 4) for c in colors["skin"]]
    description = {
        **{f"{bp}Color": list(skin01) for bp in BODY_PARTS},
        "HeightScale": 1.0, "WidthScale": 1.0, "DepthScale": 1.0, "HeadScale": 1.0,
        "BodyTypeScale": 0.0, "ProportionScale": 0.0,
        "AvatarPartScaleType": "ProportionsNormal",
        "BodyParts": [{"BodyPart": bp, "Color": list(skin01), "Instance": list(ps)} for bp, ps in BODY_PARTS.items()],
        "Accessories": [],
    }
    metadata = {
        "Generator": "procedural-r15",
        "GeneratorVersion": 1,
        "Units": "studs",
        "Space": "model",
        "UsedLandmarks": lm is not None,
        "ClothingColors": {k: [round(float(c), 4) for c in _rgb01(v)] for k, v in clothing.items()},
        "HairColor": [round(float(c), 4) for c in colors["hair"]],
        "PromptColorsApplied": sorted(ph for _, ph in prompt.values()),
    }
    return Avatar(description, parts, images, bone_list, attachments, metadata)


def _attachments(bones_u: dict[str, tuple], accessory: dict[str, dict[str, tuple]]) -> dict[str, dict[str, dict]]:
    """Rig attachments at the joints (in both parts) + accessory attachments, scaled."""
    out: dict[str, dict[str, dict]] = {p: {} for p in PART_NAMES}

    def put(part: str, name: str, pos, orient=(0, 0, 0)) -> None:
        out[part][name] = {"Position": [round(float(c) * BODY_SCALE, 6) for c in pos],
                           "Orientation": [float(a) for a in orient]}

    for joint, (p0, p1, att) in JOINTS.items():
        pos = bones_u[p1]
        if p0 in out:
            put(p0, att, pos)
        put(p1, att, pos)
    for part, atts in accessory.items():
        for name, (pos, orient) in atts.items():
            put(part, name, pos, orient)
    # RootRigAttachment sits at the model origin by definition
    out["LowerTorso"]["RootRigAttachment"] = {"Position": [0.0, 0.0, 0.0], "Orientation": [0.0, 0.0, 0.0]}
    return out
