"""The Head from the face: landmark face surface fused into a closed head, UVs into the
preview, FACS morph targets, and their glb export (generation.head, meshes.gltf).

Two real faces: skimage's astronaut and the camera man (``skimage.data.camera()``; a
small, turned face), both through the photo pipeline's detect + align at 800 px."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from generation.head import FACE_OVAL, FACS_MORPHS, face_tesselation, head_from_landmarks
from meshes import export_glb, load_glb, read_accessor, validate_full_body
from .conftest import closed_and_consistent

from skimage import data as skdata  # noqa: E402

SIZE = 800


def _aligned(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from generation.align import align_face
    from generation.face import detect_face

    a = align_face(rgb, detect_face(rgb).landmarks, SIZE)
    lm = a.landmarks.astype(np.float32).copy()
    lm[:, :2] /= SIZE
    lm[:, 2] /= SIZE
    return lm, a.image


@pytest.fixture(scope="module")
def astronaut():
    return _aligned(skdata.astronaut())


@pytest.fixture(scope="module")
def cameraman():
    return _aligned(np.dstack([skdata.camera()] * 3))



def _volume(pos, tri) -> float:
    p = pos.astype(np.float64)
    return float(np.einsum("ij,ij->i", p[tri[:, 0]], np.cross(p[tri[:, 1]], p[tri[:, 2]])).sum() / 6)


def _model(lm: np.ndarray) -> np.ndarray:
    return np.stack([-lm[:, 0], -lm[:, 1], lm[:, 2]], 1).astype(np.float64)


def _similarity_residual(src: np.ndarray, dst: np.ndarray) -> float:
    """RMS residual of the best similarity src → dst, relative to dst's RMS radius."""
    a, b = src - src.mean(0), dst - dst.mean(0)
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
    r = u @ d @ vt
    k = np.trace(np.diag(s) @ d) / (a ** 2).sum()
    res = b - k * a @ r.T
    return float(np.sqrt((res ** 2).sum(1).mean() / (b ** 2).sum(1).mean()))


def synthetic(cx=0.5, cy=0.45, size=0.4, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lm = np.zeros((478, 3), np.float32)
    lm[:, 0] = cx + rng.uniform(-0.3, 0.3, 478) * size
    lm[:, 1] = cy + rng.uniform(-0.3, 0.3, 478) * size
    lm[:, 2] = rng.uniform(-0.02, 0.02, 478)
    return lm


# --------------------------------------------------------------------------- data


def test_tesselation_is_mediapipes_852_triangles():
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    t = face_tesselation()
    assert t.shape == (852, 3) and t.min() == 0 and t.max() == 467
    edges = {frozenset(e) for tr in t.tolist() for e in ((tr[0], tr[1]), (tr[1], tr[2]), (tr[2], tr[0]))}
    assert edges == {frozenset(e) for e in FACEMESH_TESSELATION}
    # consistently wound: no directed edge twice; the open boundary is the oval + eyes + inner lips
    de = [(a, b) for tr in t.tolist() for a, b in ((tr[0], tr[1]), (tr[1], tr[2]), (tr[2], tr[0]))]
    assert len(set(de)) == len(de)
    boundary = {a for a, b in de if (b, a) not in set(de)}
    assert set(FACE_OVAL) <= boundary and len(boundary) == 36 + 16 + 16 + 20


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("which", ["astronaut", "cameraman", "none", "synthetic"])
def test_head_is_closed_and_within_budget(which, request):
    lm = {"none": None, "synthetic": synthetic()}.get(which)
    if lm is None and which not in ("none",):
        lm = request.getfixturevalue(which)[0]
    h = head_from_landmarks(lm)
    assert len(h.triangles) < 4000
    assert closed_and_consistent(h.positions, h.triangles)
    assert _volume(h.positions, h.triangles) > 0
    lo, hi = h.positions.min(0), h.positions.max(0)
    assert 1.2 <= hi[1] - lo[1] <= 1.35 and 0.7 <= hi[0] - lo[0] <= 1.3 and 0.9 <= hi[2] - lo[2] <= 1.5
    assert h.positions[h.face_rows[1], 2] == pytest.approx(lo[2], abs=0.05)  # the nose tip is the front
    assert h.info["plausible_landmarks"] == (which in ("astronaut", "cameraman"))


def test_face_vertices_follow_the_landmarks(astronaut, cameraman):
    for lm, _ in (astronaut, cameraman):
        h = head_from_landmarks(lm)
        face = h.positions[h.face_rows]
        # the face surface is the landmark cloud up to a similarity (pose and scale removed)
        assert _similarity_residual(_model(lm[:468]), face) < 1e-5
        src = _model(lm[:468])
        # e.g. eye-corner spacing relative to nose tip → chin
        ratio_mesh = np.linalg.norm(face[33] - face[263]) / np.linalg.norm(face[1] - face[152])
        ratio_lm = np.linalg.norm(src[33] - src[263]) / np.linalg.norm(src[1] - src[152])
        assert ratio_mesh == pytest.approx(ratio_lm, rel=1e-6)
        # left is −X (the person's left eye 263), the nose is in front of the eyes
        assert face[263, 0] < 0 < face[33, 0] and face[1, 2] < face[[33, 263], 2].min() - 0.1


def test_two_faces_give_different_heads(astronaut, cameraman):
    a, b = head_from_landmarks(astronaut[0]), head_from_landmarks(cameraman[0])
    again = head_from_landmarks(astronaut[0])
    assert np.array_equal(a.positions, again.positions)
    d = np.linalg.norm(a.positions - b.positions, axis=1)    # same topology, vertex for vertex
    assert d.mean() > 0.015 and d[a.face_rows].mean() > 0.02
    # symmetric Hausdorff distance of the face surfaces (studs)
    fa, fb = a.positions[a.face_rows], b.positions[b.face_rows]
    dd = np.linalg.norm(fa[:, None] - fb[None], axis=2)
    assert max(dd.min(0).max(), dd.min(1).max()) > 0.03
    # the canonical head (no landmarks) is the symmetrised astronaut: close to a, far from b
    c = head_from_landmarks(None)
    dc = np.linalg.norm(c.positions - a.positions, axis=1).mean()
    assert 0 < dc < np.linalg.norm(c.positions - b.positions, axis=1).mean()


def test_head_build_is_fast(astronaut):
    head_from_landmarks(astronaut[0])
    t0 = time.perf_counter()
    for _ in range(5):
        head_from_landmarks(astronaut[0])
    assert (time.perf_counter() - t0) / 5 < 0.1


# --------------------------------------------------------------------------- UVs


def test_uvs_map_the_face_into_the_preview(astronaut, cameraman):
    for lm in (astronaut[0], cameraman[0], None, synthetic()):
        h = head_from_landmarks(lm)
        uv = h.uvs
        assert (uv >= 0).all() and (uv <= 1).all()
        t = uv[h.triangles]
        area = np.abs((t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1])
                      - (t[:, 1, 1] - t[:, 0, 1]) * (t[:, 2, 0] - t[:, 0, 0])) / 2
        assert area.min() > 1e-9
        face_uv = uv[h.face_rows]
        assert face_uv[:, 0].max() < 0.5 and np.delete(uv, h.face_rows, 0)[len(FACE_OVAL) + 9:, 0].min() > 0.5
    # the face UV is an affine function of the landmark image position
    lm = astronaut[0]
    h = head_from_landmarks(lm)
    A = np.c_[lm[:468, :2], np.ones(468)]
    coef, *_ = np.linalg.lstsq(A, h.uvs[h.face_rows], rcond=None)
    assert np.abs(A @ coef - h.uvs[h.face_rows]).max() < 1e-6


# --------------------------------------------------------------------------- expressions


def test_facs_morph_targets_move_their_regions(astronaut):
    h = head_from_landmarks(astronaut[0])
    assert tuple(h.morphs) == FACS_MORPHS
    p = h.positions
    f = h.face_rows
    nose_y = p[f[1], 1]
    eye_y = p[f[[33, 263]], 1].mean()
    for name, d in h.morphs.items():
        assert d.shape == p.shape and np.abs(d).max() > 0.01, name
    moved = {k: np.linalg.norm(d, axis=1) > 1e-7 for k, d in h.morphs.items()}
    # eyes: only their own side, nothing below the nose; the upper lid lands on the lower lid
    for side, sx, up, lo in (("Left", -1, 386, 374), ("Right", 1, 159, 145)):
        m = moved[f"{side}EyeClosed"]
        assert (p[m, 1] > nose_y).all() and (sx * p[m, 0] > 0).all()
        d = h.morphs[f"{side}EyeClosed"]
        assert np.allclose(p[f[up]] + d[f[up]], p[f[lo]], atol=1e-6)
        assert np.abs(d[f[lo]]).max() == 0
    # jaw: the chin drops, the forehead, eyes and the neck base do not move
    j = h.morphs["JawDrop"]
    assert j[f[152], 1] < -0.04 and j[f[14], 1] < -0.03
    assert not moved["JawDrop"][f[[10, 33, 263, 1, 13]]].any()
    assert not moved["JawDrop"][p[:, 1] <= p[:, 1].min() + 1e-6].any()
    assert (p[moved["JawDrop"], 1] < eye_y).all()
    # lip corners: happy goes up and out, sad goes down, each on its own side below the eyes
    for side, sx, corner in (("Left", -1, 291), ("Right", 1, 61)):
        up, down = h.morphs[f"{side}LipCornerPuller"], h.morphs[f"{side}LipCornerDown"]
        assert up[f[corner], 1] > 0.01 and sx * up[f[corner], 0] > 0
        assert down[f[corner], 1] < -0.01
        for k in (f"{side}LipCornerPuller", f"{side}LipCornerDown"):
            assert (sx * p[moved[k], 0] > 0).all() and (p[moved[k], 1] < eye_y).all()
    # vertices at the same position (the UV seam along the oval) get the same deltas
    _, key = np.unique(p, axis=0, return_inverse=True)
    key = key.reshape(-1)
    for d in h.morphs.values():
        for k in np.unique(key[np.bincount(key)[key] > 1]):
            rows = np.nonzero(key == k)[0]
            assert np.abs(d[rows] - d[rows[0]]).max() < 1e-7


# --------------------------------------------------------------------------- avatar + glb


def test_avatar_head_texture_and_glb_morphs(astronaut):
    from generation.avatar_builder import build_avatar
    from meshes.r15 import STUD_IN_METERS

    lm, img = astronaut
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    av = build_avatar(buf.getvalue(), landmarks=lm, hair_rgb=(200, 30, 30))
    ok, reasons = validate_full_body(av)
    assert ok, reasons
    head = av.parts["Head"]
    assert head.GetMorphTargetNames() == list(FACS_MORPHS)
    assert head.triangle_count < 4000
    tex = av.images["Head"].pixels
    assert tex.shape == (512, 1024, 4)
    # the face tile carries the preview: sample at the nose tip's UV
    h = head_from_landmarks(lm)
    u, v = h.uvs[h.face_rows[1]]
    px = tex[int(v * 512), int(u * 1024), :3].astype(int)
    src = img[int(lm[1, 1] * SIZE), int(lm[1, 0] * SIZE)].astype(int)
    assert np.abs(px - src).max() < 40
    # the hair cap (top of the skull tile) is the hair colour
    assert tuple(tex[5, 768, :3]) == pytest.approx((200, 30, 30), abs=30)

    g = load_glb(export_glb(av))
    (mesh,) = [m for m in g.meshes if m.name == "Head_Geo"]
    prim = mesh.primitives[0]
    assert mesh.extras["targetNames"] == list(FACS_MORPHS)
    assert mesh.weights == [0.0] * 7 and len(prim.targets) == 7
    pos = read_accessor(g, prim.attributes.POSITION)
    for name, target in zip(FACS_MORPHS, prim.targets):
        idx = target["POSITION"] if isinstance(target, dict) else target.POSITION
        acc = g.accessors[idx]
        d = read_accessor(g, idx)
        assert d.shape == pos.shape
        assert np.allclose(acc.min, d.min(0)) and np.allclose(acc.max, d.max(0))
        ref = head.morph_deltas(name).astype(np.float64) * (-1, 1, -1) * STUD_IN_METERS
        if len(ref) == len(d):
            assert np.allclose(d, ref, atol=1e-6)
        assert np.abs(d).max() > 0.002
