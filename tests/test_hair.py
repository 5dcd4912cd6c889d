"""Hair accessory: observation on real previews, style choice, and the built meshes."""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from generation.avatar.hair import (
    STYLES, HairSpec, build_hair, choose_style, head_frame, observe_hair, parse_hair_prompt,
)
from generation.avatar_builder import build_avatar
from generation.edits import FACE_OVAL
from generation.face import person_mask
from generation.preview import make_preview
from meshes.validation import watertight_problem
from tests.conftest import jpeg


@pytest.fixture(scope="module")
def head():
    png = io.BytesIO()
    Image.fromarray(skdata.astronaut()).resize((512, 512)).save(png, "PNG")
    av = build_avatar(png.getvalue())
    h = av.parts["Head"]
    return np.asarray(h.positions, np.float64), np.asarray(h.triangles, np.int64)


@pytest.fixture(scope="module")
def astronaut_preview():
    r = make_preview(jpeg(skdata.astronaut()))
    rgb = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
    return rgb, np.asarray(r.landmarks, np.float64)


def _spec(style: str) -> HairSpec:
    extra = {"bob": dict(length=0.6, fringe=0.7), "long_straight": dict(length=1.6, fringe=0.6),
             "curly_volume": dict(length=0.8, curl=0.9, volume=1.3, fringe=0.6), "side_part": dict(fringe=1.0),
             "short_crop": dict(fringe=1.0, volume=1.5)}.get(style, {})
    return HairSpec(style=style, color_rgb=(90, 60, 40), **extra)


def _covered_from_behind(points: np.ndarray, pos: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """For each point: does a hair triangle lie on the line of sight from +Z (behind), nearer than it?"""
    a, b, c = pos[tri[:, 0], :2], pos[tri[:, 1], :2], pos[tri[:, 2], :2]
    p = points[:, None, :2]
    def cross(o, u, w):
        return (u[..., 0] - o[..., 0]) * (w[..., 1] - o[..., 1]) - (u[..., 1] - o[..., 1]) * (w[..., 0] - o[..., 0])
    d1, d2, d3 = cross(p, a[None], b[None]), cross(p, b[None], c[None]), cross(p, c[None], a[None])
    inside = ((d1 >= 0) & (d2 >= 0) & (d3 >= 0)) | ((d1 <= 0) & (d2 <= 0) & (d3 <= 0))
    zmax = pos[tri, 2].max(1)
    return (inside & (zmax[None, :] > points[:, None, 2])).any(1)


@pytest.mark.parametrize("style", STYLES)
def test_each_style_is_a_closed_valid_mesh_that_leaves_the_face_open(head, style):
    P, T = head
    m = build_hair(_spec(style), P, T)
    assert m is not None and m.style == style
    assert watertight_problem(m.positions, m.triangles) is None
    assert len(m.triangles) <= 4000
    pts = m.positions.astype(np.float64)[m.triangles]
    area = np.linalg.norm(np.cross(pts[:, 1] - pts[:, 0], pts[:, 2] - pts[:, 0]), axis=1) / 2
    assert area.min() > 1e-8
    # Outward winding: positive enclosed volume.
    assert np.einsum("ij,ij->i", pts[:, 0], np.cross(pts[:, 1], pts[:, 2])).sum() > 0
    assert m.uvs.min() >= 0 and m.uvs.max() <= 1
    uv = m.uvs.astype(np.float64)[m.triangles]
    uv_area = np.abs(np.cross(uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0])) / 2
    assert uv_area.min() > 1e-9
    assert np.allclose(np.linalg.norm(m.normals, axis=1), 1, atol=1e-3)
    assert m.texture.dtype == np.uint8 and m.texture.shape[2] == 3 and m.texture.shape[0] <= 512
    # Strand detail: the texture varies, far more along u (across strands) than along v.
    tex = m.texture.astype(np.float64).mean(2)
    assert tex.std() > 4
    if style not in ("buzz", "curly_volume"):
        assert np.abs(np.diff(tex, axis=1)).mean() > 2 * np.abs(np.diff(tex, axis=0)).mean()
    # Never in front of the face below the brows.
    f = head_frame(P)
    brow = f.level(0.38)
    low = m.positions[m.positions[:, 1] < brow]
    in_front = (np.abs(low[:, 0]) < 0.55 * f.half_width) & (low[:, 2] < f.centre[2] - 0.05)
    assert not in_front.any(), f"{in_front.sum()} hair vertices in front of the face below the brows"
    # Hair sits on the head: it reaches the crown and stays near the head.
    assert m.positions[:, 1].max() > f.y_top
    assert np.abs(m.positions[:, 0]).max() < 2.5 * f.half_width


@pytest.mark.parametrize("style", STYLES)
def test_from_behind_the_upper_skull_is_hair(head, style):
    P, T = head
    m = build_hair(_spec(style), P, T)
    f = head_frame(P)
    # Scalp of the back half above the ears (the ears themselves excluded).
    scalp = P[(P[:, 1] > f.level(0.45)) & (P[:, 2] > f.centre[2])]
    assert len(scalp) > 30
    cov = _covered_from_behind(scalp, m.positions.astype(np.float64), m.triangles)
    assert cov.mean() > 0.95, f"{style}: only {cov.mean():.0%} of the back scalp is covered"


def test_builds_are_deterministic_and_fast(head):
    P, T = head
    spec = _spec("long_straight")
    a, b = build_hair(spec, P, T), build_hair(spec, P, T)
    for k in ("positions", "triangles", "uvs", "normals", "texture"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    times = []
    for st in STYLES:
        t = time.perf_counter()
        build_hair(_spec(st), P, T)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.5, times  # ~0.05 s here; loose for a busy CI box (bench: bench/avatar.py)


def test_long_hair_is_longer_than_a_bob_and_the_bun_adds_a_piece(head):
    P, T = head
    low = {st: build_hair(_spec(st), P, T).positions[:, 1].min() for st in ("short_crop", "bob", "long_straight")}
    assert low["long_straight"] < low["bob"] - 0.2 < low["short_crop"] - 0.2
    bun = build_hair(_spec("bun"), P, T)
    crop = build_hair(HairSpec("short_crop", (90, 60, 40)), P, T)
    assert bun.positions[:, 2].max() > crop.positions[:, 2].max() + 0.08  # the knot stands out at the back


def test_prompt_words_override_the_photo():
    obs = observe_like(bald=False, length=0.0)
    s = choose_style(obs, "long blond hair", (20, 20, 20))
    assert s.style == "long_straight"
    r, g, b = s.color_rgb
    assert r > 180 and g > 140 and r > b + 60  # blond, not the photo's near-black
    assert choose_style(obs, "make me bald", None) is None
    assert choose_style(obs, "curly hair please", None).style == "curly_volume"
    assert choose_style(obs, "a ponytail", None).style == "ponytail"
    assert choose_style(obs, "hair in a bun", None).style == "bun"
    assert choose_style(obs, "shaved", None).style == "buzz"
    assert choose_style(obs, "short hair", None).style == "short_crop"
    assert choose_style(obs, "bob cut", None).style == "bob"
    # Clothing colours are not hair colours.
    assert parse_hair_prompt("red shirt and blue jeans") == (None, None)
    assert parse_hair_prompt("red shirt, black hair")[1] == (26, 22, 22)
    assert parse_hair_prompt("ginger")[1] is not None
    # Without a prompt the photo decides; without both, a short crop in hair_rgb.
    assert choose_style(obs, None, None).color_rgb == obs.color_rgb
    s = choose_style(None, None, (200, 10, 10))
    assert s.style == "short_crop" and s.color_rgb == (200, 10, 10)
    assert choose_style(observe_like(bald=True), None, (1, 2, 3)) is None
    assert choose_style(observe_like(bald=True), "long hair", None).style == "long_straight"
    assert choose_style(observe_like(bald=False, length=1.0), None, None).style == "long_straight"
    assert choose_style(observe_like(bald=False, length=0.3), None, None).style == "bob"


def observe_like(bald: bool, length: float = 0.0):
    from generation.avatar.hair import HairObservation
    return HairObservation(bald=bald, top_height=0.0 if bald else 0.3, side_width=0.0 if bald else 0.15,
                           length_below_ears=length, fringe=0.2, fringe_tilt=0.0, curliness=0.0,
                           color_rgb=(80, 50, 30))


def test_observe_hair_on_a_real_preview(astronaut_preview):
    rgb, lm = astronaut_preview
    obs = observe_hair(rgb, lm, None)
    assert not obs.bald and not obs.hat
    assert obs.top_height > 0.2  # her hair stands well above the forehead
    assert obs.side_width > 0.1  # full, rounded sides
    assert obs.length_below_ears < 0.15  # short: not past the ear lobes ...
    assert obs.ear_cover > 0.4 and obs.side_reach > 0.35  # ... but over the ears, down towards the lobes
    r, g, b = obs.color_rgb
    assert r > b + 30 and 60 < r < 220  # brown / dark blond, not skin-pink or sky-blue
    spec = choose_style(obs, None, None)
    assert spec is not None and spec.style == "bob" and spec.length < 0.35  # a short bob, not a long one


def test_astronaut_bob_covers_the_ears(head, astronaut_preview):
    rgb, lm = astronaut_preview
    spec = choose_style(observe_hair(rgb, lm, None), None, None)
    P, T = head
    m = build_hair(spec, P, T)
    f = head_frame(P)
    pos = m.positions.astype(np.float64)
    # Beside the head at ear height (nose tip → brows) the hair is outside the widest point of the head.
    side = pos[(pos[:, 1] > f.level(0.0)) & (pos[:, 1] < f.level(0.35)) & (np.abs(pos[:, 2] - f.centre[2]) < 0.1)]
    assert len(side) and np.abs(side[:, 0]).max() > f.half_width + 0.03
    assert pos[:, 1].min() < f.level(0.0)  # the tips reach the ear lobes (≈ nose-tip level)
    assert watertight_problem(m.positions, m.triangles) is None


@pytest.fixture(scope="module")
def hopper_preview():
    import matplotlib.cbook as cbook
    rgb = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    r = make_preview(jpeg(rgb))
    return np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB")), np.asarray(r.landmarks, np.float64)


def test_hat_hair_colour_comes_from_below_the_hat(hopper_preview):
    # Grace Hopper: a dark uniform cap; short grey-white hair shows at the temples and behind the ears.
    rgb, lm = hopper_preview
    obs = observe_hair(rgb, lm, None)
    assert obs.hat and not obs.bald
    lab = cv2.cvtColor(np.uint8([[obs.color_rgb]]), cv2.COLOR_RGB2Lab)[0, 0].astype(float)
    lightness = lab[0] * 100 / 255
    chroma = np.hypot(lab[1] - 128, lab[2] - 128)
    assert lightness > 62, obs.color_rgb  # light grey / white, not the shaded ear's pinkish brown
    assert chroma < 10, obs.color_rgb
    assert obs.ear_cover < 0.4  # her ears show
    spec = choose_style(obs, None, None)
    assert spec.style != "bob" and spec.color_rgb == obs.color_rgb


def test_curly_texture_has_curl_sized_blobs():
    from generation.avatar.hair import _texture
    tex = _texture(HairSpec("curly_volume", (90, 60, 40), curl=0.9)).astype(np.float64).mean(2)
    # Roughly isotropic (curls, not strands) and with structure at the curl scale (≈ 12 texels), not blotches.
    gx, gy = np.abs(np.diff(tex, axis=1)).mean(), np.abs(np.diff(tex, axis=0)).mean()
    assert 0.6 < gx / gy < 1.6
    fine = tex - cv2.GaussianBlur(tex, (0, 0), 8)
    assert fine.std() > 0.6 * (tex - tex.mean()).std()


def _paint_bald(rgb: np.ndarray, lm: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The preview with every person pixel above the eyes and outside the face painted skin colour."""
    h, w = rgb.shape[:2]
    L = lm[:, :2] * [w, h]
    skin = np.median(np.stack([rgb[int(y), int(x)] for x, y in L[[50, 101, 205, 280, 330, 425]]]), axis=0)
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(L[list(FACE_OVAL)]).astype(np.int32)], 1)
    eye_y = L[[33, 263], 1].mean()
    out = rgb.copy()
    yy = np.arange(h)[:, None]
    out[(person > 0.5) & (oval == 0) & (yy < eye_y + 0.25 * (L[152, 1] - L[10, 1]))] = skin.astype(np.uint8)
    return out


def test_observe_hair_on_edited_previews(astronaut_preview):
    rgb, lm = astronaut_preview
    person = person_mask(rgb)
    bald = _paint_bald(rgb, lm, person)
    obs = observe_hair(bald, lm, person)
    assert obs.bald and choose_style(obs, None, None) is None
    # Paint long dark hair back on: a cap over the skull and curtains beside the face down past the chin.
    h, w = rgb.shape[:2]
    L = lm[:, :2] * [w, h]
    fw = L[454, 0] - L[234, 0]
    fh = L[152, 1] - L[10, 1]
    long = bald.copy()
    mask = np.zeros((h, w), np.uint8)
    cx, top = int(L[[234, 454], 0].mean()), int(L[10, 1])
    cv2.ellipse(mask, (cx, top + int(0.1 * fh)), (int(0.8 * fw), int(0.55 * fh)), 0, 180, 360, 1, -1)
    for x in (L[234, 0] - 0.3 * fw, L[454, 0]):
        cv2.rectangle(mask, (int(x), top), (int(x + 0.3 * fw), int(L[152, 1] + 0.7 * fh)), 1, -1)
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(L[list(FACE_OVAL)]).astype(np.int32)], 1)
    paint = (mask > 0) & (oval == 0)
    long[paint] = (45, 30, 20)
    obs2 = observe_hair(long, lm, np.maximum(person, paint.astype(np.float32)))
    assert not obs2.bald
    assert obs2.length_below_ears > 0.6
    assert max(abs(a - b) for a, b in zip(obs2.color_rgb, (45, 30, 20))) < 25
    assert choose_style(obs2, None, None).style == "long_straight"


def test_bald_spec_builds_nothing(head):
    P, T = head
    assert build_hair(None, P, T) is None
    with pytest.raises(ValueError):
        build_hair(HairSpec("mohawk", (0, 0, 0)), P, T)
