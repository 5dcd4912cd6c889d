"""Avatar: a HumanoidDescription-like bundle of 15 editable R15 MeshParts.

Spaces and units: every position (mesh vertices, bones, attachments) is in
**avatar model space, studs**: +Y up, facing −Z, the LowerTorso/Root bone at
(0, 0, 0), parts assembled in their rest pose (no per-part transform).  A part's
Roblox-style local position is ``model_position - part_center(part)``.

* ``description``: HumanoidDescription with Roblox property names, JSON-/msgpack-
  friendly (colours as [r, g, b] floats 0..1), plus ``BodyParts`` (6
  BodyPartDescriptions ``{"BodyPart", "Color", "Instance": [MeshPart names]}``)
  and ``Accessories`` (list of AccessoryDescription dicts).
* ``parts``: MeshPart name → :class:`EditableMesh` (skin joints index ``bones``).
* ``images``: MeshPart name → :class:`EditableImage` (that part's colour texture).
* ``bones``: list of ``{"Name", "Parent" (str | None), "Position": [x, y, z]}``,
  parents before children, in :data:`meshes.r15.BONE_NAMES` order.
* ``attachments``: part → attachment name → ``{"Position": [x, y, z],
  "Orientation": [rx, ry, rz] degrees}``.
* ``metadata``: free msgpack-friendly dict (generator notes, prompt words used).

Description edits (the ``SetProperty`` op): :meth:`Avatar.set_property` changes one
of :data:`SETTABLE_PROPERTIES` -- the six ``*Color`` properties ([r, g, b] 0..1; the
matching ``BodyParts[i].Color`` follows, as in Roblox), ``ShirtColor`` and ``PantsColor``
(this bundle's clothes; how colours show through the textures: :mod:`meshes.surface`), the six scales (ranges from
the HumanoidDescription JSON Schema) and ``Accessories`` (a list of at most
:data:`~meshes.limits.MAX_ACCESSORIES` AccessoryDescription dicts, schema-checked).
Sizes are checked before contents: a list longer than its property allows is refused
by its length alone, and no value may hold more than
:data:`~meshes.limits.MAX_PROPERTY_VALUES` values in all, so an oversized edit costs
no per-item work.  Integers must fit in int64.  Only the description changes: the
geometry is edited with mesh ops.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct

import numpy as np

from schemas.humanoid import humanoid_description_schema, schema_errors

from .editable_image import EditableImage
from .editable_mesh import EditableMesh
from .limits import INT64_MAX, INT64_MIN, MAX_ACCESSORIES, MAX_PROPERTY_VALUES, InvalidEdit
from .r15 import ASSET_TYPE_OF_BODY_PART, BODY_PARTS, PART_TO_BODY_PART
from .surface import CLOTHING_COLOR_PROPERTIES

__all__ = ["Avatar", "canonical_hash", "SETTABLE_PROPERTIES", "COLOR_PROPERTIES", "SCALE_PROPERTIES"]

#: HumanoidDescription colour properties (→ the BodyPart of the same name).
COLOR_PROPERTIES: dict[str, str] = {f"{bp}Color": bp for bp in BODY_PARTS}
SCALE_PROPERTIES = ("HeightScale", "WidthScale", "DepthScale", "HeadScale", "BodyTypeScale", "ProportionScale")
#: What the ``SetProperty`` op may change.
SETTABLE_PROPERTIES = (*COLOR_PROPERTIES, *CLOTHING_COLOR_PROPERTIES, *SCALE_PROPERTIES, "Accessories")


@functools.lru_cache(maxsize=1)
def _description_schema() -> dict:
    """The HumanoidDescription schema, read once (never mutated)."""
    return humanoid_description_schema()


@functools.lru_cache(maxsize=None)
def _max_items(name: str) -> int:
    """Longest list property ``name`` accepts (0: it is not a list)."""
    schema = _description_schema()
    prop = schema["properties"][name]
    if "$ref" in prop:
        prop = schema["$defs"][prop["$ref"].rsplit("/", 1)[-1]]
    most = int(prop.get("maxItems", 0)) if prop.get("type") == "array" else 0
    return min(most, MAX_ACCESSORIES) if name == "Accessories" else most


class Avatar:
    """The editable avatar bundle (see module docstring for spaces and shapes)."""

    def __init__(
        self,
        description: dict,
        parts: dict[str, EditableMesh],
        images: dict[str, EditableImage],
        bones: list[dict],
        attachments: dict[str, dict[str, dict]],
        metadata: dict | None = None,
    ) -> None:
        self.description = description
        self.parts = parts
        self.images = images
        self.bones = bones
        self.attachments = attachments
        self.metadata = metadata or {}

    # ------------------------------------------------------------------ queries

    def triangle_count(self, part: str) -> int:
        """Triangles in one MeshPart."""
        if part not in self.parts:
            raise KeyError(part)
        return self.parts[part].triangle_count

    def body_part_triangle_counts(self) -> dict[str, int]:
        """Enum.AssetType name (DynamicHead, Torso, ...) → triangles over its present parts."""
        out = {ASSET_TYPE_OF_BODY_PART[bp]: 0 for bp in BODY_PARTS}
        for name, mesh in self.parts.items():
            bp = PART_TO_BODY_PART.get(name)
            if bp is not None:
                out[ASSET_TYPE_OF_BODY_PART[bp]] += mesh.triangle_count
        return out

    def part_bounds(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) (3,) float32 in model-space studs."""
        return self.parts[part].GetBounds()

    def part_center(self, part: str) -> np.ndarray:
        lo, hi = self.part_bounds(part)
        return ((lo.astype(np.float64) + hi) / 2).astype(np.float32)

    def bone_positions(self) -> dict[str, np.ndarray]:
        return {b["Name"]: np.asarray(b["Position"], np.float64) for b in self.bones}

    # ------------------------------------------------------------------ description edits

    @staticmethod
    def check_property(name: object, value: object) -> object:
        """Validate a ``SetProperty`` edit; returns the value as it will be stored
        (numbers as floats, lists as lists).  Raises :class:`InvalidEdit`."""
        if not isinstance(name, str) or name not in SETTABLE_PROPERTIES:
            raise InvalidEdit(f"property {name!r} cannot be set; allowed: {list(SETTABLE_PROPERTIES)}")
        if isinstance(value, tuple):
            value = list(value)
        # Sizes first, so a huge value is refused before any per-item work.
        if isinstance(value, list) and len(value) > _max_items(name):
            most = _max_items(name)
            raise InvalidEdit(f"{name} takes at most {most} items, got {len(value)}" if most
                              else f"{name} takes a single value, not a list")
        _check_plain(value, name, budget=[MAX_PROPERTY_VALUES])
        schema = _description_schema()
        errs = schema_errors(value, schema["properties"][name], schema, f"$.{name}")
        if errs:
            raise InvalidEdit("; ".join(errs[:3]))
        if name in COLOR_PROPERTIES or name in CLOTHING_COLOR_PROPERTIES:
            return [float(c) for c in value]
        if name in SCALE_PROPERTIES:
            return float(value)
        return _plain_copy(value)

    def set_property(self, name: str, value: object) -> None:
        """Set a HumanoidDescription property (see :data:`SETTABLE_PROPERTIES`); a
        colour also sets the matching ``BodyParts`` entry's ``Color``."""
        v = self.check_property(name, value)
        self.description[name] = v
        if name in COLOR_PROPERTIES:
            for bp in self.description.get("BodyParts") or []:
                if isinstance(bp, dict) and bp.get("BodyPart") == COLOR_PROPERTIES[name]:
                    bp["Color"] = list(v)

    # ------------------------------------------------------------------ wire

    def to_wire(self, image_format: str = "RGBA8") -> dict:
        """Msgpack-friendly dict (str/int/float/bool/None/bytes/list/dict only).

        ``image_format`` "RGBA8" (raw pixels) or "PNG" (lossless, smaller)."""
        return {
            "type": "Avatar",
            "version": 1,
            "description": _plain_copy(self.description),
            "bones": _plain_copy(self.bones),
            "attachments": _plain_copy(self.attachments),
            "metadata": _plain_copy(self.metadata),
            "parts": {name: mesh.to_wire() for name, mesh in self.parts.items()},
            "images": {name: img.to_wire(image_format) for name, img in self.images.items()},
        }

    @classmethod
    def from_wire(cls, d: dict) -> "Avatar":
        keys = {"type", "version", "description", "bones", "attachments", "metadata", "parts", "images"}
        if not isinstance(d, dict) or set(d) != keys or d.get("type") != "Avatar" or d.get("version") != 1:
            raise InvalidEdit("not an Avatar wire document (version 1)")
        for k in ("description", "attachments", "metadata", "parts", "images"):
            if not isinstance(d[k], dict):
                raise InvalidEdit(f"avatar {k} must be a dict")
        if not isinstance(d["bones"], list):
            raise InvalidEdit("avatar bones must be a list")
        _check_plain(d["description"], "description")
        _check_plain(d["bones"], "bones")
        _check_plain(d["attachments"], "attachments")
        _check_plain(d["metadata"], "metadata")
        parts = {str(k): EditableMesh.from_wire(v) for k, v in d["parts"].items()}
        images = {str(k): EditableImage.from_wire(v) for k, v in d["images"].items()}
        return cls(
            description=_plain_copy(d["description"]),
            parts=parts,
            images=images,
            bones=_plain_copy(d["bones"]),
            attachments=_plain_copy(d["attachments"]),
            metadata=_plain_copy(d["metadata"]),
        )

    def copy(self) -> "Avatar":
        return Avatar.from_wire(self.to_wire())

    def content_hash(self) -> str:
        """sha256 hex over a canonical serialisation of everything in the bundle.

        Dict keys are sorted, floats are hashed as IEEE-754 doubles (integral ones up
        to 2**53 as the integer) and arrays as dtype + shape + little-endian bytes, so equal content gives equal hashes
        whatever the construction order; any vertex move or pixel write changes it.
        """
        return canonical_hash(self.to_wire("RGBA8"))

    def __repr__(self) -> str:
        tris = sum(m.triangle_count for m in self.parts.values())
        return f"Avatar({len(self.parts)} parts, {tris} triangles, {len(self.images)} images)"


# --------------------------------------------------------------------------- canonical hashing


#: Integral floats up to 2**53 in magnitude hash as integers (README, "The document content hash").
_EXACT_INT = 2**53


def canonical_hash(obj: object) -> str:
    """sha256 hex of a type-tagged canonical encoding of a msgpack-friendly value."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: "hashlib._Hash", obj: object) -> None:
    if obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"T" if obj else b"F")
    elif isinstance(obj, (int, np.integer)):
        s = str(int(obj)).encode()
        h.update(b"i" + struct.pack("<I", len(s)) + s)
    elif isinstance(obj, (float, np.floating)):
        f = float(obj)
        if f.is_integer() and abs(f) <= _EXACT_INT:  # 1.0 hashes as 1: msgpack readers in other
            _feed(h, int(f))                        # languages (JavaScript) cannot tell them apart
        else:
            h.update(b"f" + struct.pack("<d", f))
    elif isinstance(obj, str):
        s = obj.encode("utf-8")
        h.update(b"s" + struct.pack("<Q", len(s)) + s)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        h.update(b"b" + struct.pack("<Q", len(b)))
        h.update(b)
    elif isinstance(obj, (list, tuple)):
        h.update(b"l" + struct.pack("<Q", len(obj)))
        for x in obj:
            _feed(h, x)
    elif isinstance(obj, dict):
        h.update(b"d" + struct.pack("<Q", len(obj)))
        for k in sorted(obj, key=lambda k: str(k)):
            _feed(h, str(k))
            _feed(h, obj[k])
    else:
        raise TypeError(f"cannot hash {type(obj).__name__}")


def _check_plain(obj: object, where: str, depth: int = 0, budget: list[int] | None = None) -> None:
    """Only str/int/float/bool/None/bytes/list/dict with str keys; finite floats.

    With ``budget=[n]`` (edits): at most n values in all, each container refused by
    its length before its items are looked at, and every int must fit in int64."""
    if depth > 32:
        raise InvalidEdit(f"{where}: nested too deeply")
    if budget is not None:
        budget[0] -= 1
        if budget[0] < (len(obj) if isinstance(obj, (list, tuple, dict)) else 0):
            raise InvalidEdit(f"{where}: the value holds more than {MAX_PROPERTY_VALUES} values")
    if obj is None or isinstance(obj, (bool, str, bytes)):
        return
    if isinstance(obj, int):
        if budget is not None and not INT64_MIN <= obj <= INT64_MAX:
            raise InvalidEdit(f"{where}: the integer {obj} does not fit in int64")
        return
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise InvalidEdit(f"{where}: non-finite number")
        return
    if isinstance(obj, (list, tuple)):
        for x in obj:
            _check_plain(x, where, depth + 1, budget)
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise InvalidEdit(f"{where}: keys must be strings")
            _check_plain(v, where, depth + 1, budget)
        return
    raise InvalidEdit(f"{where}: unsupported value of type {type(obj).__name__}")


def _plain_copy(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _plain_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain_copy(x) for x in obj]
    return obj
