"""Hostile players against a live server: do well-behaved callers of other experiences stay fast?

Starts ``.venv/bin/acs serve`` as a subprocess on loopback (``ACS_DATA_DIR`` a fresh temp folder,
``ACS_PORT`` a free port, ``ACS_CAPACITY=16``, everything else the server's defaults), so the server's
memory can be read from /proc.  Before it starts, experiences are created in that data dir: **B**, a
well-behaved game whose game server plays the victim, and one attacker experience **A** per scenario
(so rate debt or refusals the server holds against one attack do not blunt the next).

Setup (through the SDK): generated avatars for B, for the slow reader's player and for the fast
sender's experience; in B an active session holding an uploaded copy of the package photo; in the
upload-bomb's experience an active session to upload into.

Victims, each its own game-server socket of B, each a sequential loop of one call:

- ``rules``: GetValidationRules;
- ``session``: RequestAvatarGenerationSessionAsync, wait for SessionReady, EndSession;
- ``edit``: one ApplyEdits round trip (a SetPosition on B's own avatar);
- ``preview`` (upload-bomb and batch-flood only): GenerateAvatar2DPreviewAsync of the package photo.

They are measured first on the idle server (the baseline, same run, with the same set of victims
running together), then under each attack.  Every call has a timeout; a call that times out counts as
failed and enters the percentiles at its timeout, an error counts as failed.  Latencies under
2 ms count as 2 ms when ratios are taken, so scheduler noise on a sub-millisecond call is not read
as a slowdown.

Scenarios (attackers are experience A's; each runs a short ramp, then the victim window; then its
attackers are torn down and the server is given up to 15 s to answer the victims at idle speed):

- **slow-reader**: A's player opens a websocket (a 4 KiB receive buffer), loads its generated
  avatar and never reads again.  A's game server writes 256×256 pixel patches into that avatar as
  fast as it can, so EditsApplied pushes (256 KiB each) pile up toward the stalled socket until the
  TCP window is full; it also starts and ends a session of that player, so a SessionEnded push goes
  to the stalled socket too.  The server→attacker send queue is read from /proc/net/tcp.
- **fast-sender**: one socket floods ApplyEdits frames (valid one-op and 1024-op batches, invalid
  ops, refused params, too many ops, broken msgpack) as fast as TCP lets it, while a second socket
  sends one ApplyEdits whose Ops are 16.7 M msgpack nils (an array32 of 0xc0: 16.7 MB that
  permessage-deflate carries in ~16 KB).
- **frame-bomb**: two sockets send 16 MiB binary frames of zeros (deflated to ~16 KB each) as fast
  as they can, reconnecting when dropped; a third sends one frame whose params hold 1 M unknown keys.
- **upload-bomb**: four parallel uploaders POST a ~190 KB all-zero 7000×7000 RGBA PNG (49 M pixels,
  196 MB decoded) to ``/v1/files?SessionId=`` of an A session, over and over.
- **batch-flood**: A's game server keeps two 50-photo GenerateAvatar2DPreviewBatch calls
  (``POST /v1/previews/batch``) in flight.

The attackers' websockets are a small hand-written client (pre-deflated frames with a zero mask
key), so the flood costs this process little; still, attackers, victims and server share the same
cores, as they would on a small host.  The server may refuse or drop an attacker at any point; that is
counted (per scenario, on the ``attackers`` line: requests posted, answered, refused by code, sockets
dropped) and the attack goes on.  Attacks whose setup fails are flagged ``ATTACK INCOMPLETE``.

Per scenario one line: the worst victim p50 and p99 as ratios to the idle baseline, the failed victim
calls, the peak of the server's memory (VmRSS of the server and all its descendants summed, sampled
every 100 ms) and the sum of their VmHWM (peak counters reset at the scenario start through
/proc/PID/clear_refs), then PASS/FAIL for each goal: every ratio ≤ 3, no failed victim call, peak
memory under 2 GiB.  Detail lines follow.  The exit status is always 0: this is a benchmark.

    .venv/bin/python bench/abuse.py [--seconds N] [--only slow-reader,frame-bomb,...]

``--seconds`` is the victim window of the baseline and of each attack (default 10); the whole run
takes about 2 minutes on two cores (each scenario ≈ 12–30 s including teardown and recovery).
The server's log goes to a file in the temp folder; its tail is printed if it exits on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import itertools
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiohttp
import msgpack
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from client_sim.flow import default_photo  # noqa: E402
from client_sim.sdk import GameClient, GameServer  # noqa: E402
from server.admin import create_experience  # noqa: E402
from server.config import Config  # noqa: E402

RATIO_GOAL = 3.0
MEMORY_BOUND = 2 * 1024 ** 3
LATENCY_FLOOR = 0.002
RAMP = 1.5
RECOVERY = 15.0
CHEAP_TIMEOUT = 5.0
PREVIEW_TIMEOUT = 15.0
CHEAP_KINDS = ("rules", "session", "edit")
ALL_KINDS = CHEAP_KINDS + ("preview",)
MIB = 1024 * 1024


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the server process and its memory ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class MemorySampler(threading.Thread):
    """VmRSS of a process and its descendants, summed, every 100 ms (a thread: it keeps sampling
    while the event loop is busy)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.current = 0
        self.window_peak = 0
        self.hwm_reset = True
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            total = sum(_status_kib(p, "VmRSS:") for p in _descendants(self.pid)) * 1024
            with self._lock:
                self.current = total
                self.window_peak = max(self.window_peak, total)
            self._halt.wait(0.1)

    def stop(self) -> None:
        self._halt.set()

    def start_window(self) -> None:
        with self._lock:
            self.window_peak = self.current
        for p in _descendants(self.pid):
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current RSS
            except OSError:
                self.hwm_reset = False

    def end_window(self) -> tuple[int, int]:
        hwm = sum(_status_kib(p, "VmHWM:") for p in _descendants(self.pid)) * 1024
        with self._lock:
            return self.window_peak, hwm


def send_queue(server_port: int, peer_port: int) -> int | None:
    """Bytes queued in the server's socket toward ``peer_port`` (tx_queue in /proc/net/tcp)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, remote = parts[1], parts[2]
                    if int(local.rsplit(":", 1)[1], 16) == server_port and \
                            int(remote.rsplit(":", 1)[1], 16) == peer_port:
                        return int(parts[4].split(":")[0], 16)
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return None


# -- a minimal websocket client for attackers ------------------------------------------------------


class Closed(Exception):
    pass


def deflate_message(data: bytes) -> bytes:
    """permessage-deflate payload of one message (no context carried over)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def ws_frame(payload: bytes, *, opcode: int = 0x2, compressed: bool = False) -> bytes:
    """One client frame, FIN set, masked with a zero key (so the payload goes as is)."""
    first = 0x80 | opcode | (0x40 if compressed else 0)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


class RawWs:
    """A websocket opened by hand: the attacker controls every byte it sends and when it reads."""

    def __init__(self, reader, writer, deflate: bool):
        self.reader = reader
        self.writer = writer
        self.deflate = deflate
        self._inflate = zlib.decompressobj(-15)
        self.local_port = writer.get_extra_info("sockname")[1]

    @classmethod
    async def open(cls, port: int, credential: str, *, deflate: bool = True, rcvbuf: int | None = None,
                   timeout: float = 5.0) -> "RawWs":
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
            reader, writer = await asyncio.open_connection(sock=sock, limit=64 * 1024)
        except BaseException:
            sock.close()
            raise
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {credential}\r\n")
        if deflate:
            req += ("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
                    "server_no_context_takeover\r\n")
        try:
            writer.write((req + "\r\n").encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except BaseException:
            writer.transport.abort()
            raise
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            writer.transport.abort()
            raise Closed(f"upgrade refused: {status.decode(errors='replace')}")
        return cls(reader, writer, deflate and b"permessage-deflate" in head.lower())

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()

    async def send(self, data: bytes, timeout: float = 5.0) -> None:
        """Write pre-built frame bytes; raises Closed if the server dropped us, TimeoutError
        when TCP back-pressure held the write for ``timeout``."""
        if self.writer.transport.is_closing():
            raise Closed("closed")
        self.writer.write(data)
        try:
            await asyncio.wait_for(self.writer.drain(), timeout)
        except (ConnectionError, OSError) as exc:
            raise Closed(str(exc)) from None

    async def recv(self) -> tuple[int, bytes]:
        """The next data message (answers pings itself); raises Closed at a close frame or EOF."""
        message, opcode, compressed = b"", None, False
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                if b1 & 0x80:
                    await self.reader.readexactly(4)
                payload = await self.reader.readexactly(n)
                op = b0 & 0x0F
                if op == 0x8:
                    raise Closed(f"close frame {payload[:2].hex()} {payload[2:60]!r}")
                if op == 0x9:
                    self.writer.write(ws_frame(payload, opcode=0xA))
                    continue
                if op == 0xA:
                    continue
                if op != 0x0:
                    opcode, compressed = op, bool(b0 & 0x40)
                message += payload
                if b0 & 0x80:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise Closed(type(exc).__name__) from None
        if compressed:
            message = self._inflate.decompress(message + b"\x00\x00\xff\xff")
        return opcode, message

    def frame(self, message: bytes) -> bytes:
        """A binary frame of ``message``, deflated when the extension was agreed."""
        if self.deflate:
            return ws_frame(deflate_message(message), compressed=True)
        return ws_frame(message)


def request(fid: int, method: str, params: dict) -> bytes:
    return msgpack.packb({"id": fid, "method": method, "params": params}, use_bin_type=True)


# -- measurement ---------------------------------------------------------------------------------


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def ratio(value: float, base: float) -> float:
    if value != value or base != base:
        return float("inf")
    return max(value, LATENCY_FLOOR) / max(base, LATENCY_FLOOR)


class Victims:
    """B's game server, one socket per kind of call, each call in a sequential loop."""

    def __init__(self, url: str, key: str, gen_id: str, vertex: int, pre_session: str, pre_file: str):
        self.url, self.key = url, key
        self.gen_id, self.vertex = gen_id, vertex
        self.pre_session, self.pre_file = pre_session, pre_file
        self.conns: dict[str, GameServer] = {}
        self.players = itertools.count()
        self.abandoned: set[str] = set()
        self.background: set[asyncio.Task] = set()

    async def _conn(self, kind: str) -> GameServer:
        gs = self.conns.get(kind)
        if gs is not None and gs.conn._reader is not None and not gs.conn._reader.done():
            return gs
        if gs is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(gs.close(), 2)
        gs = GameServer(self.url, self.key)
        await asyncio.wait_for(gs.connect(), CHEAP_TIMEOUT)
        if kind == "session":
            gs.conn.on("SessionReady", lambda info, gs=gs: self._reap(gs, info))
        self.conns[kind] = gs
        return gs

    def _reap(self, gs: GameServer, info: dict) -> None:
        """A session whose cycle timed out became active later: end it so it frees its slot."""
        if info.get("PlayerId") in self.abandoned:
            self.abandoned.discard(info["PlayerId"])
            task = asyncio.ensure_future(asyncio.wait_for(gs.EndSession(info["SessionId"]), 10))
            self.background.add(task)
            task.add_done_callback(lambda t: (self.background.discard(t), t.cancelled() or t.exception()))

    async def call(self, kind: str) -> None:
        gs = await self._conn(kind)
        if kind == "rules":
            await gs.GetValidationRules()
        elif kind == "edit":
            await gs.conn.call("ApplyEdits", {"GenerationId": self.gen_id, "BaseVersion": 0, "Ops": [
                {"op": "SetPosition", "Part": "Head", "VertexId": self.vertex,
                 "Position": [0.0, 2.5 + 0.001 * (time.perf_counter() % 10), -0.3]}]})
        elif kind == "preview":
            await gs.GenerateAvatar2DPreviewAsync({"SessionId": self.pre_session, "FileId": self.pre_file})
        elif kind == "session":
            player = f"victim-{next(self.players)}"
            ready = asyncio.get_running_loop().create_future()
            try:
                await gs.RequestAvatarGenerationSessionAsync(
                    player, lambda info: ready.done() or ready.set_result(info))
                info = await ready
                await gs.EndSession(info["SessionId"], "Exit")
            except BaseException:
                if not ready.done():
                    self.abandoned.add(player)
                raise
        else:
            raise ValueError(kind)

    async def run(self, seconds: float, kinds: tuple[str, ...]) -> dict[str, Samples]:
        results = {k: Samples() for k in kinds}

        async def loop(kind: str) -> None:
            timeout = PREVIEW_TIMEOUT if kind == "preview" else CHEAP_TIMEOUT
            out = results[kind]
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    await asyncio.wait_for(self.call(kind), timeout)
                    out.latencies.append(time.perf_counter() - t0)
                except asyncio.TimeoutError:
                    out.failed += 1
                    out.errors["timeout"] += 1
                    out.latencies.append(timeout)
                except Exception as exc:
                    out.failed += 1
                    out.errors[getattr(exc, "code", None) or type(exc).__name__] += 1
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0 if kind == "preview" else 0.02)

        await asyncio.gather(*(loop(k) for k in kinds))
        return results

    async def recovered(self, kinds: tuple[str, ...], base: dict[str, Samples], deadline: float) -> float | None:
        """Seconds until one round of the victims answers within 3× its idle p99, or None."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < deadline:
            ok = True
            for kind in kinds:
                limit = max(RATIO_GOAL * base[kind].p(99), 0.05)
                t1 = time.perf_counter()
                try:
                    await asyncio.wait_for(self.call(kind), max(1.0, deadline - (t1 - t0)))
                except Exception:
                    ok = False
                    await asyncio.sleep(0.2)
                    break
                if time.perf_counter() - t1 > limit:
                    ok = False
            if ok:
                return time.perf_counter() - t0
        return None

    async def close(self) -> None:
        for gs in self.conns.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(gs.close(), 2)
        for task in list(self.background):
            task.cancel()


# -- attacks ------------------------------------------------------------------------------------


class Attack:
    """An attack's tasks, sockets and counters; :meth:`close` tears it all down, bounded."""

    def __init__(self) -> None:
        self.stats: collections.Counter = collections.Counter()
        self.tasks: list[asyncio.Task] = []
        self.socks: list[RawWs] = []
        self.notes: list[str] = []
        #: A socket whose server-side send queue is reported (the stalled reader).
        self.watch: RawWs | None = None

    def spawn(self, coro) -> None:
        self.tasks.append(asyncio.create_task(self._guard(coro)))

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats[f"attacker task error {type(exc).__name__}"] += 1

    async def open(self, port: int, credential: str, **kw) -> RawWs:
        ws = await RawWs.open(port, credential, **kw)
        self.socks.append(ws)
        self.stats["sockets opened"] += 1
        return ws

    async def drain_replies(self, ws: RawWs) -> None:
        """Read and count whatever the server sends (an attacker that does read)."""
        while True:
            try:
                _op, data = await ws.recv()
            except Closed:
                self.stats["disconnected by server"] += 1
                return
            try:
                frame = msgpack.unpackb(data, raw=False)
            except Exception:
                self.stats["unreadable reply"] += 1
                continue
            if isinstance(frame, dict) and "error" in frame:
                self.stats[f"refused {frame['error'].get('code')}"] += 1
            elif isinstance(frame, dict) and "result" in frame:
                self.stats["answered"] += 1

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for ws in self.socks:
            ws.abort()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)

    def summary(self) -> str:
        parts = [f"{k} {v}" for k, v in sorted(self.stats.items())]
        return ", ".join(parts + self.notes) or "none"


@dataclass
class World:
    url: str
    port: int
    #: Each scenario's attacker experience (its API key), so what the server holds against one
    #: attack (rate debt, refusals) does not blunt the next.
    keys: dict[str, str]
    key_b: str
    gen_b: str
    vertex: int
    image: str
    image_size: tuple[int, int]
    gen_slow: str
    token_slow: str
    gen_fast: str
    vertex_fast: int
    upload_session: str
    upload_token: str
    photo: bytes
    png_bomb: bytes
    nil_frame: bytes
    keys_frame: bytes
    zeros_frame: bytes


async def _session(gs: GameServer, player: str, timeout: float = 20.0) -> dict:
    ready = asyncio.get_running_loop().create_future()
    await asyncio.wait_for(gs.RequestAvatarGenerationSessionAsync(
        player, lambda info: ready.done() or ready.set_result(info)), timeout)
    return await asyncio.wait_for(ready, timeout)


async def slow_reader(w: World, attack: Attack) -> None:
    key = w.keys["slow-reader"]
    ws = await attack.open(w.port, w.token_slow, deflate=False, rcvbuf=4096)
    await asyncio.wait_for(ws.send(ws.frame(request(1, "LoadGeneratedAvatarAsync", {"GenerationId": w.gen_slow}))),
                           10)
    while True:  # read until the bundle arrives, then never read again
        _op, data = await asyncio.wait_for(ws.recv(), 60)
        frame = msgpack.unpackb(data, raw=False)
        if frame.get("id") == 1:
            attack.stats["avatar loaded" if "result" in frame else "avatar load refused"] += 1
            break
    gs = GameServer(w.url, key)
    await asyncio.wait_for(gs.connect(), 5)
    info = await _session(gs, "mallory")
    wd, ht = min(256, w.image_size[0]), min(256, w.image_size[1])
    rng = np.random.default_rng(1)
    patches = [rng.integers(0, 256, wd * ht * 4, dtype=np.uint8).tobytes() for _ in range(4)]

    async def painter(i: int) -> None:
        for n in itertools.count():
            op = {"op": "WritePixelsBuffer", "Image": w.image, "Position": [0, 0], "Size": [wd, ht],
                  "Buffer": patches[(i + n) % len(patches)]}
            try:
                await asyncio.wait_for(gs.conn.call("ApplyEdits", {"GenerationId": w.gen_slow, "BaseVersion": 0,
                                                                   "Ops": [op]}), 5)
                attack.stats["edits applied"] += 1
            except asyncio.TimeoutError:
                attack.stats["edits timed out"] += 1
            except Exception as exc:
                attack.stats[f"edit refused {getattr(exc, 'code', type(exc).__name__)}"] += 1
                await asyncio.sleep(0.05)

    async def end_session() -> None:
        await asyncio.sleep(1.0)  # let the pushes pile up first
        try:
            await asyncio.wait_for(gs.EndSession(info["SessionId"]), 20)
            attack.stats["session ended"] += 1
        except asyncio.TimeoutError:
            attack.stats["EndSession timed out"] += 1
        except Exception as exc:
            attack.stats[f"EndSession refused {getattr(exc, 'code', type(exc).__name__)}"] += 1

    async def teardown_gs() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            gs.conn.drop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(gs.close(), 2)

    for i in range(4):
        attack.spawn(painter(i))
    attack.spawn(end_session())
    attack.spawn(teardown_gs())
    attack.watch = ws


async def send_forever(w: World, attack: Attack, key: str, make: Callable[[RawWs], bytes], counter: str,
                       count: int, name: str) -> None:
    """Send ``make(ws)`` (``count`` frames) over and over on one socket, reconnecting when dropped."""
    while True:
        try:
            ws = await attack.open(w.port, key)
        except Exception as exc:
            attack.stats[f"connect refused {type(exc).__name__}"] += 1
            await asyncio.sleep(0.2)
            continue
        attack.spawn(attack.drain_replies(ws))
        data = make(ws)
        try:
            while True:
                try:
                    await ws.send(data, timeout=2)
                    attack.stats[counter] += count
                except asyncio.TimeoutError:
                    attack.stats[f"{name} writes held back 2 s"] += 1
        except Closed:
            attack.stats[f"{name} socket dropped"] += 1
            ws.abort()
            await asyncio.sleep(0.1)


async def send_once(w: World, attack: Attack, key: str, frame: bytes, name: str) -> None:
    """Send one (pre-built) frame on a socket of its own."""
    ws = await attack.open(w.port, key)
    attack.spawn(attack.drain_replies(ws))
    try:
        await ws.send(frame, timeout=10)
        attack.stats[f"{name} sent"] += 1
    except (Closed, asyncio.TimeoutError) as exc:
        attack.stats[f"{name} not sent {type(exc).__name__}"] += 1


async def fast_sender(w: World, attack: Attack) -> None:
    key, gen = w.keys["fast-sender"], w.gen_fast
    head = {"op": "SetPosition", "Part": "Head", "VertexId": w.vertex_fast, "Position": [0.0, 2.5, -0.3]}
    messages = [
        request(7, "ApplyEdits", {"GenerationId": gen, "BaseVersion": 0, "Ops": [head]}),
        request(8, "ApplyEdits", {"GenerationId": gen, "BaseVersion": 0, "Ops": [head] * 1024}),
        request(9, "ApplyEdits", {"GenerationId": gen, "BaseVersion": 0,
                                  "Ops": [dict(head, VertexId=987654321)]}),
        request(10, "ApplyEdits", {"GenerationId": gen, "BaseVersion": 0, "Ops": "everything"}),
        request(11, "ApplyEdits", {"GenerationId": gen, "BaseVersion": 0, "Ops": [head] * 1025}),
        request(12, "ApplyEdits", {"GenerationId": gen, "BaseVersion": -5, "Ops": [head]}),
        request(13, "ApplyEdits", {"GenerationId": "gen_nope", "BaseVersion": 0, "Ops": [{"op": "Nope"}]}),
        b"\xc1\xc1\xc1",
        msgpack.packb([1, 2, 3]),
    ]

    attack.spawn(send_forever(w, attack, key, lambda ws: b"".join(ws.frame(m) for m in messages),
                              "flood frames sent", len(messages), "flood"))
    attack.spawn(send_once(w, attack, key, w.nil_frame, "16.7M-nil frame"))


async def frame_bomb(w: World, attack: Attack) -> None:
    key = w.keys["frame-bomb"]
    for _ in range(2):
        attack.spawn(send_forever(w, attack, key, lambda ws: w.zeros_frame, "16 MiB frames sent", 1, "bomb"))
    attack.spawn(send_once(w, attack, key, w.keys_frame, "1M-key frame"))


async def upload_bomb(w: World, attack: Attack) -> None:
    async def uploader() -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        headers = {"Authorization": f"Bearer {w.upload_token}"}
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            while True:
                form = aiohttp.FormData()
                form.add_field("file", w.png_bomb, filename="selfie.png", content_type="image/png")
                attack.stats["uploads posted"] += 1
                try:
                    async with http.post(f"{w.url}/v1/files", data=form,
                                         params={"SessionId": w.upload_session}) as r:
                        body = await r.json(content_type=None)
                    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                    attack.stats[f"upload {r.status} {code or 'accepted'}"] += 1
                except asyncio.TimeoutError:
                    attack.stats["upload timed out"] += 1
                except (aiohttp.ClientError, ValueError) as exc:
                    attack.stats[f"upload failed {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.1)

    for _ in range(4):
        attack.spawn(uploader())


async def batch_flood(w: World, attack: Attack) -> None:
    async def batcher() -> None:
        timeout = aiohttp.ClientTimeout(total=300)
        headers = {"Authorization": f"Bearer {w.keys['batch-flood']}"}
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            while True:
                form = aiohttp.FormData()
                for i in range(50):
                    form.add_field("photo", w.photo, filename=f"p{i}.jpg", content_type="image/jpeg")
                t0 = time.perf_counter()
                attack.stats["batches posted"] += 1
                try:
                    async with http.post(f"{w.url}/v1/previews/batch", data=form) as r:
                        body = await r.json(content_type=None)
                    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                    attack.stats[f"batch {r.status} {code or 'done'}"] += 1
                    attack.notes.append(f"a batch answered in {time.perf_counter() - t0:.1f} s")
                except asyncio.TimeoutError:
                    attack.stats["batch timed out"] += 1
                except (aiohttp.ClientError, ValueError) as exc:
                    attack.stats[f"batch failed {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.1)

    attack.spawn(batcher())
    attack.spawn(batcher())


SCENARIOS = [
    ("slow-reader", slow_reader, CHEAP_KINDS),
    ("fast-sender", fast_sender, CHEAP_KINDS),
    ("frame-bomb", frame_bomb, CHEAP_KINDS),
    ("upload-bomb", upload_bomb, ALL_KINDS),
    ("batch-flood", batch_flood, ALL_KINDS),
]


# -- payloads -------------------------------------------------------------------------------------


def png_bomb(width: int = 7000, height: int = 7000) -> bytes:
    """An all-zero RGBA PNG, built row by row: 196 MB of pixels in ~190 KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + width * 4)
    c = zlib.compressobj(9)
    rows_at_once = 100
    idat = []
    for y in range(0, height, rows_at_once):
        idat.append(c.compress(row * min(rows_at_once, height - y)))
    idat.append(c.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b"")


def nil_ops_frame(gen_id: str, count: int = 16_700_000) -> bytes:
    """ApplyEdits whose Ops is ``count`` msgpack nils, deflated (~16 KB on the wire)."""
    def p(v) -> bytes:
        return msgpack.packb(v, use_bin_type=True)

    body = (b"\x83" + p("id") + p(99) + p("method") + p("ApplyEdits") + p("params")
            + b"\x83" + p("GenerationId") + p(gen_id) + p("BaseVersion") + p(0)
            + p("Ops") + b"\xdd" + struct.pack(">I", count))
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    out = [c.compress(body)]
    chunk = b"\xc0" * MIB
    left = count
    while left:
        n = min(left, MIB)
        out.append(c.compress(chunk[:n]))
        left -= n
    out.append(c.flush(zlib.Z_SYNC_FLUSH))
    return ws_frame(b"".join(out)[:-4], compressed=True)


def unknown_keys_frame(count: int = 1_000_000) -> bytes:
    params = {f"k{i:07d}": 0 for i in range(count)}
    return ws_frame(deflate_message(request(98, "GetValidationRules", params)), compressed=True)


def zeros_frame(size: int = 16 * MIB) -> bytes:
    return ws_frame(deflate_message(b"\0" * size), compressed=True)


# -- setup --------------------------------------------------------------------------------------


async def generation(url: str, gs: GameServer, player: str, photo: bytes) -> tuple[str, str]:
    info = await _session(gs, player, 60)
    token = await asyncio.wait_for(gs.CreatePlayerToken(player), 10)
    up = await asyncio.wait_for(GameClient(url, token).upload(None, photo, info["SessionId"]), 60)
    pre = await asyncio.wait_for(gs.GenerateAvatar2DPreviewAsync(
        {"SessionId": info["SessionId"], "FileId": up["FileId"]}), 120)
    gen = await asyncio.wait_for(gs.GenerateAvatarAsync(
        {"SessionId": info["SessionId"], "PreviewId": pre["PreviewId"]}), 300)
    return gen, token


async def wait_listening(port: int, proc: subprocess.Popen, timeout: float) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"acs serve exited with {proc.returncode}")
        try:
            _r, wr = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
            wr.close()
            return
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.2)
    raise RuntimeError(f"acs serve did not listen within {timeout:.0f} s")


def fmt_bytes(n: int) -> str:
    return f"{n / 1024 ** 3:.2f} GiB" if n >= 1024 ** 3 else f"{n / MIB:.0f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def bench(args, tmp: Path) -> None:
    data_dir = tmp / "data"
    config = Config(data_dir=data_dir)
    _, key_b = await create_experience(config, "victim", {
        "Allowed2DGenerations": 100000, "SessionTime": 3600})
    keys = {}
    for name, _, _ in SCENARIOS:
        _, keys[name] = await create_experience(config, f"attacker {name}", {
            "Allowed2DGenerations": 1000, "SessionTime": 3600})
    port = free_port()
    env = dict(os.environ, ACS_DATA_DIR=str(data_dir), ACS_PORT=str(port), ACS_HOST="127.0.0.1",
               ACS_CAPACITY="16")
    acs = ROOT / ".venv" / "bin" / "acs"
    cmd = [str(acs) if acs.exists() else shutil.which("acs") or "acs", "serve"]
    server_log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=server_log, stderr=subprocess.STDOUT, cwd=ROOT,
                            start_new_session=True)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    url = f"http://127.0.0.1:{port}"
    try:
        log(f"acs serve (pid {proc.pid}) on {url}, data in {data_dir}")
        await wait_listening(port, proc, 120)
        photo = default_photo()
        gs_b, gs_slow, gs_fast, gs_up = (GameServer(url, k) for k in (
            key_b, keys["slow-reader"], keys["fast-sender"], keys["upload-bomb"]))
        for gs in (gs_b, gs_slow, gs_fast, gs_up):
            await asyncio.wait_for(gs.connect(), 10)
        log("setup: generated avatars (the victim's, the slow reader's, the fast sender's)")
        (gen_b, _), (gen_slow, token_slow), (gen_fast, _) = await asyncio.gather(
            generation(url, gs_b, "bob", photo), generation(url, gs_slow, "mallory", photo),
            generation(url, gs_fast, "eve", photo))
        copy = await asyncio.wait_for(gs_b.LoadGeneratedAvatarAsync(gen_b), 60)
        vertex = int(copy.avatar.parts["Head"].GetVertices()[0])
        image = max(copy.avatar.images, key=lambda k: copy.avatar.images[k].Size[0] * copy.avatar.images[k].Size[1])
        image_size = tuple(copy.avatar.images[image].Size)
        copy_fast = await asyncio.wait_for(gs_fast.LoadGeneratedAvatarAsync(gen_fast), 60)
        vertex_fast = int(copy_fast.avatar.parts["Head"].GetVertices()[0])
        pre_info = await _session(gs_b, "bob-previews")
        pre_token = await asyncio.wait_for(gs_b.CreatePlayerToken("bob-previews"), 10)
        pre_file = (await asyncio.wait_for(GameClient(url, pre_token).upload(None, photo, pre_info["SessionId"]),
                                           60))["FileId"]
        up_info = await _session(gs_up, "uploader")
        up_token = await asyncio.wait_for(gs_up.CreatePlayerToken("uploader"), 10)
        for gs in (gs_b, gs_slow, gs_fast, gs_up):
            await asyncio.wait_for(gs.close(), 5)
        log("setup: attack payloads")
        world = World(url=url, port=port, keys=keys, key_b=key_b, gen_b=gen_b, vertex=vertex, image=image,
                      image_size=image_size, gen_slow=gen_slow, token_slow=token_slow, gen_fast=gen_fast,
                      vertex_fast=vertex_fast, upload_session=up_info["SessionId"], upload_token=up_token,
                      photo=photo, png_bomb=png_bomb(), nil_frame=nil_ops_frame(gen_fast),
                      keys_frame=unknown_keys_frame(), zeros_frame=zeros_frame())
        log(f"payloads: PNG bomb {len(world.png_bomb) // 1024} KB, 16.7M-nil frame {len(world.nil_frame) // 1024} KB,"
            f" 1M-key frame {len(world.keys_frame) // 1024} KB, 16 MiB zero frame {len(world.zeros_frame) // 1024} KB")

        victims = Victims(url, key_b, gen_b, vertex, pre_info["SessionId"], pre_file)
        idle_rss = sampler.current
        log(f"baseline: idle server, {args.seconds:.0f} s per victim set (server RSS {fmt_bytes(idle_rss)})")
        baselines = {kinds: await victims.run(args.seconds, kinds) for kinds in (CHEAP_KINDS, ALL_KINDS)}
        for kinds, base in baselines.items():
            print(f"baseline ({'+'.join(kinds)}): " + "  ".join(
                f"{k} p50 {base[k].p(50) * 1000:.1f} ms p99 {base[k].p(99) * 1000:.1f} ms n={len(base[k].latencies)}"
                f" failed {base[k].failed}" for k in kinds), flush=True)
        print(f"goals: every victim p50 and p99 ≤ {RATIO_GOAL:g}× idle; 0 failed victim calls; server peak RSS"
              f" (server + children) < {fmt_bytes(MEMORY_BOUND)} (idle {fmt_bytes(idle_rss)})", flush=True)

        chosen = args.only.split(",") if args.only else [name for name, _, _ in SCENARIOS]
        passed = ran = 0
        for name, start, kinds in SCENARIOS:
            if name not in chosen:
                continue
            log(f"{name}: attack")
            base = baselines[kinds]
            attack = Attack()
            sampler.start_window()
            t0 = time.perf_counter()
            incomplete = ""
            try:
                await asyncio.wait_for(start(world, attack), 30)
            except Exception as exc:
                incomplete = f"  (ATTACK INCOMPLETE: its start failed with {type(exc).__name__} {exc})"
            await asyncio.sleep(RAMP)
            watch = attack.watch
            if watch is not None:
                q = send_queue(port, watch.local_port)
                attack.notes.append("server→stalled-socket send queue after the ramp "
                                    f"{q if q is None else q // 1024} KiB")
            results = await victims.run(args.seconds, kinds)
            if watch is not None:
                q = send_queue(port, watch.local_port)
                attack.notes.append(f"at the end {q if q is None else q // 1024} KiB")
            await attack.close()
            rec = await victims.recovered(kinds, base, RECOVERY)
            peak, hwm = sampler.end_window()
            elapsed = time.perf_counter() - t0

            worst50 = max(((ratio(results[k].p(50), base[k].p(50)), k) for k in kinds))
            worst99 = max(((ratio(results[k].p(99), base[k].p(99)), k) for k in kinds))
            failed = sum(results[k].failed for k in kinds)
            lat_ok = worst50[0] <= RATIO_GOAL and worst99[0] <= RATIO_GOAL
            print(f"{name:<12} p50 ×{worst50[0]:.1f} ({worst50[1]})  p99 ×{worst99[0]:.1f} ({worst99[1]})  "
                  f"failed {failed}  peak RSS {fmt_bytes(peak)}  VmHWM {fmt_bytes(hwm)}"
                  f"{'' if sampler.hwm_reset else ' (not reset)'}  |  latency {verdict(lat_ok)}  "
                  f"failures {verdict(failed == 0)}  memory {verdict(peak < MEMORY_BOUND)}{incomplete}", flush=True)
            passed += lat_ok and failed == 0 and peak < MEMORY_BOUND and not incomplete
            ran += 1
            for k in kinds:
                r = results[k]
                errs = ", ".join(f"{e} {n}" for e, n in r.errors.most_common()) or "-"
                print(f"    {k:<8} p50 {r.p(50) * 1000:8.1f} ms (×{ratio(r.p(50), base[k].p(50)):.1f})  "
                      f"p99 {r.p(99) * 1000:8.1f} ms (×{ratio(r.p(99), base[k].p(99)):.1f})  "
                      f"n={len(r.latencies)}  failed {r.failed} ({errs})", flush=True)
            print(f"    attackers: {attack.summary()}", flush=True)
            print(f"    recovery: {'%.1f s' % rec if rec is not None else f'not within {RECOVERY:.0f} s'}"
                  f"; scenario took {elapsed:.0f} s", flush=True)
        print(f"{passed} of {ran} scenarios meet every goal", flush=True)
        await victims.close()
    finally:
        sampler.stop()
        died = proc.poll()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        server_log.close()
        if died is not None:
            tail = (tmp / "server.log").read_bytes()[-3000:].decode(errors="replace")
            log(f"acs serve exited by itself with {died} during the bench; log tail:\n{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="victim window per phase (default 10)")
    parser.add_argument("--only", help="comma-separated scenarios to run (default: all, in order)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="acs-abuse-") as tmp:
        try:
            asyncio.run(bench(args, Path(tmp)))
        except Exception as exc:  # a benchmark reports, it does not fail the caller
            log(f"bench stopped early: {type(exc).__name__}: {exc}")
    log(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
