"""The generation jobs: what runs in a worker process, whichever engine runs it.

Each job takes and returns plain values (bytes, dicts, lists), so it can cross a
process boundary or a job engine.  Typed refusals (:class:`AcsError`) cross
intact.  :data:`JOBS` names them; services ask the ``JobQueue`` port for a job by
name, and an adapter (a local process pool, or a job engine and ``acs worker``)
runs it.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os

import msgpack
import numpy as np

from schemas.errors import AcsError

__all__ = ["JOBS", "GenerationFailed", "probe_job", "preview_job", "avatar_job", "export_job", "hairstyle_job",
           "style_probe_job", "style_measure_job", "style_fit_job", "pack_features", "unpack_features",
           "exit_with_parent", "warm_up"]

log = logging.getLogger(__name__)


class GenerationFailed(AcsError):
    status = 500
    default_code = "GenerationFailed"


#: How often the fallback watcher looks for a dead parent (seconds).
_PARENT_POLL_S = 1.0


def exit_with_parent() -> None:
    """Make this worker exit when the server process that started it dies.

    A ``kill -9`` of the server leaves no one to shut the pool down, and a worker holds
    its models (~570 MB).  On Linux, ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` has the kernel
    signal the worker when its parent goes; the parent may already be gone before that
    call, so ``getppid()`` is checked right after it.  A daemon thread that polls
    ``getppid()`` backs it up everywhere (and is the only guard off Linux).

    The kernel sends the death signal when the *thread* that started the worker exits;
    the pool starts workers from the thread that submits jobs (the event loop's), which
    lives as long as the pool does.
    """
    import sys
    import threading
    import time

    parent = multiprocessing.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # the running process's symbols: libc's prctl
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl(PR_SET_PDEATHSIG) unavailable: %s", exc)
    if os.getppid() != parent_pid:
        os._exit(1)  # the server died before the death signal was armed

    def watch() -> None:
        while True:
            time.sleep(_PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="acs-parent-watch", daemon=True).start()


def warm_up() -> None:
    """Worker start: exit with the server (see :func:`exit_with_parent`), then load
    the pipelines and face models once per worker process."""
    exit_with_parent()
    import generation.avatar_builder
    import generation.preview
    import meshes  # noqa: F401

    generation.avatar_builder.warm_up()
    # mediapipe's C++ side prints model set-up chatter straight to fd 2; keep it out of the
    # server's output while the models load (later warnings still show).
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            generation.preview.warm_up()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def pack_features(landmarks: np.ndarray, skin_rgb, hair_rgb) -> bytes:
    """What the 3D builder needs from a preview, as one msgpack blob."""
    lm = np.ascontiguousarray(landmarks, dtype="<f4")
    return msgpack.packb({"landmarks": lm.tobytes(), "shape": list(lm.shape),
                          "skin_rgb": list(skin_rgb), "hair_rgb": list(hair_rgb)})


def unpack_features(blob: bytes) -> dict:
    d = msgpack.unpackb(blob)
    d["landmarks"] = np.frombuffer(d["landmarks"], dtype="<f4").reshape(d["shape"])
    return d


def probe_job(data: bytes) -> dict:
    from generation.photo import probe_photo

    return probe_photo(data)


def preview_job(data: bytes, options: dict) -> dict:
    """``options`` are make_preview's keywords (text_prompt, style, size, backend, ...)."""
    from generation.preview import make_preview

    result = make_preview(data, **options)
    return {
        "png": result.png,
        "thumbnail": result.thumbnail_png,
        "report": result.report,
        "features": pack_features(result.landmarks, result.skin_rgb, result.hair_rgb),
    }


def avatar_job(preview_png: bytes, features: bytes, text_prompt: str | None, seed: int | None = None) -> dict:
    """``seed``: build_avatar's (None: the build's default seeds)."""
    from generation.avatar_builder import build_avatar
    from meshes import export_glb

    f = unpack_features(features)
    avatar = build_avatar(preview_png, landmarks=f["landmarks"], skin_rgb=tuple(f["skin_rgb"]),
                          hair_rgb=tuple(f["hair_rgb"]), text_prompt=text_prompt, seed=seed)
    return {
        # Stored with PNG textures: a quarter of the raw size, same content hash.
        "document": msgpack.packb(avatar.to_wire("PNG"), use_bin_type=True),
        "glb": export_glb(avatar),
        "description": avatar.description,
    }


def export_job(document: bytes) -> dict:
    """Validate and export an edit document (msgpack of Avatar.to_wire())."""
    from meshes import Avatar, export_glb, validate_full_body

    avatar = Avatar.from_wire(msgpack.unpackb(document, raw=False))
    ok, reasons = validate_full_body(avatar)
    return {"ok": ok, "reasons": reasons, "glb": export_glb(avatar) if ok else None}


def hairstyle_job(head: dict, hair: dict, style: str, color_rgb: list, first_id: int, head_bone: int) -> dict:
    """The edit ops that rebuild a hair accessory in ``style`` (generation.avatar.hair
    ``restyle_ops``).  ``head``: ``{"positions", "triangles"}`` as float32 / int32 bytes
    (model studs, rows); ``hair``: the HairAccessory's ``EditableMesh.to_wire()``;
    ``color_rgb``: the colour the hair texture is painted in (0..255, the built colour, so
    the accessory's ``Color`` keeps recolouring it); new ids are ``first_id``, +1, ..."""
    from generation.avatar.hair import build_hair, restyle_ops, spec_for_style
    from meshes import EditableMesh
    from schemas.errors import Conflict

    positions = np.frombuffer(head["positions"], np.float32).reshape(-1, 3)
    triangles = np.frombuffer(head["triangles"], np.int32).reshape(-1, 3)
    built = build_hair(spec_for_style(style, color_rgb), positions, triangles)
    try:
        ops = restyle_ops(EditableMesh.from_wire(hair), "HairAccessory", built, itertools.count(first_id).__next__,
                          head_bone)
    except ValueError as e:
        raise Conflict(f"This avatar's hair cannot be restyled: {e}.", code="HairNotRestylable") from None
    return {"ops": ops}


def style_probe_job(images: list, portraits: bool) -> list:
    """Check a custom style's example set before it is stored (generation.style_fit.probe_examples)."""
    from generation.style_fit import probe_examples

    return probe_examples([bytes(x) for x in images], portraits)


def style_measure_job(image: bytes, portraits: bool) -> dict:
    """One example's measurements (generation.style_fit.measure_example)."""
    from generation.style_fit import measure_example

    return measure_example(bytes(image), portraits)


def style_fit_job(measurements: list, name: str) -> dict:
    """The fitted style (generation.style_fit.fit_style) from every example's measurements."""
    from generation.style_fit import fit_style

    return fit_style(measurements, name)


#: Every job a ``JobQueue`` can run, by name.
JOBS = {"probe": probe_job, "preview": preview_job, "avatar": avatar_job, "export": export_job,
        "hairstyle": hairstyle_job, "style_probe": style_probe_job, "style_measure": style_measure_job,
        "style_fit": style_fit_job}
