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

This module is the facade; the array math lives in :mod:`meshes.id_table` (the
id-keyed tables), :mod:`meshes.value_checks`, :mod:`meshes.arrays_wire`,
:mod:`meshes.mesh_wire`, :mod:`meshes.mesh_from_arrays`, :mod:`meshes.normals`,
:mod:`meshes.mesh_queries`, :mod:`meshes.mesh_export`, :mod:`meshes.morph_targets`,
:mod:`meshes.mesh_transform` and :mod:`meshes.skin_weights`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

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

from .limits import (EXPLICIT_ID_BASE, MAX_ATTRIBUTES, MAX_COORDINATE, MAX_INFLUENCES,  # noqa: F401
                     MAX_MORPH_TARGETS, MAX_TRIANGLES, MAX_VERTICES, WIRE_VERSION, InvalidEdit,
                     MeshLimitExceeded)

# Names other modules import from here are re-exported (F401).
from .arrays_wire import array_from_wire, array_to_wire  # noqa: F401
from .value_checks import _alpha, _check_morph_name, _rgb, _unit3, _vec
from .id_table import _ATTR, _ATTR_COL, _MORPH, _Table
from .skin_weights import check_skin, check_skin_arrays, normalize_weights  # noqa: F401
from .normals import resolve_normal_values, smooth_normals  # noqa: F401
from .mesh_queries import (closest_point_on_triangles, closest_vertex_row,  # noqa: F401
                           lowest_corner_attributes, raycast_triangles, triangle_points, within_sphere_mask)
from .mesh_export import ExportArrays, build_export_arrays
from .mesh_from_arrays import fill_tables_from_arrays
from .mesh_wire import WIRE_KEYS, fill_tables_from_wire, tables_to_wire
from .morph_targets import morph_delta_column
from .mesh_transform import transform_tables

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
        self = cls()
        fill_tables_from_arrays(
            self._V, self._attr, self._F, positions, triangles,
            normals=normals, uvs=uvs, colors=colors,
            face_normals=face_normals, face_uvs=face_uvs, face_colors=face_colors,
            joints=joints, weights=weights,
        )
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
        return check_skin(joints, weights)

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
        found = lowest_corner_attributes(F.col("v"), {k: F.col(_ATTR_COL[k]) for k in _ATTR}, ids)
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
        V.cols[key] = morph_delta_column(V, name, deltas)

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
        return int(self._V.ids[closest_vertex_row(self._V.col("pos"), q)])

    def FindVerticesWithinSphere(self, center: Sequence[float], radius: float) -> list[int]:
        q = np.asarray(_vec(center, 3, "center", limit=None), np.float64)
        (r,) = _vec([radius], 1, "radius", limit=None)
        return self._V.live_ids[within_sphere_mask(self._V.col("pos"), q, r)].tolist()

    def _tri_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return triangle_points(self._V.col("pos"), self.triangles)

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
        hit = raycast_triangles(o, d, *self._tri_points())
        if hit is None:
            return None
        k, point, bary = hit
        return point, int(self._F.ids[k]), bary

    def FindClosestPointOnSurface(self, point: Sequence[float]):
        """Closest point of the surface to ``point`` (vectorised over all faces).

        Returns ``(closest (x, y, z), face_id, (b0, b1, b2))`` or ``None`` when the
        mesh has no faces."""
        q = np.asarray(_vec(point, 3, "point", limit=None), np.float64)
        if self._F.n == 0:
            return None
        k, closest, bary = closest_point_on_triangles(q, *self._tri_points())
        return closest, int(self._F.ids[k]), bary

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
        return resolve_normal_values(self._N.col("val"), self._V.col("pos"), self.triangles,
                                     self.face_attribute_rows("normal"))

    def export_arrays(self) -> ExportArrays:
        """Per-output-vertex arrays for formats with per-vertex attributes (glTF).

        One output vertex per distinct (vertex, normal id, UV id, colour id) used by a
        face corner -- vertices are split only at attribute seams; vertices no face uses
        are dropped.  Output order: by vertex row, then normal, UV, colour row
        (deterministic).  Normals are unit (automatic ones computed)."""
        V = self._V
        return build_export_arrays(
            triangles=self.triangles,
            corner_rows=[self.face_attribute_rows(k) for k in _ATTR],
            positions=V.col("pos"),
            joints=V.col("jnt"),
            weights=V.col("wgt"),
            morphs={name: V.col(_MORPH + name) for name in self.GetMorphTargetNames()},
            normal_values=self._normal_values(),
            uv_values=self._U.col("val"),
            color_values=self._C.col("val"),
            face_ids=self._F.live_ids,
        )

    def set_skin_arrays(self, joints: np.ndarray, weights: np.ndarray) -> None:
        """Bulk skinning: joints (n,4) ints, weights (n,4) floats (normalised here)."""
        n = self._V.n
        self._V.cols["jnt"][:n], self._V.cols["wgt"][:n] = check_skin_arrays(joints, weights, n)

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
        transform_tables(self._V, self._N, self.GetMorphTargetNames(), matrix, offset)

    def reset_normals(self) -> None:
        """Make every normal automatic."""
        self._N.cols["val"][: self._N.n] = 0.0

    # ------------------------------------------------------------------ wire

    def to_wire(self) -> dict:
        """Msgpack-friendly dict; arrays as raw little-endian bytes (exact round trip)."""
        return tables_to_wire(self._V, self._N, self._U, self._C, self._F, self.GetMorphTargetNames())

    _WIRE_KEYS = WIRE_KEYS

    @classmethod
    def from_wire(cls, d: dict) -> "EditableMesh":
        """Inverse of :meth:`to_wire`; validates everything (raises :class:`InvalidEdit`)."""
        if (not isinstance(d, dict) or set(d) != cls._WIRE_KEYS or d["type"] != "EditableMesh"
                or d["version"] != WIRE_VERSION):
            raise InvalidEdit(f"not an EditableMesh wire document (version {WIRE_VERSION})")

        self = cls()
        fill_tables_from_wire(d, self._V, self._attr, self._F)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EditableMesh):
            return NotImplemented
        return self.to_wire() == other.to_wire()

    def __repr__(self) -> str:
        return f"EditableMesh({self._V.n} vertices, {self._F.n} triangles)"
