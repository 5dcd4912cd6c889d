"""TextPrompt vocabulary, moderation and the procedural edits on a real photo."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from generation.align import align_face, eye_centres
from generation.edits import apply_edits
from generation.errors import PromptModerated, PromptTooLong
from generation.face import detect_face, person_mask
from generation.preview import make_preview, sample_colours
from generation.prompt import VOCABULARY, PromptSpec, parse_prompt


def test_colours_go_to_their_targets():
    spec = parse_prompt("red hair, light blue background")
    assert spec.hair is not None and spec.hair[0] > spec.hair[1] + 100
    (r, g, b), = spec.background
    assert b > r and b > g and min(r, g, b) > 100  # light blue
    assert spec.unused == ()
    spec = parse_prompt("a background in dark green please")
    (r, g, b), = spec.background
    assert g > r and g > b and g < 160 and spec.unused == ()
    spec = parse_prompt("Blue")
    assert len(spec.background) == 1 and spec.unused == ()
    spec = parse_prompt("blue and orange background with a wizard hat")
    assert len(spec.background) == 2 and spec.hat is not None and spec.unused == ("wizard",)
    spec = parse_prompt("green shirt with black sunglasses, smiling")
    assert spec.clothing[1] > spec.clothing[0] and spec.glasses[1] is True and spec.smile
    spec = parse_prompt("hat is red")
    assert spec.hat[0] > 150 and spec.hat[1] < 80
    assert parse_prompt(None) == PromptSpec() and parse_prompt("") == PromptSpec()


def test_scenes_and_neon_as_modifier():
    assert parse_prompt("studio").scene == "studio"
    assert parse_prompt("neon city").scene == "neon"
    spec = parse_prompt("neon pink bokeh background")
    assert spec.scene == "bokeh" and len(spec.background) == 1 and spec.unused == ()
    r, g, b = spec.background[0]
    assert r > 200 and g < 120  # saturated pink


def test_unusable_words_are_returned_in_order():
    spec = parse_prompt("purple dragon wings and sparkly boots")
    assert spec.unused == ("purple", "dragon", "wings", "sparkly", "boots")
    assert parse_prompt("dark").unused == ("dark",)
    # third background colour has no room
    assert parse_prompt("red, green and blue background").unused in (("blue",), ("red",))


def test_vocabulary_is_documented():
    import generation.prompt as mod

    for word in ("hair", "shirt", "glasses", "sunglasses", "hat", "smile", "studio", "bokeh", "sky", "gradient"):
        assert word in VOCABULARY and word in mod.__doc__


@pytest.mark.parametrize("text", ["fuck this", "FUUUCK", "sh1t hair", "n4ked", "nazi hat", "b00bs"])
def test_blocked_words_moderated(text):
    with pytest.raises(PromptModerated) as ei:
        parse_prompt(text)
    assert ei.value.code == "PromptModerated" and ei.value.status == 400


@pytest.mark.parametrize("text", ["sussex cocktail", "spicy grass", "bobby's classic hat", "Scunthorpe"])
def test_harmless_words_not_moderated(text):
    assert parse_prompt(text).unused  # accepted, and reported as words the renderer can't use


def test_prompt_length():
    parse_prompt("b" * 500)
    with pytest.raises(PromptTooLong):
        parse_prompt("b" * 501)


# ----------------------------------------------------------------------------- edits on the photo


@pytest.fixture(scope="module")
def aligned():
    a = skdata.astronaut()
    al = align_face(a, detect_face(a).landmarks, 512)
    mask = person_mask(al.image)
    skin, hair = sample_colours(al.image, al.landmarks, mask)
    return al, mask, skin, hair


def _hue_distance(rgb, target) -> float:
    lab = cv2.cvtColor(np.array([[rgb, target]], np.uint8), cv2.COLOR_RGB2Lab).astype(float)[0]
    return float(np.linalg.norm(lab[0, 1:] - lab[1, 1:]))


def test_hair_recolour_moves_sampled_hair_colour(aligned):
    al, mask, skin, hair = aligned
    spec = parse_prompt("blue hair")
    out, extra = apply_edits(al.image, al.landmarks, mask, spec, skin)
    _, new_hair = sample_colours(out, al.landmarks, mask)
    assert _hue_distance(new_hair, spec.hair) < _hue_distance(hair, spec.hair) - 20
    new_skin, _ = sample_colours(out, al.landmarks, mask)
    assert np.abs(np.array(new_skin) - np.array(skin)).max() <= 3  # the face is not recoloured
    assert extra is None


def test_clothing_recolour_changes_below_the_chin_only(aligned):
    al, mask, skin, _ = aligned
    out, _ = apply_edits(al.image, al.landmarks, mask, parse_prompt("red shirt"), skin)
    chin = int(al.landmarks[152, 1])
    diff = np.abs(out.astype(int) - al.image.astype(int)).sum(axis=2)
    assert diff[chin + 60:].mean() > 5 * max(diff[: int(al.landmarks[10, 1])].mean(), 0.5)
    below = out[chin + 60:][mask[chin + 60:] > 0.5].astype(int)
    assert (below[:, 0] - below[:, 2]).mean() > 40  # reddish now (the suit was white)


def test_sunglasses_darken_the_eyes_and_hat_covers_the_crown(aligned):
    al, mask, skin, _ = aligned
    out, extra = apply_edits(al.image, al.landmarks, mask, parse_prompt("sunglasses and a red hat"), skin)
    left, right = eye_centres(al.landmarks)
    for c in (left, right):
        x, y = int(c[0]), int(c[1])
        assert out[y - 3:y + 4, x - 3:x + 4].mean() < 45
    top = al.landmarks[10]
    patch = out[int(top[1]) - 40:int(top[1]) - 20, int(top[0]) - 10:int(top[0]) + 10].reshape(-1, 3).astype(int)
    assert (patch[:, 0] - patch[:, 1]).mean() > 60  # red crown
    assert extra is not None and extra[int(top[1]) - 30, int(top[0])] > 0.9


def test_smile_lifts_mouth_corners(aligned):
    al, mask, skin, _ = aligned
    out, _ = apply_edits(al.image, al.landmarks, mask, parse_prompt("smile"), skin)
    again = detect_face(out)  # independent: the mesh run on the edited pixels
    before = detect_face(al.image)
    lift = [before.landmarks[i, 1] - again.landmarks[i, 1] for i in (61, 291)]
    assert min(lift) > 0.5  # both corners moved up (pixels)
    eyes_y = int(min(eye_centres(al.landmarks)[0][1], eye_centres(al.landmarks)[1][1]))
    assert np.abs(out.astype(int) - al.image.astype(int))[:eyes_y].max() == 0  # a local warp only


def test_prompt_in_pipeline_reports_unused_words():
    buf = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(buf, "JPEG", quality=92)
    r = make_preview(buf.getvalue(), text_prompt="blue hair, glasses, flaming sword", size=256)
    warn = " ".join(r.report["validation_warnings"])
    assert "flaming" in warn and "sword" in warn and "glasses" not in warn and "hair" not in warn
    hair = np.array(r.hair_rgb)
    assert hair[2] > hair[0]  # the 3D builder gets the recoloured hair
