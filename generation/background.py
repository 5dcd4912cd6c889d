"""BgGenerate: a generated backdrop behind the person (SPEC §5).

Scenes (``kind``), each drawn procedurally at the frame size from a palette
of 1–4 sRGB colours (the style's default palette, the TextPrompt's background
colours, or the caller's ``palette`` override, in that order of precedence
from last to first):

* ``studio``   — radial studio gradient: a lit spot behind the head fading to
  the darker edge colour, plus a soft floor shadow (corporate_headshot).
* ``neon``     — dark gradient with glowing geometric outlines (triangles,
  rings, grid lines) in the palette colours (anime_character).
* ``bokeh``    — blurred gradient with out-of-focus discs of light
  (editorial_portrait).
* ``sky``      — game sky: vertical sky gradient, sun glow and soft clouds
  (game_avatar).
* ``gradient`` — plain vertical gradient (top → bottom).

The drawing is deterministic: the random layout comes from
``np.random.default_rng(seed)``.  Shapes are drawn at a quarter / half of the
frame and upsampled, since every scene is smooth or blurred (cost ≈ 5–12 ms at
800² on this machine).

:func:`composite` puts the person over the backdrop with mediapipe's selfie
segmentation (:func:`generation.face.person_mask`): the probability map is
smoothed (Gaussian σ = 2 px per 512 px, at least 1 px), remapped with a
smoothstep between 0.2 and 0.8 for a feathered edge ≈ 4 px wide at 512²
(≈ 6 px at 800²), and used as alpha.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SCENES", "STYLE_SCENES", "DEFAULT_PALETTES", "render_background", "composite", "feathered_alpha"]

RGB = tuple[int, int, int]
SCENES = ("studio", "neon", "bokeh", "sky", "gradient")
STYLE_SCENES = {
    "corporate_headshot": "studio",
    "anime_character": "neon",
    "editorial_portrait": "bokeh",
    "game_avatar": "sky",
}
DEFAULT_PALETTES: dict[str, tuple[RGB, ...]] = {
    "studio": ((214, 217, 222), (120, 127, 138)),
    "neon": ((22, 14, 48), (255, 60, 200), (40, 220, 255), (140, 80, 255)),
    "bokeh": ((70, 52, 40), (235, 190, 120), (250, 230, 190)),
    "sky": ((70, 150, 235), (185, 225, 255), (255, 255, 255)),
    "gradient": ((200, 205, 215), (110, 118, 130)),
}


def _c(rgb: RGB) -> np.ndarray:
    return np.asarray(rgb, np.float32) / 255.0


def _vertical(top: RGB, bottom: RGB, h: int, w: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    col = _c(top) * (1 - t) + _c(bottom) * t
    return np.broadcast_to(col, (h, w, 3)).copy()


def _pal(palette: tuple[RGB, ...], i: int) -> RGB:
    return palette[i % len(palette)]


def _studio(n: int, palette, rng) -> np.ndarray:
    light, dark = _c(_pal(palette, 0)), _c(_pal(palette, 1))
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    r = np.hypot(xx - 0.5, (yy - 0.38) * 1.15)
    t = np.clip(r / 0.75, 0.0, 1.0)[:, :, None] ** 1.4
    img = light * (1 - t) + dark * t
    floor = np.clip((yy - 0.8) / 0.2, 0.0, 1.0)[:, :, None]
    return img * (1 - 0.25 * floor)


def _neon(n: int, palette, rng) -> np.ndarray:
    base = _c(_pal(palette, 0))
    img = _vertical(tuple(int(v * 255 * 1.6) for v in base.clip(0, 0.6)), _pal(palette, 0), n, n)
    glow = np.zeros((n, n, 3), np.float32)
    lw = max(1, n // 120)
    colours = palette[1:] or ((255, 60, 200), (40, 220, 255))
    # perspective grid on the floor
    for i in range(-6, 7):
        x_far, x_near = int(n * (0.5 + i * 0.035)), int(n * (0.5 + i * 0.25))
        cv2.line(glow, (x_far, int(n * 0.72)), (x_near, n), _c(_pal(colours, 0)).tolist(), lw, cv2.LINE_AA)
    for j in range(5):
        y = int(n * (0.72 + 0.28 * (j / 5) ** 1.7))
        cv2.line(glow, (0, y), (n, y), _c(_pal(colours, 0)).tolist(), lw, cv2.LINE_AA)
    for i in range(7):
        col = _c(_pal(colours, i + 1)).tolist()
        cx, cy, r = rng.uniform(0.05, 0.95) * n, rng.uniform(0.05, 0.6) * n, rng.uniform(0.05, 0.16) * n
        if i % 2 == 0:
            ang = rng.uniform(0, 2 * np.pi)
            pts = np.array([[cx + r * np.cos(ang + k * 2.094), cy + r * np.sin(ang + k * 2.094)] for k in range(3)])
            cv2.polylines(glow, [pts.astype(np.int32)], True, col, lw * 2, cv2.LINE_AA)
        else:
            cv2.circle(glow, (int(cx), int(cy)), int(r), col, lw * 2, cv2.LINE_AA)
    halo = cv2.GaussianBlur(glow, (0, 0), n / 60)
    return np.clip(img + glow * 0.9 + halo * 1.6, 0.0, 1.0)


def _bokeh(n: int, palette, rng) -> np.ndarray:
    img = _vertical(_pal(palette, 0), tuple(int(v * 0.6) for v in _pal(palette, 0)), n, n)
    lights = np.zeros((n, n, 3), np.float32)
    for i in range(28):
        col = _c(_pal(palette, 1 + i % max(1, len(palette) - 1))) * rng.uniform(0.25, 0.6)
        r = int(rng.uniform(0.02, 0.07) * n)
        cv2.circle(lights, (int(rng.uniform(0, n)), int(rng.uniform(0, n))), max(1, r), col.tolist(), -1, cv2.LINE_AA)
    lights = cv2.GaussianBlur(lights, (0, 0), n / 250)
    img = cv2.GaussianBlur(img, (0, 0), n / 40)
    return np.clip(img + lights, 0.0, 1.0)


def _sky(n: int, palette, rng) -> np.ndarray:
    img = _vertical(_pal(palette, 0), _pal(palette, 1), n, n)
    cloud = _c(_pal(palette, 2)) if len(palette) > 2 else np.ones(3, np.float32)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    sun = np.clip(1.0 - np.hypot(xx - 0.82, yy - 0.16) / 0.35, 0.0, 1.0)[:, :, None] ** 2
    img = img * (1 - 0.5 * sun) + np.array([1.0, 0.97, 0.85], np.float32) * 0.5 * sun
    mask = np.zeros((n, n), np.float32)
    for _ in range(9):
        cx, cy = rng.uniform(-0.1, 1.1) * n, rng.uniform(0.05, 0.7) * n
        for _ in range(4):
            r = rng.uniform(0.04, 0.09) * n
            cv2.circle(mask, (int(cx + rng.uniform(-2, 2) * r), int(cy + rng.uniform(-0.4, 0.4) * r)), int(r), 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), n / 60)[:, :, None] * 0.85
    return img * (1 - mask) + cloud * mask


def _gradient(n: int, palette, rng) -> np.ndarray:
    return _vertical(_pal(palette, 0), _pal(palette, 1) if len(palette) > 1 else _pal(palette, 0), n, n)


_DRAW = {"studio": (_studio, 4), "neon": (_neon, 2), "bokeh": (_bokeh, 4), "sky": (_sky, 4), "gradient": (_gradient, 4)}


def render_background(kind: str, size: int, palette: tuple[RGB, ...] | list | None = None, seed: int = 0) -> np.ndarray:
    """A (size, size, 3) uint8 RGB backdrop of scene ``kind`` (see the module docstring)."""
    if kind not in _DRAW:
        raise ValueError(f"unknown background {kind!r}; expected one of {SCENES}")
    pal = tuple(tuple(int(v) for v in c) for c in (palette or DEFAULT_PALETTES[kind]))
    draw, div = _DRAW[kind]
    n = max(32, size // div)
    img = draw(n, pal, np.random.default_rng(seed)).astype(np.float32)
    img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if n != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    return img


def feathered_alpha(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32 0..1 person alpha from a segmentation probability map (feathered edge)."""
    k = max(mask.shape) / 512.0
    m = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(1.0, 2.0 * k))
    m = np.clip((m - 0.2) / 0.6, 0.0, 1.0)
    return m * m * (3 - 2 * m)


def composite(person: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Person (H, W, 3) uint8 over a background (H, W, 3) uint8 by the mask (H, W) probability → uint8 RGB."""
    alpha = feathered_alpha(mask)
    return cv2.blendLinear(person, background, alpha, 1.0 - alpha)
