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

**Sideways and upside-down photos** → :class:`PhotoRotated`.  Neither model is
reliable on a turned face: on skimage's astronaut turned 180° the mesh lays an
*upright* face over the inverted one (eye line 3.5°) and validation passed on
those wrong landmarks; on Grace Hopper turned 180° nothing is detected, turned
90° the mesh fails; the Ancelotti crop turned 180° gave "features not visible".
So every photo is also tried turned by 90°, 180° and 270° (the detector only,
on a 640-px copy: about 30 ms for the three).  A turn proves the photo is turned when
all of these hold:

* the detector finds its face more confidently than in the photo as given
  (by :data:`TURN_SCORE_MARGIN`, 0.03; 0 stands for "no face").  Measured
  scores, upright vs turned 90° / 180° / 270°: astronaut 0.91 vs
  0.76 / 0.65 / 0.60, Grace Hopper 0.87 vs 0.81 / none / 0.78, Ancelotti 0.87
  vs 0.77 / 0.52 / 0.64;
* the mesh finds the face there and it is upright (:func:`is_upright`): eye
  line within ±30° of horizontal, mouth below the eyes (within 45° of the eye
  line's downward normal), and the detector's own eye and mouth keypoints
  agree with the mesh within :data:`KEYPOINT_AGREEMENT_DEG` (30°; upright, the
  two models agree within 4° on the three photos);
* its eyes and mouth pass Validate's visibility check;
* dlib's HOG frontal-face detector — trained on upright faces only, so an
  independent witness — finds the face there at its default threshold 0.
  Without it an *upright* photo with the mouth or the eyes covered was
  called turned: its 180° turn is detected more confidently (the Ancelotti
  crop with its mouth covered: 0.74 turned, 0.67 as given), meshed as an
  upright face with both models agreeing, and its "features" look visible.
  HOG scores on such inverted turns stay below 0 (−0.21 at most over the
  three photos with mouth or eyes covered in three colours) while the
  upright photos score 1.16, 1.25 and 0.78.  Without dlib, no photo is called
  turned.

The refusal says which way to rotate the photo.  Measured on the three
photos turned by 90°, 180° and 270°, each ± 15°: refused in 31 of 33 cases;
the astronaut and Grace Hopper at 75° pass, their meshes correct (eye lines
−72° and −79°), and Align levels them.  Faces tilted by up to ±50° pass.
Limit: a photo turned by an angle between the quarter turns can still fool
both models into an upright face and pass (the astronaut and the Ancelotti
crop turned 150°).

**Too dark** → :class:`TooDark`, instead of :class:`NoFaceDetected` or
:class:`FaceFeaturesNotVisible`, when the mean grey (ITU-R 601 luma, 0..255)
of the face box — of the whole photo when there is no face — is under
:data:`TOO_DARK_MEAN` (50).  Only a refusal is relabelled: a dark face whose
features can be read passes (with ``input_quality_score``'s exposure warning).
Measured face means (aligned crop) where the features stop being readable:
Ancelotti darkened to 35 % 36, Grace Hopper to 20 % 26, the astronaut to 8 %
12; normally lit they are 104, 133, 157.  50 keeps clear of a well-lit face of
very dark skin (skin around sRGB (90, 60, 50), grey ≈ 68).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .align import eye_centres, warp_similarity
from .errors import FaceFeaturesNotVisible, NoFaceDetected, PhotoRotated, TooDark

__all__ = [
    "Face",
    "Box",
    "detect_face",
    "detect_faces",
    "person_mask",
    "warm_up",
    "LEFT_IRIS",
    "RIGHT_IRIS",
    "TooDark",
    "PhotoRotated",
    "is_upright",
    "too_dark",
    "upright_turn",
    "refuse_if_dark_or_turned",
    "TOO_DARK_MEAN",
    "KEYPOINT_AGREEMENT_DEG",
    "TURN_SCORE_MARGIN",
]

Box = tuple[float, float, float, float]

#: Iris-centre landmark indices (refined mesh).  "Left"/"right" are the
#: subject's: LEFT_IRIS is on the right of an unmirrored photo.
LEFT_IRIS = 473
RIGHT_IRIS = 468

_DETECT_MAX_SIDE = 1024  # detection input is downscaled to this (the model itself runs at 192²)
_MESH_CROP = 384  # the dominant face is re-cropped to this square for the mesh
_MESH_CROP_FACTOR = 2.2  # crop side = factor × the detection box's longer side
_MIN_SCORE = 0.5

#: Mean grey (0..255) of the face box (or photo) below which a refusal is reported as too dark.
TOO_DARK_MEAN = 50.0
#: Largest disagreement (degrees) between the detector's keypoints and the mesh for an upright face.
KEYPOINT_AGREEMENT_DEG = 30.0
#: A turn of the photo must be detected more confidently than the photo as given, by this much.
TURN_SCORE_MARGIN = 0.03
_TURN_SIDE = 640  # turns are tried on a copy this size (the detector itself sees 192²)
_MOUTH = (13, 14)  # inner-lip midpoints (face mesh)

_LOCK = threading.Lock()
_models: dict[str, object] = {}

#: The detector's six keypoints of a face, pixels: the subject's right eye, left eye, nose tip,
#: mouth centre, right ear, left ear.
Keypoints = tuple[tuple[float, float], ...]


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


def _detections(rgb: np.ndarray, short_range: bool = True) -> list[tuple[float, Box, Keypoints]]:
    """All faces as ``(score, (x0, y0, x1, y1), keypoints)`` in pixels of rgb; full range, then short range."""
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
                kps = tuple((float(k.x * w), float(k.y * h)) for k in d.location_data.relative_keypoints)
                found.append((float(d.score[0]), (x0, y0, x0 + b.width * w, y0 + b.height * h), kps))
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


def _tiled_detections(rgb: np.ndarray) -> list[tuple[float, Box, Keypoints]]:
    """Detections on overlapping square tiles (side = half the shorter side, stride = half a tile), NMS-merged."""
    h, w = rgb.shape[:2]
    t = min(h, w) // 2
    stride = t // 2
    found: list[tuple[float, Box, Keypoints]] = []
    ys = sorted(set(list(range(0, h - t + 1, stride)) + [h - t]))
    xs = sorted(set(list(range(0, w - t + 1, stride)) + [w - t]))
    for y in ys:
        for x in xs:
            for score, (x0, y0, x1, y1), kps in _detections(rgb[y:y + t, x:x + t], short_range=False):
                # a box cut by the tile edge is a partial face: another tile holds it whole
                if x0 < 1 and x > 0 or y0 < 1 and y > 0 or x1 > t - 1 and x + t < w or y1 > t - 1 and y + t < h:
                    continue
                found.append((score, (x0 + x, y0 + y, x1 + x, y1 + y), tuple((kx + x, ky + y) for kx, ky in kps)))
    found.sort(key=lambda d: d[0], reverse=True)
    kept: list[tuple[float, Box, Keypoints]] = []
    for det in found:
        if all(_iou(det[1], k[1]) < 0.3 for k in kept):
            kept.append(det)
    return kept


def _find(rgb: np.ndarray, tiles: bool = True) -> list[tuple[float, Box, Keypoints]]:
    """Every face as ``(score, box, keypoints)``, dominant first (see :func:`detect_faces`)."""
    h, w = rgb.shape[:2]
    found = _detections(rgb)
    if not found and tiles and min(h, w) >= _TILE_MIN_SIDE:
        found = _tiled_detections(rgb)
    found.sort(key=lambda d: _dominance(d[1], w, h), reverse=True)
    return found


def detect_faces(rgb: np.ndarray, *, tiles: bool = True) -> list[tuple[float, Box]]:
    """Every face of a (H, W, 3) uint8 RGB photo as ``(score, (x0, y0, x1, y1) pixels)``, dominant first.

    ``tiles``: when the whole frame yields nothing, retry on overlapping tiles
    (photos with a shorter side ≥ 600 px only; see the module docstring).
    """
    return [(score, box) for score, box, _ in _find(rgb, tiles)]


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


def _angle(v: np.ndarray) -> float:
    return math.degrees(math.atan2(float(v[1]), float(v[0])))


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def is_upright(landmarks: np.ndarray, keypoints: Keypoints | None = None, max_roll: float = 30.0) -> bool:
    """Is the face of these (478, 3) landmarks upright in its image (see the module docstring)?

    ``max_roll``: the largest tilt of the eye line, degrees.  ``keypoints``: the
    detector's six keypoints of the same face; when given, they must agree with
    the mesh within :data:`KEYPOINT_AGREEMENT_DEG`.
    """
    left, right = eye_centres(landmarks)  # image-left (subject's right) eye first
    eye_line = _angle(right[:2] - left[:2])
    down = _angle(landmarks[list(_MOUTH), :2].astype(np.float64).mean(axis=0) - (left[:2] + right[:2]) / 2)
    if abs(eye_line) > max_roll or _angle_diff(down, eye_line + 90.0) > 45.0:
        return False
    if keypoints is not None and len(keypoints) >= 4:
        k = np.asarray(keypoints[:4], np.float64)
        kp_line = _angle(k[1] - k[0])
        kp_down = _angle(k[3] - (k[0] + k[1]) / 2)
        if max(_angle_diff(kp_line, eye_line), _angle_diff(kp_down, down)) > KEYPOINT_AGREEMENT_DEG:
            return False
    return True


def too_dark(rgb: np.ndarray, box: Box | None = None) -> bool:
    """Is the mean grey of ``box`` (the whole photo when None) under :data:`TOO_DARK_MEAN`?"""
    h, w = rgb.shape[:2]
    region = rgb
    if box is not None:
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            region = rgb[y0:y1, x0:x1]
    step = max(1, max(region.shape[:2]) // 256)  # a 256-px sample is plenty for a mean
    grey = cv2.cvtColor(np.ascontiguousarray(region[::step, ::step]), cv2.COLOR_RGB2GRAY)
    return float(grey.mean()) < TOO_DARK_MEAN


def upright_turn(rgb: np.ndarray, score: float = 0.0) -> int | None:
    """Quarter turns (1, 2 or 3, counter-clockwise as displayed, as :func:`numpy.rot90`) that
    show an upright face with readable eyes and mouth, or None.

    ``score``: the detector's confidence in the face of the photo as given (0
    when none was found); a turn must beat it by :data:`TURN_SCORE_MARGIN`.
    """
    from .validate import features_visible  # validate imports this module

    small = rgb
    f = min(1.0, _TURN_SIDE / max(rgb.shape[:2]))
    if f < 1.0:
        small = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
    tries = []
    for k in (1, 2, 3):
        turned = np.ascontiguousarray(np.rot90(small, k))
        found = _find(turned, tiles=False)
        if found and found[0][0] > score + TURN_SCORE_MARGIN:
            tries.append((found[0][0], k, turned, found[0]))
    for _, k, turned, (_, box, kps) in sorted(tries, key=lambda t: t[0], reverse=True):
        landmarks = _mesh_on_crop(turned, box)
        if landmarks is None or not is_upright(landmarks, kps):
            continue
        if features_visible(turned, landmarks) and _hog_finds_upright(turned, box):
            return k
    return None


_HOG_SIDE = 512  # dlib's HOG detector runs on a copy this size (upsampled once: faces from ~40 px)


def _hog_finds_upright(rgb: np.ndarray, box: Box) -> bool:
    """Does dlib's HOG frontal-face detector (upright faces only) find, at its default
    threshold 0, a face centred inside ``box``?  False when dlib is not installed."""
    try:
        import dlib  # heavy native module, kept out of package import time
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    f = min(1.0, _HOG_SIDE / max(rgb.shape[:2]))
    small = rgb if f == 1.0 else cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)),
                                            interpolation=cv2.INTER_AREA)
    with _LOCK:
        hog = _models.get("hog")
        if hog is None:
            hog = _models["hog"] = dlib.get_frontal_face_detector()
        rects, _, _ = hog.run(np.ascontiguousarray(small), 1, 0.0)
    for r in rects:
        cx, cy = (r.left() + r.right()) / 2 / f, (r.top() + r.bottom()) / 2 / f
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
            return True
    return False


_TURN_WORDS = {
    1: "on its side. Please turn it a quarter turn to the left (anticlockwise)",
    2: "upside down. Please turn it the right way up",
    3: "on its side. Please turn it a quarter turn to the right (clockwise)",
}


def refuse_if_dark_or_turned(
    rgb: np.ndarray, box: Box | None = None, *, score: float = 0.0, dark: bool | None = None
) -> None:
    """Raise :class:`PhotoRotated` or :class:`TooDark` when either explains a refusal; else return.

    ``box``, ``score``: the face found in the photo as given, if any;
    ``dark``: the caller's own darkness verdict; when None, :func:`too_dark` of ``box``.
    """
    k = upright_turn(rgb, score)
    if k is not None:
        raise PhotoRotated(f"This photo is {_TURN_WORDS[k]} so that your face is upright, and try again.")
    if too_dark(rgb, box) if dark is None else dark:
        raise TooDark()


def detect_face(rgb: np.ndarray) -> Face:
    """The dominant face of a (H, W, 3) uint8 RGB photo, with its landmarks.

    Raises :class:`NoFaceDetected` when no face is found and
    :class:`FaceFeaturesNotVisible` when a face is found but the landmark model
    cannot place its features (heavily covered or cut-off faces) — or, in
    their place, :class:`PhotoRotated` or :class:`TooDark` when that is the
    reason; :class:`PhotoRotated` too when a face was found but a turn of the
    photo shows it upright more convincingly (see the module docstring).
    """
    found = _find(rgb)
    if not found:
        refuse_if_dark_or_turned(rgb)
        raise NoFaceDetected()
    score, box, _ = found[0]
    landmarks = _mesh_on_crop(rgb, box)
    if landmarks is None:
        refuse_if_dark_or_turned(rgb, box, score=score)
        raise FaceFeaturesNotVisible()
    refuse_if_dark_or_turned(rgb, score=score, dark=False)  # a turned photo can still yield a "face"
    return Face(bbox=tuple(float(v) for v in box), score=score, landmarks=landmarks, face_count=len(found),
                detections=tuple((sc, bx) for sc, bx, _ in found))


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
