"""Align: level the eyes, centre the face, square head-and-shoulders crop (SPEC §5).

A similarity transform (rotation + uniform scale + translation) maps the
input photo to an ``size × size`` frame where:

* the line through the two eye centres (mean of each eye's corner landmarks)
  is horizontal, at ``EYE_LINE_Y × size`` from the top;
* the face (centre of the landmark bounding box, measured after levelling) is
  horizontally centred;
* the 3D distance between the eye centres (x, y and mediapipe's z, which
  shrinks less than the 2D distance when the head turns) is
  ``EYE_DISTANCE × size`` — about a head-and-shoulders framing: the top of the
  head near 0.15 × size, the chin near 0.75 × size, shoulders below.

Outside the photo the border pixels are replicated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Aligned", "align_face", "eye_centres", "warp_similarity", "EYE_DISTANCE", "EYE_LINE_Y"]

EYE_DISTANCE = 0.16
EYE_LINE_Y = 0.44

# Corner landmarks of each eye (face mesh indices).  Image-left eye = subject's right.
_IMAGE_LEFT_EYE = (33, 133)
_IMAGE_RIGHT_EYE = (362, 263)


@dataclass(frozen=True, eq=False)
class Aligned:
    """A face-aligned square crop.

    image: (size, size, 3) uint8 RGB.
    landmarks: (478, 3) float32 in pixels of ``image``; z multiplied by the same scale.
    matrix: (2, 3) float64 affine mapping input pixel coordinates to ``image``'s.
    scale: the transform's uniform scale (output px per input px).
    roll_deg: the eyes' tilt in the input, degrees (positive = clockwise in image coords); removed here.
    """

    image: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    scale: float
    roll_deg: float


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye, image-right eye) centres, each (3,) float64, from (478, 3) landmarks."""
    lm = landmarks.astype(np.float64)
    return lm[list(_IMAGE_LEFT_EYE)].mean(axis=0), lm[list(_IMAGE_RIGHT_EYE)].mean(axis=0)


def warp_similarity(
    src: np.ndarray, m: np.ndarray, size: tuple[int, int], border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """``cv2.warpAffine(src, m, size)`` for a similarity ``m``, antialiased when shrinking.

    ``size`` is (width, height).  warpAffine samples bilinearly/bicubically
    with no area filter, which aliases when the scale is below ~0.7; in that
    case only the needed region of ``src`` is cut out, area-resized by the
    scale, and the residual near-identity warp is applied to that.
    """
    s = float(math.hypot(m[0, 0], m[1, 0]))
    if s >= 0.7:
        interp = cv2.INTER_CUBIC if s > 1.05 else cv2.INTER_LINEAR
        return cv2.warpAffine(src, m, size, flags=interp, borderMode=border)
    h, w = src.shape[:2]
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size[0], 0, 1], [0, size[1], 1], [size[0], size[1], 1]], np.float64)
    pts = corners @ inv.T
    x0 = int(np.clip(np.floor(pts[:, 0].min()) - 2, 0, w - 1))
    y0 = int(np.clip(np.floor(pts[:, 1].min()) - 2, 0, h - 1))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()) + 2, x0 + 1, w))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()) + 2, y0 + 1, h))
    sub = src[y0:y1, x0:x1]
    nw, nh = max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))
    small = cv2.resize(sub, (nw, nh), interpolation=cv2.INTER_AREA)
    fx, fy = nw / (x1 - x0), nh / (y1 - y0)
    # input point p = (x0 + u / fx, y0 + v / fy) for a pixel (u, v) of `small`
    pre = np.array([[1 / fx, 0, x0], [0, 1 / fy, y0], [0, 0, 1]], np.float64)
    m2 = np.vstack([m, [0, 0, 1]]) @ pre
    return cv2.warpAffine(small, m2[:2], size, flags=cv2.INTER_LINEAR, borderMode=border)


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = 512) -> Aligned:
    """Warp a (H, W, 3) uint8 RGB photo so that its face (landmarks (478, 3), input pixels) is aligned."""
    left, right = eye_centres(landmarks)
    d = right[:2] - left[:2]
    angle = math.atan2(d[1], d[0])  # tilt of the eye line, radians, image coords (y down)
    eye_dist = float(np.linalg.norm(right - left))
    if not eye_dist > 1e-6:
        eye_dist = float(np.linalg.norm(d)) or 1.0
    s = EYE_DISTANCE * size / eye_dist
    c, sn = math.cos(angle), math.sin(angle)
    rot = np.array([[c, sn], [-sn, c]], np.float64) * s  # rotate by -angle, then scale
    # Where the landmarks land after rotation+scale (before translation): centre horizontally on the face box.
    rotated = landmarks[:, :2].astype(np.float64) @ rot.T
    face_cx = (rotated[:, 0].min() + rotated[:, 0].max()) / 2
    eye_mid_y = (((left[:2] + right[:2]) / 2) @ rot.T)[1]
    t = np.array([size / 2 - face_cx, EYE_LINE_Y * size - eye_mid_y])
    m = np.hstack([rot, t[:, None]])
    image = warp_similarity(rgb, m, (size, size))
    out = np.empty((landmarks.shape[0], 3), np.float32)
    out[:, :2] = rotated + t
    out[:, 2] = landmarks[:, 2] * s
    return Aligned(image=image, landmarks=out, matrix=m, scale=s, roll_deg=math.degrees(angle))
