"""The Khronos glTF-Validator (npm ``gltf-validator``, run with node) on avatars built
from three different real photos through the real pipeline (:mod:`tests.faces`), and a
negative control.

Needs node and the npm packages of tests/web: run ``bash tests/web/install.sh`` first
(the README's test command does).  Nothing is skipped: missing tooling fails the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest

from tests.faces import avatar_glbs, avatars

WEB = Path(__file__).resolve().parent / "web"
INSTALL_HINT = "run `bash tests/web/install.sh` from the repository root (npm packages + Debian chromium)"


def test_avatars_from_three_real_photos_pass_our_full_body_validation():
    from generation.avatar.template import load_template
    from meshes import validate_full_body

    built = avatars()
    for name, avatar in built.items():
        ok, reasons = validate_full_body(avatar)
        assert ok, f"{name}: {reasons}"
    # Different faces, different heads: the same head topology, and the front of the face
    # differs between people by more than 3 mm on a tenth of its vertices, 7 mm somewhere.
    heads = [m.parts["Head"].positions for m in built.values()]
    front = heads[0][:, 2] < np.median(heads[0][:, 2])  # model space faces -Z
    for i in range(len(heads)):
        for k in range(i + 1, len(heads)):
            assert heads[i].shape == heads[k].shape
            d = np.linalg.norm(heads[i][front] - heads[k][front], axis=1)
            assert np.percentile(d, 90) > 0.01 and d.max() > 0.025, (i, k)
    assert load_template().parts["Head"]["B"].shape[0] == len(heads[0])


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
    assert len(glbs) == 3
    assert len(set(glbs.values())) == 3, "different photos must give different avatars"
    paths = []
    for name, data in glbs.items():
        assert len(data) <= 3 * 1024 * 1024, f"{name}: the glb is {len(data):,} bytes, over 3 MiB"
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
        assert info["drawCallCount"] >= 16, info  # 15 body parts and the hair
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
