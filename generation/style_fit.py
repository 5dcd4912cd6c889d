"""Custom styles: fit a procedural style from 5–30 example images (SPEC §5, "Custom styles").

Three steps, each a plain function a generation job runs (so a process pool or ``acs worker``
can run them), and one renderer hook:

1. :func:`probe_examples` — before anything is stored: every example decodes (JPEG, PNG or
   WebP, one format for the whole set, shorter side ≥ :data:`EXAMPLE_MIN_SIDE`), and for a
   portrait style at least half of them show a face.  Typed refusals (``UnreadableImage``,
   ``MixedFormats``, ``ImageTooSmall``, ``ImageTooLarge``, ``NoFaceInExamples``).
2. :func:`measure_example` — one example, at most :data:`MEASURE_SIDE` px on its longer side,
   in CIELAB (L 0..100).  The *subject* is the person (mediapipe's selfie segmentation) for a
   portrait style, else the whole frame; the *border* is the outer 8 % band (minus the
   person).  Measured:

   * colour samples: up to 3,000 subject pixels and 1,000 border pixels (Lab), drawn with a
     generator seeded by the example's bytes;
   * tone: the subject's lightness at the 21 quantiles 0, 0.05, …, 1;
   * chroma: median and 90th percentile of the subject's chroma √(a² + b²);
   * line weight: ink = dark thin strokes, the pixels 25 L units darker than the median of
     their 7-px neighbourhood (at 384 px); ``ink`` is their share of the subject (photographs
     ≈ 0.001–0.014, the built-in editorial ≈ 0.012–0.022, game_avatar ≈ 0.03, anime ≈
     0.033–0.044), ``ink_width`` their mean width 2·area / perimeter (px at 512);
   * texture: the median local standard deviation of L (5 × 5 window) over the subject's
     non-edge pixels (gradient below its 60th percentile): photographs ≈ 1.1–2, the
     built-in cel styles ≈ 0.1–1.1;
   * banding: the share of the subject's lightness histogram (1-unit bins, lightly
     smoothed) in its local peaks — high for posterised pictures;
   * background: the border's mean colours of the top and bottom thirds and its lightness
     standard deviation;
   * skin (portraits with a face): the median Lab of the face box's central cheek band.

3. :func:`fit_style` — pools the measurements into a :class:`FittedStyle`:

   * **palette**: k-means (k = :data:`PALETTE_SIZE`, k-means++ with a fixed RNG seed, so
     refitting gives the same palette) of the pooled subject samples in Lab; the
     remap strength is 0.75 when the samples sit close to their centres (a flat palette,
     mean distance ≤ 6) falling to 0.35 at ≥ 16;
   * **tone curve**: the per-quantile median of the examples' tone vectors;
   * **tint by lightness**: for L = 0, 5, …, 100 the pooled samples' median (a, b) within
     ±5 L, and how consistent it is (1 when their spread around it is ≤ 4, 0 at ≥ 20): high
     where the examples colour by lightness (a gradient map such as teal shadows and orange
     lights);
   * **chroma**: the median of the examples' median chroma;
   * **line weight** → ``line_strength`` = clip((ink − 0.008) / 0.03, 0, 1) (0 below 0.1),
     ``line_sigma`` = clip(0.45 × width − 0.2, 0.7, 2.0) px at 512;
   * **texture** → smoothing: local σ ≤ 0.6 → 3 bilateral passes at σ_color 45, ≥ 2 → 1
     pass at 18, linear between;
   * **banding** → lightness ``levels``: none below 0.42 (photographs measure ≈ 0.27–0.36),
     else 10 down to 5 at 0.7, their edges harder the higher it is;
   * **background**: a plain vertical gradient (top → bottom colours) when the borders are
     calm (L σ < 9), else bokeh in the border's k-means colours (neon when they are dark and
     saturated);
   * **skin**: skin_keep 0.7 when the examples' skin looks natural (hue 20°–85°, chroma
     8–45), down to 0.15 when none does (a style that paints faces teal wants them teal);
   * **base**: the built-in style whose enhance settings, QA threshold and diffusion prompt
     are used: anime_character (lines and bands), game_avatar (bands or lines),
     editorial_portrait (neither, textured) or corporate_headshot (neither, smooth).

4. :meth:`FittedStyle.grade` — applied by the procedural renderer after the smoothing, before
   banding: lightness matched to the tone curve (subject quantiles → target quantiles, 85 %),
   chroma scaled so the subject's median chroma meets the target (× 0.5..2.5), then every
   pixel pulled toward its nearest palette colour (a soft nearest: weights exp(−Δ²/2·10²) over
   the Lab distances Δ beyond the nearest), whose (a, b) give way to the tint at the pixel's
   lightness by that tint's consistency; a, b move by the strength, L by 0.35 × it.

The example images themselves are never kept by this module: a style is its
:meth:`FittedStyle.to_wire` dict (JSON, ≈ 2 KB).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from schemas.errors import InputRejected

from .photo import MAX_BYTES, MAX_PIXELS, load_photo, sniff_format
from .stylize import STYLE_PARAMS, StyleParams

__all__ = ["FittedStyle", "probe_examples", "measure_example", "fit_style", "FIT_VERSION", "MIN_EXAMPLES",
           "MAX_EXAMPLES", "EXAMPLE_MIN_SIDE", "MEASURE_SIDE", "PALETTE_SIZE"]

FIT_VERSION = 1
MIN_EXAMPLES, MAX_EXAMPLES = 5, 30
EXAMPLE_MIN_SIDE = 128
MEASURE_SIDE = 384
PALETTE_SIZE = 6
TONE_QUANTILES = np.linspace(0.0, 1.0, 21)
TINT_LEVELS = np.linspace(0.0, 100.0, 21)
_SUBJECT_SAMPLES, _BORDER_SAMPLES = 3000, 1000
_BORDER = 0.08
TONE_STRENGTH = 0.85
#: A pixel is ink when it is this much darker (L units) than the median of its 7-px neighbourhood.
_INK_DEPTH = 25.0


def _lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → float32 Lab (L 0..100, a/b about −128..127)."""
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


def _lab_to_rgb8(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(np.asarray(lab, np.float32).reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(-1, 3)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- probe


def _load(data: bytes, index: int, max_side: int) -> np.ndarray:
    from .errors import ImageTooLarge, ImageTooSmall

    try:
        return load_photo(data, min_side=EXAMPLE_MIN_SIDE, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS,
                          max_side=max_side)
    except ImageTooSmall:
        raise InputRejected(f"Example {index + 1} is too small: each example needs at least {EXAMPLE_MIN_SIDE} "
                            "pixels on its shorter side.", code="ImageTooSmall", status=422) from None
    except ImageTooLarge as e:
        raise InputRejected(f"Example {index + 1}: {e.message}", code="ImageTooLarge", status=413) from None
    except InputRejected:
        raise InputRejected(f"Example {index + 1} is not a readable JPEG, PNG or WebP image.",
                            code="UnreadableImage", status=422) from None


def _faces(rgb: np.ndarray) -> list[tuple[float, tuple[float, float, float, float]]]:
    from .face import detect_faces

    return detect_faces(rgb, tiles=False)


def probe_examples(images: list[bytes], portraits: bool = True) -> list[dict]:
    """Check a whole example set before it is stored (see the module docstring).

    Returns one ``{"format", "width", "height", "faces"}`` per example (``faces``: None when
    not looked for).  Raises :class:`InputRejected` with codes ``UnreadableImage``,
    ``MixedFormats``, ``ImageTooSmall``, ``ImageTooLarge`` or ``NoFaceInExamples``.
    """
    formats = [sniff_format(x) for x in images]
    for i, f in enumerate(formats):
        if f is None:
            raise InputRejected(f"Example {i + 1} is not a JPEG, PNG or WebP image.", code="UnreadableImage",
                                status=422)
    if len(set(formats)) > 1:
        raise InputRejected("The examples must all be one format (JPEG, PNG or WebP); this set mixes "
                            + " and ".join(sorted({f.upper() for f in formats})) + ".", code="MixedFormats",
                            status=422)
    out = []
    for i, data in enumerate(images):
        rgb = _load(data, i, MEASURE_SIDE)
        faces = len(_faces(rgb)) if portraits else None
        out.append({"format": formats[i], "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "faces": faces})
    if portraits:
        need = math.ceil(len(images) / 2)
        without = [i + 1 for i, o in enumerate(out) if not o["faces"]]
        if len(images) - len(without) < need:
            raise InputRejected(
                f"A portrait style is fitted from faces, but only {len(images) - len(without)} of the "
                f"{len(images)} examples show one (none found in example(s) {', '.join(map(str, without))}); at "
                f"least {need} must. Send portraits, or set Portraits to false for a style fitted from whole "
                "pictures.", code="NoFaceInExamples", status=422)
    return out


# ----------------------------------------------------------------------------- measure


def _sample(rng: np.random.Generator, pixels: np.ndarray, n: int) -> np.ndarray:
    if len(pixels) > n:
        pixels = pixels[rng.choice(len(pixels), n, replace=False)]
    return np.ascontiguousarray(pixels, np.float32)


def _ink(L: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink mask (dark thin strokes) of a lightness image and the strokes' mean width (px)."""
    k = max(3, int(round(7 * max(L.shape) / MEASURE_SIDE)) | 1)
    local = cv2.medianBlur(np.clip(L * 2.55, 0, 255).astype(np.uint8), k).astype(np.float32) / 2.55
    ink = (local - L > _INK_DEPTH).astype(np.uint8)
    area = float(ink.sum())
    if area < 1:
        return ink.astype(bool), 0.0
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return ink.astype(bool), 2.0 * area / max(perimeter, 1.0)


def _banding(L: np.ndarray) -> float:
    """Share of the lightness histogram held by its local peaks (±1 bin): posterised → high."""
    hist = np.bincount(np.clip(L, 0, 100).astype(np.int32), minlength=101)[:101].astype(np.float64)
    hist = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
    total = hist.sum()
    if total <= 0:
        return 0.0
    peaks = (hist > np.roll(hist, 1)) & (hist >= np.roll(hist, -1)) & (hist > 0.01 * total)
    mass = 0.0
    for i in np.flatnonzero(peaks):
        mass += hist[max(0, i - 1): i + 2].sum()
    return float(min(1.0, mass / total))


def measure_example(data: bytes, portraits: bool = True) -> dict:
    """Measurements of one example (see the module docstring); plain values and bytes."""
    rgb = _load(data, 0, MEASURE_SIDE)
    h, w = rgb.shape[:2]
    lab = _lab(rgb)
    L = lab[:, :, 0]
    rng = np.random.default_rng(zlib.crc32(data))

    subject = np.ones((h, w), bool)
    skin = None
    if portraits:
        from .face import person_mask

        person = person_mask(rgb) > 0.5
        if 0.05 < person.mean() < 0.95:
            subject = person
        faces = _faces(rgb)
        if faces:
            x0, y0, x1, y1 = faces[0][1]
            bw, bh = x1 - x0, y1 - y0
            cx0, cx1 = int(max(0, x0 + 0.2 * bw)), int(min(w, x1 - 0.2 * bw))
            cy0, cy1 = int(max(0, y0 + 0.45 * bh)), int(min(h, y0 + 0.75 * bh))
            if cx1 - cx0 >= 3 and cy1 - cy0 >= 3:
                skin = np.median(lab[cy0:cy1, cx0:cx1].reshape(-1, 3), axis=0).tolist()
    band = np.zeros((h, w), bool)
    bh_, bw_ = max(2, int(round(_BORDER * h))), max(2, int(round(_BORDER * w)))
    band[:bh_], band[-bh_:], band[:, :bw_], band[:, -bw_:] = True, True, True, True
    border = band & ~subject if (band & ~subject).sum() >= 0.3 * band.sum() else band

    sub_lab = lab[subject]
    Ls = sub_lab[:, 0]
    chroma = np.hypot(sub_lab[:, 1], sub_lab[:, 2])

    ink, width = _ink(L)
    gx, gy = cv2.Sobel(L, cv2.CV_32F, 1, 0), cv2.Sobel(L, cv2.CV_32F, 0, 1)
    grad = np.hypot(gx, gy)
    mean = cv2.boxFilter(L, -1, (5, 5))
    var = np.maximum(cv2.boxFilter(L * L, -1, (5, 5)) - mean * mean, 0.0)
    calm = subject & (grad <= np.percentile(grad[subject], 60))
    texture = float(np.median(np.sqrt(var[calm]))) if calm.any() else 0.0

    thirds = h // 3
    top = border.copy()
    top[thirds:] = False
    bottom = border.copy()
    bottom[: h - thirds] = False
    bl = lab[border]
    return {
        "version": FIT_VERSION,
        "subject": _sample(rng, sub_lab, _SUBJECT_SAMPLES).tobytes(),
        "border": _sample(rng, bl, _BORDER_SAMPLES).tobytes(),
        "tone": [round(float(v), 3) for v in np.quantile(Ls, TONE_QUANTILES)],
        "chroma": [round(float(np.median(chroma)), 3), round(float(np.percentile(chroma, 90)), 3)],
        "ink": round(float(ink[subject].mean()), 5),
        "ink_width": round(width * 512.0 / max(h, w), 3),
        "texture": round(texture, 4),
        "banding": round(_banding(Ls), 4),
        "border_top": [round(float(v), 3) for v in (lab[top].mean(0) if top.any() else bl.mean(0))],
        "border_bottom": [round(float(v), 3) for v in (lab[bottom].mean(0) if bottom.any() else bl.mean(0))],
        "border_std": round(float(bl[:, 0].std()), 3),
        "skin": None if skin is None else [round(float(v), 3) for v in skin],
        "size": [int(w), int(h)],
    }


# ----------------------------------------------------------------------------- fit


def _tint_by_lightness(samples: np.ndarray) -> np.ndarray:
    """(21, 3): for lightness 0, 5, …, 100 the median (a, b) of the samples within ±5 L and
    their consistency, 1 − clip((spread − 4) / 16, 0, 1), spread the median distance of their
    (a, b) to that median (bins with under 0.5 % of the samples borrow from the nearest filled)."""
    out = np.zeros((len(TINT_LEVELS), 3), np.float32)
    filled = np.zeros(len(TINT_LEVELS), bool)
    for i, level in enumerate(TINT_LEVELS):
        sel = samples[np.abs(samples[:, 0] - level) <= 5.0]
        if len(sel) < max(20, 0.005 * len(samples)):
            continue
        ab = np.median(sel[:, 1:], axis=0)
        spread = float(np.median(np.linalg.norm(sel[:, 1:] - ab, axis=1)))
        out[i] = (ab[0], ab[1], 1.0 - np.clip((spread - 4.0) / 16.0, 0.0, 1.0))
        filled[i] = True
    if not filled.any():
        return out
    idx = np.flatnonzero(filled)
    for i in np.flatnonzero(~filled):
        out[i] = out[idx[np.argmin(np.abs(idx - i))]]
    return out



def _kmeans(samples: np.ndarray, k: int, weight=(1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres (k, 3) Lab, shares (k,), labels) of Lab samples; deterministic (fixed RNG seed)."""
    w = np.asarray(weight, np.float32)
    k = max(1, min(k, len(samples)))
    cv2.setRNGSeed(0x5EED)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 60, 0.05)
    _, labels, centres = cv2.kmeans(np.ascontiguousarray(samples * w, np.float32), k, None, criteria, 3,
                                    cv2.KMEANS_PP_CENTERS)
    labels = labels.reshape(-1)
    shares = np.bincount(labels, minlength=k).astype(np.float64) / len(labels)
    order = np.argsort(-shares, kind="stable")
    remap = np.empty(k, np.int64)
    remap[order] = np.arange(k)
    return (centres / w)[order], shares[order], remap[labels]


def _natural_skin(lab) -> bool:
    hue = math.degrees(math.atan2(lab[2], lab[1]))
    return 20.0 <= hue <= 85.0 and 8.0 <= math.hypot(lab[1], lab[2]) <= 45.0


def _base_style(line_strength: float, levels: int, texture: float) -> str:
    if line_strength >= 0.5 and levels > 0:
        return "anime_character" if line_strength >= 0.9 else "game_avatar"
    if levels > 0 or line_strength >= 0.5:
        return "game_avatar"
    return "editorial_portrait" if texture >= 1.2 else "corporate_headshot"


def _rgb_list(lab: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in c] for c in _lab_to_rgb8(lab)]


def fit_style(measurements: list[dict], name: str = "") -> dict:
    """Pool the examples' measurements into a style (see the module docstring); returns
    :meth:`FittedStyle.to_wire`."""
    if not measurements:
        raise ValueError("no measurements to fit")
    ms = measurements
    med = lambda key: float(np.median([m[key] for m in ms]))  # noqa: E731
    subject = np.concatenate([np.frombuffer(m["subject"], np.float32).reshape(-1, 3) for m in ms])
    border = np.concatenate([np.frombuffer(m["border"], np.float32).reshape(-1, 3) for m in ms])

    palette, shares, labels = _kmeans(subject, PALETTE_SIZE)
    spread = float(np.mean(np.linalg.norm(subject - palette[labels], axis=1)))
    strength = float(np.interp(spread, [6.0, 16.0], [0.75, 0.35]))
    tone = np.maximum.accumulate(np.median(np.array([m["tone"] for m in ms], np.float64), axis=0))
    tint = _tint_by_lightness(subject)
    chroma = float(np.median([m["chroma"][0] for m in ms]))

    ink, width, texture, banding = med("ink"), med("ink_width"), med("texture"), med("banding")
    line_strength = float(np.clip((ink - 0.008) / 0.03, 0.0, 1.0))
    if line_strength < 0.1:
        line_strength = 0.0
    u = float(np.clip((2.0 - texture) / 1.4, 0.0, 1.0))  # 0: photo texture … 1: flat
    if banding < 0.42:
        levels, sharpness = 0, 0.0
    else:
        levels = int(round(float(np.interp(banding, [0.42, 0.7], [10.0, 5.0]))))
        sharpness = float(np.interp(banding, [0.42, 0.7], [3.0, 9.0]))
    skins = [m["skin"] for m in ms if m.get("skin")]
    natural = sum(_natural_skin(s) for s in skins) / len(skins) if skins else 0.6
    params = StyleParams(
        passes=1 + int(round(2 * u)), sigma_color=round(18.0 + 27.0 * u, 2), sigma_space=round(4.0 + 2.0 * u, 2),
        levels=levels, quant_sharpness=round(sharpness, 2), chroma_step=6.0 if levels and texture < 1.0 else 0.0,
        saturation=1.0, skin_keep=round(0.15 + 0.55 * natural, 3), line_strength=round(line_strength, 3),
        line_sigma=round(float(np.clip(0.45 * width - 0.2, 0.7, 2.0)), 3),
        line_threshold=round(-0.006 + 0.004 * line_strength, 5), contrast=1.0, brightness=0.0, warmth=0.0,
        vignette=0.0,
    )

    border_std = med("border_std")
    if border_std < 9.0:
        scene = "gradient"
        top = np.median(np.array([m["border_top"] for m in ms]), axis=0)
        bottom = np.median(np.array([m["border_bottom"] for m in ms]), axis=0)
        background = _rgb_list(np.array([top, bottom], np.float32))
    else:
        colours, _, _ = _kmeans(border, 4, weight=(1.0, 1.0, 1.0))
        dark = float(np.median(border[:, 0])) < 30.0 and float(np.percentile(np.hypot(border[:, 1], border[:, 2]),
                                                                              90)) > 25.0
        scene = "neon" if dark else "bokeh"
        if dark:  # the darkest colour is the night behind the glow
            colours = colours[np.argsort(colours[:, 0], kind="stable")]
        background = _rgb_list(colours)
    return FittedStyle(
        name=name, base=_base_style(line_strength, levels, texture), params=params,
        palette=palette.astype(np.float32), shares=shares.astype(np.float32), strength=round(strength, 3),
        tone=tone.astype(np.float32), tint=tint, chroma=round(chroma, 3), scene=scene,
        background=tuple(tuple(c) for c in background),
        measured={"examples": len(ms), "ink": round(ink, 5), "line_width": round(width, 3),
                  "texture": round(texture, 4), "banding": round(banding, 4), "palette_spread": round(spread, 3),
                  "border_std": round(border_std, 3), "natural_skin": round(natural, 3), "faces": len(skins)},
    ).to_wire()


# ----------------------------------------------------------------------------- the fitted style


@dataclass(frozen=True, eq=False)
class FittedStyle:
    """A style fitted by :func:`fit_style`: procedural parameters plus a grade (tone curve,
    chroma target, palette remap) and a background.  ``base``: the built-in style whose
    enhance settings, QA threshold and diffusion prompt it uses."""

    name: str
    base: str
    params: StyleParams
    palette: np.ndarray  # (k, 3) Lab
    shares: np.ndarray  # (k,) share of the examples' subject pixels nearest each colour
    strength: float  # 0..1 pull toward the palette
    tone: np.ndarray  # (21,) target lightness at TONE_QUANTILES
    tint: np.ndarray  # (21, 3) per lightness TINT_LEVELS: median a, b and how consistent (0..1) they are
    chroma: float  # target median chroma
    scene: str  # generation.background scene
    background: tuple[tuple[int, int, int], ...]
    measured: dict

    def to_wire(self) -> dict:
        """A JSON-able dict (what the server stores)."""
        return {
            "version": FIT_VERSION, "name": self.name, "base": self.base,
            "params": {k: (float(v) if isinstance(v, float) else v) for k, v in vars(self.params).items()},
            "palette": [[round(float(v), 3) for v in c] for c in self.palette],
            "palette_rgb": _rgb_list(self.palette),
            "shares": [round(float(v), 4) for v in self.shares],
            "strength": self.strength, "tone": [round(float(v), 3) for v in self.tone],
            "tint": [[round(float(v), 3) for v in row] for row in self.tint], "chroma": self.chroma,
            "scene": self.scene, "background": [list(c) for c in self.background], "measured": dict(self.measured),
        }

    @classmethod
    def from_wire(cls, d: dict) -> "FittedStyle":
        if not isinstance(d, dict) or d.get("version") != FIT_VERSION:
            raise ValueError("not a fitted style of this version")
        if d["base"] not in STYLE_PARAMS:
            raise ValueError(f"unknown base style {d['base']!r}")
        return cls(name=str(d.get("name", "")), base=d["base"], params=StyleParams(**d["params"]),
                   palette=np.asarray(d["palette"], np.float32).reshape(-1, 3),
                   shares=np.asarray(d["shares"], np.float32), strength=float(d["strength"]),
                   tone=np.asarray(d["tone"], np.float32), tint=np.asarray(d["tint"], np.float32).reshape(-1, 3),
                   chroma=float(d["chroma"]), scene=d["scene"],
                   background=tuple(tuple(int(v) for v in c) for c in d["background"]),
                   measured=dict(d.get("measured") or {}))

    def grade(self, L: np.ndarray, a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Move Lab planes (float32, same shape) toward the examples' look: tone curve, chroma,
        palette.  ``mask``: the subject (person probability, same shape), which the tone and
        chroma statistics are taken over."""
        sel = mask > 0.5 if mask is not None and 0.05 < float((mask > 0.5).mean()) < 0.95 else np.ones(L.shape, bool)
        src = np.quantile(L[sel], TONE_QUANTILES).astype(np.float64)
        src = np.maximum.accumulate(src + np.arange(len(src)) * 1e-4)
        L = L + TONE_STRENGTH * (np.interp(L, src, self.tone).astype(np.float32) - L)
        median = float(np.median(np.hypot(a[sel], b[sel])))
        gain = float(np.clip(self.chroma / max(median, 3.0), 0.5, 2.5))
        a, b = a * gain, b * gain
        # the soft nearest palette colour (Lab distance), then a pull toward it
        pix = np.stack([L, a, b], axis=-1).reshape(-1, 3)
        d2 = ((pix[:, None, :] - self.palette[None, :, :]) ** 2).sum(-1)
        w = np.exp(-(d2 - d2.min(axis=1, keepdims=True)) / (2 * 10.0**2))
        target = (w @ self.palette) / w.sum(axis=1, keepdims=True)
        target = target.reshape(L.shape + (3,)).astype(np.float32)
        # where the examples colour by lightness (a gradient map: teal shadows, orange lights),
        # their colour at this lightness wins over the nearest palette colour
        ta, tb, tc = (np.interp(L, TINT_LEVELS, self.tint[:, i]).astype(np.float32) for i in range(3))
        target[..., 1] += tc * (ta - target[..., 1])
        target[..., 2] += tc * (tb - target[..., 2])
        s = np.float32(self.strength)
        a = a + s * (target[..., 1] - a)
        b = b + s * (target[..., 2] - b)
        L = L + 0.35 * s * (target[..., 0] - L)
        return L.astype(np.float32), a.astype(np.float32), b.astype(np.float32)

    def grade_rgb(self, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """:meth:`grade` on an (H, W, 3) uint8 RGB image (the diffusion backend's output)."""
        lab = _lab(image)
        L, a, b = self.grade(*cv2.split(lab), mask)
        out = cv2.cvtColor(cv2.merge([np.clip(L, 0, 100), a, b]), cv2.COLOR_Lab2RGB)
        return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
