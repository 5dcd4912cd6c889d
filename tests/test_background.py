"""BgGenerate and DetailEnhance: scenes, palette override, segmentation compositing, per-style tone."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from generation.background import SCENES, STYLE_SCENES, composite, feathered_alpha, render_background
from generation.enhance import ENHANCE_PARAMS, enhance
from generation.preview import STYLES, make_preview


def jpeg(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def decode(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_scenes_differ_and_are_deterministic():
    imgs = {k: render_background(k, 256).astype(int) for k in SCENES}
    for k, img in imgs.items():
        assert img.shape == (256, 256, 3)
        assert np.array_equal(img, render_background(k, 256).astype(int))
    names = list(imgs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(imgs[a] - imgs[b]).mean() > 10, (a, b)
    assert set(STYLE_SCENES) == set(STYLES)
    # the neon scene is dark with bright thin lines; the studio is light and smooth
    neon, studio = imgs["neon"], imgs["studio"]
    assert np.median(neon) < 80 and neon.max() > 200
    assert np.median(studio) > 120 and np.abs(np.diff(studio, axis=1)).max() < 12


def test_palette_override_sets_the_colours():
    for kind in SCENES:
        img = render_background(kind, 128, [(250, 20, 20), (200, 0, 0)]).astype(int)
        mean = img.reshape(-1, 3).mean(axis=0)
        assert mean[0] > mean[1] + 40 and mean[0] > mean[2] + 40, kind


def test_composite_follows_the_mask_with_a_feathered_edge():
    person = np.full((200, 200, 3), 200, np.uint8)
    bg = np.zeros((200, 200, 3), np.uint8)
    mask = np.zeros((200, 200), np.float32)
    mask[:, :100] = 1.0
    out = composite(person, bg, mask).astype(int)
    assert (out[:, :90] == 200).all() and (out[:, 110:] == 0).all()
    row = out[100, 90:110, 0]
    assert (np.diff(row) <= 0).all() and 0 < row[9] < 200  # a ramp, not a hard step
    assert feathered_alpha(mask).dtype == np.float32


def test_pipeline_replaces_the_background_by_segmentation():
    astro = skdata.astronaut()
    r = make_preview(jpeg(astro), style="corporate_headshot", palette=[(30, 200, 60), (20, 120, 40)], size=256)
    out = decode(r.png)
    corner = out[:24, :24].reshape(-1, 3).mean(axis=0)
    assert corner[1] > corner[0] + 60 and corner[1] > corner[2] + 60  # the palette's green
    # the face (centre of the frame) is the person's, not the backdrop's
    face = out[100:140, 110:146].reshape(-1, 3).mean(axis=0)
    assert face[0] > face[1] > face[2]


@pytest.mark.parametrize("style", STYLES)
def test_enhance_sharpens_and_keeps_hue(style):
    img = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    soft = cv2.GaussianBlur(img, (0, 0), 1.2)
    out = enhance(soft, style)
    lap = lambda x: cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()  # noqa: E731
    assert lap(out) > lap(soft) * 1.1
    a = cv2.cvtColor(soft, cv2.COLOR_RGB2Lab)[:, :, 1:].astype(int)
    b = cv2.cvtColor(out, cv2.COLOR_RGB2Lab)[:, :, 1:].astype(int)
    assert np.abs(a - b).mean() < 2.0
    assert style in ENHANCE_PARAMS
