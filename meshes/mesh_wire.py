"""The EditableMesh wire document (version :data:`meshes.editable_mesh.WIRE_VERSION`):
encoding the mesh tables to a msgpack-friendly dict and validating / decoding one
back (bodies of :meth:`EditableMesh.to_wire` / :meth:`EditableMesh.from_wire`)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .arrays_wire import array_from_wire, array_to_wire
from .limits import EXPLICIT_ID_BASE, MAX_ATTRIBUTES, MAX_MORPH_TARGETS, MAX_TRIANGLES, MAX_VERTICES, WIRE_VERSION, InvalidEdit, MeshLimitExceeded
from .id_table import _MORPH, _Table
from .value_checks import _check_morph_name

WIRE_KEYS = frozenset({
    "type", "version", "next_vertex_id", "next_normal_id", "next_uv_id", "next_color_id", "next_face_id",
    "vertex_ids", "positions", "joints", "weights", "morph_targets", "normal_ids", "normals", "uv_ids", "uvs",
    "color_ids", "colors", "face_ids", "faces", "face_normals", "face_uvs", "face_colors"})


def tables_to_wire(V: _Table, N: _Table, U: _Table, C: _Table, F: _Table, morph_names: list[str]) -> dict:
    """The wire dict of a mesh's tables; arrays as raw little-endian bytes."""
    return {
        "type": "EditableMesh",
        "version": WIRE_VERSION,
        "next_vertex_id": int(V.next_id),
        "next_normal_id": int(N.next_id),
        "next_uv_id": int(U.next_id),
        "next_color_id": int(C.next_id),
        "next_face_id": int(F.next_id),
        "vertex_ids": array_to_wire(V.live_ids),
        "positions": array_to_wire(V.col("pos")),
        "joints": array_to_wire(V.col("jnt")),
        "weights": array_to_wire(V.col("wgt")),
        "morph_targets": {name: array_to_wire(V.col(_MORPH + name)) for name in morph_names},
        "normal_ids": array_to_wire(N.live_ids),
        "normals": array_to_wire(N.col("val")),
        "uv_ids": array_to_wire(U.live_ids),
        "uvs": array_to_wire(U.col("val")),
        "color_ids": array_to_wire(C.live_ids),
        "colors": array_to_wire(C.col("val")),
        "face_ids": array_to_wire(F.live_ids),
        "faces": array_to_wire(F.col("v")),
        "face_normals": array_to_wire(F.col("n")),
        "face_uvs": array_to_wire(F.col("u")),
        "face_colors": array_to_wire(F.col("c")),
    }


def fill_tables_from_wire(d: dict, V: _Table, attr: Callable[[str], _Table], F: _Table) -> None:
    """Validate the wire dict ``d`` (keys, type and version already checked) and fill
    the empty vertex table ``V``, attribute tables ``attr(kind)`` and face table ``F``."""
    def ids_of(key: str, nxt_key: str, what: str, limit: int) -> tuple[np.ndarray, int]:
        ids = array_from_wire(d[key], dtype="<i8", ndim=1, what=key)
        nxt = d[nxt_key]
        if not isinstance(nxt, int) or isinstance(nxt, bool):
            raise InvalidEdit("next ids must be integers")
        if len(ids) > limit:
            raise MeshLimitExceeded(f"mesh has {len(ids)} {what}s; the limit is {limit}")
        if len(ids) and (ids[0] < 1 or (np.diff(ids) <= 0).any()
                         or ((ids >= nxt) & (ids < EXPLICIT_ID_BASE)).any()):
            raise InvalidEdit(f"{what} ids must be ascending, positive and (below 2**40) below the next id")
        return ids, nxt

    def arr(key: str, dtype: str, cols: int, n: int) -> np.ndarray:
        a = array_from_wire(d[key], dtype=dtype, ndim=2, cols=cols, what=key)
        if len(a) != n:
            raise InvalidEdit(f"{key} has {len(a)} rows, expected {n}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InvalidEdit(f"{key} must be finite")
        return a

    vid, nv = ids_of("vertex_ids", "next_vertex_id", "vertex", MAX_VERTICES)
    n = len(vid)
    vcols = {"pos": arr("positions", "<f4", 3, n), "jnt": arr("joints", "<u2", 4, n),
             "wgt": arr("weights", "<f4", 4, n)}
    mt = d["morph_targets"]
    if not isinstance(mt, dict) or len(mt) > MAX_MORPH_TARGETS:
        raise InvalidEdit(f"morph_targets must be a dict of at most {MAX_MORPH_TARGETS} arrays")
    for k, v in mt.items():
        _check_morph_name(k)
        vcols[_MORPH + k] = arr_m = array_from_wire(v, dtype="<f4", ndim=2, cols=3, what=f"morph target {k}")
        if len(arr_m) != n or not np.isfinite(arr_m).all():
            raise InvalidEdit(f"morph target {k!r} must have {n} finite rows")
    V.set_full(vid, vcols, nv)
    for k in vcols:
        if k.startswith(_MORPH):
            V.cols[k] = vcols[k]
    for kind, key, cols in (("normal", "normals", 3), ("uv", "uvs", 2), ("color", "colors", 4)):
        ids, nxt = ids_of(f"{kind}_ids", f"next_{kind}_id", kind, MAX_ATTRIBUTES)
        attr(kind).set_full(ids, {"val": arr(key, "<f4", cols, len(ids))}, nxt)
    fid, nf = ids_of("face_ids", "next_face_id", "face", MAX_TRIANGLES)
    m = len(fid)
    fcols = {}
    for c, key, table in (("v", "faces", V), ("n", "face_normals", attr("normal")), ("u", "face_uvs", attr("uv")),
                          ("c", "face_colors", attr("color"))):
        a = arr(key, "<i8", 3, m)
        try:
            table.rows(a)
        except InvalidEdit:
            raise InvalidEdit(f"a face references a missing {table.what}") from None
        fcols[c] = a
    F.set_full(fid, fcols, nf)
