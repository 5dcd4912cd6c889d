"""EditableMesh / EditableImage / Avatar wire + hash / edit ops / validation."""

from __future__ import annotations

import io
import math

import msgpack
import numpy as np
import pytest
from PIL import Image

from meshes import (
    MAX_TRIANGLES,
    MAX_VERTICES,
    PART_NAMES,
    Avatar,
    EditableImage,
    EditableMesh,
    GetValidationRules,
    InvalidEdit,
    MeshLimitExceeded,
    apply_op,
    draw_circle_op,
    draw_rectangle_op,
    set_position_op,
    set_uv_op,
    validate_full_body,
    write_pixels_op,
)
from schemas.errors import InputRejected


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built() -> Avatar:
    from generation.avatar_builder import build_avatar

    rng = np.random.default_rng(7)
    px = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="PNG")
    return build_avatar(buf.getvalue(), text_prompt="green shirt")


@pytest.fixture
def avatar(built: Avatar) -> Avatar:
    return built.copy()


def _wire_trip(obj: dict) -> dict:
    return msgpack.unpackb(msgpack.packb(obj, use_bin_type=True), raw=False)


def _quad() -> EditableMesh:
    m = EditableMesh()
    ids = [m.AddVertex(p) for p in [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0.5, 0.5, 1)]]
    m.AddTriangle(ids[0], ids[1], ids[2])
    m.AddTriangle(ids[0], ids[2], ids[3])
    return m


# --------------------------------------------------------------------------- EditableMesh


def test_stable_ids_survive_removal():
    m = _quad()
    assert m.GetVertices() == [1, 2, 3, 4, 5]
    m.RemoveVertex(4)  # face 2 used vertex 4 and goes with it
    assert m.GetVertices() == [1, 2, 3, 5]
    assert m.GetFaces() == [1]
    assert m.GetPosition(5) == (0.5, 0.5, 1.0)
    assert m.AddVertex((2, 2, 2)) == 6  # ids are never reused
    f = m.AddTriangle(1, 3, 5)
    assert f == 3 and m.GetFaces() == [1, 3]
    m.RemoveFace(1)
    assert m.GetFaces() == [3] and m.GetFaceVertices(3) == [1, 3, 5]
    assert m.triangles.tolist() == [[0, 2, 3]]  # row indices for export
    with pytest.raises(InvalidEdit):
        m.GetPosition(4)
    with pytest.raises(InvalidEdit):
        m.RemoveFace(1)
    assert sorted(m.RemoveUnused()) == [2, 6]
    assert m.GetVertices() == [1, 3, 5]


def test_positions_uvs_skin_and_queries():
    m = _quad()
    m.SetPosition(2, (3.0, -1.5, 0.25))
    assert m.GetPosition(2) == (3.0, -1.5, 0.25)
    m.SetUV(2, (0.25, 0.75))
    assert m.GetUV(2) == (0.25, 0.75)
    m.SetVertexSkin(2, [3, 4], [3.0, 1.0])
    assert m.GetVertexBones(2) == [3, 4]
    assert m.GetVertexBoneWeights(2) == [0.75, 0.25]
    assert m.FindClosestVertex((2.9, -1.4, 0.2)) == 2
    assert m.FindClosestVertex((0.1, 0.9, 0.0)) == 4
    assert sorted(m.FindVerticesWithinSphere((0, 0, 0), 1.01)) == [1, 4]
    n = m.computed_normals()
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    for bad in ([5, 6, 7, 8, 9], [1, 1]):
        with pytest.raises(InvalidEdit):
            m.SetVertexSkin(2, bad, [1.0] * len(bad))
    with pytest.raises(InvalidEdit):
        m.SetPosition(2, (math.nan, 0, 0))
    with pytest.raises(InvalidEdit):
        m.AddTriangle(1, 1, 2)
    with pytest.raises(InvalidEdit):
        m.AddTriangle(1, 2, 99)


def test_vertex_and_triangle_limits():
    pos = np.zeros((MAX_VERTICES, 3), np.float32)
    m = EditableMesh.from_arrays(pos, np.zeros((0, 3), np.int64))
    with pytest.raises(MeshLimitExceeded) as e:
        m.AddVertex((0, 0, 0))
    assert isinstance(e.value, InputRejected) and e.value.status == 422
    assert m.vertex_count == MAX_VERTICES
    with pytest.raises(MeshLimitExceeded):
        EditableMesh.from_arrays(np.zeros((MAX_VERTICES + 1, 3)), np.zeros((0, 3), np.int64))
    tris = np.tile([[0, 1, 2]], (MAX_TRIANGLES, 1))
    m2 = EditableMesh.from_arrays(np.eye(3), tris)
    with pytest.raises(MeshLimitExceeded):
        m2.AddTriangle(1, 2, 3)
    assert m2.triangle_count == MAX_TRIANGLES
    with pytest.raises(MeshLimitExceeded):
        EditableMesh.from_arrays(np.eye(3), np.tile([[0, 1, 2]], (MAX_TRIANGLES + 1, 1)))


def test_mesh_wire_round_trip_is_exact():
    m = _quad()
    m.RemoveVertex(3)
    m.SetPosition(5, (0.1, 0.2, 0.3))
    m.SetVertexSkin(5, [2, 7], [0.3, 0.7])
    back = EditableMesh.from_wire(_wire_trip(m.to_wire()))
    assert back == m
    assert back.GetVertices() == m.GetVertices() and back.GetFaces() == m.GetFaces()
    assert back.AddVertex((0, 0, 0)) == m.AddVertex((0, 0, 0)) == 6
    w = m.to_wire()
    w["positions"]["data"] = w["positions"]["data"][:-4]
    with pytest.raises(InvalidEdit):
        EditableMesh.from_wire(w)
    w = m.to_wire()
    w["faces"] = EditableMesh.from_arrays(np.eye(3), [[0, 1, 2]]).to_wire()["faces"]
    w["face_ids"] = EditableMesh.from_arrays(np.eye(3), [[0, 1, 2]]).to_wire()["face_ids"]
    w["faces"]["data"] = np.array([[1, 2, 99]], "<i8").tobytes()
    with pytest.raises(InvalidEdit):
        EditableMesh.from_wire(w)


# --------------------------------------------------------------------------- EditableImage


def test_image_buffers_draw_and_round_trips():
    img = EditableImage((8, 4))
    assert img.Size == (8, 4)
    block = bytes(range(2 * 3 * 4))
    img.WritePixelsBuffer((5, 1), (2, 3), block)
    assert img.ReadPixelsBuffer((5, 1), (2, 3)) == block
    img.DrawRectangle((0, 0), (100, 100), (1.0, 0.0, 0.0), 0.0)  # clipped to the canvas
    assert img.ReadPixelsBuffer((7, 3), (1, 1)) == bytes([255, 0, 0, 255])
    img.DrawRectangle((0, 0), (1, 1), (0.0, 0.0, 1.0), 0.5)
    assert img.ReadPixelsBuffer((0, 0), (1, 1)) == bytes([128, 0, 128, 255])
    img.DrawCircle((4, 2), 1, (0.0, 1.0, 0.0), 0.0)
    assert img.ReadPixelsBuffer((4, 2), (1, 1)) == bytes([0, 255, 0, 255])
    for fmt in ("RGBA8", "PNG"):
        assert EditableImage.from_wire(_wire_trip(img.to_wire(fmt))) == img
    assert EditableImage.from_png(img.to_png()) == img
    with pytest.raises(InvalidEdit):
        img.WritePixelsBuffer((7, 0), (2, 1), bytes(8))  # outside
    with pytest.raises(InvalidEdit):
        img.WritePixelsBuffer((0, 0), (2, 1), bytes(7))  # wrong length
    with pytest.raises(InvalidEdit):
        img.ReadPixelsBuffer((-1, 0), (1, 1))
    with pytest.raises(InvalidEdit):
        img.DrawRectangle((8, 0), (1, 1), (1, 1, 1), 0)  # position outside
    with pytest.raises(InvalidEdit):
        EditableImage((1025, 16))


# --------------------------------------------------------------------------- Avatar wire + hash


def test_avatar_wire_round_trip_keeps_hash(avatar: Avatar):
    h = avatar.content_hash()
    assert len(h) == 64
    for fmt in ("RGBA8", "PNG"):
        back = Avatar.from_wire(_wire_trip(avatar.to_wire(fmt)))
        assert back.content_hash() == h
        assert set(back.parts) == set(PART_NAMES)
        assert back.description == avatar.description and back.bones == avatar.bones


def test_ops_change_hash_and_copies_converge(avatar: Avatar):
    other = avatar.copy()
    h0 = avatar.content_hash()
    assert other.content_hash() == h0
    head = avatar.parts["Head"]
    vid = head.GetVertices()[10]
    x, y, z = head.GetPosition(vid)
    ops = [
        set_position_op("Head", vid, (x, y, z - 0.05)),
        set_uv_op("LeftHand", 3, (0.5, 0.5)),
        write_pixels_op("Head", (10, 20), (4, 2), bytes([9, 8, 7, 255]) * 8),
        draw_rectangle_op("UpperTorso", (0, 0), (16, 8), (1.0, 1.0, 0.0), 0.25),
        draw_circle_op("LowerTorso", (64, 64), 10, (0.0, 0.0, 0.0), 0.0, "Overwrite"),
    ]
    hashes = []
    for op in ops:
        apply_op(avatar, _wire_trip(op))
        hashes.append(avatar.content_hash())
    assert len(set(hashes)) == len(ops) and h0 not in hashes  # every op changed the content
    assert avatar.parts["Head"].GetPosition(vid)[2] == pytest.approx(z - 0.05)
    for op in ops:
        apply_op(other, op)
    assert other.content_hash() == avatar.content_hash()
    assert avatar.images["Head"].ReadPixelsBuffer((10, 20), (1, 1)) == bytes([9, 8, 7, 255])


@pytest.mark.parametrize(
    "op",
    [
        {"op": "SetPosition", "Part": "Tail", "VertexId": 1, "Position": [0, 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": 10**9, "Position": [0, 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": True, "Position": [0, 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": "1", "Position": [0, 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [float("nan"), 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [float("inf"), 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [1e30, 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": ["0", 0, 0]},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [0, 0, 0], "Extra": 1},
        {"op": "SetUV", "Part": "Head", "VertexId": 1, "UV": [1.5, 0]},
        {"op": "Explode"},
        {"op": "WritePixelsBuffer", "Image": "Head", "Position": [1020, 0], "Size": [8, 1], "Buffer": bytes(32)},
        {"op": "WritePixelsBuffer", "Image": "Head", "Position": [-1, 0], "Size": [1, 1], "Buffer": bytes(4)},
        {"op": "WritePixelsBuffer", "Image": "Head", "Position": [0, 0], "Size": [2, 2], "Buffer": bytes(15)},
        {"op": "WritePixelsBuffer", "Image": "Head", "Position": [0, 0], "Size": [1, 1], "Buffer": "abcd"},
        {"op": "WritePixelsBuffer", "Image": "Nope", "Position": [0, 0], "Size": [1, 1], "Buffer": bytes(4)},
        {"op": "DrawRectangle", "Image": "Head", "Position": [5000, 0], "Size": [1, 1], "Color": [1, 0, 0],
         "Transparency": 0},
        {"op": "DrawRectangle", "Image": "Head", "Position": [0, 0], "Size": [1, 1], "Color": [2, 0, 0],
         "Transparency": 0},
        {"op": "DrawRectangle", "Image": "Head", "Position": [0, 0], "Size": [1, 1], "Color": [1, 0, 0],
         "Transparency": float("nan")},
        {"op": "DrawCircle", "Image": "Head", "Center": [0, 0], "Radius": 0, "Color": [1, 0, 0], "Transparency": 0},
        "SetPosition",
    ],
)
def test_invalid_ops_raise_and_change_nothing(avatar: Avatar, op):
    before = avatar.content_hash()
    with pytest.raises(InvalidEdit) as e:
        apply_op(avatar, op)
    assert e.value.code == "InvalidEdit" and e.value.status == 422 and e.value.message
    assert avatar.content_hash() == before


# --------------------------------------------------------------------------- validation


def test_validation_rules_have_roblox_keys():
    r = GetValidationRules()
    assert r["MeshRules"]["BodyPartMaxTriangles"] == {
        "DynamicHead": 4000, "Torso": 1750, "LeftArm": 1248, "RightArm": 1248, "LeftLeg": 1248, "RightLeg": 1248}
    assert r["TextureRules"]["MaxTextureSize"] == 1024
    head = r["BodyPartRules"]["DynamicHead"]["Bounds"]["ProportionsNormal"]
    assert head == {"MinSize": [0.5, 0.5, 0.5], "MaxSize": [3.0, 2.0, 2.0]}
    assert r["BodyPartRules"]["Torso"]["Bounds"]["ProportionsNormal"]["MaxSize"] == [4.6, 3.5, 2.25]
    msgpack.packb(r)  # wire-safe


def test_built_avatar_validates(avatar: Avatar):
    assert validate_full_body(avatar) == (True, [])


def test_missing_part_fails_with_its_name(avatar: Avatar):
    del avatar.parts["LeftHand"]
    ok, reasons = validate_full_body(avatar)
    assert not ok and any("LeftHand" in r for r in reasons)


def test_too_many_triangles_fails_with_its_name(avatar: Avatar):
    head = avatar.parts["Head"]
    ids = head.GetVertices()
    for k in range(300):  # 3744 + 300 > 4000
        head.AddTriangle(ids[k], ids[k + 1], ids[k + 2])
    ok, reasons = validate_full_body(avatar)
    assert not ok and any("Head" in r and "4000" in r for r in reasons)


def test_bad_uv_root_weight_and_bounds_fail(avatar: Avatar):
    apply_op(avatar, set_uv_op("LeftFoot", 1, (1.0, 1.0)))
    avatar.parts["LeftFoot"].SetUV(2, (0.5, 0.5))
    avatar.parts["LeftFoot"]._uv[0] = (1.5, 0.0)  # bypass the op guard on purpose
    avatar.parts["RightHand"].SetVertexSkin(1, [0], [1.0])  # Root
    vid = avatar.parts["RightUpperLeg"].GetVertices()[0]
    avatar.parts["RightUpperLeg"].SetPosition(vid, (0.4, -12.0, 0.0))  # leg 12 studs long
    ok, reasons = validate_full_body(avatar)
    text = "\n".join(reasons)
    assert not ok
    assert "LeftFoot has UVs outside 0..1" in text
    assert "RightHand has skin weight on the Root bone" in text
    assert "RightLeg is" in text and "RightUpperLeg is" in text


def test_moving_a_vertex_makes_nearby_normals_automatic(avatar: Avatar):
    head = avatar.parts["Head"]
    vid = head.GetVertices()[500]
    ring = {v for f in head.GetVertexFaces(vid) for v in head.GetFaceVertices(f)}
    before = head.computed_normals()
    x, y, z = head.GetPosition(vid)
    apply_op(avatar, set_position_op("Head", vid, (x + 0.3, y + 0.2, z)))
    assert all(head.GetNormal(v) == (0.0, 0.0, 0.0) for v in ring)
    after = head.computed_normals()
    assert np.allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    # (a vertex's own area-weighted normal does not depend on its position; its neighbours' do)
    rows = [head.GetVertices().index(v) for v in ring - {vid}]
    assert not np.allclose(before[rows], after[rows], atol=1e-3)


def test_apply_ops_batch_is_all_or_nothing(avatar: Avatar):
    from meshes import apply_ops

    before = avatar.content_hash()
    good = draw_rectangle_op("Head", (0, 0), (4, 4), (1, 0, 0), 0)
    bad = write_pixels_op("Head", (0, 0), (2, 2), bytes(3))
    with pytest.raises(InvalidEdit) as e:
        apply_ops(avatar, [good, good, bad])
    assert e.value.message.startswith("op 2:")
    assert avatar.content_hash() == before
    assert apply_ops(avatar, [good, set_position_op("Head", 1, (0, 2, 0))]) == 2
    assert avatar.content_hash() != before
    with pytest.raises(InvalidEdit):
        apply_ops(avatar, {"op": "SetPosition"})
