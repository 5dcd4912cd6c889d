"""A hairstyle chosen after the avatar was built (SetHairstyle): the hair accessory is
rebuilt as ordinary edit ops that every copy applies."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from client_sim.connection import RemoteError
from client_sim.sdk import GameClient, GameServer
from generation.avatar.hair import STYLES, build_hair, restyle_ops, spec_for_style
from meshes import apply_ops
from meshes.r15 import BONE_INDEX
from meshes.sync import SIDE_SERVICE, IdAllocator
from meshes.validation import validate_full_body
from schemas.methods import HAIR_STYLES
from server.services.avatars import MAX_HAIRSTYLE_OPS
from tests.faces import avatars

from .conftest import active_session, generate, new_experience, running_server


def _shape(positions: np.ndarray, triangles: np.ndarray) -> list:
    """Triangles as sorted corner positions, sorted (ids, winding start and orphan vertices aside)."""
    return sorted(tuple(sorted(map(tuple, t))) for t in np.asarray(positions)[triangles].round(5).tolist())


def test_every_style_can_follow_every_other():
    assert HAIR_STYLES == STYLES
    avatar = avatars()["astronaut"].copy()
    head = avatar.parts["Head"]
    built = [round(c * 255) for c in avatar.metadata["BuiltColors"]["Accessories"][0]["Color"]]
    order = ["ponytail", "bun", "ponytail", "curly_volume", "buzz", "bun", "long_straight", avatar.metadata["HairStyle"]]
    for style in order:
        hair = build_hair(spec_for_style(style, built), head.positions, head.triangles)
        ops = restyle_ops(avatar.parts["HairAccessory"], "HairAccessory", hair, IdAllocator.resume(SIDE_SERVICE, avatar),
                          BONE_INDEX["Head"])
        assert len(ops) <= MAX_HAIRSTYLE_OPS
        apply_ops(avatar, ops)
        fresh = avatar.copy()
        mesh = avatar.parts["HairAccessory"]
        assert mesh.triangle_count == len(hair.triangles), style
        assert _shape(mesh.positions, mesh.triangles) == _shape(hair.positions, hair.triangles), style
        assert np.array_equal(avatar.images["HairAccessory"].pixels[..., :3], hair.texture), style
        assert validate_full_body(avatar) == (True, []), style
        assert fresh.content_hash() == avatar.content_hash()
    assert mesh.vertex_count < 3 * len(hair.positions)  # the removed pieces' vertices are the only leftovers


async def test_set_hairstyle_reaches_every_copy(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv, GameServer(srv.url, key) as gs:
        sid = (await active_session(gs, "p"))["SessionId"]
        token = await gs.CreatePlayerToken("p")
        _, gen_id = await generate(gs, srv.url, token, astronaut_jpeg, sid)
        server_copy = await gs.LoadGeneratedAvatarAsync(gen_id)
        async with GameClient(srv.url, token) as client:
            client_copy = await client.LoadGeneratedAvatarAsync(gen_id)
            before = server_copy.avatar.parts["HairAccessory"].triangle_count
            _, back_before = server_copy.avatar.parts["HairAccessory"].GetBounds()
            with pytest.raises(RemoteError, match="mohawk") as refused:
                await client.SetHairstyle(client_copy, "mohawk")
            assert refused.value.code == "InvalidParams" and client_copy.version == server_copy.version
            # the player asks; both copies receive the same edits
            version = await client.SetHairstyle(client_copy, "ponytail")
            await server_copy.wait_version(version)
            assert server_copy.content_hash() == client_copy.content_hash()
            after = server_copy.avatar.parts["HairAccessory"]
            assert after.triangle_count > before
            _, back = after.GetBounds()
            print("hair's back (+Z, studs)", round(float(back_before[2]), 3), "->", round(float(back[2]), 3))
            assert back[2] > back_before[2] + 0.1  # the tail stands out behind the head
            # one hairstyle at a time per avatar: a second asked meanwhile is refused, typed
            results = await asyncio.gather(client.SetHairstyle(client_copy, "bun"),
                                           gs.SetHairstyle(server_copy, "buzz"), return_exceptions=True)
            refused = [r for r in results if isinstance(r, Exception)]
            assert len(refused) == 1 and refused[0].code == "HairstyleInProgress", results
            await server_copy.wait_version(max(r for r in results if isinstance(r, int)))
            assert server_copy.content_hash() == client_copy.content_hash()
            fresh = await gs.LoadGeneratedAvatarAsync(gen_id)
            assert fresh.content_hash() == server_copy.content_hash()
            ok, reasons = await gs.ValidateUGCFullBodyAsync(gen_id)
            assert ok, reasons
