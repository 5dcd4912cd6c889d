"""LoadPhoto: untrusted upload bytes → an RGB ``uint8`` array (SPEC §5).

Checks run cheapest first, and nothing is decoded until the header has shown
the image is safe to decode:

1. payload size ``> max_bytes``                      → :class:`ImageTooLarge` (413)
2. magic bytes not JPEG / PNG / WebP                 → :class:`UnsupportedImageFormat` (415)
3. header unreadable                                 → :class:`InvalidImage` (422)
4. declared ``width × height > max_pixels``
   (decompression bomb; refused before decoding)     → :class:`ImageTooLarge` (413)
5. declared shorter side ``< min_side``              → :class:`ImageTooSmall` (422)
6. full decode fails (truncated / corrupt data)      → :class:`InvalidImage` (422)

Then EXIF orientation is applied and every mode (palette, greyscale, 16-bit,
RGBA, CMYK, ...) is converted to 8-bit RGB; transparency is composited over
white.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps

from .errors import ImageTooLarge, ImageTooSmall, InvalidImage, UnsupportedImageFormat

__all__ = ["load_photo", "probe_photo", "sniff_format", "MAX_BYTES", "MIN_SIDE", "MAX_PIXELS"]

MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 200
#: Largest accepted pixel count: a 48-megapixel phone photo (8000 × 6000) fits.
MAX_PIXELS = 50_000_000

_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def sniff_format(data: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the file's magic bytes, else ``None``."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _open_checked(
    data: bytes, *, max_bytes: int, min_side: int, max_pixels: int
) -> tuple[str, Image.Image]:
    """Run checks 1–5 and return ``(format, lazily-opened image)``; nothing decoded yet."""
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"This photo is too large ({len(data) / 1048576:.1f} MB). "
            f"Please use a photo under {max_bytes / 1048576:.0f} MB."
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImageFormat()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except Image.DecompressionBombError:
        raise ImageTooLarge("This photo has too many pixels. Please use a smaller photo.") from None
    except Exception:
        raise InvalidImage() from None
    w, h = im.size
    if w <= 0 or h <= 0:
        raise InvalidImage()
    if w * h > max_pixels:
        raise ImageTooLarge(
            f"This photo has too many pixels ({w}×{h}). Please use a photo under "
            f"{max_pixels / 1e6:.0f} megapixels."
        )
    if min(w, h) < min_side:
        raise ImageTooSmall(
            f"This photo is too small ({w}×{h}). Please use a photo at least "
            f"{min_side} pixels on each side."
        )
    return fmt, im


def _decode(im: Image.Image, draft_side: int | None) -> Image.Image:
    """Fully decode ``im`` (raising :class:`InvalidImage`) and apply EXIF orientation.

    ``draft_side``: for JPEG, let the decoder scale by 1/2, 1/4 or 1/8 while the
    longer side stays ≥ ``draft_side`` (the whole entropy-coded stream is still
    read, so truncation is still caught).
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped the global; never accept truncation
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False")
    try:
        if draft_side is not None and im.format == "JPEG" and max(im.size) > draft_side:
            scale = max(im.size) / draft_side
            im.draft(im.mode, (int(im.size[0] / scale) + 1, int(im.size[1] / scale) + 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
            out = ImageOps.exif_transpose(im)
    except Exception:
        raise InvalidImage() from None
    return out if out is not None else im


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode → (H, W, 3) uint8 RGB; alpha composited over white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im)
        if mode == "I" and a.max(initial=0) <= 255:
            a8 = np.clip(a, 0, 255).astype(np.uint8)
        else:
            a8 = (np.clip(a, 0, 65535).astype(np.uint32) * 255 // 65535).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a8[:, :, None], 3, axis=2))
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        a8 = np.clip(a if a.max(initial=0) > 1.0 else a * 255.0, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a8[:, :, None], 3, axis=2))
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in im.info
    ) or (mode in ("L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_photo(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    min_side: int = MIN_SIDE,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
) -> np.ndarray:
    """Decode an uploaded photo to a (H, W, 3) uint8 RGB array, upright.

    ``max_side``: if given, the result is downscaled so that its longer side is
    at most ``max_side`` pixels (area-averaged).  JPEGs are first decoded with
    the decoder's DCT scaling (1/2, 1/4, 1/8: several times faster), which may
    leave the longer side as small as ¾ · ``max_side``.  The ``min_side`` check always applies
    to the photo's declared size, before any downscaling.

    Raises :class:`ImageTooLarge`, :class:`UnsupportedImageFormat`,
    :class:`InvalidImage` or :class:`ImageTooSmall` (see the module docstring).
    """
    _, im = _open_checked(data, max_bytes=max_bytes, min_side=min_side, max_pixels=max_pixels)
    rgb = _to_rgb(_decode(im, None if max_side is None else (3 * max_side) // 4))
    if max_side is not None and max(rgb.shape[:2]) > max_side:
        h, w = rgb.shape[:2]
        f = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return rgb


def probe_photo(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    min_side: int = MIN_SIDE,
    max_pixels: int = MAX_PIXELS,
) -> dict:
    """Validate an upload without keeping the pixels: the same checks as :func:`load_photo`.

    The image is fully decoded (JPEGs at reduced DCT scale, which still reads
    every byte of the compressed stream), so truncated or corrupt files are
    refused here, at upload time.

    Returns ``{"format": "jpeg"|"png"|"webp", "width": int, "height": int}``,
    the size after EXIF orientation, in pixels.
    """
    fmt, im = _open_checked(data, max_bytes=max_bytes, min_side=min_side, max_pixels=max_pixels)
    w, h = im.size
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    _to_rgb(_decode(im, 512))
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return {"format": fmt, "width": int(w), "height": int(h)}
