"""Hair: read the player's hairstyle off the preview, pick one of the built-in styles,
and build it as a closed, textured accessory mesh around the avatar's own skull.

Three steps, each usable on its own:

* :func:`observe_hair` measures the hair in the square preview: hair pixels are person
  pixels (mediapipe selfie mask) outside the face oval (FaceMesh ``FACE_OVAL``) that
  are not skin-coloured (CIELAB distance to the cheeks' median) and lie close to the
  hair colour seeded above the forehead or beside the temples, kept only where they
  connect to those seed bands (so clothing below is not counted).  A cap or hat is
  recognised when the band above the forehead and the bands beside the temples hold
  clearly different colours: the colour then comes from the hair showing below it
  (temples, sides, behind the ears), with skin — lit or shaded, by its
  rg-chromaticity — cartoon ink and background bleed left out, from the lit half of
  those strands; light, nearly neutral colours lose the preview's warm cast (grey
  hair stays grey).  ``ear_cover`` / ``side_reach`` tell a short bob over the ears
  from a crop.  Every
  measurement is in face units (face height = landmark 10 → chin 152, face width =
  234 → 454): :class:`HairObservation`.
* :func:`choose_style` turns an observation and/or the text prompt into a
  :class:`HairSpec` (style + colour + shape numbers); prompt words override the
  photo; ``bald`` gives ``None``.  Styles: :data:`STYLES`.
* :func:`build_hair` builds the mesh from the head's positions / triangles (model
  studs, +Y up, facing −Z): rays from a point inside the skull sample the scalp on a
  (θ around +Y) × (φ from the crown) grid; each of the 40 columns is a profile
  (ρ, y) that follows the scalp, pushed out by a style thickness (more at the crown,
  tapering at the hairline), down to a hairline height that depends on the angle from
  the front (forehead, receding temples, sideburn, above the ear, nape); hanging
  styles leave the scalp at its widest point and fall straight (with a slight flare)
  to their length, leaving the face open; crown lift and side fullness round the
  silhouette off, per-column lock jitter makes fringes (arched, rounding into the
  temples) and tips pointed and uneven, shells thin out towards the hairline and
  hanging tips taper to almost nothing, bobs swell and turn under, curly hair swells
  into a round cloud with a cellular curl texture.  Outer and inner sheets on the same
  (column × row) grid are joined along the hairline by a strip, so the shell is
  closed; a bun is a bumpy ellipsoid, a ponytail a tapered tube, each closed on its
  own.  UVs run u around the head and v from crown to tips, so the procedural texture
  (anisotropic streaks along v, darker roots, lighter tips) follows the hair flow.

Everything is numpy/OpenCV and seeded: the same inputs give the same bytes, in
≈ 40 ms for the mesh and texture (2 CPUs; half of it the ray casting).
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as sp_fft

from generation.edits import FACE_OVAL
from generation.pixels import robust_median
from meshes.editable_mesh import EditableMesh
from meshes.normals import smooth_normals
from meshes.ops import (
    add_triangle_op,
    add_vertex_op,
    batch_set_values_op,
    remove_face_op,
    set_uv_op,
    set_vertex_bone_weights_op,
    write_pixels_op,
)

__all__ = ["HairObservation", "HairSpec", "HairMesh", "STYLES", "HAIR_COLOURS", "MAX_TRIANGLES",
           "observe_hair", "choose_style", "parse_hair_prompt", "build_hair", "head_frame", "spec_for_style",
           "restyle_ops"]

#: The built-in styles (``bald`` is "no hair": :func:`choose_style` returns None).
STYLES = ("buzz", "short_crop", "side_part", "bob", "long_straight", "curly_volume", "bun", "ponytail")
#: Accessory triangle budget (Roblox's AccessoryMaxTriangles).
MAX_TRIANGLES = 4000
TEXTURE_SIZE = 512

#: Hair colour words → rgb (natural shades rather than the clothing palette's).
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "platinum": (230, 215, 180), "blonde": (214, 176, 110), "blond": (214, 176, 110),
    "golden": (200, 150, 70), "strawberry": (200, 120, 80), "ginger": (176, 82, 38),
    "auburn": (125, 52, 32), "copper": (170, 90, 50), "red": (160, 50, 35), "redhead": (160, 55, 35),
    "chestnut": (110, 60, 35), "brunette": (85, 55, 35), "brown": (90, 58, 36), "black": (26, 22, 22),
    "grey": (150, 148, 145), "gray": (150, 148, 145), "silver": (195, 195, 198), "white": (228, 226, 220),
    "pink": (230, 130, 170), "purple": (120, 70, 160), "violet": (130, 80, 170), "blue": (50, 90, 180),
    "green": (60, 140, 80), "teal": (40, 130, 130), "orange": (220, 120, 40),
}
_DEFAULT_COLOUR = (60, 40, 30)

# MediaPipe FaceMesh indices (the face oval is generation.edits.FACE_OVAL).
_CHEEKS = (50, 101, 205, 280, 330, 425, 118, 347)
_BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
_TOP, _CHIN, _LEFT, _RIGHT, _SUBNASALE = 10, 152, 234, 454, 2


# =========================================================================== observe


@dataclass(frozen=True)
class HairObservation:
    """Hair measured on a preview, in face units.

    bald: no hair on the crown or beside the temples.
    top_height: hair above landmark 10 (top of the forehead), face heights.
    side_width: hair beyond the face oval at temple height, per side, face widths.
    length_below_ears: how far hair falls below the ear lobes (≈ the nose base),
        face heights (0: above; ≈ 0.4: to the chin; ≥ 1: past the shoulders).
    fringe: fraction 0..1 of the forehead (brows → landmark 10) covered by hair.
    fringe_tilt: −1..1, which side the fringe covers more (+: the image's right,
        the subject's left); a side-swept fringe has |tilt| large.
    curliness: 0..1 from the texture (low orientation coherence = curly); a hint.
    color_rgb: robust median colour of the hair pixels.
    hat: a cap or hat covers the crown (top_height is then unknown, set to 0.25).
    coverage: fraction of the band above the forehead that is hair (or hat).
    ear_cover: fraction 0..1 of the ear zone (just outside the face oval, brows →
        nose base) that is hair: ≳ 0.5 means the hair falls over the ears.
    side_reach: how far down the hair beside the face reaches, contiguous from the
        temples, in face heights below landmark 10 (the ear lobes sit at ≈ 0.6).
    """

    bald: bool
    top_height: float
    side_width: float
    length_below_ears: float
    fringe: float
    fringe_tilt: float
    curliness: float
    color_rgb: tuple[int, int, int]
    hat: bool = False
    coverage: float = 0.0
    ear_cover: float = 0.0
    side_reach: float = 0.0


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2Lab).astype(np.float32)


def _lab_dist(lab: np.ndarray, ref: np.ndarray) -> np.ndarray:
    d = lab - np.asarray(ref, np.float32)
    return np.sqrt(0.5 * d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)


def _under_hat_hair(rgb: np.ndarray, lab: np.ndarray, person: np.ndarray, oval: np.ndarray, u: np.ndarray,
                    v: np.ndarray, skin_lab: np.ndarray, skin_chrom: np.ndarray, hat_lab: np.ndarray,
                    fw: float) -> np.ndarray | None:
    """Hair showing below a hat (temples, sides, behind the ears, nape): person pixels
    outside the face oval that are neither hat, cartoon ink, background bleed nor skin.
    Skin in the stylised preview is any pixel of the cheeks' rg-chromaticity that is
    not much darker than them (lit or shaded skin and ears), so grey or white hair
    survives and shaded ears do not; of what is left, the half least like skin.
    Returns the mask, or None when too little is left."""
    Ls = lab[..., 0] * (100.0 / 255.0)
    chroma = np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    s_chroma = math.hypot(float(skin_lab[1]) - 128.0, float(skin_lab[2]) - 128.0)
    body = cv2.erode(person.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    region = body & ~oval & (np.abs(u) > 0.36) & (np.abs(u) < 0.95) & (v > -0.95) & (v < 0.12)
    rgbf = rgb.astype(np.float32) + 1.0
    cd = np.linalg.norm(rgbf[..., :2] / rgbf.sum(2, keepdims=True) - skin_chrom, axis=2)
    skinlike = (_lab_dist(lab, skin_lab) < 22.0) | ((cd < 0.04) & (Ls > 0.45 * float(skin_lab[0]) * (100 / 255)))
    sel = region & (Ls > 22.0) & ~skinlike & (_lab_dist(lab, hat_lab) > 30.0) & (chroma < 1.1 * s_chroma)
    # Background bleeding through the silhouette's edge (sky, studio backdrop).
    bg = ~person & (np.abs(u) > 0.7) & (np.abs(u) < 1.6) & (v > -0.6) & (v < 0.5)
    if bg.sum() > 50:
        sel &= _lab_dist(lab, np.median(lab[bg], axis=0)) > 25.0
    if sel.sum() < max(40, 0.0004 * fw * fw):
        return None
    return sel & (cd >= np.percentile(cd[sel], 50))


def observe_hair(rgb: np.ndarray, landmarks: np.ndarray, person: np.ndarray | None = None) -> HairObservation:
    """Measure the hair of an aligned preview (see module docstring).

    rgb: (H, W, 3) uint8; landmarks: (≥468, 3) FaceMesh points, x/y in 0..1 of the
    image; person: (H, W) person probability, or None to run mediapipe's selfie
    segmentation (:func:`generation.face.person_mask`).
    """
    rgb = np.asarray(rgb, np.uint8)
    h, w = rgb.shape[:2]
    L = np.asarray(landmarks, np.float64)[:, :2] * [w, h]
    if person is None:
        from generation.face import person_mask
        person = person_mask(rgb)
    person = np.asarray(person, np.float32) > 0.5

    top, chin = L[_TOP], L[_CHIN]
    fh = max(float(np.linalg.norm(chin - top)), 8.0)
    fw = max(float(np.linalg.norm(L[_RIGHT] - L[_LEFT])), 8.0)
    up = (top - chin) / fh
    right = np.array([-up[1], up[0]])
    if right @ (L[_RIGHT] - L[_LEFT]) < 0:
        right = -right
    centre = (L[_LEFT] + L[_RIGHT]) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Face coordinates: u across (face widths from the centre line), v up (face heights above landmark 10).
    u = ((xx - centre[0]) * right[0] + (yy - centre[1]) * right[1]) / fw
    v = ((xx - top[0]) * up[0] + (yy - top[1]) * up[1]) / fh

    lab = _lab(rgb)
    rad = max(2, int(round(0.04 * fw)))
    disc = np.zeros((h, w), np.uint8)
    for x, y in L[list(_CHEEKS)]:
        cv2.circle(disc, (int(round(x)), int(round(y))), rad, 1, -1)
    skin_lab = np.median(lab[disc > 0], axis=0) if disc.any() else lab[int(h / 2), int(w / 2)]
    skin_d = _lab_dist(lab, skin_lab)
    not_skin = skin_d > 20.0

    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(L[list(FACE_OVAL)]).astype(np.int32)], 1)
    face_tight = oval > 0
    k = max(3, int(round(0.06 * fw)) | 1)
    face = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    roi = (np.abs(u) < 1.4) & (v > -1.4) & (v < 1.0)
    cand = person & not_skin & roi

    top_band = (np.abs(u) < 0.3) & (v > 0.04) & (v < 0.3)
    side_band = (np.abs(u) > 0.42) & (np.abs(u) < 0.75) & (v > -0.55) & (v < -0.05) & ~face
    top_c, side_c = cand & top_band & ~face, cand & side_band
    n_top, n_side = max(int(top_band.sum()), 1), max(int(side_band.sum()), 1)
    cov_top, cov_side = top_c.sum() / n_top, side_c.sum() / n_side
    top_lab = np.median(lab[top_c], axis=0) if top_c.sum() > 20 else None
    side_lab = np.median(lab[side_c], axis=0) if side_c.sum() > 20 else None

    hat = False
    if top_lab is not None and side_lab is not None and cov_top > 0.3:
        other = side_c & (_lab_dist(lab, top_lab) > 35.0) & (skin_d > 32.0)
        if other.sum() > max(40, 0.2 * side_c.sum()):
            side_lab = np.median(lab[other], axis=0)
        # Lit hair is lighter on top than in the shade beside the temples, with the same hue;
        # a hat is darker than the hair showing below it, or of another hue altogether.
        lighter_sides = (side_lab[0] - top_lab[0]) * (100.0 / 255.0) > 18.0
        hue = float(np.hypot(side_lab[1] - top_lab[1], side_lab[2] - top_lab[2]))
        plausible = side_lab[2] - 128.0 > -12.0  # not sky blue: the sides are hair, not background
        hat = bool(plausible and (lighter_sides or hue > 30.0))
    seed_lab = side_lab if hat else (top_lab if top_lab is not None else side_lab)
    if seed_lab is None or (cov_top < 0.2 and cov_side < 0.12):
        colour = robust_median(rgb[top_band & person]) if (top_band & person).any() else tuple(
            int(c) for c in cv2.cvtColor(np.uint8([[skin_lab]]), cv2.COLOR_Lab2RGB)[0, 0])
        return HairObservation(bald=True, top_height=0.0, side_width=0.0, length_below_ears=0.0, fringe=0.0,
                               fringe_tilt=0.0, curliness=0.0, color_rgb=colour, hat=False,
                               coverage=round(float(cov_top), 3))

    near = near_seed = cand & (_lab_dist(lab, seed_lab) < 32.0)
    if not hat and side_lab is not None and cov_side > 0.3:  # shaded sides darker than the lit top
        near = near | (cand & (_lab_dist(lab, side_lab) < 32.0))
    if hat:
        near &= _lab_dist(lab, top_lab) > 25.0
    hair = near & ~face
    # Keep the components that touch the seed bands (drops clothing and background specks).
    n, lbl = cv2.connectedComponents(hair.astype(np.uint8), connectivity=8)
    seeds = np.unique(lbl[hair & (top_band | side_band)])
    hair = np.isin(lbl, seeds[seeds > 0])
    under = None
    if hat:
        hair &= ~(cand & (_lab_dist(lab, top_lab) < 25.0))
        rgbf = rgb[disc > 0].astype(np.float32) + 1.0 if disc.any() else np.float32([[3, 2, 1]])
        skin_chrom = np.median(rgbf[:, :2] / rgbf.sum(1, keepdims=True), axis=0)
        under = _under_hat_hair(rgb, lab, person, face_tight, u, v, skin_lab, skin_chrom, top_lab, fw)
        if under is not None:
            hair |= under

    # Top height: highest hair above landmark 10 in the central columns.
    centre_hair = hair & (np.abs(u) < 0.25) & (v > 0)
    if hat:
        top_height = 0.25
    elif centre_hair.sum() > 10:
        top_height = float(np.percentile(v[centre_hair], 98))
    else:
        top_height = 0.0
    # Side width: outermost hair per row at temple height, beyond the oval's half width.
    ext = []
    for sgn in (-1.0, 1.0):
        sel = hair & (sgn * u > 0.3) & (v > -0.45) & (v < 0.05)
        if sel.sum() > 10:
            ext.append(max(0.0, float(np.percentile(sgn * u[sel], 95)) - 0.5))
        else:
            ext.append(0.0)
    side_width = float(np.mean(ext))
    # Length: contiguous rows of hair beside the face going down from the ear lobes.
    ear_v = float(((L[_SUBNASALE] - top) @ up) / fh)
    low = ear_v
    for sgn in (-1.0, 1.0):
        strip = hair & (sgn * u > 0.35) & (sgn * u < 1.0)
        band_w = max(1.0, 0.65 * fw)
        cur = ear_v
        for a in np.arange(ear_v, -1.4, -0.03):
            sel = strip & (v <= a) & (v > a - 0.03)
            rows_px = max(1.0, 0.03 * fh)
            if sel.sum() / (band_w * rows_px) < 0.12:
                break
            cur = a - 0.03
        low = min(low, cur)
    length = max(0.0, ear_v - low)
    # Side reach: rows of hair beside the face going down from the temples (same density rule).
    reach = []
    for sgn in (-1.0, 1.0):
        strip = hair & (sgn * u > 0.35) & (sgn * u < 1.0)
        band_w, rows_px = max(1.0, 0.65 * fw), max(1.0, 0.03 * fh)
        cur = -0.1
        for a in np.arange(-0.1, -1.4, -0.03):
            if (strip & (v <= a) & (v > a - 0.03)).sum() / (band_w * rows_px) < 0.12:
                break
            cur = a - 0.03
        reach.append(-cur)
    side_reach = float(np.mean(reach))
    # Ear cover: the zone just outside the oval from the brows to the nose base.
    ear_zone = ~face_tight & person & (np.abs(u) > 0.42) & (np.abs(u) < 0.66) & (v < -0.2) & (v > ear_v + 0.02)
    ear_cover = float((hair & ear_zone).sum() / max(int(ear_zone.sum()), 1))
    # Fringe: forehead between the brows and landmark 10 (inside the tight oval) covered by hair.
    brow_v = float(np.mean(((L[list(_BROWS)] - top) @ up) / fh))
    fore = face_tight & (v < -0.02) & (v > brow_v + 0.04) & (np.abs(u) < 0.4)
    fringe_px = near & fore
    nf = max(int(fore.sum()), 1)
    fringe = float(fringe_px.sum() / nf)
    left_f = (fringe_px & (u < 0)).sum() / max(int((fore & (u < 0)).sum()), 1)
    right_f = (fringe_px & (u >= 0)).sum() / max(int((fore & (u >= 0)).sum()), 1)
    tilt = float((right_f - left_f) / max(left_f + right_f, 1e-6)) if fringe > 0.03 else 0.0

    # Curliness: 1 − orientation coherence of the hair texture (structure tensor).
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    s = max(1.0, 0.012 * fw)
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), s) for a in (gx * gx, gy * gy, gx * gy))
    lam = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2)
    coh = lam / np.maximum(jxx + jyy, 1e-3)
    inner = cv2.erode(hair.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    energy = (jxx + jyy)[inner]
    if inner.sum() > 50 and energy.sum() > 0:
        c = float(np.sum(coh[inner] * energy) / energy.sum())
        curliness = float(np.clip((0.6 - c) / 0.35, 0.0, 1.0))
    else:
        curliness = 0.0

    if under is not None:  # thin strands blended with shadow and skin: their lit half is the colour
        colour = robust_median(rgb[under], (50, 95))
    else:
        lit = hair & near_seed
        colour = robust_median(rgb[lit if lit.sum() > 20 else hair]) if hair.sum() > 20 else tuple(
        int(c) for c in cv2.cvtColor(np.uint8([[seed_lab]]), cv2.COLOR_Lab2RGB)[0, 0])
    return HairObservation(
        bald=False, top_height=round(max(0.0, top_height), 4), side_width=round(side_width, 4),
        length_below_ears=round(length, 4), fringe=round(fringe, 4), fringe_tilt=round(tilt, 4),
        curliness=round(curliness, 4), color_rgb=_neutralise(colour), hat=hat, coverage=round(float(cov_top), 3),
        ear_cover=round(ear_cover, 3), side_reach=round(side_reach, 4))


def _neutralise(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Light, nearly neutral hair is grey or white: the preview's warm cast (skin
    bleeding into thin grey hair) is taken out, so it does not read as pink-beige."""
    lab = _lab(np.uint8([[rgb]]))[0, 0]
    L = lab[0] * (100.0 / 255.0)
    c = math.hypot(lab[1] - 128.0, lab[2] - 128.0)
    hue = math.degrees(math.atan2(lab[2] - 128.0, lab[1] - 128.0))
    if L < 55.0 or c > 20.0 or not -30.0 < hue < 70.0:  # dark, coloured, or yellow (blonde, platinum)
        return tuple(int(x) for x in rgb)
    k = 0.2 + 0.8 * _smoothstep((c - 12.0) / 8.0)  # chroma kept: 20 % (≤ 12) … 100 % (≥ 20)
    lab[1:] = 128.0 + (lab[1:] - 128.0) * k
    out = cv2.cvtColor(np.clip(np.round(lab), 0, 255).astype(np.uint8)[None, None], cv2.COLOR_Lab2RGB)[0, 0]
    return tuple(int(x) for x in out)


# =========================================================================== choose


@dataclass(frozen=True)
class HairSpec:
    """What to build.  style: one of :data:`STYLES`; color_rgb: 0..255;
    length: how far hanging styles reach below the nose tip, in head heights
    (nose tip → crown); volume: 0.5..1.6 thickness multiplier; fringe: 0..1 how far
    the front comes down the forehead towards the brows; part_side: +1 / −1 the
    side (model +X / −X) a side part sits on; curl: 0..1 bumpiness; seed: texture
    and bump noise seed."""

    style: str
    color_rgb: tuple[int, int, int]
    length: float = 0.0
    volume: float = 1.0
    fringe: float = 0.0
    part_side: int = 1
    curl: float = 0.0
    seed: int = 0


_STYLE_WORDS: tuple[tuple[str, str], ...] = (
    (r"\b(?:bald|no hair|hairless|shaved head|clean[- ]shaven head)\b", "bald"),
    (r"\b(?:ponytail|pony tail|pony-tail)\b", "ponytail"),
    (r"\b(?:bun|top ?knot|updo|chignon)\b", "bun"),
    (r"\b(?:buzz(?:ed|cut)?|buzz cut|crew ?cut|shaved|skinhead|very short)\b", "buzz"),
    (r"\b(?:curly|curls|afro|coily|kinky|wavy|perm(?:ed)?)\b", "curly_volume"),
    (r"\b(?:bob|bobbed|lob)\b", "bob"),
    (r"\b(?:side[- ]?part(?:ed)?|parted|swept|comb[- ]?over|quiff)\b", "side_part"),
    (r"\blong\b(?:\s+[a-z]+){0,2}\s+hair\b|\bhair\s+(?:is\s+)?long\b|\blong[- ]haired\b|\bshoulder[- ]length\b", "long_straight"),
    (r"\bshort\b(?:\s+[a-z]+){0,2}\s+hair\b|\bpixie\b|\bcrop(?:ped)?\b|\bshort[- ]haired\b", "short_crop"),
)
_COLOUR_RE = "|".join(sorted(HAIR_COLOURS, key=len, reverse=True))
_COLOUR_HAIR = re.compile(r"\b(light |dark )?(" + _COLOUR_RE + r")(?:[- ]haired|(?:\s+[a-z]+){0,2}\s+hair)\b")
_HAIR_COLOUR = re.compile(r"\bhair\s+(?:is\s+|colou?r(?:ed)?\s+)?(light |dark )?(" + _COLOUR_RE + r")\b")
_BARE_COLOUR = re.compile(r"\b(light |dark )?(blonde|blond|brunette|redhead|platinum|ginger|auburn)\b")


def parse_hair_prompt(text: str | None) -> tuple[str | None, tuple[int, int, int] | None]:
    """``(style or None, rgb or None)`` from the hair words of a prompt.  ``style``
    may be ``"bald"``; a colour counts only next to "hair" ("long blond hair",
    "hair dyed pink" is not matched, "hair is pink" is) or as a hair-only word
    (blonde, brunette, redhead, ginger, auburn, platinum)."""
    if not text:
        return None, None
    t = text.lower()
    style = None
    for pat, name in _STYLE_WORDS:
        if re.search(pat, t):
            style = name
            break
    colour = None
    for rx in (_COLOUR_HAIR, _HAIR_COLOUR, _BARE_COLOUR):
        m = rx.search(t)
        if m:
            word = re.findall(r"\b(?:" + _COLOUR_RE + r")\b", m.group(0))[-1] if rx is _COLOUR_HAIR else m.group(2)
            c = np.array(HAIR_COLOURS[word], np.float64)
            if m.group(1) == "light ":
                c = c + (255 - c) * 0.3
            elif m.group(1) == "dark ":
                c = c * 0.6
            colour = tuple(int(round(x)) for x in np.clip(c, 0, 255))
            break
    return style, colour


_DEFAULTS = {  # style → (length, volume, fringe)
    "buzz": (0.0, 1.0, 0.0), "short_crop": (0.0, 1.0, 0.25), "side_part": (0.0, 1.0, 0.55),
    "bob": (0.55, 1.0, 0.6), "long_straight": (1.45, 1.0, 0.3), "curly_volume": (0.7, 1.0, 0.35),
    "bun": (0.0, 1.0, 0.0), "ponytail": (0.0, 1.0, 0.0),
}


def choose_style(obs: HairObservation | None, text_prompt: str | None = None,
                 hair_rgb=None) -> HairSpec | None:
    """Pick the style and its numbers; ``None`` for bald.

    Prompt style words win over the photo ("bald", "buzz"/"shaved", "short hair",
    "side part", "bob", "long … hair", "curly"/"afro", "bun", "ponytail"), then the
    observation: bald → None; hair past the ear lobes by ≥ 0.55 face heights → long
    (curly when the texture says so), ≥ 0.15 → bob; curly texture with volume →
    curly; full sides over the ears (``ear_cover`` ≥ 0.4, ``side_width`` ≥ 0.1,
    ``side_reach`` ≥ 0.35) → a short bob to the ear lobes; thin on top and close at
    the sides → buzz; a side-swept fringe → side part;
    else short crop.  Colour: a prompt colour, else the observed colour, else
    ``hair_rgb``, else dark brown.
    """
    p_style, p_colour = parse_hair_prompt(text_prompt)
    if p_style == "bald":
        return None
    if p_style is None and obs is not None and obs.bald:
        return None
    style = p_style
    if style is None:
        if obs is None:
            style = "short_crop"
        elif obs.length_below_ears >= 0.55:
            style = "curly_volume" if obs.curliness > 0.6 else "long_straight"
        elif obs.curliness > 0.6 and obs.side_width > 0.12:
            style = "curly_volume"
        elif obs.length_below_ears >= 0.15 and not obs.hat:
            style = "bob"
        elif (not obs.hat and obs.ear_cover >= 0.4 and obs.side_width >= 0.1
              and obs.side_reach >= 0.35):
            style = "bob"  # a short, full bob: over the ears, down to about the ear lobes
        elif obs.top_height < 0.07 and obs.side_width < 0.05 and not obs.hat:
            style = "buzz"
        elif obs.fringe > 0.15 and abs(obs.fringe_tilt) > 0.3:
            style = "side_part"
        else:
            style = "short_crop"
    length, volume, fringe = _DEFAULTS[style]
    part_side, curl = 1, 0.0
    if obs is not None and not obs.bald:
        volume = float(np.clip(0.75 + 1.5 * obs.top_height + 1.2 * obs.side_width, 0.7, 1.5)) if not obs.hat else 1.0
        if style in ("short_crop", "side_part", "bob", "long_straight", "curly_volume"):
            fringe = float(np.clip(0.5 * fringe + 0.8 * obs.fringe, 0.0, 1.0))
        if style == "bob" and obs.length_below_ears >= 0.15:
            length = float(np.clip(0.3 + 0.9 * obs.length_below_ears, 0.35, 0.8))
        elif style == "bob":
            # Ear-covering short bob: the tips end about the ear lobes (≈ the nose tip level).
            length = float(np.clip(0.14 + 0.8 * (obs.side_reach - 0.45), 0.1, 0.3))
        elif style in ("long_straight", "curly_volume") and obs.length_below_ears > 0.15:
            length = float(np.clip(0.3 + 1.0 * obs.length_below_ears, 0.6, 1.9))
        if obs.fringe_tilt:
            # Fringe covering the image's right (subject's left, model −X) → part on model +X.
            part_side = 1 if obs.fringe_tilt > 0 else -1
        curl = float(obs.curliness)
    if style == "curly_volume":
        curl = max(curl, 0.7)
        volume = max(volume, 1.1)
    if p_colour is not None:
        colour = p_colour
    elif obs is not None and not obs.bald:
        colour = tuple(int(c) for c in obs.color_rgb)
    elif hair_rgb is not None:
        colour = tuple(int(c) for c in hair_rgb)
    else:
        colour = _DEFAULT_COLOUR
    seed = zlib.crc32(f"{style}:{colour}".encode()) & 0xFFFF
    return HairSpec(style=style, color_rgb=colour, length=round(length, 4), volume=round(volume, 4),
                    fringe=round(fringe, 4), part_side=part_side, curl=round(curl, 4), seed=seed)


# =========================================================================== build


@dataclass(frozen=True, eq=False)
class HairMesh:
    """positions (k,3) float32 studs (model space), triangles (t,3) int32, uvs (k,2)
    float32 (v down, as images), normals (k,3) float32 unit, texture (S,S,3) uint8.
    The first ``shell_vertices`` vertices are the shell, the same grid in every style;
    the rest are the bun or ponytail."""

    positions: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray
    normals: np.ndarray
    texture: np.ndarray
    style: str = ""
    shell_vertices: int = 0


@dataclass(frozen=True)
class _Frame:
    centre: np.ndarray  # (3,) inside the skull at eye height
    y_top: float
    y_nose: float
    z_nose: float
    H: float  # nose tip → crown
    a_ear: float  # angle of the ear from the front, radians (about +Y through centre)
    z_back: float
    half_width: float

    def level(self, f) -> np.ndarray:
        """Heights ``y_nose + f·H``."""
        return self.y_nose + np.asarray(f, np.float64) * self.H


def head_frame(head_positions: np.ndarray) -> _Frame:
    """Landmarks of a MakeHuman head found from its geometry: crown (max y), nose tip
    (most −Z point of the upper head), ears (widest points near eye height)."""
    P = np.asarray(head_positions, np.float64)
    y0, y1 = float(P[:, 1].min()), float(P[:, 1].max())
    upper = P[P[:, 1] > y0 + 0.3 * (y1 - y0)]
    i = int(np.argmin(upper[:, 2]))
    y_nose, z_nose = float(upper[i, 1]), float(upper[i, 2])
    H = max(y1 - y_nose, 1e-3)
    band = P[(P[:, 1] > y_nose - 0.2 * H) & (P[:, 1] < y_nose + 0.45 * H)]
    xm = np.abs(band[:, 0]).max()
    ear = band[np.abs(band[:, 0]) > 0.92 * xm]
    z_ear = float(np.median(ear[:, 2]))
    y_c = y_nose + 0.24 * H
    lvl = P[np.abs(P[:, 1] - (y_nose + 0.5 * H)) < 0.08 * H]
    z_back = float(lvl[:, 2].max()) if len(lvl) else float(P[:, 2].max())
    z_front = float(lvl[:, 2].min()) if len(lvl) else z_nose
    z_c = 0.5 * (z_back + z_front)
    a_ear = math.atan2(xm, z_c - z_ear)
    return _Frame(np.array([0.0, y_c, z_c]), y1, y_nose, z_nose, H, a_ear, z_back, float(xm))


def _scalp_radii(P: np.ndarray, T: np.ndarray, C: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Farthest hit of rays from C along dirs (n,3) on the triangle soup; NaN when missed.
    For a common origin the edge tests are three matrix products (signed volumes)."""
    a, b, c = (P[T[:, k]] - C for k in range(3))
    nab, nbc, nca = np.cross(a, b), np.cross(b, c), np.cross(c, a)
    vol = np.einsum("ij,ij->i", a, nbc)
    D = dirs.astype(np.float32)
    s1, s2, s3 = D @ nab.T.astype(np.float32), D @ nbc.T.astype(np.float32), D @ nca.T.astype(np.float32)
    hit = (np.minimum(np.minimum(s1, s2), s3) >= 0) | (np.maximum(np.maximum(s1, s2), s3) <= 0)
    den = s1 + s2 + s3
    den[~hit] = np.inf
    t = vol.astype(np.float32)[None, :] / den  # 0 where missed
    r = t.max(axis=1)
    return np.where(r > 0, r, np.nan)


def _smooth_cols(a: np.ndarray, passes: int = 1) -> np.ndarray:
    """[1 2 1]/4 smoothing along axis 0, circular (columns go round the head)."""
    for _ in range(passes):
        a = 0.25 * np.roll(a, 1, 0) + 0.5 * a + 0.25 * np.roll(a, -1, 0)
    return a


def _smooth_rows(a: np.ndarray, passes: int = 1) -> np.ndarray:
    for _ in range(passes):
        p = np.concatenate([a[:, :1], a, a[:, -1:]], axis=1)
        a = 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]
    return a


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


_NC = 40  # columns around the head
_NR = 22  # rows from the crown to the tips (row 0 is the pole)
_NPHI = 44
_PHI_MAX = math.radians(150.0)


def _locks(nc: int, seed: int) -> np.ndarray:
    """Per column −1..1: irregular lock lengths, so tips and fringes are not one hard cut."""
    j = np.arange(nc)
    ph = (seed % 97) * 0.31
    return np.clip(0.55 * np.cos(np.pi * j) + 0.45 * np.sin(2.4 * j + ph) + 0.25 * np.sin(0.9 * j + 2 * ph), -1, 1)


def _hairline(spec: HairSpec, f: _Frame, a: np.ndarray, x_side: np.ndarray,
              locks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per column (angle ``a`` from the front, radians; ``x_side`` ±1; ``locks``
    −1..1 lock-length jitter): the lowest height of the hair and whether the column
    hangs free from the scalp."""
    locks = np.zeros_like(a) if locks is None else locks
    ad = np.degrees(a)
    ear = math.degrees(f.a_ear)
    # Short hairline in H above the nose tip: forehead, receding temples, sideburn,
    # over the ear, behind the ear, nape.
    pts_a = [0, 22, 38, 52, ear - 22, ear - 12, ear - 4, ear + 6, ear + 20, 135, 155, 180]
    pts_y = [0.72, 0.74, 0.80, 0.66, 0.40, 0.30, 0.42, 0.46, 0.12, -0.10, -0.16, -0.18]
    # Smoothed across columns: no sharp notch or step at the temples.
    y = _smooth_cols(np.interp(ad, pts_a, pts_y), 2)
    if spec.style in ("bob", "long_straight", "curly_volume"):
        y = np.minimum(y, 0.72)  # hanging styles: no receding-temple notch beside the fringe
    fr = spec.fringe
    brow = 0.46  # keep fringes above the brows (≈ 0.38 H) with a margin
    # An arched fringe: longest in the middle, rising in a curve to the temples
    # (no square corners where it meets the sides).
    front_w = _smoothstep((52.0 - ad) / 42.0)
    if spec.style == "side_part":
        # Swept from the part across the forehead: longer on the side away from the part.
        away = _smoothstep(0.5 - 0.5 * spec.part_side * x_side * np.sin(a) / max(np.sin(np.radians(40)), 1e-6))
        reach = fr * (0.45 + 0.55 * away)
        y = y - front_w * reach * (0.72 - brow)
    elif fr > 0:
        y = y - front_w * fr * (0.72 - brow)
    if fr > 0 and spec.style not in ("bun", "ponytail", "buzz"):
        # Pointed, tapering fringe locks: alternate columns shorter (only ever upwards),
        # so the edge reads as strands, not a blunt straight cut.
        y = y + front_w * min(fr, 1.0) * 0.11 * (0.5 + 0.5 * locks)
    if spec.style in ("bun", "ponytail", "buzz"):
        y = np.interp(ad, pts_a, pts_y)
    hang = np.zeros_like(ad, bool)
    if spec.style in ("bob", "long_straight", "curly_volume"):
        tip = -spec.length
        if spec.style == "long_straight":
            # Over the shoulders the sides stop at the collarbones; the back falls to full length.
            tip = np.maximum(tip, -0.75) + (tip - np.maximum(tip, -0.75) - 0.1) * _smoothstep((ad - 95.0) / 50.0)
        if spec.style == "bob":
            tip = tip + 0.12 * _smoothstep((ad - 80.0) / 100.0)  # a little shorter at the nape
        tip = tip + (0.06 if spec.style != "curly_volume" else 0.05) * locks  # uneven, pointed tips
        open_face = 58.0 if spec.style != "curly_volume" else 55.0
        w = _smoothstep((ad - open_face + 6.0) / 28.0)  # a rounded corner from fringe to side
        y = np.where(w > 0, (1 - w) * np.maximum(y, 0.46) + w * tip, y)
        hang = w > 0.5
    return f.level(y), hang


def _column_profiles(spec: HairSpec, f: _Frame, r: np.ndarray, phi: np.ndarray, theta: np.ndarray,
                     rng: np.random.Generator):
    """(outer, inner) (NC, NR, 2) profiles as (ρ, y) per column, plus hang flags."""
    C = f.centre
    nc = len(theta)
    a = np.abs(np.angle(np.exp(1j * (theta - np.pi))))  # angle from the front (−Z)
    x_side = np.sign(np.sin(theta) + 1e-9)
    locks = _locks(nc, spec.seed)
    y_end, hang = _hairline(spec, f, a, x_side, locks)

    style = spec.style
    base = {"buzz": 0.018, "short_crop": 0.058, "side_part": 0.066, "bob": 0.072, "long_straight": 0.06,
            "curly_volume": 0.13, "bun": 0.03, "ponytail": 0.03}[style] * spec.volume
    # Crown volume: more on top and at the back of the crown, less at temples and nape;
    # a lift right on top rounds off the flat MakeHuman skull (no helmet).
    crown = _smoothstep((np.radians(95) - phi[None, :]) / np.radians(70))
    back = 0.5 + 0.5 * np.cos(a)[:, None] * -1.0  # 0 front, 1 back
    lift = np.exp(-((phi[None, :] - np.radians(20)) / np.radians(28)) ** 2)
    t0 = base * (0.5 + 0.5 * crown + 0.3 * crown * back + 0.55 * lift)
    if style in ("bob", "curly_volume", "short_crop", "side_part", "long_straight"):
        # Fuller sides above and over the ears (not at the face, not at the nape).
        sides = np.exp(-((phi[None, :] - np.radians(88)) / np.radians(28)) ** 2) * np.sin(a)[:, None] ** 2
        t0 = t0 + base * {"bob": 0.6, "curly_volume": 0.7}.get(style, 0.3) * sides
    if style == "side_part":
        # More volume on the side away from the part; a shallow part line.
        xs = np.sin(phi)[None, :] * np.sin(theta)[:, None]
        t0 = t0 * (1.0 + 0.35 * _smoothstep(-spec.part_side * xs * 3.0 + 0.3))
        zf = np.sin(phi)[None, :] * np.cos(theta)[:, None]
        line = np.exp(-((xs - spec.part_side * 0.32) / 0.06) ** 2) * (zf < 0.15) * (phi[None, :] < np.radians(75))
        t0 = t0 * (1.0 - 0.45 * line)
    if spec.curl > 0:
        noise = rng.standard_normal((nc, len(phi)))
        noise = _smooth_rows(_smooth_cols(noise, 3), 3)
        noise /= max(float(noise.std()), 1e-6)
        t0 = t0 * (1.0 + 0.11 * spec.curl * np.clip(noise, -2, 2))
    temple = np.exp(-((np.degrees(a) - 55.0) / 30.0) ** 2) + 0.5 * _smoothstep((30.0 - np.degrees(a)) / 20.0)
    ro = r + t0
    rho_o = ro * np.sin(phi)[None, :]
    y_s = np.minimum.accumulate(C[1] + r * np.cos(phi)[None, :], axis=1)
    eps = 0.02
    outer = np.zeros((nc, _NR, 2))
    inner = np.zeros((nc, _NR, 2))
    flare = 0.12 if style != "curly_volume" else 0.16
    for j in range(nc):
        ys = y_s[j]
        # φ where the scalp reaches the hairline height.
        ph_end = np.interp(-y_end[j], -ys, phi)
        if hang[j]:
            lo = np.searchsorted(phi, np.radians(50))
            hi = np.searchsorted(phi, np.radians(125))
            k_drop = lo + int(np.argmax(rho_o[j, lo:hi]))
            ph_end = min(ph_end, phi[k_drop])
        ks = np.searchsorted(phi, ph_end)
        ph = np.concatenate([phi[:ks], [ph_end]])
        rr = np.interp(ph, phi, r[j])
        tt = np.interp(ph, phi, t0[j])
        seg = np.hypot(np.diff(rr * np.sin(ph)), np.diff(rr * np.cos(ph)))
        s = np.concatenate([[0.0], np.cumsum(seg)])
        if not hang[j]:
            # Longer, thinner taper at the temples and the fringe: the hairline fades
            # in instead of ending in a visible step.
            taper = 0.02 if style == "buzz" else 0.10 + 0.08 * temple[j]
            w = _smoothstep((s[-1] - s) / taper)
            tt = 0.004 + (tt - 0.004) * w
        o_rho, o_y = (rr + tt) * np.sin(ph), C[1] + (rr + tt) * np.cos(ph)
        i_rho, i_y = (rr - eps) * np.sin(ph), C[1] + (rr - eps) * np.cos(ph)
        if hang[j] and y_end[j] < o_y[-1] - 0.02:
            n = 16
            hy = np.linspace(o_y[-1], y_end[j], n + 1)[1:]
            drop = o_y[-1] - hy
            frac = drop / max(drop[-1], 1e-6)
            rho_c = o_rho[-1] + flare * drop
            if style == "bob":
                # Rounded: swells below the widest point, tips turned under.
                rho_c = rho_c + 0.03 * np.sin(np.pi * np.minimum(frac, 1.0)) - 0.06 * _smoothstep((frac - 0.6) / 0.4)
            elif style == "curly_volume":
                # A round cloud: swells out, then curves back in at the tips.
                rho_c = rho_c + 0.07 * np.sin(np.pi * 0.85 * frac) - 0.15 * _smoothstep((frac - 0.5) / 0.5)
            if spec.curl > 0:
                rho_c = rho_c + 0.015 * spec.curl * np.sin(frac * 9.0 + j * 1.7) * frac
            # Thinning to almost nothing at the tips: a soft edge, not a thick slab.
            thick = (tt[-1] + eps) * (1.0 - 0.55 * frac) * (1.0 - 0.9 * _smoothstep((frac - 0.45) / 0.55)) + 0.005
            o_rho = np.concatenate([o_rho, rho_c])
            o_y = np.concatenate([o_y, hy])
            i_rho = np.concatenate([i_rho, rho_c - thick])
            i_y = np.concatenate([i_y, hy + 0.004])
        seg = np.hypot(np.diff(o_rho), np.diff(o_y))
        s = np.concatenate([[0.0], np.cumsum(seg)])
        # Rows: denser near the end (hairline detail), uniform elsewhere.
        q = np.linspace(0.0, 1.0, _NR)
        q = 0.8 * q + 0.2 * (1 - (1 - q) ** 2)
        tq = q * s[-1]
        outer[j, :, 0] = np.interp(tq, s, o_rho)
        outer[j, :, 1] = np.interp(tq, s, o_y)
        inner[j, :, 0] = np.interp(tq, s, i_rho)
        inner[j, :, 1] = np.interp(tq, s, i_y)
    return outer, inner, hang


def _to3d(prof: np.ndarray, theta: np.ndarray, C: np.ndarray) -> np.ndarray:
    rho, y = prof[..., 0], prof[..., 1]
    x = rho * np.sin(theta)[:, None]
    z = C[2] + rho * np.cos(theta)[:, None]
    return np.stack([x, y, z], axis=-1)


class _Builder:
    """Accumulates vertex groups (each with its own smooth normals: where two groups
    meet at the same positions, the edge stays sharp) and triangles."""

    def __init__(self):
        self.pos, self.uv, self.tri, self.pieces = [], [], [], []
        self.n = 0

    def add(self, pos: np.ndarray, uv: np.ndarray, tri: np.ndarray, piece: int) -> int:
        base = self.n
        self.pos.append(np.asarray(pos, np.float64))
        self.uv.append(np.asarray(uv, np.float64))
        self.tri.append(np.asarray(tri, np.int64) + base)
        self.pieces.append(np.full(len(tri), piece))
        self.n += len(pos)
        return base

    def arrays(self):
        """(positions, uvs, triangles, normals) of everything added."""
        pos, tri, piece = np.concatenate(self.pos), np.concatenate(self.tri), np.concatenate(self.pieces)
        # Outward winding per closed piece: its enclosed volume must be positive.
        a, b, c = pos[tri[:, 0]], pos[tri[:, 1]], pos[tri[:, 2]]
        vol = np.einsum("ij,ij->i", a, np.cross(b, c))
        for k in np.unique(piece):
            if vol[piece == k].sum() < 0:
                tri[piece == k] = tri[piece == k][:, ::-1]
        normals, t0, v0 = [], 0, 0
        for p, t in zip(self.pos, self.tri):
            normals.append(smooth_normals(p, tri[t0:t0 + len(t)] - v0))
            t0, v0 = t0 + len(t), v0 + len(p)
        return pos, np.concatenate(self.uv), tri, np.concatenate(normals)


def _grid_tris(nr: int, nc: int, flip: bool) -> np.ndarray:
    """Triangles of an (nr × (nc+1)) grid whose row 0 is a pole: one vertex per column
    (nc of them), then rows 1.. with the seam column duplicated.  Vertex index of row
    i ≥ 1, column j: nc + (i − 1)(nc + 1) + j."""
    W = nc + 1
    idx = lambda i, j: nc + (i - 1) * W + j  # noqa: E731
    j = np.arange(nc)
    fan = np.stack([j, idx(1, j), idx(1, j + 1)], 1)
    quads = []
    for i in range(1, nr - 1):
        a, b, c, d = idx(i, j), idx(i + 1, j), idx(i + 1, j + 1), idx(i, j + 1)
        quads.append(np.stack([a, b, c], 1))
        quads.append(np.stack([a, c, d], 1))
    t = np.concatenate([fan] + quads)
    return t[:, ::-1].copy() if flip else t


def _grid_verts(grid: np.ndarray) -> np.ndarray:
    """(nc, nr, 3) → pole row (nc copies of the mean pole) + rows 1.. with seam copy."""
    nc = grid.shape[0]
    pole = np.repeat(grid[:, 0].mean(0, keepdims=True), nc, 0)
    body = np.concatenate([grid[:, 1:], grid[:1, 1:]], 0)  # (nc+1, nr-1, 3)
    return np.concatenate([pole, body.transpose(1, 0, 2).reshape(-1, 3)])


def _grid_uvs(nc: int, nr: int, v0: float, v1: float, q: np.ndarray | None = None) -> np.ndarray:
    q = np.linspace(0, 1, nr) if q is None else q
    pole = np.stack([(np.arange(nc) + 0.5) / nc, np.full(nc, v0)], 1)
    uu, vv = np.meshgrid(np.arange(nc + 1) / nc, v0 + (v1 - v0) * q[1:])
    return np.concatenate([pole, np.stack([uu.ravel(), vv.ravel()], 1)])


def _ellipsoid(centre, radii, axes, n_u: int, n_v: int, bump: np.ndarray | None):
    """Closed UV ellipsoid (poles duplicated per column): (pos, uv in 0..1 box, tris)."""
    th = np.linspace(0, 2 * np.pi, n_u + 1)
    ph = np.linspace(0, np.pi, n_v)
    rows = []
    for i, p in enumerate(ph):
        k = 1.0 if bump is None or i in (0, n_v - 1) else 1.0 + np.concatenate([bump[i], bump[i][:1]])
        d = np.stack([np.sin(p) * np.cos(th) * k, np.full_like(th, np.cos(p)), np.sin(p) * np.sin(th) * k], 1)
        rows.append(d)
    D = np.stack(rows)  # (n_v, n_u+1, 3)
    loc = D * np.asarray(radii)
    pos = centre + loc @ np.asarray(axes)
    uu, vv = np.meshgrid(th / (2 * np.pi), ph / np.pi)
    uv = np.stack([uu, vv], -1)
    uv[0, :, 0] = (np.arange(n_u + 1) + 0.5) / n_u
    uv[-1, :, 0] = (np.arange(n_u + 1) + 0.5) / n_u
    W = n_u + 1
    idx = lambda i, j: i * W + j  # noqa: E731
    j = np.arange(n_u)
    tris = []
    for i in range(n_v - 1):
        a, b, c, d = idx(i, j), idx(i + 1, j), idx(i + 1, j + 1), idx(i, j + 1)
        if i < n_v - 2:
            tris.append(np.stack([a, b, c], 1))
        if i > 0:
            tris.append(np.stack([a, c, d], 1))
    P = pos.reshape(-1, 3)
    # Make the poles and the seam exact copies so the piece welds closed.
    P = P.reshape(n_v, W, 3)
    P[0, :] = P[0, 0]
    P[-1, :] = P[-1, 0]
    P[:, -1] = P[:, 0]
    return P.reshape(-1, 3), uv.reshape(-1, 2), np.concatenate(tris)


def _tube(spine: np.ndarray, radius: np.ndarray, n_s: int):
    """Closed tube along spine (m,3) with per-point radius: (pos, uv, tris); caps are
    fans around duplicated end rings with their own small UV discs."""
    m = len(spine)
    tang = np.gradient(spine, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    ref = np.array([1.0, 0.0, 0.0])
    n1 = np.cross(tang, ref)
    n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
    n2 = np.cross(tang, n1)
    th = np.linspace(0, 2 * np.pi, n_s + 1)
    ring = np.cos(th)[None, :, None] * n1[:, None] + np.sin(th)[None, :, None] * n2[:, None]
    P = spine[:, None] + radius[:, None, None] * ring  # (m, n_s+1, 3)
    P[:, -1] = P[:, 0]
    uu, vv = np.meshgrid(th / (2 * np.pi), np.linspace(0, 1, m))
    W = n_s + 1
    j = np.arange(n_s)
    tris = []
    for i in range(m - 1):
        a, b, c, d = i * W + j, (i + 1) * W + j, (i + 1) * W + j + 1, i * W + j + 1
        tris += [np.stack([a, c, b], 1), np.stack([a, d, c], 1)]
    pos = [P.reshape(-1, 3)]
    uv = [np.stack([uu.ravel(), vv.ravel()], 1)]
    n = m * W
    for end, sign in ((0, 1), (m - 1, -1)):
        ring_p = P[end, :n_s]
        centre = spine[end]
        cap_uv = np.stack([0.5 + 0.4 * np.cos(th[:n_s]), 0.5 + 0.4 * np.sin(th[:n_s])], 1)
        pos += [ring_p, centre[None]]
        uv += [cap_uv, [[0.5, 0.5]]]
        c = np.full(n_s, n + n_s)
        a, b = n + j, n + (j + 1) % n_s
        tris.append(np.stack([c, b, a], 1) if sign > 0 else np.stack([c, a, b], 1))
        n += n_s + 1
    return np.concatenate(pos), np.concatenate(uv), np.concatenate(tris)


def _texture(spec: HairSpec, size: int = TEXTURE_SIZE) -> np.ndarray:
    """Anisotropic strand texture: streaks along v (rows), periodic in u, darker roots
    (v → 0), lighter tips, a soft sheen band; curly styles get short wavy strands."""
    rng = np.random.default_rng(spec.seed)
    S = size
    fy = np.fft.fftfreq(S)[:, None].astype(np.float32)
    fx = np.fft.rfftfreq(S)[None, :].astype(np.float32)

    def streaks(sx: float, sy: float) -> np.ndarray:
        # White noise blurred by a periodic Gaussian of σ = (sx across, sy along the strands) pixels.
        n = rng.standard_normal((S, S), dtype=np.float32)
        k = np.exp(-2.0 * np.pi ** 2 * ((sx * fx) ** 2 + (sy * fy) ** 2)).astype(np.float32)
        out = sp_fft.irfft2(sp_fft.rfft2(n) * k, s=(S, S))
        return out / max(float(out.std()), 1e-9)

    if spec.style == "buzz":
        a = 0.6 * streaks(0.7, 2.0) + 0.4 * streaks(2.0, 6.0)
        shade = 1.0 + 0.16 * a
    elif spec.curl > 0.5:
        # Curls: a jittered grid of round ringlets (cellular noise), each lit from above
        # with a dark crevice around it and a faint spiral, plus clump-sized variation.
        # (computed at half resolution and scaled up: the cells are 12 texels across)
        h2, cell = S // 2, 6
        nc_ = h2 // cell
        jit = rng.uniform(0.15, 0.85, (nc_, nc_, 2)).astype(np.float32) * cell
        yy, xx = np.mgrid[0:h2, 0:h2].astype(np.float32)
        cy, cx = (yy // cell).astype(np.int64), (xx // cell).astype(np.int64)
        f1 = np.full((h2, h2), 1e9, np.float32)
        f2 = np.full((h2, h2), 1e9, np.float32)
        dy1 = np.zeros((h2, h2), np.float32)
        dx1 = np.zeros((h2, h2), np.float32)
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                ny, nx = (cy + oy) % nc_, (cx + ox) % nc_
                py = (cy + oy) * cell + jit[ny, nx, 0]
                px = (cx + ox) * cell + jit[ny, nx, 1]
                dy, dx = yy - py, xx - px
                d = np.sqrt(dy * dy + dx * dx)
                closer = d < f1
                f2 = np.where(closer, f1, np.minimum(f2, d))
                dy1, dx1 = np.where(closer, dy, dy1), np.where(closer, dx, dx1)
                f1 = np.where(closer, d, f1)
        edge = np.clip((f2 - f1) / (0.35 * cell), 0, 1)  # 0 in the crevices between curls
        lit = np.clip(-dy1 / (0.6 * cell), -1, 1)  # upper half of each curl faces the light
        spiral = np.sin(np.arctan2(dy1, dx1) * 2.0 + f1 * 0.9)
        curls = 0.22 * edge + 0.12 * lit * edge + 0.05 * spiral
        curls = cv2.resize(curls.astype(np.float32), (S, S), interpolation=cv2.INTER_LINEAR)
        shade = 0.72 + curls + 0.07 * streaks(10.0, 10.0)
    else:
        fine = streaks(0.8, 40.0)
        coarse = streaks(3.5, 60.0)
        shade = 1.0 + 0.14 * fine + 0.16 * coarse
    v = (np.arange(S) + 0.5)[:, None] / S
    sheen = 0.10 * np.exp(-0.5 * ((v - 0.22) / 0.05) ** 2)
    roots = -0.12 * np.exp(-v / 0.05)
    shade = shade + sheen + roots
    col = np.asarray(spec.color_rgb, np.float64)
    lum = float(col @ [0.299, 0.587, 0.114])
    # Dark hair needs additive light in the streaks to show at all.
    lift = np.clip((60.0 - lum) / 60.0, 0, 1) * 22.0
    img = col[None, None, :] * shade[..., None] + lift * (shade[..., None] - 1.0) * 2.0
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def build_hair(spec: HairSpec | None, head_positions: np.ndarray, head_triangles: np.ndarray) -> HairMesh | None:
    """Build the hair accessory for ``spec`` around the head mesh (model studs, +Y up,
    facing −Z; the head may include the neck).  ``None`` for no hair (spec None).

    One closed shell (outer + inner sheets, 40 columns × 22 rows, joined along the
    hairline), plus a closed bun or ponytail; ≤ :data:`MAX_TRIANGLES` triangles,
    outward winding, UVs in 0..1 (u around the head, v crown → tips).
    """
    if spec is None:
        return None
    if spec.style not in STYLES:
        raise ValueError(f"unknown hair style {spec.style!r}; one of {STYLES}")
    P = np.asarray(head_positions, np.float64)
    T = np.asarray(head_triangles, np.int64)
    f = head_frame(P)
    C = f.centre
    rng = np.random.default_rng(spec.seed)

    theta = np.arange(_NC) * (2 * np.pi / _NC)  # 0 = back (+Z), π/2 = +X
    phi = np.linspace(0.0, _PHI_MAX, _NPHI)
    dirs = np.stack([np.sin(phi)[None, :] * np.sin(theta)[:, None],
                     np.broadcast_to(np.cos(phi)[None, :], (_NC, _NPHI)),
                     np.sin(phi)[None, :] * np.cos(theta)[:, None]], -1).reshape(-1, 3)
    up = T[(P[T, 1].max(1) > C[1] - 0.45 * f.H)]
    # Cast each 45° sector of columns only against the triangles that reach into it.
    az = np.arctan2(P[:, 0], P[:, 2] - C[2])
    rho_min = np.hypot(P[:, 0], P[:, 2] - C[2])[up].min(1)
    taz = az[up]
    span = np.abs(np.angle(np.exp(1j * (taz[:, :, None] - taz[:, None, :])))).max((1, 2))
    r = np.empty((_NC, _NPHI))
    per = _NC // 8
    D = dirs.reshape(_NC, _NPHI, 3)
    for g in range(8):
        cols = slice(g * per, (g + 1) * per)
        mid = theta[g * per:(g + 1) * per].mean()
        d = np.abs(np.angle(np.exp(1j * (taz - mid)))).min(1)
        sel = (d < np.pi / 8 + 0.3) | (rho_min < 0.05) | (span > 1.0)
        r[cols] = _scalp_radii(P, up[sel], C, D[cols].reshape(-1, 3)).reshape(per, _NPHI)
    # Misses (below the neck) continue the last hit.
    for k in range(1, _NPHI):
        r[:, k] = np.where(np.isnan(r[:, k]), r[:, k - 1], r[:, k])
    r[:, 0] = np.nanmean(r[:, 0])
    r = np.nan_to_num(r, nan=float(np.nanmean(r)))
    r = _smooth_rows(_smooth_cols(r, 2), 1)

    outer, inner, hang = _column_profiles(spec, f, r, phi, theta, rng)
    O = _to3d(outer, theta, C)
    I = _to3d(inner, theta, C)

    b = _Builder()
    q = np.linspace(0, 1, _NR)
    b.add(_grid_verts(O), _grid_uvs(_NC, _NR, 0.01, 0.70, q), _grid_tris(_NR, _NC, flip=False), 0)
    b.add(_grid_verts(I), _grid_uvs(_NC, _NR, 0.99, 0.74, q), _grid_tris(_NR, _NC, flip=True), 0)
    # Strip joining the outer and inner end rings (own vertices: a hard edge).
    ring_o = np.concatenate([O[:, -1], O[:1, -1]])
    ring_i = np.concatenate([I[:, -1], I[:1, -1]])
    uu = np.arange(_NC + 1) / _NC
    j = np.arange(_NC)
    W = _NC + 1
    strip_t = np.concatenate([np.stack([j + 1, j, W + j], 1), np.stack([j + 1, W + j, W + j + 1], 1)])
    b.add(np.concatenate([ring_o, ring_i]),
          np.concatenate([np.stack([uu, np.full(W, 0.70)], 1), np.stack([uu, np.full(W, 0.74)], 1)]),
          strip_t, 0)

    if spec.style == "bun":
        back = np.array([0.0, math.cos(math.radians(48)), math.sin(math.radians(48))])
        rb = float(np.interp(math.radians(48), phi, r[0]))
        rad = 0.15 * spec.volume
        centre = C + back * (rb + 0.03 + 0.55 * rad)
        axes = np.stack([[1.0, 0, 0], back, np.cross([1.0, 0, 0], back)])
        bump = 0.10 * np.sin(np.arange(9)[:, None] * 1.3 + np.linspace(0, 6 * np.pi, 16, endpoint=False)[None, :])
        pos, uv, tri = _ellipsoid(centre, (rad * 1.05, rad * 0.8, rad * 1.05), axes, 16, 9, bump)
        b.add(pos, 0.02 + 0.96 * uv * [1.0, 0.6], tri, 1)
    elif spec.style == "ponytail":
        ph0 = math.radians(70)
        r0 = float(np.interp(ph0, phi, r[0]))
        root = C + np.array([0.0, math.cos(ph0), math.sin(ph0)]) * (r0 + 0.01)
        L = 1.1 * f.H * max(spec.length, 0.0) + 0.75 * f.H
        t = np.linspace(0, 1, 14)
        p0, p1, p2 = root, root + np.array([0, 0.05, 0.28]) * f.H / 0.5, root + np.array([0, -L, 0.30 * f.H / 0.5])
        spine = ((1 - t) ** 2)[:, None] * p0 + (2 * (1 - t) * t)[:, None] * p1 + (t ** 2)[:, None] * p2
        radius = (0.11 * (1 - 0.7 * t ** 1.2) + 0.015 * np.exp(-((t - 0.08) / 0.04) ** 2)) * spec.volume
        radius[0] *= 0.8
        pos, uv, tri = _tube(spine, radius, 12)
        b.add(pos, 0.02 + 0.96 * uv * [1.0, 0.7], tri, 1)

    shell = b.n if spec.style not in ("bun", "ponytail") else sum(len(p) for p in b.pos[:-1])
    pos, uv, tri, normals = b.arrays()
    uv = np.clip(uv, 0.0, 1.0)
    return HairMesh(positions=pos.astype(np.float32), triangles=tri.astype(np.int32), uvs=uv.astype(np.float32),
                    normals=normals.astype(np.float32), texture=_texture(spec), style=spec.style,
                    shell_vertices=int(shell))


def spec_for_style(style: str, color_rgb) -> HairSpec:
    """The :class:`HairSpec` of a built-in style with its default shape, in ``color_rgb``
    (0..255): what a hairstyle chosen after the avatar was built gets."""
    if style not in STYLES:
        raise ValueError(f"unknown hair style {style!r}; one of {STYLES}")
    length, volume, fringe = _DEFAULTS[style]
    curl = 0.7 if style == "curly_volume" else 0.0
    volume = max(volume, 1.1) if style == "curly_volume" else volume
    colour = tuple(int(c) for c in color_rgb)
    return HairSpec(style=style, color_rgb=colour, length=length, volume=volume, fringe=fringe, part_side=1,
                    curl=curl, seed=zlib.crc32(f"{style}:{colour}".encode()) & 0xFFFF)


def restyle_ops(current: EditableMesh, part: str, hair: HairMesh, new_id, head_bone: int) -> list[dict]:
    """Edit ops that turn the hair accessory ``current`` (built by :func:`build_hair`) into
    ``hair``: the shell's vertices move (one ``BatchSetValues``), the old bun or ponytail
    is removed face by face, the new one is added (``AddVertex`` and
    ``SetVertexBoneWeights`` on ``head_bone``, ``AddTriangle``, then ``SetUV``; ids from
    ``new_id()``),
    and the texture is rewritten (alpha 0: it follows the accessory's ``Color``).

    Raises ``ValueError`` when ``current`` no longer has the builder's shell (its first
    ``hair.shell_vertices`` vertex ids)."""
    k = hair.shell_vertices
    ids = np.sort(current.vertex_ids)
    shell = ids[:k]
    if len(shell) < k or not np.array_equal(shell, np.arange(1, k + 1)):
        raise ValueError("the hair mesh is not the one the avatar was built with")
    ops: list[dict] = []
    keep = np.isin(current.vertex_ids[current.triangles], shell).all(axis=1)
    ops += [remove_face_op(part, int(f)) for f in current.face_ids[~keep]]
    ops.append(batch_set_values_op(part, shell.tolist(), hair.positions[:k].astype(np.float64).tolist()))
    piece = hair.triangles[~(hair.triangles < k).all(axis=1)]
    used = np.unique(piece[piece >= k])  # rows of the new piece's vertices that its triangles use
    vid_of = np.zeros(len(hair.positions), np.int64)
    vid_of[:k] = shell
    for row in used:
        vid_of[row] = new_id()
        ops += [add_vertex_op(part, int(vid_of[row]), hair.positions[row].astype(np.float64).tolist()),
                set_vertex_bone_weights_op(part, int(vid_of[row]), [head_bone], [1.0])]
    ops += [add_triangle_op(part, new_id(), [int(vid_of[i]) for i in t]) for t in piece]
    # a new vertex gets its one UV from its first triangle; then it is set
    ops += [set_uv_op(part, int(vid_of[row]), hair.uvs[row].astype(np.float64).tolist()) for row in used]
    h, w = hair.texture.shape[:2]
    rgba = np.dstack([hair.texture, np.zeros((h, w), np.uint8)])
    ops.append(write_pixels_op(part, (0, 0), (w, h), rgba.tobytes()))
    return ops

