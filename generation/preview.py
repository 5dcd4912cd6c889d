"""The 2D preview pipeline: photo bytes → stylised square PNG + report (SPEC §5).

``LoadPhoto → FaceDetect → Align → (segment, quality) → StyleApply → encode``

:func:`make_preview` is synchronous and CPU-bound; the server runs it in a
process-pool worker.  The first call in a process loads the mediapipe models
(about 0.5 s; call :func:`warm_up` in the worker initializer to pay it up front).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from .align import align_face
from .errors import PromptTooLong, UnknownStyle
from .face import detect_face, person_mask
from .face import warm_up as _warm_up_models
from .photo import load_photo
from .stylize import DEFAULT_STYLE, STYLES, parse_prompt, stylize

__all__ = ["PreviewResult", "make_preview", "warm_up", "input_quality", "sample_colours", "STYLES", "MAX_PROMPT_CHARS"]

MAX_PROMPT_CHARS = 500
_LOAD_MAX_SIDE = 2048  # photos are decoded/downscaled to this; a face that passes validation keeps ample pixels

# Landmarks (face mesh indices) sampled for skin: cheeks and forehead.
_SKIN_POINTS = (50, 101, 205, 280, 330, 425, 151, 108, 337)
_FOREHEAD_TOP = 10


@dataclass(frozen=True, eq=False)
class PreviewResult:
    """A rendered preview.

    png: square RGB PNG, size × size.
    report: SPEC §5 report (see :func:`make_preview`).
    landmarks: (478, 3) float32; x, y normalised 0..1 in the preview frame,
        z in the same scale as x (mediapipe's relative depth; negative = towards the camera).
    skin_rgb: median colour of cheek/forehead patches of the aligned photo.
    hair_rgb: median colour above the forehead (person pixels that are not skin-coloured).
    """

    png: bytes
    report: dict
    landmarks: np.ndarray
    skin_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int]


# Quality calibration: contrast-normalised sharpness r = var(Laplacian) / var(grey) of the
# face at 128 px wide.  Measured: skimage astronaut ≈ 0.065, the same blurred with a
# Gaussian of sigma 0.8 px ≈ 0.016, sigma 1.5 px ≈ 0.006.
_SHARP_LOW = 0.005  # at or below: score 0 (visibly blurred)
_SHARP_HIGH = 0.08  # at or above: score 1 (crisp)


def input_quality(image: np.ndarray, landmarks: np.ndarray) -> tuple[float, list[str]]:
    """``(input_quality_score, warnings)`` for an aligned (N, N, 3) uint8 RGB crop.

    Measured on the face only (bounding box of the landmarks, (478, 3) pixels of
    ``image``), resized to 128 px wide, as 8-bit grey:

    * sharpness ``s`` from the variance of the Laplacian divided by the variance
      of the grey values (so that a dark, low-contrast face is not called
      blurry), ``r = var(∇²g) / max(var(g), 25)``, mapped log-linearly:
      ``s = clip(log(r / 0.005) / log(0.08 / 0.005), 0, 1)``;
    * exposure ``e`` from the mean grey ``μ``: 1 for ``75 ≤ μ ≤ 175``, falling
      linearly to 0 at ``μ = 15`` and ``μ = 235``;
    * clipping ``c`` from the fraction ``f`` of pixels ≤ 8 or ≥ 247:
      ``c = 1 − clip((f − 0.02) / 0.25, 0, 1)``.

    ``input_quality_score = s × e × c`` (0..1).  Warnings when ``s < 0.4``,
    ``μ < 75`` or ``μ > 175``, ``f > 0.1``.
    """
    h, w = image.shape[:2]
    x0, y0 = np.floor(landmarks[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(landmarks[:, :2].max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    face = image[y0:y1, x0:x1] if x1 - x0 >= 8 and y1 - y0 >= 8 else image
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    fh, fw = grey.shape
    grey = cv2.resize(grey, (128, max(8, round(128 * fh / fw))), interpolation=cv2.INTER_AREA)
    ratio = float(cv2.Laplacian(grey, cv2.CV_64F).var()) / max(float(grey.var()), 25.0)
    sharp = float(np.clip(math.log(max(ratio, 1e-9) / _SHARP_LOW) / math.log(_SHARP_HIGH / _SHARP_LOW), 0.0, 1.0))
    mu = float(grey.mean())
    exposure = float(np.clip(1.0 - max(0.0, abs(mu - 125.0) - 50.0) / 60.0, 0.0, 1.0))
    frac = float(np.mean((grey <= 8) | (grey >= 247)))
    clip_score = 1.0 - float(np.clip((frac - 0.02) / 0.25, 0.0, 1.0))
    warnings = []
    if sharp < 0.4:
        warnings.append("The photo looks blurry; a sharper photo will give a better likeness.")
    if mu < 75:
        warnings.append("The face is quite dark; try a photo with more light on your face.")
    elif mu > 175:
        warnings.append("The face is very bright; try a photo with softer light.")
    if frac > 0.1:
        warnings.append("Parts of the face are over- or under-exposed.")
    return round(sharp * exposure * clip_score, 4), warnings


def _disc_pixels(image: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """(K, 3) pixels of image within ``radius`` of any of ``points`` ((P, 2) pixel coords)."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for x, y in points:
        cv2.circle(mask, (int(round(x)), int(round(y))), radius, 255, -1)
    return image[mask > 0]


def _robust_median(pixels: np.ndarray) -> tuple[int, int, int]:
    """Per-channel median of the pixels whose luminance is within the 15th–85th percentile."""
    lum = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lo, hi = np.percentile(lum, [15, 85])
    keep = pixels[(lum >= lo) & (lum <= hi)]
    if len(keep) == 0:
        keep = pixels
    return tuple(int(v) for v in np.median(keep, axis=0))


def sample_colours(
    image: np.ndarray, landmarks: np.ndarray, mask: np.ndarray
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(skin_rgb, hair_rgb)`` from an aligned (N, N, 3) uint8 RGB crop.

    landmarks: (478, 3) pixels of ``image``; mask: (N, N) float32 person probability.
    Skin: cheek and forehead discs.  Hair: the band above the top of the forehead
    (landmark 10), between 0.15 and 0.75 eye-distances up and half an
    eye-distance either side, restricted to person pixels that are not
    skin-coloured (CIELAB distance > 18); falls back to all person pixels of the
    band (bald or shaved: skin-like), then to the whole band.
    """
    h, w = image.shape[:2]
    eye_d = float(np.linalg.norm(landmarks[[362, 263], :2].mean(0) - landmarks[[33, 133], :2].mean(0)))
    radius = max(2, int(round(eye_d * 0.09)))
    skin = _robust_median(_disc_pixels(image, landmarks[list(_SKIN_POINTS), :2], radius))

    tx, ty = landmarks[_FOREHEAD_TOP, :2]
    x0, x1 = int(max(0, tx - 0.5 * eye_d)), int(min(w, tx + 0.5 * eye_d))
    y0, y1 = int(max(0, ty - 0.75 * eye_d)), int(min(h, ty - 0.15 * eye_d))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return skin, skin
    band = image[y0:y1, x0:x1].reshape(-1, 3)
    person = mask[y0:y1, x0:x1].reshape(-1) > 0.5
    lab = cv2.cvtColor(band.reshape(1, -1, 3), cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float32)
    skin_lab = cv2.cvtColor(np.array([[skin]], np.uint8), cv2.COLOR_RGB2Lab).reshape(3).astype(np.float32)
    not_skin = np.linalg.norm(lab - skin_lab, axis=1) > 18.0
    for select in (person & not_skin, person):
        if select.sum() >= max(10, 0.15 * len(band)):
            return skin, _robust_median(band[select])
    return skin, _robust_median(band)


def warm_up() -> None:
    """Pay every first-call cost now (~0.5 s): mediapipe models, OpenCV's Lab tables, style code.

    Call it from the process-pool initializer so the first request runs as fast as the rest.
    """
    _warm_up_models()
    dummy = np.full((64, 64, 3), 128, np.uint8)
    cv2.cvtColor(dummy, cv2.COLOR_RGB2Lab)
    for name in STYLES:
        stylize(dummy, name, mask=np.ones((64, 64), np.float32), background=((0, 0, 255),))


def _ms(t0: float, t1: float) -> float:
    return round((t1 - t0) * 1000.0, 2)


def make_preview(
    data: bytes, *, text_prompt: str | None = None, style: str | None = None, size: int = 512
) -> PreviewResult:
    """Run the 2D pipeline on uploaded photo bytes.

    style: one of :data:`STYLES`; None or "" → ``game_avatar``.
    text_prompt: ≤ 500 characters, read by :func:`generation.stylize.parse_prompt`.
    size: output side in pixels (64..2048).

    report: ``face_detected`` (always True: no face raises), ``face_count``,
    ``input_quality_score`` (see :func:`input_quality`), ``likeness_score``
    (None: identity embeddings are not implemented yet), ``validation_warnings``
    (player-readable strings, including the prompt words that were not used),
    ``style``, ``timings_ms`` (load, detect, align, segment, validate, style,
    encode, total).

    Raises the :mod:`generation.errors` refusals: UnknownStyle, PromptTooLong,
    ImageTooLarge, UnsupportedImageFormat, InvalidImage, ImageTooSmall,
    NoFaceDetected, FaceFeaturesNotVisible.
    """
    t_start = time.perf_counter()
    style = style or DEFAULT_STYLE
    if style not in STYLES:
        raise UnknownStyle(f"Unknown style '{style[:40]}'. Available styles: {', '.join(STYLES)}.")
    if text_prompt is not None and len(text_prompt) > MAX_PROMPT_CHARS:
        raise PromptTooLong(
            f"The text prompt is too long ({len(text_prompt)} characters). "
            f"Please keep it to {MAX_PROMPT_CHARS} characters or fewer."
        )
    if not 64 <= int(size) <= 2048:
        raise ValueError(f"size must be 64..2048, got {size}")
    size = int(size)
    prompt = parse_prompt(text_prompt)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    rgb = load_photo(data, max_side=max(_LOAD_MAX_SIDE, 2 * size))
    t1 = time.perf_counter()
    timings["load"] = _ms(t0, t1)

    face = detect_face(rgb)
    t2 = time.perf_counter()
    timings["detect"] = _ms(t1, t2)

    aligned = align_face(rgb, face.landmarks, size)
    t3 = time.perf_counter()
    timings["align"] = _ms(t2, t3)

    mask = person_mask(aligned.image)
    t4 = time.perf_counter()
    timings["segment"] = _ms(t3, t4)

    quality, warnings = input_quality(aligned.image, aligned.landmarks)
    skin, hair = sample_colours(aligned.image, aligned.landmarks, mask)
    if face.face_count > 1:
        warnings.insert(0, f"We found {face.face_count} faces and used the largest, most central one.")
    if prompt.unused:
        warnings.append("These prompt words weren't used: " + ", ".join(prompt.unused))
    t5 = time.perf_counter()
    timings["validate"] = _ms(t4, t5)

    styled = stylize(aligned.image, style, mask=mask, background=prompt.background)
    t6 = time.perf_counter()
    timings["style"] = _ms(t5, t6)

    ok, buf = cv2.imencode(".png", cv2.cvtColor(styled, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise RuntimeError("PNG encoding failed")
    png = buf.tobytes()
    t7 = time.perf_counter()
    timings["encode"] = _ms(t6, t7)
    timings["total"] = _ms(t_start, t7)

    landmarks = (aligned.landmarks / np.float32(size)).astype(np.float32)
    report = {
        "face_detected": True,
        "face_count": face.face_count,
        "input_quality_score": quality,
        "likeness_score": None,
        "validation_warnings": warnings,
        "style": style,
        "timings_ms": timings,
    }
    return PreviewResult(png=png, report=report, landmarks=landmarks, skin_rgb=skin, hair_rgb=hair)
