"""StyleApply, ``diffusion`` backend: Stable Diffusion img2img from a local model directory (SPEC §5).

The model is a diffusers ``StableDiffusionImg2ImgPipeline`` saved in a local
folder (config ``ACS_DIFFUSION_MODEL``; the layout written by
``save_pretrained``: ``model_index.json``, ``unet/``, ``vae/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/``).  It is loaded with
``local_files_only=True`` — the server never reaches the Hugging Face Hub,
whatever ``HF_HUB_OFFLINE`` says (when unset it is set to ``1`` for this
process before diffusers is imported, so no library component tries the
network either).

Device: CUDA in float16 when ``torch.cuda.is_available()``, else the CPU in
float32.  One pipeline per (resolved path) is cached per process and reused;
calls into a pipeline are serialised by its own lock (a pipeline's scheduler
holds per-call state).  ``torch`` and ``diffusers`` are imported inside the
functions, so ``import generation.diffusion`` costs nothing and works where
they are not installed; :class:`BackendUnavailable` (503) is raised only when
the backend is actually used.

Identity: an identity-preserving adapter cannot be fetched here.  If the model
directory holds an ``ip_adapter/`` subfolder with one IP-Adapter weight file
(``*.safetensors`` or ``*.bin``, e.g. ``ip-adapter-plus-face_sd15``) and the
matching CLIP vision encoder in ``ip_adapter/image_encoder/``, it is loaded with
``pipeline.load_ip_adapter`` and the input face itself is the image prompt, at
scale :data:`IP_ADAPTER_SCALE`.  Without it, identity is guarded only by the
QA likeness gate (:mod:`generation.likeness`), which re-scores every output
against the input photo and retries at lower ``strength``.

Input/output: (H, W, 3) uint8 RGB in, same shape and dtype out.  The image is
resized (aspect kept) so that its longer side is ``size`` (default: the
model's native resolution, ``unet.config.sample_size × vae_scale_factor``,
512 for SD 1.5), both sides rounded to a multiple of 8, denoised, and resized
back to the input size.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from schemas.errors import AcsError

__all__ = [
    "BackendUnavailable",
    "IP_ADAPTER_SCALE",
    "load_pipeline",
    "loaded_pipelines",
    "stylize_diffusion",
]

#: Weight of the face image prompt when an IP-Adapter is present (0 = off, 1 = full).
IP_ADAPTER_SCALE = 0.6
#: Working sizes are rounded to multiples of this (the SD VAE × UNet down-sampling).
_SIZE_MULTIPLE = 8

_CACHE_LOCK = threading.Lock()
_pipelines: dict[str, "_Loaded"] = {}


class BackendUnavailable(AcsError):
    """The diffusion backend cannot run here: missing packages, model files or device."""

    status = 503
    default_code = "BackendUnavailable"

    def __init__(self, message: str):
        super().__init__(message, code=self.default_code)


@dataclass(eq=False)
class _Loaded:
    """A loaded pipeline and what is needed to call it."""

    pipe: object
    device: str
    dtype: object
    native_size: int
    has_ip_adapter: bool
    lock: threading.Lock = field(default_factory=threading.Lock)


def _import_backend():
    """Import torch and diffusers (deferred: heavy, optional)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from diffusers import StableDiffusionImg2ImgPipeline
    except ImportError as exc:
        raise BackendUnavailable(
            "The diffusion style backend is not installed on this server (needs torch, diffusers "
            f"and transformers: {exc}). Use the procedural backend."
        ) from exc
    return torch, StableDiffusionImg2ImgPipeline


def _dtype_kwarg(dtype) -> dict:
    """``dtype=`` for diffusers that take it (``torch_dtype`` is deprecated there), else ``torch_dtype=``."""
    try:
        from diffusers.utils import deprecation_utils

        if hasattr(deprecation_utils, "_resolve_dtype"):
            return {"dtype": dtype}
    except ImportError:
        pass
    return {"torch_dtype": dtype}


def _resolve(model_dir: str | os.PathLike | None) -> Path:
    if not model_dir:
        raise BackendUnavailable(
            "The diffusion style backend has no model configured (set ACS_DIFFUSION_MODEL to a local "
            "Stable Diffusion model directory)."
        )
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise BackendUnavailable(f"The diffusion model directory {str(path)!r} does not exist.")
    if not (path / "model_index.json").is_file():
        raise BackendUnavailable(
            f"{str(path)!r} is not a diffusers model directory (model_index.json is missing)."
        )
    return path.resolve()


def _ip_adapter_weight(path: Path) -> str | None:
    """File name of the single IP-Adapter weight in ``path/ip_adapter``, or None when there is no adapter."""
    folder = path / "ip_adapter"
    if not folder.is_dir():
        return None
    weights = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if len(weights) != 1:
        raise BackendUnavailable(
            f"{str(folder)!r} must hold exactly one IP-Adapter weight file (.safetensors or .bin), "
            f"found {len(weights)}."
        )
    return weights[0]


def load_pipeline(model_dir: str | os.PathLike) -> object:
    """The img2img pipeline of ``model_dir``, loaded once per process (CUDA fp16, else CPU fp32).

    Raises :class:`BackendUnavailable` when torch/diffusers are missing or the
    directory is missing or not a loadable Stable Diffusion img2img model.
    """
    return _load(model_dir).pipe


def loaded_pipelines() -> dict[str, str]:
    """Resolved model path → device of every pipeline this process holds (for health reports)."""
    with _CACHE_LOCK:
        return {k: v.device for k, v in _pipelines.items()}


def _load(model_dir: str | os.PathLike) -> _Loaded:
    path = _resolve(model_dir)
    key = str(path)
    with _CACHE_LOCK:
        loaded = _pipelines.get(key)
        if loaded is not None:
            return loaded
        torch, Img2Img = _import_backend()
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()  # workers log; no tqdm bars on load
        cuda = torch.cuda.is_available()
        device, dtype = ("cuda", torch.float16) if cuda else ("cpu", torch.float32)
        weight = _ip_adapter_weight(path)
        try:
            pipe = Img2Img.from_pretrained(key, local_files_only=True, **_dtype_kwarg(dtype))
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise BackendUnavailable(f"The diffusion model in {key!r} could not be loaded: {exc}") from exc
        if weight is not None:
            try:
                pipe.load_ip_adapter(
                    key,
                    subfolder="ip_adapter",
                    weight_name=weight,
                    image_encoder_folder="image_encoder",
                    local_files_only=True,
                )
                pipe.set_ip_adapter_scale(IP_ADAPTER_SCALE)
            except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
                raise BackendUnavailable(f"The IP-Adapter in {key}/ip_adapter could not be loaded: {exc}") from exc
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
        loaded = _Loaded(pipe=pipe, device=device, dtype=dtype, native_size=native, has_ip_adapter=weight is not None)
        _pipelines[key] = loaded
        return loaded


def _work_size(h: int, w: int, longer: int) -> tuple[int, int]:
    """(height, width) with the longer side ≈ ``longer``, aspect kept, both multiples of 8 (≥ 8)."""
    s = longer / max(h, w)
    rh = max(_SIZE_MULTIPLE, int(round(h * s / _SIZE_MULTIPLE)) * _SIZE_MULTIPLE)
    rw = max(_SIZE_MULTIPLE, int(round(w * s / _SIZE_MULTIPLE)) * _SIZE_MULTIPLE)
    return rh, rw


def _resize(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    if rgb.shape[:2] == (h, w):
        return rgb
    shrink = h * w < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def stylize_diffusion(
    rgb: np.ndarray,
    *,
    prompt: str,
    model_dir: str | os.PathLike,
    strength: float = 0.5,
    steps: int = 20,
    guidance: float = 7.5,
    seed: int = 0,
    size: int | None = None,
    negative_prompt: str | None = None,
) -> np.ndarray:
    """Restyle an (H, W, 3) uint8 RGB image with img2img; returns (H, W, 3) uint8 RGB.

    prompt: the style description (style template + the player's TextPrompt).
    strength: 0..1, how far the image is noised before denoising (0 = unchanged,
        1 = ignore the input); this is the backend's style intensity.
    steps: scheduler steps for strength 1; img2img runs ``int(steps × strength)``
        of them (raised to at least 1).
    guidance: classifier-free guidance scale (≤ 1 disables guidance).
    seed: the noise seed; the same seed, input and model give the same output
        on the same device.
    size: working resolution of the longer side in pixels (default: the
        model's native size, 512 for SD 1.5).
    negative_prompt: what to steer away from (optional).

    Raises :class:`BackendUnavailable` (503) when the backend cannot run, and
    ``ValueError`` for a malformed image or out-of-range parameter.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    if not 0.0 < float(strength) <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    if int(steps) < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    if size is not None and int(size) < _SIZE_MULTIPLE:
        raise ValueError(f"size must be ≥ {_SIZE_MULTIPLE}, got {size}")

    loaded = _load(model_dir)
    import torch  # already imported by _load; cheap here

    h, w = img.shape[:2]
    wh, ww = _work_size(h, w, int(size) if size else loaded.native_size)
    work = np.ascontiguousarray(_resize(img, wh, ww))
    # img2img keeps int(steps × strength) steps; make that at least one.
    n_steps = max(int(steps), math.ceil(1.0 / float(strength)))

    kwargs = {}
    if loaded.has_ip_adapter:
        kwargs["ip_adapter_image"] = work
    image = torch.from_numpy(work).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    with loaded.lock:
        try:
            with torch.inference_mode():
                result = loaded.pipe(
                    prompt=prompt,
                    negative_prompt=negative_prompt,
                    image=image,
                    strength=float(strength),
                    num_inference_steps=n_steps,
                    guidance_scale=float(guidance),
                    generator=generator,
                    output_type="np",
                    **kwargs,
                )
        except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - needs a GPU
            torch.cuda.empty_cache()
            raise BackendUnavailable("The diffusion backend ran out of GPU memory; try again later.") from exc
    out = np.asarray(result.images[0], dtype=np.float32)
    out = (np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(_resize(out, h, w))
