"""Body textures: skin, shirt, trousers and shoes painted per texel from where the
texel lies on the body.

Each part's texture is rasterised in its own UV layout (:mod:`generation.avatar.raster`);
a texel's model-space position decides its region: a short-sleeved shirt over the
UpperTorso, the LowerTorso above the belt and the upper half of each UpperArm;
trousers from the belt to the ankles; shoes on the feet; skin everywhere else.  Each
region is its flat albedo with a faint fabric or skin grain (seeded, so equal inputs
give equal pixels) and a soft darker line at hems.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from generation.avatar.body import BodyGeo
from generation.avatar.raster import dilate_into, nearest_covered, rasterize_uv
from generation.pixels import robust_median
from meshes.surface import BASE_BODY, BASE_NONE, BASE_PANTS, BASE_SHIRT

__all__ = ["TEXTURE_SIZE", "paint_body", "region_masks", "shirt_colour"]

#: Texture edge per part (px).
TEXTURE_SIZE: dict[str, int] = {"Head": 1024, "UpperTorso": 512, "LowerTorso": 256}
for _S in ("Left", "Right"):
    TEXTURE_SIZE.update({f"{_S}UpperArm": 256, f"{_S}LowerArm": 128, f"{_S}Hand": 256,
                         f"{_S}UpperLeg": 256, f"{_S}LowerLeg": 256, f"{_S}Foot": 128})


def region_masks(part: str, p: np.ndarray, body: BodyGeo) -> dict[str, np.ndarray]:
    """Boolean masks (shirt, pants, shoes) for model-space points ``p`` (…,3) of ``part``;
    skin is what none of them covers."""
    y = p[..., 1]
    false = np.zeros(p.shape[:-1], bool)
    waist_y = float(body.bones["UpperTorso"][1])
    belt = waist_y * 0.55
    if part == "UpperTorso":
        return {"shirt": ~false, "pants": false, "shoes": false}
    if part == "LowerTorso":
        return {"shirt": y > belt, "pants": y <= belt, "shoes": false}
    if part.endswith("UpperArm"):
        side = part[: -len("UpperArm")]
        a, b = body.bones[f"{side}UpperArm"], body.bones[f"{side}LowerArm"]
        t = ((p - a) @ (b - a)) / max(float((b - a) @ (b - a)), 1e-9)
        return {"shirt": t < 0.5, "pants": false, "shoes": false}
    if part.endswith(("UpperLeg", "LowerLeg")):
        return {"shirt": false, "pants": ~false, "shoes": false}
    if part.endswith("Foot"):
        return {"shirt": false, "pants": false, "shoes": ~false}
    return {"shirt": false, "pants": false, "shoes": false}


def shirt_colour(rgb: np.ndarray, landmarks: np.ndarray, person: np.ndarray,
                 skin: np.ndarray) -> tuple[int, int, int] | None:
    """The colour of the top the photo shows below the chin, or None when too little
    of it is visible.

    Pixels from 0.35 to 1.2 face heights below the chin (landmark 152), within 1.6
    face widths of it, on the person (mask > 0.5) and not skin-coloured (CIELAB
    distance to ``skin`` 0..1 over 25); the robust median of them when they cover a
    tenth of that band."""
    h, w = rgb.shape[:2]
    lm = np.asarray(landmarks, np.float64)[:, :2] * [w, h]
    face_h = float(np.linalg.norm(lm[152] - lm[10]))
    face_w = float(np.linalg.norm(lm[454] - lm[234]))
    x0, x1 = int(max(0, lm[152, 0] - 1.6 * face_w)), int(min(w, lm[152, 0] + 1.6 * face_w))
    y0, y1 = int(max(0, lm[152, 1] + 0.35 * face_h)), int(min(h, lm[152, 1] + 1.2 * face_h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    band = rgb[y0:y1, x0:x1]
    lab = cv2.cvtColor(band, cv2.COLOR_RGB2Lab).astype(np.float32)
    skin_lab = cv2.cvtColor(np.uint8([[np.round(np.asarray(skin) * 255)]]), cv2.COLOR_RGB2Lab)
    cloth = (person[y0:y1, x0:x1] > 0.5) & (np.linalg.norm(lab - skin_lab.reshape(3).astype(np.float32), axis=2) > 25)
    if cloth.sum() < 0.1 * cloth.size:
        return None
    return robust_median(band[cloth], (10, 90))


@functools.lru_cache(maxsize=16)
def _grain(shape: tuple[int, int], seed: int, amp: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = rng.normal(0.0, 1.0, shape).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 0.8)
    out = 1.0 + amp * g / max(float(g.std()), 1e-6)
    out.setflags(write=False)
    return out


def paint_body(part: str, body: BodyGeo, colors: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(texture (s,s,3) float32 0..1, covered (s,s) bool, base codes (s,s) uint8) of one
    non-head part.  ``colors``: rgb 0..1 for skin, shirt, pants, shoes.  The base codes
    (:mod:`meshes.surface`) say which description colour each texel was painted in:
    skin the body colour, shirt and trousers their own, shoes none."""
    g = body.parts[part]
    s = TEXTURE_SIZE[part]
    ids, bary = rasterize_uv(g.uvs, (s, s))
    covered = ids >= 0
    nearest = nearest_covered(covered)
    tri_pos = g.positions[g.triangles]              # (m,3,3) corner positions
    P = np.zeros((s, s, 3), np.float32)
    P[covered] = np.einsum("nk,nkd->nd", bary[covered], tri_pos[ids[covered]])
    masks = region_masks(part, P, body)
    tex = np.empty((s, s, 3), np.float32)
    tex[:] = colors["skin"]
    for name in ("pants", "shirt", "shoes"):
        m = masks[name] & covered
        tex[m] = colors[name]
    # hems: darken texels near a region boundary
    label = np.zeros((s, s), np.uint8)
    for i, name in enumerate(("shirt", "pants", "shoes"), start=1):
        label[masks[name] & covered] = i
    # a hem is where two covered texels of different regions meet (not a UV island's rim)
    lab = dilate_into(label[..., None], covered, nearest)[..., 0].astype(np.uint8)
    edge = (cv2.morphologyEx(lab, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0) & covered
    edge = cv2.GaussianBlur(edge.astype(np.float32), (0, 0), 1.2)
    tex *= (1.0 - 0.25 * np.clip(edge * 2, 0, 1))[..., None]
    tex *= np.where(label > 0, _grain((s, s), 7, 0.04), _grain((s, s), 11, 0.015))[..., None]
    tex = dilate_into(np.clip(tex, 0, 1), covered, nearest)
    bases = np.array([BASE_BODY, BASE_SHIRT, BASE_PANTS, BASE_NONE], np.uint8)[lab]
    return tex, covered, bases
