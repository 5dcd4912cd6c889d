"""Linear blend skinning of an :class:`Avatar` (sans-I/O, numpy only).

``pose(avatar, {"LeftElbow": ("x", 90)})`` returns each MeshPart's posed vertex
positions.  Bones are the avatar's ``bones`` (rest pose: translations only, no
rotation, positions in model-space studs), and a rotation of a bone turns it about
its own head (its rest position) and carries every descendant along::

    G_b(x) = G_parent(p_b + R_b·(x − p_b))         G_Root = identity
    posed(v) = Σᵢ wᵢ · G_{jᵢ}(v)                   (≤ 4 influences per vertex)

Because the rest pose has identity bone rotations, ``G_b`` already maps rest
positions to posed ones (the inverse bind matrix is folded in).  Keys may be bone
names (``LeftLowerArm``) or Motor6D joint names (``LeftElbow``, resolved to the
joint's child part = bone, see :data:`meshes.r15.JOINTS`).  A rotation is a 3×3
matrix or ``(axis, degrees)`` with ``axis`` "x" / "y" / "z" or a 3-vector
(right-handed, model space: +X the character's right, +Y up, −Z forward).
"""

from __future__ import annotations

import math

import numpy as np

from .avatar import Avatar
from .limits import InvalidEdit
from .r15 import JOINTS

__all__ = ["pose", "rotation_matrix", "bone_transforms"]

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def rotation_matrix(spec) -> np.ndarray:
    """3×3 rotation from a matrix or ``(axis, degrees)`` (Rodrigues' formula)."""
    try:
        m = np.asarray(spec, np.float64)
    except (TypeError, ValueError):
        m = None
    if m is not None and m.shape == (3, 3):
        if not np.isfinite(m).all() or not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
            raise InvalidEdit("a rotation matrix must be a finite proper 3×3 rotation")
        return m
    if not isinstance(spec, (list, tuple)) or len(spec) != 2:
        raise InvalidEdit("a rotation is a 3×3 matrix or (axis, degrees)")
    axis, deg = spec
    if isinstance(axis, str):
        if axis.lower() not in _AXES:
            raise InvalidEdit(f"unknown axis {axis!r}; use x, y, z or a vector")
        axis = _AXES[axis.lower()]
    k = np.asarray(axis, np.float64).reshape(-1)
    if k.shape != (3,) or not np.isfinite(k).all() or np.linalg.norm(k) < 1e-12:
        raise InvalidEdit("a rotation axis must be a non-zero 3-vector")
    if isinstance(deg, bool) or not isinstance(deg, (int, float, np.integer, np.floating)) or not math.isfinite(deg):
        raise InvalidEdit("rotation degrees must be a finite number")
    k = k / np.linalg.norm(k)
    t = math.radians(float(deg))
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * (K @ K)


def bone_transforms(avatar: Avatar, rotations: dict) -> tuple[np.ndarray, np.ndarray]:
    """Posed world transforms of ``avatar.bones`` (in list order): (M (B,3,3), t (B,3))
    with ``G_b(x) = M_b·x + t_b``."""
    names = [b["Name"] for b in avatar.bones]
    index = {n: i for i, n in enumerate(names)}
    local: dict[int, np.ndarray] = {}
    if not isinstance(rotations, dict):
        raise InvalidEdit("rotations must be a dict of bone or joint name → rotation")
    for key, spec in rotations.items():
        name = key if key in index else (JOINTS[key][1] if key in JOINTS else None)
        if name not in index:
            raise InvalidEdit(f"no bone or joint named {key!r}")
        local[index[name]] = rotation_matrix(spec)
    B = len(names)
    M = np.tile(np.eye(3), (B, 1, 1))
    t = np.zeros((B, 3))
    done = np.zeros(B, bool)
    for i, b in enumerate(avatar.bones):  # parents come before children
        p = np.asarray(b["Position"], np.float64)
        R = local.get(i, np.eye(3))
        par = b.get("Parent")
        if par is None:
            Mp, tp = np.eye(3), np.zeros(3)
        else:
            j = index.get(par)
            if j is None or not done[j]:
                raise InvalidEdit(f"bone {b['Name']!r} must come after its parent {par!r}")
            Mp, tp = M[j], t[j]
        M[i] = Mp @ R
        t[i] = Mp @ (p - R @ p) + tp
        done[i] = True
    return M, t


def pose(avatar: Avatar, rotations: dict) -> dict[str, np.ndarray]:
    """Posed (n,3) float64 vertex positions per MeshPart (rows as ``mesh.positions``)."""
    M, t = bone_transforms(avatar, rotations)
    out = {}
    for part, mesh in avatar.parts.items():
        x = mesh.positions.astype(np.float64)
        j = mesh.joints.astype(np.int64)
        w = mesh.weights.astype(np.float64)
        if (j[w > 0] >= len(M)).any():
            raise InvalidEdit(f"{part} is skinned to a bone that does not exist")
        j = np.where(w > 0, j, 0)
        # Σ w·(M_j x + t_j), vectorised over the 4 influence slots
        mx = np.einsum("nkab,nb->nka", M[j], x) + t[j]
        posed = np.einsum("nk,nka->na", w, mx)
        unskinned = w.sum(axis=1) <= 0
        posed[unskinned] = x[unskinned]
        out[part] = posed
    return out
