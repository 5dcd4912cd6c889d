"""SaveAvatar: the square PNG, its thumbnail and the PNG metadata (SPEC §5).

* Preview: (N, N) RGB PNG, N = 800 by default or 1200 for high-res (the
  caller decides; any size is encoded), zlib level 1 with the run-length
  strategy (``compress_type=3``, Z_RLE): at 800² ≈ 29 ms and ≈ 480 KB for a
  stylised frame, against ≈ 48 ms and ≈ 550 KB with the default strategy.
* Thumbnail: 100 × 100 RGB PNG, area-averaged from the preview.
* Metadata: PNG ``tEXt`` chunks written with Pillow's ``PngInfo``:
  ``Software`` (``acs <pipeline version>``), ``acs:style``,
  ``acs:pipeline_version``, ``acs:session`` (when known), ``acs:likeness``
  (when measured).  :func:`read_metadata` reads them back.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

__all__ = ["PIPELINE_VERSION", "THUMBNAIL_SIZE", "encode_png", "thumbnail_png", "read_metadata"]

PIPELINE_VERSION = "2d-2.0"
THUMBNAIL_SIZE = 100


def encode_png(rgb: np.ndarray, metadata: dict[str, str | float | None] | None = None) -> bytes:
    """(H, W, 3) uint8 RGB → PNG bytes with ``metadata`` as ``acs:<key>`` tEXt chunks (None values skipped)."""
    info = PngInfo()
    info.add_text("Software", f"acs {PIPELINE_VERSION}")
    for key, value in (metadata or {}).items():
        if value is not None:
            info.add_text(f"acs:{key}", str(value))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "PNG", pnginfo=info, compress_level=1, compress_type=3)
    return buf.getvalue()


def thumbnail_png(rgb: np.ndarray, metadata: dict | None = None) -> bytes:
    """A THUMBNAIL_SIZE² PNG of a square (N, N, 3) uint8 RGB image (area-averaged)."""
    small = cv2.resize(rgb, (THUMBNAIL_SIZE, THUMBNAIL_SIZE), interpolation=cv2.INTER_AREA)
    return encode_png(small, metadata)


def read_metadata(png: bytes) -> dict[str, str]:
    """The ``acs:*`` text chunks of a PNG as ``{key: value}`` (``acs:`` prefix removed), plus Software."""
    im = Image.open(io.BytesIO(png))
    im.load()
    text = dict(getattr(im, "text", {}) or {})
    out = {k[4:]: v for k, v in text.items() if k.startswith("acs:")}
    if "Software" in text:
        out["Software"] = text["Software"]
    return out
