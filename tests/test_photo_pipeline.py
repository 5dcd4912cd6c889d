"""Tests of the 2D preview pipeline on real photos (skimage's astronaut and coffee)."""

from __future__ import annotations

import io
import math
import struct
import time
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from generation.align import align_face, eye_centres
from generation.errors import (
    ImageTooLarge,
    ImageTooSmall,
    InvalidImage,
    NoFaceDetected,
    PhotoError,
    PromptTooLong,
    UnknownStyle,
    UnsupportedImageFormat,
)
from generation.face import detect_face
from generation.photo import MAX_PIXELS, load_photo, probe_photo
from generation.preview import STYLES, make_preview
from schemas.errors import InputRejected


def encode(rgb: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def eye_angle_deg(landmarks: np.ndarray) -> float:
    left, right = eye_centres(landmarks)
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def rotate_about_centre(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise (as displayed) about the centre, same canvas (corners reflected)."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut) -> bytes:
    return encode(astronaut, "JPEG", quality=92)


@pytest.fixture(scope="module")
def preview(astronaut_jpeg):
    return make_preview(astronaut_jpeg, size=512)


# ----------------------------------------------------------------------------- happy path


def test_astronaut_preview_report_and_png(preview, astronaut):
    rep = preview.report
    assert rep["face_detected"] is True
    assert rep["face_count"] == 1
    assert 0.0 <= rep["input_quality_score"] <= 1.0
    # same person: the stylised output keeps the likeness above the stylised threshold
    assert rep["likeness_threshold"] == 0.60 and rep["likeness_score"] >= 0.60
    assert rep["style"] == "game_avatar"
    assert rep["validation_warnings"] == []
    for stage in ("load", "detect", "validate", "align", "style", "background", "enhance", "qa", "save", "total"):
        assert rep["timings_ms"][stage] >= 0.0
    assert rep["timings_ms"]["total"] >= rep["timings_ms"]["style"] + rep["timings_ms"]["qa"]
    assert rep["size"] == 512 and rep["retries"] == 0 and rep["face_coverage"] >= 0.15

    out = decode_png(preview.png)
    assert out.shape == (512, 512, 3)
    # Not just the photo resized: aligned, cropped and stylised.
    plain = cv2.resize(astronaut, (512, 512), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - plain.astype(int)).mean() > 15


def test_astronaut_landmarks_levelled_and_centred(preview):
    lm = preview.landmarks
    assert lm.shape == (478, 3) and lm.dtype == np.float32
    assert abs(eye_angle_deg(lm)) < 2.0
    # face in the middle of the frame, eyes above the centre, chin below it
    left, right = eye_centres(lm)
    assert 0.4 < (left[0] + right[0]) / 2 < 0.6
    assert 0.3 < (left[1] + right[1]) / 2 < 0.5
    assert 0.6 < lm[152, 1] < 0.9  # chin
    assert lm[:, :2].min() > 0.0 and lm[:, :2].max() < 1.0
    # z is in the scale of x: the face's depth range is a fraction of its width
    depth = float(lm[:, 2].max() - lm[:, 2].min())
    width = float(lm[:, 0].max() - lm[:, 0].min())
    assert 0.1 * width < depth < 1.5 * width


def test_sampled_colours_are_plausible(preview):
    skin, hair = np.array(preview.skin_rgb), np.array(preview.hair_rgb)
    # the astronaut's skin is light and warm (R > G > B); her hair is darker than her skin
    assert skin[0] > skin[1] > skin[2] and skin.mean() > 120
    assert hair.mean() < skin.mean() - 20


def test_detect_face_returns_478_landmarks_inside_the_box(astronaut):
    face = detect_face(astronaut)
    assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
    assert face.face_count == 1 and 0.5 <= face.score <= 1.0
    x0, y0, x1, y1 = face.bbox
    nose = face.landmarks[1]
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1


def test_aligned_crop_has_level_eyes_when_detected_again(astronaut):
    face = detect_face(astronaut)
    aligned = align_face(astronaut, face.landmarks, 512)
    assert aligned.image.shape == (512, 512, 3)
    again = detect_face(aligned.image)  # independent measurement on the output pixels
    assert abs(eye_angle_deg(again.landmarks)) < 2.0
    # the carried landmarks agree with the re-detected ones
    err = np.linalg.norm(again.landmarks[:, :2] - aligned.landmarks[:, :2], axis=1)
    assert np.median(err) < 0.02 * 512


def test_rotated_photo_is_levelled(astronaut):
    upright_roll = align_face(astronaut, detect_face(astronaut).landmarks, 512).roll_deg
    tilted = rotate_about_centre(astronaut, 20.0)
    face = detect_face(tilted)
    aligned = align_face(tilted, face.landmarks, 512)
    # counter-clockwise display rotation = negative angle in y-down image coordinates
    assert aligned.roll_deg == pytest.approx(upright_roll - 20.0, abs=3.0)
    assert abs(eye_angle_deg(detect_face(aligned.image).landmarks)) < 2.0
    result = make_preview(encode(tilted), style="corporate_headshot")
    assert abs(eye_angle_deg(result.landmarks)) < 2.0


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_applied(astronaut, orientation, preview):
    upright = Image.fromarray(astronaut)
    # 6: the viewer must rotate 90° clockwise, so the stored pixels are turned counter-clockwise
    stored = upright.transpose(Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=92, exif=exif)
    data = buf.getvalue()

    rgb = load_photo(data)
    assert rgb.shape == astronaut.shape
    assert np.abs(rgb.astype(int) - astronaut.astype(int)).mean() < 6
    assert probe_photo(data) == {"format": "jpeg", "width": 512, "height": 512}

    result = make_preview(data)
    assert np.median(np.abs(result.landmarks[:, :2] - preview.landmarks[:, :2])) < 0.01


def test_probe_reports_oriented_size(astronaut):
    wide = np.ascontiguousarray(astronaut[:300, :])  # 512 wide, 300 high
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(wide).save(buf, "JPEG", exif=exif)
    assert probe_photo(buf.getvalue()) == {"format": "jpeg", "width": 300, "height": 512}
    assert probe_photo(encode(wide, "PNG")) == {"format": "png", "width": 512, "height": 300}
    assert probe_photo(encode(wide, "WEBP"))["format"] == "webp"


def test_webp_input(astronaut):
    result = make_preview(encode(astronaut, "WEBP", quality=90), size=256)
    assert decode_png(result.png).shape == (256, 256, 3)
    assert result.report["face_count"] == 1


def test_all_styles_render_differently(astronaut_jpeg):
    outs = {s: decode_png(make_preview(astronaut_jpeg, style=s, size=256).png).astype(int) for s in STYLES}
    assert {"game_avatar", "corporate_headshot", "anime_character", "editorial_portrait"} <= set(outs)
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(outs[a] - outs[b]).mean() > 3, (a, b)


def test_style_stage_is_fast(astronaut_jpeg):
    make_preview(astronaut_jpeg)  # warm
    for style in STYLES:
        assert make_preview(astronaut_jpeg, style=style).report["timings_ms"]["style"] < 1000


def test_dominant_face_is_used_and_count_reported(astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 768, 3), 200, np.uint8)
    canvas[:, :512] = astronaut
    canvas[128:384, 512:] = small
    face = detect_face(canvas)
    assert face.face_count == 2
    assert face.landmarks[1, 0] < 512  # nose of the big face, not the small one
    result = make_preview(encode(canvas))
    assert result.report["face_count"] == 2
    assert any("2 faces" in w for w in result.report["validation_warnings"])


# ----------------------------------------------------------------------------- conversions


def test_8bit_greyscale_jpeg(astronaut):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rgb = load_photo(encode(grey, "JPEG", quality=95))
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    assert (rgb[:, :, 0] == rgb[:, :, 2]).all()
    assert np.abs(rgb[:, :, 1].astype(int) - grey.astype(int)).mean() < 3


def test_16bit_greyscale_png(astronaut):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    im16 = Image.fromarray(grey.astype(np.uint16) * 257)
    assert im16.mode.startswith("I")
    buf = io.BytesIO()
    im16.save(buf, "PNG")
    rgb = load_photo(buf.getvalue())
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb[:, :, 0].astype(int) - grey.astype(int)).max() <= 1
    assert make_preview(buf.getvalue(), size=256).report["face_detected"]


def test_rgba_png_composited_over_white(astronaut):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:50, :50, 3] = 0  # transparent corner
    rgb = load_photo(encode(rgba))
    assert rgb.shape == (512, 512, 3)
    assert (rgb[:50, :50] == 255).all()
    assert np.array_equal(rgb[100:], astronaut[100:])
    assert make_preview(encode(rgba), size=256).report["face_detected"]


def test_cmyk_jpeg_and_palette_png(astronaut):
    cmyk = io.BytesIO()
    Image.fromarray(astronaut).convert("CMYK").save(cmyk, "JPEG", quality=95)
    rgb = load_photo(cmyk.getvalue())
    assert rgb.shape == (512, 512, 3)
    assert np.abs(rgb.astype(int) - astronaut.astype(int)).mean() < 8
    pal = io.BytesIO()
    Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(pal, "PNG")
    rgb = load_photo(pal.getvalue())
    assert rgb.shape == (512, 512, 3)
    assert np.abs(rgb.astype(int) - astronaut.astype(int)).mean() < 8


def test_max_side_downscales_but_min_side_uses_declared_size(astronaut):
    big = cv2.resize(astronaut, (1600, 1600), interpolation=cv2.INTER_CUBIC)
    rgb = load_photo(encode(big, "JPEG"), max_side=600)
    assert max(rgb.shape[:2]) == 600
    assert load_photo(encode(astronaut, "JPEG"), max_side=100, min_side=200).shape[:2] == (100, 100)


# ----------------------------------------------------------------------------- refusals


def _assert_refusal(exc: PhotoError, code: str, status: int):
    assert isinstance(exc, InputRejected)
    assert exc.code == code and exc.status == status
    assert exc.message and exc.to_wire() == {"code": code, "message": exc.message}


def test_coffee_has_no_face():
    with pytest.raises(NoFaceDetected) as ei:
        make_preview(encode(skdata.coffee(), "JPEG"))
    _assert_refusal(ei.value, "NoFaceDetected", 422)
    assert "face" in ei.value.message.lower()


@pytest.mark.parametrize(
    "payload",
    [b"hello, this is not an image at all" * 20, b"GIF89a" + bytes(600), b"BM" + bytes(600), b""],
)
def test_non_image_bytes_unsupported(payload):
    with pytest.raises(UnsupportedImageFormat) as ei:
        load_photo(payload)
    _assert_refusal(ei.value, "UnsupportedImageFormat", 415)
    with pytest.raises(UnsupportedImageFormat):
        probe_photo(payload)


@pytest.mark.parametrize("fraction", [0.3, 0.7, 0.98])
def test_truncated_jpeg_invalid(astronaut_jpeg, fraction):
    cut = astronaut_jpeg[: int(len(astronaut_jpeg) * fraction)]
    with pytest.raises(InvalidImage) as ei:
        probe_photo(cut)
    _assert_refusal(ei.value, "InvalidImage", 422)
    with pytest.raises(InvalidImage):
        load_photo(cut)
    with pytest.raises(InvalidImage):
        make_preview(cut)


def test_truncated_png_and_corrupt_header_invalid(astronaut):
    png = encode(astronaut)
    with pytest.raises(InvalidImage):
        load_photo(png[: len(png) // 2])
    with pytest.raises(InvalidImage):
        load_photo(b"\xff\xd8\xff" + bytes(1000))


def test_small_crop_too_small(astronaut):
    crop = np.ascontiguousarray(astronaut[40:190, 150:300])  # 150 × 150
    with pytest.raises(ImageTooSmall) as ei:
        load_photo(encode(crop, "JPEG"))
    _assert_refusal(ei.value, "ImageTooSmall", 422)
    with pytest.raises(ImageTooSmall):
        probe_photo(encode(crop))


def test_payload_over_10mb_too_large(astronaut_jpeg):
    payload = astronaut_jpeg + bytes(10 * 1024 * 1024 + 1 - len(astronaut_jpeg))
    assert len(payload) > 10 * 1024 * 1024
    with pytest.raises(ImageTooLarge) as ei:
        load_photo(payload)
    _assert_refusal(ei.value, "ImageTooLarge", 413)
    with pytest.raises(ImageTooLarge):
        make_preview(payload)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


@pytest.mark.parametrize("width, height", [(10000, 6000), (30000, 30000)])
def test_decompression_bomb_refused_before_decoding(width, height):
    # A huge greyscale image is declared but the IDAT holds only a few bytes, so decoding
    # would fail with InvalidImage (or allocate the pixels): the refusal must come from the header.
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(100))) + _png_chunk(b"IEND", b"")
    with pytest.raises(ImageTooLarge) as ei:
        load_photo(bomb)
    _assert_refusal(ei.value, "ImageTooLarge", 413)
    with pytest.raises(ImageTooLarge):
        probe_photo(bomb)


def _zero_png(width: int, height: int) -> bytes:
    """An all-zero 8-bit RGB PNG, deflated row block by row block (never the whole raw image in memory)."""
    deflate = zlib.compressobj(1)
    block = bytes((1 + 3 * width) * 250)
    idat = b"".join(deflate.compress(block[: (1 + 3 * width) * min(250, height - y)]) for y in range(0, height, 250))
    idat += deflate.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _lying_jpeg(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOF0/SOF2) claiming ``width × height``; the scan data unchanged."""
    d = bytearray(jpeg)
    sof = min(i for i in (d.find(b"\xff\xc0"), d.find(b"\xff\xc2")) if i >= 0)
    struct.pack_into(">HH", d, sof + 5, height, width)
    return bytes(d)


def _refused_fast(data: bytes, error: type, code: str, status: int):
    """Both entry points refuse ``data`` with ``error`` in well under a second, with no big allocation."""
    for fn in (probe_photo, load_photo):
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            with pytest.raises(error) as ei:
                fn(data)
            elapsed = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        _assert_refusal(ei.value, code, status)
        assert elapsed < 0.5 and peak < 20 * 1024 * 1024, (fn.__name__, elapsed, peak)


def test_pixel_cap_fits_a_24_megapixel_phone_photo_and_refuses_a_49_megapixel_header():
    assert 5712 * 4284 <= MAX_PIXELS <= 25_000_000 < 7000 * 7000


def test_zero_png_bomb_7000_squared_refused_from_the_header():
    bomb = _zero_png(7000, 7000)  # 147 MB of pixels (~1 GB to process) in well under 1 MB
    assert len(bomb) < 1024 * 1024
    _refused_fast(bomb, ImageTooLarge, "ImageTooLarge", 413)


def test_jpeg_header_claiming_7000_squared_over_512_squared_data_refused(astronaut_jpeg):
    _refused_fast(_lying_jpeg(astronaut_jpeg, 7000, 7000), ImageTooLarge, "ImageTooLarge", 413)


@pytest.mark.parametrize("kind", ["baseline", "progressive", "restart markers", "junk after EOI"])
def test_jpeg_header_larger_than_its_data_is_invalid(astronaut, kind):
    # Under the pixel cap, libjpeg fills what the data do not cover with grey and only warns: the
    # upload must still be refused as incomplete, at probe time and at load time.
    opts = {"progressive": {"progressive": True}, "restart markers": {"restart_marker_blocks": 4}}.get(kind, {})
    lying = _lying_jpeg(encode(astronaut, "JPEG", quality=92, **opts), 2000, 1500)
    if kind == "junk after EOI":
        lying += bytes(64)
    with pytest.raises(InvalidImage) as ei:
        probe_photo(lying)
    _assert_refusal(ei.value, "InvalidImage", 422)
    with pytest.raises(InvalidImage):
        load_photo(lying, max_side=2048)


def test_png_whose_data_stop_before_its_declared_height_is_invalid(astronaut):
    raw = b"".join(b"\x00" + row.tobytes() for row in astronaut)  # 512 rows, header says 1024
    ihdr = struct.pack(">IIBBBBB", 512, 1024, 8, 2, 0, 0, 0)
    short = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw))
             + _png_chunk(b"IEND", b""))
    with pytest.raises(InvalidImage):
        probe_photo(short)
    with pytest.raises(InvalidImage):
        load_photo(short)


@pytest.mark.parametrize("fmt, opts", [("JPEG", {}), ("JPEG", {"progressive": True}),
                                       ("JPEG", {"restart_marker_blocks": 3}), ("PNG", {})])
def test_flat_fill_coloured_bottom_is_not_mistaken_for_missing_data(astronaut, fmt, opts):
    # A bottom edge of exactly mid-grey (JPEG) or black (PNG): the value a decoder fills missing data with.
    canvas = np.full((600, 500, 3), 128 if fmt == "JPEG" else 0, np.uint8)
    canvas[:300, :300] = astronaut[100:400, 100:400]
    data = encode(canvas, fmt, **opts)
    assert probe_photo(data) == {"format": fmt.lower(), "width": 500, "height": 600}
    assert load_photo(data).shape == (600, 500, 3)


# ----------------------------------------------------------------------------- prompt and style


def test_unused_prompt_words_reported_and_background_applied(astronaut_jpeg):
    result = make_preview(astronaut_jpeg, text_prompt="green background with sparkly unicorn horns")
    warnings = " ".join(result.report["validation_warnings"])
    for word in ("sparkly", "unicorn", "horns"):
        assert word in warnings
    assert "green" not in warnings and "background" not in warnings
    out = decode_png(result.png).astype(int)
    corner = out[:40, :40].reshape(-1, 3).mean(axis=0)  # top-left corner is backdrop, not astronaut
    assert corner[1] > corner[0] + 30 and corner[1] > corner[2] + 30


def test_prompt_over_500_chars_refused(astronaut_jpeg):
    make_preview(astronaut_jpeg, text_prompt="b" * 500, size=256)  # exactly 500 is allowed
    with pytest.raises(PromptTooLong) as ei:
        make_preview(astronaut_jpeg, text_prompt="blue " * 101)
    _assert_refusal(ei.value, "PromptTooLong", 400)


def test_unknown_style_refused(astronaut_jpeg):
    with pytest.raises(UnknownStyle) as ei:
        make_preview(astronaut_jpeg, style="oil_painting")
    _assert_refusal(ei.value, "UnknownStyle", 400)
    assert "game_avatar" in ei.value.message
