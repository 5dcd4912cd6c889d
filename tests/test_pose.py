"""Linear blend skinning: rotating a joint moves its part and descendants only."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from meshes import Avatar
from meshes.editable_mesh import InvalidEdit
from meshes.pose import bone_transforms, pose, rotation_matrix
from meshes.r15 import BONE_INDEX

STILL = ("UpperTorso", "LowerTorso", "Head", "RightUpperArm", "RightLowerArm", "RightHand",
         "LeftUpperLeg", "LeftLowerLeg", "LeftFoot", "RightUpperLeg", "RightLowerLeg", "RightFoot")


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    from generation.avatar_builder import build_avatar

    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(buf, format="PNG")
    return build_avatar(buf.getvalue())


def test_rest_pose_is_identity(avatar: Avatar):
    posed = pose(avatar, {})
    for part, mesh in avatar.parts.items():
        assert np.allclose(posed[part], mesh.positions, atol=1e-6), part


def test_left_elbow_90_degrees_moves_forearm_and_hand_only(avatar: Avatar):
    posed = pose(avatar, {"LeftElbow": ("x", 90)})  # same as the bone name LeftLowerArm
    assert all(np.array_equal(posed[p], q) for p, q in pose(avatar, {"LeftLowerArm": ("x", 90)}).items())
    elbow = np.asarray(next(b["Position"] for b in avatar.bones if b["Name"] == "LeftLowerArm"))
    for part in STILL:
        assert np.abs(posed[part] - avatar.parts[part].positions).max() < 1e-6, part
    for part in ("LeftLowerArm", "LeftHand"):
        rest = avatar.parts[part].positions.astype(np.float64)
        moved = np.linalg.norm(posed[part] - rest, axis=1)
        # rotating 90° about the elbow moves a point at distance r by r·√2
        r = np.linalg.norm((rest - elbow)[:, 1:], axis=1)
        far = r > 0.4
        assert far.any() and np.allclose(moved[far], r[far] * np.sqrt(2), rtol=0.02), part
        assert moved.max() > 0.5, part
    # the forearm turned 90° about +X at the elbow: the hand's offset from it is rotated
    R = rotation_matrix(("x", 90))
    rest_dir = avatar.parts["LeftHand"].positions.astype(np.float64).mean(axis=0) - elbow
    posed_dir = posed["LeftHand"].mean(axis=0) - elbow
    assert np.linalg.norm(rest_dir[1:]) > 0.5 and np.allclose(posed_dir, R @ rest_dir, atol=0.02)
    # vertices of the upper arm near the elbow move partially, the shoulder end does not
    ua = avatar.parts["LeftUpperArm"]
    d = np.linalg.norm(posed["LeftUpperArm"] - ua.positions, axis=1)
    w_child = np.where(ua.joints == BONE_INDEX["LeftLowerArm"], ua.weights, 0).sum(axis=1)
    assert (d[w_child == 0] < 1e-6).all()
    partial = (w_child > 0) & (w_child < 0.5)
    assert partial.any() and (d[partial] > 1e-4).all()
    # lengths along the forearm are preserved (rigid where fully weighted)
    la = avatar.parts["LeftLowerArm"]
    rigid = la.weights[:, 0] == 1.0
    p0, p1 = la.positions[rigid].astype(np.float64), posed["LeftLowerArm"][rigid]
    assert np.allclose(np.linalg.norm(p0 - elbow, axis=1), np.linalg.norm(p1 - elbow, axis=1), atol=1e-5)


def test_rotations_propagate_down_the_hierarchy(avatar: Avatar):
    posed = pose(avatar, {"LeftShoulder": ("z", -30), "LeftElbow": np.eye(3)})
    for part in ("LeftUpperArm", "LeftLowerArm", "LeftHand"):
        assert np.abs(posed[part] - avatar.parts[part].positions).max() > 0.1, part
    # the torso moves only where MakeHuman's skin gives the shoulder some weight on the arm
    ut = avatar.parts["UpperTorso"]
    arm = np.isin(ut.joints, [BONE_INDEX[b] for b in ("LeftUpperArm", "LeftLowerArm", "LeftHand")])
    on_arm = (arm & (ut.weights > 0)).any(axis=1)
    d = np.linalg.norm(posed["UpperTorso"] - ut.positions, axis=1)
    assert on_arm.any() and (d[~on_arm] < 1e-6).all() and d[on_arm].max() > 0.01
    M, t = bone_transforms(avatar, {"Waist": ("y", 45)})
    i = [b["Name"] for b in avatar.bones].index("Head")
    assert np.allclose(M[i], rotation_matrix(("y", 45)))


def test_bad_rotations_are_refused(avatar: Avatar):
    for bad in ({"Tail": ("x", 10)}, {"LeftElbow": ("w", 10)}, {"LeftElbow": ((0, 0, 0), 10)},
                {"LeftElbow": np.diag([1.0, 1.0, -1.0])}, {"LeftElbow": ("x", float("nan"))}):
        with pytest.raises(InvalidEdit):
            pose(avatar, bad)
