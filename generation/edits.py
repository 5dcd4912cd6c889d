"""TextPrompt edits on the aligned photo, before StyleApply (procedural backend).

Everything is placed from the 478 face-mesh landmarks in the aligned frame
and the person mask; ``eye_d`` below is the distance between the eye centres
(0.16 × frame side after :mod:`generation.align`).

* **Hair colour** — region: person mask > 0.5, outside the face oval (mesh
  silhouette, dilated by 0.08 eye_d), above ``chin + 0.3 eye_d``, and not
  skin-coloured (CIELAB distance to the sampled skin > 20).  Recoloured in Lab:
  a, b set to the target's, L moved to the target's lightness keeping 70 % of
  the local variation (strands and shading stay), through a feathered mask.
* **Clothing colour** — region: person mask > 0.5 below ``chin + 0.35 eye_d``,
  not skin-coloured, not hair; same recolouring.
* **Glasses** — two elliptical rims (0.30 × 0.22 eye_d radii) round the eye
  centres, a bridge and temples to the face edge, anti-aliased; dark lenses
  (sunglasses) at 85 % opacity, clear lenses a 10 % sheen.
* **Hat** — a beanie: a half-ellipse crown over the top of the head and a
  brim band across the forehead, shaded top to bottom.
* **Smile** — honest and small: the mouth corners are lifted by 6 % of the
  mouth width with a local Gaussian warp (``cv2.remap``); it is not a
  generated smile.

Drawn accessories are returned as an extra alpha so that the background
stage keeps them where they stick out of the person mask (a hat's crown).
"""

from __future__ import annotations

import cv2
import numpy as np

from .align import eye_centres
from .prompt import PromptSpec

__all__ = ["apply_edits", "FACE_OVAL"]

RGB = tuple[int, int, int]
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def _lab(rgb: RGB) -> np.ndarray:
    return cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2Lab)[0, 0].astype(np.float32)


def _recolour(image: np.ndarray, region: np.ndarray, target: RGB, feather: float) -> np.ndarray:
    """Recolour the pixels of ``region`` (bool mask) towards ``target`` in Lab, feathered."""
    if region.sum() < 50:
        return image
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)
    t = _lab(target)
    L = lab[:, :, 0]
    mean_l = float(L[region].mean())
    new = np.empty_like(lab)
    new[:, :, 0] = np.clip(t[0] + 0.7 * (L - mean_l), 0, 255)
    new[:, :, 1] = t[1]
    new[:, :, 2] = t[2]
    alpha = cv2.GaussianBlur(region.astype(np.float32), (0, 0), feather)[:, :, None]
    out = lab * (1 - alpha) + new * alpha
    return cv2.cvtColor(np.clip(out + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_Lab2RGB)


def _regions(image, landmarks, mask, skin_rgb, eye_d):
    h, w = image.shape[:2]
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(landmarks[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    r = max(1, int(0.08 * eye_d))
    oval = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)
    not_skin = np.linalg.norm(lab - _lab(skin_rgb), axis=2) > 20.0
    person = mask > 0.5
    chin_y = float(landmarks[152, 1])
    rows = np.arange(h, dtype=np.float32)[:, None]
    hair = person & ~oval & not_skin & (rows < chin_y + 0.3 * eye_d)
    clothing = person & not_skin & ~hair & ~oval & (rows > chin_y + 0.35 * eye_d)
    return hair, clothing


def _glasses(canvas, alpha, landmarks, eye_d, colour: RGB, dark: bool):
    left, right = eye_centres(landmarks)
    rx, ry = 0.30 * eye_d, 0.22 * eye_d
    th = max(2, int(round(0.04 * eye_d)))
    col = tuple(int(c) for c in colour)
    lens = np.zeros(alpha.shape, np.float32)
    for c in (left, right):
        cv2.ellipse(lens, (int(c[0]), int(c[1])), (int(rx), int(ry)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    tint = (np.array([18, 18, 22], np.float32) if dark else np.array([255, 255, 255], np.float32))
    a = lens * (0.85 if dark else 0.10)
    canvas[:] = canvas * (1 - a[:, :, None]) + tint * a[:, :, None]
    rims = np.zeros(alpha.shape, np.float32)
    for c in (left, right):
        cv2.ellipse(rims, (int(c[0]), int(c[1])), (int(rx), int(ry)), 0, 0, 360, 1.0, th, cv2.LINE_AA)
    y_b = int((left[1] + right[1]) / 2 - 0.05 * eye_d)
    cv2.line(rims, (int(left[0] + rx), y_b), (int(right[0] - rx), y_b), 1.0, th, cv2.LINE_AA)
    for c, edge, sign in ((left, landmarks[234], -1), (right, landmarks[454], 1)):
        cv2.line(rims, (int(c[0] + sign * rx), int(c[1] - 0.05 * eye_d)), (int(edge[0]), int(c[1] - 0.1 * eye_d)),
                 1.0, th, cv2.LINE_AA)
    canvas[:] = canvas * (1 - rims[:, :, None]) + np.array(col, np.float32) * rims[:, :, None]
    np.maximum(alpha, np.maximum(rims, a), out=alpha)


def _hat(canvas, alpha, landmarks, eye_d, colour: RGB):
    h, w = alpha.shape
    top = landmarks[10, :2]
    fw = float(np.linalg.norm(landmarks[454, :2] - landmarks[234, :2]))
    cx, brim_y = float(top[0]), float(top[1]) - 0.1 * eye_d
    shape = np.zeros((h, w), np.float32)
    cv2.ellipse(shape, (int(cx), int(brim_y)), (int(0.6 * fw), int(1.15 * eye_d)), 0, 180, 360, 1.0, -1, cv2.LINE_AA)
    brim = np.zeros((h, w), np.float32)
    bw, bh = 0.64 * fw, 0.32 * eye_d
    cv2.rectangle(brim, (int(cx - bw), int(brim_y - bh)), (int(cx + bw), int(brim_y + 0.12 * eye_d)), 1.0, -1,
                  cv2.LINE_AA)
    rows = np.arange(h, dtype=np.float32)[:, None]
    t = np.clip((rows - (brim_y - 1.15 * eye_d)) / (1.3 * eye_d), 0, 1)
    shade = (1.15 - 0.35 * t)[:, :, None]  # lighter crown, darker towards the brim
    col = np.array(colour, np.float32)
    crown = np.clip(col * shade, 0, 255)
    canvas[:] = canvas * (1 - shape[:, :, None]) + crown * shape[:, :, None]
    band = np.clip(col * 0.8, 0, 255)
    canvas[:] = canvas * (1 - brim[:, :, None]) + band * brim[:, :, None]
    # ribbing lines on the brim
    for i in range(1, 12):
        x = int(cx - bw + i * 2 * bw / 12)
        cv2.line(canvas, (x, int(brim_y - bh)), (x, int(brim_y + 0.1 * eye_d)), (band * 0.8).tolist(),
                 max(1, int(0.02 * eye_d)), cv2.LINE_AA)
    np.maximum(alpha, np.maximum(shape, brim), out=alpha)


def _smile(image, landmarks):
    l, r = landmarks[61, :2], landmarks[291, :2]
    mw = float(np.linalg.norm(r - l))
    if mw < 4:
        return image
    sigma, lift = 0.22 * mw, 0.06 * mw
    h, w = image.shape[:2]
    x0, y0 = int(max(0, min(l[0], r[0]) - 3 * sigma)), int(max(0, min(l[1], r[1]) - 3 * sigma))
    x1, y1 = int(min(w, max(l[0], r[0]) + 3 * sigma)), int(min(h, max(l[1], r[1]) + 3 * sigma))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dy = np.zeros_like(xx)
    for c in (l, r):
        dy += lift * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * sigma * sigma))
    out = image.copy()
    out[y0:y1, x0:x1] = cv2.remap(image, xx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def apply_edits(
    image: np.ndarray, landmarks: np.ndarray, mask: np.ndarray, spec: PromptSpec, skin_rgb: RGB
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply a prompt's edits to an aligned (N, N, 3) uint8 RGB photo.

    landmarks: (478, 3) pixels of ``image``; mask: (N, N) float32 person probability.
    Returns ``(edited uint8 RGB, accessory alpha (N, N) float32 0..1 or None)``.
    """
    if not spec.any_edit:
        return image, None
    left, right = eye_centres(landmarks)
    eye_d = float(np.linalg.norm(right[:2] - left[:2]))
    out = image
    if spec.hair or spec.clothing:
        hair, clothing = _regions(image, landmarks, mask, skin_rgb, eye_d)
        feather = max(1.0, 0.03 * eye_d)
        if spec.hair:
            out = _recolour(out, hair, spec.hair, feather)
        if spec.clothing:
            out = _recolour(out, clothing, spec.clothing, feather)
    if spec.smile:
        out = _smile(out, landmarks)
    extra = None
    if spec.glasses or spec.hat:
        canvas = out.astype(np.float32)
        extra = np.zeros(image.shape[:2], np.float32)
        if spec.hat:
            _hat(canvas, extra, landmarks, eye_d, spec.hat)
        if spec.glasses:
            _glasses(canvas, extra, landmarks, eye_d, *spec.glasses)
        out = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return out, extra
