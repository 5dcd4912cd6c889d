"""FaceDetect: find the dominant face and its 478 landmarks (SPEC §5).

Models are mediapipe's legacy *solutions*, shipped inside the mediapipe
0.10.21 wheel (nothing is downloaded):

* ``face_detection`` full-range model (faces up to ~5 m), falling back to the
  short-range model for very close selfies;
* ``face_mesh`` with ``refine_landmarks=True``: 468 mesh points + 10 iris points;
* ``selfie_segmentation`` (general model) for the person/background mask.

The graphs are created lazily, once per process, and kept in module globals:
this code runs inside process-pool workers, which must not reload models per
call.  Call :func:`warm_up` from the pool initializer to pay the start-up cost
(~0.1–0.3 s) before the first request.  mediapipe graphs are not thread-safe,
so every call into them holds :data:`_LOCK`.

When the whole frame yields no face and the photo is large, the detector is
run again on overlapping tiles (half the shorter side, 50 % overlap) and the
boxes merged by non-maximum suppression: the full-range model sees a 192²
copy of its input, so the faces of a big group photo (e.g. 16 faces of ~100 px
in a 2048² image) are too small for it on the whole frame.

Dominant face: among the detections, the one maximising
``area_fraction × (1 − 0.5 · d)``, where ``d`` is the distance from the
detection's centre to the image centre divided by the half-diagonal (0 at the
centre, 1 in a corner): the largest face wins unless a slightly smaller one is
much more central.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .align import warp_similarity
from .errors import FaceFeaturesNotVisible, NoFaceDetected

__all__ = ["Face", "Box", "detect_face", "detect_faces", "person_mask", "warm_up", "LEFT_IRIS", "RIGHT_IRIS"]

Box = tuple[float, float, float, float]

#: Iris-centre landmark indices (refined mesh).  "Left"/"right" are the
#: subject's: LEFT_IRIS is on the right of an unmirrored photo.
LEFT_IRIS = 473
RIGHT_IRIS = 468

_DETECT_MAX_SIDE = 1024  # detection input is downscaled to this (the model itself runs at 192²)
_MESH_CROP = 384  # the dominant face is re-cropped to this square for the mesh
_MESH_CROP_FACTOR = 2.2  # crop side = factor × the detection box's longer side
_MIN_SCORE = 0.5

_LOCK = threading.Lock()
_models: dict[str, object] = {}


@dataclass(frozen=True, eq=False)
class Face:
    """The dominant face of a photo.

    bbox: ``(x0, y0, x1, y1)`` pixels in the input image, from the detector.
    score: detector confidence 0..1.
    landmarks: (478, 3) float32; x, y in input pixels; z is mediapipe's relative
        depth in the same pixel scale as x (smaller = closer to the camera).
    face_count: faces the detector found in the whole photo (≥ 1).
    detections: every detection as ``(score, bbox)``, dominant first.
    """

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    face_count: int
    detections: tuple[tuple[float, Box], ...] = ()


def _model(name: str):
    """Create (once per process) and return one mediapipe graph.  Caller holds _LOCK."""
    m = _models.get(name)
    if m is None:
        import mediapipe as mp  # heavy import, kept out of package import time

        if name == "detect_full":
            m = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=_MIN_SCORE)
        elif name == "detect_short":
            m = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=_MIN_SCORE)
        elif name == "mesh":
            m = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=_MIN_SCORE
            )
        elif name == "segment":
            m = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        else:  # pragma: no cover - internal misuse
            raise KeyError(name)
        _models[name] = m
    return m


def warm_up() -> None:
    """Load every model and run each once on a synthetic image (first-call cost paid here)."""
    dummy = np.full((256, 256, 3), 128, np.uint8)
    with _LOCK:
        for name in ("detect_full", "detect_short", "mesh"):
            _model(name).process(dummy)
        _model("segment").process(dummy)


def _detections(rgb: np.ndarray, short_range: bool = True) -> list[tuple[float, Box]]:
    """All faces as ``(score, (x0, y0, x1, y1) pixels of rgb)``; full range, then short range."""
    h, w = rgb.shape[:2]
    f = min(1.0, _DETECT_MAX_SIDE / max(h, w))
    small = rgb if f == 1.0 else cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(small)
    found = []
    with _LOCK:
        for name in ("detect_full", "detect_short") if short_range else ("detect_full",):
            res = _model(name).process(small)
            for d in res.detections or ():
                b = d.location_data.relative_bounding_box
                x0, y0 = b.xmin * w, b.ymin * h
                found.append((float(d.score[0]), (x0, y0, x0 + b.width * w, y0 + b.height * h)))
            if found:
                break
    return found


_TILE_MIN_SIDE = 600  # tiles are tried only on photos whose shorter side is at least this


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _tiled_detections(rgb: np.ndarray) -> list[tuple[float, Box]]:
    """Detections on overlapping square tiles (side = half the shorter side, stride = half a tile), NMS-merged."""
    h, w = rgb.shape[:2]
    t = min(h, w) // 2
    stride = t // 2
    found: list[tuple[float, Box]] = []
    ys = sorted(set(list(range(0, h - t + 1, stride)) + [h - t]))
    xs = sorted(set(list(range(0, w - t + 1, stride)) + [w - t]))
    for y in ys:
        for x in xs:
            for score, (x0, y0, x1, y1) in _detections(rgb[y:y + t, x:x + t], short_range=False):
                # a box cut by the tile edge is a partial face: another tile holds it whole
                if x0 < 1 and x > 0 or y0 < 1 and y > 0 or x1 > t - 1 and x + t < w or y1 > t - 1 and y + t < h:
                    continue
                found.append((score, (x0 + x, y0 + y, x1 + x, y1 + y)))
    found.sort(key=lambda sb: sb[0], reverse=True)
    kept: list[tuple[float, Box]] = []
    for score, box in found:
        if all(_iou(box, k) < 0.3 for _, k in kept):
            kept.append((score, box))
    return kept


def detect_faces(rgb: np.ndarray, *, tiles: bool = True) -> list[tuple[float, Box]]:
    """Every face of a (H, W, 3) uint8 RGB photo as ``(score, (x0, y0, x1, y1) pixels)``, dominant first.

    ``tiles``: when the whole frame yields nothing, retry on overlapping tiles
    (photos with a shorter side ≥ 600 px only; see the module docstring).
    """
    h, w = rgb.shape[:2]
    found = _detections(rgb)
    if not found and tiles and min(h, w) >= _TILE_MIN_SIDE:
        found = _tiled_detections(rgb)
    found.sort(key=lambda sb: _dominance(sb[1], w, h), reverse=True)
    return found


def _dominance(box: tuple[float, float, float, float], w: int, h: int) -> float:
    x0, y0, x1, y1 = box
    area = max(0.0, x1 - x0) * max(0.0, y1 - y0) / (w * h)
    cx, cy = (x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - h / 2
    d = min(1.0, float(np.hypot(cx, cy) / np.hypot(w / 2, h / 2)))
    return area * (1.0 - 0.5 * d)


def _mesh_on_crop(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """478 landmarks (pixels of rgb) for the face in ``box``, or None if the mesh finds none."""
    x0, y0, x1, y1 = box
    side = _MESH_CROP_FACTOR * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ox, oy = cx - side / 2, cy - side / 2
    s = _MESH_CROP / side
    m = np.array([[s, 0, -ox * s], [0, s, -oy * s]], np.float64)
    crop = warp_similarity(rgb, m, (_MESH_CROP, _MESH_CROP), border=cv2.BORDER_CONSTANT)
    with _LOCK:
        res = _model("mesh").process(crop)
    if not res.multi_face_landmarks:
        return None
    pts = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], np.float32)
    out = np.empty_like(pts)
    out[:, 0] = ox + pts[:, 0] * side
    out[:, 1] = oy + pts[:, 1] * side
    out[:, 2] = pts[:, 2] * side
    return out


def detect_face(rgb: np.ndarray) -> Face:
    """The dominant face of a (H, W, 3) uint8 RGB photo, with its landmarks.

    Raises :class:`NoFaceDetected` when no face is found and
    :class:`FaceFeaturesNotVisible` when a face is found but the landmark model
    cannot place its features (heavily covered or cut-off faces).
    """
    found = detect_faces(rgb)
    if not found:
        raise NoFaceDetected()
    score, box = found[0]
    landmarks = _mesh_on_crop(rgb, box)
    if landmarks is None:
        raise FaceFeaturesNotVisible()
    return Face(bbox=tuple(float(v) for v in box), score=score, landmarks=landmarks, face_count=len(found),
                detections=tuple(found))


_SEGMENT_SIDE = 256  # the selfie model runs at 256×256; feeding it more only costs conversion time


def person_mask(rgb: np.ndarray) -> np.ndarray:
    """Person-vs-background probability, (H, W) float32 in 0..1 (1 = person), for an RGB image.

    The image is fed to mediapipe's selfie segmentation (general model) at
    ≤ 256 px and the probability map is resized back bilinearly.
    """
    h, w = rgb.shape[:2]
    f = min(1.0, _SEGMENT_SIDE / max(h, w))
    small = rgb if f == 1.0 else cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                                            interpolation=cv2.INTER_AREA)
    with _LOCK:
        res = _model("segment").process(np.ascontiguousarray(small))
    mask = res.segmentation_mask
    if mask is None:
        return np.zeros(rgb.shape[:2], np.float32)
    mask = np.clip(mask.astype(np.float32, copy=False), 0.0, 1.0)
    if mask.shape != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return mask
