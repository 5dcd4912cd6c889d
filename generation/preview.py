"""The 2D preview pipeline: photo bytes → stylised square PNG + report (SPEC §5).

``LoadPhoto → FaceDetect → Validate → Align → StyleApply → BgGenerate →
DetailEnhance → QA → SaveAvatar``, one module per stage:

==============  ===========================  ==================================
stage           module                       report key in ``timings_ms``
==============  ===========================  ==================================
LoadPhoto       :mod:`generation.photo`      ``load``
FaceDetect      :mod:`generation.face`       ``detect``
Validate        :mod:`generation.validate`   ``validate`` (+ ``quality``)
Align           :mod:`generation.align`      ``align`` (+ ``segment``, ``edits``)
StyleApply      :mod:`generation.stylize`    ``style`` (all tries)
BgGenerate      :mod:`generation.background` ``background`` (all tries)
DetailEnhance   :mod:`generation.enhance`    ``enhance`` (all tries)
QA              :mod:`generation.qa`         ``qa`` (all tries, input embedding included)
SaveAvatar      :mod:`generation.save`       ``save``
==============  ===========================  ==================================

TextPrompt parsing and moderation: :mod:`generation.prompt`; the prompt's
edits to the photo (hair/clothing colour, glasses, hat, smile):
:mod:`generation.edits`.

:func:`make_preview` is synchronous and CPU-bound; the server runs it in a
process-pool worker.  Call :func:`warm_up` in the worker initializer: it
loads the mediapipe graphs and the dlib likeness models (≈ 1 s) once.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from . import likeness, qa
from .align import align_face
from .background import DEFAULT_PALETTES, STYLE_SCENES, composite, render_background
from .edits import apply_edits
from .enhance import enhance
from .errors import UnknownStyle
from .face import detect_face, person_mask
from .face import warm_up as _warm_up_models
from .photo import load_photo
from .pixels import SKIN_POINTS, disc_pixels, robust_median
from .prompt import MAX_PROMPT_CHARS, parse_prompt
from .save import PIPELINE_VERSION, encode_png, thumbnail_png
from .stylize import BACKENDS, DEFAULT_STYLE, STYLES, stylize
from .validate import validate_face

__all__ = ["PreviewResult", "make_preview", "warm_up", "input_quality", "sample_colours", "STYLES",
           "MAX_PROMPT_CHARS", "PLATFORM_SIZES", "MIN_SIZE", "MAX_SIZE"]

#: The platform's avatar sizes: 800 (default) and 1200 (high-res).  Other sides in
#: MIN_SIZE..MAX_SIZE are accepted too (embedding apps, tests, smaller server configs).
PLATFORM_SIZES = (800, 1200)
MIN_SIZE, MAX_SIZE = 256, 2048
_LOAD_MAX_SIDE = 2048  # photos are decoded/downscaled to this; a face that passes validation keeps ample pixels

# Landmarks (face mesh indices) sampled for skin: cheeks and forehead.
_FOREHEAD_TOP = 10


@dataclass(frozen=True, eq=False)
class PreviewResult:
    """A rendered preview.

    png: square RGB PNG, size × size, with ``acs:*`` metadata (see :mod:`generation.save`).
    thumbnail_png: 100 × 100 RGB PNG.
    report: SPEC §5 report (see :func:`make_preview`).
    landmarks: (478, 3) float32; x, y normalised 0..1 in the preview frame,
        z in the same scale as x (mediapipe's relative depth; negative = towards the camera).
    skin_rgb: median colour of cheek/forehead patches of the aligned photo.
    hair_rgb: median colour above the forehead (person pixels that are not skin-coloured),
        after the prompt's hair recolouring.
    """

    png: bytes
    report: dict
    landmarks: np.ndarray
    skin_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int]
    thumbnail_png: bytes = b""


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
    skin = robust_median(disc_pixels(image, landmarks[list(SKIN_POINTS), :2], radius))

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
            return skin, robust_median(band[select])
    return skin, robust_median(band)


def warm_up() -> None:
    """Load every model and pay every first-call cost now (≈ 1 s): mediapipe, dlib likeness, OpenCV tables.

    Call it from the process-pool initializer so the first request runs as fast as the rest.
    """
    _warm_up_models()
    likeness.warm_up()
    dummy = np.full((64, 64, 3), 128, np.uint8)
    cv2.cvtColor(dummy, cv2.COLOR_RGB2Lab)
    for name in STYLES:
        enhance(stylize(dummy, name, skin_rgb=(200, 160, 140)), name)
    for kind in DEFAULT_PALETTES:
        render_background(kind, 64)


def _check_palette(palette) -> tuple[tuple[int, int, int], ...] | None:
    if palette is None:
        return None
    cols = []
    for c in palette:
        c = tuple(c)
        if len(c) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= int(v) <= 255 for v in c):
            raise ValueError(f"palette colours must be (r, g, b) integers 0..255, got {c!r}")
        cols.append(tuple(int(v) for v in c))
    if not 1 <= len(cols) <= 4:
        raise ValueError("palette must hold 1 to 4 colours")
    return tuple(cols)


class _Clock:
    """Accumulating per-stage timer (ms)."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round(self.ms.get(stage, 0.0) + (now - self._t) * 1000.0, 2)
        self._t = now


def make_preview(
    data: bytes,
    *,
    text_prompt: str | None = None,
    style: str | None = None,
    size: int = 800,
    backend: str = "procedural",
    palette=None,
    likeness_threshold: float | None = None,
    session_id: str | None = None,
    diffusion_model: str | None = None,
    intensity: float = 1.0,
    seed: int | None = None,
    custom_style: dict | None = None,
) -> PreviewResult:
    """Run the 2D pipeline on uploaded photo bytes.

    style: one of :data:`STYLES`; None or "" → ``game_avatar``.  With ``custom_style``, the
        custom style's name for the report and the PNG metadata (the server's StyleId).
    custom_style: a style fitted from examples (:meth:`generation.style_fit.FittedStyle.to_wire`):
        its parameters, grade and background replace a built-in style's; its ``base``
        built-in style gives the QA threshold, the enhance settings and the diffusion prompt.
    text_prompt: ≤ 500 characters, read by :func:`generation.prompt.parse_prompt`.
    size: output side in pixels: 800 (default) or 1200 (high-res) on the platform;
        any 256..2048 is accepted (tests, embedding apps).
    backend: ``"procedural"`` (CPU) or ``"diffusion"`` (needs ``diffusion_model``, a local
        diffusers model directory; config ``ACS_DIFFUSION_MODEL``).
    palette: 1–4 (r, g, b) colours overriding the background's palette.
    likeness_threshold: 0..1; default 0.75 (photoreal styles) / 0.60 (stylised).
    session_id: written into the PNG metadata; also seeds the background layout
        (and the diffusion backend) when no ``seed`` is given.
    intensity: 0..1 style intensity of the first try (QA lowers it on retries).
    seed: 0..2^31-1, the seed of every random choice (background layout, diffusion
        noise) instead of the session; the PNG then carries ``acs:seed`` and no
        ``acs:session``, so the same photo, prompt, style, size and seed give the same
        PNG bytes whatever the session (nothing else in the pipeline is random, and
        nothing else of the call is written into the file).

    report: ``face_detected`` (always True: no face raises), ``face_count``,
    ``input_quality_score`` (see :func:`input_quality`), ``likeness_score`` 0..1
    (None if the face could not be embedded), ``validation_warnings``
    (player-readable strings, including the prompt words that were not used),
    ``style``, ``timings_ms`` (load, detect, validate, quality, align, segment,
    edits, style, background, enhance, qa, save, total), ``size``, ``retries``,
    ``face_coverage``, ``yaw_deg``, ``likeness_threshold``, ``backend``,
    ``pipeline_version``, and ``seed`` when one was given.

    Raises the :mod:`generation.errors` refusals (UnknownStyle, PromptTooLong,
    PromptModerated, ImageTooLarge, UnsupportedImageFormat, InvalidImage,
    ImageTooSmall, NoFaceDetected, MultipleFaces, FaceTooSmall,
    FacePoseTooExtreme, FaceFeaturesNotVisible, TooDark, PhotoRotated), ``BackendUnavailable`` (503)
    from the diffusion backend, and ValueError for out-of-range arguments.
    """
    clock = _Clock()
    fitted = None
    if custom_style is not None:
        from .style_fit import FittedStyle

        fitted = FittedStyle.from_wire(custom_style)
        style = style or "custom"
        base = fitted.base
    else:
        style = style or DEFAULT_STYLE
        if style not in STYLES:
            raise UnknownStyle(f"Unknown style '{style[:40]}'. Available styles: {', '.join(STYLES)}.")
        base = style
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    size = int(size)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be {MIN_SIZE}..{MAX_SIZE} (platform sizes {PLATFORM_SIZES}), got {size}")
    palette = _check_palette(palette)
    threshold = qa.threshold_for(base, likeness_threshold)
    intensity = float(np.clip(intensity, 0.0, 1.0))
    if seed is not None:
        seed = int(seed)
        if not 0 <= seed < 2**31:
            raise ValueError(f"seed must be within 0..2^31-1, got {seed}")
    prompt = parse_prompt(text_prompt)

    rgb = load_photo(data, max_side=max(_LOAD_MAX_SIDE, 2 * size))
    clock.lap("load")
    face = detect_face(rgb)
    clock.lap("detect")
    check = validate_face(rgb, face)
    warnings = list(check.warnings)
    clock.lap("validate")

    aligned = align_face(rgb, face.landmarks, size)
    del rgb
    clock.lap("align")
    quality, quality_warnings = input_quality(aligned.image, aligned.landmarks)
    warnings.extend(quality_warnings)
    clock.lap("quality")
    mask = person_mask(aligned.image)
    skin, _ = sample_colours(aligned.image, aligned.landmarks, mask)
    clock.lap("segment")
    edited, accessory_alpha = apply_edits(aligned.image, aligned.landmarks, mask, prompt, skin)
    if accessory_alpha is not None:
        mask = np.maximum(mask, accessory_alpha)
    _, hair = sample_colours(edited, aligned.landmarks, mask)
    if prompt.unused:
        warnings.append("These prompt words weren't used: " + ", ".join(prompt.unused))
    clock.lap("edits")

    given_seed = seed
    if seed is None:
        seed = zlib.crc32(session_id.encode()) if session_id else 0
    scene = prompt.scene or ("gradient" if prompt.background and not palette
                             else fitted.scene if fitted is not None else STYLE_SCENES[style])
    bg_colours = palette or prompt.background or (fitted.background if fitted is not None else None)
    if scene == "gradient" and bg_colours and len(bg_colours) == 1:  # one colour: a gentle light-to-dark gradient
        c = np.array(bg_colours[0], np.float64)
        bg_colours = (tuple(int(v) for v in np.clip(c * 0.8 + 255 * 0.2, 0, 255)), tuple(int(v) for v in c * 0.8))
    backdrop = render_background(scene, size, bg_colours, seed=seed)
    clock.lap("background")

    box = qa.face_box(aligned.landmarks, aligned.image.shape)
    ref = qa.reference(aligned.image, box, key=data)
    clock.lap("qa")
    tries = []
    for attempt, factor in enumerate(qa.INTENSITY_SCHEDULE[: qa.MAX_RETRIES + 1]):
        level = intensity * factor
        styled = stylize(edited, base, intensity=level, skin_rgb=skin, backend=backend,
                         diffusion_model=diffusion_model, text_prompt=text_prompt, seed=seed + attempt,
                         fitted=fitted, mask=mask)
        clock.lap("style")
        composed = composite(styled, backdrop, mask)
        clock.lap("background")
        final = enhance(composed, base)
        clock.lap("enhance")
        result = qa.check(final, ref, box, threshold)
        clock.lap("qa")
        tries.append((result, final, level))
        if result.passed:
            break
    retries = len(tries) - 1
    passed = [t for t in tries if t[0].passed]
    if passed:
        result, final, level = passed[0]
    else:
        result, final, level = max(tries, key=lambda t: (t[0].face_found, t[0].likeness or 0.0))
        if not result.face_found:
            warnings.append("We couldn't find your face in the styled picture; try another style or photo.")
        else:
            warnings.append(
                f"The styled picture looks less like you than we aim for (likeness {result.likeness:.2f}, "
                f"target {threshold:.2f}); try a clearer, front-facing photo or another style."
            )
    if ref is None:
        warnings.append("We couldn't measure how much the picture looks like you.")
    if retries and passed:
        warnings.append(f"The style was toned down to {level:.0%} to keep your likeness.")

    # A seeded preview names its seed, not its session: its bytes depend on its inputs only.
    meta = {"style": style, "pipeline_version": PIPELINE_VERSION,
            **({"session": session_id} if given_seed is None else {"seed": given_seed}),
            "likeness": result.likeness, "backend": backend}
    png = encode_png(final, meta)
    thumb = thumbnail_png(final, meta)
    clock.lap("save")
    clock.ms["total"] = round(sum(v for k, v in clock.ms.items()), 2)

    landmarks = (aligned.landmarks / np.float32(size)).astype(np.float32)
    report = {
        "face_detected": True,
        "face_count": check.face_count,
        "input_quality_score": quality,
        "likeness_score": result.likeness,
        "likeness_threshold": threshold,
        "validation_warnings": warnings,
        "style": style,
        "backend": backend,
        "size": size,
        "intensity": round(level, 3),
        "retries": retries,
        "face_coverage": check.coverage,
        "yaw_deg": check.yaw_deg,
        "pipeline_version": PIPELINE_VERSION,
        "timings_ms": clock.ms,
    }
    if given_seed is not None:
        report["seed"] = given_seed
    if fitted is not None:
        report["style_base"] = base
    return PreviewResult(png=png, thumbnail_png=thumb, report=report, landmarks=landmarks,
                         skin_rgb=skin, hair_rgb=hair)
