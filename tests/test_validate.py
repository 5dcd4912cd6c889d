"""Validate on real photos: coverage, multiple faces, covered features, pose (SPEC §5)."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from generation.errors import (
    FaceFeaturesNotVisible,
    FacePoseTooExtreme,
    FaceTooSmall,
    MultipleFaces,
    NoFaceDetected,
)
from generation.face import Face, detect_face, detect_faces
from generation.preview import make_preview
from generation.validate import (
    FEATURE_POLYGONS,
    MIN_COVERAGE,
    estimate_yaw,
    face_coverage,
    validate_face,
)
from schemas.errors import InputRejected


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


@pytest.fixture(scope="module")
def astro_face(astronaut):
    return detect_face(astronaut)


def refusal(exc, code):
    assert isinstance(exc, InputRejected) and exc.code == code and exc.status == 422
    assert len(exc.message) > 20 and exc.message.endswith(".")


# ----------------------------------------------------------------------------- coverage


def test_astronaut_portrait_passes_and_close_selfie_covers_more(astronaut, astro_face):
    v = validate_face(astronaut, astro_face)
    assert v.face_count == 1 and v.coverage >= MIN_COVERAGE and v.warnings == []
    close = cv2.resize(astronaut[0:260, 100:360], (520, 520), interpolation=cv2.INTER_CUBIC)
    close_face = detect_face(close)
    assert face_coverage(close_face.bbox, close.shape) > v.coverage
    validate_face(close, close_face)  # a close selfie passes too


def test_coverage_is_the_faces_linear_share_of_the_whole_frame(astronaut, astro_face):
    # padding the portrait to 3:4 (a phone selfie's shape) adds frame, so the share falls by √(3/4),
    # and the portrait still passes
    tall = np.full((683, 512, 3), 128, np.uint8)
    tall[85:597] = astronaut
    tall_face = detect_face(tall)
    assert face_coverage(tall_face.bbox, tall.shape) == pytest.approx(
        face_coverage(astro_face.bbox, astronaut.shape) * math.sqrt(512 / 683), rel=0.05)
    assert validate_face(tall, tall_face).coverage >= MIN_COVERAGE
    # a frame narrower than 9:16 counts as 9:16: padding to 1:3 measures like padding to 9:16
    box = (100.0, 100.0, 200.0, 200.0)
    assert face_coverage(box, (1536, 512, 3)) == pytest.approx(100 / math.sqrt(1536 * 1536 * 9 / 16))
    assert face_coverage(box, (512, 1536, 3)) == face_coverage(box, (1536, 512, 3))
    assert face_coverage(box, (512, 512, 3)) == pytest.approx(100 / 512)
    assert face_coverage((0.0, 0.0, 600.0, 600.0), (512, 512, 3)) == 1.0


def test_distant_figure_is_too_small(astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    canvas = np.full((768, 768, 3), 140, np.uint8)
    canvas[256:512, 256:512] = small
    face = detect_face(canvas)  # the face is found ...
    assert face.face_count == 1
    assert face_coverage(face.bbox, canvas.shape) < MIN_COVERAGE  # ... but too small
    with pytest.raises(FaceTooSmall) as ei:
        make_preview(jpeg(canvas))
    refusal(ei.value, "FaceTooSmall")


def test_tiled_four_face_composite_is_refused(astronaut):
    tile = np.tile(astronaut, (2, 2, 1))
    faces = detect_faces(tile)
    assert len(faces) == 4
    # each face alone would also be too small for the frame
    assert all(face_coverage(box, tile.shape) < MIN_COVERAGE for _, box in faces)
    with pytest.raises(MultipleFaces) as ei:
        make_preview(jpeg(tile))
    refusal(ei.value, "MultipleFaces")
    assert "4 faces" in ei.value.message


def test_sixteen_face_group_found_by_tiles_and_refused(astronaut):
    group = np.tile(astronaut, (4, 4, 1))  # 2048², faces ~100 px: too small for one whole-frame pass
    assert detect_faces(group, tiles=False) == []
    faces = detect_faces(group)
    assert 12 <= len(faces) <= 16
    with pytest.raises(MultipleFaces):
        make_preview(jpeg(group))


# ----------------------------------------------------------------------------- multiple faces


def test_two_comparable_faces_refused(astronaut):
    pair = np.hstack([astronaut, astronaut[:, ::-1]])
    with pytest.raises(MultipleFaces) as ei:
        validate_face(pair, detect_face(pair))
    refusal(ei.value, "MultipleFaces")


def test_small_second_face_is_a_warning(astronaut):
    canvas = np.full((512, 768, 3), 200, np.uint8)
    canvas[:, :512] = astronaut
    canvas[128:384, 512:] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    v = validate_face(canvas, detect_face(canvas))
    assert v.face_count == 2
    assert any("2 faces" in w for w in v.warnings)


def test_no_face():
    with pytest.raises(NoFaceDetected):
        detect_face(skdata.coffee())


# ----------------------------------------------------------------------------- covered features


def _cover(img: np.ndarray, landmarks: np.ndarray, names, colour, pad=0.35) -> np.ndarray:
    out = img.copy()
    idx = [i for n in names for i in FEATURE_POLYGONS[n]]
    p = landmarks[idx, :2]
    (x0, y0), (x1, y1) = p.min(0), p.max(0)
    w, h = x1 - x0, y1 - y0
    cv2.rectangle(out, (int(x0 - pad * w), int(y0 - pad * h - 0.3 * w)), (int(x1 + pad * w), int(y1 + pad * h + 0.3 * w)),
                  colour, -1)
    return out


@pytest.mark.parametrize("colour", [(0, 0, 0), (222, 172, 150), (240, 240, 240)])
def test_covered_mouth_refused(astronaut, astro_face, colour):
    covered = _cover(astronaut, astro_face.landmarks, ["mouth"], colour)
    with pytest.raises(FaceFeaturesNotVisible) as ei:
        validate_face(covered, detect_face(covered))
    refusal(ei.value, "FaceFeaturesNotVisible")
    assert "mouth" in ei.value.message


@pytest.mark.parametrize("colour", [(0, 0, 0), (128, 128, 128)])
def test_covered_eyes_refused(astronaut, astro_face, colour):
    covered = _cover(astronaut, astro_face.landmarks, ["left_eye", "right_eye"], colour, pad=0.15)
    with pytest.raises(FaceFeaturesNotVisible) as ei:
        make_preview(jpeg(covered), size=256)
    assert "eyes" in ei.value.message


def test_blurred_and_dark_faces_keep_their_features(astronaut):
    for img in (cv2.GaussianBlur(astronaut, (0, 0), 3), (astronaut * 0.35).astype(np.uint8)):
        v = validate_face(img, detect_face(img))
        assert min(v.feature_spread.values()) > 10


# ----------------------------------------------------------------------------- pose


def _yaw_landmarks(landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate 3D landmarks about the vertical axis through their centroid (x right, z away from camera)."""
    lm = landmarks.astype(np.float64)
    c = lm.mean(axis=0)
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    return ((lm - c) @ rot.T + c).astype(np.float32)


def test_frontal_astronaut_has_small_yaw(astro_face):
    assert abs(estimate_yaw(astro_face.landmarks)) < 15


@pytest.mark.parametrize("degrees", [-60, -25, 25, 60])
def test_synthetic_landmark_rotation_measured(astro_face, degrees):
    base = estimate_yaw(astro_face.landmarks)
    assert estimate_yaw(_yaw_landmarks(astro_face.landmarks, degrees)) == pytest.approx(base + degrees, abs=3)


def test_synthetic_profile_refused(astronaut, astro_face):
    turned = Face(bbox=astro_face.bbox, score=astro_face.score, face_count=1,
                  landmarks=_yaw_landmarks(astro_face.landmarks, 60), detections=astro_face.detections)
    with pytest.raises(FacePoseTooExtreme) as ei:
        validate_face(astronaut, turned)
    refusal(ei.value, "FacePoseTooExtreme")


def test_real_near_profile_refused():
    # skimage's cameraman looks into his camera, his face turned away (nose past the cheek line)
    cam = np.dstack([skdata.camera()] * 3)
    crop = cv2.resize(cam[40:240, 180:380], (400, 400), interpolation=cv2.INTER_CUBIC)
    with pytest.raises(FacePoseTooExtreme):
        make_preview(jpeg(crop), size=256)
