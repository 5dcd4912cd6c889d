"""QA, the "sentinel": does the output still look like the player?  (SPEC §5)

For each try (intensity 1.0, then lower; at most ``MAX_RETRIES`` = 2 retries):

1. **Face re-detected** — mediapipe's detector runs on a ≤ 256-px copy of the
   output (no tiling); no face → the try fails (``face_found`` False).
2. **Likeness** — identity embeddings (:mod:`generation.likeness`, dlib's
   128-d ResNet) of the aligned input and of the output, both embedded with
   the same face box (the landmark box of the aligned frame: input and output
   share their pixel geometry, so no second detector is needed), mapped to
   ``likeness_score`` 0..1 by :func:`generation.likeness.likeness_score`.
   The input is embedded once per preview, the output once per try
   (≈ 70–80 ms each on this machine).
3. **Threshold** — ``likeness_threshold`` if given, else 0.75 for the
   photoreal styles (corporate_headshot, editorial_portrait) and 0.60 for the
   stylised ones (game_avatar, anime_character).

The input embedding is cached per worker process (LRU of
``REFERENCE_CACHE`` = 32 entries keyed by the SHA-256 of the upload and the
frame size): a player usually previews one selfie several times (styles,
prompts), and only the first preview of a photo pays for it.

The schedule of intensities is ``INTENSITY_SCHEDULE`` (× the requested
intensity): 1.0, 0.6, 0.3.  The first try that passes is returned; when none
does, the best-scoring one is returned with a warning.  When the input face
cannot be embedded (dlib finds no landmarks in the box), ``likeness_score``
is None and the first output with a face is kept, with a warning.

:mod:`generation.likeness` is imported at module import time: it is a real
dependency of the pipeline, and a missing one must fail loudly.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from . import likeness  # noqa: F401 - a hard dependency (see the module docstring)
from .face import detect_faces
from .stylize import PHOTOREAL_STYLES

__all__ = ["QAResult", "threshold_for", "face_box", "reference", "check", "MAX_RETRIES", "INTENSITY_SCHEDULE",
           "PHOTOREAL_THRESHOLD", "STYLISED_THRESHOLD"]

PHOTOREAL_THRESHOLD = 0.75
STYLISED_THRESHOLD = 0.60
MAX_RETRIES = 2
INTENSITY_SCHEDULE = (1.0, 0.6, 0.3)
_DETECT_SIDE = 256
REFERENCE_CACHE = 32
_cache: OrderedDict[tuple[str, int], np.ndarray | None] = OrderedDict()


@dataclass(frozen=True)
class QAResult:
    face_found: bool
    likeness: float | None  # 0..1, None when no embedding could be made
    passed: bool


def threshold_for(style: str, override: float | None = None) -> float:
    """The likeness threshold 0..1 for ``style`` (``override`` wins when given)."""
    if override is not None:
        t = float(override)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"likeness_threshold must be within 0..1, got {override}")
        return t
    return PHOTOREAL_THRESHOLD if style in PHOTOREAL_STYLES else STYLISED_THRESHOLD


def face_box(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """Tight face box (x0, y0, x1, y1) from (478, 3) landmarks, clipped to an image of ``shape``."""
    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    h, w = shape[:2]
    return (float(max(0, x0)), float(max(0, y0)), float(min(w - 1, x1)), float(min(h - 1, y1)))


def reference(image: np.ndarray, box, key: bytes | None = None) -> np.ndarray | None:
    """Identity embedding (128,) of the aligned input, or None; cached when ``key`` (the upload bytes) is given."""
    if key is None:
        return likeness.embed(image, box)
    k = (hashlib.sha256(key).hexdigest(), int(image.shape[0]))
    if k in _cache:
        _cache.move_to_end(k)
        return _cache[k]
    emb = likeness.embed(image, box)
    _cache[k] = emb
    while len(_cache) > REFERENCE_CACHE:
        _cache.popitem(last=False)
    return emb


def _has_face(image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    f = min(1.0, _DETECT_SIDE / max(h, w))
    small = image if f == 1.0 else cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    return bool(detect_faces(small, tiles=False))


def check(output: np.ndarray, ref: np.ndarray | None, box, threshold: float) -> QAResult:
    """Evaluate one output (N, N, 3) uint8 RGB against the reference embedding."""
    if not _has_face(output):
        return QAResult(face_found=False, likeness=None, passed=False)
    if ref is None:
        return QAResult(face_found=True, likeness=None, passed=True)
    emb = likeness.embed(output, box)
    if emb is None:
        return QAResult(face_found=True, likeness=0.0, passed=False)
    score = round(likeness.likeness_score(likeness.distance(ref, emb)), 4)
    return QAResult(face_found=True, likeness=score, passed=score >= threshold)
