"""The avatar a player would wear, judged from what a person sees: renders by three.js in
headless chromium (client_sim/render.py) of avatars built from three real faces
(tests/faces.py: astronaut, Grace Hopper, Carlo Ancelotti), head at yaw 0, 35, 90 and
180 degrees and the full body from the front.

Needs node, the npm packages of tests/web and chromium (``bash tests/web/install.sh``,
run by the README's test command); nothing is skipped.
"""

from __future__ import annotations

import functools
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from client_sim.render import view_glb
from generation import likeness
from generation.face import detect_face, detect_faces
from meshes.pose import pose
from meshes.r15 import JOINTS
from tests.faces import avatar_glbs, avatars, real_faces

NAMES = ("astronaut", "grace_hopper", "ancelotti")
YAWS = (0, 35, 90, 180)
BACKGROUND = np.array([0xDF, 0xE3, 0xEA])  # viewer.html's clear colour


@functools.lru_cache(maxsize=None)
def renders() -> dict[str, list[np.ndarray]]:
    """name → [head at each of YAWS, full body front], (512, 512, 3) uint8 each."""
    out = {}
    for name, glb in avatar_glbs().items():
        shots = [{"angle": a, "view": "head", "size": 512} for a in YAWS] + [{"angle": 0, "view": "body", "size": 512}]
        pngs = view_glb(glb, shots, timeout=120)["pngs"]
        out[name] = [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs]
    return out


def _silhouette(px: np.ndarray) -> np.ndarray:
    return np.abs(px.astype(int) - BACKGROUND).max(axis=-1) > 12


def _lab(rgb) -> np.ndarray:
    a = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(a, cv2.COLOR_RGB2Lab).reshape(np.shape(rgb))


@pytest.mark.parametrize("name", NAMES)
def test_the_face_is_found_from_the_front_and_at_35_degrees(name):
    front, three_quarter = renders()[name][:2]
    assert detect_faces(front), f"{name}: mediapipe finds no face on the front render"
    assert detect_faces(three_quarter), f"{name}: mediapipe finds no face at 35 degrees"


def test_each_front_render_looks_like_its_own_photo_and_not_the_others():
    photos = {n: likeness.embed(rgb) for n, rgb in real_faces().items()}
    heads = {n: likeness.embed(renders()[n][0]) for n in NAMES}
    table = {n: {m: round(likeness.distance(heads[n], photos[m]), 3) for m in NAMES} for n in NAMES}
    print("dlib distance, front head render (row) to photo (column):", table)
    for n in NAMES:
        own = table[n][n]
        assert own < 0.6, f"{n}: {own} is not dlib's 'same person' (< 0.6)"
        assert all(own < table[n][m] for m in NAMES if m != n), (n, table[n])


@pytest.mark.parametrize("name", NAMES)
def test_the_upper_head_seen_from_the_back_is_hair(name):
    av = avatars()[name]
    front, back = renders()[name][0], renders()[name][3]
    # the eye line of the front view: the head-view camera frames both views alike
    eye_y = int(detect_face(front).landmarks[[33, 133, 362, 263], 1].mean())
    sil = _silhouette(back)
    upper = np.zeros_like(sil)
    upper[:eye_y] = sil[:eye_y]
    hair = np.asarray(next(a["Color"] for a in av.description["Accessories"] if a["AccessoryType"] == "Hair")) * 255
    skin = np.asarray(av.description["HeadColor"]) * 255
    lab = _lab(back[upper]).reshape(-1, 3)
    # chroma counts fully, lightness half (the renderer's shading changes lightness)
    w = np.array([0.5, 1.0, 1.0])
    d_hair = np.linalg.norm((lab - _lab(hair)) * w, axis=1)
    d_skin = np.linalg.norm((lab - _lab(skin)) * w, axis=1)
    share = float((d_hair < d_skin).mean())
    print(f"{name}: hair covers {share:.0%} of the upper head from behind")
    assert upper.sum() > 2000 and share > 0.8


def _photo_weight(name: str, **bake_kw) -> tuple[np.ndarray, np.ndarray]:
    """(α, texture) of the head bake of ``name``'s avatar, redone with the builder's
    public steps: α (S,S) is the photo's weight per texel."""
    from generation.avatar.body import assemble
    from generation.avatar.face_bake import bake_head
    from generation.avatar.face_fit import fit_face
    from generation.avatar.template import load_template
    from generation.face import person_mask
    from tests.faces import previews

    p = previews()[name]
    rgb = np.asarray(Image.open(io.BytesIO(p.png)).convert("RGB"))
    t = load_template()
    fit = fit_face(p.landmarks, t)
    g = assemble(t, fit.positions).parts["Head"]
    bake = bake_head(rgb, p.landmarks, fit, t.parts["Head"]["B"] @ fit.positions, g.normals * [-1, 1, -1],
                     g.triangles, g.uvs, person=person_mask(rgb), material=g.material, **bake_kw)
    return bake.alpha, bake.texture


def _head_renders_at_35(av, textures: list[np.ndarray]) -> list[np.ndarray]:
    """35° head renders of ``av`` without its hair, once per head texture (S,S,3 0..1)."""
    from meshes import export_glb
    from meshes.editable_image import EditableImage

    out = []
    for tex in textures:
        a = av.copy()
        for table in (a.parts, a.images, a.attachments):
            table.pop("HairAccessory", None)
        a.description["Accessories"] = []
        rgba = np.dstack([np.clip(np.round(tex * 255), 0, 255).astype(np.uint8), np.full(tex.shape[:2], 255, np.uint8)])
        a.images["Head"] = EditableImage.from_array(rgba)
        png = view_glb(export_glb(a), [{"angle": 35, "view": "head", "size": 512}], timeout=120)["pngs"][0]
        out.append(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32))
    return out


def outline_step(av, alpha: np.ndarray, texture: np.ndarray) -> tuple[float, int]:
    """The colour step a player sees where the photo meets the skin, at 35°.

    The head is rendered three times with the same camera: with its texture, with α
    as a grey texture and with plain white; α in the view is the ratio of the last
    two (the lighting cancels).  At every visible pixel where that ratio crosses 0.5
    (the photo's edge), the CIELAB ΔE between the textured render 4 px inside and 4
    px outside along the ratio's gradient is that pixel's step.  Returns (median step,
    edge pixels): the median, because the edge also crosses brows and hairlines,
    whose steps are the face's own."""
    grey = np.repeat(alpha[..., None], 3, axis=2)
    shaded, a_img, white = _head_renders_at_35(av, [texture, grey, np.ones_like(texture)])
    sil = _silhouette(white.astype(np.uint8))
    ratio = cv2.GaussianBlur(np.where(sil, a_img[..., 1] / np.maximum(white[..., 1], 1.0), 0.0), (0, 0), 1.0)
    gx, gy = cv2.Sobel(ratio, cv2.CV_32F, 1, 0), cv2.Sobel(ratio, cv2.CV_32F, 0, 1)
    ys, xs = np.nonzero(sil & (np.abs(ratio - 0.5) < 0.05) & (np.hypot(gx, gy) > 1e-3))
    lab = _lab(shaded.astype(np.uint8))
    steps = []
    for y, x in zip(ys[::3], xs[::3]):
        g = np.array([gx[y, x], gy[y, x]])
        g /= np.linalg.norm(g)
        (xi, yi), (xo, yo) = (np.round([x, y] + 4 * g).astype(int), np.round([x, y] - 4 * g).astype(int))
        if not (0 <= min(xi, xo, yi, yo) and max(xi, xo) < sil.shape[1] and max(yi, yo) < sil.shape[0]):
            continue
        if sil[yi, xi] and sil[yo, xo]:
            steps.append(float(np.linalg.norm(lab[yi, xi] - lab[yo, xo])))
    return (float(np.median(steps)) if steps else float("nan")), len(steps)


@pytest.mark.parametrize("name", NAMES)
def test_no_edge_shows_where_the_photo_meets_the_skin_at_35_degrees(name):
    """Median ΔE across the photo's edge in the 35° view (see :func:`outline_step`).

    Measured on the three faces: 7-12 with the multi-band blend (the 8 px span also
    holds the photo's own shading and wrinkles next to the even albedo); the same bake
    pasted with a hard edge onto skin a quarter darker (the negative control below)
    gives 19-21, a seam anyone sees.  The bound, 14, sits between the two.
    """
    alpha, texture = _photo_weight(name)
    step, n = outline_step(avatars()[name], alpha, texture)
    print(f"{name}: {n} edge pixels, median ΔE across the photo's edge {step:.1f}")
    assert n >= 30 and step < 14


def test_the_outline_measure_sees_a_pasted_face(monkeypatch):
    """Negative control: the photo pasted with a hard edge onto skin a quarter darker
    (a wrongly measured tone, no blend) makes a step a player sees; the measure reports it."""
    import generation.avatar.face_bake as face_bake

    monkeypatch.setattr(face_bake, "_pyramid_blend",
                        lambda a, b, alpha, levels=5: np.where(alpha[..., None] > 0.5, b, a * 0.75))
    alpha, texture = _photo_weight("grace_hopper")
    step, n = outline_step(avatars()["grace_hopper"], alpha, texture)
    print(f"pasted: {n} edge pixels, median ΔE across the photo's edge {step:.1f}")
    assert step > 17


@pytest.mark.parametrize("name", NAMES)
def test_front_silhouette_of_the_full_body_is_one_piece(name):
    sil = _silhouette(renders()[name][4]).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(sil, connectivity=8)
    pieces = [int(a) for a in stats[1:, cv2.CC_STAT_AREA] if a >= 20]
    assert len(pieces) == 1, f"{name}: the body falls into {len(pieces)} pieces {sorted(pieces)}"


def test_posing_opens_no_gap_between_parts():
    av = avatars()["astronaut"]
    posed = pose(av, {"LeftElbow": ("x", 90), "RightElbow": ("x", 90), "LeftHip": ("x", 60),
                      "RightHip": ("x", -60), "Neck": ("x", 30), "Waist": ("y", 20)})
    for joint, (p0, p1, _) in JOINTS.items():
        if p0 not in av.parts:
            continue
        rest_a, rest_b = av.parts[p0].positions, av.parts[p1].positions
        key = {tuple(np.round(p, 5)): i for i, p in enumerate(rest_a)}
        pairs = [(key[k], j) for j, p in enumerate(rest_b) if (k := tuple(np.round(p, 5))) in key]
        assert len(pairs) >= 12, joint
        ia, ib = map(np.asarray, zip(*pairs))
        moved = np.linalg.norm(posed[p1][ib] - rest_b[ib], axis=1).max()
        gap = np.linalg.norm(posed[p0][ia] - posed[p1][ib], axis=1).max()
        assert gap < 1e-5, f"{joint}: a {gap:.4f}-stud gap opens between {p0} and {p1}"
        if joint in ("LeftElbow", "LeftHip", "Neck"):
            assert moved > 0.01, f"{joint}: the seam did not move at all, the pose was not applied"
    # the hair rides on the head
    head_shift = posed["Head"] - av.parts["Head"].positions
    hair_shift = posed["HairAccessory"] - av.parts["HairAccessory"].positions
    assert np.abs(head_shift).max() > 0.05 and np.abs(hair_shift).max() > 0.05
