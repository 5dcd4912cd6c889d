"""Skin weights: each part is bound to its own bone, blended with the neighbouring
bone over a band around every joint (50/50 on the joint plane, a smoothstep fade to
rigid ``_BLEND_RADIUS`` studs into the part on either side), so elbows, knees,
wrists, ankles, shoulders, hips and the neck bend smoothly rather than in a step.
At most 2 influences per vertex (limit 4), never the Root bone; weights are
multiples of 1/256 so rows sum to exactly 1."""

from __future__ import annotations

import numpy as np

from generation.body_layout import BODY_SCALE
from meshes.r15 import BONE_HIERARCHY, BONE_INDEX, BONE_PARENTS

__all__ = ["skin_weights"]

#: Skin blend half-width around each joint, studs (before BODY_SCALE).
_BLEND_RADIUS = 0.22


def skin_weights(part: str, pos: np.ndarray, bones: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n,4) joints and weights: rigid to the part's bone, blended 50/50 at each joint
    plane and fading (smoothstep) to rigid over ``_BLEND_RADIUS`` into the part."""
    n = len(pos)
    own = BONE_INDEX[part]
    # (other bone, joint y) pairs touching this part
    pairs: list[tuple[str, float]] = []
    if part != "LowerTorso":
        pairs.append((BONE_PARENTS[part], float(bones[part][1])))
    for child, par in BONE_HIERARCHY:
        if par == part and part not in ("UpperTorso", "LowerTorso"):
            pairs.append((child, float(bones[child][1])))
    centre_y = (pos[:, 1].min() + pos[:, 1].max()) / 2
    r = _BLEND_RADIUS * BODY_SCALE
    best_w = np.zeros(n)
    best_j = np.full(n, own)
    for other, jy in pairs:
        direction = 1.0 if centre_y >= jy else -1.0
        s = (pos[:, 1] - jy) * direction
        x = np.clip(s / r, 0.0, 1.0)
        w = 0.5 * (1.0 - x * x * (3.0 - 2.0 * x))
        w = np.round(w * 256) / 256
        take = w > best_w
        best_w[take] = w[take]
        best_j[take] = BONE_INDEX[other]
    joints = np.zeros((n, 4), np.uint16)
    weights = np.zeros((n, 4), np.float32)
    joints[:, 0] = own
    weights[:, 0] = 1.0 - best_w
    blended = best_w > 0
    joints[blended, 1] = best_j[blended]
    weights[blended, 1] = best_w[blended]
    return joints, weights
