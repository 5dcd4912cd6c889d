"""LoadPhoto: untrusted upload bytes → an RGB ``uint8`` array (SPEC §5).

Checks run cheapest first, and nothing is decoded until the header has shown
the image is safe to decode:

1. payload size ``> max_bytes``                      → :class:`ImageTooLarge` (413)
2. magic bytes not JPEG / PNG / WebP                 → :class:`UnsupportedImageFormat` (415)
3. header unreadable                                 → :class:`InvalidImage` (422)
4. declared ``width × height > max_pixels``
   (decompression bomb; refused before decoding)     → :class:`ImageTooLarge` (413)
5. declared shorter side ``< min_side``              → :class:`ImageTooSmall` (422)
6. full decode fails, or the data ends before the
   declared size is filled (truncated / corrupt /
   header lying about the size)                      → :class:`InvalidImage` (422)

**Pixel cap** (:data:`MAX_PIXELS`, 25 megapixels).  Decoding costs memory in
proportion to the *declared* size, not to the file: an all-zero 7000 × 7000
PNG is 190 KB on the wire and ~1 GB once decoded (Pillow's 4 bytes per RGB
pixel, the RGB array, the resized copy).  The cap is the largest default
output of current phone cameras (24 MP: 5712 × 4284) with a little room;
12 MP (4032 × 3024) is the common case.  Full-sensor modes (48–200 MP) are
refused with a message asking for a smaller photo — such files rarely fit the
10 MB limit anyway.  At the cap, a PNG or WebP decode holds ~100 MB (Pillow)
plus a 75 MB array; JPEGs are decoded at reduced DCT scale and hold far less.
Pillow's own bomb guard (``DecompressionBombWarning`` above 89 MP,
``DecompressionBombError`` above 179 MP, raised by ``Image.open``) is caught
and reported as :class:`ImageTooLarge` too.

**Data that does not fill the declared size.**  Pillow accepts two kinds of
"lying" files silently: a JPEG whose entropy-coded data stops (at the EOI
marker) before the declared size is covered — libjpeg fills the rest with
mid-grey and only warns — and a PNG whose zlib stream ends early (the rest is
left zero).  A sequential JPEG or a PNG is checked only when its decoded
bottom-right pixel has that fill value (exactly 128 grey / exactly 0), so
ordinary photos pay nothing; a progressive JPEG (whose early scans already
cover the whole picture, so a cut leaves no grey) and a CMYK one always are:

* JPEG (Huffman-coded: baseline, extended, progressive): a scan with restart
  markers must hold as many as its MCU count needs; then the file is decoded
  again with 2 KB of filler bytes inserted before the marker that ends each
  scan.  A complete scan never reads them (libjpeg skips bytes before a
  marker), so the two decodes are identical; a scan that ran out of data
  decodes the filler instead of grey, so they differ → :class:`InvalidImage`.
* PNG: the IDAT stream is inflated again in 1 MB steps (output discarded)
  and its length compared with the size the header implies.

Then EXIF orientation is applied and every mode (palette, greyscale, 16-bit,
RGBA, CMYK, ...) is converted to 8-bit RGB; transparency is composited over
white.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageFile, ImageOps

from .errors import ImageTooLarge, ImageTooSmall, InvalidImage, UnsupportedImageFormat

__all__ = ["load_photo", "probe_photo", "sniff_format", "MAX_BYTES", "MIN_SIDE", "MAX_PIXELS"]

MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 200
#: Largest accepted declared pixel count (checked from the header, before any
#: decode): 25 megapixels — a 24 MP phone photo (5712 × 4284) fits; see the
#: module docstring for the memory it bounds.
MAX_PIXELS = 25_000_000

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


_JPEG_FORMATS = ("JPEG", "MPO")
#: SOF markers of the Huffman-coded JPEG processes Pillow decodes (baseline,
#: extended sequential, progressive).  Arithmetic-coded files are not re-checked:
#: their decoder may read past the end of a complete scan.
_HUFFMAN_SOF = (0xC0, 0xC1, 0xC2)
#: A run of 0xFF bytes followed by a marker code that ends an entropy-coded
#: segment (not a stuffed 0xFF00, not a restart marker RST0..7).
_SCAN_END = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")
_RESTART = re.compile(rb"\xff+[\xd0-\xd7]")
#: Filler inserted before each scan's end marker: no 0xFF, starts with zero bits
#: (always a valid Huffman code), then a fixed pseudo-random pattern.
_FILLER = bytes(8) + bytes((i * 167 + 13) % 255 for i in range(2040))


def _jpeg_with_filler(data: bytes) -> bytes | None:
    """``data`` with :data:`_FILLER` before the marker that ends each scan of the
    primary image; ``b""`` when a scan holds fewer restart intervals than its
    size needs (data missing for certain); None when the file is not a
    Huffman-coded JPEG this parser can walk (then no check beyond Pillow's own)."""
    n = len(data)
    pos, cuts, huffman, restart = 2, [], False, 0
    width = height = 0
    sampling: dict[int, tuple[int, int]] = {}
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI of the primary image; anything after (MPF frames) is not read
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        if pos + 2 > n:
            return None
        seg_end = pos + struct.unpack_from(">H", data, pos)[0]
        if seg_end > n:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            huffman = marker in _HUFFMAN_SOF
            height, width, count = struct.unpack_from(">HHB", data, pos + 3)
            for i in range(count):
                cid, hv = data[pos + 8 + 3 * i], data[pos + 9 + 3 * i]
                sampling[cid] = (max(1, hv >> 4), max(1, hv & 15))
        elif marker == 0xDD:  # DRI: restart interval in MCUs
            restart = struct.unpack_from(">H", data, pos + 2)[0]
        elif marker == 0xDA:  # SOS: the entropy-coded data follows its header
            m = _SCAN_END.search(data, seg_end)
            if m is None or not sampling:
                return None
            if restart:
                ids = [data[pos + 3 + 2 * i] for i in range(data[pos + 2])]
                hmax = max(h for h, _ in sampling.values())
                vmax = max(v for _, v in sampling.values())
                if len(ids) == 1:  # non-interleaved: one block per MCU
                    h, v = sampling.get(ids[0], (hmax, vmax))
                    mcus = -(-(-(-width * h // hmax)) // 8) * -(-(-(-height * v // vmax)) // 8)
                else:
                    mcus = -(-width // (8 * hmax)) * -(-height // (8 * vmax))
                found = sum(1 for _ in _RESTART.finditer(data, seg_end, m.start()))
                if found < -(-mcus // restart) - 1:
                    return b""
            cuts.append(m.start())
            pos = m.start()
            continue
        pos = seg_end
    if not huffman or not cuts:
        return None
    parts, last = [], 0
    for c in cuts:
        parts += [data[last:c], _FILLER]
        last = c
    parts.append(data[last:])
    return b"".join(parts)


def _png_data_complete(data: bytes) -> bool:
    """True when the IDAT stream inflates to at least the size the IHDR implies."""
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4) * depth  # bits per pixel
    if interlace:
        passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
        need = 0
        for x0, y0, dx, dy in passes:
            pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if pw > 0 and ph > 0:
                need += ph * (1 + (pw * bpp + 7) // 8)
    else:
        need = height * (1 + (width * bpp + 7) // 8)
    inflate, got, pos = zlib.decompressobj(), 0, 8
    try:
        while pos + 8 <= len(data) and got < need:
            length, kind = struct.unpack_from(">I4s", data, pos)
            if kind == b"IDAT":
                chunk = data[pos + 8:pos + 8 + length]
                while chunk and got < need:
                    got += len(inflate.decompress(chunk, 1 << 20))
                    chunk = inflate.unconsumed_tail
            elif kind == b"IEND":
                break
            pos += 12 + length
    except zlib.error:
        return False
    return got >= need


def _filled(data: bytes, im: Image.Image, draft: tuple[str, tuple[int, int]] | None) -> bool:
    """False when the decoded ``im`` shows the fill of a data stream that ended early."""
    w, h = im.size
    corner = im.getpixel((w - 1, h - 1))
    corner = corner if isinstance(corner, tuple) else (corner,)
    if im.format in _JPEG_FORMATS:
        grey_fill = im.mode in ("L", "RGB") and all(v == 128 for v in corner)
        if not grey_fill and im.mode in ("L", "RGB") and not im.info.get("progressive"):
            return True
        padded = _jpeg_with_filler(data)
        if padded is None or padded == b"":
            return padded is None
        again = Image.open(io.BytesIO(padded), formats=["JPEG"])
        if draft is not None:
            again.draft(*draft)
        again.load()
        return again.size == im.size and ImageChops.difference(again, im).getbbox() is None
    if im.format == "PNG":
        return any(v != 0 for v in corner) or _png_data_complete(data)
    return True


def _decode(data: bytes, im: Image.Image, draft_side: int | None) -> Image.Image:
    """Fully decode ``im`` (opened from ``data``), check that its data fill the
    declared size, and apply EXIF orientation; raise :class:`InvalidImage`.

    ``draft_side``: for JPEG, let the decoder scale by 1/2, 1/4 or 1/8 while the
    longer side stays ≥ ``draft_side`` (the whole entropy-coded stream is still
    read, so truncation is still caught).
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped the global; never accept truncation
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False")
    try:
        draft = None
        if draft_side is not None and im.format in _JPEG_FORMATS and max(im.size) > draft_side:
            scale = max(im.size) / draft_side
            draft = (im.mode, (int(im.size[0] / scale) + 1, int(im.size[1] / scale) + 1))
            im.draft(*draft)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
            complete = _filled(data, im, draft)
            turned = complete and im.getexif().get(0x0112, 1) not in (None, 1)
            out = ImageOps.exif_transpose(im) if turned else im
    except Exception:
        raise InvalidImage() from None
    if not complete:
        raise InvalidImage(
            "This photo's data ends before the picture does (the file is incomplete or damaged). "
            "Please try another photo."
        )
    return out


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
    rgb = _to_rgb(_decode(data, im, None if max_side is None else (3 * max_side) // 4))
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
    decoded = _decode(data, im, 512)
    try:  # the mode conversion load_photo will make, on a corner only (no full-size copy)
        _to_rgb(decoded.crop((0, 0, min(64, decoded.size[0]), min(64, decoded.size[1]))))
    except Exception:
        raise InvalidImage() from None
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return {"format": fmt, "width": int(w), "height": int(h)}
