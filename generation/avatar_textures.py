"""Avatar textures: 128×128 body-part textures (skin, shirt, pants, shoes) and the
1024×512 head texture of a landmark head (the preview crop the face UVs point into,
and the skull in skin tone with a hair cap)."""

from __future__ import annotations

import cv2
import numpy as np

from generation.body_geometry import spow
from generation.body_layout import Shape

__all__ = ["FACE_TILE", "rgb01", "body_texture", "head_texture_from_geo"]

_BODY_TEX = 128
FACE_TILE = 512


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
