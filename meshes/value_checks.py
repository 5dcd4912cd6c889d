"""Validation of single values handed to :class:`meshes.editable_mesh.EditableMesh`
(coordinates, ids, morph names, unit vectors, colours); each raises
:class:`meshes.editable_mesh.InvalidEdit` on bad input."""

from __future__ import annotations

import math

import numpy as np

from .limits import MAX_COORDINATE, MAX_MORPH_NAME, InvalidEdit


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
