"""The avatar glb in a real glTF client: three.js' GLTFLoader in headless Debian chromium
(WebGL via SwiftShader), driven by playwright-core (client_sim/render.py,
tests/web/viewer.html + viewer.js), plus the portrait/turntable thumbnail render.

Needs node, the npm packages of tests/web and chromium: run ``bash tests/web/install.sh``
first (the README's test command does).  Nothing is skipped: missing tooling fails.
"""

from __future__ import annotations

import numpy as np
import pygltflib
import pytest

from client_sim.render import INSTALL_HINT, ToolingMissing, find_tooling, render_portrait, render_turntable, view_glb
from meshes.r15 import PART_NAMES
from tests.browser import VIEWER_BACKGROUND, png_pixels, silhouette
from tests.faces import avatar_glbs

#: The expressions every avatar carries as glTF morph targets (Roblox FACS names).
REQUIRED_MORPHS = {"LeftEyeClosed", "RightEyeClosed", "JawDrop", "LeftLipCornerPuller", "RightLipCornerPuller",
                   "LeftLipCornerDown", "RightLipCornerDown", "LeftInnerBrowRaiser", "RightInnerBrowRaiser"}


@pytest.fixture(scope="module", autouse=True)
def tooling():
    try:
        return find_tooling()
    except ToolingMissing as e:
        pytest.fail(str(e), pytrace=False)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "ancelotti"])
def test_threejs_loads_the_rigged_avatar(name):
    out = view_glb(avatar_glbs()[name], [{"angle": 0, "view": "body", "size": 256}], timeout=60)
    rep = out["report"]
    print(name, {k: rep[k] for k in ("skinnedMeshes", "bones", "morphTargets", "meshes", "triangles", "vertices",
                                     "bboxMeters", "threeRevision", "glRenderer")}, out["timings_ms"])
    # the 15 R15 parts and the hair, each skinned to the same 17-bone skeleton
    assert rep["skinnedMeshes"] == 16
    assert set(rep["skinnedMeshNames"]) == {f"{p}_Geo" for p in PART_NAMES} | {"HairAccessory_Geo"}
    assert rep["bones"] >= 15
    assert min(rep["skeletonBones"]) >= 15
    assert {"Root", "HumanoidRootNode", "LowerTorso", "UpperTorso", "Head", "LeftLowerArm", "RightFoot"} <= set(
        rep["boneNames"])
    # an adult's height, standing up (+Y), arms out in an A-pose
    w, h, d = rep["bboxMeters"]
    assert 1.5 < h < 1.9 and h > w > d, rep["bboxMeters"]
    missing = REQUIRED_MORPHS - set(rep["morphTargets"])
    assert not missing, f"morph targets missing in three.js: {sorted(missing)} (has {rep['morphTargets']})"
    # it drew something
    assert silhouette(png_pixels(out["pngs"][0])).mean() > 0.02


def _with_morph(glb: bytes, name: str) -> bytes:
    """The glb with one extra morph target ``name`` (a small +Y shift) on the first mesh."""
    gltf = pygltflib.GLTF2.load_from_bytes(glb)
    prim = gltf.meshes[0].primitives[0]
    count = gltf.accessors[prim.attributes.POSITION].count
    delta = np.zeros((count, 3), "<f4")
    delta[:, 1] = 0.01
    blob = bytearray(gltf.binary_blob())
    blob += b"\0" * (-len(blob) % 4)
    gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=delta.nbytes,
                                                 target=pygltflib.ARRAY_BUFFER))
    blob += delta.tobytes()
    gltf.accessors.append(pygltflib.Accessor(bufferView=len(gltf.bufferViews) - 1, componentType=pygltflib.FLOAT,
                                             count=count, type=pygltflib.VEC3, min=[0.0, 0.01, 0.0],
                                             max=[0.0, 0.01, 0.0]))
    prim.targets = [{"POSITION": len(gltf.accessors) - 1}]
    gltf.meshes[0].weights = [0.0]
    gltf.meshes[0].extras = {**(gltf.meshes[0].extras or {}), "targetNames": [name]}
    gltf.buffers[0].byteLength = len(blob)
    gltf.set_binary_blob(bytes(blob))
    return b"".join(gltf.save_to_bytes())


def test_page_reports_morph_target_names():
    """Control for the morph assertion above: the page sees glTF targetNames."""
    rep = view_glb(_with_morph(avatar_glbs()["astronaut"], "ProbeMorph"), timeout=60)["report"]
    assert "ProbeMorph" in rep["morphTargets"]
    assert rep["skinnedMeshes"] >= 1


def test_portrait_render_is_not_blank():
    glb = avatar_glbs()["astronaut"]
    png = render_portrait(glb, size=512)
    px = png_pixels(png)
    assert px.shape == (512, 512, 3)
    sil = silhouette(px)
    # the avatar covers a plausible part of the frame, centred, and is not flat colour
    assert 0.05 < sil.mean() < 0.6, sil.mean()
    ys, xs = np.nonzero(sil)
    assert abs(xs.mean() - 256) < 40 and ys.min() < 100 and ys.max() > 400
    assert px[sil].std(axis=0).mean() > 10
    assert (px[~sil] == VIEWER_BACKGROUND).all(axis=-1).mean() > 0.95

    # headshot: the face (skin tones + dark eyes/mouth) fills the frame; differs from the body shot
    head = png_pixels(render_portrait(glb, size=256, view="head"))
    hs = silhouette(head)
    assert hs.mean() > 0.3
    assert head[hs].std(axis=0).mean() > 10

    # turntable (one browser load): the side view is narrower, the back differs from the front,
    # all keep the silhouette's height
    views = [png_pixels(p) for p in render_turntable(glb, n=4, size=256)]
    assert len(views) == 4
    sils = [silhouette(v) for v in views]
    assert sils[1].mean() < 0.8 * sils[0].mean() and sils[3].mean() < 0.8 * sils[0].mean()
    assert abs(sils[2].mean() - sils[0].mean()) < 0.2 * sils[0].mean()
    top = np.nonzero(sils[0].any(axis=1))[0].min()
    head = np.zeros_like(sils[0])
    head[top:top + 36] = True  # the head: about the top 0.2 of the 5.5-stud avatar
    head &= sils[0] | sils[2]
    assert np.abs(views[2] - views[0])[head].mean() > 15, "the back of the head looks like the face"
    for sl in sils:
        rows = np.nonzero(sl.any(axis=1))[0]
        assert abs(rows.max() - ys.max() / 2) < 12 and abs(rows.min() - ys.min() / 2) < 12


def test_tooling_message_names_the_install_script(monkeypatch, tmp_path):
    monkeypatch.setenv("ACS_WEB_DIR", str(tmp_path))
    with pytest.raises(ToolingMissing, match="tests/web/install.sh"):
        find_tooling()
    assert "install.sh" in INSTALL_HINT
