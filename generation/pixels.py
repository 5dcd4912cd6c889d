"""Pixel statistics over face regions, shared by the 2D pipeline and the avatar builder.

* :data:`SKIN_POINTS`: FaceMesh landmarks on the cheeks and forehead, where skin is
  measured;
* :func:`disc_pixels`: the pixels within a radius of some points;
* :func:`robust_median`: a colour that ignores highlights and shadows.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SKIN_POINTS", "disc_pixels", "robust_median"]

#: Cheek and forehead landmarks (mediapipe FaceMesh indices) where skin is sampled.
SKIN_POINTS = (50, 101, 205, 280, 330, 425, 151, 108, 337)


def disc_pixels(image: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """(K, C) pixels of image within ``radius`` of any of ``points`` ((P, 2) pixel coords)."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for x, y in points:
        cv2.circle(mask, (int(round(x)), int(round(y))), radius, 255, -1)
    return image[mask > 0]


def robust_median(pixels: np.ndarray, band: tuple[float, float] = (15, 85)) -> tuple[int, int, int]:
    """Per-channel median of the (K, 3) RGB pixels whose luminance lies within the
    ``band`` percentiles (all of them when none does)."""
    lum = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lo, hi = np.percentile(lum, band)
    keep = pixels[(lum >= lo) & (lum <= hi)]
    if len(keep) == 0:
        keep = pixels
    return tuple(int(v) for v in np.median(keep, axis=0))
