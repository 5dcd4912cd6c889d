"""Build a tiny, randomly initialised StableDiffusionImg2ImgPipeline on disk (test fixture).

It has the exact layout of a real Stable Diffusion 1.x model directory
(``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/``) so the production loader (:func:`generation.diffusion.load_pipeline`)
is exercised unchanged, but every network is a few hundred kilobytes: a 2-level
UNet with 32/64 channels, a 2-level VAE (spatial factor 2, so 64² pixels ↔ 32²
latents) and a 2-layer, 32-wide CLIP text encoder.  Built from configs with a
fixed torch seed; nothing is downloaded.

The tokenizer is a real byte-level CLIP BPE: the 256 ``bytes_to_unicode``
symbols, their ``</w>`` word-final variants, a few merges and the two special
tokens, written as ``vocab.json`` + ``merges.txt`` and loaded back with
``CLIPTokenizer.from_pretrained`` (transformers 5's constructor ignores
``vocab_file``/``merges_file`` arguments, ``from_pretrained`` does not).
"""

from __future__ import annotations

import json
from pathlib import Path

#: A few English merges so that common prompt words become multi-byte tokens.
_MERGES = ["t h", "th e</w>", "a n", "an d</w>", "i n", "o n</w>", "e r</w>", "s t"]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable unicode character table (256 entries)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def write_tokenizer(directory: Path) -> None:
    """Write a byte-level CLIP BPE tokenizer (vocab.json, merges.txt, configs) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    for merge in _MERGES:
        merged = merge.replace(" ", "")
        if merged not in tokens:
            tokens.append(merged)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            }
        )
    )


def build_tiny_pipeline(directory: str | Path, seed: int = 0) -> Path:
    """Create the tiny img2img pipeline and ``save_pretrained`` it into ``directory``; returns the path."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = Path(directory)
    tok_dir = directory.parent / (directory.name + "-tokenizer-src")
    write_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir))

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            projection_dim=32,
            vocab_size=len(tokenizer) + 8,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=64,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(directory))
    return directory


def add_tiny_ip_adapter(directory: str | Path, num_tokens: int = 4, seed: int = 0) -> Path:
    """Add a tiny random IP-Adapter (``ip_adapter/`` weight + CLIP vision encoder) to a tiny pipeline.

    Same file layout and key names as the published ``ip-adapter_sd15.safetensors``
    (``image_proj.*`` projection to ``num_tokens`` image tokens, and
    ``ip_adapter.{k}.to_k_ip/to_v_ip`` for every cross-attention layer, k = 1, 3, 5, ...),
    sized for the tiny UNet.  Returns the ``ip_adapter`` folder.
    """
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    directory = Path(directory)
    unet = UNet2DConditionModel.from_pretrained(str(directory / "unet"))
    channels = list(unet.config.block_out_channels)
    cross = int(unet.config.cross_attention_dim)
    torch.manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    key = 1
    for name in unet.attn_processors:
        if not name.endswith("attn2.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = channels[::-1][int(name.split(".")[1])]
        else:
            hidden = channels[int(name.split(".")[1])]
        state[f"ip_adapter.{key}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.02
        state[f"ip_adapter.{key}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.02
        key += 2
    clip_dim = 32
    state["image_proj.proj.weight"] = torch.randn(cross * num_tokens, clip_dim) * 0.02
    state["image_proj.proj.bias"] = torch.zeros(cross * num_tokens)
    state["image_proj.norm.weight"] = torch.ones(cross)
    state["image_proj.norm.bias"] = torch.zeros(cross)
    folder = directory / "ip_adapter"
    folder.mkdir(exist_ok=True)
    save_file(state, str(folder / "ip-adapter_tiny.safetensors"))
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            projection_dim=clip_dim,
            image_size=32,
            patch_size=4,
        )
    )
    encoder.save_pretrained(str(folder / "image_encoder"))
    return folder
