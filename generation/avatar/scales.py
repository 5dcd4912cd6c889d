"""The six HumanoidDescription scales and how they reshape an assembled avatar."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from schemas.errors import InvalidParams

__all__ = ["BodyScales", "SCALE_RANGES", "HEAD_PARTS", "apply_body_scales", "scale_avatar", "fit_within_bounds"]

#: Accepted range of each HumanoidDescription scale (BodyTypeScale and ProportionScale
#: are clamped to 0..1 like Roblox; the others are refused outside their range).  The
#: ranges keep every combination of the MakeHuman body inside Roblox's
#: ProportionsNormal bounds: a real adult's legs are long (3.4 studs, the limit is 4
#: at HeightScale 1.05 with BodyTypeScale 1), the A-pose arms need HeightScale ≥ 0.95
#: to stay 1.5 studs tall, and the head (0.6 studs wide) HeadScale ≥ 0.9 to stay 0.5;
#: the A-pose hands reach forward, so depth and width stop at 1.3.
#: :func:`fit_within_bounds` catches what a body-shape prompt adds on top.
SCALE_RANGES: dict[str, tuple[float, float]] = {
    "HeightScale": (0.95, 1.05),
    "WidthScale": (0.75, 1.3),
    "DepthScale": (0.95, 1.3),
    "HeadScale": (0.9, 1.5),
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


#: Parts that ride on the head (scaled with it, moved with the neck).
HEAD_PARTS = ("Head", "HairAccessory")


def apply_body_scales(avatar, scales: BodyScales) -> None:
    """Scale an assembled avatar in place (meshes incl. normals and morph deltas, bones,
    attachments) per :class:`BodyScales`.  Skin weights are unchanged."""
    if scales.is_identity:
        return
    body, sh = scales.factors()
    scale_avatar(avatar, body, sh)


def scale_avatar(avatar, body: np.ndarray, head: float) -> None:
    """Scale every non-head part, bone and attachment by diag(``body``) about the
    origin; the head parts uniformly by ``head`` about the neck joint, which moves
    with the body."""
    body = np.asarray(body, np.float64)
    neck = np.asarray(next(b["Position"] for b in avatar.bones if b["Name"] == "Head"), np.float64)
    neck_new = neck * body

    def tf(part: str, p) -> list[float]:
        p = np.asarray(p, np.float64)
        q = neck_new + head * (p - neck) if part in HEAD_PARTS else p * body
        return [round(float(c), 6) for c in q]

    for part, mesh in avatar.parts.items():
        if part in HEAD_PARTS:
            mesh.transform(np.eye(3) * head, neck_new - head * neck)
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
            if name.endswith("RigAttachment") and part in HEAD_PARTS:
                att["Position"] = [round(float(c), 6) for c in neck_new]


def fit_within_bounds(avatar, margin: float = 0.005) -> np.ndarray:
    """Keep every body-part asset inside Roblox's ProportionsNormal sizes.

    Extreme scales combined with a tall, heavy or slim prompt can pass a bound by a
    few per cent: if anything is too large, the body (not the head) shrinks uniformly
    just enough; then an axis that is too small somewhere is stretched just enough,
    unless that would push another part past its maximum.
    Returns the per-axis factor applied (ones when nothing was needed)."""
    from meshes.r15 import ASSET_TYPE_OF_BODY_PART, BODY_PARTS
    from meshes.validation import SCALE_TYPE, GetValidationRules

    bounds = GetValidationRules()["BodyPartRules"]

    def ratios():
        up, down = np.ones(3), 0.0
        for bp, parts in BODY_PARTS.items():
            if bp == "Head":
                continue
            lo = np.min([avatar.parts[p].GetBounds()[0] for p in parts], axis=0).astype(np.float64)
            hi = np.max([avatar.parts[p].GetBounds()[1] for p in parts], axis=0).astype(np.float64)
            b = bounds[ASSET_TYPE_OF_BODY_PART[bp]]["Bounds"][SCALE_TYPE]
            up = np.maximum(up, np.asarray(b["MinSize"]) * (1 + margin) / (hi - lo))
            down = max(down, float(((hi - lo) / np.asarray(b["MaxSize"])).max()))
        return up, down

    total = np.ones(3)
    _, down = ratios()
    if down > 1 - margin:
        f = (1 - margin) / down
        scale_avatar(avatar, np.full(3, f), 1.0)
        total *= f
    up, down = ratios()
    if (up > 1).any() and down * up.max() < 1 - margin:
        scale_avatar(avatar, up, 1.0)
        total *= up
    return total
