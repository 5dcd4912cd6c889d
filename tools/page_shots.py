"""Regenerate the README's pictures of the creator page: a real server, the Python SDK as the game
server, the page in headless chromium (tests/browser.py) as the player, then the experience's views.

    .venv/bin/python tools/page_shots.py [--out docs]

Writes ``page_editor.jpg`` (the player's editor after a live edit from each side),
``page_creator.jpg`` (published avatars) and ``page_profile.jpg`` (two profile photos, one refused),
and prints the page's load time and the edit-to-display times.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from client_sim.sdk import GameServer  # noqa: E402
from server.admin import create_experience  # noqa: E402
from server.config import Config  # noqa: E402
from server.web.runner import RunningServer  # noqa: E402
from tests.browser import Browser  # noqa: E402
from tests.faces import jpeg, real_faces  # noqa: E402


def _jpg(png: Path, out: Path) -> None:
    with Image.open(png) as im:
        im.convert("RGB").save(out, "JPEG", quality=85)
    print("wrote", out)


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = {name: tmp / f"{name}.jpg" for name in ("astronaut", "grace_hopper")}
        for name, path in photos.items():
            path.write_bytes(jpeg(real_faces()[name]))
        (tmp / "coffee.jpg").write_bytes(jpeg(__import__("skimage.data").data.coffee()))
        cfg = Config(data_dir=tmp / "data", port=0)
        _exp, key = await create_experience(cfg, "Demo game", {})
        loop = asyncio.get_running_loop()
        async with RunningServer(cfg) as srv, GameServer(srv.url, key) as gs, Browser(1280, 860) as page:
            link = await gs.CreateEditorLink("player-1")
            load_ms = await page.goto(srv.url + link["Path"])
            await page.wait("window.acsPage && window.acsPage.state.ready")
            ready = loop.create_future()
            await gs.RequestAvatarGenerationSessionAsync("player-1", ready.set_result)
            session_id = (await asyncio.wait_for(ready, 60))["SessionId"]
            asking = asyncio.create_task(gs.PromptSelectAvatarGenerationImageAsync(session_id))
            await page.wait("!document.getElementById('selfie').hidden")
            await page.set_files("#selfie-file", photos["astronaut"])
            await page.click("#selfie-send")
            file_id = await asking
            preview = await gs.GenerateAvatar2DPreviewAsync({"SessionId": session_id, "FileId": file_id,
                                                             "TextPrompt": "red shirt, blue jeans"})
            generation_id = await gs.GenerateAvatarAsync({"SessionId": session_id,
                                                          "PreviewId": preview["PreviewId"]})
            await page.wait("window.acsPage.version() !== null", 90)
            copy = await gs.LoadGeneratedAvatarAsync(generation_id)
            # the game server paints a star-like mark on the cheek; the page paints with the keyboard
            t0 = time.perf_counter()
            v = await copy.edit([{"op": "DrawCircle", "Image": "Head", "Center": [600, 800], "Radius": 22,
                                  "Color": [0.95, 0.75, 0.1], "Transparency": 0.1}])
            await page.wait(f"window.acsPage.version() >= {v}")
            gs_to_page = (time.perf_counter() - t0) * 1000
            await page.eval("window.acsPage.state.copy && 0")
            await page.fill("#paint-color", "#2b7bd2")
            await page.focus("#face")
            for _ in range(12):
                await page.press("#face", "ArrowDown")
            for _ in range(6):
                await page.press("#face", "ArrowLeft")
            t0 = time.perf_counter()
            await page.press("#face", "Enter")
            await copy.wait_version(v + 1)
            page_to_gs = (time.perf_counter() - t0) * 1000
            await page.fill("#hair-color", "#6b3a1e")
            await copy.wait_version(v + 2)
            await page.fill("#pants-color", "#c8b99a")  # khaki trousers instead of the prompt's jeans
            await copy.wait_version(v + 3)
            t0 = time.perf_counter()
            await page.select("#hairstyle", "long_straight")
            await page.wait(f"window.acsPage.state.reshaped > {v + 3}", 60)
            restyle = (time.perf_counter() - t0) * 1000
            v = await page.eval("window.acsPage.version()") - 2
            await page.eval("(() => { const s = document.getElementById('expr-LeftLipCornerPuller');"
                            " s.value = 0.8; s.dispatchEvent(new Event('input')); })()")
            await page.eval("(() => { const s = document.getElementById('expr-RightLipCornerPuller');"
                            " s.value = 0.8; s.dispatchEvent(new Event('input')); })()")
            await page.eval("(() => { const p = document.getElementById('pose'); p.value = 'wave';"
                            " p.dispatchEvent(new Event('change')); })()")
            await page.wait("window.acsPage.version() >= %d" % (v + 2))
            await asyncio.sleep(0.5)
            await page.shot("main", tmp / "editor.png")
            _jpg(tmp / "editor.png", out / "page_editor.jpg")
            publishing = asyncio.create_task(gs.PromptCreateAvatarAsync(None, "player-1", copy, name="Eileen"))
            await page.wait("document.getElementById('publish').open")
            await page.press("#publish-yes", "Enter")
            print("publish:", (await publishing)["Result"])

            await page.goto("about:blank")  # a new document, not a same-page fragment change
            await page.goto(f"{srv.url}/creator/#key={key}")
            await page.wait("window.acsPage.state.ready && window.acsPage.state.bundles === 1")
            await page.wait("document.querySelector('#bundle-list img').naturalWidth > 0")
            await page.click("#bundle-list li button")
            await page.wait("window.acsPage.state.viewing !== undefined")
            await asyncio.sleep(0.5)
            await page.shot("main", tmp / "creator.png")
            _jpg(tmp / "creator.png", out / "page_creator.jpg")

            await page.click("#studio-nav a[data-view=profile]")
            await page.set_files("#profile-files", [photos["grace_hopper"], tmp / "coffee.jpg"])
            await page.eval("document.getElementById('profile-style').value = 'editorial_portrait'")
            await page.click("#profile-send")
            await page.wait("window.acsPage.state.profileResults !== undefined", 120)
            await page.wait("document.querySelector('#profile-results img').naturalWidth > 0")
            await page.shot("main", tmp / "profile.png")
            _jpg(tmp / "profile.png", out / "page_profile.jpg")
        print(f"page load {load_ms} ms; game server edit -> page {gs_to_page:.0f} ms; "
              f"page edit -> game server copy {page_to_gs:.0f} ms; hairstyle -> new shape shown {restyle:.0f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    asyncio.run(main(ap.parse_args().out))
