"""What a part looks like: its texture, recoloured where the description's colours changed.

Each part's :class:`~meshes.editable_image.EditableImage` is painted in the colours the
avatar was built with.  Which description colour each texel was painted in is fixed when
the avatar is built and kept in ``metadata["Bases"]`` (part name → PNG of one byte per
texel, the texture's size), with those colours in ``metadata["BuiltColors"]`` (the
description's colour properties as built):

====  ==================================================================
code  the texel was painted in
====  ==================================================================
0     nothing to follow: the texel always shows its own colour (shoes)
1     the part's body colour (``HeadColor`` .. ``RightLegColor``): skin
2     ``ShirtColor``
3     ``PantsColor``
4     the hair accessory's ``Color``
====  ==================================================================

A texel's alpha says how much of it is its own colour rather than that material: the
builder stores skin, cloth and hair at alpha 0 and what must keep its colour (the eyes,
teeth and tongue, the shoes) at 255, and paint drawn on the texture brings its own alpha
(the photo's brows and lips are part of the face's skin layer and follow its colour).
See-through paint drawn over alpha 0 takes the whole texel (EditableImage blends source
over destination, and a transparent destination adds nothing), so on skin, cloth or hair
it shows at full strength, tinted like the material under it.  The surface is, per channel,

    ``a·c + (1 − a)·c·now / built``

with the material's ratio taken in linear light (a change of albedo keeps the texture's
shading and grain).  With the colours as built the surface is the texture's RGB exactly,
so any viewer that ignores alpha shows the avatar as built; a new skin, shirt, trouser
or hair colour recolours its material; opaque paint stays paint.

The glTF export (:mod:`meshes.gltf`) writes these surfaces; the creator page
(``server/web/creator/doc.js`` ``surface``) computes the same.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .r15 import PART_TO_BODY_PART

__all__ = ["BASE_NONE", "BASE_BODY", "BASE_SHIRT", "BASE_PANTS", "BASE_HAIR", "CLOTHING_COLOR_PROPERTIES",
           "encode_bases", "decode_bases", "base_palette", "built_colors", "tint_tables", "surface"]

BASE_NONE, BASE_BODY, BASE_SHIRT, BASE_PANTS, BASE_HAIR = 0, 1, 2, 3, 4
#: Description colours of the clothes (an extension of Roblox's HumanoidDescription).
CLOTHING_COLOR_PROPERTIES = {"ShirtColor": BASE_SHIRT, "PantsColor": BASE_PANTS}


def encode_bases(codes: np.ndarray) -> bytes:
    """PNG (8-bit grey) of a (h,w) base-code map."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(codes, np.uint8), "L").save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def decode_bases(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L"), np.uint8)


def built_colors(description: dict) -> dict:
    """The colour properties of a description (body colours, clothes, hair accessories'
    ``Color``), as the builder keeps them in ``metadata["BuiltColors"]``."""
    out = {k: list(v) for k, v in description.items()
           if k.endswith("Color") and isinstance(v, (list, tuple)) and len(v) == 3}
    out["Accessories"] = [{"Instance": a.get("Instance"), "Color": list(a["Color"])}
                          for a in description.get("Accessories") or []
                          if isinstance(a, dict) and isinstance(a.get("Color"), (list, tuple))]
    return out


def base_palette(colors: dict, part: str) -> np.ndarray:
    """(5,3) float colours 0..1 indexed by base code, for ``part``, from a description (or
    :func:`built_colors`); a colour it lacks is NaN."""
    pal = np.full((5, 3), np.nan)
    body = PART_TO_BODY_PART.get(part)
    for code, value in ((BASE_BODY, colors.get(f"{body}Color") if body else None),
                        (BASE_SHIRT, colors.get("ShirtColor")),
                        (BASE_PANTS, colors.get("PantsColor")),
                        (BASE_HAIR, next((a.get("Color") for a in colors.get("Accessories") or []
                                          if isinstance(a, dict) and a.get("Instance") == part), None))):
        if isinstance(value, (list, tuple)) and len(value) == 3:
            pal[code] = np.clip(np.asarray(value, np.float64), 0.0, 1.0)
    return pal


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(np.maximum(c, 0.0031308), 1 / 2.4) - 0.055)


def tint_tables(now: np.ndarray, then: np.ndarray) -> np.ndarray | None:
    """(5,3,256) float: for each base code and channel, what an 8-bit value painted in
    ``then`` becomes in ``now`` (the ratio applied in linear light, back to 0..255 sRGB,
    not rounded); None when no colour changed.  Codes with a colour missing on either
    side, and code 0, keep their values."""
    ratio = srgb_to_linear(now) / np.maximum(srgb_to_linear(then), 1e-3)
    ratio[np.isnan(ratio).any(axis=1) | (now == then).all(axis=1)] = 1.0
    ratio[BASE_NONE] = 1.0
    if (ratio == 1.0).all():
        return None
    lin = srgb_to_linear(np.arange(256) / 255.0)
    return linear_to_srgb(np.clip(lin[None, None, :] * ratio[:, :, None], 0.0, 1.0)) * 255.0


def surface(avatar, part: str) -> np.ndarray:
    """(h,w,3) uint8: what ``part`` shows (see the module docstring)."""
    px = avatar.images[part].pixels
    rgb = px[..., :3]
    data = (avatar.metadata.get("Bases") or {}).get(part)
    built = avatar.metadata.get("BuiltColors")
    if not isinstance(data, (bytes, bytearray)) or not isinstance(built, dict):
        return rgb.copy()
    codes = decode_bases(bytes(data))
    table = tint_tables(base_palette(avatar.description, part), base_palette(built, part))
    if codes.shape != px.shape[:2] or table is None:
        return rgb.copy()
    tinted = table[codes[..., None], np.arange(3), rgb]
    a = px[..., 3:4] / 255.0
    return np.clip(np.rint(a * rgb + (1.0 - a) * tinted), 0, 255).astype(np.uint8)
