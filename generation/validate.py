"""Validate: is the detected face usable for an avatar?  (SPEC §5)

Runs after :func:`generation.face.detect_face`, on the input photo and the
dominant face's 478 landmarks.  Checks, in this order (the first failing one
raises; all raise a :class:`~generation.errors.PhotoError`, status 422, never
charged):

1. **Multiple faces** — the others are compared with the dominant face by box
   area.  Any other face with ``area ≥ MULTI_FACE_AREA_RATIO (0.5) × dominant``
   is *comparable* → :class:`MultipleFaces`.  Smaller ones (a face in the
   background, a picture on a T-shirt) give a warning only.  Measured: the
   astronaut beside its mirror image: ratio 0.84 → refused; with a half-size
   copy inset: 0.25 → warning.

2. **Coverage** ``≥ MIN_COVERAGE (0.15)`` else :class:`FaceTooSmall`.  The
   measure is the face's *linear share* of the frame::

       coverage = min(1, √(w · h / (long · max(short, long / MAX_FRAME_ASPECT))))

   with ``w × h`` mediapipe's (full-range) face box — brows to chin, cheek to
   cheek, without hair, ears or neck — and ``long``, ``short`` the photo's
   sides: the face box's side against the side of a square of the frame's
   area, so "15 % of the frame" reads the way framing is described (a face
   filling a third of the picture), whatever the photo's shape.  The tight
   box's *area* share would be no measure of framing (4.1 % on skimage's
   astronaut, a head-and-upper-body portrait), and comparing the face with the
   photo's *shorter* side only (the previous rule) let a full-length figure
   through whenever the photo was cropped narrow: a tall 210 × 520 crop of one
   standing man from ultralytics' ``bus.jpg`` scored 0.26 on it and passed.
   ``MAX_FRAME_ASPECT = 16 / 9``: a frame narrower than 9:16 (the tallest
   common camera format) counts as 9:16, so cropping tightly round a standing
   figure does not raise its share (the 170 × 590 crop of the man beside him:
   plain share 0.153, counted as 9:16 0.109).

   Measured ``coverage`` (old shorter-side measure in brackets):
   head-and-shoulders portraits pass — the astronaut 0.20 (0.26), Grace
   Hopper 0.36 (0.96), the Ancelotti crop 0.37 (0.90), the astronaut padded to
   a 3:4 phone frame 0.18 (0.27), a close selfie crop 0.44 (1.0), ultralytics'
   ``zidane.jpg`` (16:9, the nearer man's head and upper body) 0.16 (0.28);
   distant and full-length figures fail — ``bus.jpg`` whole (810 × 1080)
   0.067 (0.04), one man cropped full-length 210 × 520 0.11 (0.26) and
   300 × 660 0.10 (0.18), the astronaut at half size on a 768² canvas 0.061
   (0.023), at 1.5× on a 1080 × 1920 canvas 0.106 (0.125), at 1.7× on a
   1920 × 1080 canvas 0.120 (0.159: passed before).  Group photos: a 2 × 2
   tile of astronauts 0.098 per face (and :class:`MultipleFaces` first).

3. **Pose** — yaw ``> MAX_YAW_DEG (45°)`` → :class:`FacePoseTooExtreme`.  Yaw
   comes from the 3D landmarks: the face's left–right axis is the sum of the
   3D difference vectors of 30 mirror-symmetric landmark pairs (eye corners,
   brows, cheeks, mouth corners, jaw), and ``yaw = atan2(−z, √(x² + y²))`` of
   that axis (mediapipe's z is in the pixel scale of x).  Measured: astronaut
   0.9°; skimage's cameraman (a near-profile, nose outside the cheek line)
   −47° on the whole photo, −50° on a crop.

4. **Features visible** — an eye or the mouth covered →
   :class:`FaceFeaturesNotVisible`, unless the face is too dark (mean grey of
   the landmark box on the aligned crop under ``TOO_DARK_MEAN`` = 50, the
   measure ``input_quality_score`` uses) → :class:`~generation.errors.TooDark`
   (see :mod:`generation.face`; sideways and upside-down photos were already
   refused there as :class:`~generation.errors.PhotoRotated`).  The legacy mesh always places every
   landmark (it hallucinates a mouth under a mask), so the signal is the
   image inside each feature's landmark polygon (each eye's contour, the outer
   lip line) on a 256² aligned crop: the spread of CIELAB lightness
   (90th − 10th percentile, 0..255 units) after a σ = 1 px Gaussian.  A real
   eye holds sclera, iris and lashes, a real mouth the lips' dark parting
   line; an occluder is flat.  Measured spread (eye, eye, mouth): astronaut
   133/133/95; blurred σ = 4 px 23/31/34; darkened to 35 % 55/54/39; opaque
   rectangles of any colour over the mouth or the eyes 0 (JPEG q30: ≤ 1).
   Limit: ``MIN_FEATURE_SPREAD = 10``.  A textured occluder (a patterned mask,
   fingers) is not caught by this measure.  The nose is checked only through
   the mesh's placement (masks that cover the nose cover the mouth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .align import align_face
from .errors import FaceFeaturesNotVisible, FacePoseTooExtreme, FaceTooSmall, MultipleFaces, PhotoRotated, TooDark
from .face import TOO_DARK_MEAN, Box, Face

__all__ = [
    "Validation",
    "validate_face",
    "face_coverage",
    "estimate_yaw",
    "feature_spread",
    "features_visible",
    "face_brightness",
    "TooDark",
    "PhotoRotated",
    "MIN_COVERAGE",
    "MAX_FRAME_ASPECT",
    "MAX_YAW_DEG",
    "MULTI_FACE_AREA_RATIO",
    "MIN_FEATURE_SPREAD",
]

MIN_COVERAGE = 0.15
MAX_FRAME_ASPECT = 16 / 9
MAX_YAW_DEG = 45.0
MULTI_FACE_AREA_RATIO = 0.5
MIN_FEATURE_SPREAD = 10.0
_CHECK_SIZE = 256  # aligned crop side for the feature check

#: Mirror-symmetric face-mesh landmark pairs (image-left index, image-right index).
SYMMETRIC_PAIRS = (
    (33, 263), (133, 362), (61, 291), (234, 454), (70, 300), (105, 334), (50, 280), (205, 425),
    (127, 356), (58, 288), (172, 397), (150, 379), (93, 323), (132, 361), (136, 365), (149, 378),
    (176, 400), (148, 377), (21, 251), (54, 284), (103, 332), (67, 297), (109, 338), (162, 389),
    (107, 336), (46, 276), (101, 330), (187, 411), (123, 352), (116, 345),
)
#: Feature polygons (face-mesh contour indices, in order around the feature).
FEATURE_POLYGONS = {
    "right_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    "left_eye": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    "mouth": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185),
}


@dataclass
class Validation:
    """What Validate measured (all refusals raise instead)."""

    face_count: int
    coverage: float  # see the module docstring, 0..1
    yaw_deg: float  # signed, degrees
    feature_spread: dict[str, float]  # per feature, 0..255 lightness spread
    warnings: list[str] = field(default_factory=list)


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def face_coverage(box: Box, shape: tuple[int, ...]) -> float:
    """Linear share 0..1 of a face box ``(x0, y0, x1, y1)`` in an image of ``shape`` (H, W, ...).

    ``√(box area / frame area)``, a frame narrower than 9:16 counted as 9:16
    (see the module docstring).
    """
    area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
    long, short = max(shape[0], shape[1]), min(shape[0], shape[1])
    return float(min(1.0, math.sqrt(area / (long * max(short, long / MAX_FRAME_ASPECT)))))


def estimate_yaw(landmarks: np.ndarray) -> float:
    """Signed head yaw in degrees from (478, 3) landmarks (x, y, z in one pixel scale); 0 = facing the camera."""
    lm = landmarks.astype(np.float64)
    left = lm[[p[0] for p in SYMMETRIC_PAIRS]]
    right = lm[[p[1] for p in SYMMETRIC_PAIRS]]
    axis = (right - left).sum(axis=0)
    return math.degrees(math.atan2(-axis[2], math.hypot(axis[0], axis[1])))


def feature_spread(image: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Lightness spread (p90 − p10, 0..255) inside each feature polygon of an aligned crop.

    image: (N, N, 3) uint8 RGB, face-aligned; landmarks: (478, 3) pixels of it.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)[:, :, 0]
    grey = cv2.GaussianBlur(grey, (0, 0), 1.0 * image.shape[0] / _CHECK_SIZE)
    out = {}
    for name, idx in FEATURE_POLYGONS.items():
        poly = np.round(landmarks[list(idx), :2]).astype(np.int32)
        m = np.zeros(grey.shape, np.uint8)
        cv2.fillPoly(m, [poly], 1)
        v = grey[m > 0]
        if v.size < 4:  # degenerate polygon: a closed eye is a thin slit; widen to its box
            x0, y0 = poly.min(axis=0)
            x1, y1 = poly.max(axis=0)
            v = grey[max(0, y0 - 1):y1 + 2, max(0, x0):x1 + 1].ravel()
        out[name] = float(np.percentile(v, 90) - np.percentile(v, 10)) if v.size else 0.0
    return out


def face_brightness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean grey (0..255) of the landmarks' bounding box in an aligned (N, N, 3) uint8 RGB crop."""
    h, w = image.shape[:2]
    x0, y0 = np.floor(landmarks[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(landmarks[:, :2].max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    face = image[y0:y1, x0:x1] if x1 - x0 >= 8 and y1 - y0 >= 8 else image
    return float(cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2GRAY).mean())


def features_visible(rgb: np.ndarray, landmarks: np.ndarray) -> bool:
    """Do both eyes and the mouth of the (478, 3) landmarks pass the visibility check in this photo?"""
    small = align_face(rgb, landmarks, _CHECK_SIZE)
    return min(feature_spread(small.image, small.landmarks).values()) >= MIN_FEATURE_SPREAD


_FEATURE_WORDS = {"right_eye": "eyes", "left_eye": "eyes", "mouth": "mouth"}


def validate_face(rgb: np.ndarray, face: Face) -> Validation:
    """Check the dominant ``face`` of the (H, W, 3) uint8 RGB photo; raise the first refusal.

    Returns the measurements and the warnings (smaller extra faces).
    """
    warnings: list[str] = []
    dets = face.detections or ((face.score, face.bbox),)
    dom_area = max(_area(face.bbox), 1e-6)
    others = [_area(b) / dom_area for _, b in dets[1:]]
    comparable = [r for r in others if r >= MULTI_FACE_AREA_RATIO]
    if comparable:
        raise MultipleFaces(
            f"We found {len(dets)} faces of similar size in this photo. Please use a photo with only you in it."
        )
    if others:
        warnings.append(f"We found {len(dets)} faces and used the largest, most central one.")

    coverage = face_coverage(face.bbox, rgb.shape)
    if coverage < MIN_COVERAGE:
        raise FaceTooSmall()

    yaw = estimate_yaw(face.landmarks)
    if abs(yaw) > MAX_YAW_DEG:
        raise FacePoseTooExtreme(
            f"Your head is turned too far to the side (about {abs(yaw):.0f}°). "
            "Please look towards the camera and try again."
        )
    if abs(yaw) > 30.0:
        warnings.append("Your head is turned to the side; a photo facing the camera gives a better likeness.")

    small = align_face(rgb, face.landmarks, _CHECK_SIZE)
    spread = feature_spread(small.image, small.landmarks)
    hidden = sorted({_FEATURE_WORDS[k] for k, v in spread.items() if v < MIN_FEATURE_SPREAD})
    if hidden:
        if face_brightness(small.image, small.landmarks) < TOO_DARK_MEAN:
            raise TooDark()  # the real reason they cannot be seen
        what = " and ".join(hidden)
        raise FaceFeaturesNotVisible(
            f"Your {what} seem{'s' if hidden == ['mouth'] else ''} to be covered. Please use a photo where "
            "your eyes, nose and mouth are clearly visible."
        )
    return Validation(face_count=len(dets), coverage=round(coverage, 4), yaw_deg=round(yaw, 1),
                      feature_spread={k: round(v, 1) for k, v in spread.items()}, warnings=warnings)
