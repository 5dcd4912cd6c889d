"""Body validation: ``GetValidationRules()`` and ``validate_full_body(avatar)``.

Numbers are the published ones from shared/research/roblox-api.md §5 (triangle
budgets §5.1, body-part bounding boxes §5.2 in studs X×Y×Z, textures §5.4,
attachment regions §5.5, skinning §5.7).  Bounds are checked against
``ProportionsNormal`` (the scale type the builder produces).
"""

from __future__ import annotations

import copy

import numpy as np

from .avatar import Avatar
from .editable_image import MAX_IMAGE_SIZE
from .limits import MAX_TRIANGLES, MAX_VERTICES
from .r15 import (
    ACCESSORY_ATTACHMENTS,
    ACCESSORY_PARTS,
    ASSET_TYPE_OF_BODY_PART,
    ATTACHMENT_REGIONS,
    BODY_PARTS,
    BONE_INDEX,
    BONE_HIERARCHY,
    PART_NAMES,
    RIG_ATTACHMENTS,
    TRIANGLE_BUDGETS,
)

__all__ = ["GetValidationRules", "validate_full_body", "watertight_problem", "SCALE_TYPE"]

SCALE_TYPE = "ProportionsNormal"

_MIN = {"DynamicHead": [0.5, 0.5, 0.5], "Torso": [0.85, 1.7, 0.7], "Arm": [0.25, 1.5, 0.25],
        "Leg": [0.25, 1.4, 0.5], "FullBody": [1.35, 3.6, 0.7]}
_MAX = {
    "ProportionsNormal": {"DynamicHead": [3, 2, 2], "Arm": [2, 4.5, 2], "Torso": [4.6, 3.5, 2.25],
                          "Leg": [1.5, 4, 2], "FullBody": [8.6, 9.5, 2.25]},
    "ProportionsSlender": {"DynamicHead": [2, 2, 2], "Arm": [1.5, 4, 2], "Torso": [3, 3.5, 2],
                           "Leg": [1.5, 4, 2], "FullBody": [6, 9.5, 2]},
    "Classic": {"DynamicHead": [1.5, 1.8, 2], "Arm": [2, 3, 2], "Torso": [4, 3.8, 2],
                "Leg": [1.5, 3.5, 2], "FullBody": [8, 9.1, 2]},
}
_KIND = {"DynamicHead": "DynamicHead", "Torso": "Torso", "LeftArm": "Arm", "RightArm": "Arm",
         "LeftLeg": "Leg", "RightLeg": "Leg", "FullBody": "FullBody"}

#: Per-MeshPart size range in studs (validation-system defaults).
MESHPART_MIN_SIZE = 0.05
MESHPART_MAX_SIZE = 4.0
#: Tolerance for a rig attachment being exactly at the origin, studs.
_EPS = 1e-4

_RULES: dict = {
    "MeshRules": {
        "BodyPartMaxTriangles": dict(TRIANGLE_BUDGETS),
        "AccessoryMaxTriangles": 4000,
        "EditableMeshMaxVertices": MAX_VERTICES,
        "EditableMeshMaxTriangles": MAX_TRIANGLES,
        "MeshPartMinSize": MESHPART_MIN_SIZE,
        "MeshPartMaxSize": MESHPART_MAX_SIZE,
        "MaxBoneInfluences": 4,
        "RequireWatertight": True,
        "MinTriangleArea": 1e-10,
        "MinUVTriangleArea": 1e-12,
        "FacsMinScale": 0.95,
        "FacsMaxScale": 1.20,
    },
    "TextureRules": {"MaxTextureSize": MAX_IMAGE_SIZE, "UVRange": [0.0, 1.0]},
    "AttachmentRules": {
        part: {name: {axis: list(rng) for axis, rng in region.items()} for name, region in ATTACHMENT_REGIONS[part].items()}
        for part in PART_NAMES
    },
    "BodyPartRules": {
        asset: {
            "Bounds": {
                scale: {"MinSize": list(_MIN[_KIND[asset]]), "MaxSize": [float(x) for x in _MAX[scale][_KIND[asset]]]}
                for scale in _MAX
            },
            "SubParts": {
                part: {
                    "RigAttachments": list(RIG_ATTACHMENTS[part]),
                    "OtherAttachments": list(ACCESSORY_ATTACHMENTS[part]),
                }
                for part in BODY_PARTS[bp]
            },
        }
        for bp, asset in ASSET_TYPE_OF_BODY_PART.items()
    },
    "FullBodyRules": {
        "Bounds": {scale: {"MinSize": list(_MIN["FullBody"]), "MaxSize": [float(x) for x in _MAX[scale]["FullBody"]]}
                   for scale in _MAX},
        "PartNames": list(PART_NAMES),
        "Bones": [{"Name": n, "Parent": p} for n, p in BONE_HIERARCHY],
    },
}


def GetValidationRules() -> dict:
    """The rules dictionary with Roblox's keys (a fresh copy every call)."""
    return copy.deepcopy(_RULES)


def _fmt(v) -> str:
    return " × ".join(f"{float(x):.2f}" for x in v)


def validate_full_body(avatar: Avatar) -> tuple[bool, list[str]]:
    """Check a full R15 body; returns ``(ok, failure_reasons)``.

    Checks: exactly the 15 R15 MeshParts; triangle budget per body-part asset;
    each part watertight (closed 2-manifold with consistent winding, vertices welded
    by position) with no zero-area triangles; a texture ≤ 1024² and every face
    corner's UV inside 0..1 with no zero-area UV triangles; finite geometry; every
    vertex skinned with ≤ 4 influences summing to 1, none on Root, joint indices
    valid; Head morph targets keep the head within 95–120 % of its size; asset,
    part and full-body bounds within ProportionsNormal ranges; the bone hierarchy;
    every rig attachment present exactly once in each of its two parts (once in
    LowerTorso for RootRigAttachment, at the origin), unrotated and in its region;
    accessory attachments in their part and region.  Each reason is a sentence
    naming the part.
    """
    reasons: list[str] = []
    present = set(avatar.parts)
    for part in PART_NAMES:
        if part not in present:
            reasons.append(f"The {part} MeshPart is missing; a full body needs all 15 R15 parts.")
    for part in sorted(present - set(PART_NAMES) - set(ACCESSORY_PARTS)):
        reasons.append(f"{part} is not an R15 body part or a known accessory; only the 15 R15 MeshParts "
                       f"and {', '.join(ACCESSORY_PARTS)} are allowed.")
    for part in sorted(present & set(ACCESSORY_PARTS)):
        reasons += _check_accessory(avatar, part)

    # ---- triangle budgets per asset
    counts = avatar.body_part_triangle_counts()
    for bp, parts in BODY_PARTS.items():
        asset = ASSET_TYPE_OF_BODY_PART[bp]
        tris = counts[asset]
        if tris > TRIANGLE_BUDGETS[asset]:
            reasons.append(
                f"{bp} ({', '.join(parts)}) has {tris} triangles; the {asset} limit is {TRIANGLE_BUDGETS[asset]}."
            )

    nbones = len(avatar.bones)
    root_index = next((i for i, b in enumerate(avatar.bones) if b.get("Name") == "Root"), None)

    for part in [p for p in PART_NAMES if p in avatar.parts]:
        mesh = avatar.parts[part]
        if mesh.triangle_count == 0:
            reasons.append(f"{part} has no triangles.")
            continue
        pos = mesh.positions
        if not np.isfinite(pos).all():
            reasons.append(f"{part} has non-finite vertex positions.")
            continue
        # textures
        img = avatar.images.get(part)
        if img is None:
            reasons.append(f"{part} has no texture.")
        else:
            w, h = img.Size
            if w > MAX_IMAGE_SIZE or h > MAX_IMAGE_SIZE:
                reasons.append(f"{part}'s texture is {w}x{h}; the maximum is {MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE}.")
        tri = mesh.triangles
        used = np.zeros(mesh.vertex_count, bool)
        used[tri.reshape(-1)] = True
        cuv = mesh.corner_uvs().astype(np.float64)
        if not (np.isfinite(cuv).all() and (cuv >= 0).all() and (cuv <= 1).all()):
            reasons.append(f"{part} has UVs outside 0..1.")
        else:
            e1, e2 = cuv[:, 1] - cuv[:, 0], cuv[:, 2] - cuv[:, 0]
            uv_area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
            bad = int((uv_area < _RULES["MeshRules"]["MinUVTriangleArea"]).sum())
            if bad:
                reasons.append(f"{part} has {bad} zero-area UV triangles.")
        p64 = pos.astype(np.float64)
        area = 0.5 * np.linalg.norm(np.cross(p64[tri[:, 1]] - p64[tri[:, 0]], p64[tri[:, 2]] - p64[tri[:, 0]]), axis=1)
        bad = int((area < _RULES["MeshRules"]["MinTriangleArea"]).sum())
        if bad:
            reasons.append(f"{part} has {bad} zero-area triangles.")
        why = watertight_problem(pos, tri)
        if why:
            reasons.append(f"{part} is not watertight: {why}.")
        if part == "Head":
            reasons += _check_morphs(part, mesh)
        # skinning
        j, wts = mesh.joints.astype(np.int64), mesh.weights.astype(np.float64)
        nonzero = wts > 0
        if (nonzero.sum(axis=1) > 4).any():
            reasons.append(f"{part} has vertices with more than 4 bone influences.")
        if not np.allclose(wts[used].sum(axis=1), 1.0, atol=1e-3):
            reasons.append(f"{part} has vertices whose skin weights do not sum to 1 (or are unskinned).")
        if (j[nonzero] >= nbones).any():
            reasons.append(f"{part} is skinned to a bone index that does not exist.")
        if root_index is not None and (nonzero & (j == root_index)).any():
            reasons.append(f"{part} has skin weight on the Root bone; Root must not influence vertices.")
        # per-MeshPart size
        size = pos[used].max(axis=0) - pos[used].min(axis=0)
        if (size < MESHPART_MIN_SIZE).any() or (size > MESHPART_MAX_SIZE).any():
            reasons.append(f"{part} is {_fmt(size)} studs; each axis must be {MESHPART_MIN_SIZE}..{MESHPART_MAX_SIZE}.")

    # ---- bounds per asset and full body
    rules = _RULES["BodyPartRules"]
    all_lo, all_hi = [], []
    for bp, parts in BODY_PARTS.items():
        have = [p for p in parts if p in avatar.parts and avatar.parts[p].vertex_count]
        if len(have) != len(parts):
            continue
        lo = np.min([avatar.parts[p].GetBounds()[0] for p in have], axis=0)
        hi = np.max([avatar.parts[p].GetBounds()[1] for p in have], axis=0)
        all_lo.append(lo)
        all_hi.append(hi)
        b = rules[ASSET_TYPE_OF_BODY_PART[bp]]["Bounds"][SCALE_TYPE]
        size = hi - lo
        if (size < np.asarray(b["MinSize"]) - 1e-6).any() or (size > np.asarray(b["MaxSize"]) + 1e-6).any():
            reasons.append(
                f"{bp} is {_fmt(size)} studs; {SCALE_TYPE} allows {_fmt(b['MinSize'])} to {_fmt(b['MaxSize'])}."
            )
    if len(all_lo) == len(BODY_PARTS):
        size = np.max(all_hi, axis=0) - np.min(all_lo, axis=0)
        fb = _RULES["FullBodyRules"]["Bounds"][SCALE_TYPE]
        if (size < np.asarray(fb["MinSize"]) - 1e-6).any() or (size > np.asarray(fb["MaxSize"]) + 1e-6).any():
            reasons.append(f"The full body is {_fmt(size)} studs; {SCALE_TYPE} allows "
                           f"{_fmt(fb['MinSize'])} to {_fmt(fb['MaxSize'])}.")

    reasons += _check_bones(avatar)
    reasons += _check_attachments(avatar)
    return (not reasons), reasons


def _check_accessory(avatar: Avatar, part: str) -> list[str]:
    """An accessory MeshPart: within the accessory triangle budget, textured ≤ 1024²
    with UVs in 0..1, finite, every vertex skinned to the Head bone only, and hung
    from its Head attachment (the same position as the Head's)."""
    out = []
    mesh = avatar.parts[part]
    limit = _RULES["MeshRules"]["AccessoryMaxTriangles"]
    if mesh.triangle_count == 0:
        return [f"{part} has no triangles."]
    if mesh.triangle_count > limit:
        out.append(f"{part} has {mesh.triangle_count} triangles; the accessory limit is {limit}.")
    if not np.isfinite(mesh.positions).all():
        out.append(f"{part} has non-finite vertex positions.")
    img = avatar.images.get(part)
    if img is None:
        out.append(f"{part} has no texture.")
    elif max(img.Size) > MAX_IMAGE_SIZE:
        out.append(f"{part}'s texture is {img.Size[0]}x{img.Size[1]}; "
                   f"the maximum is {MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE}.")
    cuv = mesh.corner_uvs()
    if not (np.isfinite(cuv).all() and (cuv >= 0).all() and (cuv <= 1).all()):
        out.append(f"{part} has UVs outside 0..1.")
    head = next((i for i, b in enumerate(avatar.bones) if isinstance(b, dict) and b.get("Name") == "Head"), None)
    j, w = mesh.joints.astype(np.int64), mesh.weights.astype(np.float64)
    if head is None or ((w > 0) & (j != head)).any() or not np.allclose(w.sum(axis=1), 1.0, atol=1e-3):
        out.append(f"{part} must be skinned to the Head bone only.")
    _, att_name = ACCESSORY_PARTS[part]

    def position(owner: str):
        atts = avatar.attachments.get(owner)
        att = atts.get(att_name) if isinstance(atts, dict) else None
        pos = att.get("Position") if isinstance(att, dict) else None
        return np.asarray(pos, np.float64) if _is_vec3(pos) else None

    mine, theirs = position(part), position("Head")
    if mine is None or theirs is None or not np.allclose(mine, theirs, atol=1e-4):
        out.append(f"{part} must hang from the Head's {att_name}.")
    return out


def watertight_problem(positions: np.ndarray, triangles: np.ndarray) -> str | None:
    """Why a mesh is not a closed, consistently wound 2-manifold (vertices welded by
    exact position, so UV-seam duplicates count as one), or ``None`` when it is."""
    tri = np.asarray(triangles, np.int64)
    if len(tri) == 0:
        return "it has no triangles"
    _, key = np.unique(np.asarray(positions, np.float32), axis=0, return_inverse=True)
    t = key.reshape(-1)[tri]
    if ((t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 0] == t[:, 2])).any():
        return "a triangle collapses to an edge"
    a = np.concatenate([t[:, 0], t[:, 1], t[:, 2]])
    b = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])
    k = int(key.max()) + 1
    fwd = a * k + b
    rev = b * k + a
    uniq, counts = np.unique(fwd, return_counts=True)
    if (counts > 1).any():
        return f"{int((counts > 1).sum())} edges are used twice in the same direction (inconsistent winding or non-manifold)"
    missing = int((~np.isin(rev, uniq)).sum())
    if missing:
        return f"{missing} edges have no opposite face (holes)"
    return None


def _check_morphs(part: str, mesh) -> list[str]:
    out = []
    lo, hi = mesh.GetBounds()
    size = np.maximum(hi.astype(np.float64) - lo, 1e-9)
    pos = mesh.positions.astype(np.float64)
    r = _RULES["MeshRules"]
    for name in mesh.GetMorphTargetNames():
        p = pos + mesh.morph_deltas(name)
        if not np.isfinite(p).all():
            out.append(f"{part}'s morph target {name} has non-finite deltas.")
            continue
        ratio = (p.max(axis=0) - p.min(axis=0)) / size
        if (ratio < r["FacsMinScale"] - 1e-6).any() or (ratio > r["FacsMaxScale"] + 1e-6).any():
            out.append(f"{part}'s morph target {name} changes the head's size to {_fmt(ratio * 100)} %; "
                       f"allowed {r['FacsMinScale'] * 100:.0f}..{r['FacsMaxScale'] * 100:.0f} %.")
    return out


def _check_bones(avatar: Avatar) -> list[str]:
    out = []
    have = {b.get("Name"): b for b in avatar.bones}
    for name, parent in BONE_HIERARCHY:
        b = have.get(name)
        if b is None:
            out.append(f"The {name} bone is missing from the skeleton.")
        elif b.get("Parent") != parent:
            out.append(f"The {name} bone's parent is {b.get('Parent')!r}; it must be {parent!r}.")
    for name in ("Root", "LowerTorso"):
        b = have.get(name)
        if b is not None and np.abs(np.asarray(b.get("Position", [0, 0, 0]), float)).max() > _EPS:
            out.append(f"The {name} bone must be at (0, 0, 0).")
    extra = sorted(n for n in have if n not in BONE_INDEX)
    if extra:
        out.append(f"Unexpected bones {extra}; only the R15 bones are allowed.")
    return out


def _check_attachments(avatar: Avatar) -> list[str]:
    out = []
    # where each attachment name belongs (rig attachments: both parts of their joint)
    home: dict[str, set[str]] = {}
    for part in PART_NAMES:
        for name in RIG_ATTACHMENTS[part] + ACCESSORY_ATTACHMENTS[part]:
            home.setdefault(name, set()).add(part)
    seen: dict[str, list[str]] = {}
    for part, atts in avatar.attachments.items():
        if part in ACCESSORY_PARTS:
            continue  # checked by _check_accessory
        if not isinstance(atts, dict):
            out.append(f"{part}'s attachments are malformed.")
            continue
        for name, att in atts.items():
            seen.setdefault(name, []).append(part)
            if name not in home:
                out.append(f"{part} has an unknown attachment {name}.")
            elif part not in home[name]:
                out.append(f"{part} has a {name}, which belongs to {', '.join(sorted(home[name]))}.")
            pos, ori = att.get("Position"), att.get("Orientation", [0, 0, 0]) if isinstance(att, dict) else (None, None)
            if not isinstance(att, dict) or not _is_vec3(pos) or not _is_vec3(ori):
                out.append(f"{part}'s {name} needs a finite Position and Orientation (3 numbers each).")
    for name, parts in seen.items():
        if name in home and len(parts) > len(set(parts)):
            out.append(f"{name} appears more than once in {parts[0]}.")
    for part in PART_NAMES:
        if part not in avatar.parts or avatar.parts[part].vertex_count == 0:
            continue
        atts = avatar.attachments.get(part, {})
        lo, hi = avatar.parts[part].GetBounds()
        centre, half = (lo.astype(np.float64) + hi) / 2, np.maximum((hi.astype(np.float64) - lo) / 2, 1e-6)
        for name in RIG_ATTACHMENTS[part]:
            if name not in atts:
                out.append(f"{part} is missing its {name}.")
                continue
            if not _is_vec3(atts[name].get("Position")) or not _is_vec3(atts[name].get("Orientation", [0, 0, 0])):
                continue
            if any(abs(float(a)) > 1e-6 for a in atts[name].get("Orientation", [0, 0, 0])):
                out.append(f"{part}'s {name} is rotated; rig attachments must have orientation (0, 0, 0).")
        for name, region in ATTACHMENT_REGIONS[part].items():
            if name not in atts or not _is_vec3(atts[name].get("Position")):
                continue
            rel = (np.asarray(atts[name]["Position"], np.float64) - centre) / half
            for axis, k in (("x", 0), ("y", 1), ("z", 2)):
                a, b = region[axis]
                if not a - 1e-6 <= rel[k] <= b + 1e-6:
                    out.append(f"{part}'s {name} is outside its allowed region ({axis} = {rel[k]:+.2f} of the "
                               f"half-size; allowed {a:+.2f}..{b:+.2f}).")
                    break
        root = atts.get("RootRigAttachment") if part == "LowerTorso" else None
        if root is not None and np.abs(np.asarray(root["Position"], float)).max() > _EPS:
            out.append("LowerTorso's RootRigAttachment must be at (0, 0, 0).")
    return out


def _is_vec3(v) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 3
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c) for c in v))
