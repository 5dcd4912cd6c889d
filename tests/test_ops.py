"""Edit ops (meshes/ops.py): every op valid and invalid, batch atomicity, explicit ids."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from meshes import (
    EXPLICIT_ID_BASE,
    MAX_TRIANGLES,
    MAX_VERTICES,
    Avatar,
    EditableImage,
    EditableMesh,
    IdAllocator,
    InvalidEdit,
    MeshLimitExceeded,
    add_triangle_op,
    add_vertex_op,
    apply_op,
    apply_ops,
    batch_set_values_op,
    draw_circle_op,
    draw_rectangle_op,
    ops_cost,
    remove_face_op,
    set_position_op,
    set_property_op,
    set_uv_op,
    set_vertex_bone_weights_op,
    write_pixels_op,
)

BODY_PARTS = {
    "Head": ["Head"], "Torso": ["UpperTorso", "LowerTorso"],
    "LeftArm": ["LeftUpperArm", "LeftLowerArm", "LeftHand"],
    "RightArm": ["RightUpperArm", "RightLowerArm", "RightHand"],
    "LeftLeg": ["LeftUpperLeg", "LeftLowerLeg", "LeftFoot"],
    "RightLeg": ["RightUpperLeg", "RightLowerLeg", "RightFoot"],
}


def grid_mesh(n: int = 4, offset=(0.0, 0.0, 0.0)) -> EditableMesh:
    """An n×n vertex grid (ids 1..n², faces 1..2(n-1)²), one UV per vertex, skinned to bone 1."""
    xs, ys = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    pos = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], axis=1) + np.asarray(offset)
    tris = []
    for r in range(n - 1):
        for c in range(n - 1):
            a = r * n + c
            tris += [(a, a + 1, a + n), (a + 1, a + n + 1, a + n)]
    uvs = np.stack([xs.ravel(), ys.ravel()], axis=1)
    joints = np.zeros((n * n, 4), np.uint16)
    joints[:, 0] = 1
    weights = np.zeros((n * n, 4), np.float32)
    weights[:, 0] = 1
    return EditableMesh.from_arrays(pos, np.asarray(tris), uvs=uvs, joints=joints, weights=weights)


def tiny_avatar() -> Avatar:
    """Two parts (Head, LeftHand), two small textures, a 3-bone skeleton: fast to hash."""
    skin = [0.8, 0.6, 0.5]
    description = {
        **{f"{bp}Color": list(skin) for bp in BODY_PARTS},
        "HeightScale": 1.0, "WidthScale": 1.0, "DepthScale": 1.0, "HeadScale": 1.0,
        "BodyTypeScale": 0.0, "ProportionScale": 0.0,
        "AvatarPartScaleType": "ProportionsNormal",
        "BodyParts": [{"BodyPart": bp, "Color": list(skin), "Instance": ps} for bp, ps in BODY_PARTS.items()],
        "Accessories": [],
    }
    bones = [{"Name": "Root", "Parent": None, "Position": [0.0, 0.0, 0.0]},
             {"Name": "LowerTorso", "Parent": "Root", "Position": [0.0, 1.0, 0.0]},
             {"Name": "Head", "Parent": "LowerTorso", "Position": [0.0, 2.0, 0.0]}]
    parts = {"Head": grid_mesh(4), "LeftHand": grid_mesh(3, (2.0, 0.0, 0.0))}
    images = {"Head": EditableImage((16, 16), (10, 20, 30, 255)), "LeftHand": EditableImage((8, 8), (0, 0, 0, 255))}
    return Avatar(description, parts, images, bones, {}, {"Generator": "test"})


@pytest.fixture
def av() -> Avatar:
    return tiny_avatar()


def wire(op: dict) -> dict:
    return msgpack.unpackb(msgpack.packb(op, use_bin_type=True), raw=False)


def refused(avatar: Avatar, ops, match: str | None = None, exc=InvalidEdit) -> InvalidEdit:
    before = avatar.content_hash()
    with pytest.raises(exc, match=match) as e:
        apply_ops(avatar, ops if isinstance(ops, list) else [ops])
    assert e.value.status == 422 and e.value.message
    assert avatar.content_hash() == before
    return e.value


# --------------------------------------------------------------------------- explicit ids on EditableMesh


def test_explicit_ids_sorted_round_trip_and_counter():
    m = grid_mesh(3)  # vertices 1..9, faces 1..8
    a = IdAllocator(2)
    b = IdAllocator(1)
    v2 = m.AddVertex((5, 0, 0), vertex_id=a())
    v1 = m.AddVertex((6, 0, 0), vertex_id=b())
    assert (v2, v1) == (2 << 40 | 1, 1 << 40 | 1)
    assert m.GetVertices()[-2:] == [v1, v2]  # rows stay sorted by id whatever the creation order
    assert m.GetPosition(v1) == (6.0, 0.0, 0.0) and m.GetPosition(v2) == (5.0, 0.0, 0.0)
    assert m.AddVertex((7, 0, 0)) == 10  # the builder counter keeps working below 2**40
    f = m.AddTriangle(v1, v2, 10, face_id=b())
    assert f == 1 << 40 | 2 and m.GetFaceVertices(f) == [v1, v2, 10]
    assert m.AddTriangle(1, 2, 10) == 9
    back = EditableMesh.from_wire(wire(m.to_wire()))
    assert back == m and back.GetFaces()[-1] == f
    # explicit ids: ≥ 1, unused, never one the counter handed out
    for bad in (0, -3, v1, 5, 10, True, "7", 2**63):
        with pytest.raises(InvalidEdit):
            m.AddVertex((0, 0, 0), vertex_id=bad)
    assert m.AddVertex((0, 0, 0), vertex_id=20) == 20 and m.AddVertex((0, 0, 0)) == 21  # counter moves past
    with pytest.raises(InvalidEdit):
        m.AddTriangle(1, 2, 3, face_id=f)
    n_faces = m.triangle_count
    with pytest.raises(InvalidEdit):
        m.AddTriangle(1, 2, 3, face_id=3)  # handed out by the counter (live)
    assert m.triangle_count == n_faces
    # morph targets stay row-aligned when a row is inserted in the middle
    m2 = grid_mesh(2)
    m2.SetMorphTarget("Up", {4: (0, 1, 0)})
    hi = m2.AddVertex((9, 9, 9), vertex_id=3 << 40)
    m2.AddVertex((8, 8, 8), vertex_id=1 << 40)
    d = dict(zip(m2.GetVertices(), m2.morph_deltas("Up").tolist()))
    assert d[4] == [0, 1, 0] and d[hi] == [0, 0, 0] and m2.GetPosition(hi) == (9, 9, 9)


def test_id_allocator_ranges():
    s, c = IdAllocator(1), IdAllocator(2)
    a = {s() for _ in range(100)}
    b = {c() for _ in range(100)}
    assert not a & b and all(i >> 40 == 1 for i in a) and all(i >> 40 == 2 for i in b)
    assert all(i >= EXPLICIT_ID_BASE for i in a | b)
    with pytest.raises(ValueError):
        IdAllocator(0)
    av = tiny_avatar()
    apply_ops(av, [add_vertex_op("Head", 2 << 40 | 41, (0, 0, 0))])
    assert IdAllocator.resume(2, av)() == 2 << 40 | 42 and IdAllocator.resume(1, av)() == 1 << 40 | 1


# --------------------------------------------------------------------------- each op


def test_set_position_and_batch_set_values(av: Avatar):
    head = av.parts["Head"]
    apply_op(av, wire(set_position_op("Head", 6, (0.5, 0.5, 0.25))))
    assert head.GetPosition(6) == (0.5, 0.5, 0.25)
    other = tiny_avatar()
    for v, p in ((6, (0.5, 0.5, 0.25)), (7, (0.1, 0.2, 0.3)), (1, (-1, 0, 0))):
        apply_op(other, set_position_op("Head", v, p))
    apply_op(av, wire(batch_set_values_op("Head", [7, 1], [(0.1, 0.2, 0.3), (-1, 0, 0)])))
    assert av.content_hash() == other.content_hash()  # same as one SetPosition each (normals included)
    refused(av, batch_set_values_op("Head", [7, 99], [(0, 0, 0), (0, 0, 0)]), "no vertex with id 99")
    refused(av, batch_set_values_op("Head", [7, 7], [(0, 0, 0), (0, 0, 0)]), "distinct")
    refused(av, {"op": "BatchSetValues", "Part": "Head", "VertexIds": [7], "Positions": []}, "one")
    refused(av, batch_set_values_op("Head", [7], [(0, 0, 1e9)]), "outside")
    refused(av, {"op": "BatchSetValues", "Part": "Head", "VertexIds": 7, "Positions": [[0, 0, 0]]})
    refused(av, {"op": "BatchSetValues", "Part": "Head", "VertexIds": [True], "Positions": [[0, 0, 0]]})
    refused(av, batch_set_values_op("Tail", [1], [(0, 0, 0)]), "no MeshPart")
    refused(av, set_position_op("Head", 99, (0, 0, 0)), "no vertex")
    assert ops_cost(av, [batch_set_values_op("Head", range(1, 11), [(0, 0, 0)] * 10)]) == 10


def test_set_uv(av: Avatar):
    uid = av.parts["Head"].GetVertexUVs(6)[0]
    apply_op(av, wire(set_uv_op("Head", 6, (0.25, 0.75))))
    assert av.parts["Head"].GetUV(uid) == (0.25, 0.75)
    apply_op(av, set_uv_op("Head", None, (0.5, 0.5), uv_id=uid))
    assert av.parts["Head"].GetUV(uid) == (0.5, 0.5)
    refused(av, set_uv_op("Head", 6, (1.5, 0)), "inside 0..1")
    refused(av, set_uv_op("Head", None, (0.5, 0.5), uv_id=999), "no UV")


def test_add_vertex_and_triangle_in_one_batch(av: Avatar):
    ids = IdAllocator(2)
    a, b, c, f = ids(), ids(), ids(), ids()
    ops = [add_vertex_op("Head", a, (0, 0, 1)), add_vertex_op("Head", b, (1, 0, 1)),
           add_vertex_op("Head", c, (0, 1, 1)), add_triangle_op("Head", f, [a, b, c])]
    assert apply_ops(av, [wire(op) for op in ops]) == 4
    head = av.parts["Head"]
    assert head.GetFaceVertices(f) == [a, b, c] and head.vertex_count == 19 and head.triangle_count == 19
    refused(av, add_vertex_op("Head", a, (0, 0, 0)), "already in use")
    refused(av, add_vertex_op("Head", 3, (0, 0, 0)), "already in use")
    refused(av, add_vertex_op("Head", 0, (0, 0, 0)))
    refused(av, add_vertex_op("Head", ids(), (0, float("nan"), 0)), "finite")
    refused(av, add_triangle_op("Head", f, [1, 2, 5]), "already in use")
    refused(av, add_triangle_op("Head", ids(), [1, 1, 5]), "distinct")
    refused(av, add_triangle_op("Head", ids(), [1, 2, 12345]), "no vertex")
    refused(av, {"op": "AddTriangle", "Part": "Head", "FaceId": ids(), "VertexIds": [1, 2]})
    refused(av, {"op": "AddVertex", "Part": "Head", "Position": [0, 0, 0]}, "missing")


def test_remove_face_and_ids_never_reused(av: Avatar):
    head = av.parts["Head"]
    apply_op(av, wire(remove_face_op("Head", 18)))
    assert not head.HasFace(18) and head.triangle_count == 17
    refused(av, remove_face_op("Head", 18), "no face")
    refused(av, add_triangle_op("Head", 18, [1, 2, 5]), "never reused")  # the counter's id stays retired
    assert head.AddTriangle(1, 2, 5) == 19  # the counter does not hand it out again either
    ids = IdAllocator(1)
    f = ids()
    apply_op(av, add_triangle_op("Head", f, [1, 2, 6]))
    apply_op(av, remove_face_op("Head", f))
    assert ids() != f  # an allocator never repeats


def test_set_vertex_bone_weights(av: Avatar):
    apply_op(av, wire(set_vertex_bone_weights_op("Head", 6, [1, 2], [0.25, 0.75])))
    head = av.parts["Head"]
    assert head.GetVertexBones(6) == [1, 2] and head.GetVertexBoneWeights(6) == pytest.approx([0.25, 0.75])
    refused(av, set_vertex_bone_weights_op("Head", 6, [0], [1.0]), "Root")
    refused(av, set_vertex_bone_weights_op("Head", 6, [1, 5], [0.5, 0.5]), "not one of")
    refused(av, set_vertex_bone_weights_op("Head", 6, [1, 2], [0.5, 0.6]), "sum to 1")
    refused(av, set_vertex_bone_weights_op("Head", 6, [1, 1], [0.5, 0.5]), "distinct")
    refused(av, set_vertex_bone_weights_op("Head", 6, [1, 2, 1, 2, 1], [0.2] * 5))
    refused(av, set_vertex_bone_weights_op("Head", 6, [1], [0.5, 0.5]))
    refused(av, set_vertex_bone_weights_op("Head", 99, [1], [1.0]), "no vertex")


def test_pixel_ops(av: Avatar):
    img = av.images["Head"]
    apply_op(av, wire(write_pixels_op("Head", (2, 3), (2, 1), bytes([1, 2, 3, 4, 5, 6, 7, 8]))))
    assert img.ReadPixelsBuffer((2, 3), (2, 1)) == bytes(range(1, 9))
    apply_op(av, wire(draw_rectangle_op("Head", (0, 0), (4, 4), (1, 0, 0), 0.0, "Overwrite")))
    assert img.ReadPixelsBuffer((3, 3), (1, 1)) == bytes([255, 0, 0, 255])
    apply_op(av, wire(draw_circle_op("Head", (10, 10), 2, (0, 0, 1), 0.0)))
    assert img.ReadPixelsBuffer((10, 10), (1, 1)) == bytes([0, 0, 255, 255])
    refused(av, write_pixels_op("Head", (15, 15), (2, 2), bytes(16)), "outside")
    refused(av, {"op": "WritePixelsBuffer", "Image": "Head", "Position": [0, 0], "Size": [1, 1],
                 "Buffer": [0, 0, 0, 0]}, "bytes")
    refused(av, draw_rectangle_op("Head", (0, 0), (2, 2), (0, 0, 2)))
    refused(av, draw_circle_op("Nope", (0, 0), 2, (0, 0, 1)), "no image")


def test_set_property(av: Avatar):
    apply_op(av, wire(set_property_op("HeadColor", [1, 0, 0.5])))
    assert av.description["HeadColor"] == [1.0, 0.0, 0.5]
    assert next(bp for bp in av.description["BodyParts"] if bp["BodyPart"] == "Head")["Color"] == [1.0, 0.0, 0.5]
    apply_op(av, set_property_op("HeightScale", 1.05))
    apply_op(av, set_property_op("BodyTypeScale", 1))
    assert av.description["HeightScale"] == 1.05 and av.description["BodyTypeScale"] == 1.0
    hat = [{"AccessoryType": "Hat", "AssetId": 12, "Position": [0, 1, 0]}]
    apply_op(av, wire(set_property_op("Accessories", hat)))
    assert av.description["Accessories"] == hat
    refused(av, set_property_op("HeightScale", 2.0), "maximum")
    refused(av, set_property_op("HeightScale", True), "number")
    refused(av, set_property_op("HeadColor", [1, 0]), "at least 3")
    refused(av, set_property_op("Accessories", [{"AccessoryType": "Wings"}]), "Wings")
    refused(av, set_property_op("Accessories", {"AccessoryType": "Hat"}), "array")
    refused(av, set_property_op("Accessories", [{"AccessoryType": "Hat", "Scale": [float("inf"), 1, 1]}]))
    refused(av, set_property_op("BodyParts", []), "cannot be set")
    refused(av, set_property_op("Name", "x"), "cannot be set")
    refused(av, {"op": "SetProperty", "Property": "HeadColor"}, "missing")


def test_unknown_and_malformed_ops(av: Avatar):
    refused(av, {"op": "Explode"}, "unknown op")
    refused(av, "SetPosition", "dict")
    refused(av, {"op": "RemoveFace", "Part": "Head", "FaceId": 1, "Extra": 0}, "unknown keys")
    with pytest.raises(InvalidEdit):
        apply_ops(av, {"op": "RemoveFace"})


# --------------------------------------------------------------------------- batches


def test_batch_with_bad_last_op_changes_nothing(av: Avatar):
    ids = IdAllocator(1)
    a, b, f = ids(), ids(), ids()
    good = [
        add_vertex_op("Head", a, (0, 0, 2)), add_vertex_op("Head", b, (1, 0, 2)),
        add_triangle_op("Head", f, [a, b, 1]),
        remove_face_op("Head", 3),
        set_position_op("Head", 6, (3, 3, 3)),
        batch_set_values_op("LeftHand", [1, 2], [(0, 0, 0), (1, 1, 1)]),
        set_uv_op("Head", 7, (0.9, 0.9)),
        set_vertex_bone_weights_op("Head", 7, [2], [1.0]),
        write_pixels_op("Head", (0, 0), (16, 16), bytes(range(256)) * 4),
        draw_rectangle_op("LeftHand", (1, 1), (20, 20), (0, 1, 0), 0.5),
        draw_circle_op("Head", (8, 8), 30, (0, 0, 1), 0.2),
        set_property_op("HeadColor", [0, 0, 0]),
        set_property_op("Accessories", [{"AccessoryType": "Hair"}]),
    ]
    for bad in (add_triangle_op("Head", ids(), [a, b, 99]), remove_face_op("Head", 3),
                add_vertex_op("Head", a, (0, 0, 0)), set_property_op("HeadScale", 9)):
        e = refused(av, good + [bad])
        assert e.message.startswith(f"op {len(good)}:")
    assert apply_ops(av, good) == len(good)
    assert av.parts["Head"].HasFace(f) and not av.parts["Head"].HasFace(3)
    # an op may depend on an earlier op of the same batch, not on a later one
    c, g = ids(), ids()
    refused(av, [add_triangle_op("Head", g, [a, b, c]), add_vertex_op("Head", c, (0, 0, 0))], "no vertex")


def test_batch_atomicity_with_mesh_limits():
    n = MAX_VERTICES
    m = EditableMesh.from_arrays(np.zeros((n - 1, 3)), np.zeros((0, 3)))
    av = tiny_avatar()
    av.parts["Big"] = m
    ids = IdAllocator(2)
    x, y = ids(), ids()
    refused(av, [add_vertex_op("Big", x, (0, 0, 0)), add_vertex_op("Big", y, (0, 0, 0))],
            "maximum", MeshLimitExceeded)
    assert m.vertex_count == n - 1 and not m.HasVertex(x)
    apply_ops(av, [add_vertex_op("Big", x, (0, 0, 0))])
    assert m.vertex_count == n
    k = MAX_TRIANGLES
    fan = np.stack([np.zeros(k, int), np.arange(1, k + 1), np.arange(2, k + 2)], axis=1)
    tri = EditableMesh.from_arrays(np.random.default_rng(0).random((k + 2, 3)), fan)
    av.parts["Tris"] = tri
    refused(av, add_triangle_op("Tris", ids(), [1, 2, 4]), "maximum", MeshLimitExceeded)
    e = refused(av, [remove_face_op("Tris", 1), add_triangle_op("Tris", ids(), [1, 2, 4]),
                     add_triangle_op("Tris", ids(), [1, 2, 5])], "maximum", MeshLimitExceeded)
    assert e.code == "MeshLimitExceeded" and tri.HasFace(1)
    # a refusal from inside the mesh (attribute tables full) after earlier ops changed it: rolled back
    soup = EditableMesh.from_arrays(np.random.default_rng(1).random((3 * k, 3)), np.arange(3 * k).reshape(k, 3))
    av.parts["Soup"] = soup
    e = refused(av, [remove_face_op("Soup", 1), set_position_op("Soup", 7, (0, 0, 0)),
                     add_triangle_op("Soup", ids(), [1, 2, 4])], "normal", MeshLimitExceeded)
    assert e.message.startswith("op 2:") and soup.HasFace(1)


def test_ops_are_deterministic_across_copies(av: Avatar):
    other = av.copy()
    ids = IdAllocator(1)
    a, f = ids(), ids()
    batches = [[add_vertex_op("Head", a, (0.3, 0.3, 0.1)), add_triangle_op("Head", f, [a, 1, 2])],
               [draw_circle_op("Head", (5, 5), 3, (0.2, 0.4, 0.6), 0.3)],
               [set_position_op("Head", a, (0.2, 0.2, 0.2)), set_property_op("WidthScale", 0.9)]]
    for b in batches:
        apply_ops(av, b)
        apply_ops(other, [wire(op) for op in b])
    assert av.content_hash() == other.content_hash()
    assert Avatar.from_wire(wire(av.to_wire())).content_hash() == av.content_hash()


# --------------------------------------------------------------------------- hostile numbers and sizes

_INF, _NAN = float("inf"), float("nan")


@pytest.mark.parametrize("op", [
    {"op": "BatchSetValues", "Part": "Head", "VertexIds": [2**64 - 1], "Positions": [[0.0, 0.0, 0.0]]},
    {"op": "BatchSetValues", "Part": "Head", "VertexIds": [-1, 2**63], "Positions": [[0.0, 0.0, 0.0]] * 2},
    {"op": "SetPosition", "Part": "Head", "VertexId": 2**64 - 1, "Position": [0.0, 0.0, 0.0]},
    {"op": "SetUV", "Part": "Head", "UVId": 2**63, "UV": [0.0, 0.0]},
    {"op": "RemoveFace", "Part": "Head", "FaceId": -(2**63) - 1},
    {"op": "AddVertex", "Part": "Head", "VertexId": 2**64, "Position": [0.0, 0.0, 0.0]},
    {"op": "AddTriangle", "Part": "Head", "FaceId": EXPLICIT_ID_BASE, "VertexIds": [1, 2, 2**64 - 1]},
    {"op": "SetVertexBoneWeights", "Part": "Head", "VertexId": 6, "Bones": [2**64 - 1], "Weights": [1.0]},
], ids=lambda op: op["op"])
def test_ids_beyond_int64_are_refused_by_every_op(av: Avatar, op):
    assert ops_cost(av, [op]) >= 1
    refused(av, op, "int64")
    refused(av, [set_position_op("Head", 1, (0.0, 0.0, 0.5)), op], "op 1: .*int64")  # in a batch too


@pytest.mark.parametrize("bad", [_INF, -_INF, _NAN])
def test_non_finite_sizes_and_radii_are_refused(av: Avatar, bad):
    ops = [
        {"op": "DrawCircle", "Image": "Head", "Center": [4, 4], "Radius": bad, "Color": [1.0, 0.0, 0.0],
         "Transparency": 0.0},
        {"op": "DrawRectangle", "Image": "Head", "Position": [0, 0], "Size": [bad, 1], "Color": [1.0, 0.0, 0.0],
         "Transparency": 0.0},
        {"op": "DrawRectangle", "Image": "Head", "Position": [0, 0], "Size": [1, bad], "Color": [1.0, 0.0, 0.0],
         "Transparency": 0.0},
        {"op": "WritePixelsBuffer", "Image": "Head", "Position": [0, 0], "Size": [bad, bad], "Buffer": b""},
        {"op": "DrawCircle", "Image": "Head", "Center": [bad, 4], "Radius": 2, "Color": [1.0, 0.0, 0.0],
         "Transparency": 0.0},
        {"op": "DrawCircle", "Image": "Head", "Center": [4, 4], "Radius": 2, "Color": [1.0, 0.0, 0.0],
         "Transparency": bad},
        {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [0.0, bad, 0.0]},
        {"op": "SetUV", "Part": "Head", "UVId": 1, "UV": [bad, 0.0]},
        {"op": "SetVertexBoneWeights", "Part": "Head", "VertexId": 6, "Bones": [1], "Weights": [bad]},
    ]
    for op in ops:
        # The pixel budget is computed before validation: it must price, not crash.
        assert isinstance(ops_cost(av, [op]), int)
        refused(av, wire(op))


def test_huge_exact_numbers_are_refused_not_overflowed(av: Avatar):
    big = 10**400  # JSON carries it; no float holds it
    refused(av, {"op": "SetPosition", "Part": "Head", "VertexId": 1, "Position": [0, big, 0]}, "range")
    op = {"op": "DrawCircle", "Image": "Head", "Center": [4, 4], "Radius": big, "Color": [1.0, 0.0, 0.0],
          "Transparency": 0.0}
    assert 1 <= ops_cost(av, [op]) <= 16 * 16  # priced (at most the whole image), not crashed
    refused(av, op, "radius")
    refused(av, set_property_op("Accessories", [{"AccessoryType": "Hat", "AssetId": 2**64}]), "int64")
    refused(av, set_property_op("Accessories", [{"AccessoryType": "Hat", "Order": -(2**63) - 1}]), "int64")


class _NoPerItemWork(list):
    """A list that fails the test if anything looks at its items."""

    def __iter__(self):
        raise AssertionError("the items were visited before the length was checked")

    def __getitem__(self, i):
        raise AssertionError("the items were visited before the length was checked")


def test_set_property_counts_are_checked_before_any_item(av: Avatar):
    hats = _NoPerItemWork([{"AccessoryType": "Hat"}] * 400_000)
    refused(av, {"op": "SetProperty", "Property": "Accessories", "Value": hats}, "at most 16")
    refused(av, {"op": "SetProperty", "Property": "HeadColor", "Value": _NoPerItemWork([0.5] * 400_000)},
            "at most 3")
    refused(av, {"op": "SetProperty", "Property": "HeightScale", "Value": _NoPerItemWork([1.0] * 10)}, "not a list")
    # 16 accessories are fine, 17 are not.
    apply_op(av, set_property_op("Accessories", [{"AccessoryType": "Hat"}] * 16))
    assert len(av.description["Accessories"]) == 16
    refused(av, set_property_op("Accessories", [{"AccessoryType": "Hat"}] * 17), "at most 16")
    # A few accessories smuggling a huge nested list are refused by size, before that list is walked.
    stuffed = [{"AccessoryType": "Hat", "Junk": _NoPerItemWork([0] * 1_000_000)}]
    refused(av, {"op": "SetProperty", "Property": "Accessories", "Value": stuffed}, "more than")


def test_long_id_lists_are_refused_before_their_items(av: Avatar):
    ids = _NoPerItemWork([1] * (MAX_VERTICES + 1))
    refused(av, {"op": "BatchSetValues", "Part": "Head", "VertexIds": ids, "Positions": ids}, "at most")
    refused(av, {"op": "SetVertexBoneWeights", "Part": "Head", "VertexId": 6, "Bones": _NoPerItemWork([1] * 10**6),
                 "Weights": [1.0]})


def test_a_run_of_set_positions_in_one_batch_equals_them_one_by_one():
    """apply_ops moves a run of SetPositions on one mesh at once; the result (positions, the
    normals made automatic, the undo on a refusal) must be exactly that of one op at a time."""
    rng = np.random.default_rng(7)
    base = tiny_avatar()
    head, hand = (base.parts[n].GetVertices() for n in ("Head", "LeftHand"))
    for trial in range(20):
        ops = []
        for _ in range(int(rng.integers(2, 40))):
            part, vids = ("Head", head) if rng.random() < 0.7 else ("LeftHand", hand)
            if rng.random() < 0.1:  # something else between runs
                ops.append(set_property_op("HeightScale", float(rng.integers(95, 105)) / 100))
                continue
            ops.append(set_position_op(part, int(rng.choice(vids)), tuple(rng.normal(size=3).round(3))))
        together, alone = base.copy(), base.copy()
        apply_ops(together, ops)
        for op in ops:
            apply_ops(alone, [op])
        assert together.content_hash() == alone.content_hash(), trial
    refused = base.copy()
    before = refused.content_hash()
    with pytest.raises(InvalidEdit, match="op 2"):
        apply_ops(refused, [set_position_op("Head", head[0], (1, 2, 3)), set_position_op("Head", head[1], (1, 2, 3)),
                            set_position_op("Head", 10**9, (0, 0, 0))])
    assert refused.content_hash() == before
