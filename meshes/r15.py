"""The R15 rig as data (names exactly as Roblox spells them).

Sources: shared/research/roblox-api.md §3 (parts, joints, attachments, bone
hierarchy) and §5.1 (triangle budgets).  Conventions used across ``meshes``:
studs, +Y up, the character faces −Z (Roblox's LookVector), so its right side
is +X.  1 stud = 0.28 m.
"""

from __future__ import annotations

__all__ = [
    "STUD_IN_METERS",
    "PART_NAMES",
    "BODY_PARTS",
    "PART_TO_BODY_PART",
    "ASSET_TYPE_OF_BODY_PART",
    "TRIANGLE_BUDGETS",
    "BONES",
    "BONE_HIERARCHY",
    "BONE_PARENTS",
    "PARTS",
    "BONE_NAMES",
    "BONE_INDEX",
    "PART_BONE",
    "JOINTS",
    "RIG_ATTACHMENTS",
    "ACCESSORY_ATTACHMENTS",
    "ACCESSORY_PARTS",
    "ATTACHMENT_REGIONS",
    "BODY_PART_COLOR_PROPERTY",
    "BODY_PART_R15_ENUM",
]

#: 1 stud in meters (glTF export unit).
STUD_IN_METERS = 0.28

#: The 15 R15 MeshParts, with their Enum.BodyPartR15 values.
PART_NAMES: tuple[str, ...] = (
    "Head",
    "UpperTorso",
    "LowerTorso",
    "LeftUpperArm",
    "LeftLowerArm",
    "LeftHand",
    "RightUpperArm",
    "RightLowerArm",
    "RightHand",
    "LeftUpperLeg",
    "LeftLowerLeg",
    "LeftFoot",
    "RightUpperLeg",
    "RightLowerLeg",
    "RightFoot",
)
#: Alias of PART_NAMES.
PARTS = PART_NAMES
BODY_PART_R15_ENUM = {
    "Head": 0, "UpperTorso": 1, "LowerTorso": 2, "LeftFoot": 3, "LeftLowerLeg": 4, "LeftUpperLeg": 5,
    "RightFoot": 6, "RightLowerLeg": 7, "RightUpperLeg": 8, "LeftHand": 9, "LeftLowerArm": 10,
    "LeftUpperArm": 11, "RightHand": 12, "RightLowerArm": 13, "RightUpperArm": 14,
}

#: Enum.BodyPart (the 6 BodyPartDescriptions) → the MeshParts it holds.
BODY_PARTS: dict[str, tuple[str, ...]] = {
    "Head": ("Head",),
    "Torso": ("UpperTorso", "LowerTorso"),
    "LeftArm": ("LeftUpperArm", "LeftLowerArm", "LeftHand"),
    "RightArm": ("RightUpperArm", "RightLowerArm", "RightHand"),
    "LeftLeg": ("LeftUpperLeg", "LeftLowerLeg", "LeftFoot"),
    "RightLeg": ("RightUpperLeg", "RightLowerLeg", "RightFoot"),
}
PART_TO_BODY_PART: dict[str, str] = {p: bp for bp, parts in BODY_PARTS.items() for p in parts}

#: Enum.BodyPart → Enum.AssetType name (used by validation rules).
ASSET_TYPE_OF_BODY_PART: dict[str, str] = {
    "Head": "DynamicHead",
    "Torso": "Torso",
    "LeftArm": "LeftArm",
    "RightArm": "RightArm",
    "LeftLeg": "LeftLeg",
    "RightLeg": "RightLeg",
}

#: HumanoidDescription colour property per body part.
BODY_PART_COLOR_PROPERTY: dict[str, str] = {bp: f"{bp}Color" for bp in BODY_PARTS}

#: Max triangles per body-part asset (Enum.AssetType name → triangles).
TRIANGLE_BUDGETS: dict[str, int] = {
    "DynamicHead": 4000,
    "Torso": 1750,
    "LeftArm": 1248,
    "RightArm": 1248,
    "LeftLeg": 1248,
    "RightLeg": 1248,
}

#: Skinned-avatar bone hierarchy as (name, parent), parents first.
BONE_HIERARCHY: tuple[tuple[str, str | None], ...] = (
    ("Root", None),
    ("HumanoidRootNode", "Root"),
    ("LowerTorso", "HumanoidRootNode"),
    ("UpperTorso", "LowerTorso"),
    ("Head", "UpperTorso"),
    ("LeftUpperArm", "UpperTorso"),
    ("LeftLowerArm", "LeftUpperArm"),
    ("LeftHand", "LeftLowerArm"),
    ("RightUpperArm", "UpperTorso"),
    ("RightLowerArm", "RightUpperArm"),
    ("RightHand", "RightLowerArm"),
    ("LeftUpperLeg", "LowerTorso"),
    ("LeftLowerLeg", "LeftUpperLeg"),
    ("LeftFoot", "LeftLowerLeg"),
    ("RightUpperLeg", "LowerTorso"),
    ("RightLowerLeg", "RightUpperLeg"),
    ("RightFoot", "RightLowerLeg"),
)
BONE_NAMES: tuple[str, ...] = tuple(n for n, _ in BONE_HIERARCHY)
#: The 17 bone names (alias of BONE_NAMES), skin joint order.
BONES = BONE_NAMES
#: bone name → parent bone name (None for Root).
BONE_PARENTS: dict[str, str | None] = dict(BONE_HIERARCHY)
BONE_INDEX: dict[str, int] = {n: i for i, n in enumerate(BONE_NAMES)}
#: The bone each MeshPart is (rigidly) bound to: the bone of the same name.
PART_BONE: dict[str, str] = {p: p for p in PART_NAMES}

#: Motor6D joints: name → (Part0 parent, Part1 child, rig attachment name).
JOINTS: dict[str, tuple[str, str, str]] = {
    "Root": ("HumanoidRootPart", "LowerTorso", "RootRigAttachment"),
    "Waist": ("LowerTorso", "UpperTorso", "WaistRigAttachment"),
    "Neck": ("UpperTorso", "Head", "NeckRigAttachment"),
    "LeftShoulder": ("UpperTorso", "LeftUpperArm", "LeftShoulderRigAttachment"),
    "LeftElbow": ("LeftUpperArm", "LeftLowerArm", "LeftElbowRigAttachment"),
    "LeftWrist": ("LeftLowerArm", "LeftHand", "LeftWristRigAttachment"),
    "RightShoulder": ("UpperTorso", "RightUpperArm", "RightShoulderRigAttachment"),
    "RightElbow": ("RightUpperArm", "RightLowerArm", "RightElbowRigAttachment"),
    "RightWrist": ("RightLowerArm", "RightHand", "RightWristRigAttachment"),
    "LeftHip": ("LowerTorso", "LeftUpperLeg", "LeftHipRigAttachment"),
    "LeftKnee": ("LeftUpperLeg", "LeftLowerLeg", "LeftKneeRigAttachment"),
    "LeftAnkle": ("LeftLowerLeg", "LeftFoot", "LeftAnkleRigAttachment"),
    "RightHip": ("LowerTorso", "RightUpperLeg", "RightHipRigAttachment"),
    "RightKnee": ("RightUpperLeg", "RightLowerLeg", "RightKneeRigAttachment"),
    "RightAnkle": ("RightLowerLeg", "RightFoot", "RightAnkleRigAttachment"),
}

#: Rig attachments each MeshPart must hold exactly once (derived from JOINTS).
RIG_ATTACHMENTS: dict[str, tuple[str, ...]] = {
    p: tuple(att for _, (p0, p1, att) in JOINTS.items() if p in (p0, p1)) for p in PART_NAMES
}

#: Accessory / grip attachments per MeshPart.
ACCESSORY_ATTACHMENTS: dict[str, tuple[str, ...]] = {
    "Head": ("FaceCenterAttachment", "FaceFrontAttachment", "HatAttachment", "HairAttachment"),
    "UpperTorso": ("NeckAttachment", "BodyFrontAttachment", "BodyBackAttachment",
                   "LeftCollarAttachment", "RightCollarAttachment"),
    "LowerTorso": ("WaistFrontAttachment", "WaistBackAttachment", "WaistCenterAttachment"),
    "LeftUpperArm": ("LeftShoulderAttachment",),
    "RightUpperArm": ("RightShoulderAttachment",),
    "LeftLowerArm": (),
    "RightLowerArm": (),
    "LeftHand": ("LeftGripAttachment",),
    "RightHand": ("RightGripAttachment",),
    "LeftUpperLeg": (),
    "RightUpperLeg": (),
    "LeftLowerLeg": (),
    "RightLowerLeg": (),
    "LeftFoot": ("LeftFootAttachment",),
    "RightFoot": ("RightFootAttachment",),
}

#: Accessory MeshParts a bundle may carry besides the 15 body parts: name →
#: (AccessoryType, the Head attachment it hangs from).  Rigidly skinned to the Head.
ACCESSORY_PARTS: dict[str, tuple[str, str]] = {"HairAccessory": ("Hair", "HairAttachment")}

#: Placement regions (roblox-api.md §5.5).  Each entry maps an axis to an allowed
#: interval of ``(position - part centre) / (part size / 2)``; ±1 is the mesh bounds.
FULL = {"x": (-1.10, 1.10), "y": (-1.10, 1.10), "z": (-1.10, 1.10)}
TOP = {**FULL, "y": (0.49, 1.10)}
BOTTOM = {**FULL, "y": (-1.10, -0.49)}
FRONT = {**FULL, "z": (-1.10, -0.49)}
BACK = {**FULL, "z": (0.49, 1.10)}
FULL_EXTENDED = {"x": (-1.25, 1.25), "y": (-1.25, 1.25), "z": (-1.25, 1.25)}


def _regions() -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    r: dict[str, dict[str, dict[str, tuple[float, float]]]] = {p: {} for p in PART_NAMES}
    r["Head"] = {"NeckRigAttachment": BOTTOM, "HatAttachment": TOP, "HairAttachment": TOP,
                 "FaceFrontAttachment": FRONT, "FaceCenterAttachment": FULL}
    r["UpperTorso"] = {"WaistRigAttachment": BOTTOM, "NeckRigAttachment": TOP,
                       "LeftShoulderRigAttachment": TOP, "RightShoulderRigAttachment": TOP,
                       "NeckAttachment": {**FULL_EXTENDED, "y": (0.49, 1.25)},
                       "BodyFrontAttachment": FRONT, "BodyBackAttachment": BACK,
                       "LeftCollarAttachment": {**FULL, "x": (-1.10, -0.29)},
                       "RightCollarAttachment": {**FULL, "x": (0.29, 1.10)}}
    r["LowerTorso"] = {"RootRigAttachment": FULL, "WaistRigAttachment": TOP,
                       "LeftHipRigAttachment": BOTTOM, "RightHipRigAttachment": BOTTOM,
                       "WaistFrontAttachment": FRONT, "WaistBackAttachment": BACK,
                       "WaistCenterAttachment": FULL}
    for side in ("Left", "Right"):
        r[f"{side}UpperArm"] = {f"{side}ShoulderRigAttachment": TOP, f"{side}ElbowRigAttachment": BOTTOM,
                                f"{side}ShoulderAttachment": TOP}
        r[f"{side}LowerArm"] = {f"{side}ElbowRigAttachment": TOP, f"{side}WristRigAttachment": BOTTOM}
        r[f"{side}Hand"] = {f"{side}WristRigAttachment": TOP, f"{side}GripAttachment": FULL_EXTENDED}
        r[f"{side}UpperLeg"] = {f"{side}HipRigAttachment": TOP, f"{side}KneeRigAttachment": BOTTOM}
        r[f"{side}LowerLeg"] = {f"{side}KneeRigAttachment": TOP, f"{side}AnkleRigAttachment": BOTTOM}
        r[f"{side}Foot"] = {f"{side}AnkleRigAttachment": TOP, f"{side}FootAttachment": FULL}
    return r


#: part → attachment name → allowed normalised region.
ATTACHMENT_REGIONS = _regions()
