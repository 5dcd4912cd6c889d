"""Edit ops: the wire form of every avatar mutation, and their sans-I/O application.

An op is a msgpack-friendly dict with an ``"op"`` key and exactly the keys below
(unknown keys are refused so typos never pass silently):

``SetPosition``       ``{"op", "Part": str, "VertexId": int, "Position": [x, y, z]}`` (studs, |c| ≤ 2048)
``SetUV``             ``{"op", "Part": str, "UVId": int, "UV": [u, v]}`` (0..1) -- by UV id, like
                      Roblox's ``EditableMesh:SetUV``; or ``{"op", "Part", "VertexId": int, "UV"}``
                      for a vertex with exactly one UV id (refused at a seam vertex,
                      which has one UV id per side).  Exactly one of UVId / VertexId.
``WritePixelsBuffer`` ``{"op", "Image": str, "Position": [x, y], "Size": [w, h], "Buffer": bytes}``
                      (RGBA8, ``len == w*h*4``, region inside the image)
``DrawRectangle``     ``{"op", "Image", "Position": [x, y], "Size": [w, h], "Color": [r, g, b], "Transparency": t}``
                      (+ optional ``"CombineType"``: "BlendSourceOver" (default) | "Overwrite")
``DrawCircle``        ``{"op", "Image", "Center": [x, y], "Radius": int, "Color", "Transparency"}`` (+ ``CombineType``)

:func:`apply_op` validates the op completely first and raises :class:`InvalidEdit`
(code "InvalidEdit", HTTP 422) without touching the avatar; otherwise it mutates
exactly one mesh or image.  :func:`apply_ops` does the same for a whole batch
(all or nothing).  Ops are deterministic: replaying the same sequence on
two equal avatars gives equal :meth:`Avatar.content_hash` values.
"""

from __future__ import annotations

from typing import Callable, Iterable

from .avatar import Avatar
from .editable_mesh import InvalidEdit, _int_id, _vec, MAX_COORDINATE

__all__ = [
    "InvalidEdit",
    "OP_KEYS",
    "apply_op",
    "apply_ops",
    "validate_op",
    "ops_cost",
    "set_position_op",
    "set_uv_op",
    "write_pixels_op",
    "draw_rectangle_op",
    "draw_circle_op",
]

#: op name → (required keys, optional keys); "op" is implied.
OP_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "SetPosition": (frozenset({"Part", "VertexId", "Position"}), frozenset()),
    "SetUV": (frozenset({"Part", "UV"}), frozenset({"VertexId", "UVId"})),
    "WritePixelsBuffer": (frozenset({"Image", "Position", "Size", "Buffer"}), frozenset()),
    "DrawRectangle": (frozenset({"Image", "Position", "Size", "Color", "Transparency"}), frozenset({"CombineType"})),
    "DrawCircle": (frozenset({"Image", "Center", "Radius", "Color", "Transparency"}), frozenset({"CombineType"})),
}


# --------------------------------------------------------------------------- constructors


def set_position_op(part: str, vertex_id: int, position) -> dict:
    return {"op": "SetPosition", "Part": part, "VertexId": int(vertex_id), "Position": [float(c) for c in position]}


def set_uv_op(part: str, vertex_id: int | None, uv, *, uv_id: int | None = None) -> dict:
    """SetUV by vertex id (single-UV vertices) or, with ``uv_id=`` (and vertex_id None), by UV id."""
    if uv_id is not None:
        return {"op": "SetUV", "Part": part, "UVId": int(uv_id), "UV": [float(c) for c in uv]}
    return {"op": "SetUV", "Part": part, "VertexId": int(vertex_id), "UV": [float(c) for c in uv]}


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


# --------------------------------------------------------------------------- validation + application


def validate_op(avatar: Avatar, op: object) -> Callable[[], None]:
    """Check ``op`` against ``avatar`` completely; return a closure that applies it.

    Raises :class:`InvalidEdit` with a message naming the problem.  The closure
    cannot fail for a validated op (the avatar must not change in between)."""
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

    if name in ("SetPosition", "SetUV"):
        part = op["Part"]
        if not isinstance(part, str) or part not in avatar.parts:
            raise InvalidEdit(f"{name}: no MeshPart named {part!r}")
        mesh = avatar.parts[part]
        if name == "SetUV" and ("VertexId" in op) == ("UVId" in op):
            raise InvalidEdit("SetUV needs exactly one of UVId and VertexId")
        if name == "SetUV" and "UVId" in op:
            uid = _int_id(op["UVId"], f"{name}: UVId")
            if not mesh.HasUV(uid):
                raise InvalidEdit(f"{name}: {part} has no UV with id {uid}")
        else:
            vid = _int_id(op["VertexId"], f"{name}: VertexId")
            if not mesh.HasVertex(vid):
                raise InvalidEdit(f"{name}: {part} has no vertex with id {vid}")
        if name == "SetPosition":
            pos = _vec(op["Position"], 3, f"{name}: Position", limit=MAX_COORDINATE)
            return lambda: mesh.SetPosition(vid, pos)
        uv = _vec(op["UV"], 2, f"{name}: UV", limit=None)
        if not all(0.0 <= c <= 1.0 for c in uv):
            raise InvalidEdit(f"{name}: UV {list(uv)} must be inside 0..1")
        if "VertexId" in op:
            try:
                uid = mesh.vertex_uv_id(vid)
            except InvalidEdit as e:
                raise InvalidEdit(f"{name}: {part} {e.message}") from None
        return lambda: mesh.SetUV(uid, uv)

    image_name = op["Image"]
    if not isinstance(image_name, str) or image_name not in avatar.images:
        raise InvalidEdit(f"{name}: no image named {image_name!r}")
    img = avatar.images[image_name]
    try:
        if name == "WritePixelsBuffer":
            x, y, w, h, data = img.check_write(op["Position"], op["Size"], op["Buffer"])
            return lambda: img.WritePixelsBuffer((x, y), (w, h), data)
        ct = op.get("CombineType", "BlendSourceOver")
        if name == "DrawRectangle":
            x, y, w, h, c, t, ct = img.check_draw(op["Position"], op["Size"], op["Color"], op["Transparency"], ct)
            return lambda: img.DrawRectangle((x, y), (w, h), c.tolist(), t, ct)
        cx, cy, r, c, t, ct = img.check_circle(op["Center"], op["Radius"], op["Color"], op["Transparency"], ct)
        return lambda: img.DrawCircle((cx, cy), r, c.tolist(), t, ct)
    except InvalidEdit as e:
        raise InvalidEdit(f"{name} on {image_name}: {e.message}") from None


def apply_op(avatar: Avatar, op: dict) -> None:
    """Validate ``op`` fully, then apply it; on :class:`InvalidEdit` nothing changed."""
    validate_op(avatar, op)()


def apply_ops(avatar: Avatar, ops: Iterable[dict]) -> int:
    """Apply a batch atomically: every op is validated first, then all are applied.

    On :class:`InvalidEdit` (message prefixed with the op's index) nothing changed.
    Valid because no op kind changes what later ops are validated against (ids,
    part and image names, image sizes).  Returns how many ops were applied."""
    if isinstance(ops, (dict, str, bytes)):
        raise InvalidEdit("ops must be a list of op dicts")
    try:
        ops = list(ops)
    except TypeError:
        raise InvalidEdit("ops must be a list of op dicts") from None
    steps = []
    for i, op in enumerate(ops):
        try:
            steps.append(validate_op(avatar, op))
        except InvalidEdit as e:
            raise InvalidEdit(f"op {i}: {e.message}") from None
    for step in steps:
        step()
    return len(steps)


def ops_cost(avatar: Avatar, ops: Iterable[dict]) -> int:
    """Upper bound of the work a batch does: pixels it may touch, plus one per vertex op.

    Lets a server refuse a batch that would stall it before applying anything; a
    malformed op costs 1 here and is refused by :func:`validate_op` anyway.
    """
    total = 0
    for op in ops:
        img = avatar.images.get(op.get("Image")) if isinstance(op, dict) and isinstance(op.get("Image"), str) else None
        if img is None:
            total += 1
            continue
        width, height = img.Size
        try:
            if op.get("op") == "DrawCircle":
                side = 2 * int(op["Radius"]) + 1
                total += min(side * side, width * height)
            else:
                w, h = (int(c) for c in op["Size"])
                total += min(max(w, 0) * max(h, 0), width * height)
        except (KeyError, TypeError, ValueError):
            total += 1
    return total
