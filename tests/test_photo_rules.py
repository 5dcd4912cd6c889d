"""Photo rules of Validate and FaceDetect on real photos (SPEC §5).

* coverage is the face's linear share of the frame: head-and-shoulders portraits pass,
  full-length and distant figures and group photos do not, whatever the photo's shape;
* a photo too dark to read is refused as ``TooDark``, not as covered features;
* a sideways or upside-down photo is refused as ``PhotoRotated``, with the way to turn it.

Photos: skimage's astronaut, matplotlib's Grace Hopper and the Ancelotti crop
(``tests.faces``), ultralytics' ``bus.jpg`` (full-length people in a street) and
the demo photo in ``client_sim/data``.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from generation.errors import FaceFeaturesNotVisible, FaceTooSmall, MultipleFaces, NoFaceDetected, PhotoError
from generation.errors import PhotoRotated, TooDark
from generation.face import detect_face, detect_faces
from generation.photo import load_photo
from generation.preview import make_preview
from generation.validate import FEATURE_POLYGONS, MIN_COVERAGE, face_coverage, validate_face
from schemas.errors import InputRejected
from tests.faces import jpeg, real_faces

ROOT = Path(__file__).resolve().parents[1]


def old_coverage(box, shape) -> float:
    """The previous measure: the head-and-shoulders square (2.5 × the box's longer side) against the shorter side."""
    s = max(box[2] - box[0], box[3] - box[1])
    return min(1.0, (2.5 * s / min(shape[0], shape[1])) ** 2)


def refusal(exc, code: str):
    assert isinstance(exc, PhotoError) and isinstance(exc, InputRejected)
    assert exc.code == code and exc.status == 422
    assert len(exc.message) > 30 and exc.message.endswith(".")


def outcome(rgb: np.ndarray) -> str:
    try:
        validate_face(rgb, detect_face(rgb))
    except PhotoError as e:
        return e.code
    return "pass"


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.submodule_search_locations, "ultralytics (for its sample photos) is missing"
    with Image.open(Path(next(iter(spec.submodule_search_locations))) / "assets" / "bus.jpg") as im:
        return np.asarray(im.convert("RGB"))


def paste(canvas_hw: tuple[int, int], photo: np.ndarray, scale: float, at: tuple[int, int]) -> np.ndarray:
    canvas = np.full((*canvas_hw, 3), 140, np.uint8)
    small = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    y, x = at
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


# ----------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "ancelotti"])
def test_head_and_shoulders_portraits_pass(name):
    rgb = real_faces()[name]
    v = validate_face(rgb, detect_face(rgb))
    assert v.coverage >= MIN_COVERAGE + 0.04  # 0.20, 0.36, 0.37: clear of the limit


def test_demo_photo_and_a_phone_shaped_portrait_pass():
    demo = load_photo((ROOT / "client_sim" / "data" / "astronaut.jpg").read_bytes())
    assert validate_face(demo, detect_face(demo)).coverage >= MIN_COVERAGE
    tall = np.full((683, 512, 3), 128, np.uint8)  # the astronaut in a 3:4 frame: 0.18
    tall[85:597] = real_faces()["astronaut"]
    assert validate_face(tall, detect_face(tall)).coverage >= MIN_COVERAGE


@pytest.mark.parametrize("crop", [(380, 900, 40, 250), (300, 960, 0, 300), (330, 920, 200, 370)],
                         ids=["210x520", "300x660", "170x590"])
def test_real_full_length_figure_cropped_narrow_is_too_small(bus, crop):
    # One standing man from bus.jpg, cropped head to feet: the shorter side is narrow, so the
    # previous measure called his face big enough (0.26, 0.18, 0.50); his share of the frame is ~0.1.
    y0, y1, x0, x1 = crop
    figure = np.ascontiguousarray(bus[y0:y1, x0:x1])
    face = detect_face(figure)
    assert old_coverage(face.bbox, figure.shape) >= MIN_COVERAGE
    assert face_coverage(face.bbox, figure.shape) < 0.12
    with pytest.raises(FaceTooSmall) as ei:
        validate_face(figure, face)
    refusal(ei.value, "FaceTooSmall")


@pytest.mark.parametrize("canvas_hw, scale, at", [((2000, 600), 1.0, (200, 44)), ((1080, 1920), 1.7, (0, 500))],
                         ids=["tall 600x2000", "wide 1920x1080"])
def test_portrait_pasted_small_on_a_tall_or_wide_canvas_is_too_small(canvas_hw, scale, at):
    # a long-distance shot: the portrait is a small part of a frame that is long in one direction
    canvas = paste(canvas_hw, real_faces()["astronaut"], scale, at)
    face = detect_face(canvas)
    assert old_coverage(face.bbox, canvas.shape) >= MIN_COVERAGE  # accepted before (0.19, 0.16)
    assert face_coverage(face.bbox, canvas.shape) < 0.13  # 0.07, 0.12
    with pytest.raises(FaceTooSmall) as ei:
        make_preview(jpeg(canvas), size=256)
    refusal(ei.value, "FaceTooSmall")


def test_real_street_photo_and_pasted_group_photo_are_refused(bus):
    assert outcome(bus) in ("MultipleFaces", "FaceTooSmall")
    assert all(face_coverage(box, bus.shape) < MIN_COVERAGE for _, box in detect_faces(bus))
    faces = real_faces()
    group = np.full((800, 1600, 3), 150, np.uint8)
    for i, name in enumerate(["astronaut", "grace_hopper", "ancelotti", "astronaut"]):
        photo = cv2.resize(faces[name], (300, 300), interpolation=cv2.INTER_AREA)
        group[250:550, 80 + i * 380:380 + i * 380] = photo
    found = detect_faces(group)
    assert len(found) >= 3
    assert all(face_coverage(box, group.shape) < MIN_COVERAGE for _, box in found)
    with pytest.raises((MultipleFaces, FaceTooSmall)):
        validate_face(group, detect_face(group))


# ----------------------------------------------------------------------------- too dark


@pytest.mark.parametrize("name, factor", [("astronaut", 0.08), ("grace_hopper", 0.2), ("ancelotti", 0.35)])
def test_dark_photo_is_refused_as_too_dark_not_as_covered(name, factor):
    dark = (real_faces()[name] * factor).astype(np.uint8)
    with pytest.raises(TooDark) as ei:
        validate_face(dark, detect_face(dark))
    refusal(ei.value, "TooDark")
    assert "dark" in ei.value.message and "covered" not in ei.value.message


def test_too_dark_through_the_pipeline_and_for_a_black_photo():
    with pytest.raises(TooDark):
        make_preview(jpeg((real_faces()["grace_hopper"] * 0.2).astype(np.uint8)), size=256)
    with pytest.raises(TooDark):
        detect_face(np.zeros((400, 400, 3), np.uint8))


def test_dark_face_whose_features_can_be_read_still_passes():
    dim = (real_faces()["astronaut"] * 0.35).astype(np.uint8)
    assert outcome(dim) == "pass"


# ----------------------------------------------------------------------------- turned photos


@pytest.mark.parametrize("k, words", [(1, "to the right (clockwise)"), (2, "upside down"),
                                      (3, "to the left (anticlockwise)")])
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "ancelotti"])
def test_turned_photo_is_refused_with_the_way_to_turn_it(name, k, words):
    # np.rot90 turns anticlockwise as displayed: k = 1 is put right by a clockwise quarter turn
    turned = np.ascontiguousarray(np.rot90(real_faces()[name], k))
    with pytest.raises(PhotoRotated) as ei:
        validate_face(turned, detect_face(turned))
    refusal(ei.value, "PhotoRotated")
    assert words in ei.value.message


def test_upside_down_upload_refused_through_the_pipeline():
    with pytest.raises(PhotoRotated):
        make_preview(jpeg(np.ascontiguousarray(real_faces()["astronaut"][::-1, ::-1])), size=256)


def _cover(img: np.ndarray, landmarks: np.ndarray, names, colour, pad: float) -> np.ndarray:
    out = img.copy()
    p = landmarks[[i for n in names for i in FEATURE_POLYGONS[n]], :2]
    (x0, y0), (x1, y1) = p.min(0), p.max(0)
    w, h = x1 - x0, y1 - y0
    cv2.rectangle(out, (int(x0 - pad * w), int(y0 - pad * h - 0.3 * w)),
                  (int(x1 + pad * w), int(y1 + pad * h + 0.3 * w)), colour, -1)
    return out


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "ancelotti"])
def test_covered_features_of_an_upright_photo_are_not_called_turned(name):
    # The 180° turn of such a photo can out-score it with the detector and be meshed as an upright
    # face; dlib's HOG detector is the witness that keeps these "covered", not "turned".
    rgb = real_faces()[name]
    lm = detect_face(rgb).landmarks
    for colour in ((0, 0, 0), (222, 172, 150), (240, 240, 240)):
        assert outcome(_cover(rgb, lm, ["mouth"], colour, 0.35)) == "FaceFeaturesNotVisible"
        assert outcome(_cover(rgb, lm, ["left_eye", "right_eye"], colour, 0.15)) == "FaceFeaturesNotVisible"


@pytest.mark.parametrize("degrees", [-35, 35])
def test_tilted_upright_faces_are_not_called_turned(degrees):
    for rgb in real_faces().values():
        h, w = rgb.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        assert outcome(cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_CUBIC,
                                      borderMode=cv2.BORDER_REFLECT101)) == "pass"


def test_photo_without_a_face_is_neither_turned_nor_dark():
    coffee = skdata.coffee()
    for k in range(4):
        with pytest.raises((NoFaceDetected, FaceFeaturesNotVisible)):
            detect_face(np.ascontiguousarray(np.rot90(coffee, k)))


def test_new_refusals_are_typed_and_cross_process_boundaries():
    for cls, code in ((TooDark, "TooDark"), (PhotoRotated, "PhotoRotated")):
        err = pickle.loads(pickle.dumps(cls()))
        assert type(err) is cls and err.code == code and err.status == 422
        assert err.to_wire() == {"code": code, "message": cls.default_message}
