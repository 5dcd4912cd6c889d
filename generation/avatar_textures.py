"""Avatar textures: 128×128 body-part textures (skin, shirt, pants, shoes), the
1024×512 head texture (face tile + back tile), soft hair masks, and the face warp
that maps the preview into the face tile with a similarity transform placing the
eyes and mouth (from the landmarks, or the aligned-preview defaults) on the head's."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from generation.body_geometry import spow
from generation.body_layout import Shape
from schemas.errors import InputRejected

__all__ = ["FACE_TILE", "CANON", "Face", "rgb01", "body_texture", "face_from_preview", "head_texture",
           "head_texture_from_geo"]

_BODY_TEX = 128
FACE_TILE = 512

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
CANON = np.array([[159.0, 218.0], [353.0, 218.0], [256.0, 388.0]])
# Where those features sit in an aligned preview when no landmarks are given
# (fractions of width / height of the square preview from the 2D pipeline).
_DEFAULT_PREVIEW_FEATURES = np.array([[0.40, 0.42], [0.60, 0.42], [0.50, 0.62]])


def rgb01(c) -> np.ndarray:
    return np.asarray(c, np.float32) / 255.0


def _row_heights(shape: Shape, h: int) -> np.ndarray:
    """Normalised height (−1 bottom .. 1 top) of each texture row of a lathe part."""
    v = (np.arange(h) + 0.5) / h
    return spow(np.cos(np.pi * v), shape.ev)


def _col_angles(w: int) -> np.ndarray:
    """Azimuth φ of each texture column (0 = front)."""
    return (np.arange(w) + 0.5) / w * 2 * np.pi - np.pi


def _shade(tex: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Soft top-lit shading so flat colours read as cloth/skin."""
    return tex * (0.9 + 0.1 * (yn[:, None, None] + 1) / 2)


def body_texture(part: str, shape: Shape, colors: dict[str, np.ndarray]) -> np.ndarray:
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


def _hair_masks(shape: Shape, t_front: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft hair masks (0..1) for the face tile (512×512) and the back tile (512×512).

    The hairline is a height (normalised to the head half-height): ``t_front`` at
    the forehead, 0.25 at the temples, −0.45 at the nape; both tiles agree at the seam."""
    T = FACE_TILE
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
    tyb = spow(np.cos(th), shape.ev)[:, None]
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
class Face:
    tile: np.ndarray          # (512,512,3) float32 0..1, warped preview
    mask: np.ndarray          # (512,512) float32 feathered face region
    nose_uv: tuple[float, float]
    nose_height: float        # studs, unscaled
    t_front: float            # forehead hairline (normalised head height)
    width_factor: float       # head width multiplier from the face aspect


def face_from_preview(rgb: np.ndarray, landmarks: np.ndarray | None) -> Face:
    h, w = rgb.shape[:2]
    T = FACE_TILE
    if landmarks is not None:
        px = landmarks[:, :2].astype(np.float64) * (w, h)
        feats = np.array([px[list(_RIGHT_EYE)].mean(0), px[list(_LEFT_EYE)].mean(0), px[list(_MOUTH)].mean(0)])
    else:
        feats = _DEFAULT_PREVIEW_FEATURES * (w, h)
    if np.linalg.norm(feats[1] - feats[0]) < 4:
        raise InputRejected("The face in the preview is too small to texture the head.", code="InvalidLandmarks")
    M = _similarity(feats, CANON)
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
    return Face(tile.astype(np.float32) / 255.0, mask_f, nose_uv, nose_height, t_front, width_factor)


def head_texture(face: Face, shape: Shape, skin: np.ndarray, hair: np.ndarray) -> np.ndarray:
    T = FACE_TILE
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


# --------------------------------------------------------------------------- landmark head (generation.head)


def head_texture_from_geo(rgb: np.ndarray, head, skin: np.ndarray, hair: np.ndarray) -> np.ndarray:
    """1024×512 RGBA texture of a :class:`generation.head.HeadGeo`.

    Left 512² tile: the square crop of the preview around the face that the face
    vertices' UVs point into (outside the face oval: skin).  Right 512² tile: the
    skull in the head's azimuthal projection around the back pole, skin with a hair
    cap in ``hair`` (hairline just above the forehead at the front, above the ears at
    the sides, at the nape behind)."""
    T = FACE_TILE
    h, w = rgb.shape[:2]
    x0, y0, side = head.crop
    # preview pixel → texture pixel of the left tile (u·1024, v·512 minus the half-pixel)
    sx = 0.496 * 2 * T / (side * w)
    sy = 0.996 * T / (side * h)
    M = np.array([[sx, 0.0, 0.002 * 2 * T - sx * x0 * w - 0.5 + 0.5 * sx],
                  [0.0, sy, 0.002 * T - sy * y0 * h - 0.5 + 0.5 * sy]])
    tile = cv2.warpAffine(rgb, M, (T, T), flags=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32) / 255.0
    oval_uv = head.uvs[head.face_rows[head.info["oval_rows"]]] * (2 * T, T)
    mask = np.zeros((T, T), np.uint8)
    cv2.fillPoly(mask, [np.round(oval_uv).astype(np.int32)], 255)
    mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
    m = cv2.GaussianBlur(mask, (0, 0), 3).astype(np.float32)[..., None] / 255.0
    front = m * tile + (1 - m) * skin

    # back tile: texel → skull direction → hair mask
    c = (np.arange(T) + 0.5) / T
    u = 0.5 + c * 0.5
    X = (u - 0.75) / 0.246
    Y = (0.5 - c) / 0.496
    Xg, Yg = np.meshgrid(X, Y)
    rho = np.hypot(Xg, Yg) * head.info["rho_max"]
    al = np.arctan2(Yg, Xg)
    dx, dy, dz = np.sin(rho) * np.cos(al), np.sin(rho) * np.sin(al), np.cos(rho)
    phi = np.abs(np.arctan2(dx, -dz))                      # 0 = front, π = back
    thr = np.interp(phi, [0.0, 0.6, 1.57, 2.4, np.pi], [0.40, 0.40, 0.12, -0.30, -0.30])
    hm = _smoothstep((dy - thr) / 0.08 + 0.5)[..., None]
    stripes = 0.94 + 0.06 * np.sin(np.arange(T) * 0.9)[None, :, None]
    back = hm * hair * np.where(hm > 0.5, stripes, 1.0) + (1 - hm) * skin
    return _to_rgba8(np.concatenate([front, back], axis=1))
