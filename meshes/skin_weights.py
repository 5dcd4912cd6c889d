"""Skin weight helpers: float32 weight normalisation and validation of one
vertex's (joints, weights) influences."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .limits import MAX_INFLUENCES, InvalidEdit
from .value_checks import _int_id, _vec

__all__ = ["normalize_weights", "check_skin", "check_skin_arrays"]


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


def check_skin(joints: Sequence[int], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Validate up to 4 (joint index, weight) influences; returns (4,) uint16 joints
    and (4,) float32 weights normalised to sum 1."""
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


def check_skin_arrays(joints: np.ndarray, weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate bulk skinning arrays, joints (n,4) ints and weights (n,4) floats;
    returns them as uint16 joints and float32 weights normalised per row."""
    j = np.asarray(joints)
    w = np.asarray(weights, np.float64)
    if j.shape != (n, 4) or w.shape != (n, 4):
        raise InvalidEdit(f"skin arrays must be ({n}, 4)")
    if (j < 0).any() or (j > 65535).any() or not np.isfinite(w).all() or (w < 0).any():
        raise InvalidEdit("bad skin arrays")
    return j.astype(np.uint16), normalize_weights(w)
