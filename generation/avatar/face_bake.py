"""Bake the chosen preview into the head's texture, only where the photo shows the face.

Every texel of the Head's UV layout knows its point and normal on the fitted head
(:mod:`generation.avatar.raster`); the face fit's camera
(:class:`generation.avatar.face_fit.FaceFit`) says where that point is in the
preview.  A texel takes the photo's colour with weight

    α = face(x, y) · facing(n)

* ``face``: inside the face oval of the landmarks (pulled in a little so the jaw
  line and the hairline stay out), on the person (selfie segmentation: no sky or
  studio backdrop), and either skin-coloured or inside a feature (eyes, brows,
  nose, lips) -- so hair over the forehead or cheeks, a hand or a microphone in
  front of the chin is left out.  Feathered.
* ``facing``: the point faces the camera (the photo says nothing about the sides).

The teeth and tongue take the photo anywhere inside the face outline.  The eyes are
painted, not projected (the photo's gaze need not point where the head does): an
iris in the colour measured inside mediapipe's iris landmarks, with a pupil and a
darker rim, at each eyeball's front pole, on a white sclera.

Elsewhere the texel is skin: the player's albedo, the median of the face's skin
after the photo's broad shading is evened out (the low-frequency part of CIELAB
lightness over the face is replaced by its mean, which keeps pores, brows and lips
but removes the key light and shadow baked into a selfie; on dark skin this is what
keeps the cheeks from going grey).  Photo and skin are merged with a multi-band
(Laplacian pyramid) blend in texture space, so no edge shows at the boundary from
any angle.  The same albedo is returned for the neck, hands and limbs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from generation.avatar.raster import dilate_into, nearest_covered, rasterize_uv
from generation.edits import FACE_OVAL
from generation.pixels import SKIN_POINTS, disc_pixels, robust_median

__all__ = ["FaceBake", "bake_head", "even_shading", "face_mask", "skin_albedo"]

# Feature regions kept even when not skin-coloured (mediapipe FaceMesh indices).
_BROWS = ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46), (300, 293, 334, 296, 336, 285, 295, 282, 283, 276))
_EYES = ((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
         (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249))
_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
_NOSE = (168, 193, 245, 188, 174, 236, 198, 209, 49, 64, 98, 97, 2, 326, 327, 294, 279, 429, 420, 456, 399,
         412, 465, 417)


@dataclass(frozen=True)
class FaceBake:
    """texture: (S,S,3) float32 0..1; skin: (3,) albedo 0..1; alpha: (S,S) float32,
    the photo's weight per texel; coverage: share of the head's texels that took the
    photo (α > 0.5); material: (S,S) uint8, each texel's index into
    ``template.MATERIALS`` (the nearest island's between islands; all 0 when the bake
    was given no materials)."""

    texture: np.ndarray
    skin: np.ndarray
    alpha: np.ndarray
    coverage: float
    material: np.ndarray


def _smoothstep(x: np.ndarray, a: float, b: float) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def face_mask(rgb: np.ndarray, lm_px: np.ndarray, person: np.ndarray | None, skin_lab: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, whole, skin): (H,W) float32 0..1 where the photo shows the face's skin
    and features (see module docstring); (H,W) float32 0..1 the whole face outline,
    for the eyes, teeth and tongue (a squint's shadowed lids are not skin-coloured,
    yet they are what covers the eye); (H,W) bool its skin outside the features
    (brows, eyes, nose, lips), where the shading is measured."""
    h, w = rgb.shape[:2]
    eye_d = float(np.linalg.norm(lm_px[[362, 263], :2].mean(0) - lm_px[[33, 133], :2].mean(0)))
    oval = lm_px[list(FACE_OVAL), :2]
    centre = lm_px[[1, 168], :2].mean(axis=0)
    oval = centre + (oval - centre) * 0.94
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [np.round(oval).astype(np.int32)], 1)
    features = np.zeros((h, w), np.uint8)
    for idx in (*_BROWS, *_EYES, _LIPS, _NOSE):
        cv2.fillPoly(features, [cv2.convexHull(np.round(lm_px[list(idx), :2]).astype(np.int32))], 1)
    features = cv2.dilate(features, np.ones((3, 3), np.uint8), iterations=max(1, int(eye_d * 0.06)))
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)
    d = np.linalg.norm((lab - skin_lab) * [0.5, 1.0, 1.0], axis=2)  # shading changes lightness most
    skin_like = (d < 22.0).astype(np.uint8)
    skin_like = cv2.morphologyEx(skin_like, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    keep = m & (skin_like | features)
    # small gaps in the skin (wrinkles, freckles, ink lines of a stylised preview) are face too
    keep = cv2.morphologyEx(keep, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8), iterations=max(1, int(eye_d * 0.05)))
    out = keep.astype(np.float32)
    whole = m.astype(np.float32)
    if person is not None:
        on_person = _smoothstep(person.astype(np.float32), 0.3, 0.7)
        out *= on_person
        whole *= on_person
    sigma = max(1.0, 0.06 * eye_d)
    return (cv2.GaussianBlur(out, (0, 0), sigma) * m, cv2.GaussianBlur(whole, (0, 0), sigma),
            (m & skin_like & ~features).astype(bool))


def even_shading(rgb: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
    """Replace the low-frequency CIELAB lightness by its mean over ``mask`` (the
    low-pass is a normalised convolution with a Gaussian of ``scale`` px over the
    skin of ``mask`` only, so dark brows or lips do not brighten the skin around
    them); uint8 RGB out."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)
    L = lab[..., 0]
    wgt = mask.astype(np.float32)
    # the low-pass at a quarter of the size (a wide Gaussian loses nothing there), then back up
    h, w = L.shape
    k = 4 if scale >= 8 else 1
    small = (max(1, w // k), max(1, h // k))

    def low_pass(img):
        s_ = cv2.GaussianBlur(cv2.resize(img, small, interpolation=cv2.INTER_AREA), (0, 0), scale / k)
        return cv2.resize(s_, (w, h), interpolation=cv2.INTER_LINEAR)

    num, den = low_pass(L * wgt), low_pass(wgt)
    low = num / np.maximum(den, 1e-3)
    mean = float((L * wgt).sum() / max(wgt.sum(), 1e-6))
    # at most ±15 (of 255): enough for a key light's falloff, not so much that a shadowed
    # eye socket is lifted to white
    lab[..., 0] = np.clip(L - np.clip(low - mean, -15.0, 15.0) * np.clip(den * 4, 0, 1), 0, 255)
    return cv2.cvtColor(lab.astype(np.uint8), cv2.COLOR_Lab2RGB)


def skin_albedo(rgb: np.ndarray, lm_px: np.ndarray) -> np.ndarray:
    """Robust median colour (0..1) of cheek and forehead discs of an (evened) photo."""
    eye_d = float(np.linalg.norm(lm_px[[362, 263], :2].mean(0) - lm_px[[33, 133], :2].mean(0)))
    px = disc_pixels(rgb, lm_px[list(SKIN_POINTS), :2], max(2, int(round(eye_d * 0.12))))
    if len(px) == 0:
        return np.array([0.8, 0.65, 0.55], np.float32)
    return (np.asarray(robust_median(px), np.float32) / 255.0).astype(np.float32)


def iris_colour(rgb: np.ndarray, lm_px: np.ndarray) -> np.ndarray:
    """Median colour (0..1) inside both irises (mediapipe's refined iris landmarks
    468-477: a centre and four rim points each), pupil and glints left out."""
    px = []
    h, w = rgb.shape[:2]
    for c, rim in ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477))):
        if len(lm_px) <= max(rim):
            continue
        r = float(np.linalg.norm(lm_px[list(rim), :2] - lm_px[c, :2], axis=1).mean())
        x0, y0 = int(max(0, lm_px[c, 0] - r - 1)), int(max(0, lm_px[c, 1] - r - 1))
        x1, y1 = int(min(w, lm_px[c, 0] + r + 2)), int(min(h, lm_px[c, 1] + r + 2))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(xx - lm_px[c, 0], yy - lm_px[c, 1])
        ring = (d > 0.35 * r) & (d < 0.85 * r)
        px.append(rgb[y0:y1, x0:x1][ring])
    px = np.concatenate(px) if px else np.zeros((0, 3), np.uint8)
    if len(px) < 6:
        return np.array([0.35, 0.25, 0.18], np.float32)
    return (np.asarray(robust_median(px), np.float32) / 255.0).astype(np.float32)


def _paint_eyes(colours: np.ndarray, eye: np.ndarray, P: np.ndarray, head_mh: np.ndarray, tris: np.ndarray,
                material: np.ndarray, iris: np.ndarray) -> np.ndarray:
    """Iris, rim and pupil at each eyeball's front pole (MakeHuman faces +Z; the two
    eyes are told apart by the sign of x).  ``colours``/``eye``/``P`` are per texel."""
    out = colours.copy()
    eye_v = np.unique(tris[material == 1])
    for side in (-1.0, 1.0):
        verts = eye_v[np.sign(head_mh[eye_v, 0]) == side]
        sel = eye & (np.sign(P[:, 0]) == side)
        if len(verts) == 0 or not sel.any():
            continue
        centre = head_mh[verts].mean(axis=0)
        d = P[sel] - centre
        cos = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        c = out[sel]
        iris_t = np.clip((cos - 0.86) / 0.03, 0.0, 1.0)[:, None]            # soft iris edge
        c = c * (1 - iris_t) + iris * iris_t
        rim = np.exp(-((cos - 0.875) / 0.012) ** 2)[:, None]                 # darker limbal ring
        c = c * (1 - 0.45 * rim)
        pupil = np.clip((cos - 0.965) / 0.01, 0.0, 1.0)[:, None]
        out[sel] = c * (1 - pupil) + np.array([0.04, 0.035, 0.03]) * pupil
    return out


def _pyramid_blend(a: np.ndarray, b: np.ndarray, alpha: np.ndarray, levels: int = 5) -> np.ndarray:
    """Burt–Adelson multi-band blend: ``alpha`` 1 → ``b``, 0 → ``a`` (float32 images)."""
    ga, gb, gm = [a], [b], [alpha]
    for _ in range(levels):
        ga.append(cv2.pyrDown(ga[-1]))
        gb.append(cv2.pyrDown(gb[-1]))
        gm.append(cv2.pyrDown(gm[-1]))
    out = ga[-1] * (1 - gm[-1][..., None]) + gb[-1] * gm[-1][..., None]
    for i in range(levels - 1, -1, -1):
        size = (ga[i].shape[1], ga[i].shape[0])
        la = ga[i] - cv2.pyrUp(ga[i + 1], dstsize=size)
        lb = gb[i] - cv2.pyrUp(gb[i + 1], dstsize=size)
        m = gm[i][..., None]
        out = cv2.pyrUp(out, dstsize=size) + la * (1 - m) + lb * m
    return out


#: Albedo of the head's other materials where the photo does not reach (RGB 0..1).
SCLERA = (0.92, 0.9, 0.87)
TEETH = (0.93, 0.9, 0.82)
TONGUE = (0.72, 0.36, 0.38)


def bake_head(rgb: np.ndarray, landmarks: np.ndarray, fit, head_mh: np.ndarray, normals_mh: np.ndarray,
              tris: np.ndarray, uvs: np.ndarray, *, size: int = 1024, person: np.ndarray | None = None,
              material: np.ndarray | None = None) -> FaceBake:
    """The Head texture with the face baked in.

    rgb: (H,W,3) uint8 preview; landmarks: (478,3) normalised to it; fit: its
    :class:`FaceFit`; head_mh / normals_mh: (n,3) head vertices and unit normals in
    MakeHuman coordinates on the fitted shape; tris (m,3); uvs (m,3,2) corner UVs
    (0..1, v down); person: (H,W) person probability or None; material: (m,) per
    triangle, 0 skin, 1 eye, 2 teeth, 3 tongue (their own albedo outside the photo)."""
    h, w = rgb.shape[:2]
    lm_px = np.asarray(landmarks, np.float64)[:, :3] * [w, h, w]
    eye_d = float(np.linalg.norm(lm_px[[362, 263], :2].mean(0) - lm_px[[33, 133], :2].mean(0)))
    rough = skin_albedo(rgb, lm_px)
    skin_lab = cv2.cvtColor(np.uint8([[np.round(rough * 255)]]), cv2.COLOR_RGB2Lab).reshape(3).astype(np.float32)
    mask, whole, skin_px = face_mask(rgb, lm_px, person, skin_lab)
    evened = even_shading(rgb, skin_px, scale=max(2.0, 0.6 * eye_d))
    skin = skin_albedo(evened, lm_px)

    ids, bary = rasterize_uv(uvs, (size, size))
    covered = ids >= 0
    nearest = nearest_covered(covered)
    t = ids[covered]
    b = bary[covered]
    P = np.einsum("nk,nkd->nd", b, head_mh.astype(np.float32)[tris[t]])
    tri_n = normals_mh[tris].mean(axis=1)  # per triangle: the facing weight is blurred by the blend anyway
    tri_n /= np.maximum(np.linalg.norm(tri_n, axis=1, keepdims=True), 1e-9)
    N = tri_n.astype(np.float32)[t]
    xy = fit.project_points(P) * [w, h]
    facing = (N @ np.asarray(fit.rotation).T)[:, 2]
    mx = np.zeros((size, size), np.float32)
    my = np.zeros((size, size), np.float32)
    mx[covered], my[covered] = xy[:, 0] - 0.5, xy[:, 1] - 0.5
    photo = cv2.remap(evened.astype(np.float32) / 255.0, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a_img = cv2.remap(mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a_cov = a_img[covered]
    if material is not None:  # teeth, tongue: the whole face outline; eyes: painted
        mat = np.asarray(material)[t]
        a_whole = cv2.remap(whole, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a_cov = np.where(mat > 1, a_whole[covered], np.where(mat == 1, 0.0, a_cov))
    alpha = np.zeros((size, size), np.float32)
    alpha[covered] = a_cov * _smoothstep(facing, 0.3, 0.6)

    base = np.empty((size, size, 3), np.float32)
    base[:] = skin
    if material is not None:
        table = np.array([skin, SCLERA, TEETH, TONGUE], np.float32)
        base[covered] = table[mat]
        eye = mat == 1
        if eye.any():
            base[covered] = _paint_eyes(base[covered], eye, P, head_mh, tris, np.asarray(material),
                                        iris_colour(rgb, lm_px))
        base = dilate_into(base, covered, nearest)
    photo = dilate_into(photo, covered & (alpha > 0.02)) if (alpha > 0.02).any() else base
    # the empty texels between UV islands take their nearest island's weight, so the
    # coarse pyramid levels of a small island (an eye, the teeth) are not pulled to 0
    alpha = dilate_into(alpha[..., None], covered, nearest)[..., 0]
    # every input is already filled past the islands, so the blend is too; its coarse
    # levels reach across the atlas, so texels far (in the texture) from any photo
    # texel keep the plain base: no face colour leaks onto a neighbouring island
    out = _pyramid_blend(base, photo.astype(np.float32), alpha)
    far = cv2.distanceTransform((alpha <= 0.02).astype(np.uint8), cv2.DIST_L2, 3)
    reach = np.clip(1.0 - far / (0.03 * size), 0.0, 1.0)[..., None]
    out = np.clip(base + (out - base) * reach, 0, 1)
    mat_map = np.zeros((size, size), np.uint8)
    if material is not None:
        mat_map[covered] = mat
        mat_map = dilate_into(mat_map[..., None].astype(np.float32), covered, nearest)[..., 0].astype(np.uint8)
    return FaceBake(texture=out, skin=skin, alpha=alpha,
                    coverage=float((alpha[covered] > 0.5).sum() / max(covered.sum(), 1)), material=mat_map)
