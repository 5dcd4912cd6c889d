"""DetailEnhance: sharpening and tone correction tuned per style (SPEC §5).

On the composited (N, N, 3) uint8 RGB frame:

1. **Tone** — CLAHE (contrast-limited adaptive histogram equalisation) on the
   CIELAB lightness, 8×8 tiles, ``clahe_clip`` (0 = off), blended in at
   ``clahe_mix``; then a gamma on lightness (``gamma`` < 1 brightens the
   mid-tones).
2. **Sharpening** — unsharp mask on lightness:
   ``L' = L + amount · (L − Gaussian_σ(L))``, applied only where
   ``|L − Gaussian_σ(L)| > threshold`` (0..255 units) so flat areas and
   quantised colour bands do not gain noise.  σ is given for a 512-px frame
   and scaled with it.

Working on lightness only leaves hue and the skin tone untouched.  Cost at
800² on this machine: ≈ 10–14 ms (two colour conversions, one CLAHE, one
Gaussian).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["EnhanceParams", "ENHANCE_PARAMS", "enhance"]


@dataclass(frozen=True)
class EnhanceParams:
    clahe_clip: float  # CLAHE clip limit; 0 disables the step
    clahe_mix: float  # 0..1 share of the equalised lightness
    gamma: float  # lightness gamma (1 = none)
    sharpen_amount: float  # unsharp-mask gain
    sharpen_sigma: float  # Gaussian sigma, px at 512
    sharpen_threshold: float  # minimum |detail| in 0..255 lightness units


ENHANCE_PARAMS: dict[str, EnhanceParams] = {
    # photoreal: crisp detail, gentle local contrast
    "corporate_headshot": EnhanceParams(clahe_clip=1.6, clahe_mix=0.5, gamma=0.96, sharpen_amount=0.7,
                                        sharpen_sigma=1.2, sharpen_threshold=2.0),
    # editorial: punchy local contrast, fine sharpening
    "editorial_portrait": EnhanceParams(clahe_clip=2.2, clahe_mix=0.6, gamma=1.0, sharpen_amount=0.8,
                                        sharpen_sigma=1.0, sharpen_threshold=2.0),
    # cel styles: no equalisation (it would break flat bands), crisp edges only
    "game_avatar": EnhanceParams(clahe_clip=0.0, clahe_mix=0.0, gamma=0.97, sharpen_amount=0.5,
                                 sharpen_sigma=1.5, sharpen_threshold=6.0),
    "anime_character": EnhanceParams(clahe_clip=0.0, clahe_mix=0.0, gamma=0.95, sharpen_amount=0.6,
                                     sharpen_sigma=1.5, sharpen_threshold=8.0),
}


def enhance(image: np.ndarray, style: str) -> np.ndarray:
    """Tone-correct and sharpen an (N, N, 3) uint8 RGB image for ``style``; returns a new uint8 RGB array."""
    p = ENHANCE_PARAMS[style]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    L = lab[:, :, 0]
    if p.clahe_clip > 0 and p.clahe_mix > 0:
        eq = cv2.createCLAHE(clipLimit=p.clahe_clip, tileGridSize=(8, 8)).apply(L)
        L = cv2.addWeighted(L, 1.0 - p.clahe_mix, eq, p.clahe_mix, 0.0)
    Lf = L.astype(np.float32)
    if p.gamma != 1.0:
        lut = (255.0 * (np.arange(256, dtype=np.float32) / 255.0) ** p.gamma).astype(np.float32)
        Lf = lut[L]
    if p.sharpen_amount > 0:
        sigma = p.sharpen_sigma * max(image.shape[:2]) / 512.0
        detail = Lf - cv2.GaussianBlur(Lf, (0, 0), sigma)
        detail[np.abs(detail) < p.sharpen_threshold] = 0.0
        Lf = Lf + p.sharpen_amount * detail
    lab[:, :, 0] = np.clip(Lf + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
