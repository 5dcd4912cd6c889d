"""Identity likeness on real photos (SPEC §5 QA): same person above the thresholds, others below."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from generation import likeness


STYLISED_THRESHOLD = 0.60  # SPEC §5 default for stylised styles
PHOTOREAL_THRESHOLD = 0.75  # SPEC §5 default for photoreal styles


def cartoon(rgb: np.ndarray) -> np.ndarray:
    """A classic cartoon filter: 4 bilateral passes, 8 levels per channel, dark Canny ink lines."""
    x = rgb
    for _ in range(4):
        x = cv2.bilateralFilter(x, 9, 50, 7)
    flat = (x // 32) * 32 + 16
    grey = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 7)
    ink = cv2.Canny(grey, 60, 150) > 0
    out = flat.copy()
    out[ink] = 0
    return out


def retouch(rgb: np.ndarray) -> np.ndarray:
    """Mild retouch: skin smoothing and a slight brightening."""
    x = cv2.bilateralFilter(rgb, 7, 40, 40).astype(np.float32)
    return np.clip(x * 1.08 + 6, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def astronaut_emb(astronaut) -> np.ndarray:
    e = likeness.embed(astronaut)
    assert e is not None
    return e


@pytest.fixture(scope="module")
def camera_emb() -> np.ndarray:
    # The camera man's face is small (~55 px) and turned: HOG needs 3 pyramid upsamplings.
    cam = np.stack([skdata.camera()] * 3, axis=-1)
    assert likeness.embed(cam, upsample=0) is None
    e = likeness.embed(cam, upsample=3)
    assert e is not None
    return e


def test_embedding_shape_and_determinism(astronaut, astronaut_emb):
    assert astronaut_emb.shape == (128,)
    assert astronaut_emb.dtype == np.float32
    assert np.all(np.isfinite(astronaut_emb))
    again = likeness.embed(astronaut)
    assert likeness.distance(astronaut_emb, again) < 1e-5
    assert likeness.likeness_score(likeness.distance(astronaut_emb, again)) == pytest.approx(1.0, abs=1e-6)


def test_no_face_gives_none(astronaut):
    coffee = skdata.coffee()
    assert likeness.embed(coffee) is None
    assert likeness.compare(astronaut, coffee) is None
    assert likeness.compare(coffee, astronaut) is None


def test_same_person_versions_pass_thresholds(astronaut, astronaut_emb):
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    scores = {}
    for name, img in (("retouched", retouch(astronaut)), ("mirrored", mirrored), ("cartoon", cartoon(astronaut))):
        e = likeness.embed(img)
        assert e is not None, name
        d = likeness.distance(astronaut_emb, e)
        assert d < likeness.SAME_PERSON_DISTANCE, (name, d)
        scores[name] = likeness.likeness_score(d)
    assert scores["retouched"] > PHOTOREAL_THRESHOLD
    assert scores["mirrored"] > PHOTOREAL_THRESHOLD
    assert scores["cartoon"] > STYLISED_THRESHOLD
    # The stronger the stylisation, the lower the score.
    assert scores["retouched"] > scores["cartoon"]
    # compare() is the same computation end to end.
    assert likeness.compare(astronaut, cartoon(astronaut)) == pytest.approx(scores["cartoon"], abs=1e-6)


def test_other_person_scores_clearly_lower(astronaut, astronaut_emb, camera_emb):
    d_other = likeness.distance(astronaut_emb, camera_emb)
    assert d_other > likeness.SAME_PERSON_DISTANCE
    other = likeness.likeness_score(d_other)
    assert other < 0.5
    same = [
        likeness.likeness_score(likeness.distance(astronaut_emb, likeness.embed(img)))
        for img in (cartoon(astronaut), np.ascontiguousarray(astronaut[:, ::-1]))
    ]
    assert min(same) > other + 0.2


def test_given_box_matches_detected_face(astronaut, astronaut_emb):
    # A box from another detector (here a slightly looser square around the face) works directly.
    box = (172.0, 70.0, 276.0, 174.0)
    e = likeness.embed(astronaut, box)
    assert e is not None
    assert likeness.likeness_score(likeness.distance(astronaut_emb, e)) > PHOTOREAL_THRESHOLD
    with pytest.raises(ValueError):
        likeness.embed(astronaut, (10, 10, 10, 50))


def test_score_mapping_is_monotone_and_anchored():
    ds = np.linspace(0.0, 1.5, 61)
    s = [likeness.likeness_score(d) for d in ds]
    assert all(0.0 <= v <= 1.0 for v in s)
    assert all(a >= b for a, b in zip(s, s[1:]))
    assert s[0] == 1.0 and s[-1] == 0.0
    # dlib's same-person threshold sits exactly on the stylised default threshold.
    assert likeness.likeness_score(likeness.SAME_PERSON_DISTANCE) == pytest.approx(STYLISED_THRESHOLD)
    with pytest.raises(ValueError):
        likeness.likeness_score(-0.1)


def test_greyscale_and_rgba_inputs(astronaut, astronaut_emb):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    e = likeness.embed(grey)
    assert e is not None and likeness.distance(astronaut_emb, e) < likeness.SAME_PERSON_DISTANCE
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    assert likeness.distance(astronaut_emb, likeness.embed(rgba)) < 1e-5
