"""Texture-space rasterisation: which triangle covers each texel, and where in it.

``rasterize_uv(uv, size)`` draws every triangle's UV footprint (OpenCV's polygon
fill, one call per triangle) with its index, then computes each covered texel's
barycentric coordinates in one vectorised pass, so a per-texel attribute of the
mesh (3D position, normal, region) is ``bary @ attribute[tris[tri_id]]``.
:func:`dilate_into` bleeds a texture past its UV islands so bilinear filtering and
mip-maps never pull in the empty background at island edges.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["rasterize_uv", "nearest_covered", "dilate_into"]


def rasterize_uv(uv: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``uv`` (m,3,2) corner UVs in 0..1 (v down, as images); ``size`` (w, h).

    Returns (tri_id (h,w) int32, −1 where no triangle; bary (h,w,3) float32)."""
    w, h = size
    px = np.asarray(uv, np.float64) * [w, h]
    ids = np.full((h, w), -1, np.int32)
    pts = np.round(px * 16).astype(np.int32)  # 4 fractional bits for fillPoly's shift
    for i in range(len(pts)):
        cv2.fillPoly(ids, [pts[i]], int(i), lineType=cv2.LINE_8, shift=4)
    yy, xx = np.nonzero(ids >= 0)
    t = ids[yy, xx]
    p = np.stack([xx + 0.5, yy + 0.5], axis=1).astype(np.float32)
    pxf = px.astype(np.float32)
    a, b, c = pxf[t, 0], pxf[t, 1], pxf[t, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bc = np.clip(np.stack([1 - l1 - l2, l1, l2], axis=1), 0, 1)
    bc /= np.maximum(bc.sum(1, keepdims=True), 1e-9)
    bary = np.zeros((h, w, 3), np.float32)
    bary[yy, xx] = bc
    return ids, bary


def nearest_covered(covered: np.ndarray) -> np.ndarray:
    """(h,w) flat index of the nearest covered texel for every texel (one OpenCV
    distance transform with pixel labels); reuse it for every image on that coverage."""
    _, labels = cv2.distanceTransformWithLabels((~covered).astype(np.uint8), cv2.DIST_L2, 3,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    flat = np.flatnonzero(covered.reshape(-1))   # labels number the covered texels in scan order
    return flat[labels - 1]


def dilate_into(img: np.ndarray, covered: np.ndarray, nearest: np.ndarray | None = None) -> np.ndarray:
    """``img`` (h,w,c) with every texel outside ``covered`` set to the nearest covered
    texel's value; ``nearest`` is :func:`nearest_covered` of ``covered`` when at hand."""
    src = img.astype(np.float32)
    if covered.all() or not covered.any():
        return src
    if nearest is None:
        nearest = nearest_covered(covered)
    out = src.reshape(-1, src.shape[-1])[nearest.reshape(-1)].reshape(src.shape)
    out[covered] = src[covered]
    return out
