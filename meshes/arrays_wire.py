"""Wire encoding of numpy arrays: ``{"dtype", "shape", "data"}`` dicts with raw
little-endian bytes (used by :meth:`meshes.editable_mesh.EditableMesh.to_wire`)."""

from __future__ import annotations

import numpy as np

from .limits import InvalidEdit

__all__ = ["array_to_wire", "array_from_wire"]


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
