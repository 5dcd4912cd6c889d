"""Rig and accessory attachments of the assembled body, placed from the bones and
each part's bounds so they land in the regions Roblox's validation checks
(:data:`meshes.r15.ATTACHMENT_REGIONS`)."""

from __future__ import annotations

import numpy as np

from meshes.r15 import ATTACHMENT_REGIONS, JOINTS, PART_NAMES

__all__ = ["attachments", "fit_joints_to_regions"]

# accessory attachment → (part, (x, y, z) position as a fraction of the part's half
# size from its centre; x is model +X, z model +Z = the back)
_ACCESSORY: dict[str, tuple[str, tuple[float, float, float]]] = {
    "FaceCenterAttachment": ("Head", (0.0, 0.15, 0.0)),
    "FaceFrontAttachment": ("Head", (0.0, 0.3, -0.9)),
    "HatAttachment": ("Head", (0.0, 0.95, 0.0)),
    "HairAttachment": ("Head", (0.0, 0.95, 0.0)),
    "NeckAttachment": ("UpperTorso", (0.0, 0.9, 0.0)),
    "BodyFrontAttachment": ("UpperTorso", (0.0, 0.1, -0.8)),
    "BodyBackAttachment": ("UpperTorso", (0.0, 0.1, 0.8)),
    "LeftCollarAttachment": ("UpperTorso", (-0.45, 0.85, 0.0)),
    "RightCollarAttachment": ("UpperTorso", (0.45, 0.85, 0.0)),
    "WaistFrontAttachment": ("LowerTorso", (0.0, 0.0, -0.8)),
    "WaistBackAttachment": ("LowerTorso", (0.0, 0.0, 0.8)),
    "WaistCenterAttachment": ("LowerTorso", (0.0, 0.0, 0.0)),
    "LeftShoulderAttachment": ("LeftUpperArm", (0.0, 0.8, 0.0)),
    "RightShoulderAttachment": ("RightUpperArm", (0.0, 0.8, 0.0)),
    "LeftGripAttachment": ("LeftHand", (0.0, -0.3, 0.0)),
    "RightGripAttachment": ("RightHand", (0.0, -0.3, 0.0)),
    "LeftFootAttachment": ("LeftFoot", (0.0, -0.9, 0.0)),
    "RightFootAttachment": ("RightFoot", (0.0, -0.9, 0.0)),
}


def _vec(p) -> list[float]:
    return [round(float(c), 6) for c in p]


def fit_joints_to_regions(bones: dict[str, np.ndarray], bounds: dict[str, tuple[np.ndarray, np.ndarray]],
                          margin: float = 0.03) -> dict[str, np.ndarray]:
    """Move each joint's bone (per axis, as little as needed) into the part of space
    where its rig attachment is allowed in *both* parts it joins.

    MakeHuman's hip joints sit mid-height in the pelvis and its ankles at the very
    top of the foot; Roblox wants each joint in the bottom / top fifth of the parts
    it joins.  The moves are a few centimetres and only shift skinning pivots."""
    out = {k: np.asarray(v, np.float64).copy() for k, v in bones.items()}
    for _joint, (p0, p1, att) in JOINTS.items():
        if p0 not in bounds:
            continue
        p = out[p1]
        for k, axis in enumerate("xyz"):
            lo_all, hi_all = -np.inf, np.inf
            for part in (p0, p1):
                lo, hi = (np.asarray(b, np.float64) for b in bounds[part])
                c, h = (lo[k] + hi[k]) / 2, max((hi[k] - lo[k]) / 2, 1e-9)
                a, b = ATTACHMENT_REGIONS[part][att][axis]
                lo_all, hi_all = max(lo_all, c + (a + margin) * h), min(hi_all, c + (b - margin) * h)
            if lo_all <= hi_all:
                p[k] = min(max(p[k], lo_all), hi_all)
    return out


def attachments(bones: dict[str, np.ndarray], bounds: dict[str, tuple[np.ndarray, np.ndarray]]
                ) -> dict[str, dict[str, dict]]:
    """part → attachment name → {"Position", "Orientation"}: each rig attachment at
    its joint's bone in both parts, RootRigAttachment at the origin, accessory
    attachments at fixed fractions of their part's bounds."""
    out: dict[str, dict[str, dict]] = {p: {} for p in PART_NAMES}
    for _joint, (p0, p1, att) in JOINTS.items():
        pos = _vec(bones[p1])
        for part in (p0, p1):
            if part in out:
                out[part][att] = {"Position": list(pos), "Orientation": [0.0, 0.0, 0.0]}
    out["LowerTorso"]["RootRigAttachment"] = {"Position": [0.0, 0.0, 0.0], "Orientation": [0.0, 0.0, 0.0]}
    for name, (part, rel) in _ACCESSORY.items():
        lo, hi = (np.asarray(b, np.float64) for b in bounds[part])
        pos = (lo + hi) / 2 + np.asarray(rel) * (hi - lo) / 2
        orient = [90.0, 0.0, 0.0] if name.endswith("GripAttachment") else [0.0, 0.0, 0.0]
        out[part][name] = {"Position": _vec(pos), "Orientation": orient}
    return out
