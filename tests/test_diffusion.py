"""The ``diffusion`` StyleApply backend, run for real on a tiny img2img pipeline built, saved and reloaded on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data as skdata

from generation import diffusion
from generation.diffusion import BackendUnavailable, stylize_diffusion
from tests.tiny_diffusion import build_tiny_pipeline


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("diffusion") / "tiny-sd")


@pytest.fixture(scope="module")
def face64() -> np.ndarray:
    """The astronaut's face: a 130×130 crop around it, shrunk to 64×64 RGB uint8."""
    import cv2

    crop = skdata.astronaut()[60:190, 160:290]
    return cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA)


def test_tokenizer_is_a_real_bpe(tiny_model):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(tiny_model / "tokenizer"))
    assert len(tok) > 256
    ids = tok("the astronaut and the stars").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    # Merged pieces are used, so text is not just one token per byte.
    assert len(ids) - 2 < len("the astronaut and the stars".replace(" ", ""))
    index = json.loads((tiny_model / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionImg2ImgPipeline"


def test_stylize_runs_through_the_loader(tiny_model, face64):
    kw = dict(prompt="anime character, blue background", model_dir=str(tiny_model), steps=2, strength=0.6)
    out = stylize_diffusion(face64, seed=7, **kw)
    assert out.shape == face64.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - face64.astype(int)).mean() > 1.0
    # Same seed → same output; another seed → another output.
    again = stylize_diffusion(face64, seed=7, **kw)
    np.testing.assert_array_equal(out, again)
    other = stylize_diffusion(face64, seed=8, **kw)
    assert not np.array_equal(out, other)
    # The pipeline is loaded once per process and reused.
    assert diffusion.load_pipeline(str(tiny_model)) is diffusion.load_pipeline(tiny_model)
    assert diffusion.loaded_pipelines()[str(tiny_model.resolve())] == "cpu"


def test_non_square_input_and_explicit_size(tiny_model, face64):
    rect = np.ascontiguousarray(face64[:, :50])
    out = stylize_diffusion(
        rect, prompt="portrait", model_dir=str(tiny_model), steps=1, strength=0.5, size=40, guidance=1.0
    )
    assert out.shape == rect.shape and out.dtype == np.uint8


def test_missing_or_invalid_model_dir(tmp_path, face64):
    with pytest.raises(BackendUnavailable) as err:
        stylize_diffusion(face64, prompt="x", model_dir=str(tmp_path / "nope"))
    assert err.value.code == "BackendUnavailable" and err.value.status == 503
    assert "does not exist" in err.value.message
    with pytest.raises(BackendUnavailable):
        diffusion.load_pipeline(str(tmp_path))  # a folder, but no model_index.json
    index = {"_class_name": "StableDiffusionImg2ImgPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(BackendUnavailable):
        diffusion.load_pipeline(str(tmp_path))  # index present, weights missing
    with pytest.raises(BackendUnavailable):
        diffusion.load_pipeline("")


def test_bad_arguments_are_value_errors(tiny_model, face64):
    with pytest.raises(ValueError):
        stylize_diffusion(face64[:, :, 0], prompt="x", model_dir=str(tiny_model))
    with pytest.raises(ValueError):
        stylize_diffusion(face64, prompt="x", model_dir=str(tiny_model), strength=0.0)


def test_ip_adapter_subfolder_is_loaded_and_used(tmp_path, face64):
    from tests.tiny_diffusion import add_tiny_ip_adapter

    model = build_tiny_pipeline(tmp_path / "tiny-sd-ipa")
    add_tiny_ip_adapter(model)
    kw = dict(prompt="corporate headshot", model_dir=str(model), steps=2, strength=0.6, seed=3)
    out = stylize_diffusion(face64, **kw)
    assert out.shape == face64.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, stylize_diffusion(face64, **kw))
    pipe = diffusion.load_pipeline(str(model))
    kinds = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert any(k.startswith("IPAdapter") for k in kinds), kinds
    assert pipe.image_encoder is not None


def test_two_adapter_weights_are_refused(tmp_path):
    from tests.tiny_diffusion import add_tiny_ip_adapter

    model = build_tiny_pipeline(tmp_path / "tiny-sd-2ipa")
    folder = add_tiny_ip_adapter(model)
    (folder / "second.bin").write_bytes(b"\0")
    with pytest.raises(BackendUnavailable, match="exactly one"):
        diffusion.load_pipeline(str(model))


def test_missing_packages_raise_backend_unavailable(tmp_path, face64, monkeypatch):
    import sys

    (tmp_path / "model_index.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers → ImportError
    with pytest.raises(BackendUnavailable, match="not installed"):
        stylize_diffusion(face64, prompt="x", model_dir=str(tmp_path))
