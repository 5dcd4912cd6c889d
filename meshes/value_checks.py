"""Validation of single values handed to :class:`meshes.editable_mesh.EditableMesh`
and to the edit ops (coordinates, ids, morph names, unit vectors, colours); each
raises :class:`meshes.editable_mesh.InvalidEdit` on bad input.

Two helpers carry every numeric check: :func:`_number` (a finite real, never a
bool, never NaN or ±Infinity) and :func:`_integer` (an int, never a bool, inside
the int64 range or a narrower one), so an out-of-range value is refused with a
message instead of overflowing in numpy."""

from __future__ import annotations

import math

import numpy as np

from .limits import INT64_MAX, INT64_MIN, MAX_COORDINATE, MAX_MORPH_NAME, InvalidEdit


def _number(v: object, what: str) -> float:
    """``v`` as a finite float; ints, floats and numpy scalars only."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise InvalidEdit(f"{what} must be a number, got {type(v).__name__}")
    try:
        f = float(v)
    except OverflowError:  # an int beyond the float range
        raise InvalidEdit(f"{what} is out of range") from None
    if not math.isfinite(f):
        raise InvalidEdit(f"{what} must be finite, got {f}")
    return f


def _integer(v: object, what: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    """``v`` as a Python int in ``lo..hi`` (default: the int64 range)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise InvalidEdit(f"{what} must be an integer, got {type(v).__name__}")
    i = int(v)
    if not lo <= i <= hi:
        if (lo, hi) == (INT64_MIN, INT64_MAX):
            raise InvalidEdit(f"{what} {i} does not fit in int64 (-2**63..2**63-1)")
        raise InvalidEdit(f"{what} {i} is outside {lo}..{hi}")
    return i


def _vec(p: object, n: int, what: str, *, limit: float | None = MAX_COORDINATE) -> tuple[float, ...]:
    if isinstance(p, np.ndarray):
        p = p.tolist()
    if not isinstance(p, (list, tuple)) or len(p) != n:
        raise InvalidEdit(f"{what} must be a list of {n} numbers")
    out = []
    for c in p:
        f = _number(c, f"{what} component")
        if limit is not None and abs(f) > limit:
            raise InvalidEdit(f"{what} component {f} is outside ±{limit:g}")
        out.append(f)
    return tuple(out)


def _int_id(v: object, what: str) -> int:
    """An id or index: an int64 (ids are stable int64s, SPEC §7)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise InvalidEdit(f"{what} must be an integer id, got {type(v).__name__}")
    return _integer(v, what)


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
