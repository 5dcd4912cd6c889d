"""The Khronos glTF-Validator (npm ``gltf-validator``, run with node) on avatars built
from two different real photos through the real pipeline, and a negative control.

Photos: skimage's astronaut (Eileen Collins) and matplotlib's sample photo of Grace
Hopper (``matplotlib.cbook.get_sample_data("grace_hopper.jpg")``; matplotlib comes with
mediapipe).  Each goes ``make_preview`` → ``build_avatar`` (with the preview's landmarks,
skin and hair colours) → ``export_glb``.

Needs node and the npm packages of tests/web: run ``bash tests/web/install.sh`` first
(the README's test command does).  Nothing is skipped: missing tooling fails the test.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from PIL import Image

WEB = Path(__file__).resolve().parent / "web"
INSTALL_HINT = "run `bash tests/web/install.sh` from the repository root (npm packages + Debian chromium)"


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def photos() -> dict[str, bytes]:
    """Two real, different people."""
    from matplotlib import cbook
    from skimage import data as skdata

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    return {"astronaut": _jpeg(skdata.astronaut()), "grace_hopper": _jpeg(hopper)}


@functools.lru_cache(maxsize=None)
def avatars():
    """name → the Avatar built from that photo (cached for the session)."""
    from generation.avatar_builder import build_avatar
    from generation.preview import make_preview

    out = {}
    for name, photo in photos().items():
        prev = make_preview(photo, size=512)
        out[name] = build_avatar(prev.png, landmarks=prev.landmarks, skin_rgb=prev.skin_rgb,
                                 hair_rgb=prev.hair_rgb, text_prompt="red shirt, blue jeans")
    return out


@functools.lru_cache(maxsize=None)
def avatar_glbs() -> dict[str, bytes]:
    """name → glb bytes of the avatar built from that photo (tests/test_threejs.py uses it too)."""
    from meshes import export_glb

    return {name: export_glb(avatar) for name, avatar in avatars().items()}


def test_avatars_from_two_real_photos_pass_our_full_body_validation():
    from meshes import validate_full_body

    built = avatars()
    for name, avatar in built.items():
        ok, reasons = validate_full_body(avatar)
        assert ok, f"{name}: {reasons}"
    # Two faces, two heads: the same head topology, but a tenth of its vertices sit more
    # than 0.02 studs apart (the face and the skull fitted to its outline).
    a, b = (m.parts["Head"].positions for m in built.values())
    assert a.shape == b.shape
    assert np.percentile(np.linalg.norm(a - b, axis=1), 90) > 0.02


def khronos_validate(paths: list[Path], timeout: float = 60.0) -> list[dict]:
    """Run tests/web/validate.js (gltf-validator) on glb files; one report dict per file
    (numErrors, numWarnings, numInfos, numHints, messages, info)."""
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules" / "gltf-validator" / "package.json").is_file():
        pytest.fail(f"node or the npm package gltf-validator is missing -- {INSTALL_HINT}", pytrace=False)
    proc = subprocess.run([node, str(WEB / "validate.js"), *map(str, paths)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"validate.js failed: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def _print_issues(rep: dict) -> None:
    print(f"{Path(rep['file']).name}: validator {rep['validatorVersion']}: {rep['numErrors']} errors, "
          f"{rep['numWarnings']} warnings, {rep['numInfos']} infos, {rep['numHints']} hints")
    for m in rep["messages"]:
        print(f"  [{('error', 'warning', 'info', 'hint')[m['severity']]}] {m['code']} {m.get('pointer', '')}: "
              f"{m['message']}")


def test_generated_avatars_have_no_validator_errors(tmp_path):
    glbs = avatar_glbs()
    assert len(glbs) == 2
    a, b = glbs.values()
    assert a != b, "two different photos must give different avatars"
    paths = []
    for name, data in glbs.items():
        p = tmp_path / f"{name}.glb"
        p.write_bytes(data)
        paths.append(p)
    reports = khronos_validate(paths)
    for rep in reports:
        _print_issues(rep)
    for rep in reports:
        errors = [m for m in rep["messages"] if m["severity"] == 0]
        assert rep["numErrors"] == 0, f"{rep['file']}: {errors}"
        info = rep["info"]
        assert info["hasSkins"] and info["hasTextures"] and info["hasDefaultScene"], info
        assert info["drawCallCount"] >= 15, info
        assert info["maxInfluences"] <= 4, info
        assert all(r["storage"] in ("glb", "buffer-view") for r in info["resources"]), "external resources"


def _break_weights(glb: bytes) -> bytes:
    """The same glb with the first primitive's WEIGHTS_0 halved (rows sum to 0.5)."""
    gltf = pygltflib.GLTF2.load_from_bytes(glb)
    acc = gltf.accessors[gltf.meshes[0].primitives[0].attributes.WEIGHTS_0]
    assert acc.componentType == pygltflib.FLOAT
    bv = gltf.bufferViews[acc.bufferView]
    blob = bytearray(gltf.binary_blob())
    start = (bv.byteOffset or 0) + (acc.byteOffset or 0)
    w = np.frombuffer(blob, "<f4", count=acc.count * 4, offset=start).copy()
    blob[start:start + w.nbytes] = (w * 0.5).astype("<f4").tobytes()
    gltf.set_binary_blob(bytes(blob))
    return b"".join(gltf.save_to_bytes())


def test_validator_catches_a_broken_glb(tmp_path):
    """Negative control: the check can fail."""
    good = avatar_glbs()["astronaut"]
    bad = tmp_path / "bad_weights.glb"
    bad.write_bytes(_break_weights(good))
    truncated = tmp_path / "truncated.glb"
    truncated.write_bytes(good[: len(good) // 2])
    rep_bad, rep_trunc = khronos_validate([bad, truncated])
    _print_issues(rep_bad)
    assert rep_bad["numErrors"] > 0
    assert "ACCESSOR_WEIGHTS_NON_NORMALIZED" in {m["code"] for m in rep_bad["messages"] if m["severity"] == 0}
    assert rep_trunc["numErrors"] > 0
