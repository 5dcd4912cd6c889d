"""EditableImage: an RGBA8 canvas with Roblox's EditableImage API.

Pixels are a numpy array (height, width, 4) uint8; (0, 0) is the top-left pixel.
Maximum size 1024×1024.  Drawing methods take ``transparency`` (0 = opaque) and
the buffer methods raw RGBA8 bytes (row-major, ``w*h*4`` long), like Roblox.
Every refusal raises :class:`meshes.editable_mesh.InvalidEdit` and changes nothing.

Wire form: ``{"type": "EditableImage", "version": 1, "width", "height",
"format": "RGBA8" | "PNG", "data": bytes}`` -- raw pixels by default, lossless PNG
on request; both round-trip exactly.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
from PIL import Image

from .limits import InvalidEdit

__all__ = ["EditableImage", "MAX_IMAGE_SIZE", "COMBINE_TYPES"]

MAX_IMAGE_SIZE = 1024
#: Enum.ImageCombineType names → values (the ones implemented here).
COMBINE_TYPES = {"BlendSourceOver": 1, "Overwrite": 2}


def _ints(v: object, what: str) -> tuple[int, int]:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InvalidEdit(f"{what} must be a list of 2 integers")
    out = []
    for c in v:
        if isinstance(c, bool):
            raise InvalidEdit(f"{what} must contain integers")
        if isinstance(c, (float, np.floating)) and math.isfinite(c) and float(c).is_integer():
            c = int(c)
        if not isinstance(c, (int, np.integer)):
            raise InvalidEdit(f"{what} must contain integers, got {c!r}")
        out.append(int(c))
    return out[0], out[1]


def _color(color: object) -> np.ndarray:
    if isinstance(color, np.ndarray):
        color = color.tolist()
    if not isinstance(color, (list, tuple)) or len(color) != 3:
        raise InvalidEdit("color must be [r, g, b] with components 0..1")
    out = []
    for c in color:
        if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)):
            raise InvalidEdit("color components must be numbers 0..1")
        f = float(c)
        if not (math.isfinite(f) and 0.0 <= f <= 1.0):
            raise InvalidEdit(f"color component {f} is outside 0..1")
        out.append(f)
    return np.asarray(out, np.float64)


def _unit(x: object, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InvalidEdit(f"{what} must be a number 0..1")
    f = float(x)
    if not (math.isfinite(f) and 0.0 <= f <= 1.0):
        raise InvalidEdit(f"{what} {f} is outside 0..1")
    return f


def _combine(ct: object) -> int:
    if isinstance(ct, str) and ct in COMBINE_TYPES:
        return COMBINE_TYPES[ct]
    if isinstance(ct, int) and not isinstance(ct, bool) and ct in COMBINE_TYPES.values():
        return ct
    raise InvalidEdit(f"combineType must be one of {sorted(COMBINE_TYPES)}")


class EditableImage:
    """RGBA8 image, at most 1024×1024."""

    def __init__(self, size: Sequence[int] = (512, 512), fill: Sequence[int] = (0, 0, 0, 0)):
        w, h = _ints(size, "size")
        if not (1 <= w <= MAX_IMAGE_SIZE and 1 <= h <= MAX_IMAGE_SIZE):
            raise InvalidEdit(f"image size {w}x{h} must be 1..{MAX_IMAGE_SIZE} per side")
        self._px = np.empty((h, w, 4), np.uint8)
        self._px[:] = np.asarray(fill, np.uint8)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_array(cls, pixels: np.ndarray) -> "EditableImage":
        """From (h,w,4) or (h,w,3) uint8 (RGB gets alpha 255)."""
        a = np.asarray(pixels)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
            raise InvalidEdit("pixels must be (h, w, 3|4) uint8")
        h, w = a.shape[:2]
        img = cls((w, h))
        img._px[..., : a.shape[2]] = a
        if a.shape[2] == 3:
            img._px[..., 3] = 255
        return img

    @classmethod
    def from_png(cls, data: bytes) -> "EditableImage":
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.width > MAX_IMAGE_SIZE or im.height > MAX_IMAGE_SIZE:
                    raise InvalidEdit(f"image {im.width}x{im.height} is larger than {MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE}")
                arr = np.asarray(im.convert("RGBA"), np.uint8)
        except InvalidEdit:
            raise
        except Exception as e:  # Pillow raises many types for bad data
            raise InvalidEdit(f"not a readable PNG: {e}") from None
        return cls.from_array(arr)

    def to_png(self, compress_level: int = 1) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(self._px, "RGBA").save(buf, format="PNG", compress_level=compress_level)
        return buf.getvalue()

    def copy(self) -> "EditableImage":
        return EditableImage.from_array(self._px.copy())

    # ------------------------------------------------------------------ properties

    @property
    def Size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self._px.shape[1]), int(self._px.shape[0])

    @property
    def pixels(self) -> np.ndarray:
        """(h,w,4) uint8 copy."""
        return self._px.copy()

    # ------------------------------------------------------------------ Roblox API

    def _region(self, position: object, size: object) -> tuple[int, int, int, int]:
        x, y = _ints(position, "position")
        w, h = _ints(size, "size")
        W, H = self.Size
        if w <= 0 or h <= 0:
            raise InvalidEdit(f"size {w}x{h} must be positive")
        if x < 0 or y < 0 or x + w > W or y + h > H:
            raise InvalidEdit(f"region at ({x}, {y}) of {w}x{h} is outside the {W}x{H} image")
        return x, y, w, h

    def check_write(self, position: object, size: object, buffer: object) -> tuple[int, int, int, int, bytes]:
        """Validate a WritePixelsBuffer call without writing."""
        x, y, w, h = self._region(position, size)
        if not isinstance(buffer, (bytes, bytearray, memoryview)):
            raise InvalidEdit("buffer must be bytes")
        data = bytes(buffer)
        if len(data) != w * h * 4:
            raise InvalidEdit(f"buffer has {len(data)} bytes; a {w}x{h} RGBA8 region needs {w * h * 4}")
        return x, y, w, h, data

    def WritePixelsBuffer(self, position: Sequence[int], size: Sequence[int], buffer: bytes) -> None:
        x, y, w, h, data = self.check_write(position, size, buffer)
        self._px[y : y + h, x : x + w] = np.frombuffer(data, np.uint8).reshape(h, w, 4)

    def ReadPixelsBuffer(self, position: Sequence[int], size: Sequence[int]) -> bytes:
        x, y, w, h = self._region(position, size)
        return self._px[y : y + h, x : x + w].tobytes()

    def check_draw(self, position: object, size: object, color: object, transparency: object,
                   combine_type: object = "BlendSourceOver") -> tuple[int, int, int, int, np.ndarray, float, int]:
        """Validate a DrawRectangle call; returns the clipped region."""
        x, y = _ints(position, "position")
        w, h = _ints(size, "size")
        W, H = self.Size
        if not (0 <= x < W and 0 <= y < H):
            raise InvalidEdit(f"position ({x}, {y}) is outside the {W}x{H} image")
        if w <= 0 or h <= 0:
            raise InvalidEdit(f"size {w}x{h} must be positive")
        return x, y, min(w, W - x), min(h, H - y), _color(color), _unit(transparency, "transparency"), _combine(combine_type)

    def DrawRectangle(self, position: Sequence[int], size: Sequence[int], color: Sequence[float],
                      transparency: float, combineType: str | int = "BlendSourceOver") -> None:
        """Fill a rectangle (clipped to the canvas; ``position`` must be inside it)."""
        x, y, w, h, c, t, ct = self.check_draw(position, size, color, transparency, combineType)
        region = self._px[y : y + h, x : x + w]
        region[:] = _blend(region, c, 1.0 - t, ct, None)

    def check_circle(self, center: object, radius: object, color: object, transparency: object,
                     combine_type: object = "BlendSourceOver") -> tuple[int, int, int, np.ndarray, float, int]:
        cx, cy = _ints(center, "center")
        if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or not 0 < int(radius) <= 4096:
            raise InvalidEdit("radius must be an integer 1..4096")
        return cx, cy, int(radius), _color(color), _unit(transparency, "transparency"), _combine(combine_type)

    def DrawCircle(self, center: Sequence[int], radius: int, color: Sequence[float], transparency: float,
                   combineType: str | int = "BlendSourceOver") -> None:
        """Fill a disc (pixel centres within ``radius``), clipped to the canvas."""
        cx, cy, r, c, t, ct = self.check_circle(center, radius, color, transparency, combineType)
        W, H = self.Size
        x0, x1 = max(cx - r, 0), min(cx + r + 1, W)
        y0, y1 = max(cy - r, 0), min(cy + r + 1, H)
        if x0 >= x1 or y0 >= y1:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1]
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        region = self._px[y0:y1, x0:x1]
        region[:] = _blend(region, c, 1.0 - t, ct, mask)

    # ------------------------------------------------------------------ wire

    def to_wire(self, fmt: str = "RGBA8") -> dict:
        """``fmt`` "RGBA8" (raw, fast) or "PNG" (smaller); both are lossless."""
        w, h = self.Size
        if fmt == "RGBA8":
            data = self._px.tobytes()
        elif fmt == "PNG":
            data = self.to_png()
        else:
            raise ValueError("fmt must be 'RGBA8' or 'PNG'")
        return {"type": "EditableImage", "version": 1, "width": w, "height": h, "format": fmt, "data": data}

    @classmethod
    def from_wire(cls, d: dict) -> "EditableImage":
        keys = {"type", "version", "width", "height", "format", "data"}
        if not isinstance(d, dict) or set(d) != keys or d["type"] != "EditableImage" or d["version"] != 1:
            raise InvalidEdit("not an EditableImage wire document (version 1)")
        w, h = _ints([d["width"], d["height"]], "size")
        if not (1 <= w <= MAX_IMAGE_SIZE and 1 <= h <= MAX_IMAGE_SIZE):
            raise InvalidEdit(f"image size {w}x{h} must be 1..{MAX_IMAGE_SIZE} per side")
        data = d["data"]
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidEdit("image data must be bytes")
        if d["format"] == "RGBA8":
            if len(data) != w * h * 4:
                raise InvalidEdit("raw image data has the wrong length")
            return cls.from_array(np.frombuffer(bytes(data), np.uint8).reshape(h, w, 4).copy())
        if d["format"] == "PNG":
            img = cls.from_png(bytes(data))
            if img.Size != (w, h):
                raise InvalidEdit("PNG size does not match width/height")
            return img
        raise InvalidEdit("image format must be RGBA8 or PNG")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EditableImage):
            return NotImplemented
        return self._px.shape == other._px.shape and bool(np.array_equal(self._px, other._px))

    def __repr__(self) -> str:
        w, h = self.Size
        return f"EditableImage({w}x{h})"


def _blend(dst: np.ndarray, rgb: np.ndarray, alpha: float, combine: int, mask: np.ndarray | None) -> np.ndarray:
    """Composite a solid colour over ``dst`` (h,w,4 uint8); deterministic rounding."""
    d = dst.astype(np.float64) / 255.0
    if combine == COMBINE_TYPES["Overwrite"]:
        out = np.empty_like(d)
        out[..., :3] = rgb
        out[..., 3] = alpha
    else:  # BlendSourceOver: Porter-Duff "source over" with straight alpha
        da = d[..., 3:4]
        oa = alpha + da * (1.0 - alpha)
        safe = np.where(oa > 0, oa, 1.0)
        out = np.empty_like(d)
        out[..., :3] = np.where(oa > 0, (rgb * alpha + d[..., :3] * da * (1.0 - alpha)) / safe, 0.0)
        out[..., 3:4] = oa
    res = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    if mask is not None:
        res = np.where(mask[..., None], res, dst)
    return res
