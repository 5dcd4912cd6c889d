"""Build a rigged, textured 15-part R15 avatar from a styled 2D preview.

``build_avatar(preview_png, landmarks=..., skin_rgb=..., hair_rgb=..., text_prompt=...)``
returns a :class:`meshes.Avatar` in model-space studs (+Y up, facing −Z, LowerTorso
bone at the origin), about 5.5 studs tall, standing in an I-pose.

Geometry: the Head is the player's face -- the 468 face-mesh landmarks on
MediaPipe's tesselation -- fused into a closed skull with ears and a neck base, with
seven FACS morph targets (see :mod:`generation.head`; 3256 triangles).  Every other
MeshPart is a closed superellipsoid "lathe" (rings × segments grid, poles closed with
single triangles), optionally tapered.  Triangle counts: each torso part 816, each
limb part 384 -- inside Roblox's budgets (4000 / 1750 / 1248).

Texturing: the Head texture is 1024×512: a square crop of the preview around the
face on the left (the face vertices' UVs are their landmarks' positions in it) and
the skull on the right, skin with a hair cap in ``hair_rgb`` (see
:func:`generation.avatar_textures.head_texture_from_geo`).  Body parts get 128×128 textures: skin,
shirt (UpperTorso + sleeves), pants (LowerTorso + legs), shoes.  Colour words in
``text_prompt`` ("red shirt", "blue jeans", "white sneakers") pick clothing colours.

Rig: the 17 R15 bones at the joints, rigid skinning per part with 50/50 blends
fading over 0.12 studs at every joint (weights are multiples of 1/256 so rows sum
to exactly 1), rig attachments at the joints and accessory attachments in their
Roblox regions.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from generation.avatar_textures import body_texture, head_texture_from_geo, rgb01
from generation.body_geometry import body_part_geo
from generation.head import HeadGeo, head_from_landmarks
from generation.body_layout import (BODY_SCALE, BodyScales, accessory_layout, apply_body_scales, bone_layout,
                                   part_layout, rig_attachments)
from generation.clothing_prompt import DEFAULT_CLOTHING, parse_clothing_prompt
from generation.skinning import skin_weights
from meshes.avatar import Avatar
from meshes.editable_image import EditableImage
from meshes.editable_mesh import EditableMesh, smooth_normals
from meshes.r15 import BODY_PARTS, BONE_HIERARCHY, PART_NAMES
from schemas.errors import InputRejected, InvalidParams

__all__ = ["build_avatar", "parse_clothing_prompt", "BODY_SCALE", "DEFAULT_CLOTHING"]


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
    if a.ndim != 2 or a.shape[0] < 468 or a.shape[1] != 3:
        raise InputRejected(f"landmarks must be (478, 3) face-mesh points, got {a.shape}", code="InvalidLandmarks")
    if not np.isfinite(a).all() or (np.abs(a[:, :2] - 0.5) > 1.0).any():
        raise InputRejected("landmarks must be finite with x, y normalised to the preview", code="InvalidLandmarks")
    return a


# --------------------------------------------------------------------------- head


def _head(rgb_img: np.ndarray, lm: np.ndarray | None) -> HeadGeo:
    if lm is not None:
        eye_d = np.linalg.norm(lm[[362, 263], :2].mean(0) - lm[[33, 133], :2].mean(0)) * min(rgb_img.shape[:2])
        if eye_d < 4:
            raise InputRejected("The face in the preview is too small to texture the head.", code="InvalidLandmarks")
    return head_from_landmarks(lm)


def _head_part(head: HeadGeo, rgb_img: np.ndarray, bones: dict, colors: dict) -> tuple[EditableMesh, EditableImage]:
    """The Head MeshPart (scaled by BODY_SCALE, skinned, with the FACS morph targets) and its texture."""
    pos = head.positions * BODY_SCALE
    joints, weights = skin_weights("Head", pos, bones)
    mesh = EditableMesh.from_arrays(pos, head.triangles, normals=smooth_normals(pos, head.triangles),
                                    uvs=head.uvs, joints=joints, weights=weights)
    for name, deltas in head.morphs.items():
        mesh.SetMorphTarget(name, deltas * BODY_SCALE)
    tex = head_texture_from_geo(rgb_img, head, colors["skin"], colors["hair"])
    return mesh, EditableImage.from_array(tex)


# --------------------------------------------------------------------------- main entry


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
) -> Avatar:
    """Build the 15-part R15 avatar for a chosen preview (see module docstring).

    ``landmarks``: (478, 3) MediaPipe face-mesh points of the preview, x/y in 0..1
    of the image, z relative depth; when given they place the face on the head,
    size the nose and the hairline.  The six ``*_scale`` arguments are the
    HumanoidDescription scales (HeightScale ... ProportionScale; mapping and ranges in
    :class:`generation.body_layout.BodyScales`) and are written into the description.
    Raises :class:`InputRejected` for an
    unreadable preview or malformed landmarks, :class:`InvalidParams` for bad colours.
    """
    rgb_img = _decode_preview(preview_png)
    lm = _check_landmarks(landmarks)
    skin_t = _check_rgb(skin_rgb, "skin_rgb")
    hair_t = _check_rgb(hair_rgb, "hair_rgb")
    if text_prompt is not None and not isinstance(text_prompt, str):
        raise InvalidParams("text_prompt must be a string")
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

    head = _head(rgb_img, lm)
    layout = part_layout()

    bones_u = bone_layout()
    bones = {k: np.asarray(v) * BODY_SCALE for k, v in bones_u.items()}
    parts: dict[str, EditableMesh] = {}
    images: dict[str, EditableImage] = {}
    for part in PART_NAMES:
        shape = layout[part]
        if part == "Head":
            parts[part], images[part] = _head_part(head, rgb_img, bones, colors)
            continue
        geo = body_part_geo(shape)
        pos = geo.positions * BODY_SCALE
        joints, weights = skin_weights(part, pos, bones)
        parts[part] = EditableMesh.from_arrays(pos, geo.triangles, normals=geo.normals, uvs=geo.uvs,
                                               face_uvs=getattr(geo, "face_uvs", None),
                                               joints=joints, weights=weights)
        tex = body_texture(part, shape, colors)
        images[part] = EditableImage.from_array(tex)

    attachments = rig_attachments(bones_u, accessory_layout(head.front_z + 0.02, head.eye_y))
    bone_list = [{"Name": n, "Parent": p, "Position": [round(float(c), 6) for c in bones[n]]} for n, p in BONE_HIERARCHY]

    skin01 = [round(float(c), 4) for c in colors["skin"]]
    description = {
        **{f"{bp}Color": list(skin01) for bp in BODY_PARTS},
        **scales.as_description(),
        "AvatarPartScaleType": "ProportionsNormal",
        "BodyParts": [{"BodyPart": bp, "Color": list(skin01), "Instance": list(ps)} for bp, ps in BODY_PARTS.items()],
        "Accessories": [],
    }
    metadata = {
        "Generator": "procedural-r15",
        "GeneratorVersion": 1,
        "Units": "studs",
        "Space": "model",
        "UsedLandmarks": lm is not None,
        "ClothingColors": {k: [round(float(c), 4) for c in rgb01(v)] for k, v in clothing.items()},
        "HairColor": [round(float(c), 4) for c in colors["hair"]],
        "PromptColorsApplied": sorted(ph for _, ph in prompt.values()),
    }
    avatar = Avatar(description, parts, images, bone_list, attachments, metadata)
    apply_body_scales(avatar, scales)
    return avatar
