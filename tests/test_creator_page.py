"""The creator page (``/creator/``): its document copy against the server's, its serving and its auth.

The page's document copy (``server/web/creator/doc.js``) runs here in node on a real avatar:
its content hash must equal :meth:`meshes.Avatar.content_hash` after the same batches, which
Python applies with its own code (:func:`meshes.ops.apply_ops`).  Needs node and the page's npm
packages (``npm ci --prefix server/web/creator``; the README's test command runs it through
``tests/web/install.sh``).  Nothing is skipped: missing tooling fails.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from pathlib import Path

import aiohttp
import msgpack
import numpy as np
import pytest

from client_sim.sdk import GameServer
from meshes.ops import apply_ops
from meshes.surface import surface
from server.web.pages import STATIC_DIR, VENDOR_DIR, VENDOR_PACKAGES
from tests.browser import Browser, silhouette
from tests.faces import avatars

from .conftest import new_experience, running_server

DOC_CHECK = Path(__file__).parent / "web" / "doc_check.mjs"


def _node_replay(tmp_path: Path, document: dict, version: int, batches: list, surfaces: tuple = ()) -> dict:
    missing = [p for p in VENDOR_PACKAGES if not (VENDOR_DIR / p / "package.json").is_file()]
    assert not missing, f"the page's npm packages are missing ({missing}): npm ci --prefix {STATIC_DIR}"
    case = tmp_path / "case.msgpack"
    case.write_bytes(msgpack.packb({"Document": document, "Version": version, "Batches": batches,
                                    "Surfaces": list(surfaces)}, use_bin_type=True))
    out = subprocess.run(["node", str(DOC_CHECK), str(case)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _edit_batches(avatar) -> list[list[dict]]:
    rng = random.Random(7)
    head = avatar.images["Head"]
    w, h = head.Size
    patch = bytes(rng.randrange(256) for _ in range(13 * 7 * 4))
    return [
        # colours and scales as a page sends them; an integral float and an int must hash alike
        [{"op": "SetProperty", "Property": "TorsoColor", "Value": [0.2, 0.4, 0.6]},
         {"op": "SetProperty", "Property": "HeadColor", "Value": [0.35, 0.2, 0.12]},
         {"op": "SetProperty", "Property": "ShirtColor", "Value": [0.9, 0.85, 0.1]},
         {"op": "SetProperty", "Property": "PantsColor", "Value": [0.05, 0.05, 0.05]},
         {"op": "SetProperty", "Property": "HeightScale", "Value": 1.05},
         {"op": "SetProperty", "Property": "HeadScale", "Value": 1}],
        # face paint: opaque and see-through discs, one clipped by the texture's edge
        [{"op": "DrawCircle", "Image": "Head", "Center": [w // 2, h // 2], "Radius": 9, "Color": [1, 0, 0],
          "Transparency": 0}],
        [{"op": "DrawCircle", "Image": "Head", "Center": [3, h - 2], "Radius": 11, "Color": [0.1, 0.8, 0.3],
          "Transparency": 0.35}],
        # a half-transparent overwrite, then blends over it (source-over onto alpha < 1)
        [{"op": "DrawRectangle", "Image": "Head", "Position": [40, 50], "Size": [30, 20], "Color": [0.3, 0.3, 0.9],
          "Transparency": 0.5, "CombineType": "Overwrite"},
         {"op": "DrawCircle", "Image": "Head", "Center": [55, 60], "Radius": 12, "Color": [0.9, 0.7, 0.1],
          "Transparency": 0.25},
         {"op": "DrawRectangle", "Image": "Head", "Position": [w - 5, 0], "Size": [50, 9], "Color": [0, 0, 0],
          "Transparency": 0.6}],
        [{"op": "WritePixelsBuffer", "Image": "Head", "Position": [100, 120], "Size": [13, 7], "Buffer": patch}],
        [{"op": "SetProperty", "Property": "Accessories", "Value": [
            {"AccessoryType": "Hair", "Instance": "HairAccessory", "IsLayered": False, "Color": [0.5, 0.25, 0.0]}]}],
    ]


def test_page_document_copy_hashes_like_the_server(tmp_path):
    avatar = avatars()["astronaut"].copy()
    wire = avatar.to_wire("PNG")  # what LoadGeneratedAvatarAsync sends
    batches = _edit_batches(avatar)
    expected = [avatar.content_hash()]
    for ops in batches:
        apply_ops(avatar, ops)
        expected.append(avatar.content_hash())
    assert len(set(expected)) == len(expected)  # every batch changes the document
    # relayed out of order: the copy buffers early versions and applies them in order
    relayed = [{"Version": v, "Ops": ops} for v, ops in enumerate(batches, start=1)]
    relayed[1], relayed[2] = relayed[2], relayed[1]
    parts = ("Head", "UpperTorso", "LowerTorso", "LeftUpperArm", "LeftUpperLeg", "LeftFoot", "HairAccessory")
    got = _node_replay(tmp_path, wire, 0, relayed, parts)
    # and what each part shows is what the glb export shows (within a rounding step)
    for part in parts:
        w, h = avatar.images[part].Size
        page = np.frombuffer((tmp_path / f"case.msgpack.{part}.rgba").read_bytes(), np.uint8).reshape(h, w, 4)
        assert (page[..., 3] == 255).all()
        assert np.abs(page[..., :3].astype(int) - surface(avatar, part)).max() <= 1, part
        if part != "LeftFoot":
            assert np.abs(page[..., :3].astype(int) - avatar.images[part].pixels[..., :3]).mean() > 5, part
    assert got["initial"] == expected[0]
    assert got["version"] == len(batches)
    assert got["after"][0] == expected[1]
    assert got["after"][1] == expected[1]  # version 3 arrived early: nothing applied yet
    assert got["after"][2] == expected[3]  # version 2 then the buffered 3
    assert got["after"][3:] == expected[4:]
    assert got["touched"][2] == ["Head"]


def test_page_document_copy_asks_for_a_snapshot_on_a_mesh_edit(tmp_path):
    avatar = avatars()["astronaut"]
    mesh = avatar.parts["Head"]
    vid = int(mesh.vertex_ids[0])
    ops = [{"op": "SetPosition", "Part": "Head", "VertexId": vid, "Position": [0.0, 5.0, 0.0]}]
    got = _node_replay(tmp_path, avatar.to_wire("PNG"), 4, [{"Version": 5, "Ops": ops}])
    assert got["after"] == ["NeedsSnapshot"]
    assert got["version"] == 4


def _glb_surface(glb: bytes, part: str) -> np.ndarray:
    import io

    from PIL import Image

    from meshes.gltf import load_glb, read_image

    g = load_glb(glb)
    index = next(k for k, i in enumerate(g.images) if i.name == f"{part}_Tex")
    return np.asarray(Image.open(io.BytesIO(read_image(g, index))).convert("RGB")).astype(float)


def test_published_glb_shows_the_colours_chosen_in_the_editor():
    """Skin, shirt, trousers and hair take the description's colours in the glb; paint stays paint."""
    from meshes import export_glb

    avatar = avatars()["astronaut"].copy()
    parts = ("LeftLowerArm", "UpperTorso", "LeftUpperLeg", "HairAccessory")
    before = {p: _glb_surface(export_glb(avatar), p) for p in parts}
    hair = [dict(a) for a in avatar.description["Accessories"]]
    hair[0]["Color"] = [0.55, 0.05, 0.05]
    ops = [{"op": "SetProperty", "Property": "Accessories", "Value": hair},
           {"op": "SetProperty", "Property": "ShirtColor", "Value": [0.1, 0.7, 0.2]},
           {"op": "SetProperty", "Property": "PantsColor", "Value": [0.9, 0.9, 0.85]},
           {"op": "DrawCircle", "Image": "LeftLowerArm", "Center": [64, 64], "Radius": 200, "Color": [1, 0, 1],
            "Transparency": 0}]
    ops += [{"op": "SetProperty", "Property": f"{bp}Color", "Value": [0.36, 0.22, 0.14]}
            for bp in ("Head", "Torso", "LeftArm", "RightArm", "LeftLeg", "RightLeg")]
    apply_ops(avatar, ops)
    glb = export_glb(avatar)
    mean = {p: tuple(np.round(_glb_surface(glb, p).reshape(-1, 3).mean(0))) for p in parts}
    print("mean rgb before", {p: tuple(np.round(v.reshape(-1, 3).mean(0))) for p, v in before.items()})
    print("mean rgb after", mean)
    assert mean["LeftLowerArm"] == (255, 0, 255)  # painted over: the new skin does not show through paint
    r, g, b = mean["UpperTorso"]
    assert g > 150 and g - r > 100 and g - b > 100  # green shirt
    assert min(mean["LeftUpperLeg"]) > 200  # light trousers
    r, g, b = mean["HairAccessory"]
    assert r - g > 60 > before["HairAccessory"].reshape(-1, 3).mean(0) @ [1, -1, 0]  # blond to dark red
    hand = _glb_surface(glb, "LeftHand").reshape(-1, 3).mean(0)
    assert np.abs(hand - [92, 56, 36]).max() < 12  # the new skin tone, with the texture's shading kept


# --------------------------------------------------------------------------- serving


class Live:
    def __init__(self, url: str, api_key: str):
        self.url, self.api_key = url, api_key


@pytest.fixture
async def live_server(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        yield Live(srv.url, key)


async def test_page_is_served_with_its_packages_and_a_strict_policy(live_server):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{live_server.url}/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/creator/"
        async with http.get(f"{live_server.url}/creator/") as r:
            assert r.status == 200, await r.text()
            page = await r.text()
            csp = r.headers["Content-Security-Policy"]
            assert r.headers["Referrer-Policy"] == "no-referrer"
        assert "script-src 'self' 'sha256-" in csp and "unsafe" not in csp
        assert '<script type="importmap">' in page and "http" not in page.split("</head>")[0].replace(
            "http-equiv", "")  # no CDN: every module comes from this server
        async with http.get(f"{live_server.url}/creator/vendor/three/build/three.module.js") as r:
            assert r.status == 200 and r.content_type in ("text/javascript", "application/javascript")
        async with http.get(f"{live_server.url}/creator/vendor/three/../../pages.py") as r:
            assert r.status == 404
        async with http.get(f"{live_server.url}/creator/doc.js") as r:
            assert r.status == 200 and r.content_type in ("text/javascript", "application/javascript")
        async with http.get(f"{live_server.url}/creator/package.json") as r:
            assert r.status == 404  # only the page's own files and its packages


async def test_websocket_takes_the_credential_as_a_subprotocol(live_server):
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{live_server.url}/v1/ws",
                                   protocols=("acs", f"acs.bearer.{live_server.api_key}")) as ws:
            assert ws.protocol == "acs"
            await ws.send_bytes(msgpack.packb({"id": 1, "method": "GetValidationRules", "params": {}}))
            frame = msgpack.unpackb((await ws.receive()).data)
            assert frame["id"] == 1 and "MeshRules" in frame["result"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            async with http.ws_connect(f"{live_server.url}/v1/ws", protocols=("acs", "acs.bearer.acs_wrong")):
                pass
        assert err.value.status == 401


# --------------------------------------------------------------------------- in chromium

def _silhouette(px: np.ndarray) -> np.ndarray:
    """The avatar's pixels (the canvas' rounded corners, 8 px, left out)."""
    return silhouette(px, margin=8)


def _pure(px: np.ndarray, channel: int) -> np.ndarray:
    """Pixels strongly of one primary (0 red, 1 green, 2 blue)."""
    others = [c for c in range(3) if c != channel]
    return (px[..., channel] > 120) & (px[..., channel] > 2.2 * px[..., others].max(axis=-1))


def _magenta(px: np.ndarray) -> np.ndarray:
    r, g, b = (px[..., c].astype(int) for c in range(3))
    return (r > 90) & (b > 90) & (g < 0.5 * np.minimum(r, b))


async def test_player_edits_live_with_the_game_server_and_publishes(tmp_path, executor, astronaut_jpeg):
    """The whole player flow in the page, the Python SDK as the game server."""
    key = await new_experience(tmp_path)
    photo = tmp_path / "selfie.jpg"
    photo.write_bytes(astronaut_jpeg)
    loop = asyncio.get_running_loop()
    async with running_server(tmp_path, executor) as srv, GameServer(srv.url, key) as gs, Browser() as page:
        link = await gs.CreateEditorLink("player-1")
        assert link["Path"].startswith("/creator/#token=") and "?" not in link["Path"]
        load_ms = await page.goto(srv.url + link["Path"])
        await page.wait("window.acsPage && window.acsPage.state.ready")
        assert await page.eval("document.getElementById('connection').textContent") == "Connected"

        ready = loop.create_future()
        await gs.RequestAvatarGenerationSessionAsync("player-1", ready.set_result)
        session_id = (await asyncio.wait_for(ready, 60))["SessionId"]
        asking = asyncio.create_task(gs.PromptSelectAvatarGenerationImageAsync(session_id))
        await page.wait("!document.getElementById('selfie').hidden")
        await page.set_files("#selfie-file", photo)
        await page.click("#selfie-send")
        file_id = await asyncio.wait_for(asking, 30)
        preview = await gs.GenerateAvatar2DPreviewAsync({"SessionId": session_id, "FileId": file_id})
        await page.wait("document.getElementById('preview').naturalWidth > 0")
        generation_id = await gs.GenerateAvatarAsync({"SessionId": session_id, "PreviewId": preview["PreviewId"]})
        # the page follows the game's progress events and opens the avatar by itself
        await page.wait("window.acsPage.version() !== null && window.acsPage.state.generationId !== null", 90)
        assert await page.eval("document.getElementById('progress').value") == 1
        copy = await gs.LoadGeneratedAvatarAsync(generation_id)
        assert await page.eval("window.acsPage.contentHash()") == copy.content_hash()

        # the avatar in the canvas: a standing figure covering a plausible share of it
        await page.wait("window.acsPage.state.copy && document.getElementById('view').width > 0")
        before = await page.shot("#view", tmp_path / "before.png")
        body = _silhouette(before)
        ys, xs = np.nonzero(body)
        print("canvas", before.shape, "avatar share", round(body.mean(), 3))
        assert 0.05 < body.mean() < 0.6
        assert ys.max() - ys.min() > 0.6 * body.shape[0]  # head to feet, most of the height
        assert ys.max() - ys.min() > 1.2 * (xs.max() - xs.min())  # taller than wide

        # the face texture shown for painting is what the head shows: opaque, the face's skin included
        see_through = await page.eval("(() => { const c = document.getElementById('face');"
                                      " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                                      " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] < 255; return n; })()")
        assert see_through == 0

        # game server -> page: a blue band over the face texture shows in the page's 3D view
        w, h = copy.avatar.images["Head"].Size
        t0 = time.perf_counter()
        version = await copy.edit([{"op": "DrawRectangle", "Image": "Head", "Position": [0, 0], "Size": [w, h],
                                    "Color": [0.0, 0.1, 1.0], "Transparency": 0.0}])
        await page.wait(f"window.acsPage.version() >= {version}")
        gs_to_page_ms = (time.perf_counter() - t0) * 1000
        assert await page.eval("window.acsPage.contentHash()") == copy.content_hash()
        blue = await page.shot("#view", tmp_path / "blue.png")
        print("blue pixels", int(_pure(before, 2).sum()), "->", int(_pure(blue, 2).sum()))
        assert _pure(blue, 2).sum() > _pure(before, 2).sum() + 300

        # page -> game server, by keyboard: paint a green dot on the face; the game server's copy gets it
        await page.fill("#paint-color", "#00ff00")
        await page.fill("#paint-size", "40")  # radius 80 on the 1024² texture
        await page.focus("#face")
        t0 = time.perf_counter()
        await page.press("#face", "Enter")
        await copy.wait_version(version + 1)
        page_to_gs_ms = (time.perf_counter() - t0) * 1000
        px = copy.avatar.images["Head"].pixels
        dot = (px[..., 0] == 0) & (px[..., 1] == 255) & (px[..., 2] == 0)
        assert 0.9 < dot.sum() / (np.pi * 80**2) < 1.1  # one disc of radius 80
        await page.wait(f"window.acsPage.version() >= {version + 1}")
        assert await page.eval("window.acsPage.contentHash()") == copy.content_hash()
        green = await page.shot("#view", tmp_path / "green.png")  # the brush starts on the middle of the face
        print("green pixels", int(_pure(blue, 1).sum()), "->", int(_pure(green, 1).sum()))
        assert _pure(green, 1).sum() > _pure(blue, 1).sum() + 100

        # a hair colour chosen in the page reaches the game server's description
        await page.fill("#hair-color", "#ff0000")
        await copy.wait_version(version + 2)
        hair = [a for a in copy.avatar.description["Accessories"] if a["AccessoryType"] == "Hair"]
        assert hair and hair[0]["Color"] == [1.0, 0.0, 0.0]
        await page.wait(f"window.acsPage.version() >= {version + 2}")
        red = await page.shot("#view", tmp_path / "red.png")
        print("red pixels", int(_pure(green, 0).sum()), "->", int(_pure(red, 0).sum()))
        assert _pure(red, 0).sum() > _pure(green, 0).sum() + 100

        # the page's shirt colour reaches the game server; the game server's skin colour shows in the page
        await page.fill("#shirt-color", "#00ff00")
        await copy.wait_version(version + 3)
        assert copy.avatar.description["ShirtColor"] == [0.0, 1.0, 0.0]
        await page.wait(f"window.acsPage.version() >= {version + 3}")
        shirt = await page.shot("#view", tmp_path / "shirt.png")
        print("green pixels", int(_pure(red, 1).sum()), "->", int(_pure(shirt, 1).sum()))
        assert _pure(shirt, 1).sum() > _pure(red, 1).sum() + 1000  # the whole shirt, not a dot
        t0 = time.perf_counter()
        version = await copy.edit([{"op": "SetProperty", "Property": f"{bp}Color", "Value": [0.85, 0.0, 0.85]}
                                   for bp in ("Head", "Torso", "LeftArm", "RightArm", "LeftLeg", "RightLeg")])
        await page.wait(f"window.acsPage.version() >= {version}")
        gs_colour_ms = (time.perf_counter() - t0) * 1000
        assert await page.eval("document.getElementById('skin-color').value") == "#d900d9"
        skin = await page.shot("#view", tmp_path / "skin.png")
        print("magenta pixels", int(_magenta(shirt).sum()), "->", int(_magenta(skin).sum()))
        assert _magenta(skin).sum() > _magenta(shirt).sum() + 300  # hands, arms, neck (the face is painted blue)

        # a hairstyle chosen in the page: the server rebuilds the hair as mesh edits for both copies,
        # and the page's 3D view takes the new shape
        hair_tris = "window.acsPage.viewer.parts.get('HairAccessory').geometry.index.count / 3"
        assert await page.eval(hair_tris) == copy.avatar.parts["HairAccessory"].triangle_count
        t0 = time.perf_counter()
        await page.select("#hairstyle", "long_straight")
        await page.wait(f"window.acsPage.state.reshaped > {version}", 60)
        restyle_ms = (time.perf_counter() - t0) * 1000
        version = await page.eval("window.acsPage.version()")
        await copy.wait_version(version)
        assert await page.eval("window.acsPage.contentHash()") == copy.content_hash()
        assert await page.eval(hair_tris) == copy.avatar.parts["HairAccessory"].triangle_count
        long_hair = await page.shot("#view", tmp_path / "long_hair.png")
        tips = [int(np.nonzero(_pure(px, 0).any(axis=1))[0].max()) for px in (skin, long_hair)]
        print("lowest red hair row", tips[0], "->", tips[1], "of", long_hair.shape[0])
        assert tips[1] > tips[0] + 0.03 * long_hair.shape[0]  # the red hair now falls to the shoulders

        # publishing: the page answers the prompt (keyboard: the Publish button has the focus)
        publishing = asyncio.create_task(gs.PromptCreateAvatarAsync(None, "player-1", copy))
        await page.wait("document.getElementById('publish').open")
        assert await page.eval("document.activeElement.id") == "publish-yes"
        await page.press("#publish-yes", "Enter")
        outcome = await asyncio.wait_for(publishing, 60)
        assert outcome["Result"] == "Success", outcome
        assert await page.eval("window.acsPage.state.errors") == []
        # the token left the address bar as soon as the page read it
        assert "token" not in await page.eval("location.href")

        # the creator's view lists the bundle: thumbnail, description, 3D, and the session at a glance
        await page.goto("about:blank")  # a new document, not a same-page fragment change
        await page.goto(f"{srv.url}/creator/#key={key}")
        await page.wait("window.acsPage.state.ready && window.acsPage.state.bundles === 1")
        card = f"#bundle-list li[data-bundle='{outcome['BundleId']}']"
        await page.wait(f"document.querySelector(\"{card} img\").naturalWidth > 0")
        text = await page.eval(f"document.querySelector(\"{card}\").textContent")
        assert "player-1" in text and "HumanoidDescription" in text
        await page.click(f"{card} button")  # View in 3D
        await page.wait(f"window.acsPage.state.viewing === '{outcome['BundleId']}'")
        await page.wait("true")
        published = _silhouette(await page.shot("#bundle-view", tmp_path / "published.png"))
        assert 0.05 < published.mean() < 0.7
        # player-1's session ended with its 3D allowance (Gen3D); another player's is active
        second = loop.create_future()
        await gs.RequestAvatarGenerationSessionAsync("player-2", second.set_result)
        await asyncio.wait_for(second, 30)
        await page.click("#studio-nav a[data-view=sessions]")
        await page.wait("window.acsPage.state.sessions === 1")
        table = await page.eval("document.getElementById('session-table').textContent")
        assert "player-2" in table and "player-1" not in table
        print(f"page load {load_ms} ms; edit game server -> page display {gs_to_page_ms:.0f} ms; "
              f"page -> game server copy {page_to_gs_ms:.0f} ms; skin colour game server -> page {gs_colour_ms:.0f} ms; "
              f"hairstyle chosen -> new shape shown {restyle_ms:.0f} ms")


async def test_profile_photo_page_makes_a_batch_of_previews(tmp_path, executor, astronaut_jpeg, coffee_jpeg):
    """A profile-photo platform's page: two photos, one style; a preview with its report, and a typed refusal."""
    key = await new_experience(tmp_path)
    (tmp_path / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (tmp_path / "coffee.jpg").write_bytes(coffee_jpeg)
    async with running_server(tmp_path, executor) as srv, Browser() as page:
        await page.goto(f"{srv.url}/creator/#key={key}&view=profile")
        await page.wait("window.acsPage.state.ready && !document.getElementById('profile').hidden")
        await page.set_files("#profile-files", [tmp_path / "astronaut.jpg", tmp_path / "coffee.jpg"])
        await page.eval("document.getElementById('profile-style').value = 'corporate_headshot'")
        await page.fill("#profile-prompt", "blue background")
        await page.click("#profile-send")
        await page.wait("window.acsPage.state.profileResults !== undefined", 120)
        await page.wait("document.querySelector('#profile-results li[data-index=\"0\"] img').naturalWidth > 0")
        results = await page.eval("window.acsPage.state.profileResults")
        assert "PreviewId" in results[0] and results[0]["style"] == "corporate_headshot"
        assert results[1]["error"]["code"] == "NoFaceDetected"
        first = await page.eval("document.querySelector('#profile-results li[data-index=\"0\"]').textContent")
        assert "Likeness" in first and "corporate_headshot" in first
        second = await page.eval("document.querySelector('#profile-results li[data-index=\"1\"]').textContent")
        assert "NoFaceDetected" in second
        shot = await page.shot("#profile-results li[data-index='0'] img", tmp_path / "profile.png")
        assert shot.shape[0] > 100 and shot.std() > 20  # a picture, not a blank
