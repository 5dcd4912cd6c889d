"""Build a rigged, textured 15-part R15 avatar from a styled 2D preview.

``build_avatar(preview_png, landmarks=..., skin_rgb=..., hair_rgb=..., text_prompt=...)``
returns a :class:`meshes.Avatar` in model-space studs (+Y up, facing −Z, LowerTorso
bone at the origin), about 5.5 studs tall, standing in an I-pose.

Geometry: every MeshPart is a closed superellipsoid "lathe" (rings × segments grid,
poles closed with single triangles), optionally tapered; the Head gets a nose bump
placed (and sized) from the face landmarks.  Triangle counts: Head 3744, each torso
part 816, each limb part 384 -- inside Roblox's budgets (4000 / 1750 / 1248).

Texturing: the Head is split into a front patch (±75° around −Z), planar-mapped onto
the left half of a 1024×512 texture, and a back patch mapped onto the right half.
The preview is warped into the face tile with a similarity transform that puts the
player's eyes and mouth (from the landmarks, or from the aligned-preview defaults)
on the head's eye and mouth positions; outside the feathered face oval the tile is
skin, with a hair cap in ``hair_rgb``.  Body parts get 128×128 textures: skin,
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

from generation.avatar_textures import CANON, FACE_TILE, body_texture, face_from_preview, head_texture, rgb01
from generation.body_geometry import body_part_geo, head_geo
from generation.body_layout import BODY_SCALE, Shape, accessory_layout, bone_layout, part_layout, rig_attachments
from generation.clothing_prompt import DEFAULT_CLOTHING, parse_clothing_prompt
from generation.skinning import skin_weights
from meshes.avatar import Avatar
from meshes.editable_image import EditableImage
from meshes.editable_mesh import EditableMesh
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


# --------------------------------------------------------------------------- main entry


def build_avatar(
    preview_png: bytes,
    *,
    landmarks: np.ndarray | None = None,
    skin_rgb: tuple[int, int, int] = (224, 172, 140),
    hair_rgb: tuple[int, int, int] = (60, 40, 30),
    text_prompt: str | None = None,
) -> Avatar:
    """Build the 15-part R15 avatar for a chosen preview (see module docstring).

    ``landmarks``: (478, 3) MediaPipe face-mesh points of the preview, x/y in 0..1
    of the image, z relative depth; when given they place the face on the head,
    size the nose and the hairline.  Raises :class:`InputRejected` for an
    unreadable preview or malformed landmarks, :class:`InvalidParams` for bad colours.
    """
    rgb_img = _decode_preview(preview_png)
    lm = _check_landmarks(landmarks)
    skin_t = _check_rgb(skin_rgb, "skin_rgb")
    hair_t = _check_rgb(hair_rgb, "hair_rgb")
    if text_prompt is not None and not isinstance(text_prompt, str):
        raise InvalidParams("text_prompt must be a string")

    prompt = parse_clothing_prompt(text_prompt)
    clothing = dict(DEFAULT_CLOTHING)
    for slot in ("shirt", "pants", "shoes"):
        if slot in prompt:
            clothing[slot] = prompt[slot][0]
    if "hair" in prompt:
        hair_t = prompt["hair"][0]
    colors = {"skin": rgb01(skin_t), "hair": rgb01(hair_t), **{k: rgb01(v) for k, v in clothing.items()}}

    face = face_from_preview(rgb_img, lm)
    layout = part_layout()
    hs = layout["Head"]
    head_shape = Shape(hs.center, (hs.half[0] * face.width_factor, hs.half[1], hs.half[2]), hs.ev, hs.eh,
                       hs.rings, hs.segs, hs.taper)
    layout["Head"] = head_shape

    bones_u = bone_layout()
    bones = {k: np.asarray(v) * BODY_SCALE for k, v in bones_u.items()}
    parts: dict[str, EditableMesh] = {}
    images: dict[str, EditableImage] = {}
    head_info = None
    for part in PART_NAMES:
        shape = layout[part]
        if part == "Head":
            geo, head_info = head_geo(shape, face.nose_uv, face.nose_height)
        else:
            geo = body_part_geo(shape)
        pos = geo.positions * BODY_SCALE
        joints, weights = skin_weights(part, pos, bones)
        parts[part] = EditableMesh.from_arrays(pos, geo.triangles, normals=geo.normals, uvs=geo.uvs,
                                               joints=joints, weights=weights)
        if part == "Head":
            tex = head_texture(face, shape, colors["skin"], colors["hair"])
        else:
            tex = body_texture(part, shape, colors)
        images[part] = EditableImage.from_array(tex)

    assert head_info is not None
    eye_y = head_info.center_y + (0.5 - CANON[0, 1] / FACE_TILE) * 2 * head_info.half_y
    attachments = rig_attachments(bones_u, accessory_layout(head_info.front_z + 0.02, eye_y))
    bone_list = [{"Name": n, "Parent": p, "Position": [round(float(c), 6) for c in bones[n]]} for n, p in BONE_HIERARCHY]

    skin01 = [round(float(c), 4) for c in colors["skin"]]
    description = {
        **{f"{bp}Color": list(skin01) for bp in BODY_PARTS},
        "HeightScale": 1.0, "WidthScale": 1.0, "DepthScale": 1.0, "HeadScale": 1.0,
        "BodyTypeScale": 0.0, "ProportionScale": 0.0,
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
    return Avatar(description, parts, images, bone_list, attachments, metadata)
