"""A server killed with SIGKILL and restarted resumes every edit document at its last acked version."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp

from client_sim.sdk import GameServer

from .conftest import Http, active_session, generate
from .services import free_port


async def start_server(data_dir, port, *, log=None, **env) -> subprocess.Popen:
    """``acs serve`` as a process of its own; ``log``: a file for its stderr; ``env``: more ``ACS_*``."""
    env = {**os.environ, "ACS_DATA_DIR": str(data_dir), "ACS_PORT": str(port), "ACS_WORKERS": "1", **env}
    stderr = open(log, "ab") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
    finally:
        if log:
            stderr.close()
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            assert proc.poll() is None, "server exited during start-up"
            await asyncio.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start in 60 s")


async def test_sigkill_then_restart_resumes_documents_at_the_last_acked_version(tmp_path, astronaut_jpeg):
    out = subprocess.run([sys.executable, "-m", "server.cli", "admin", "create-experience", "game"],
                         env={**os.environ, "ACS_DATA_DIR": str(tmp_path)}, capture_output=True, text=True)
    key = out.stdout.strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = await start_server(tmp_path, port)
    try:
        async with GameServer(url, key) as gs:
            info = await active_session(gs, "p")
            sid = info["SessionId"]
            token = await gs.CreatePlayerToken("p")
            _, gen_id = await generate(gs, url, token, astronaut_jpeg, sid)
            copy = await gs.LoadGeneratedAvatarAsync(gen_id)
            head = copy.avatar.parts["Head"]
            for i, vid in enumerate(head.GetVertices()[:12]):
                x, y, z = head.GetPosition(vid)
                await copy.edit([{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                                  "Position": [x, y + 0.001 * (i + 1), z]}])
            acked_version, acked_hash = copy.version, copy.content_hash()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

        proc = await start_server(tmp_path, port)
        async with GameServer(url, key) as gs:
            again = await gs.LoadGeneratedAvatarAsync(gen_id)
            assert (again.version, again.content_hash()) == (acked_version, acked_hash) == (12, acked_hash)
            status, body = await Http(url, key).rpc("GetSessionRequest", {"RequestId": info["RequestId"]})
            assert status == 200 and body["State"] == "Ended"  # its one 3D generation ended it (Gen3D)
    finally:
        proc.kill()
        proc.wait(timeout=10)
