"""Likeness: face identity embeddings and a 0..1 likeness score (SPEC §5, QA stage).

Model
-----
dlib's 128-d face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``,
99.38 % on LFW) with its 5-point landmark predictor, both shipped as data files
by the ``face_recognition_models`` distribution and run by ``dlib-bin``; nothing
is downloaded.  The package itself is never imported (its ``__init__`` needs
``pkg_resources``, which setuptools ≥ 81 no longer ships): the model folder is
located with :func:`importlib.util.find_spec`.

The models are loaded lazily, once per process, into module globals guarded by
:data:`_LOCK` (this code runs inside process-pool workers; call
:func:`warm_up` from the pool initializer).  dlib objects are not documented
as thread-safe, so every call into them holds the lock.

Embedding (:func:`embed`): the face box — given by the caller (e.g. mediapipe's
detection box, used directly as the dlib rectangle) or found by dlib's HOG
detector (upsample 0, then 1 if nothing was found; the highest-scoring
detection wins) — goes to the 5-point predictor, dlib aligns a 150×150 chip
and the ResNet maps it to a (128,) float32 vector.  Two photos of the same
person are within Euclidean distance 0.6 of each other by dlib's own rule.

Score (:func:`likeness_score`)::

    score(d) = clip(1 − d² / 0.9, 0, 1)        d = Euclidean distance

A monotone (decreasing) map with ``score(0) = 1``.  The constant 0.9 = 0.6²/0.4
puts dlib's same-person threshold d = 0.6 exactly at score 0.60, the default
QA threshold for *stylised* styles: a stylised output passes precisely when
dlib would still call it the same person.  The default *photoreal* threshold
0.75 corresponds to d ≤ 0.474, a stricter bound appropriate for outputs that
should barely change the face.  The quadratic keeps the score near 1 for
the small distances of retouched copies and falls steeply past the threshold,
where different people lie (d ≈ 0.8–1.0 → 0.29–0; the score is 0 from
d ≥ 0.949).

Measured on this machine (dlib-bin 20.0.1; HOG box unless noted), distance
and score of ``skimage.data.astronaut`` against::

    the same photo, mediapipe's box instead of HOG's       0.045   0.998
    mildly retouched copy (bilateral 7/40/40, ×1.08 + 6)    0.144   0.977
    greyscale copy                                          0.176   0.965
    mirrored copy                                           0.178   0.965
    stylize.py game_avatar / anime_character /
      editorial_portrait at intensity 1.0 (pre-rework)      0.42 / 0.39 / 0.18
                                                            → 0.80 / 0.83 / 0.97
    cartoon filter (4× bilateral, 8 levels per channel,
      Canny ink lines; tests/test_likeness.py)              0.554   0.659
    harsh cartoon (5 levels per channel, adaptive-
      threshold ink on 26 % of the pixels)                  0.73    0.41
    the camera man (skimage.data.camera), another person    0.846   0.204

Cost on the 2-core CI machine: :func:`warm_up` ≈ 0.45 s and ≈ 40 MB RSS for the
two models; HOG detection with upsampling allocates an image pyramid on top
(transient, ≈ 100 MB at upsample 3 on a 512² image).  Per call: ≈ 80 ms for the
ResNet (one 150² chip) + ≈ 1 ms for the landmarks when a box is given; ≈ 110 ms
(512²) / ≈ 140 ms (800²) with HOG detection.  Pass a box whenever one is known.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Sequence

import numpy as np

from schemas.errors import AcsError

__all__ = [
    "EMBEDDING_DIM",
    "SAME_PERSON_DISTANCE",
    "LikenessUnavailable",
    "model_dir",
    "warm_up",
    "embed",
    "distance",
    "likeness_score",
    "compare",
]

#: Length of an identity embedding.
EMBEDDING_DIM = 128
#: dlib's decision threshold: distance below it ⇒ same person.
SAME_PERSON_DISTANCE = 0.6
#: ``score = 1 − d² / _SCORE_SCALE``; 0.6² / (1 − 0.6) puts d = 0.6 at score 0.6.
_SCORE_SCALE = SAME_PERSON_DISTANCE**2 / (1.0 - 0.6)

_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"

_LOCK = threading.Lock()
_models: dict[str, object] = {}

Box = Sequence[float]  # (x0, y0, x1, y1) pixels


class LikenessUnavailable(AcsError):
    """dlib or the face_recognition_models data files are not installed."""

    status = 503
    default_code = "LikenessUnavailable"


def model_dir() -> str:
    """Folder holding the face_recognition_models ``.dat`` files (found without importing the package)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LikenessUnavailable(
            "Face identity models are not installed (package face_recognition_models is missing)."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "models")


def _load() -> dict[str, object]:
    """Load the detector, the 5-point predictor and the ResNet once per process.  Caller holds _LOCK."""
    if not _models:
        try:
            import dlib  # heavy native module, kept out of package import time
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise LikenessUnavailable("Face identity models need dlib (install dlib-bin).") from exc
        folder = model_dir()
        paths = {name: os.path.join(folder, name) for name in (_PREDICTOR_FILE, _RESNET_FILE)}
        for path in paths.values():
            if not os.path.isfile(path):
                raise LikenessUnavailable(f"Face identity model file is missing: {path}")
        _models["dlib"] = dlib
        _models["detector"] = dlib.get_frontal_face_detector()
        _models["predictor"] = dlib.shape_predictor(paths[_PREDICTOR_FILE])
        _models["resnet"] = dlib.face_recognition_model_v1(paths[_RESNET_FILE])
    return _models


def warm_up() -> None:
    """Load the models and run the ResNet once (first-call costs paid here, e.g. in a pool initializer)."""
    dummy = np.full((160, 160, 3), 128, np.uint8)
    embed(dummy, (5, 5, 155, 155))


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) C-contiguous uint8 view/copy of an RGB or greyscale image, as dlib requires."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {np.shape(rgb)}")
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {a.dtype}")
    return np.ascontiguousarray(a)


def _detect(models: dict[str, object], img: np.ndarray, upsample: int | None):
    """Best HOG detection (a dlib.rectangle) or None; upsample None tries 0 then 1."""
    detector = models["detector"]
    for up in ((0, 1) if upsample is None else (int(upsample),)):
        rects, scores, _ = detector.run(img, up, 0.0)
        if len(rects):
            return rects[int(np.argmax(scores))]
    return None


def embed(rgb: np.ndarray, box: Box | None = None, *, upsample: int | None = None) -> np.ndarray | None:
    """Identity embedding of the face in an (H, W, 3) uint8 RGB image.

    box: ``(x0, y0, x1, y1)`` face box in pixels of ``rgb`` (any detector's
        tight face box, e.g. mediapipe's); used directly as the dlib rectangle.
        When None, dlib's HOG detector finds the face (highest score wins).
    upsample: HOG pyramid upsampling when ``box`` is None; None tries 0, then 1
        (finds faces down to ≈ 40 px; each step costs ~4× time).

    Returns a (128,) float32 vector, or None when no face is found.
    """
    img = _as_rgb(rgb)
    with _LOCK:
        models = _load()
        dlib = models["dlib"]
        if box is None:
            rect = _detect(models, img, upsample)
            if rect is None:
                return None
        else:
            x0, y0, x1, y1 = (float(v) for v in box)
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"empty face box {tuple(box)}")
            rect = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
        shape = models["predictor"](img, rect)
        vec = models["resnet"].compute_face_descriptor(img, shape)
    return np.asarray(vec, dtype=np.float32).reshape(EMBEDDING_DIM)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two (128,) embeddings (dlib: < 0.6 ⇒ same person)."""
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def likeness_score(d: float) -> float:
    """Map an embedding distance to a likeness score in 0..1: ``clip(1 − d²/0.9, 0, 1)``.

    Monotone decreasing; 1 at d = 0, 0.75 at d ≈ 0.474, 0.60 at dlib's
    same-person threshold d = 0.6, 0 from d ≈ 0.949.  See the module docstring
    for the calibration.
    """
    d = float(d)
    if not np.isfinite(d) or d < 0:
        raise ValueError(f"distance must be a finite non-negative number, got {d}")
    return float(min(1.0, max(0.0, 1.0 - d * d / _SCORE_SCALE)))


def compare(
    rgb_a: np.ndarray,
    rgb_b: np.ndarray,
    box_a: Box | None = None,
    box_b: Box | None = None,
) -> float | None:
    """Likeness score 0..1 between the faces of two RGB images; None when either has no face."""
    ea = embed(rgb_a, box_a)
    if ea is None:
        return None
    eb = embed(rgb_b, box_b)
    if eb is None:
        return None
    return likeness_score(distance(ea, eb))
