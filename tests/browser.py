"""A real chromium page a test drives step by step (``tests/web/browser.js`` over stdin/stdout).

``async with Browser() as page: await page.goto(url); await page.wait("window.x"); ...``
Each command returns the answer's dict; a failed command raises :class:`PageError` with the
page's console so far.  The browser and its node driver are stopped on exit.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from client_sim.render import ToolingMissing, find_tooling

__all__ = ["Browser", "PageError", "png_pixels", "silhouette", "VIEWER_BACKGROUND"]

DRIVER = Path(__file__).parent / "web" / "browser.js"


class PageError(AssertionError):
    pass


#: The clear colour of the avatar viewers (tests/web/viewer.html, server/web/creator/viewer.js).
VIEWER_BACKGROUND = np.array([0xDF, 0xE3, 0xEA])


def png_pixels(data: bytes) -> np.ndarray:
    """A PNG's RGB pixels as int16 (differences do not wrap)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def silhouette(px: np.ndarray, margin: int = 0) -> np.ndarray:
    """The pixels that are not the viewer's background (``margin`` px at the edges left out)."""
    if margin:
        px = px[margin:-margin, margin:-margin]
    return np.abs(px - VIEWER_BACKGROUND).max(axis=-1) > 12


class Browser:
    def __init__(self, width: int = 1280, height: int = 900):
        self.size = (width, height)
        self.console: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> "Browser":
        try:
            tools = find_tooling()
        except ToolingMissing as e:
            raise PageError(str(e)) from None
        opt = {"chromium": tools["chromium"], "width": self.size[0], "height": self.size[1]}
        self._proc = await asyncio.create_subprocess_exec(
            tools["node"], str(DRIVER), json.dumps(opt), cwd=tools["web_dir"], limit=2**24,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return self

    async def __aexit__(self, *exc) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.returncode is None:
                proc.stdin.write(b'{"cmd": "close"}\n')
                await proc.stdin.drain()
                await asyncio.wait_for(proc.wait(), 20)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def _do(self, cmd: dict, timeout: float = 60) -> dict:
        assert self._proc is not None
        self._proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self._proc.stdin.drain()
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout + 30)
        if not line:
            err = (await self._proc.stderr.read()).decode(errors="replace")
            raise PageError(f"the browser driver stopped: {err[-2000:]}")
        answer = json.loads(line)
        self.console += answer.get("console", [])
        if not answer.get("ok"):
            raise PageError(f"{cmd['cmd']} failed: {answer.get('error')}\nconsole:\n" + "\n".join(self.console[-30:]))
        return answer

    async def goto(self, url: str) -> float:
        """Load a page; returns its load time in ms."""
        return (await self._do({"cmd": "goto", "url": url}))["ms"]

    async def wait(self, js: str, timeout: float = 30) -> float:
        """Wait until ``js`` is truthy in the page; returns the ms waited."""
        return (await self._do({"cmd": "wait", "js": js, "timeoutMs": int(timeout * 1000)}, timeout))["ms"]

    async def eval(self, js: str):
        return (await self._do({"cmd": "eval", "js": js})).get("value")

    async def click(self, selector: str) -> None:
        await self._do({"cmd": "click", "selector": selector})

    async def focus(self, selector: str) -> None:
        await self._do({"cmd": "focus", "selector": selector})

    async def fill(self, selector: str, value: str) -> None:
        await self._do({"cmd": "fill", "selector": selector, "value": value})

    async def select(self, selector: str, value: str) -> None:
        await self._do({"cmd": "select", "selector": selector, "value": value})

    async def press(self, selector: str, key: str) -> None:
        await self._do({"cmd": "press", "selector": selector, "key": key})

    async def set_files(self, selector: str, path: Path | list[Path]) -> None:
        paths = [str(p) for p in path] if isinstance(path, list) else str(path)
        await self._do({"cmd": "files", "selector": selector, "path": paths})

    async def shot(self, selector: str, path: Path) -> np.ndarray:
        """A PNG of one element, saved at ``path``; returns its RGB pixels (int16)."""
        await self._do({"cmd": "shot", "selector": selector, "path": str(path)})
        return png_pixels(Path(path).read_bytes())
