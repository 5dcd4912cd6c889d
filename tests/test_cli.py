"""The ``acs`` command line: admin keys that work, the schema export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import Http, running_server


def acs(*args, data_dir):
    env = {**os.environ, "ACS_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60)


async def test_create_experience_prints_a_working_key_stored_hashed(tmp_path, executor):
    out = acs("admin", "create-experience", "Space Game", "--allowed-2d", "3", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    assert key.startswith("acs_") and len(key) > 30
    assert key.encode() not in (tmp_path / "acs.db").read_bytes()
    listed = json.loads(acs("admin", "list-experiences", data_dir=tmp_path).stdout)
    assert listed[0]["name"] == "Space Game" and listed[0]["settings"] == {"Allowed2DGenerations": 3}
    async with running_server(tmp_path, executor) as srv:
        status, body = await Http(srv.url, key).rpc("GetValidationRules", {})
    assert status == 200 and "MeshRules" in body


def test_schema_command_prints_every_method(tmp_path):
    out = acs("schema", data_dir=tmp_path)
    schema = json.loads(out.stdout)
    assert schema["RequestAvatarGenerationSessionAsync"]["required"] == ["PlayerId"]
    assert "GenerateAvatar2DPreviewAsync" in schema


def test_preview_command_json_report_and_refusal(tmp_path, astronaut_jpeg, coffee_jpeg):
    photo = tmp_path / "selfie.jpg"
    photo.write_bytes(astronaut_jpeg)
    out = acs("preview", str(photo), "--style", "anime_character", "--prompt", "blue background banana",
              "--size", "256", "--out", str(tmp_path / "out"), "--json", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["style"] == "anime_character" and report["face_count"] == 1
    assert any("banana" in w for w in report["validation_warnings"])
    assert set(report["timings_ms"]) >= {"load", "detect", "style", "qa", "save", "total"}
    assert (tmp_path / "out" / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report

    photo.write_bytes(coffee_jpeg)
    out = acs("preview", str(photo), "--out", str(tmp_path / "out2"), "--json", data_dir=tmp_path)
    assert out.returncode == 2
    assert json.loads(out.stdout)["error"]["code"] == "NoFaceDetected"


def test_avatar_command_builds_from_a_preview_folder(tmp_path, astronaut_jpeg):
    import pygltflib

    photo = tmp_path / "selfie.jpg"
    photo.write_bytes(astronaut_jpeg)
    assert acs("preview", str(photo), "--size", "256", "--out", str(tmp_path / "pre"), data_dir=tmp_path).returncode == 0
    out = acs("avatar", str(tmp_path / "pre"), "--out", str(tmp_path / "av"), "--json", data_dir=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["Ok"] is True and summary["FailureReasons"] == []
    from meshes.r15 import PART_NAMES

    assert set(summary["Triangles"]) == {*PART_NAMES, "HairAccessory"}
    glb = (tmp_path / "av" / "avatar.glb").read_bytes()
    assert len(glb) == summary["GlbBytes"]
    gltf = pygltflib.GLTF2.load_from_bytes(glb)
    assert gltf.skins and len(gltf.skins[0].joints) >= 15
    description = json.loads((tmp_path / "av" / "humanoid_description.json").read_text())
    assert len(description["BodyParts"]) == 6

    missing = acs("avatar", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "--json", data_dir=tmp_path)
    assert missing.returncode == 2 and json.loads(missing.stdout)["error"]["code"] == "PreviewNotFound"


def test_admin_commands_work_against_postgresql(tmp_path, postgres):
    import asyncio

    url = asyncio.run(postgres.create_database())
    env = {**os.environ, "ACS_DATABASE_URL": url, "ACS_DATA_DIR": str(tmp_path)}
    made = subprocess.run([sys.executable, "-m", "server.cli", "admin", "create-experience", "On Postgres"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith("acs_")
    listed = subprocess.run([sys.executable, "-m", "server.cli", "admin", "list-experiences"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert [e["name"] for e in json.loads(listed.stdout)] == ["On Postgres"]
    assert not (tmp_path / "acs.db").exists()  # nothing went to SQLite
