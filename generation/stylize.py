"""StyleApply: two backends behind one interface (SPEC §5).

``procedural`` (default, CPU) — non-photorealistic rendering of an aligned
(N, N, 3) uint8 RGB face crop with OpenCV/numpy:

1. **Edge-preserving smoothing** — ``passes`` rounds of ``cv2.bilateralFilter``
   on a copy at most ``WORK_SIDE`` (512) px wide, upsampled back (bicubic).
   The smoothing removes texture anyway, so the reduced resolution does not
   show, and it is the stage's main cost: at 800² one 7-px pass costs ≈ 45 ms
   on this 2-core machine, at 512² ≈ 18 ms.
2. **Colour quantisation** in CIELAB (at the working size) — lightness snapped
   to ``levels`` bands with Winnemöller's soft (tanh) step, chroma (a, b) to
   multiples of ``chroma_step`` and scaled by ``saturation``.
3. **Skin-tone-preserving palette** — pixels near the sampled skin colour
   (weight ``exp(−ΔE_ab² / 2·14²)`` from the a/b distance to it) keep
   ``skin_keep`` of their original chroma, so the style's saturation and
   chroma steps do not shift a player's skin tone.
4. **Line art** — XDoG edges (difference of Gaussians, soft threshold) of the
   smoothed grey image upsampled to the full frame, with the Gaussians at
   full-frame scale, multiplied in as ink at ``line_strength``.
5. **Grade** — contrast about mid-grey, brightness, warmth (Lab b), vignette.
6. **Intensity** 0..1 — blend between the input (0) and the rendering (1); the
   knob QA turns down when likeness suffers.

Spatial parameters are given for a 512-px frame and scaled with the frame.
The background is not touched here (see :mod:`generation.background`).

A custom style (:mod:`generation.style_fit`, fitted from example images) renders the same
way with its fitted :class:`StyleParams` and adds a grade right after step 1: lightness
matched to the examples' tone curve, chroma to theirs, colours pulled toward their palette.

``diffusion`` — :func:`generation.diffusion.stylize_diffusion` (diffusers
img2img from the local model directory ``diffusion_model``, config
``ACS_DIFFUSION_MODEL``), with the style's text template plus the player's
TextPrompt as the prompt and ``strength = DIFFUSION_STRENGTH × intensity``.
It raises ``BackendUnavailable`` (503) when torch/diffusers or the model are
missing; it is imported only when selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

__all__ = [
    "StyleParams",
    "STYLE_PARAMS",
    "STYLES",
    "DEFAULT_STYLE",
    "PHOTOREAL_STYLES",
    "STYLE_PROMPTS",
    "BACKENDS",
    "StyleBackend",
    "ProceduralBackend",
    "DiffusionBackend",
    "stylize",
    "WORK_SIDE",
]

RGB = tuple[int, int, int]
WORK_SIDE = 512
DIFFUSION_STRENGTH = 0.55


@dataclass(frozen=True)
class StyleParams:
    """One style's rendering parameters (spatial values for a 512-px frame)."""

    passes: int  # bilateral filter rounds
    sigma_color: float  # bilateral range sigma, 0..255 units
    sigma_space: float  # bilateral spatial sigma, px
    levels: int  # lightness bands; 0 = no lightness posterisation
    quant_sharpness: float  # tanh steepness of the band edges (≈3 soft … 10 hard)
    chroma_step: float  # a/b quantisation step in Lab units; 0 = none
    saturation: float  # chroma gain
    skin_keep: float  # 0..1 share of the original chroma kept on skin-coloured pixels
    line_strength: float  # ink opacity 0..1
    line_sigma: float  # XDoG inner Gaussian sigma, px
    line_threshold: float  # XDoG epsilon: lower = fewer lines
    contrast: float  # gain about mid-grey
    brightness: float  # added to L (0..100)
    warmth: float  # added to Lab b (yellow +, blue -)
    vignette: float  # darkening at the corners, 0..1


STYLE_PARAMS: dict[str, StyleParams] = {
    # Bold, friendly cel look: flat colour bands, firm outlines, lively colour.
    "game_avatar": StyleParams(
        passes=2, sigma_color=35, sigma_space=5, levels=7, quant_sharpness=6.0, chroma_step=6,
        saturation=1.3, skin_keep=0.6, line_strength=0.85, line_sigma=1.0, line_threshold=-0.004,
        contrast=1.08, brightness=2.0, warmth=2.0, vignette=0.0,
    ),
    # Retouched photo: gentle smoothing, no bands, no ink.
    "corporate_headshot": StyleParams(
        passes=1, sigma_color=22, sigma_space=4, levels=0, quant_sharpness=0.0, chroma_step=0,
        saturation=0.95, skin_keep=0.8, line_strength=0.0, line_sigma=1.0, line_threshold=0.0,
        contrast=1.06, brightness=3.0, warmth=1.5, vignette=0.0,
    ),
    # Anime cel shading: very flat, few hard bands, saturated, heavy clean lines.
    "anime_character": StyleParams(
        passes=3, sigma_color=45, sigma_space=6, levels=5, quant_sharpness=9.0, chroma_step=10,
        saturation=1.45, skin_keep=0.5, line_strength=1.0, line_sigma=1.3, line_threshold=-0.002,
        contrast=1.0, brightness=6.0, warmth=0.0, vignette=0.0,
    ),
    # Magazine portrait: muted warm grade, strong contrast, fine ink, vignette.
    "editorial_portrait": StyleParams(
        passes=1, sigma_color=28, sigma_space=4, levels=12, quant_sharpness=3.0, chroma_step=0,
        saturation=0.7, skin_keep=0.7, line_strength=0.4, line_sigma=0.8, line_threshold=-0.006,
        contrast=1.25, brightness=-2.0, warmth=6.0, vignette=0.45,
    ),
}
STYLES: tuple[str, ...] = tuple(STYLE_PARAMS)
DEFAULT_STYLE = "game_avatar"
#: Styles whose output should stay close to a photo (stricter QA likeness threshold).
PHOTOREAL_STYLES = frozenset({"corporate_headshot", "editorial_portrait"})

#: Text templates for the diffusion backend (the player's TextPrompt is appended).
STYLE_PROMPTS = {
    "game_avatar": "a stylized 3d game avatar portrait, clean cel shading, vibrant colours, same person",
    "corporate_headshot": "a professional corporate headshot photo, soft studio light, sharp focus, same person",
    "anime_character": "an anime character portrait, cel shading, clean line art, same person",
    "editorial_portrait": "an editorial magazine portrait photo, dramatic light, film grain, same person",
}


def _xdog(lightness: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    """Ink coverage 0..1 (1 = line) from lightness (H, W) float32 0..1 — XDoG soft threshold."""
    g1 = cv2.GaussianBlur(lightness, (0, 0), sigma)
    g2 = cv2.GaussianBlur(lightness, (0, 0), sigma * 1.6)
    d = g1 - 0.98 * g2
    return np.where(d >= threshold, 0.0, -np.tanh(120.0 * (d - threshold))).astype(np.float32)


class StyleBackend(Protocol):
    """A StyleApply backend: renders an aligned (N, N, 3) uint8 RGB face crop in a style."""

    name: str

    def render(self, image: np.ndarray, style: str, *, intensity: float = 1.0,
               skin_rgb: RGB | None = None, text_prompt: str | None = None, fitted=None,
               mask: np.ndarray | None = None) -> np.ndarray: ...


class ProceduralBackend:
    """CPU rendering with OpenCV/numpy (see the module docstring)."""

    name = "procedural"

    def render(self, image: np.ndarray, style: str, *, intensity: float = 1.0,
               skin_rgb: RGB | None = None, text_prompt: str | None = None, fitted=None,
               mask: np.ndarray | None = None) -> np.ndarray:
        """(N, N, 3) uint8 RGB → same shape uint8 RGB; ``text_prompt`` is applied earlier (prompt edits).

        ``fitted``: a custom style (:class:`generation.style_fit.FittedStyle`): its parameters
        replace ``style``'s and its grade runs right after the smoothing; ``mask``: the person
        probability (N, N), which the grade takes its statistics over."""
        p = fitted.params if fitted is not None else STYLE_PARAMS[style]
        h, w = image.shape[:2]
        k_full = max(h, w) / 512.0
        f = min(1.0, WORK_SIDE / max(h, w))
        work = image if f == 1.0 else cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        k = max(work.shape[:2]) / 512.0
        sm = work
        d = max(3, int(round(7 * k)) | 1)
        for _ in range(p.passes):
            sm = cv2.bilateralFilter(sm, d, p.sigma_color, p.sigma_space * k)
        lab = cv2.cvtColor(sm.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)
        L, a, b = cv2.split(lab)  # L 0..100, a/b about -100..100
        a0, b0 = a.copy(), b.copy()
        if fitted is not None:
            small = None if mask is None else cv2.resize(mask.astype(np.float32), L.shape[::-1],
                                                         interpolation=cv2.INTER_AREA)
            L, a, b = fitted.grade(L, a, b, small)
        if p.levels > 0:
            step = 100.0 / p.levels
            q = np.round(L / step) * step
            L = q + (step / 2) * np.tanh(p.quant_sharpness * (L - q) / step)
        if p.chroma_step > 0:
            a = np.round(a / p.chroma_step) * p.chroma_step
            b = np.round(b / p.chroma_step) * p.chroma_step
        a = a * p.saturation
        b = b * p.saturation + p.warmth
        if skin_rgb is not None and p.skin_keep > 0:
            s = cv2.cvtColor(np.array([[skin_rgb]], np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
            wgt = np.exp(-((a0 - s[1]) ** 2 + (b0 - s[2]) ** 2) / (2 * 14.0**2)) * p.skin_keep
            a = a * (1 - wgt) + a0 * wgt
            b = b * (1 - wgt) + b0 * wgt
        L = (L - 50.0) * p.contrast + 50.0 + p.brightness
        out = np.clip(cv2.cvtColor(cv2.merge([np.clip(L, 0, 100), a, b]), cv2.COLOR_Lab2RGB), 0.0, 1.0)
        if f != 1.0:
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        if p.line_strength > 0:
            grey = cv2.cvtColor(sm, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1.0 / 255.0)
            if f != 1.0:
                grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_CUBIC)
            ink = p.line_strength * _xdog(grey, p.line_sigma * k_full, p.line_threshold)
            out *= (1.0 - ink * 0.88)[:, :, None]
        if p.vignette > 0:
            yy, xx = np.ogrid[0:h, 0:w]
            r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
            out *= (1.0 - p.vignette * np.clip(r2 - 0.35, 0.0, 1.0) ** 1.5).astype(np.float32)[:, :, None]
        intensity = float(np.clip(intensity, 0.0, 1.0))
        if intensity < 1.0:
            out = out * intensity + image.astype(np.float32) * ((1.0 - intensity) / 255.0)
        return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class DiffusionBackend:
    """diffusers img2img from a local model directory (see :mod:`generation.diffusion`)."""

    name = "diffusion"

    def __init__(self, model_dir: str | None, seed: int = 0):
        self.model_dir = model_dir
        self.seed = seed

    def render(self, image: np.ndarray, style: str, *, intensity: float = 1.0,
               skin_rgb: RGB | None = None, text_prompt: str | None = None, fitted=None,
               mask: np.ndarray | None = None) -> np.ndarray:
        from .diffusion import BackendUnavailable, stylize_diffusion

        if not self.model_dir:
            raise BackendUnavailable(
                "The diffusion backend needs a model directory (ACS_DIFFUSION_MODEL); none is configured."
            )
        prompt = STYLE_PROMPTS[style] + (f", {text_prompt}" if text_prompt else "")
        strength = max(0.05, DIFFUSION_STRENGTH * float(np.clip(intensity, 0.0, 1.0)))
        out = stylize_diffusion(image, prompt=prompt, model_dir=self.model_dir, strength=strength, seed=self.seed)
        if out.shape != image.shape:
            out = cv2.resize(out, image.shape[1::-1], interpolation=cv2.INTER_CUBIC)
        if fitted is not None:  # a custom style's colours and tone, over the model's rendering
            out = fitted.grade_rgb(out, mask)
        return out


BACKENDS = ("procedural", "diffusion")
_PROCEDURAL = ProceduralBackend()


def stylize(
    image: np.ndarray,
    style: str = DEFAULT_STYLE,
    *,
    intensity: float = 1.0,
    skin_rgb: RGB | None = None,
    backend: str = "procedural",
    diffusion_model: str | None = None,
    text_prompt: str | None = None,
    seed: int = 0,
    fitted=None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Render an aligned (N, N, 3) uint8 RGB crop in ``style`` with the named backend.

    ``fitted``: a custom style (:class:`generation.style_fit.FittedStyle`; ``style`` is then its
    base); ``mask``: the person probability (N, N) its grade measures the subject by."""
    if style not in STYLE_PARAMS:
        raise KeyError(style)
    if backend == "procedural":
        impl: StyleBackend = _PROCEDURAL
    elif backend == "diffusion":
        impl = DiffusionBackend(diffusion_model, seed)
    else:
        raise ValueError(f"unknown style backend {backend!r}; expected one of {BACKENDS}")
    if fitted is None:
        return impl.render(image, style, intensity=intensity, skin_rgb=skin_rgb, text_prompt=text_prompt)
    return impl.render(image, style, intensity=intensity, skin_rgb=skin_rgb, text_prompt=text_prompt,
                       fitted=fitted, mask=mask)
