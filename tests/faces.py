"""Real faces that packages ship, their previews and avatars (built once per test session).

* ``astronaut``: skimage's NASA portrait of Eileen Collins (public domain);
* ``grace_hopper``: matplotlib's sample photo of Grace Hopper (public domain);
* ``ancelotti``: the right-hand man of ultralytics' ``assets/zidane.jpg`` (Carlo
  Ancelotti), cropped to head and shoulders.  ultralytics is installed ``--no-deps``
  by the README's test command and never imported: its folder is found with
  :func:`importlib.util.find_spec`.

Each goes ``make_preview`` (512 px) → ``build_avatar`` with the preview's landmarks,
skin and hair colours and the prompt "red shirt, blue jeans" → ``export_glb``.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from pathlib import Path

import numpy as np
from PIL import Image

PROMPT = "red shirt, blue jeans"


def jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@functools.lru_cache(maxsize=None)
def real_faces() -> dict[str, np.ndarray]:
    """name → (H, W, 3) uint8 RGB photo of one real person."""
    from matplotlib import cbook
    from skimage import data as skdata

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.submodule_search_locations, \
        "ultralytics (for its sample photo) is missing: pip install --no-deps ultralytics==8.4.190"
    with Image.open(Path(next(iter(spec.submodule_search_locations))) / "assets" / "zidane.jpg") as im:
        zidane = np.asarray(im.convert("RGB"))
    return {"astronaut": skdata.astronaut(), "grace_hopper": hopper, "ancelotti": zidane[0:440, 760:1180].copy()}


@functools.lru_cache(maxsize=None)
def previews() -> dict:
    from generation.preview import make_preview

    return {name: make_preview(jpeg(rgb), size=512) for name, rgb in real_faces().items()}


@functools.lru_cache(maxsize=None)
def avatars() -> dict:
    """name → the Avatar built from that photo."""
    from generation.avatar_builder import build_avatar

    return {name: build_avatar(p.png, landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb,
                               text_prompt=PROMPT)
            for name, p in previews().items()}


@functools.lru_cache(maxsize=None)
def avatar_glbs() -> dict[str, bytes]:
    """name → glb bytes of that avatar."""
    from meshes import export_glb

    return {name: export_glb(avatar) for name, avatar in avatars().items()}
