"""``_Table``: the id-keyed, row-aligned numpy storage behind every
:class:`meshes.editable_mesh.EditableMesh` table (vertices, normals, UVs, colours,
faces).  Ids are stable ascending int64s; rows stay sorted by id."""

from __future__ import annotations

import numpy as np

from .limits import _MAX_ID, EXPLICIT_ID_BASE, InvalidEdit, MeshLimitExceeded
from .value_checks import _int_id


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


#: Vertex-table column prefix of morph targets ("morph:<name>").
_MORPH = "morph:"
#: Attribute kinds and their face-table columns.
_ATTR = ("normal", "uv", "color")
_ATTR_COL = {"normal": "n", "uv": "u", "color": "c"}
