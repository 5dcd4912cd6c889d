"""The surface of a part: its texture, recoloured where the description's colours changed
(meshes.surface)."""

from __future__ import annotations

import numpy as np

from meshes.surface import BASE_BODY, BASE_NONE, BASE_SHIRT, decode_bases, encode_bases, surface
from tests.faces import avatars


def test_with_the_colours_as_built_the_surface_is_the_texture():
    avatar = avatars()["grace_hopper"]
    for part, image in avatar.images.items():
        assert np.array_equal(surface(avatar, part), image.pixels[..., :3]), part
    assert np.array_equal(decode_bases(encode_bases(np.arange(12, dtype=np.uint8).reshape(3, 4))),
                          np.arange(12).reshape(3, 4))


def test_a_new_skin_colour_recolours_skin_only():
    """Skin texels take the new colour with their grain; the shoes, the shirt, the face's
    eyes and paint keep theirs."""
    avatar = avatars()["grace_hopper"].copy()
    codes = decode_bases(avatar.metadata["Bases"]["LeftUpperArm"])
    assert set(np.unique(codes)) == {BASE_BODY, BASE_SHIRT}
    assert set(np.unique(decode_bases(avatar.metadata["Bases"]["LeftFoot"]))) == {BASE_NONE}
    parts = ("LeftUpperArm", "LeftFoot", "Head")
    before = {p: surface(avatar, p).astype(int) for p in parts}
    avatar.images["LeftUpperArm"].DrawCircle((10, 10), 6, [0.0, 1.0, 0.0], 0.0)
    for bp in ("Head", "LeftArm", "LeftLeg"):
        avatar.set_property(f"{bp}Color", [0.2, 0.1, 0.05])
    after = {p: surface(avatar, p).astype(int) for p in parts}
    assert np.array_equal(after["LeftFoot"], before["LeftFoot"])
    shirt = codes == BASE_SHIRT
    shirt[:20, :20] = False
    assert np.array_equal(after["LeftUpperArm"][shirt], before["LeftUpperArm"][shirt])
    assert (after["LeftUpperArm"][10, 10] == [0, 255, 0]).all()
    skin = after["LeftUpperArm"][codes == BASE_BODY]
    assert np.abs(skin.mean(0) - [51, 26, 13]).max() < 6 and skin.std(0).max() > 0.3  # new tone, grain kept
    alpha = avatar.images["Head"].pixels[..., 3]
    own = alpha == 255
    print("head texels keeping their colour", round(own.mean(), 4))
    assert 0.01 < own.mean() < 0.35  # the eyes, teeth and tongue, not the skin
    assert np.array_equal(after["Head"][own], before["Head"][own])
    assert after["Head"][alpha == 0].mean() < 0.5 * before["Head"][alpha == 0].mean()
