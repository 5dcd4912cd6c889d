"""EditableMesh: a numpy-backed triangle mesh with Roblox's EditableMesh API.

Data model (all arrays are row-aligned and kept sorted by id):

* vertices: ``n`` rows; stable int ids (``AddVertex`` hands out 1, 2, 3, ... and an
  id is never reused, so removing vertex 4 of {1..5} leaves {1, 2, 3, 5}).
  Per vertex: position (3, float32, studs, avatar model space -- see
  :mod:`meshes.avatar`), normal (3, float32, unit or zero = "auto"), uv (2, float32,
  0..1, origin top-left like Roblox and glTF), skinning joints (4, uint16, indices
  into the avatar skeleton :data:`meshes.r15.BONE_NAMES`) and weights (4, float32,
  sum 1 when skinned; unused slots are joint 0 with weight 0).
* faces: ``m`` rows; stable int ids (separate counter, also from 1), each three
  vertex ids, counter-clockwise seen from outside.

Normals and UVs are per vertex (a UV seam is two vertices at the same position).
Limits: 60,000 vertices and 20,000 triangles, like Roblox; going over raises
:class:`MeshLimitExceeded`.  Every refusal is an :class:`InvalidEdit`
(a :class:`schemas.errors.InputRejected`, HTTP 422) and leaves the mesh unchanged.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from schemas.errors import InputRejected

__all__ = [
    "EditableMesh",
    "InvalidEdit",
    "MeshLimitExceeded",
    "MAX_VERTICES",
    "MAX_TRIANGLES",
    "MAX_INFLUENCES",
    "MAX_COORDINATE",
    "array_to_wire",
    "array_from_wire",
    "normalize_weights",
    "smooth_normals",
]

MAX_VERTICES = 60_000
MAX_TRIANGLES = 20_000
MAX_INFLUENCES = 4
#: Largest accepted |coordinate| in studs (Roblox's largest part size).
MAX_COORDINATE = 2048.0


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


class EditableMesh:
    """A triangle mesh with stable vertex and face ids (Roblox EditableMesh names)."""

    _VCOLS = {"positions": 3, "normals": 3, "uvs": 2, "joints": 4, "weights": 4}

    def __init__(self) -> None:
        self._n = 0
        self._m = 0
        self._next_vid = 1
        self._next_fid = 1
        self._vid = np.zeros(0, np.int64)
        self._pos = np.zeros((0, 3), np.float32)
        self._nrm = np.zeros((0, 3), np.float32)
        self._uv = np.zeros((0, 2), np.float32)
        self._jnt = np.zeros((0, 4), np.uint16)
        self._wgt = np.zeros((0, 4), np.float32)
        self._fid = np.zeros(0, np.int64)
        self._fv = np.zeros((0, 3), np.int64)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_arrays(
        cls,
        positions: np.ndarray,
        triangles: np.ndarray,
        *,
        normals: np.ndarray | None = None,
        uvs: np.ndarray | None = None,
        joints: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> "EditableMesh":
        """Bulk build: positions (n,3) studs, triangles (m,3) row indices, optional
        normals (n,3), uvs (n,2), joints (n,4), weights (n,4).  Ids become 1..n and 1..m."""
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
        self._n, self._m = n, m
        self._vid = np.arange(1, n + 1, dtype=np.int64)
        self._fid = np.arange(1, m + 1, dtype=np.int64)
        self._next_vid, self._next_fid = n + 1, m + 1
        self._pos = pos.copy()
        self._nrm = np.zeros((n, 3), np.float32) if normals is None else np.asarray(normals, np.float32).reshape(n, 3).copy()
        self._uv = np.zeros((n, 2), np.float32) if uvs is None else np.asarray(uvs, np.float32).reshape(n, 2).copy()
        self._jnt = np.zeros((n, 4), np.uint16) if joints is None else np.asarray(joints, np.uint16).reshape(n, 4).copy()
        if weights is None:
            self._wgt = np.zeros((n, 4), np.float32)
        else:
            self._wgt = np.asarray(weights, np.float32).reshape(n, 4).copy()
        self._fv = self._vid[tri] if m else np.zeros((0, 3), np.int64)
        return self

    def copy(self) -> "EditableMesh":
        return EditableMesh.from_wire(self.to_wire())

    # ------------------------------------------------------------------ id lookup

    def _row(self, vid: object) -> int:
        v = _int_id(vid, "vertex id")
        r = int(np.searchsorted(self._vid[: self._n], v))
        if r >= self._n or self._vid[r] != v:
            raise InvalidEdit(f"vertex id {v} does not exist")
        return r

    def _frow(self, fid: object) -> int:
        f = _int_id(fid, "face id")
        r = int(np.searchsorted(self._fid[: self._m], f))
        if r >= self._m or self._fid[r] != f:
            raise InvalidEdit(f"face id {f} does not exist")
        return r

    def HasVertex(self, vid: object) -> bool:
        try:
            self._row(vid)
        except InvalidEdit:
            return False
        return True

    def HasFace(self, fid: object) -> bool:
        try:
            self._frow(fid)
        except InvalidEdit:
            return False
        return True

    # ------------------------------------------------------------------ growth

    def _grow_vertices(self, need: int) -> None:
        if need <= len(self._vid):
            return
        cap = max(need, 2 * len(self._vid), 16)
        for name in ("_vid", "_pos", "_nrm", "_uv", "_jnt", "_wgt"):
            a = getattr(self, name)
            b = np.zeros((cap,) + a.shape[1:], a.dtype)
            b[: self._n] = a[: self._n]
            setattr(self, name, b)

    def _grow_faces(self, need: int) -> None:
        if need <= len(self._fid):
            return
        cap = max(need, 2 * len(self._fid), 16)
        for name in ("_fid", "_fv"):
            a = getattr(self, name)
            b = np.zeros((cap,) + a.shape[1:], a.dtype)
            b[: self._m] = a[: self._m]
            setattr(self, name, b)

    # ------------------------------------------------------------------ Roblox API: vertices

    def AddVertex(self, p: Sequence[float]) -> int:
        """Add a vertex at ``p`` (studs); returns its new id."""
        xyz = _vec(p, 3, "position")
        if self._n >= MAX_VERTICES:
            raise MeshLimitExceeded(f"cannot add a vertex: the limit is {MAX_VERTICES} vertices")
        self._grow_vertices(self._n + 1)
        r = self._n
        vid = self._next_vid
        self._vid[r] = vid
        self._pos[r] = xyz
        self._nrm[r] = 0.0
        self._uv[r] = 0.0
        self._jnt[r] = 0
        self._wgt[r] = 0.0
        self._n += 1
        self._next_vid += 1
        return vid

    def GetPosition(self, vid: int) -> tuple[float, float, float]:
        return tuple(float(c) for c in self._pos[self._row(vid)])  # type: ignore[return-value]

    def SetPosition(self, vid: int, p: Sequence[float]) -> None:
        """Move a vertex (studs).  The normals of the vertex and of every vertex sharing
        a face with it become automatic (recomputed from the faces on export)."""
        r = self._row(vid)
        xyz = _vec(p, 3, "position")
        self._pos[r] = xyz
        fv = self._fv[: self._m]
        near = np.unique(fv[(fv == self._vid[r]).any(axis=1)])
        self._nrm[r] = 0.0
        if len(near):
            self._nrm[np.searchsorted(self._vid[: self._n], near)] = 0.0

    def GetNormal(self, vid: int) -> tuple[float, float, float]:
        return tuple(float(c) for c in self._nrm[self._row(vid)])  # type: ignore[return-value]

    def SetNormal(self, vid: int, n: Sequence[float]) -> None:
        r = self._row(vid)
        v = np.asarray(_vec(n, 3, "normal", limit=None), np.float64)
        ln = float(np.linalg.norm(v))
        if ln < 1e-12:
            raise InvalidEdit("normal must not be zero")
        self._nrm[r] = v / ln

    def ResetNormal(self, vid: int) -> None:
        """Mark the normal as automatic (recomputed from faces on export)."""
        self._nrm[self._row(vid)] = 0.0

    def GetUV(self, vid: int) -> tuple[float, float]:
        return tuple(float(c) for c in self._uv[self._row(vid)])  # type: ignore[return-value]

    def SetUV(self, vid: int, uv: Sequence[float]) -> None:
        r = self._row(vid)
        self._uv[r] = _vec(uv, 2, "uv", limit=1e6)

    def GetVertexBones(self, vid: int) -> list[int]:
        r = self._row(vid)
        return [int(j) for j, w in zip(self._jnt[r], self._wgt[r]) if w > 0]

    def GetVertexBoneWeights(self, vid: int) -> list[float]:
        r = self._row(vid)
        return [float(w) for w in self._wgt[r] if w > 0]

    def SetVertexSkin(self, vid: int, joints: Sequence[int], weights: Sequence[float]) -> None:
        """Set up to 4 (joint index, weight) influences; weights are normalised to sum 1."""
        r = self._row(vid)
        j, w = self._check_skin(joints, weights)
        self._jnt[r], self._wgt[r] = j, w

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
        """Remove a vertex and every face that uses it.  Other ids do not change."""
        r = self._row(vid)
        v = int(self._vid[r])
        keep_f = ~(self._fv[: self._m] == v).any(axis=1)
        self._delete_faces(np.nonzero(~keep_f)[0])
        self._delete_vertices(np.array([r]))

    def RemoveUnused(self) -> list[int]:
        """Remove vertices no face uses; returns their ids (Roblox's RemoveUnused)."""
        used = np.isin(self._vid[: self._n], self._fv[: self._m].ravel())
        rows = np.nonzero(~used)[0]
        ids = [int(i) for i in self._vid[rows]]
        self._delete_vertices(rows)
        return ids

    def _delete_vertices(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        keep = np.ones(self._n, bool)
        keep[rows] = False
        for name in ("_vid", "_pos", "_nrm", "_uv", "_jnt", "_wgt"):
            setattr(self, name, getattr(self, name)[: self._n][keep].copy())
        self._n = int(keep.sum())

    # ------------------------------------------------------------------ Roblox API: faces

    def AddTriangle(self, v0: int, v1: int, v2: int) -> int:
        """Add a counter-clockwise triangle over three existing, distinct vertex ids."""
        ids = [int(self._vid[self._row(v)]) for v in (v0, v1, v2)]
        if len(set(ids)) != 3:
            raise InvalidEdit("a triangle needs three distinct vertices")
        if self._m >= MAX_TRIANGLES:
            raise MeshLimitExceeded(f"cannot add a triangle: the limit is {MAX_TRIANGLES} triangles")
        self._grow_faces(self._m + 1)
        fid = self._next_fid
        self._fid[self._m] = fid
        self._fv[self._m] = ids
        self._m += 1
        self._next_fid += 1
        return fid

    def RemoveFace(self, fid: int) -> None:
        self._delete_faces(np.array([self._frow(fid)]))

    def _delete_faces(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        keep = np.ones(self._m, bool)
        keep[rows] = False
        self._fid = self._fid[: self._m][keep].copy()
        self._fv = self._fv[: self._m][keep].copy()
        self._m = int(keep.sum())

    def GetFaceVertices(self, fid: int) -> list[int]:
        return [int(v) for v in self._fv[self._frow(fid)]]

    def SetFaceVertices(self, fid: int, vids: Sequence[int]) -> None:
        r = self._frow(fid)
        if not isinstance(vids, (list, tuple)) or len(vids) != 3:
            raise InvalidEdit("a face needs exactly three vertex ids")
        ids = [int(self._vid[self._row(v)]) for v in vids]
        if len(set(ids)) != 3:
            raise InvalidEdit("a triangle needs three distinct vertices")
        self._fv[r] = ids

    def GetVertices(self) -> list[int]:
        return self._vid[: self._n].tolist()

    def GetFaces(self) -> list[int]:
        return self._fid[: self._m].tolist()

    def GetVertexFaces(self, vid: int) -> list[int]:
        v = int(self._vid[self._row(vid)])
        return self._fid[: self._m][(self._fv[: self._m] == v).any(axis=1)].tolist()

    # ------------------------------------------------------------------ queries

    def FindClosestVertex(self, p: Sequence[float]) -> int:
        """Id of the vertex nearest to ``p`` (ties: the lowest id)."""
        q = np.asarray(_vec(p, 3, "point", limit=None), np.float64)
        if self._n == 0:
            raise InvalidEdit("the mesh has no vertices")
        d = ((self._pos[: self._n].astype(np.float64) - q) ** 2).sum(axis=1)
        return int(self._vid[int(np.argmin(d))])

    def FindVerticesWithinSphere(self, center: Sequence[float], radius: float) -> list[int]:
        q = np.asarray(_vec(center, 3, "center", limit=None), np.float64)
        (r,) = _vec([radius], 1, "radius", limit=None)
        d = ((self._pos[: self._n].astype(np.float64) - q) ** 2).sum(axis=1)
        return self._vid[: self._n][d <= r * r].tolist()

    def GetBounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min (3,), max (3,)) of vertex positions in studs; zeros if empty."""
        if self._n == 0:
            return np.zeros(3, np.float32), np.zeros(3, np.float32)
        p = self._pos[: self._n]
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
        return self._n

    @property
    def triangle_count(self) -> int:
        return self._m

    @property
    def vertex_ids(self) -> np.ndarray:
        """(n,) int64, ascending."""
        return self._vid[: self._n].copy()

    @property
    def face_ids(self) -> np.ndarray:
        """(m,) int64, ascending."""
        return self._fid[: self._m].copy()

    @property
    def positions(self) -> np.ndarray:
        """(n,3) float32 studs."""
        return self._pos[: self._n].copy()

    @property
    def normals(self) -> np.ndarray:
        """(n,3) float32 as stored (unit, or zero for "auto")."""
        return self._nrm[: self._n].copy()

    @property
    def uvs(self) -> np.ndarray:
        """(n,2) float32."""
        return self._uv[: self._n].copy()

    @property
    def joints(self) -> np.ndarray:
        """(n,4) uint16 skeleton joint indices."""
        return self._jnt[: self._n].copy()

    @property
    def weights(self) -> np.ndarray:
        """(n,4) float32 skin weights."""
        return self._wgt[: self._n].copy()

    @property
    def triangles(self) -> np.ndarray:
        """(m,3) int64 row indices into the vertex arrays."""
        if self._m == 0:
            return np.zeros((0, 3), np.int64)
        return np.searchsorted(self._vid[: self._n], self._fv[: self._m]).astype(np.int64)

    def computed_normals(self) -> np.ndarray:
        """(n,3) float32 unit normals: stored ones, and area-weighted face normals
        (averaged over vertices that share a position) where none is stored."""
        pos = self._pos[: self._n].astype(np.float64)
        out = self._nrm[: self._n].astype(np.float64)
        ln = np.linalg.norm(out, axis=1)
        auto = ln < 1e-6
        if auto.any():
            acc = smooth_normals(pos, self.triangles)
            out[auto] = acc[auto]
            ln = np.linalg.norm(out, axis=1)
        ok = ln > 1e-12
        out[ok] /= ln[ok, None]
        out[~ok] = (0.0, 1.0, 0.0)
        return out.astype(np.float32)

    def set_skin_arrays(self, joints: np.ndarray, weights: np.ndarray) -> None:
        """Bulk skinning: joints (n,4) ints, weights (n,4) floats (normalised here)."""
        j = np.asarray(joints)
        w = np.asarray(weights, np.float64)
        if j.shape != (self._n, 4) or w.shape != (self._n, 4):
            raise InvalidEdit(f"skin arrays must be ({self._n}, 4)")
        if (j < 0).any() or (j > 65535).any() or not np.isfinite(w).all() or (w < 0).any():
            raise InvalidEdit("bad skin arrays")
        self._jnt[: self._n] = j.astype(np.uint16)
        self._wgt[: self._n] = normalize_weights(w)

    # ------------------------------------------------------------------ wire

    def to_wire(self) -> dict:
        """Msgpack-friendly dict; arrays as raw little-endian bytes (exact round trip)."""
        return {
            "type": "EditableMesh",
            "version": 1,
            "next_vertex_id": int(self._next_vid),
            "next_face_id": int(self._next_fid),
            "vertex_ids": array_to_wire(self._vid[: self._n]),
            "positions": array_to_wire(self._pos[: self._n]),
            "normals": array_to_wire(self._nrm[: self._n]),
            "uvs": array_to_wire(self._uv[: self._n]),
            "joints": array_to_wire(self._jnt[: self._n]),
            "weights": array_to_wire(self._wgt[: self._n]),
            "face_ids": array_to_wire(self._fid[: self._m]),
            "faces": array_to_wire(self._fv[: self._m]),
        }

    @classmethod
    def from_wire(cls, d: dict) -> "EditableMesh":
        """Inverse of :meth:`to_wire`; validates everything (raises :class:`InvalidEdit`)."""
        keys = {"type", "version", "next_vertex_id", "next_face_id", "vertex_ids", "positions", "normals",
                "uvs", "joints", "weights", "face_ids", "faces"}
        if not isinstance(d, dict) or set(d) != keys or d["type"] != "EditableMesh" or d["version"] != 1:
            raise InvalidEdit("not an EditableMesh wire document (version 1)")
        vid = array_from_wire(d["vertex_ids"], dtype="<i8", ndim=1, what="vertex_ids")
        n = len(vid)
        pos = array_from_wire(d["positions"], dtype="<f4", ndim=2, cols=3, what="positions")
        nrm = array_from_wire(d["normals"], dtype="<f4", ndim=2, cols=3, what="normals")
        uv = array_from_wire(d["uvs"], dtype="<f4", ndim=2, cols=2, what="uvs")
        jnt = array_from_wire(d["joints"], dtype="<u2", ndim=2, cols=4, what="joints")
        wgt = array_from_wire(d["weights"], dtype="<f4", ndim=2, cols=4, what="weights")
        fid = array_from_wire(d["face_ids"], dtype="<i8", ndim=1, what="face_ids")
        fv = array_from_wire(d["faces"], dtype="<i8", ndim=2, cols=3, what="faces")
        if any(len(a) != n for a in (pos, nrm, uv, jnt, wgt)) or len(fv) != len(fid):
            raise InvalidEdit("mesh arrays have inconsistent lengths")
        if n > MAX_VERTICES or len(fid) > MAX_TRIANGLES:
            raise MeshLimitExceeded("mesh is over the 60,000 vertex / 20,000 triangle limit")
        nv, nf = d["next_vertex_id"], d["next_face_id"]
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (nv, nf)):
            raise InvalidEdit("next ids must be integers")
        for ids, nxt, what in ((vid, nv, "vertex"), (fid, nf, "face")):
            if len(ids) and (ids[0] < 1 or (np.diff(ids) <= 0).any() or ids[-1] >= nxt):
                raise InvalidEdit(f"{what} ids must be ascending, positive and below the next id")
        if not (np.isfinite(pos).all() and np.isfinite(nrm).all() and np.isfinite(uv).all() and np.isfinite(wgt).all()):
            raise InvalidEdit("mesh arrays must be finite")
        if len(fv):
            rows = np.searchsorted(vid, fv)
            rows_c = np.minimum(rows, max(n - 1, 0))
            if n == 0 or (vid[rows_c] != fv).any():
                raise InvalidEdit("a face references a missing vertex")
        self = cls()
        self._n, self._m = n, len(fid)
        self._next_vid, self._next_fid = int(nv), int(nf)
        self._vid, self._pos, self._nrm, self._uv, self._jnt, self._wgt = vid, pos, nrm, uv, jnt, wgt
        self._fid, self._fv = fid, fv
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EditableMesh):
            return NotImplemented
        a, b = self.to_wire(), other.to_wire()
        return a == b

    def __repr__(self) -> str:
        return f"EditableMesh({self._n} vertices, {self._m} triangles)"


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

