"""Regenerate the README's gallery: real photos → preview → the avatar from the front,
at 35° and from the back, plus the body at default and stylised proportions.

    .venv/bin/python tools/gallery.py [--out docs]

Photos: the three packaged real faces of the tests (tests/faces.py: skimage's
astronaut, matplotlib's Grace Hopper, Carlo Ancelotti from ultralytics' sample image).
Renders: three.js in headless chromium (client_sim/render.py), the same client the
tests use.  Writes ``gallery.jpg`` (one row per photo) and ``bodies.jpg``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from client_sim.render import view_glb  # noqa: E402
from generation.avatar_builder import build_avatar  # noqa: E402
from meshes import export_glb  # noqa: E402
from tests.faces import PROMPT, previews, real_faces  # noqa: E402

TILE = 320


def _tile(img: np.ndarray | Image.Image, label: str) -> Image.Image:
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    im = im.convert("RGB")
    w, h = im.size
    side = min(w, h)
    im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    im = im.resize((TILE, TILE), Image.LANCZOS)
    ImageDraw.Draw(im).text((6, 4), label, fill=(20, 20, 20))
    return im


def _row(tiles: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (TILE * len(tiles), TILE), (255, 255, 255))
    for i, t in enumerate(tiles):
        out.paste(t, (i * TILE, 0))
    return out


def _stack(rows: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), (255, 255, 255))
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height
    return out


def _shots(glb: bytes, shots: list[dict]) -> list[Image.Image]:
    return [Image.open(io.BytesIO(p)) for p in view_glb(glb, shots, timeout=120)["pngs"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, photo in real_faces().items():
        t0 = time.perf_counter()
        p = previews()[name]
        av = build_avatar(p.png, landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb, text_prompt=PROMPT)
        views = _shots(export_glb(av), [{"angle": a, "view": "head", "size": 512} for a in (0, 35, 180)])
        rows.append(_row([_tile(photo, "photo"), _tile(Image.open(io.BytesIO(p.png)), "preview"),
                          _tile(views[0], "front"), _tile(views[1], "35 degrees"), _tile(views[2], "back")]))
        print(f"{name}: {av.metadata['HairStyle']} hair, {time.perf_counter() - t0:.1f} s")
    _stack(rows).save(out / "gallery.jpg", quality=88)

    p = previews()["astronaut"]
    kw = dict(landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb)
    bodies = []
    for label, extra in (("default", {}), ("slim, blue shirt", {"text_prompt": "slim, blue shirt, black jeans"}),
                         ("heavy, green shirt", {"text_prompt": "heavy, green shirt"}),
                         ("HeadScale 1.5", {"head_scale": 1.5, "text_prompt": PROMPT})):
        av = build_avatar(p.png, **kw, **extra)
        bodies.append(_tile(_shots(export_glb(av), [{"angle": 20, "view": "body", "size": 512}])[0], label))
    _row(bodies).save(out / "bodies.jpg", quality=88)
    print(f"wrote {out / 'gallery.jpg'} and {out / 'bodies.jpg'}")


if __name__ == "__main__":
    main()
