"""The 15 R15 MeshParts of one body shape, in avatar model space.

:func:`assemble` takes source positions (the template's neutral MakeHuman body with
any shape targets and face fit applied; MakeHuman coordinates, decimetres, facing
+Z) and gives each part its positions, per-vertex normals, per-corner UVs and skin,
all through the template's combination matrices, plus the R15 bone positions.

Model space (as :mod:`meshes.avatar`): studs, +Y up, facing −Z, the avatar's left
at −X, the LowerTorso bone (MakeHuman's pelvis joint) at the origin.  MakeHuman's
figure faces +Z with its left at +X, so the change of axes is a half turn about +Y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generation.avatar.template import Template
from meshes.normals import smooth_normals
from meshes.r15 import PART_NAMES, STUD_IN_METERS

__all__ = ["PartGeo", "BodyGeo", "assemble", "to_model", "MH_TO_STUDS", "R15_BONE_SOURCES"]

#: MakeHuman decimetres → studs.
MH_TO_STUDS = 0.1 / STUD_IN_METERS

#: R15 bone → the MakeHuman joint (bone head) it sits on; Root, HumanoidRootNode and
#: LowerTorso sit on the pelvis joint (the origin).
R15_BONE_SOURCES: dict[str, str] = {
    "Root": "pelvis", "HumanoidRootNode": "pelvis", "LowerTorso": "pelvis", "UpperTorso": "spine_02",
    "Head": "neck_01",
}
for _s, _S in (("l", "Left"), ("r", "Right")):
    R15_BONE_SOURCES.update({f"{_S}UpperArm": f"upperarm_{_s}", f"{_S}LowerArm": f"lowerarm_{_s}",
                             f"{_S}Hand": f"hand_{_s}", f"{_S}UpperLeg": f"thigh_{_s}",
                             f"{_S}LowerLeg": f"calf_{_s}", f"{_S}Foot": f"foot_{_s}"})


@dataclass
class PartGeo:
    positions: np.ndarray   # (n,3) float64 model studs
    triangles: np.ndarray   # (m,3) int64
    normals: np.ndarray     # (n,3) unit
    uvs: np.ndarray         # (m,3,2) per corner, 0..1 of this part's own texture (v down)
    joints: np.ndarray      # (n,4) uint16
    weights: np.ndarray     # (n,4) float32
    morphs: dict            # FACS name → (n,3) model-space deltas (studs)
    material: np.ndarray | None = None  # (m,) index into template.MATERIALS (Head only)


@dataclass
class BodyGeo:
    parts: dict[str, PartGeo]
    bones: dict[str, np.ndarray]   # R15 bone → (3,) model studs


def to_model(p: np.ndarray, origin_mh: np.ndarray) -> np.ndarray:
    """MakeHuman decimetres (facing +Z) → model studs (facing −Z), pelvis at the origin."""
    q = (np.asarray(p, np.float64) - origin_mh) * MH_TO_STUDS
    return q * np.array([-1.0, 1.0, -1.0])


def _part_uvs(uv: np.ndarray) -> np.ndarray:
    """The template's packed UVs (v up, as MakeHuman's) → image convention (v down)."""
    u = uv.copy()
    u[..., 1] = 1.0 - u[..., 1]
    return u


def assemble(template: Template, src: np.ndarray, src_normals: np.ndarray | None = None) -> BodyGeo:
    """Every part of the body shape ``src`` (N,3 MakeHuman positions); ``src_normals``
    are its vertex normals when the caller already has them."""
    origin = template.joint_position(src, "pelvis")
    src_n = smooth_normals(src, template.normal_tris) if src_normals is None else src_normals
    parts: dict[str, PartGeo] = {}
    for part in PART_NAMES:
        d = template.parts[part]
        B = d["B"]
        pos = to_model(B @ src, origin)
        n = (B @ src_n) * np.array([-1.0, 1.0, -1.0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        morphs = {k: v * (MH_TO_STUDS * np.array([-1.0, 1.0, -1.0])) for k, v in d.get("morphs", {}).items()}
        parts[part] = PartGeo(pos, d["tris"], n, _part_uvs(d["uvs"]), d["joints"], d["weights"], morphs,
                              d.get("material"))
    bones = {b: to_model(template.joint_position(src, mh), origin) for b, mh in R15_BONE_SOURCES.items()}
    for b in ("Root", "HumanoidRootNode", "LowerTorso"):
        bones[b] = np.zeros(3)
    return BodyGeo(parts, bones)
