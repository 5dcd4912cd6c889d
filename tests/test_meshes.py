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
    InvalidEdit,
    MeshLimitExceeded,
    apply_op,
    draw_circle_op,
    draw_rectangle_op,
    set_position_op,
    set_uv_op,
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
    m.SetVertexUV(2, (0.25, 0.75))
    assert m.GetUV(m.GetVertexUVs(2)[0]) == (0.25, 0.75)
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
        assert set(back.parts) == {*PART_NAMES, "HairAccessory"}
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
        set_uv_op("LeftHand", None, (0.5, 0.5), uv_id=3),
        set_uv_op("LeftHand", avatar.parts["LeftHand"].GetVertices()[40], (0.25, 0.5)),
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
        {"op": "SetUV", "Part": "Head", "UVId": 1, "VertexId": 1, "UV": [0.5, 0]},
        {"op": "SetUV", "Part": "Head", "UV": [0.5, 0]},
        {"op": "SetUV", "Part": "Head", "UVId": 10**9, "UV": [0.5, 0]},
        {"op": "SetUV", "Part": "LeftHand", "VertexId": 1, "UV": [0.5, 0]},  # a pole: one UV per column
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


def test_moving_a_vertex_makes_nearby_normals_automatic(avatar: Avatar):
    head = avatar.parts["Head"]
    vid = head.GetVertices()[500]
    ring = {v for f in head.GetVertexFaces(vid) for v in head.GetFaceVertices(f)}
    before = head.computed_normals()
    x, y, z = head.GetPosition(vid)
    apply_op(avatar, set_position_op("Head", vid, (x + 0.3, y + 0.2, z)))
    nids = {n for v in ring for n in head.GetVertexNormals(v)}
    assert nids and all(head.IsNormalAutomatic(n) for n in nids)
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


# --------------------------------------------------------------------------- morph targets


def test_morph_targets_follow_vertex_edits_and_round_trip():
    m = _quad()
    assert m.GetMorphTargetNames() == []
    d = np.arange(15, dtype=np.float32).reshape(5, 3) / 10
    m.SetMorphTarget("JawDrop", d)
    m.SetMorphTarget("LeftEyeClosed", {2: (0.0, -0.1, 0.0), 5: (0.0, 0.0, 0.2)})
    assert m.GetMorphTargetNames() == ["JawDrop", "LeftEyeClosed"]
    assert np.array_equal(m.morph_deltas("JawDrop"), d)
    e = m.morph_deltas("LeftEyeClosed")
    assert e.dtype == np.float32 and e.shape == (5, 3)
    assert np.allclose(e[[1, 4]], [[0, -0.1, 0], [0, 0, 0.2]]) and not e[[0, 2, 3]].any()
    m.RemoveVertex(3)  # rows follow the vertex
    assert m.vertex_ids.tolist() == [1, 2, 4, 5]
    assert np.array_equal(m.morph_deltas("JawDrop"), d[[0, 1, 3, 4]])
    v = m.AddVertex((9, 9, 9))
    assert m.vertex_ids.tolist()[-1] == v
    assert not m.morph_deltas("JawDrop")[-1].any()
    back = EditableMesh.from_wire(_wire_trip(m.to_wire()))
    assert back == m and back.GetMorphTargetNames() == m.GetMorphTargetNames()
    for k in m.GetMorphTargetNames():
        assert np.array_equal(back.morph_deltas(k), m.morph_deltas(k))
    h = back.to_wire()
    m.RemoveMorphTarget("LeftEyeClosed")
    assert m.GetMorphTargetNames() == ["JawDrop"] and m.to_wire() != h
    with pytest.raises(InvalidEdit):
        m.morph_deltas("LeftEyeClosed")
    with pytest.raises(InvalidEdit):
        m.RemoveMorphTarget("LeftEyeClosed")
    for bad in (np.zeros((3, 3)), np.full((5, 3), np.nan)):
        with pytest.raises(InvalidEdit):
            m.SetMorphTarget("X", bad)
    with pytest.raises(InvalidEdit):
        m.SetMorphTarget("X", {99: (0, 0, 0)})
    with pytest.raises(InvalidEdit):
        m.SetMorphTarget("", np.zeros((5, 3)))
    assert m.GetMorphTargetNames() == ["JawDrop"]


def test_morph_targets_change_the_avatar_hash(avatar: Avatar):
    h0 = avatar.content_hash()
    head = avatar.parts["Head"]
    head.SetMorphTarget("JawDrop", np.zeros((head.vertex_count, 3), np.float32))
    h1 = avatar.content_hash()
    assert h1 != h0
    assert Avatar.from_wire(_wire_trip(avatar.to_wire())).content_hash() == h1
    d = np.zeros((head.vertex_count, 3), np.float32)
    d[0, 1] = -0.01
    head.SetMorphTarget("JawDrop", d)
    assert avatar.content_hash() not in (h0, h1)


# --------------------------------------------------------------------------- attribute ids


def _seam_square() -> EditableMesh:
    """Two triangles sharing the edge 1-3, with a UV seam along it (vertex 1 and 3 have
    two UVs each)."""
    m = EditableMesh()
    v = [m.AddVertex(p) for p in [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)]]
    f1 = m.AddTriangle(v[0], v[1], v[2])
    f2 = m.AddTriangle(v[0], v[2], v[3])
    uv = [m.AddUV(x) for x in [(0.0, 0.0), (0.4, 0.0), (0.4, 0.4), (0.6, 0.0), (0.6, 0.4), (1.0, 0.4)]]
    m.SetFaceUVs(f1, [uv[0], uv[1], uv[2]])
    m.SetFaceUVs(f2, [uv[3], uv[4], uv[5]])
    assert uv == [5, 6, 7, 8, 9, 10] and m.RemoveUnused() == []  # drops the automatic UVs 1..4
    assert m.GetUVs() == uv
    return m


def test_auto_attributes_reuse_and_seams():
    m = EditableMesh()
    v = [m.AddVertex(p) for p in [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)]]
    f1 = m.AddTriangle(v[0], v[1], v[2])
    assert m.GetFaceNormals(f1) == [1, 2, 3] and m.GetFaceUVs(f1) == [1, 2, 3] and m.GetFaceColors(f1) == [1, 2, 3]
    f2 = m.AddTriangle(v[0], v[2], v[3])  # corners on vertices 1 and 3 reuse their ids
    assert m.GetFaceUVs(f2) == [1, 3, 4] and m.GetFaceNormals(f2) == [1, 3, 4]
    assert all(m.IsNormalAutomatic(n) for n in m.GetNormals())
    assert np.allclose(m.GetNormal(1), (0, 0, 1))  # automatic: from the faces (CCW seen from +Z)
    assert m.GetColor(2) == (1.0, 1.0, 1.0) and m.GetColorAlpha(2) == 1.0
    m.SetNormal(1, (0, 0, 5))
    assert m.GetNormal(1) == (0.0, 0.0, 1.0) and not m.IsNormalAutomatic(1)
    m.ResetNormal(1)
    assert m.IsNormalAutomatic(1)
    c = m.AddColor((1.0, 0.0, 0.0), 0.5)
    m.SetFaceColors(f2, [c, c, c])
    m.SetColor(c, (0.0, 1.0, 0.0))
    m.SetColorAlpha(c, 0.25)
    assert m.GetColor(c) == (0.0, 1.0, 0.0) and m.GetColorAlpha(c) == 0.25
    assert m.GetVertexColors(v[0]) == [1, c]
    n = m.AddNormal((1, 0, 0))
    m.SetFaceNormals(f1, [n, n, n])
    assert m.GetVertexNormals(v[0]) == [1, n]
    for bad in (lambda: m.SetFaceUVs(f1, [1, 2, 999]), lambda: m.SetFaceUVs(f1, [1, 2]),
                lambda: m.SetNormal(1, (0, 0, 0)), lambda: m.AddColor((2, 0, 0)), lambda: m.GetUV(999),
                lambda: m.AddColor((1, 1, 1), 1.5)):
        with pytest.raises(InvalidEdit):
            bad()
    # removing the faces leaves attributes until RemoveUnused
    m.RemoveFace(f1)
    m.RemoveFace(f2)
    assert m.GetUVs() == [1, 2, 3, 4]
    assert m.RemoveUnused() == v and m.GetUVs() == [] and m.GetNormals() == [] and m.GetColors() == []


def test_seam_vertex_has_two_uvs_and_export_splits_it():
    m = _seam_square()
    assert m.GetVertexUVs(1) == [5, 8] and m.GetVertexUVs(3) == [7, 9]
    assert m.GetVertexUVs(2) == [6]
    with pytest.raises(InvalidEdit):
        m.SetVertexUV(1, (0.1, 0.1))  # a seam vertex: set by UV id
    m.SetVertexUV(2, (0.45, 0.05))
    assert m.GetUV(6) == pytest.approx((0.45, 0.05))
    m.SetMorphTarget("Up", {1: (0, 0, 0.5)})
    ex = m.export_arrays()
    assert len(ex.positions) == 6 and ex.triangles.shape == (2, 3)  # 4 vertices, 2 split
    assert ex.vertex_rows.tolist() == [0, 0, 1, 2, 2, 3]
    assert np.allclose(ex.uvs[ex.triangles], m.corner_uvs())
    assert np.allclose(ex.positions[ex.triangles], m.positions[m.triangles])
    assert np.allclose(ex.normals, [(0, 0, 1)] * 6) and ex.colors.shape == (6, 4)
    assert np.allclose(ex.morphs["Up"][:, 2], [0.5, 0.5, 0, 0, 0, 0])
    assert ex.face_ids.tolist() == [1, 2]
    # a mesh without seams exports one glTF vertex per used vertex
    q = _quad()
    assert len(q.export_arrays().positions) == 4  # vertex 5 is unused


def test_attribute_wire_round_trip_and_validation():
    m = _seam_square()
    m.SetNormal(2, (0, 1, 0))
    m.AddColor((0.5, 0.5, 0.5), 0.5)
    back = EditableMesh.from_wire(_wire_trip(m.to_wire()))
    assert back == m and back.GetVertexUVs(1) == [5, 8]
    assert back.AddUV((0, 0)) == m.AddUV((0, 0))
    w = m.to_wire()
    w["face_uvs"]["data"] = np.array([[5, 6, 7], [8, 9, 99]], "<i8").tobytes()
    with pytest.raises(InvalidEdit):
        EditableMesh.from_wire(w)
    w = m.to_wire()
    w["version"] = 1
    with pytest.raises(InvalidEdit):
        EditableMesh.from_wire(w)


def test_raycast_and_closest_point(avatar: Avatar):
    m = _seam_square()
    hit = m.RaycastLocal((0.75, 0.25, 5), (0, 0, -2))
    assert hit is not None
    point, fid, bary = hit
    assert point == pytest.approx((0.75, 0.25, 0.0)) and fid == 1
    assert sum(bary) == pytest.approx(1.0)
    p = np.asarray(m.positions)[[0, 1, 2]]
    assert np.allclose(np.asarray(bary) @ p, point)
    assert m.RaycastLocal((0.75, 0.25, 5), (0, 0, 1)) is None  # behind the origin
    assert m.RaycastLocal((5, 5, 5), (0, 0, -1)) is None
    assert m.RaycastLocal((0.25, 0.75, -1), (0, 0, 1))[1] == 2  # back side counts too
    cp, fid, bary = m.FindClosestPointOnSurface((2.0, 0.5, 1.0))
    assert cp == pytest.approx((1.0, 0.5, 0.0)) and fid in (1, 2)
    # on a real part: a ray from outside towards the centre hits the near side
    head = avatar.parts["Head"]
    c = np.asarray(head.GetCenter())
    point, fid, _ = head.RaycastLocal(c + (0, 0, -5), (0, 0, 1))
    assert point[2] == pytest.approx(float(head.GetBounds()[0][2]), abs=0.05)
    assert head.HasFace(fid)


def test_transform_scales_positions_normals_and_morphs():
    m = _seam_square()
    m.SetNormal(1, (1, 0, 1))
    m.SetMorphTarget("X", {2: (1, 1, 1)})
    m.transform(np.diag([2.0, 1.0, 1.0]), (0, 0, 1))
    assert m.GetPosition(2) == (2.0, 0.0, 1.0)
    assert np.allclose(m.GetNormal(1), np.array([0.5, 0, 1]) / np.linalg.norm([0.5, 0, 1]), atol=1e-6)
    assert np.allclose(m.morph_deltas("X")[1], (2, 1, 1))
    with pytest.raises(InvalidEdit):
        m.transform(np.zeros((3, 3)))
