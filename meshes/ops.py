"""Edit ops: the wire form of every avatar mutation, and their sans-I/O application.

An op is a msgpack-friendly dict with an ``"op"`` key and exactly the keys below
(unknown keys are refused so typos never pass silently):

``SetPosition``       ``{"op", "Part": str, "VertexId": int, "Position": [x, y, z]}`` (studs, |c| ≤ 2048)
``BatchSetValues``    ``{"op", "Part", "VertexIds": [int, ...], "Positions": [[x, y, z], ...]}`` -- many
                      SetPositions at once (Roblox's batch form); ids distinct, at most 60,000.
``SetUV``             ``{"op", "Part": str, "UVId": int, "UV": [u, v]}`` (0..1) -- by UV id, like
                      Roblox's ``EditableMesh:SetUV``; or ``{"op", "Part", "VertexId": int, "UV"}``
                      for a vertex with exactly one UV id (refused at a seam vertex,
                      which has one UV id per side).  Exactly one of UVId / VertexId.
``AddVertex``         ``{"op", "Part", "VertexId": int, "Position": [x, y, z]}`` -- the creator picks
                      the id (see :class:`meshes.sync.IdAllocator`); it must be unused and never
                      handed out before.  60,000 vertices at most.
``AddTriangle``       ``{"op", "Part", "FaceId": int, "VertexIds": [a, b, c]}`` -- three existing,
                      distinct vertices, counter-clockwise; creator-chosen face id as above;
                      20,000 triangles at most.  Normal / UV / colour ids of new corners come
                      from the mesh's counters (so they are known only once the batch is ordered).
``RemoveFace``        ``{"op", "Part", "FaceId": int}`` (its id is never used again)
``SetVertexBoneWeights`` ``{"op", "Part", "VertexId", "Bones": [int, ...], "Weights": [float, ...]}`` --
                      1..4 distinct indices into ``avatar.bones`` (not the Root), weights 0..1
                      summing to 1 (±1e-3; stored normalised).
``WritePixelsBuffer`` ``{"op", "Image": str, "Position": [x, y], "Size": [w, h], "Buffer": bytes}``
                      (RGBA8, ``len == w*h*4``, region inside the image)
``DrawRectangle``     ``{"op", "Image", "Position": [x, y], "Size": [w, h], "Color": [r, g, b], "Transparency": t}``
                      (+ optional ``"CombineType"``: "BlendSourceOver" (default) | "Overwrite")
``DrawCircle``        ``{"op", "Image", "Center": [x, y], "Radius": int, "Color", "Transparency"}`` (+ ``CombineType``)
``SetProperty``       ``{"op", "Property": str, "Value": ...}`` on the HumanoidDescription: the six
                      ``*Color`` properties ([r, g, b] 0..1), the six scales (schema ranges) and
                      ``Accessories`` (list of at most 16 AccessoryDescription dicts, its length checked
                      before its items); anything else is refused
                      (see :meth:`meshes.avatar.Avatar.set_property`).

Every id and integer an op carries must fit in int64 and every number must be finite
(:func:`meshes.value_checks._integer` / :func:`~meshes.value_checks._number`); list
lengths are checked before the items.

:func:`apply_op` validates the op completely first and raises :class:`InvalidEdit`
(code "InvalidEdit", HTTP 422; :class:`MeshLimitExceeded` for the mesh limits)
without touching the avatar; otherwise it mutates exactly one mesh, image or the
description.  Ops are deterministic: replaying the same sequence on two equal
avatars gives equal :meth:`Avatar.content_hash` values.

**Batches** (:func:`apply_ops`) are all or nothing, and an op may depend on an
earlier op of the same batch (AddVertex, then AddTriangle over it).  Each op is
validated against the state the earlier ops left, then applied; before an op first
touches a target, an *undo log* saves just enough to restore it: the mesh's tables
(numpy copies of a few thousand rows -- cheap), the pixel rectangle the op can
touch (never a whole texture), or the description (a small dict).  When op ``i``
is refused, the log is replayed backwards, so the avatar is exactly as before and
the error is raised as ``"op i: ..."``.  A one-op batch needs no log (validation is
complete before the mutation).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

from .avatar import Avatar, _plain_copy
from .limits import MAX_COORDINATE, MAX_INFLUENCES, MAX_TRIANGLES, MAX_VERTICES, InvalidEdit, MeshLimitExceeded
from .editable_mesh import EditableMesh
from .value_checks import _int_id, _integer, _vec

__all__ = [
    "InvalidEdit",
    "OP_KEYS",
    "apply_op",
    "apply_ops",
    "validate_op",
    "ops_cost",
    "set_position_op",
    "batch_set_values_op",
    "set_uv_op",
    "add_vertex_op",
    "add_triangle_op",
    "remove_face_op",
    "set_vertex_bone_weights_op",
    "write_pixels_op",
    "draw_rectangle_op",
    "draw_circle_op",
    "set_property_op",
    "op_targets",
]

#: op name → (required keys, optional keys); "op" is implied.
OP_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "SetPosition": (frozenset({"Part", "VertexId", "Position"}), frozenset()),
    "BatchSetValues": (frozenset({"Part", "VertexIds", "Positions"}), frozenset()),
    "SetUV": (frozenset({"Part", "UV"}), frozenset({"VertexId", "UVId"})),
    "AddVertex": (frozenset({"Part", "VertexId", "Position"}), frozenset()),
    "AddTriangle": (frozenset({"Part", "FaceId", "VertexIds"}), frozenset()),
    "RemoveFace": (frozenset({"Part", "FaceId"}), frozenset()),
    "SetVertexBoneWeights": (frozenset({"Part", "VertexId", "Bones", "Weights"}), frozenset()),
    "WritePixelsBuffer": (frozenset({"Image", "Position", "Size", "Buffer"}), frozenset()),
    "DrawRectangle": (frozenset({"Image", "Position", "Size", "Color", "Transparency"}), frozenset({"CombineType"})),
    "DrawCircle": (frozenset({"Image", "Center", "Radius", "Color", "Transparency"}), frozenset({"CombineType"})),
    "SetProperty": (frozenset({"Property", "Value"}), frozenset()),
}

_MESH_OPS = frozenset({"SetPosition", "BatchSetValues", "SetUV", "AddVertex", "AddTriangle", "RemoveFace",
                       "SetVertexBoneWeights"})
_IMAGE_OPS = frozenset({"WritePixelsBuffer", "DrawRectangle", "DrawCircle"})


# --------------------------------------------------------------------------- constructors


def set_position_op(part: str, vertex_id: int, position) -> dict:
    return {"op": "SetPosition", "Part": part, "VertexId": int(vertex_id), "Position": [float(c) for c in position]}


def batch_set_values_op(part: str, vertex_ids, positions) -> dict:
    return {"op": "BatchSetValues", "Part": part, "VertexIds": [int(v) for v in vertex_ids],
            "Positions": [[float(c) for c in p] for p in positions]}


def set_uv_op(part: str, vertex_id: int | None, uv, *, uv_id: int | None = None) -> dict:
    """SetUV by vertex id (single-UV vertices) or, with ``uv_id=`` (and vertex_id None), by UV id."""
    if uv_id is not None:
        return {"op": "SetUV", "Part": part, "UVId": int(uv_id), "UV": [float(c) for c in uv]}
    return {"op": "SetUV", "Part": part, "VertexId": int(vertex_id), "UV": [float(c) for c in uv]}


def add_vertex_op(part: str, vertex_id: int, position) -> dict:
    return {"op": "AddVertex", "Part": part, "VertexId": int(vertex_id), "Position": [float(c) for c in position]}


def add_triangle_op(part: str, face_id: int, vertex_ids) -> dict:
    return {"op": "AddTriangle", "Part": part, "FaceId": int(face_id), "VertexIds": [int(v) for v in vertex_ids]}


def remove_face_op(part: str, face_id: int) -> dict:
    return {"op": "RemoveFace", "Part": part, "FaceId": int(face_id)}


def set_vertex_bone_weights_op(part: str, vertex_id: int, bones, weights) -> dict:
    return {"op": "SetVertexBoneWeights", "Part": part, "VertexId": int(vertex_id),
            "Bones": [int(b) for b in bones], "Weights": [float(w) for w in weights]}


def write_pixels_op(image: str, position, size, buffer: bytes) -> dict:
    return {"op": "WritePixelsBuffer", "Image": image, "Position": [int(c) for c in position],
            "Size": [int(c) for c in size], "Buffer": bytes(buffer)}


def draw_rectangle_op(image: str, position, size, color, transparency: float = 0.0,
                      combine_type: str = "BlendSourceOver") -> dict:
    return {"op": "DrawRectangle", "Image": image, "Position": [int(c) for c in position],
            "Size": [int(c) for c in size], "Color": [float(c) for c in color],
            "Transparency": float(transparency), "CombineType": combine_type}


def draw_circle_op(image: str, center, radius: int, color, transparency: float = 0.0,
                   combine_type: str = "BlendSourceOver") -> dict:
    return {"op": "DrawCircle", "Image": image, "Center": [int(c) for c in center], "Radius": int(radius),
            "Color": [float(c) for c in color], "Transparency": float(transparency), "CombineType": combine_type}


def set_property_op(name: str, value) -> dict:
    return {"op": "SetProperty", "Property": name, "Value": _plain_copy(value)}


# --------------------------------------------------------------------------- validation + application

# A prepared op: (apply closure, target).  target: ("part", name) | ("image", name, (x0, y0, x1, y1))
# | ("description",) -- what the undo log must save before the closure runs.
_Prepared = tuple[Callable[[], None], tuple]


def _id_list(v: object, what: str, n: int | None = None, *, most: int = MAX_VERTICES) -> list[int]:
    """A list of int64 ids: exactly ``n`` of them, or at most ``most`` (checked before any item)."""
    if not isinstance(v, (list, tuple)) or (n is not None and len(v) != n):
        raise InvalidEdit(f"{what} must be a list of {n if n is not None else ''} integer ids".replace("  ", " "))
    if len(v) > most:
        raise InvalidEdit(f"{what}: at most {most} ids per op")
    return [_int_id(x, what) for x in v]


def _set_positions(mesh: EditableMesh, vids: np.ndarray, pos: np.ndarray) -> None:
    """Vectorised SetPosition over distinct existing ids (same result as one call each):
    the positions change and every normal of a face touching one of them becomes automatic."""
    V, F, N = mesh._V, mesh._F, mesh._N
    V.cols["pos"][V.rows(vids)] = pos
    if F.n:
        touch = np.isin(F.col("v"), vids).any(axis=1)
        if touch.any():
            N.cols["val"][N.rows(np.unique(F.col("n")[touch]))] = 0.0


class _SetPosition:
    """A checked SetPosition; :func:`apply_ops` applies a run of them on one mesh at once."""

    __slots__ = ("mesh", "vid", "pos")

    def __init__(self, mesh: EditableMesh, vid: int, pos: tuple[float, ...]):
        self.mesh, self.vid, self.pos = mesh, vid, pos

    def __call__(self) -> None:
        self.mesh.SetPosition(self.vid, self.pos)


def _set_position_run(run: list[_SetPosition]) -> None:
    """Consecutive SetPositions on one mesh, vectorised: the last position of each vertex,
    and the normals of every face touching one of them made automatic -- what applying
    them one by one gives."""
    if len(run) == 1:
        run[0]()
        return
    last = {step.vid: step.pos for step in run}
    _set_positions(run[0].mesh, np.fromiter(last, np.int64, len(last)), np.asarray(list(last.values()), np.float64))


def _prepare_mesh_op(avatar: Avatar, name: str, op: dict) -> _Prepared:
    part = op["Part"]
    if not isinstance(part, str) or part not in avatar.parts:
        raise InvalidEdit(f"{name}: no MeshPart named {part!r}")
    mesh = avatar.parts[part]
    target = ("part", part)

    def vertex(key: str = "VertexId") -> int:
        vid = _int_id(op[key], f"{name}: {key}")
        if not mesh.HasVertex(vid):
            raise InvalidEdit(f"{name}: {part} has no vertex with id {vid}")
        return vid

    if name == "SetPosition":
        vid = vertex()
        pos = _vec(op["Position"], 3, f"{name}: Position", limit=MAX_COORDINATE)
        return _SetPosition(mesh, vid, pos), target

    if name == "BatchSetValues":
        ids = _id_list(op["VertexIds"], f"{name}: VertexIds")
        ps = op["Positions"]
        if not isinstance(ps, (list, tuple)) or len(ps) != len(ids):
            raise InvalidEdit(f"{name}: Positions must be a list with one [x, y, z] per vertex id")
        vids = np.asarray(ids, np.int64)
        if len(np.unique(vids)) != len(vids):
            raise InvalidEdit(f"{name}: VertexIds must be distinct")
        if not all(mesh.HasVertex(v) for v in ids):
            missing = next(v for v in ids if not mesh.HasVertex(v))
            raise InvalidEdit(f"{name}: {part} has no vertex with id {missing}")
        pos = np.asarray([_vec(p, 3, f"{name}: Positions[{i}]", limit=MAX_COORDINATE) for i, p in enumerate(ps)],
                         np.float64).reshape(-1, 3)
        return (lambda: _set_positions(mesh, vids, pos)), target

    if name == "SetUV":
        if ("VertexId" in op) == ("UVId" in op):
            raise InvalidEdit("SetUV needs exactly one of UVId and VertexId")
        if "UVId" in op:
            uid = _int_id(op["UVId"], f"{name}: UVId")
            if not mesh.HasUV(uid):
                raise InvalidEdit(f"{name}: {part} has no UV with id {uid}")
        else:
            vid = vertex()
        uv = _vec(op["UV"], 2, f"{name}: UV", limit=None)
        if not all(0.0 <= c <= 1.0 for c in uv):
            raise InvalidEdit(f"{name}: UV {list(uv)} must be inside 0..1")
        if "VertexId" in op:
            try:
                uid = mesh.vertex_uv_id(vid)
            except InvalidEdit as e:
                raise InvalidEdit(f"{name}: {part} {e.message}") from None
        return (lambda: mesh.SetUV(uid, uv)), target

    if name == "AddVertex":
        try:
            vid = mesh.check_new_vertex_id(op["VertexId"])
        except InvalidEdit as e:
            raise InvalidEdit(f"{name}: {part} {e.message}") from None
        pos = _vec(op["Position"], 3, f"{name}: Position", limit=MAX_COORDINATE)
        if mesh.vertex_count >= MAX_VERTICES:
            raise MeshLimitExceeded(f"{name}: {part} already has the maximum of {MAX_VERTICES} vertices")
        return (lambda: mesh.AddVertex(pos, vertex_id=vid)), target

    if name == "AddTriangle":
        try:
            fid = mesh.check_new_face_id(op["FaceId"])
        except InvalidEdit as e:
            raise InvalidEdit(f"{name}: {part} {e.message}") from None
        vs = _id_list(op["VertexIds"], f"{name}: VertexIds", 3)
        for v in vs:
            if not mesh.HasVertex(v):
                raise InvalidEdit(f"{name}: {part} has no vertex with id {v}")
        if len(set(vs)) != 3:
            raise InvalidEdit(f"{name}: a triangle needs three distinct vertices")
        if mesh.triangle_count >= MAX_TRIANGLES:
            raise MeshLimitExceeded(f"{name}: {part} already has the maximum of {MAX_TRIANGLES} triangles")
        a, b, c = vs
        # (the mesh method re-checks the attribute-table room before changing anything)
        return (lambda: mesh.AddTriangle(a, b, c, face_id=fid)), target

    if name == "RemoveFace":
        fid = _int_id(op["FaceId"], f"{name}: FaceId")
        if not mesh.HasFace(fid):
            raise InvalidEdit(f"{name}: {part} has no face with id {fid}")
        return (lambda: mesh.RemoveFace(fid)), target

    # SetVertexBoneWeights
    vid = vertex()
    bones = _id_list(op["Bones"], f"{name}: Bones", most=MAX_INFLUENCES)
    weights = op["Weights"]
    if not isinstance(weights, (list, tuple)) or len(weights) != len(bones) or not 1 <= len(bones) <= MAX_INFLUENCES:
        raise InvalidEdit(f"{name}: need 1..{MAX_INFLUENCES} bones with one weight each")
    if len(set(bones)) != len(bones):
        raise InvalidEdit(f"{name}: bones must be distinct")
    for bi in bones:
        if not 0 <= bi < len(avatar.bones):
            raise InvalidEdit(f"{name}: bone index {bi} is not one of the avatar's {len(avatar.bones)} bones")
        if avatar.bones[bi].get("Name") == "Root":
            raise InvalidEdit(f"{name}: the Root bone takes no skin weight")
    ws = _vec(list(weights), len(weights), f"{name}: Weights", limit=None)
    if not all(0.0 <= w <= 1.0 for w in ws) or not math.isclose(sum(ws), 1.0, abs_tol=1e-3):
        raise InvalidEdit(f"{name}: weights must be 0..1 and sum to 1")
    return (lambda: mesh.SetVertexSkin(vid, bones, list(ws))), target


def _prepare(avatar: Avatar, op: object) -> _Prepared:
    if not isinstance(op, dict):
        raise InvalidEdit("an edit op must be a dict")
    name = op.get("op")
    if not isinstance(name, str) or name not in OP_KEYS:
        raise InvalidEdit(f"unknown op {name!r}; expected one of {sorted(OP_KEYS)}")
    required, optional = OP_KEYS[name]
    keys = set(op) - {"op"}
    missing = required - keys
    if missing:
        raise InvalidEdit(f"{name} is missing {sorted(missing)}")
    extra = keys - required - optional
    if extra:
        raise InvalidEdit(f"{name} has unknown keys {sorted(extra)}")

    if name in _MESH_OPS:
        return _prepare_mesh_op(avatar, name, op)

    if name == "SetProperty":
        prop = op["Property"]
        value = avatar.check_property(prop, op["Value"])
        return (lambda: avatar.set_property(prop, value)), ("description",)

    image_name = op["Image"]
    if not isinstance(image_name, str) or image_name not in avatar.images:
        raise InvalidEdit(f"{name}: no image named {image_name!r}")
    img = avatar.images[image_name]
    try:
        if name == "WritePixelsBuffer":
            x, y, w, h, data = img.check_write(op["Position"], op["Size"], op["Buffer"])
            return (lambda: img.WritePixelsBuffer((x, y), (w, h), data)), ("image", image_name, (x, y, x + w, y + h))
        ct = op.get("CombineType", "BlendSourceOver")
        if name == "DrawRectangle":
            x, y, w, h, c, t, ct = img.check_draw(op["Position"], op["Size"], op["Color"], op["Transparency"], ct)
            return (lambda: img.DrawRectangle((x, y), (w, h), c.tolist(), t, ct)), ("image", image_name,
                                                                                   (x, y, x + w, y + h))
        cx, cy, r, c, t, ct = img.check_circle(op["Center"], op["Radius"], op["Color"], op["Transparency"], ct)
        W, H = img.Size
        box = (max(cx - r, 0), max(cy - r, 0), min(cx + r + 1, W), min(cy + r + 1, H))
        return (lambda: img.DrawCircle((cx, cy), r, c.tolist(), t, ct)), ("image", image_name, box)
    except InvalidEdit as e:
        raise InvalidEdit(f"{name} on {image_name}: {e.message}") from None


def validate_op(avatar: Avatar, op: object) -> Callable[[], None]:
    """Check ``op`` against ``avatar`` completely; return a closure that applies it.

    Raises :class:`InvalidEdit` with a message naming the problem.  The closure
    cannot fail for a validated op (the avatar must not change in between)."""
    return _prepare(avatar, op)[0]


def op_targets(op: dict) -> tuple[str, str | None]:
    """("part" | "image" | "description" | "unknown", name) of a well-formed op (no validation)."""
    if not isinstance(op, dict):
        return "unknown", None
    name = op.get("op")
    if name in _MESH_OPS:
        return "part", op.get("Part")
    if name in _IMAGE_OPS:
        return "image", op.get("Image")
    if name == "SetProperty":
        return "description", None
    return "unknown", None


def apply_op(avatar: Avatar, op: dict) -> None:
    """Validate ``op`` fully, then apply it; on :class:`InvalidEdit` nothing changed."""
    validate_op(avatar, op)()


class _UndoLog:
    """What a batch changed so far, and how to put it back (see the module docstring)."""

    __slots__ = ("avatar", "meshes", "regions", "description")

    def __init__(self, avatar: Avatar) -> None:
        self.avatar = avatar
        self.meshes: dict[str, tuple[EditableMesh, list]] = {}
        self.regions: list[tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]] = []
        self.description: dict | None = None

    def save(self, target: tuple) -> None:
        kind = target[0]
        if kind == "part":
            name = target[1]
            if name not in self.meshes:
                mesh = self.avatar.parts[name]
                tables = [(t, t.ids.copy(), {k: a.copy() for k, a in t.cols.items()}, t.n, t.next_id)
                          for t in (mesh._V, mesh._N, mesh._U, mesh._C, mesh._F)]
                self.meshes[name] = (mesh, tables)
        elif kind == "image":
            px = self.avatar.images[target[1]]._px
            x0, y0, x1, y1 = target[2]
            if x1 > x0 and y1 > y0:
                self.regions.append((px, (x0, y0, x1, y1), px[y0:y1, x0:x1].copy()))
        elif self.description is None:
            self.description = _plain_copy(self.avatar.description)

    def rollback(self) -> None:
        for px, (x0, y0, x1, y1), saved in reversed(self.regions):
            px[y0:y1, x0:x1] = saved
        for _mesh, tables in self.meshes.values():
            for t, ids, cols, n, next_id in tables:
                t.ids, t.cols, t.n, t.next_id = ids, cols, n, next_id
        if self.description is not None:
            self.avatar.description.clear()
            self.avatar.description.update(self.description)


def apply_ops(avatar: Avatar, ops: Iterable[dict]) -> int:
    """Apply a batch atomically; later ops see what earlier ones did.

    On :class:`InvalidEdit` (message prefixed with the op's index, ``"op i: "``)
    nothing changed: the undo log described in the module docstring restores every
    mesh, pixel region and the description the batch had touched.  Returns how many
    ops were applied."""
    if isinstance(ops, (dict, str, bytes)):
        raise InvalidEdit("ops must be a list of op dicts")
    try:
        ops = list(ops)
    except TypeError:
        raise InvalidEdit("ops must be a list of op dicts") from None
    if len(ops) == 1:
        try:
            step, _target = _prepare(avatar, ops[0])
            step()  # the mesh methods check everything before they change anything
        except InvalidEdit as e:
            raise type(e)(f"op 0: {e.message}", code=e.code) from None
        return 1
    undo = _UndoLog(avatar)
    i = 0
    run: list[_SetPosition] = []  # checked SetPositions on one mesh, not applied yet
    try:
        for i, op in enumerate(ops):
            step, target = _prepare(avatar, op)
            if isinstance(step, _SetPosition) and (not run or run[0].mesh is step.mesh):
                if not run:
                    undo.save(target)
                run.append(step)
                continue
            if run:  # later ops see the moved vertices
                _set_position_run(run)
                run = []
            undo.save(target)
            if isinstance(step, _SetPosition):
                run.append(step)
                continue
            step()
        if run:
            _set_position_run(run)
    except InvalidEdit as e:
        undo.rollback()
        raise type(e)(f"op {i}: {e.message}", code=e.code) from None
    except BaseException:
        undo.rollback()
        raise
    return len(ops)


def _cost_int(v: object) -> int | None:
    """``v`` as an int64 when it is one (or a float holding one), else None; never raises."""
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    try:
        return _integer(v, "value")
    except InvalidEdit:
        return None


def ops_cost(avatar: Avatar, ops: Iterable[dict]) -> int:
    """Upper bound of the work a batch does: pixels it may touch, plus one per vertex
    (``BatchSetValues``: one per vertex id) or other op.

    Lets a server refuse a batch that would stall it before applying anything.  It
    never raises: a malformed op (a missing key, a NaN or infinite size, an id past
    int64) costs 1 here and is refused by :func:`validate_op` anyway.
    """
    total = 0
    for op in ops:
        if isinstance(op, dict) and op.get("op") == "BatchSetValues":
            ids = op.get("VertexIds")
            total += max(len(ids), 1) if isinstance(ids, (list, tuple)) else 1
            continue
        img = avatar.images.get(op.get("Image")) if isinstance(op, dict) and isinstance(op.get("Image"), str) else None
        if img is None:
            total += 1
            continue
        width, height = img.Size
        if op.get("op") == "DrawCircle":
            r = _cost_int(op.get("Radius"))
            if r is None:
                total += 1
                continue
            side = 2 * max(r, 0) + 1
            total += min(side * side, width * height)
            continue
        size = op.get("Size")
        wh = [_cost_int(c) for c in size] if isinstance(size, (list, tuple)) and len(size) == 2 else [None]
        if None in wh:
            total += 1
            continue
        w, h = wh
        total += min(max(w, 0) * max(h, 0), width * height)
    return total
