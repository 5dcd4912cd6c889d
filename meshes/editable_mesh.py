"""EditableMesh: a numpy-backed triangle mesh with Roblox's EditableMesh API.

Data model (every table is row-aligned, kept sorted by id; ids are stable int64s
handed out 1, 2, 3, ... per table and never reused, so removing vertex 4 of
{1..5} leaves {1, 2, 3, 5}):

* **vertices**: position (3, float32, studs, avatar model space -- see
  :mod:`meshes.avatar`), skinning joints (4, uint16, indices into the avatar
  skeleton :data:`meshes.r15.BONE_NAMES`) and weights (4, float32, sum 1 when
  skinned; unused slots are joint 0 with weight 0), and one row per morph target
  (3, float32 position delta, studs).
* **normals**, **UVs**, **colors**: separate attribute tables with their own ids
  (Roblox's ``AddNormal`` / ``AddUV`` / ``AddColor``).  A normal is a unit vector,
  or *automatic* (stored as zero; its value is the area-weighted sum of the face
  normals of every face corner that uses it).  A UV is (u, v), 0..1, origin
  top-left like Roblox and glTF.  A colour is (r, g, b, alpha), 0..1.
* **faces**: three vertex ids, counter-clockwise seen from outside, plus three
  normal ids, three UV ids and three colour ids (one per corner).  So one vertex
  can carry several UVs (a texture seam) or normals (a hard edge) without being
  duplicated; :meth:`EditableMesh.export_arrays` splits vertices at those seams for
  formats (glTF) that need per-vertex attributes.

``AddTriangle`` follows Roblox's automatic-attribute rule: each corner reuses the
(lowest) normal / UV / colour id already used by a face on that vertex, and
otherwise gets a new one (automatic normal, UV (0, 0), white opaque colour).

**Explicit ids** (for edits made concurrently on several copies): ``AddVertex`` and
``AddTriangle`` accept a creator-chosen ``vertex_id=`` / ``face_id=``.  It must be
≥ 1, not in use, and -- when it lies in the counter's range (below
:data:`EXPLICIT_ID_BASE` = 2**40) -- not below the counter, so an id the counter
handed out is never handed out again (the counter then moves past it).  Ids from
2**40 up are left to the creators (see :class:`meshes.sync.IdAllocator`: side ``s``
uses ``s << 40 | n``); the counter keeps numbering builder-created rows 1, 2, 3, ...
Rows stay sorted by id whatever the creation order, so two copies that apply the
same ops in the same order hold identical tables.

Legacy per-vertex views (``normals``, ``uvs``) give, for each vertex, the value
of the first face corner (lowest face row) that uses it -- exact for meshes
without seams.

Limits: 60,000 vertices and 20,000 triangles, like Roblox, and 60,000 of each
attribute; going over raises :class:`MeshLimitExceeded`.  Every refusal is an
:class:`InvalidEdit` (a :class:`schemas.errors.InputRejected`, HTTP 422) and
leaves the mesh unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from schemas.errors import InputRejected

__all__ = [
    "EditableMesh",
    "ExportArrays",
    "InvalidEdit",
    "MeshLimitExceeded",
    "MAX_VERTICES",
    "MAX_TRIANGLES",
    "MAX_ATTRIBUTES",
    "MAX_INFLUENCES",
    "MAX_COORDINATE",
    "MAX_MORPH_TARGETS",
    "EXPLICIT_ID_BASE",
    "array_to_wire",
    "array_from_wire",
    "normalize_weights",
    "smooth_normals",
]

MAX_VERTICES = 60_000
MAX_TRIANGLES = 20_000
#: Most normals, UVs or colours (each) one mesh may hold.
MAX_ATTRIBUTES = 60_000
MAX_INFLUENCES = 4
#: Largest accepted |coordinate| in studs (Roblox's largest part size).
MAX_COORDINATE = 2048.0
#: Most morph targets one mesh may hold, and the longest name.
MAX_MORPH_TARGETS = 64
MAX_MORPH_NAME = 100
WIRE_VERSION = 2
#: Ids from here up are only ever chosen by their creators (explicit ids); the
#: per-table counter hands out 1, 2, 3, ... below it.
EXPLICIT_ID_BASE = 1 << 40
_MAX_ID = (1 << 63) - 1


class InvalidEdit(InputRejected):
    """An edit (or a wire document) that cannot be applied; nothing was changed."""

    status = 422
    default_code = "InvalidEdit"


class MeshLimitExceeded(InvalidEdit):
    """The edit would take a mesh past 60,000 vertices or 20,000 triangles."""

    default_code = "MeshLimitExceeded"


# --------------------------------------------------------------------------- wire helpers


def array_to_wire(a: np.ndarray) -> dict:
    """``{"dtype": "<f4", "shape": [..], "data": bytes}``, little-endian, C order."""
    a = np.ascontiguousarray(a)
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": le.dtype.str, "shape": [int(s) for s in a.shape], "data": le.tobytes()}


_WIRE_DTYPES = {"<f4", "<f8", "<i8", "<i4", "<u2", "<u1", "|u1"}


def array_from_wire(d: object, *, dtype: str, ndim: int, cols: int | None = None, what: str = "array") -> np.ndarray:
    """Decode :func:`array_to_wire` output, checking dtype, rank and byte length."""
    if not isinstance(d, dict) or set(d) != {"dtype", "shape", "data"}:
        raise InvalidEdit(f"{what}: expected a dict with dtype, shape and data")
    dt, shape, data = d["dtype"], d["shape"], d["data"]
    if dt not in _WIRE_DTYPES or np.dtype(dt) != np.dtype(dtype):
        raise InvalidEdit(f"{what}: dtype must be {dtype}, got {dt!r}")
    if (
        not isinstance(shape, (list, tuple))
        or len(shape) != ndim
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise InvalidEdit(f"{what}: shape must be {ndim} non-negative ints")
    if cols is not None and shape[-1] != cols:
        raise InvalidEdit(f"{what}: expected {cols} columns, got {shape[-1]}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidEdit(f"{what}: data must be bytes")
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(data) != expected:
        raise InvalidEdit(f"{what}: {len(data)} bytes for shape {list(shape)}, expected {expected}")
    return np.frombuffer(bytes(data), dtype=np.dtype(dt)).astype(np.dtype(dtype).newbyteorder("="), copy=True).reshape(shape)


# --------------------------------------------------------------------------- value checks


def _vec(p: object, n: int, what: str, *, limit: float | None = MAX_COORDINATE) -> tuple[float, ...]:
    if isinstance(p, np.ndarray):
        p = p.tolist()
    if not isinstance(p, (list, tuple)) or len(p) != n:
        raise InvalidEdit(f"{what} must be a list of {n} numbers")
    out = []
    for c in p:
        if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)):
            raise InvalidEdit(f"{what} must contain numbers, got {type(c).__name__}")
        f = float(c)
        if not math.isfinite(f):
            raise InvalidEdit(f"{what} must be finite, got {f}")
        if limit is not None and abs(f) > limit:
            raise InvalidEdit(f"{what} component {f} is outside ±{limit:g}")
        out.append(f)
    return tuple(out)


def _int_id(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InvalidEdit(f"{what} must be an integer id, got {type(v).__name__}")
    return int(v)


def _check_morph_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_MORPH_NAME or not name.isprintable():
        raise InvalidEdit(f"a morph target name must be 1..{MAX_MORPH_NAME} printable characters")
    return name


def _unit3(n: object, what: str) -> tuple[float, float, float]:
    v = np.asarray(_vec(n, 3, what, limit=None), np.float64)
    ln = float(np.linalg.norm(v))
    if not math.isfinite(ln) or ln < 1e-12:
        raise InvalidEdit(f"{what} must not be zero")
    return tuple(float(c) for c in v / ln)  # type: ignore[return-value]


def _rgb(c: object, what: str = "color") -> tuple[float, float, float]:
    v = _vec(c, 3, what, limit=None)
    if not all(0.0 <= x <= 1.0 for x in v):
        raise InvalidEdit(f"{what} components must be 0..1")
    return v  # type: ignore[return-value]


def _alpha(a: object) -> float:
    (x,) = _vec([a], 1, "alpha", limit=None)
    if not 0.0 <= x <= 1.0:
        raise InvalidEdit("alpha must be 0..1")
    return x


class _Table:
    """Rows with stable ascending int64 ids and named numpy columns (capacity-grown)."""

    __slots__ = ("what", "ids", "cols", "n", "next_id", "limit")

    def __init__(self, what: str, cols: dict[str, tuple[tuple[int, ...], type]], limit: int) -> None:
        self.what = what
        self.ids = np.zeros(0, np.int64)
        self.cols = {k: np.zeros((0,) + shape, dt) for k, (shape, dt) in cols.items()}
        self.n = 0
        self.next_id = 1
        self.limit = limit

    def col(self, k: str) -> np.ndarray:
        return self.cols[k][: self.n]

    @property
    def live_ids(self) -> np.ndarray:
        return self.ids[: self.n]

    def row(self, i: object) -> int:
        v = _int_id(i, f"{self.what} id")
        r = int(np.searchsorted(self.ids[: self.n], v))
        if r >= self.n or self.ids[r] != v:
            raise InvalidEdit(f"{self.what} id {v} does not exist")
        return r

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Vectorised id → row; raises if any id is missing."""
        ids = np.asarray(ids, np.int64)
        if ids.size == 0:
            return np.zeros(ids.shape, np.int64)
        r = np.searchsorted(self.ids[: self.n], ids)
        rc = np.minimum(r, max(self.n - 1, 0))
        if self.n == 0 or (self.ids[rc] != ids).any():
            raise InvalidEdit(f"a {self.what} id does not exist")
        return r.astype(np.int64)

    def has(self, i: object) -> bool:
        try:
            self.row(i)
        except InvalidEdit:
            return False
        return True

    def grow(self, need: int) -> None:
        if need <= len(self.ids):
            return
        cap = max(need, 2 * len(self.ids), 16)
        b = np.zeros(cap, np.int64)
        b[: self.n] = self.ids[: self.n]
        self.ids = b
        for k, a in self.cols.items():
            c = np.zeros((cap,) + a.shape[1:], a.dtype)
            c[: self.n] = a[: self.n]
            self.cols[k] = c

    def check_room(self, k: int = 1) -> None:
        if self.n + k > self.limit:
            raise MeshLimitExceeded(f"cannot add a {self.what}: the limit is {self.limit} {self.what}s")

    def check_new_id(self, i: object) -> int:
        """Validate a creator-chosen id (see the module docstring); returns it as int."""
        v = _int_id(i, f"new {self.what} id")
        if not 1 <= v <= _MAX_ID:
            raise InvalidEdit(f"a {self.what} id must be 1..2**63-1, got {v}")
        if self.has(v):
            raise InvalidEdit(f"{self.what} id {v} is already in use")
        if v < EXPLICIT_ID_BASE and v < self.next_id:
            raise InvalidEdit(f"{self.what} id {v} was handed out before; ids are never reused")
        return v

    def add(self, *, explicit_id: int | None = None, **values) -> int:
        self.check_room()
        if explicit_id is None:
            i = self.next_id
            while self.has(i):  # an explicit id took it (only ids ≥ next_id can be live)
                i += 1
            self.next_id = i + 1
        else:
            i = self.check_new_id(explicit_id)
            if i < EXPLICIT_ID_BASE:
                self.next_id = i + 1
        self.grow(self.n + 1)
        n = self.n
        r = n if n == 0 or self.ids[n - 1] < i else int(np.searchsorted(self.ids[:n], i))
        if r < n:  # keep rows sorted by id: shift the tail up one row
            self.ids[r + 1: n + 1] = self.ids[r:n].copy()
            for a in self.cols.values():
                a[r + 1: n + 1] = a[r:n].copy()
        self.ids[r] = i
        for k, a in self.cols.items():
            a[r] = values.get(k, 0)
        self.n += 1
        return i

    def add_many(self, values: dict[str, np.ndarray], count: int) -> np.ndarray:
        self.check_room(count)
        if self.n and self.ids[self.n - 1] >= self.next_id:  # explicit ids above: keep rows sorted
            return np.asarray([self.add(**{k: np.asarray(v)[j] for k, v in values.items()})
                               for j in range(count)], np.int64)
        self.grow(self.n + count)
        r0 = self.n
        ids = np.arange(self.next_id, self.next_id + count, dtype=np.int64)
        self.ids[r0: r0 + count] = ids
        for k, a in self.cols.items():
            a[r0: r0 + count] = values.get(k, 0)
        self.n += count
        self.next_id += count
        return ids

    def delete(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        keep = np.ones(self.n, bool)
        keep[rows] = False
        self.ids = self.ids[: self.n][keep].copy()
        for k, a in self.cols.items():
            self.cols[k] = a[: self.n][keep].copy()
        self.n = int(keep.sum())

    def set_full(self, ids: np.ndarray, cols: dict[str, np.ndarray], next_id: int) -> None:
        self.ids = np.ascontiguousarray(ids, np.int64)
        for k in self.cols:
            self.cols[k] = cols[k]
        self.n = len(ids)
        self.next_id = int(next_id)


_MORPH = "morph:"
_ATTR = ("normal", "uv", "color")
_ATTR_COL = {"normal": "n", "uv": "u", "color": "c"}


class ExportArrays(NamedTuple):
    """Per-output-vertex arrays from :meth:`EditableMesh.export_arrays` (glTF-ready,
    still in model-space studs).  ``N`` output vertices, ``m`` triangles."""

    positions: np.ndarray     # (N,3) float32
    normals: np.ndarray       # (N,3) float32 unit
    uvs: np.ndarray           # (N,2) float32
    colors: np.ndarray        # (N,4) float32 rgba 0..1
    joints: np.ndarray        # (N,4) uint16
    weights: np.ndarray       # (N,4) float32
    morphs: dict              # name -> (N,3) float32 deltas
    triangles: np.ndarray     # (m,3) int64 indices into the N rows
    vertex_rows: np.ndarray   # (N,) int64 row of the source vertex (into vertex_ids)
    face_ids: np.ndarray      # (m,) int64 face id of each triangle


class EditableMesh:
    """A triangle mesh with stable vertex / attribute / face ids (Roblox EditableMesh names)."""

    def __init__(self) -> None:
        self._V = _Table("vertex", {"pos": ((3,), np.float32), "jnt": ((4,), np.uint16),
                                    "wgt": ((4,), np.float32)}, MAX_VERTICES)
        self._N = _Table("normal", {"val": ((3,), np.float32)}, MAX_ATTRIBUTES)
        self._U = _Table("uv", {"val": ((2,), np.float32)}, MAX_ATTRIBUTES)
        self._C = _Table("color", {"val": ((4,), np.float32)}, MAX_ATTRIBUTES)
        self._F = _Table("face", {"v": ((3,), np.int64), "n": ((3,), np.int64), "u": ((3,), np.int64),
                                  "c": ((3,), np.int64)}, MAX_TRIANGLES)

    def _attr(self, kind: str) -> _Table:
        return {"normal": self._N, "uv": self._U, "color": self._C}[kind]

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_arrays(
        cls,
        positions: np.ndarray,
        triangles: np.ndarray,
        *,
        normals: np.ndarray | None = None,
        uvs: np.ndarray | None = None,
        colors: np.ndarray | None = None,
        face_normals: np.ndarray | None = None,
        face_uvs: np.ndarray | None = None,
        face_colors: np.ndarray | None = None,
        joints: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> "EditableMesh":
        """Bulk build.  ``positions`` (n,3) studs; ``triangles`` (m,3) vertex rows.

        Attributes: without ``face_<attr>`` an attribute array is per vertex (n rows;
        attribute ids 1..n, corner of vertex i uses id i+1); with ``face_<attr>``
        (m,3) indices into it, it is an attribute table of any length k (ids 1..k).
        ``normals`` (·,3) (zero rows = automatic; default all automatic), ``uvs``
        (·,2) (default 0), ``colors`` (·,3) or (·,4) rgb[a] 0..1 (default white).
        ``joints`` / ``weights`` (n,4).  Vertex ids become 1..n, face ids 1..m."""
        pos = np.asarray(positions, np.float32).reshape(-1, 3)
        tri = np.asarray(triangles, np.int64).reshape(-1, 3)
        n, m = len(pos), len(tri)
        if n > MAX_VERTICES:
            raise MeshLimitExceeded(f"{n} vertices is over the limit of {MAX_VERTICES}")
        if m > MAX_TRIANGLES:
            raise MeshLimitExceeded(f"{m} triangles is over the limit of {MAX_TRIANGLES}")
        if not np.isfinite(pos).all() or (np.abs(pos) > MAX_COORDINATE).any():
            raise InvalidEdit("positions must be finite and within ±2048 studs")
        if m and (tri.min() < 0 or tri.max() >= n):
            raise InvalidEdit("triangle indices out of range")
        if m and ((tri[:, 0] == tri[:, 1]) | (tri[:, 1] == tri[:, 2]) | (tri[:, 0] == tri[:, 2])).any():
            raise InvalidEdit("a triangle repeats a vertex")
        self = cls()
        vid = np.arange(1, n + 1, dtype=np.int64)
        jnt = np.zeros((n, 4), np.uint16) if joints is None else np.asarray(joints, np.uint16).reshape(n, 4).copy()
        wgt = np.zeros((n, 4), np.float32) if weights is None else np.asarray(weights, np.float32).reshape(n, 4).copy()
        self._V.set_full(vid, {"pos": pos.copy(), "jnt": jnt, "wgt": wgt}, n + 1)

        def table(kind: str, vals, face, cols: int, default) -> np.ndarray:
            if vals is None:
                if face is not None:
                    raise InvalidEdit(f"face_{kind}s needs {kind} values")
                k = n
                arr = np.tile(np.asarray(default, np.float32), (n, 1))
                fidx = tri
            else:
                arr = np.asarray(vals, np.float32)
                arr = arr.reshape(len(arr), -1) if arr.size else arr.reshape(0, cols)
                if kind == "color" and arr.shape[1] == 3:
                    arr = np.concatenate([arr, np.ones((len(arr), 1), np.float32)], axis=1)
                if arr.shape[1] != cols:
                    raise InvalidEdit(f"{kind}s need {cols} columns")
                k = len(arr)
                if face is None:
                    if k != n:
                        raise InvalidEdit(f"per-vertex {kind}s need {n} rows, got {k}")
                    fidx = tri
                else:
                    fidx = np.asarray(face, np.int64).reshape(-1, 3)
                    if len(fidx) != m or (m and (fidx.min() < 0 or fidx.max() >= k)):
                        raise InvalidEdit(f"face_{kind}s must be ({m}, 3) indices into {k} {kind}s")
            if k > MAX_ATTRIBUTES:
                raise MeshLimitExceeded(f"{k} {kind}s is over the limit of {MAX_ATTRIBUTES}")
            if not np.isfinite(arr).all():
                raise InvalidEdit(f"{kind}s must be finite")
            if kind == "normal":
                ln = np.linalg.norm(arr.astype(np.float64), axis=1, keepdims=True)
                arr = np.where(ln > 1e-12, arr / np.maximum(ln, 1e-30), 0.0).astype(np.float32)
            self._attr(kind).set_full(np.arange(1, k + 1, dtype=np.int64), {"val": np.ascontiguousarray(arr)}, k + 1)
            return fidx + 1

        fn = table("normal", normals, face_normals, 3, (0.0, 0.0, 0.0))
        fu = table("uv", uvs, face_uvs, 2, (0.0, 0.0))
        fc = table("color", colors, face_colors, 4, (1.0, 1.0, 1.0, 1.0))
        self._F.set_full(np.arange(1, m + 1, dtype=np.int64),
                         {"v": vid[tri] if m else np.zeros((0, 3), np.int64), "n": fn, "u": fu, "c": fc}, m + 1)
        return self

    def copy(self) -> "EditableMesh":
        return EditableMesh.from_wire(self.to_wire())

    # ------------------------------------------------------------------ ids

    def _row(self, vid: object) -> int:
        return self._V.row(vid)

    def _frow(self, fid: object) -> int:
        return self._F.row(fid)

    def HasVertex(self, vid: object) -> bool:
        return self._V.has(vid)

    def HasFace(self, fid: object) -> bool:
        return self._F.has(fid)

    def HasNormal(self, nid: object) -> bool:
        return self._N.has(nid)

    def HasUV(self, uid: object) -> bool:
        return self._U.has(uid)

    def HasColor(self, cid: object) -> bool:
        return self._C.has(cid)

    # ------------------------------------------------------------------ Roblox API: vertices

    def AddVertex(self, p: Sequence[float], *, vertex_id: int | None = None) -> int:
        """Add a vertex at ``p`` (studs); returns its id -- ``vertex_id`` when given
        (creator-chosen: ≥ 1, unused, never handed out by the counter), else the
        counter's next.  Morph deltas start at zero."""
        xyz = _vec(p, 3, "position")
        if self._V.n >= MAX_VERTICES:
            raise MeshLimitExceeded(f"cannot add a vertex: the limit is {MAX_VERTICES} vertices")
        return self._V.add(explicit_id=vertex_id, pos=xyz)

    def check_new_vertex_id(self, vertex_id: object) -> int:
        """Raise :class:`InvalidEdit` unless ``vertex_id`` may be used by :meth:`AddVertex`."""
        return self._V.check_new_id(vertex_id)

    def check_new_face_id(self, face_id: object) -> int:
        """Raise :class:`InvalidEdit` unless ``face_id`` may be used by :meth:`AddTriangle`."""
        return self._F.check_new_id(face_id)

    def GetPosition(self, vid: int) -> tuple[float, float, float]:
        return tuple(float(c) for c in self._V.col("pos")[self._row(vid)])  # type: ignore[return-value]

    def SetPosition(self, vid: int, p: Sequence[float]) -> None:
        """Move a vertex (studs).  Every normal used by a face touching the vertex becomes
        automatic (recomputed from the faces), so shading follows the edit."""
        r = self._row(vid)
        xyz = _vec(p, 3, "position")
        self._V.cols["pos"][r] = xyz
        F = self._F
        touch = (F.col("v") == self._V.ids[r]).any(axis=1)
        if touch.any():
            nids = np.unique(F.col("n")[touch])
            self._N.cols["val"][self._N.rows(nids)] = 0.0

    def GetVertices(self) -> list[int]:
        return self._V.live_ids.tolist()

    def GetVertexFaces(self, vid: int) -> list[int]:
        v = int(self._V.ids[self._row(vid)])
        return self._F.live_ids[(self._F.col("v") == v).any(axis=1)].tolist()

    def GetAdjacentVertices(self, vid: int) -> list[int]:
        """Vertex ids sharing an edge with ``vid``, ascending."""
        v = int(self._V.ids[self._row(vid)])
        fv = self._F.col("v")
        near = np.unique(fv[(fv == v).any(axis=1)])
        return near[near != v].tolist()

    def _vertex_attr_ids(self, vid: int, kind: str) -> list[int]:
        v = int(self._V.ids[self._row(vid)])
        mask = self._F.col("v") == v
        return np.unique(self._F.col(_ATTR_COL[kind])[mask]).tolist()

    def GetVertexNormals(self, vid: int) -> list[int]:
        """Normal ids used by face corners on this vertex, ascending."""
        return self._vertex_attr_ids(vid, "normal")

    def GetVertexUVs(self, vid: int) -> list[int]:
        """UV ids used by face corners on this vertex, ascending (2+ at a texture seam)."""
        return self._vertex_attr_ids(vid, "uv")

    def GetVertexColors(self, vid: int) -> list[int]:
        return self._vertex_attr_ids(vid, "color")

    def GetVertexBones(self, vid: int) -> list[int]:
        r = self._row(vid)
        return [int(j) for j, w in zip(self._V.cols["jnt"][r], self._V.cols["wgt"][r]) if w > 0]

    def GetVertexBoneWeights(self, vid: int) -> list[float]:
        r = self._row(vid)
        return [float(w) for w in self._V.cols["wgt"][r] if w > 0]

    def SetVertexSkin(self, vid: int, joints: Sequence[int], weights: Sequence[float]) -> None:
        """Set up to 4 (joint index, weight) influences; weights are normalised to sum 1."""
        r = self._row(vid)
        j, w = self._check_skin(joints, weights)
        self._V.cols["jnt"][r], self._V.cols["wgt"][r] = j, w

    @staticmethod
    def _check_skin(joints: Sequence[int], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(joints, (list, tuple)) or not isinstance(weights, (list, tuple)):
            raise InvalidEdit("joints and weights must be lists")
        if len(joints) != len(weights) or not 1 <= len(joints) <= MAX_INFLUENCES:
            raise InvalidEdit(f"need 1..{MAX_INFLUENCES} joints with one weight each")
        js = [_int_id(j, "joint index") for j in joints]
        if any(not 0 <= j < 65536 for j in js) or len(set(js)) != len(js):
            raise InvalidEdit("joint indices must be distinct and in 0..65535")
        ws = _vec(list(weights), len(weights), "weights", limit=None)
        if any(x < 0 for x in ws) or sum(ws) <= 0:
            raise InvalidEdit("weights must be non-negative with a positive sum")
        j = np.zeros(4, np.uint16)
        w = np.zeros(4, np.float32)
        j[: len(js)] = js
        w[: len(ws)] = np.asarray(ws, np.float64) / sum(ws)
        return j, normalize_weights(w[None])[0]

    def RemoveVertex(self, vid: int) -> None:
        """Remove a vertex and every face that uses it.  Other ids do not change;
        attributes stay until :meth:`RemoveUnused`."""
        r = self._row(vid)
        v = int(self._V.ids[r])
        self._F.delete(np.nonzero((self._F.col("v") == v).any(axis=1))[0])
        self._V.delete(np.array([r]))

    def RemoveUnused(self) -> list[int]:
        """Remove vertices, normals, UVs and colours no face uses; returns the removed
        vertex ids (Roblox's RemoveUnused)."""
        F = self._F
        used = np.isin(self._V.live_ids, F.col("v").ravel())
        rows = np.nonzero(~used)[0]
        ids = [int(i) for i in self._V.live_ids[rows]]
        self._V.delete(rows)
        for kind in _ATTR:
            t = self._attr(kind)
            t.delete(np.nonzero(~np.isin(t.live_ids, F.col(_ATTR_COL[kind]).ravel()))[0])
        return ids

    # ------------------------------------------------------------------ Roblox API: normals, UVs, colours

    def AddNormal(self, normal: Sequence[float] | None = None) -> int:
        """New normal id; ``None`` makes it automatic (computed from its faces)."""
        val = (0.0, 0.0, 0.0) if normal is None else _unit3(normal, "normal")
        return self._N.add(val=val)

    def GetNormal(self, nid: int) -> tuple[float, float, float]:
        """The normal's unit vector (computed from its faces when automatic)."""
        r = self._N.row(nid)
        return tuple(float(c) for c in self._normal_values()[r])  # type: ignore[return-value]

    def SetNormal(self, nid: int, normal: Sequence[float]) -> None:
        """Set a normal (normalised); it stops being automatic."""
        r = self._N.row(nid)
        self._N.cols["val"][r] = _unit3(normal, "normal")

    def ResetNormal(self, nid: int) -> None:
        """Make a normal automatic again."""
        self._N.cols["val"][self._N.row(nid)] = 0.0

    def IsNormalAutomatic(self, nid: int) -> bool:
        return not self._N.cols["val"][self._N.row(nid)].any()

    def AddUV(self, uv: Sequence[float]) -> int:
        return self._U.add(val=_vec(uv, 2, "uv", limit=1e6))

    def GetUV(self, uid: int) -> tuple[float, float]:
        """UV by **UV id** (Roblox).  For a vertex, see :meth:`GetVertexUVs`."""
        return tuple(float(c) for c in self._U.cols["val"][self._U.row(uid)])  # type: ignore[return-value]

    def SetUV(self, uid: int, uv: Sequence[float]) -> None:
        """Set a UV by **UV id** (Roblox's SetUV).  For the single-UV case by vertex id,
        use :meth:`SetVertexUV`."""
        r = self._U.row(uid)
        self._U.cols["val"][r] = _vec(uv, 2, "uv", limit=1e6)

    def vertex_uv_id(self, vid: int) -> int:
        """The one UV id used by a vertex's corners; :class:`InvalidEdit` when it has
        none or several (a seam vertex: edit its UVs by UV id)."""
        ids = self.GetVertexUVs(vid)
        if len(ids) != 1:
            raise InvalidEdit(f"vertex {int(vid)} has {len(ids)} UVs; set them by UV id")
        return ids[0]

    def SetVertexUV(self, vid: int, uv: Sequence[float]) -> None:
        """Set the UV of a vertex that has exactly one UV id (no seam through it)."""
        val = _vec(uv, 2, "uv", limit=1e6)
        self._U.cols["val"][self._U.row(self.vertex_uv_id(vid))] = val

    def AddColor(self, color: Sequence[float], alpha: float = 1.0) -> int:
        return self._C.add(val=(*_rgb(color), _alpha(alpha)))

    def GetColor(self, cid: int) -> tuple[float, float, float]:
        return tuple(float(c) for c in self._C.cols["val"][self._C.row(cid), :3])  # type: ignore[return-value]

    def GetColorAlpha(self, cid: int) -> float:
        return float(self._C.cols["val"][self._C.row(cid), 3])

    def SetColor(self, cid: int, color: Sequence[float]) -> None:
        r = self._C.row(cid)
        self._C.cols["val"][r, :3] = _rgb(color)

    def SetColorAlpha(self, cid: int, alpha: float) -> None:
        r = self._C.row(cid)
        self._C.cols["val"][r, 3] = _alpha(alpha)

    def GetNormals(self) -> list[int]:
        return self._N.live_ids.tolist()

    def GetUVs(self) -> list[int]:
        return self._U.live_ids.tolist()

    def GetColors(self) -> list[int]:
        return self._C.live_ids.tolist()

    def _face_attr(self, fid: int, kind: str) -> list[int]:
        return [int(i) for i in self._F.cols[_ATTR_COL[kind]][self._frow(fid)]]

    def _set_face_attr(self, fid: int, kind: str, ids: Sequence[int]) -> None:
        r = self._frow(fid)
        if not isinstance(ids, (list, tuple)) or len(ids) != 3:
            raise InvalidEdit(f"a face needs exactly three {kind} ids")
        t = self._attr(kind)
        vals = [int(t.ids[t.row(i)]) for i in ids]
        self._F.cols[_ATTR_COL[kind]][r] = vals

    def GetFaceNormals(self, fid: int) -> list[int]:
        return self._face_attr(fid, "normal")

    def SetFaceNormals(self, fid: int, ids: Sequence[int]) -> None:
        self._set_face_attr(fid, "normal", ids)

    def GetFaceUVs(self, fid: int) -> list[int]:
        return self._face_attr(fid, "uv")

    def SetFaceUVs(self, fid: int, ids: Sequence[int]) -> None:
        self._set_face_attr(fid, "uv", ids)

    def GetFaceColors(self, fid: int) -> list[int]:
        return self._face_attr(fid, "color")

    def SetFaceColors(self, fid: int, ids: Sequence[int]) -> None:
        self._set_face_attr(fid, "color", ids)

    # ------------------------------------------------------------------ Roblox API: faces

    def AddTriangle(self, v0: int, v1: int, v2: int, *, face_id: int | None = None) -> int:
        """Add a counter-clockwise triangle over three existing, distinct vertex ids;
        returns its id (``face_id`` when given, see :meth:`AddVertex`).

        Each corner reuses the lowest normal / UV / colour id already used by a face
        on that vertex, or gets a new one (automatic normal, UV (0, 0), white); those
        attribute ids always come from the tables' counters."""
        if face_id is not None:
            face_id = self._F.check_new_id(face_id)
        rows = [self._row(v) for v in (v0, v1, v2)]
        ids = [int(self._V.ids[r]) for r in rows]
        if len(set(ids)) != 3:
            raise InvalidEdit("a triangle needs three distinct vertices")
        F = self._F
        if F.n >= MAX_TRIANGLES:
            raise MeshLimitExceeded(f"cannot add a triangle: the limit is {MAX_TRIANGLES} triangles")
        fv = F.col("v")
        found: dict[str, list[int | None]] = {k: [] for k in _ATTR}
        for v in ids:
            mask = fv == v
            for kind in _ATTR:
                a = F.col(_ATTR_COL[kind])[mask]
                found[kind].append(int(a.min()) if a.size else None)
        need = {kind: sum(x is None for x in found[kind]) for kind in _ATTR}
        for kind in _ATTR:
            self._attr(kind).check_room(need[kind])
        defaults = {"normal": (0.0, 0.0, 0.0), "uv": (0.0, 0.0), "color": (1.0, 1.0, 1.0, 1.0)}
        cols = {}
        for kind in _ATTR:
            cols[_ATTR_COL[kind]] = [x if x is not None else self._attr(kind).add(val=defaults[kind])
                                     for x in found[kind]]
        return F.add(explicit_id=face_id, v=ids, **cols)

    def RemoveFace(self, fid: int) -> None:
        """Remove a face; its vertices and attributes stay until :meth:`RemoveUnused`."""
        self._F.delete(np.array([self._frow(fid)]))

    def GetFaceVertices(self, fid: int) -> list[int]:
        return [int(v) for v in self._F.cols["v"][self._frow(fid)]]

    def SetFaceVertices(self, fid: int, vids: Sequence[int]) -> None:
        r = self._frow(fid)
        if not isinstance(vids, (list, tuple)) or len(vids) != 3:
            raise InvalidEdit("a face needs exactly three vertex ids")
        ids = [int(self._V.ids[self._row(v)]) for v in vids]
        if len(set(ids)) != 3:
            raise InvalidEdit("a triangle needs three distinct vertices")
        self._F.cols["v"][r] = ids

    def GetFaces(self) -> list[int]:
        return self._F.live_ids.tolist()

    # ------------------------------------------------------------------ morph targets

    def SetMorphTarget(self, name: str, deltas) -> None:
        """Create or replace the morph target ``name``.

        ``deltas``: an (n, 3) array of position offsets in studs, row-aligned with
        :attr:`vertex_ids` (the current vertex order), or a ``{vertex_id: (dx, dy, dz)}``
        dict (vertices not named get zero).  Vertices added later get zero deltas;
        removed vertices drop their rows.  Stored as float32; part of :meth:`to_wire`.
        """
        _check_morph_name(name)
        V = self._V
        key = _MORPH + name
        if key not in V.cols and len(self.GetMorphTargetNames()) >= MAX_MORPH_TARGETS:
            raise InvalidEdit(f"a mesh holds at most {MAX_MORPH_TARGETS} morph targets")
        out = np.zeros((len(V.ids), 3), np.float32)
        if isinstance(deltas, dict):
            if deltas:
                ids = np.asarray([_int_id(k, "morph vertex id") for k in deltas], np.int64)
                try:
                    rows = V.rows(ids)
                except InvalidEdit:
                    raise InvalidEdit(f"morph target {name!r} names a vertex that does not exist") from None
                out[rows] = np.asarray([_vec(v, 3, "morph delta") for v in deltas.values()], np.float32)
        else:
            d = np.asarray(deltas, np.float64)
            if d.shape != (V.n, 3):
                raise InvalidEdit(f"morph target {name!r} needs ({V.n}, 3) deltas, got {d.shape}")
            if not np.isfinite(d).all() or (np.abs(d) > MAX_COORDINATE).any():
                raise InvalidEdit(f"morph target {name!r} deltas must be finite and within ±2048 studs")
            out[: V.n] = d.astype(np.float32)
        V.cols[key] = out

    def RemoveMorphTarget(self, name: str) -> None:
        if not isinstance(name, str) or _MORPH + name not in self._V.cols:
            raise InvalidEdit(f"no morph target named {name!r}")
        del self._V.cols[_MORPH + name]

    def GetMorphTargetNames(self) -> list[str]:
        """Morph target names in creation order."""
        return [k[len(_MORPH):] for k in self._V.cols if k.startswith(_MORPH)]

    def morph_deltas(self, name: str) -> np.ndarray:
        """(n, 3) float32 deltas of ``name``, row-aligned with :attr:`vertex_ids`."""
        if not isinstance(name, str) or _MORPH + name not in self._V.cols:
            raise InvalidEdit(f"no morph target named {name!r}")
        return self._V.col(_MORPH + name).copy()

    # ------------------------------------------------------------------ queries

    def FindClosestVertex(self, p: Sequence[float]) -> int:
        """Id of the vertex nearest to ``p`` (ties: the lowest id)."""
        q = np.asarray(_vec(p, 3, "point", limit=None), np.float64)
        if self._V.n == 0:
            raise InvalidEdit("the mesh has no vertices")
        d = ((self._V.col("pos").astype(np.float64) - q) ** 2).sum(axis=1)
        return int(self._V.ids[int(np.argmin(d))])

    def FindVerticesWithinSphere(self, center: Sequence[float], radius: float) -> list[int]:
        q = np.asarray(_vec(center, 3, "center", limit=None), np.float64)
        (r,) = _vec([radius], 1, "radius", limit=None)
        d = ((self._V.col("pos").astype(np.float64) - q) ** 2).sum(axis=1)
        return self._V.live_ids[d <= r * r].tolist()

    def _tri_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self._V.col("pos").astype(np.float64)
        t = self.triangles
        return p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]

    def RaycastLocal(self, origin: Sequence[float], direction: Sequence[float]):
        """Nearest hit of the ray ``origin + t·direction`` (t ≥ 0, both face sides) with
        the mesh (vectorised Möller–Trumbore over all faces).

        Returns ``(point (x, y, z), face_id, (b0, b1, b2))`` -- the barycentric weights
        of the face's three vertices, ``point = Σ bᵢ·pᵢ`` -- or ``None`` on a miss.
        The direction's length does not limit the ray."""
        o = np.asarray(_vec(origin, 3, "origin", limit=None), np.float64)
        d = np.asarray(_vec(direction, 3, "direction", limit=None), np.float64)
        if not np.any(d):
            raise InvalidEdit("direction must not be zero")
        if self._F.n == 0:
            return None
        a, b, c = self._tri_points()
        e1, e2 = b - a, c - a
        pv = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, pv)
        ok = np.abs(det) > 1e-12 * max(float(np.abs(det).max()), 1e-300)
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tv = o - a
        u = np.einsum("ij,ij->i", tv, pv) * inv
        qv = np.cross(tv, e1)
        v = (qv @ d) * inv
        t = np.einsum("ij,ij->i", e2, qv) * inv
        eps = 1e-9
        hit = ok & (u >= -eps) & (v >= -eps) & (u + v <= 1 + eps) & (t >= 0)
        if not hit.any():
            return None
        k = int(np.flatnonzero(hit)[np.argmin(t[hit])])
        uu, vv = float(np.clip(u[k], 0, 1)), float(np.clip(v[k], 0, 1))
        bary = (1.0 - uu - vv, uu, vv)
        point = o + t[k] * d
        return tuple(float(x) for x in point), int(self._F.ids[k]), bary

    def FindClosestPointOnSurface(self, point: Sequence[float]):
        """Closest point of the surface to ``point`` (vectorised over all faces).

        Returns ``(closest (x, y, z), face_id, (b0, b1, b2))`` or ``None`` when the
        mesh has no faces."""
        q = np.asarray(_vec(point, 3, "point", limit=None), np.float64)
        if self._F.n == 0:
            return None
        a, b, c = self._tri_points()
        bary = _closest_barycentric(q, a, b, c)
        cp = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
        k = int(np.argmin(((cp - q) ** 2).sum(axis=1)))
        return tuple(float(x) for x in cp[k]), int(self._F.ids[k]), tuple(float(x) for x in bary[k])

    def GetBounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min (3,), max (3,)) of vertex positions in studs; zeros if empty."""
        if self._V.n == 0:
            return np.zeros(3, np.float32), np.zeros(3, np.float32)
        p = self._V.col("pos")
        return p.min(axis=0), p.max(axis=0)

    def GetSize(self) -> tuple[float, float, float]:
        lo, hi = self.GetBounds()
        return tuple(float(c) for c in (hi - lo))  # type: ignore[return-value]

    def GetCenter(self) -> tuple[float, float, float]:
        lo, hi = self.GetBounds()
        return tuple(float(c) for c in (hi + lo) / 2)  # type: ignore[return-value]

    # ------------------------------------------------------------------ bulk accessors

    @property
    def vertex_count(self) -> int:
        return self._V.n

    @property
    def triangle_count(self) -> int:
        return self._F.n

    @property
    def vertex_ids(self) -> np.ndarray:
        """(n,) int64, ascending."""
        return self._V.live_ids.copy()

    @property
    def face_ids(self) -> np.ndarray:
        """(m,) int64, ascending."""
        return self._F.live_ids.copy()

    @property
    def positions(self) -> np.ndarray:
        """(n,3) float32 studs."""
        return self._V.col("pos").copy()

    @property
    def joints(self) -> np.ndarray:
        """(n,4) uint16 skeleton joint indices."""
        return self._V.col("jnt").copy()

    @property
    def weights(self) -> np.ndarray:
        """(n,4) float32 skin weights."""
        return self._V.col("wgt").copy()

    @property
    def triangles(self) -> np.ndarray:
        """(m,3) int64 vertex row indices (into :attr:`positions`)."""
        if self._F.n == 0:
            return np.zeros((0, 3), np.int64)
        return np.searchsorted(self._V.live_ids, self._F.col("v")).astype(np.int64)

    def face_attribute_rows(self, kind: str) -> np.ndarray:
        """(m,3) row indices into the ``kind`` table ("normal", "uv", "color") per face corner."""
        t = self._attr(kind)
        if self._F.n == 0:
            return np.zeros((0, 3), np.int64)
        return np.searchsorted(t.live_ids, self._F.col(_ATTR_COL[kind])).astype(np.int64)

    @property
    def uv_table(self) -> np.ndarray:
        """(k,2) float32 UV values, row-aligned with :meth:`GetUVs`."""
        return self._U.col("val").copy()

    @property
    def color_table(self) -> np.ndarray:
        """(k,4) float32 rgba, row-aligned with :meth:`GetColors`."""
        return self._C.col("val").copy()

    def corner_uvs(self) -> np.ndarray:
        """(m,3,2) float32 UV of every face corner."""
        return self._U.col("val")[self.face_attribute_rows("uv")]

    def _first_corner(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(vertex rows having a face, attribute row of their first corner)."""
        tri = self.triangles.reshape(-1)
        att = self.face_attribute_rows(kind).reshape(-1)
        vr, first = np.unique(tri, return_index=True)
        return vr, att[first]

    @property
    def uvs(self) -> np.ndarray:
        """(n,2) float32 per-vertex UV: the first corner's (exact without seams; zero
        for a vertex no face uses).  Per-corner data: :meth:`corner_uvs`, :meth:`export_arrays`."""
        out = np.zeros((self._V.n, 2), np.float32)
        vr, ar = self._first_corner("uv")
        out[vr] = self._U.col("val")[ar]
        return out

    @property
    def normals(self) -> np.ndarray:
        """(n,3) float32 per-vertex unit normal: the first corner's normal (computed
        when automatic); (0, 1, 0) for a vertex no face uses."""
        out = np.zeros((self._V.n, 3), np.float32)
        out[:, 1] = 1.0
        vr, ar = self._first_corner("normal")
        out[vr] = self._normal_values()[ar]
        return out

    def computed_normals(self) -> np.ndarray:
        """Alias of :attr:`normals` (per-vertex unit normals)."""
        return self.normals

    def _normal_values(self) -> np.ndarray:
        """(k,3) float32 unit value of every normal row (automatic ones computed as the
        area-weighted sum of the face normals of the corners using them)."""
        val = self._N.col("val").astype(np.float64)
        auto = ~val.any(axis=1)
        if auto.any() and self._F.n:
            a, b, c = self._tri_points()
            fn = np.cross(b - a, c - a)
            rows = self.face_attribute_rows("normal")
            acc = np.zeros((self._N.n, 3))
            for k in range(3):
                acc[:, k] = np.bincount(rows.reshape(-1), weights=np.repeat(fn[:, k], 3), minlength=self._N.n)
            val[auto] = acc[auto]
        ln = np.linalg.norm(val, axis=1)
        ok = ln > 1e-20
        val[ok] /= ln[ok, None]
        val[~ok] = (0.0, 1.0, 0.0)
        return val.astype(np.float32)

    def export_arrays(self) -> ExportArrays:
        """Per-output-vertex arrays for formats with per-vertex attributes (glTF).

        One output vertex per distinct (vertex, normal id, UV id, colour id) used by a
        face corner -- vertices are split only at attribute seams; vertices no face uses
        are dropped.  Output order: by vertex row, then normal, UV, colour row
        (deterministic).  Normals are unit (automatic ones computed)."""
        m = self._F.n
        tri = self.triangles.reshape(-1)
        key = np.stack([tri] + [self.face_attribute_rows(k).reshape(-1) for k in _ATTR], axis=1)
        if m:
            order = np.lexsort(key.T[::-1])
            ks = key[order]
            new = np.ones(len(ks), bool)
            new[1:] = (ks[1:] != ks[:-1]).any(axis=1)
            uniq = ks[new]
            inv = np.empty(len(ks), np.int64)
            inv[order] = np.cumsum(new) - 1
        else:
            uniq = np.zeros((0, 4), np.int64)
            inv = np.zeros(0, np.int64)
        vr, nr, ur, cr = uniq.T
        V = self._V
        return ExportArrays(
            positions=V.col("pos")[vr].copy(),
            normals=self._normal_values()[nr],
            uvs=self._U.col("val")[ur].copy(),
            colors=self._C.col("val")[cr].copy(),
            joints=V.col("jnt")[vr].copy(),
            weights=V.col("wgt")[vr].copy(),
            morphs={name: V.col(_MORPH + name)[vr].copy() for name in self.GetMorphTargetNames()},
            triangles=inv.reshape(m, 3),
            vertex_rows=vr.astype(np.int64),
            face_ids=self._F.live_ids.copy(),
        )

    def set_skin_arrays(self, joints: np.ndarray, weights: np.ndarray) -> None:
        """Bulk skinning: joints (n,4) ints, weights (n,4) floats (normalised here)."""
        n = self._V.n
        j = np.asarray(joints)
        w = np.asarray(weights, np.float64)
        if j.shape != (n, 4) or w.shape != (n, 4):
            raise InvalidEdit(f"skin arrays must be ({n}, 4)")
        if (j < 0).any() or (j > 65535).any() or not np.isfinite(w).all() or (w < 0).any():
            raise InvalidEdit("bad skin arrays")
        self._V.cols["jnt"][:n] = j.astype(np.uint16)
        self._V.cols["wgt"][:n] = normalize_weights(w)

    def set_positions(self, positions: np.ndarray) -> None:
        """Bulk move: (n,3) studs row-aligned with :attr:`vertex_ids`.  Normals are left
        as they are (call :meth:`reset_normals` to make them automatic)."""
        p = np.asarray(positions, np.float64)
        if p.shape != (self._V.n, 3) or not np.isfinite(p).all() or (np.abs(p) > MAX_COORDINATE).any():
            raise InvalidEdit(f"positions must be ({self._V.n}, 3), finite, within ±2048 studs")
        self._V.cols["pos"][: self._V.n] = p

    def transform(self, matrix, offset=(0.0, 0.0, 0.0)) -> None:
        """Apply ``p' = M·p + offset`` to every vertex (M a 3×3 invertible matrix).
        Explicit normals become ``normalize(M⁻ᵀ·n)``; morph deltas become ``M·d``."""
        M = np.asarray(matrix, np.float64).reshape(3, 3)
        t = np.asarray(offset, np.float64).reshape(3)
        if not (np.isfinite(M).all() and np.isfinite(t).all()) or abs(np.linalg.det(M)) < 1e-12:
            raise InvalidEdit("transform needs a finite, invertible 3×3 matrix")
        V, N = self._V, self._N
        p = V.col("pos").astype(np.float64) @ M.T + t
        if (np.abs(p) > MAX_COORDINATE).any():
            raise InvalidEdit("the transform moves vertices beyond ±2048 studs")
        V.cols["pos"][: V.n] = p
        for k in self.GetMorphTargetNames():
            V.cols[_MORPH + k][: V.n] = V.col(_MORPH + k).astype(np.float64) @ M.T
        nv = N.col("val").astype(np.float64)
        expl = nv.any(axis=1)
        if expl.any():
            q = nv[expl] @ np.linalg.inv(M)  # rows: (M^-T n)^T = n^T M^-1
            N.cols["val"][np.flatnonzero(expl)] = q / np.linalg.norm(q, axis=1, keepdims=True)

    def reset_normals(self) -> None:
        """Make every normal automatic."""
        self._N.cols["val"][: self._N.n] = 0.0

    # ------------------------------------------------------------------ wire

    def to_wire(self) -> dict:
        """Msgpack-friendly dict; arrays as raw little-endian bytes (exact round trip)."""
        V, N, U, C, F = self._V, self._N, self._U, self._C, self._F
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
            "morph_targets": {name: array_to_wire(V.col(_MORPH + name)) for name in self.GetMorphTargetNames()},
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

    _WIRE_KEYS = frozenset({
        "type", "version", "next_vertex_id", "next_normal_id", "next_uv_id", "next_color_id", "next_face_id",
        "vertex_ids", "positions", "joints", "weights", "morph_targets", "normal_ids", "normals", "uv_ids", "uvs",
        "color_ids", "colors", "face_ids", "faces", "face_normals", "face_uvs", "face_colors"})

    @classmethod
    def from_wire(cls, d: dict) -> "EditableMesh":
        """Inverse of :meth:`to_wire`; validates everything (raises :class:`InvalidEdit`)."""
        if (not isinstance(d, dict) or set(d) != cls._WIRE_KEYS or d["type"] != "EditableMesh"
                or d["version"] != WIRE_VERSION):
            raise InvalidEdit(f"not an EditableMesh wire document (version {WIRE_VERSION})")

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

        self = cls()
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
        self._V.set_full(vid, vcols, nv)
        for k in vcols:
            if k.startswith(_MORPH):
                self._V.cols[k] = vcols[k]
        for kind, key, cols in (("normal", "normals", 3), ("uv", "uvs", 2), ("color", "colors", 4)):
            ids, nxt = ids_of(f"{kind}_ids", f"next_{kind}_id", kind, MAX_ATTRIBUTES)
            self._attr(kind).set_full(ids, {"val": arr(key, "<f4", cols, len(ids))}, nxt)
        fid, nf = ids_of("face_ids", "next_face_id", "face", MAX_TRIANGLES)
        m = len(fid)
        fcols = {}
        for c, key, table in (("v", "faces", self._V), ("n", "face_normals", self._N), ("u", "face_uvs", self._U),
                              ("c", "face_colors", self._C)):
            a = arr(key, "<i8", 3, m)
            try:
                table.rows(a)
            except InvalidEdit:
                raise InvalidEdit(f"a face references a missing {table.what}") from None
            fcols[c] = a
        self._F.set_full(fid, fcols, nf)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EditableMesh):
            return NotImplemented
        return self.to_wire() == other.to_wire()

    def __repr__(self) -> str:
        return f"EditableMesh({self._V.n} vertices, {self._F.n} triangles)"


def _closest_barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(m,3) barycentric weights of the closest point to ``p`` on each triangle
    (Ericson, Real-Time Collision Detection §5.1.5, vectorised)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    m = len(a)
    out = np.zeros((m, 3))
    done = np.zeros(m, bool)

    def put(mask, w):
        nonlocal done
        mask = mask & ~done
        out[mask] = w[mask] if w.ndim == 2 else w
        done |= mask

    with np.errstate(divide="ignore", invalid="ignore"):
        put((d1 <= 0) & (d2 <= 0), np.array([1.0, 0, 0]))
        put((d3 >= 0) & (d4 <= d3), np.array([0, 1.0, 0]))
        put((d6 >= 0) & (d5 <= d6), np.array([0, 0, 1.0]))
        v = d1 / (d1 - d3)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - v, v, 0 * v], axis=1))
        w = d2 / (d2 - d6)
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - w, 0 * w, w], axis=1))
        w2 = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), np.stack([0 * w2, 1 - w2, w2], axis=1))
        den = va + vb + vc
        den = np.where(np.abs(den) > 1e-300, den, 1.0)
        vv, ww = vb / den, vc / den
        put(np.ones(m, bool), np.stack([1 - vv - ww, vv, ww], axis=1))
    return np.nan_to_num(out)


# --------------------------------------------------------------------------- helpers


def normalize_weights(w: np.ndarray) -> np.ndarray:
    """(n,4) weights → float32 rows that sum to 1 in float32 arithmetic.

    Rows with no weight stay zero.  The largest weight absorbs the float32
    rounding residue so that ``w.sum(axis=1)`` is 1 to within 1 ulp.
    """
    w = np.asarray(w, np.float64)
    s = w.sum(axis=1, keepdims=True)
    has = s[:, 0] > 0
    out = np.zeros_like(w)
    out[has] = w[has] / s[has]
    out32 = out.astype(np.float32)
    idx = np.argmax(out32, axis=1)
    rows = np.nonzero(has)[0]
    if len(rows):
        mask = np.ones_like(out32, bool)
        mask[rows, idx[rows]] = False
        rest = np.where(mask, out32, 0).astype(np.float32).sum(axis=1, dtype=np.float32)
        out32[rows, idx[rows]] = np.float32(1.0) - rest[rows]
    return out32


def smooth_normals(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(n,3) float64 unit vertex normals from area-weighted face normals, summed over
    all vertices sharing an exact position (so UV seams are shaded smoothly)."""
    pos = np.asarray(positions, np.float64)
    n = len(pos)
    out = np.zeros((n, 3))
    if n == 0 or len(triangles) == 0:
        out[:, 1] = 1.0
        return out
    _, key = np.unique(pos.astype(np.float32), axis=0, return_inverse=True)
    key = key.reshape(-1)
    t = np.asarray(triangles)
    fn = np.cross(pos[t[:, 1]] - pos[t[:, 0]], pos[t[:, 2]] - pos[t[:, 0]])
    acc = np.zeros((key.max() + 1, 3))
    for k in range(3):
        np.add.at(acc, key[t[:, k]], fn)
    out = acc[key]
    ln = np.linalg.norm(out, axis=1)
    ok = ln > 1e-20
    out[ok] /= ln[ok, None]
    out[~ok] = (0.0, 1.0, 0.0)
    return out

