"""GetValidationRules and validate_full_body: the built avatar passes; each
deliberately broken avatar fails with a sentence naming the part."""

from __future__ import annotations

import io

import msgpack
import numpy as np
import pytest
from PIL import Image

from meshes import Avatar, EditableImage, GetValidationRules, apply_op, set_uv_op, validate_full_body
from meshes.validation import watertight_problem


@pytest.fixture(scope="module")
def built() -> Avatar:
    from generation.avatar_builder import build_avatar

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(buf, format="PNG")
    return build_avatar(buf.getvalue())


@pytest.fixture
def avatar(built: Avatar) -> Avatar:
    return built.copy()


def _fails(avatar: Avatar, *needles: str) -> list[str]:
    ok, reasons = validate_full_body(avatar)
    assert not ok
    text = "\n".join(reasons)
    for n in needles:
        assert n in text, f"{n!r} not in:\n{text}"
    assert all(r.endswith(".") for r in reasons)
    return reasons


def test_validation_rules_have_roblox_keys():
    r = GetValidationRules()
    assert r["MeshRules"]["BodyPartMaxTriangles"] == {
        "DynamicHead": 4000, "Torso": 1750, "LeftArm": 1248, "RightArm": 1248, "LeftLeg": 1248, "RightLeg": 1248}
    assert r["MeshRules"]["MaxBoneInfluences"] == 4 and r["MeshRules"]["RequireWatertight"] is True
    assert r["TextureRules"]["MaxTextureSize"] == 1024
    head = r["BodyPartRules"]["DynamicHead"]["Bounds"]["ProportionsNormal"]
    assert head == {"MinSize": [0.5, 0.5, 0.5], "MaxSize": [3.0, 2.0, 2.0]}
    assert r["BodyPartRules"]["Torso"]["Bounds"]["ProportionsNormal"]["MaxSize"] == [4.6, 3.5, 2.25]
    assert r["BodyPartRules"]["Torso"]["SubParts"]["LowerTorso"]["RigAttachments"][0] == "RootRigAttachment"
    assert r["AttachmentRules"]["Head"]["HatAttachment"]["y"] == [0.49, 1.10]
    assert r["FullBodyRules"]["Bones"][0] == {"Name": "Root", "Parent": None}
    msgpack.packb(r)  # wire-safe
    r["MeshRules"]["MaxBoneInfluences"] = 99
    assert GetValidationRules()["MeshRules"]["MaxBoneInfluences"] == 4  # a copy


def test_built_avatar_validates(avatar: Avatar):
    assert validate_full_body(avatar) == (True, [])


def test_missing_and_extra_parts(avatar: Avatar):
    avatar.parts["Tail"] = avatar.parts.pop("LeftHand")
    _fails(avatar, "The LeftHand MeshPart is missing", "Tail is not an R15 body part")


def test_triangle_budget(avatar: Avatar):
    head = avatar.parts["Head"]
    ids = head.GetVertices()
    for k in range(4001 - head.triangle_count):
        head.AddTriangle(ids[k], ids[k + 1], ids[k + 2])
    _fails(avatar, "Head (Head) has", "the DynamicHead limit is 4000")


def test_bounds_per_part_asset_and_body(avatar: Avatar):
    leg = avatar.parts["RightUpperLeg"]
    leg.SetPosition(leg.GetVertices()[0], (0.4, -12.0, 0.0))
    _fails(avatar, "RightLeg is", "RightUpperLeg is", "The full body is")


def test_textures_and_uvs(avatar: Avatar):
    avatar.images["Head"] = EditableImage((16, 16))
    avatar.images["Head"]._px = np.zeros((2048, 16, 4), np.uint8)  # bypass the size guard on purpose
    del avatar.images["LeftHand"]
    foot = avatar.parts["LeftFoot"]
    foot._U.cols["val"][0] = (1.5, 0.0)  # bypass the op guard on purpose
    hand = avatar.parts["RightHand"]
    uid = hand.GetFaceUVs(hand.GetFaces()[50])
    for u in uid:
        hand.SetUV(u, (0.5, 0.5))  # collapse one UV triangle
    _fails(avatar, "Head's texture is 16x2048", "LeftHand has no texture", "LeftFoot has UVs outside 0..1",
           "zero-area UV triangles")
    assert any(r.startswith("RightHand has") and "zero-area UV" in r for r in validate_full_body(avatar)[1])


def test_op_guard_keeps_uvs_in_range(avatar: Avatar):
    from meshes import InvalidEdit

    with pytest.raises(InvalidEdit):
        apply_op(avatar, set_uv_op("LeftFoot", None, (1.5, 0.0), uv_id=1))
    assert validate_full_body(avatar)[0]


def test_skin_influences_and_root(avatar: Avatar):
    avatar.parts["RightHand"].SetVertexSkin(1, [0], [1.0])  # Root
    la = avatar.parts["LeftLowerArm"]
    j, w = la.joints, la.weights
    j[0], w[0] = (3, 4, 5, 6), (0.25, 0.25, 0.25, 0.25)
    la._V.cols["jnt"][:1], la._V.cols["wgt"][:1] = j[:1], w[:1]
    la._V.cols["wgt"][1] = (0.5, 0.0, 0.0, 0.0)  # does not sum to 1
    _fails(avatar, "RightHand has skin weight on the Root bone", "LeftLowerArm has vertices whose skin weights")


def test_watertight_and_degenerate(avatar: Avatar):
    arm = avatar.parts["LeftUpperArm"]
    arm.RemoveFace(arm.GetFaces()[10])  # a hole
    leg = avatar.parts["LeftLowerLeg"]
    f = leg.GetFaces()[20]
    a, b, c = leg.GetFaceVertices(f)
    leg.SetFaceVertices(f, [a, c, b])  # flipped winding
    _fails(avatar, "LeftUpperArm is not watertight", "edges have no opposite face",
           "LeftLowerLeg is not watertight", "same direction")
    assert watertight_problem(np.eye(3), [[0, 1, 2]]) is not None


def test_attachments(avatar: Avatar):
    att = avatar.attachments
    del att["UpperTorso"]["NeckRigAttachment"]
    att["LeftUpperArm"]["LeftElbowRigAttachment"]["Orientation"] = [0.0, 10.0, 0.0]
    att["LowerTorso"]["RootRigAttachment"]["Position"] = [0.0, 0.1, 0.0]
    att["Head"]["HatAttachment"]["Position"] = list(avatar.parts["Head"].GetCenter())  # not in the top half
    att["UpperTorso"]["HatAttachment"] = {"Position": [0, 1, 0], "Orientation": [0, 0, 0]}  # wrong part
    att["LeftFoot"]["WingAttachment"] = {"Position": [0, 0, 0], "Orientation": [0, 0, 0]}
    _fails(avatar, "UpperTorso is missing its NeckRigAttachment", "LeftUpperArm's LeftElbowRigAttachment is rotated",
           "RootRigAttachment must be at (0, 0, 0)", "Head's HatAttachment is outside its allowed region",
           "UpperTorso has a HatAttachment, which belongs to Head", "LeftFoot has an unknown attachment")


def test_bones(avatar: Avatar):
    avatar.bones[5]["Parent"] = "Head"
    avatar.bones.append({"Name": "Tail", "Parent": "LowerTorso", "Position": [0, 0, 1]})
    _fails(avatar, f"The {avatar.bones[5]['Name']} bone's parent is 'Head'", "Unexpected bones ['Tail']")


def test_head_morph_targets_must_keep_the_head_size(avatar: Avatar):
    head = avatar.parts["Head"]
    d = np.zeros((head.vertex_count, 3), np.float32)
    d[:, 1] = (head.positions[:, 1] - head.GetCenter()[1]) * 0.5  # grows the head 150 % in Y
    head.SetMorphTarget("JawDrop", d)
    head.SetMorphTarget("LeftEyeClosed", d * 0.01)  # fine
    reasons = _fails(avatar, "Head's morph target JawDrop changes the head's size")
    assert not any("LeftEyeClosed" in r for r in reasons)
