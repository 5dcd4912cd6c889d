"""Custom styles (SPEC §5): fitted from example images in the background, used as ``Style`` by the
preview methods, private to their experience; bad example sets refused with typed errors before
anything is stored; the examples deleted once fitted; a fit survives a server restart."""

from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from client_sim.sdk import GameServer, RemoteError
from generation import style_fit
from generation.save import read_metadata
from generation.stylize import STYLES
from schemas.methods import PREVIEW_STYLES
from server.config import Config
from server.services import styles as style_service

from .conftest import Http, active_session, new_experience, running_server
from .faces import jpeg, real_faces

#: A teal-and-orange gradient map: shadows dark teal, mid-tones teal → orange, lights cream.
_STOPS = np.array([0.0, 0.35, 0.62, 0.85, 1.0])
_COLOURS = np.array([[12, 38, 48], [0, 118, 122], [236, 128, 40], [250, 186, 110], [255, 236, 205]], np.float64)


def teal_orange(rgb: np.ndarray) -> np.ndarray:
    """A photo repainted in flat teal/orange bands (7 grey levels through the gradient map)."""
    grey = np.round(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0 * 6) / 6
    return np.stack([np.interp(grey, _STOPS, _COLOURS[:, c]) for c in range(3)], -1).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def examples() -> tuple[bytes, ...]:
    """Six JPEG portraits in the teal/orange look: three people, flipped and cropped."""
    f = real_faces()
    a, h, z = f["astronaut"], f["grace_hopper"], f["ancelotti"]
    return tuple(jpeg(np.ascontiguousarray(teal_orange(x)))
                 for x in (a, a[:, ::-1], h, h[:, ::-1], z, a[40:400, 60:420]))


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def lab_pixels(image: bytes, n: int, seed: int) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"), np.float32) / 255.0
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    return lab[np.random.default_rng(seed).choice(len(lab), n, replace=False)]


def palette_distance(image: bytes, reference: np.ndarray) -> float:
    """Mean CIELAB distance from the image's pixels (a sample) to the nearest reference colour."""
    px = lab_pixels(image, 4000, 1)
    return float(np.sqrt(((px[:, None, :] - reference[None, :, :]) ** 2).sum(-1)).min(1).mean())


def test_the_limits_and_names_agree_with_the_pipeline():
    assert PREVIEW_STYLES == STYLES
    assert (style_service.MIN_EXAMPLES, style_service.MAX_EXAMPLES) == (style_fit.MIN_EXAMPLES,
                                                                          style_fit.MAX_EXAMPLES)


async def _refused(call, code: str) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        await call
    assert info.value.code == code, info.value
    return info.value


async def test_a_fitted_style_moves_previews_toward_its_examples_and_stays_private(tmp_path, executor,
                                                                                 astronaut_jpeg):
    key = await new_experience(tmp_path, "studio")
    other_key = await new_experience(tmp_path, "other")
    ex = list(examples())
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs, GameServer(srv.url, other_key) as other:
            # Bad sets: refused with typed errors, nothing stored, nothing counted.
            await _refused(gs.CreateStyle("few", ex[:4]), "TooFewExamples")
            await _refused(gs.CreateStyle("many", ex * 6), "TooManyExamples")
            mixed = ex[:3] + [png(teal_orange(real_faces()["astronaut"])), png(teal_orange(real_faces()["ancelotti"]))]
            await _refused(gs.CreateStyle("mixed", mixed), "MixedFormats")
            await _refused(gs.CreateStyle("broken", ex[:4] + [b"\xff\xd8\xff not really a jpeg"]), "UnreadableImage")
            noise = [jpeg(np.random.default_rng(i).integers(0, 255, (240, 240, 3), dtype=np.uint8)) for i in range(5)]
            await _refused(gs.CreateStyle("faceless", noise), "NoFaceInExamples")
            assert await gs.ListStyles() == []
            # Not portraits: no face needed, the whole picture is measured.
            texture_id = await gs.CreateStyle("noise", noise, portraits=False)
            assert (await gs.WaitForStyle(texture_id, timeout=120))["Status"] == "Done"
            await gs.DeleteStyle(texture_id)
            assert await gs.ListStyles() == []

            style_id = await gs.CreateStyle("Teal & orange", ex)
            seen: list[dict] = []
            state = await gs.WaitForStyle(style_id, timeout=120, interval=0.02, progress_callback=seen.append)
            assert state["Status"] == "Done", state
            assert state["Name"] == "Teal & orange" and state["Progress"] == 1.0 and state["Examples"] == 6
            progress = [s["Progress"] for s in seen]
            assert progress == sorted(progress)
            assert any(s["Status"] == "Fitting" and 0 < s["Progress"] < 1 for s in seen), seen
            fitted = state["Fitted"]
            assert len(fitted["Palette"]) == style_fit.PALETTE_SIZE and fitted["Background"]["Scene"]
            assert [s["StyleId"] for s in await gs.ListStyles()] == [style_id]

            # The example images are gone; only the fitted parameters remain.
            blob_dir = Config(data_dir=tmp_path).blob_dir
            for image in ex:
                sha = hashlib.sha256(image).hexdigest()
                assert not (blob_dir / sha[:2] / sha[2:]).exists()

            # A preview in the style, against one in the default style, from the same selfie.
            sid = (await active_session(gs, "alice"))["SessionId"]
            token = await gs.CreatePlayerToken("alice")
            _, up = await Http(srv.url, token).upload("/v1/files", astronaut_jpeg, {"SessionId": sid})
            http = Http(srv.url, key)
            default = await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": up["FileId"], "Seed": 7})
            custom = await gs.GenerateAvatar2DPreviewAsync({"SessionId": sid, "FileId": up["FileId"], "Seed": 7,
                                                            "Style": style_id})
            assert custom["style"] == style_id and custom["face_detected"]
            _, default_png = await http.get(f"/v1/previews/{default['PreviewId']}.png")
            _, custom_png = await http.get(f"/v1/previews/{custom['PreviewId']}.png")
            sha = hashlib.sha256(custom_png).hexdigest()
            assert (blob_dir / sha[:2] / sha[2:]).exists()  # the blob folder checked above is the right one
            assert read_metadata(custom_png)["style"] == style_id
            Path("/tmp/custom_style_preview.png").write_bytes(custom_png)
            reference = np.concatenate([lab_pixels(x, 500, i) for i, x in enumerate(ex)])
            d_custom, d_default = palette_distance(custom_png, reference), palette_distance(default_png, reference)
            print(f"palette distance to the examples: custom {d_custom:.2f}, default {d_default:.2f}")
            assert d_custom < 0.6 * d_default

            # The batch method takes it too.
            batch = await gs.conn.call("GenerateAvatar2DPreviewBatch", {"Photos": [astronaut_jpeg], "Style": style_id})
            assert batch["Results"][0]["style"] == style_id

            # Another experience: the same refusal as an unknown style, nothing about this one.
            unknown = await _refused(other.conn.call("GenerateAvatar2DPreviewBatch", {
                "Photos": [astronaut_jpeg], "Style": "style_0123456789abcdef01234567"}), "UnknownStyle")
            foreign = await _refused(other.conn.call("GenerateAvatar2DPreviewBatch", {
                "Photos": [astronaut_jpeg], "Style": style_id}), "UnknownStyle")
            assert foreign.message.replace(style_id, "X") == unknown.message.replace(
                "style_0123456789abcdef01234567", "X")
            await _refused(other.GetStyle(style_id), "StyleNotFound")
            await _refused(other.DeleteStyle(style_id), "StyleNotFound")
            assert await other.ListStyles() == []

            await gs.DeleteStyle(style_id)
            await _refused(gs.GetStyle(style_id), "StyleNotFound")
            await _refused(gs.conn.call("GenerateAvatar2DPreviewBatch", {"Photos": [astronaut_jpeg],
                                                                          "Style": style_id}), "UnknownStyle")


async def test_a_style_being_fitted_when_the_server_stops_is_fitted_after_the_restart(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            style_id = await gs.CreateStyle("restart", list(examples())[:5])
            left = await gs.GetStyle(style_id)
            while left["Status"] == "Pending":
                left = await gs.GetStyle(style_id)
            assert left["Status"] == "Fitting", left
    # The server stopped mid-fit: the style stays Fitting with its examples, and the next
    # server (the only one on this database) fits it again from the start.
    async with running_server(tmp_path, executor) as srv:
        async with GameServer(srv.url, key) as gs:
            state = await gs.WaitForStyle(style_id, timeout=120, interval=0.05)
            assert state["Status"] == "Done", state
            assert len(state["Fitted"]["Palette"]) == style_fit.PALETTE_SIZE


async def test_scaled_out_a_style_made_on_one_replica_is_fitted_by_a_worker_and_used_on_another(
        tmp_path, postgres, redis, astronaut_jpeg):
    import base64

    from .scaled import Topology

    db_url = await postgres.create_database()
    key = await new_experience(tmp_path, database_url=db_url)
    async with Topology(tmp_path / "shared", db_url, redis.url, replicas=2, workers=1) as topo:
        a, b = topo.urls
        images = [base64.b64encode(x).decode() for x in examples()[:5]]  # JSON over HTTP: base64
        status, body = await Http(a, key).rpc("CreateStyle", {"Name": "teal", "Images": images})
        assert status == 200 and body["Status"] == "Pending", body
        async with GameServer(b, key) as gs:
            state = await gs.WaitForStyle(body["StyleId"], timeout=120, interval=0.1)
            assert state["Status"] == "Done", (state, topo.logs())
            batch = await gs.conn.call("GenerateAvatar2DPreviewBatch", {"Photos": [astronaut_jpeg],
                                                                          "Style": body["StyleId"]})
            assert batch["Results"][0]["style"] == body["StyleId"], batch
