"""R15 body layout in unscaled studs: the superellipsoid shape of each of the 15
MeshParts, the 17 bone positions at the joints, and the rig / accessory attachments.

Everything here is in unscaled studs (+Y up, facing −Z, LowerTorso bone at the
origin); :data:`BODY_SCALE` scales it to the final ~5.5-stud avatar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from meshes.r15 import JOINTS, PART_NAMES
from schemas.errors import InvalidParams

__all__ = ["BODY_SCALE", "Shape", "part_layout", "bone_layout", "accessory_layout", "rig_attachments",
           "BodyScales", "SCALE_RANGES", "apply_body_scales"]

#: Uniform scale applied to the layout below (unscaled height 5.82 → ~5.5 studs).
BODY_SCALE = 0.95


@dataclass(frozen=True)
class Shape:
    """A superellipsoid part: centre/half extents in unscaled studs, vertical and
    horizontal exponents (1 = round, <1 = boxier), grid resolution, x/z taper
    (scale at the bottom relative to the top)."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    ev: float
    eh: float
    rings: int
    segs: int
    taper: float = 1.0


def _limb(cx: float, cy: float, cz: float, hx: float, hy: float, hz: float, taper: float = 1.0, ev: float = 0.55,
          eh: float = 0.85) -> Shape:
    return Shape((cx, cy, cz), (hx, hy, hz), ev, eh, 13, 16, taper)


def part_layout() -> dict[str, Shape]:
    s: dict[str, Shape] = {
        "Head": Shape((0.0, 2.42, 0.0), (0.56, 0.64, 0.60), 0.85, 0.85, 40, 48, 0.85),
        "UpperTorso": Shape((0.0, 1.05, 0.0), (0.86, 0.85, 0.48), 0.35, 0.55, 18, 24, 0.85),
        "LowerTorso": Shape((0.0, -0.07, 0.0), (0.76, 0.36, 0.46), 0.40, 0.60, 18, 24, 0.95),
    }
    for side, sx in (("Left", -1.0), ("Right", 1.0)):
        s[f"{side}UpperArm"] = _limb(1.12 * sx, 1.30, 0.0, 0.24, 0.58, 0.26, 0.9)
        s[f"{side}LowerArm"] = _limb(1.12 * sx, 0.33, 0.0, 0.21, 0.55, 0.23, 0.85)
        s[f"{side}Hand"] = _limb(1.12 * sx, -0.38, 0.0, 0.12, 0.30, 0.22, 0.9, ev=0.6, eh=0.7)
        s[f"{side}UpperLeg"] = _limb(0.42 * sx, -0.78, 0.0, 0.30, 0.68, 0.32, 0.8)
        s[f"{side}LowerLeg"] = _limb(0.42 * sx, -1.92, 0.0, 0.25, 0.62, 0.27, 0.85)
        s[f"{side}Foot"] = _limb(0.42 * sx, -2.60, -0.12, 0.26, 0.16, 0.45, 1.0, ev=0.4, eh=0.5)
    return s


def bone_layout() -> dict[str, tuple[float, float, float]]:
    b = {"Root": (0.0, 0.0, 0.0), "HumanoidRootNode": (0.0, 0.0, 0.0), "LowerTorso": (0.0, 0.0, 0.0),
         "UpperTorso": (0.0, 0.25, 0.0), "Head": (0.0, 1.85, 0.0)}
    for side, sx in (("Left", -1.0), ("Right", 1.0)):
        b[f"{side}UpperArm"] = (0.88 * sx, 1.62, 0.0)
        b[f"{side}LowerArm"] = (1.12 * sx, 0.80, 0.0)
        b[f"{side}Hand"] = (1.12 * sx, -0.14, 0.0)
        b[f"{side}UpperLeg"] = (0.42 * sx, -0.30, 0.0)
        b[f"{side}LowerLeg"] = (0.42 * sx, -1.38, 0.0)
        b[f"{side}Foot"] = (0.42 * sx, -2.45, 0.0)
    return b


def accessory_layout(head_front_z: float, eye_y: float) -> dict[str, dict[str, tuple]]:
    """part → accessory attachment → (position, orientation); unscaled studs."""
    a: dict[str, dict[str, tuple]] = {
        "Head": {"FaceCenterAttachment": ((0.0, 2.42, 0.0), (0, 0, 0)),
                 "FaceFrontAttachment": ((0.0, eye_y, head_front_z), (0, 0, 0)),
                 "HatAttachment": ((0.0, 3.06, 0.0), (0, 0, 0)),
                 "HairAttachment": ((0.0, 3.06, 0.0), (0, 0, 0))},
        "UpperTorso": {"NeckAttachment": ((0.0, 1.90, 0.0), (0, 0, 0)),
                       "BodyFrontAttachment": ((0.0, 1.05, -0.48), (0, 0, 0)),
                       "BodyBackAttachment": ((0.0, 1.05, 0.48), (0, 0, 0)),
                       "LeftCollarAttachment": ((-0.5, 1.90, 0.0), (0, 0, 0)),
                       "RightCollarAttachment": ((0.5, 1.90, 0.0), (0, 0, 0))},
        "LowerTorso": {"WaistFrontAttachment": ((0.0, 0.0, -0.46), (0, 0, 0)),
                       "WaistBackAttachment": ((0.0, 0.0, 0.46), (0, 0, 0)),
                       "WaistCenterAttachment": ((0.0, 0.0, 0.0), (0, 0, 0))},
    }
    for side, sx in (("Left", -1.0), ("Right", 1.0)):
        a[f"{side}UpperArm"] = {f"{side}ShoulderAttachment": ((1.12 * sx, 1.88, 0.0), (0, 0, 0))}
        a[f"{side}Hand"] = {f"{side}GripAttachment": ((1.12 * sx, -0.45, 0.0), (90, 0, 0))}
        a[f"{side}Foot"] = {f"{side}FootAttachment": ((0.42 * sx, -2.76, -0.12), (0, 0, 0))}
    return a


def rig_attachments(bones_u: dict[str, tuple], accessory: dict[str, dict[str, tuple]]) -> dict[str, dict[str, dict]]:
    """Rig attachments at the joints (in both parts) + accessory attachments, scaled."""
    out: dict[str, dict[str, dict]] = {p: {} for p in PART_NAMES}

    def put(part: str, name: str, pos, orient=(0, 0, 0)) -> None:
        out[part][name] = {"Position": [round(float(c) * BODY_SCALE, 6) for c in pos],
                           "Orientation": [float(a) for a in orient]}

    for joint, (p0, p1, att) in JOINTS.items():
        pos = bones_u[p1]
        if p0 in out:
            put(p0, att, pos)
        put(p1, att, pos)
    for part, atts in accessory.items():
        for name, (pos, orient) in atts.items():
            put(part, name, pos, orient)
    # RootRigAttachment sits at the model origin by definition
    out["LowerTorso"]["RootRigAttachment"] = {"Position": [0.0, 0.0, 0.0], "Orientation": [0.0, 0.0, 0.0]}
    return out


# --------------------------------------------------------------------------- HumanoidDescription scales

#: Accepted range of each HumanoidDescription scale (BodyTypeScale and ProportionScale
#: are clamped to 0..1 like Roblox; the others are refused outside their range, chosen
#: so every combination stays inside the ProportionsNormal bounds).
SCALE_RANGES: dict[str, tuple[float, float]] = {
    "HeightScale": (0.8, 1.4),
    "WidthScale": (0.7, 1.5),
    "DepthScale": (0.9, 1.5),
    "HeadScale": (0.7, 1.5),
    "BodyTypeScale": (0.0, 1.0),
    "ProportionScale": (0.0, 1.0),
}


@dataclass(frozen=True)
class BodyScales:
    """The six HumanoidDescription scales (defaults: standard R15 = 1, 1, 1, 1, 0, 0).

    Mapping onto the geometry (``factors``): with ``bt = BodyTypeScale`` and
    ``pr = ProportionScale`` (no effect when bt = 0, as in Roblox)::

        sx = WidthScale  · (1 − bt·(0.05 + 0.10·pr))     # Rthro-like: slimmer, more so when narrow
        sy = HeightScale · (1 + 0.10·bt)                  # Rthro-like: taller
        sz = DepthScale  · (1 − bt·(0.02 + 0.04·pr))
        sh = HeadScale   · (1 − 0.05·bt)                  # relatively smaller head

    Every body part, bone and attachment (all but the Head) is scaled by
    diag(sx, sy, sz) about the model origin (the LowerTorso / Root bone, so
    RootRigAttachment stays at 0, 0, 0).  The Head is scaled uniformly by ``sh`` about
    its NeckRigAttachment and moved with the scaled neck, so it is never stretched.
    """

    HeightScale: float = 1.0
    WidthScale: float = 1.0
    DepthScale: float = 1.0
    HeadScale: float = 1.0
    BodyTypeScale: float = 0.0
    ProportionScale: float = 0.0

    @classmethod
    def checked(cls, **kw) -> "BodyScales":
        out = {}
        for name, (lo, hi) in SCALE_RANGES.items():
            v = kw.get(name, getattr(cls, name))
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise InvalidParams(f"{name} must be a number")
            v = float(v)
            if name in ("BodyTypeScale", "ProportionScale"):
                v = min(max(v, 0.0), 1.0)
            elif not lo <= v <= hi:
                raise InvalidParams(f"{name} must be between {lo:g} and {hi:g}, got {v:g}")
            out[name] = v
        return cls(**out)

    def factors(self) -> tuple[np.ndarray, float]:
        """(body (sx, sy, sz), head sh) as described in the class docstring."""
        bt, pr = self.BodyTypeScale, self.ProportionScale
        body = np.array([self.WidthScale * (1 - bt * (0.05 + 0.10 * pr)),
                         self.HeightScale * (1 + 0.10 * bt),
                         self.DepthScale * (1 - bt * (0.02 + 0.04 * pr))])
        return body, self.HeadScale * (1 - 0.05 * bt)

    def as_description(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in SCALE_RANGES}

    @property
    def is_identity(self) -> bool:
        return self == BodyScales()


def apply_body_scales(avatar, scales: BodyScales) -> None:
    """Scale an assembled avatar in place (meshes incl. normals and morph deltas, bones,
    attachments) per :class:`BodyScales`.  Skin weights are unchanged."""
    if scales.is_identity:
        return
    body, sh = scales.factors()
    neck = np.asarray(next(b["Position"] for b in avatar.bones if b["Name"] == "Head"), np.float64)
    neck_new = neck * body

    def tf(part: str, p) -> list[float]:
        p = np.asarray(p, np.float64)
        q = neck_new + sh * (p - neck) if part == "Head" else p * body
        return [round(float(c), 6) for c in q]

    for part, mesh in avatar.parts.items():
        if part == "Head":
            mesh.transform(np.eye(3) * sh, neck_new - sh * neck)
        else:
            mesh.transform(np.diag(body))
    for b in avatar.bones:
        b["Position"] = tf("", b["Position"])
    for part, atts in avatar.attachments.items():
        for att in atts.values():
            att["Position"] = tf(part, att["Position"])
    # rig attachments are shared by two parts: keep both copies on the joint (body transform)
    for part, atts in avatar.attachments.items():
        for name, att in atts.items():
            if name.endswith("RigAttachment") and part == "Head":
                att["Position"] = [round(float(c), 6) for c in neck_new]
