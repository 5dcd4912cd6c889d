"""What an operator reads: Prometheus metrics at /metrics, scraped from a live server; JSON logs."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from client_sim.sdk import GameClient, GameServer
from server import logs
from server.admin import create_experience
from server.config import Config

from .conftest import Http, active_session, generate, new_experience, running_server
from .services import free_port

TIMEOUT = 60


async def scrape(url: str, headers: dict | None = None) -> dict[tuple, float]:
    """``/metrics`` parsed by Prometheus's own parser: ``{(sample name, labels...): value}``."""
    async with aiohttp.ClientSession(headers=headers or {}) as http:
        async with http.get(f"{url}/metrics") as r:
            assert r.status == 200, await r.text()
            assert r.headers["Content-Type"].startswith("text/plain; version=")
            text = await r.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, *sorted(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, *sorted(labels.items())), 0.0)


async def test_metrics_follow_a_players_whole_flow(tmp_path, executor, astronaut_jpeg):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, capacity=1) as srv:
        before = await scrape(srv.url)
        assert value(before, "acs_active_sessions") == 0 and value(before, "acs_session_queue_length") == 0
        assert value(before, "acs_session_capacity") == 1
        assert value(before, "acs_generation_workers") >= 1  # the pool's processes, alive
        assert value(before, "acs_generation_workers_expected") == 2

        async with GameServer(srv.url, key) as gs:
            token = await gs.CreatePlayerToken("alice")
            client = GameClient(srv.url, token, confirm_publish=lambda _p: asyncio.sleep(0, True))
            await client.connect()
            info = await active_session(gs, "alice")
            bob_ready = asyncio.get_running_loop().create_future()
            await gs.RequestAvatarGenerationSessionAsync("bob", bob_ready.set_result)

            during = await scrape(srv.url)
            assert value(during, "acs_active_sessions") == 1
            assert value(during, "acs_session_queue_length") == 1
            assert value(during, "acs_websocket_connections", role="server") == 1
            assert value(during, "acs_websocket_connections", role="client") == 1

            # A refused call over each transport, counted by its code.
            status, _ = await Http(srv.url, key).rpc("GenerateAvatarAsync", {"SessionId": "ses_nope",
                                                                              "PreviewId": "prv_nope"})
            assert status == 409
            try:
                await gs.GenerateAvatarAsync({"SessionId": "ses_nope", "PreviewId": "prv_nope"})
            except Exception as exc:  # the SDK raises the typed refusal
                assert getattr(exc, "code", None) == "SessionNotActive"
            else:
                raise AssertionError("a call on an unknown session must be refused")

            _preview, generation_id = await generate(gs, srv.url, token, astronaut_jpeg, info["SessionId"])
            await asyncio.wait_for(bob_ready, TIMEOUT)  # Alice's build ended her session: Bob's turn
            copy = await gs.LoadGeneratedAvatarAsync(generation_id)
            await client.LoadGeneratedAvatarAsync(generation_id)
            head = copy.avatar.parts["Head"]
            ops = [{"op": "SetPosition", "Part": "Head", "VertexId": vid,
                    "Position": [c + 0.01 for c in head.GetPosition(vid)]} for vid in head.GetVertices()[:3]]
            await copy.edit(ops)
            result = await gs.PromptCreateAvatarAsync(None, "alice", copy)
            assert result["Result"] == "Success"
            after = await scrape(srv.url)
            await client.close()

    assert value(after, "acs_refusals_total", code="SessionNotActive", transport="http") == 1
    assert value(after, "acs_refusals_total", code="SessionNotActive", transport="ws") == 1
    assert value(after, "acs_calls_total", method="GenerateAvatarAsync", outcome="SessionNotActive") == 2
    assert value(after, "acs_calls_total", method="GenerateAvatarAsync", outcome="ok") == 1
    # Jobs timed as a whole, and the preview's stages from its own timings.
    for job in ("probe", "preview", "avatar", "export"):
        assert value(after, "acs_job_duration_seconds_count", job=job, outcome="ok") == 1, job
    assert value(after, "acs_job_duration_seconds_sum", job="avatar", outcome="ok") > 0.2
    assert value(after, "acs_generation_stage_seconds_count", job="preview", stage="detect") == 1
    # Alice started at once, Bob waited for her slot.
    assert value(after, "acs_session_queue_wait_seconds_count") == 2
    assert value(after, "acs_session_queue_wait_seconds_bucket", le="0.1") == 1
    assert value(after, "acs_edit_ops_total", origin="server") == 3
    assert value(after, "acs_edit_batches_total", origin="server") == 1
    assert value(after, "acs_publish_results_total", result="Success") == 1
    assert value(after, "acs_active_sessions") == 1 and value(after, "acs_session_queue_length") == 0


async def test_metrics_token(tmp_path, executor):
    async with running_server(tmp_path, executor, metrics_token="scrape-secret") as srv:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with http.get(f"{srv.url}/metrics", headers=headers) as r:
                    assert r.status == 401
                    assert (await r.json())["error"]["code"] == "Unauthorized"
        samples = await scrape(srv.url, {"Authorization": "Bearer scrape-secret"})
        # the refused scrapes are themselves counted
        assert value(samples, "acs_refusals_total", code="Unauthorized", transport="http") == 2


def test_redact_masks_keys_and_tokens_only():
    from server.core.auth import PlayerTokens, new_api_key

    key, _ = new_api_key()
    token, _ = PlayerTokens(b"k" * 32).issue("exp_1", "player one", 0.0, 60)
    line = logs.redact(f"GET /v1/ws?token={token} key={key} file=avatar_glb.glb id=ses_0123456789abcdef")
    assert key not in line and token not in line
    assert line == "GET /v1/ws?token=*** key=*** file=avatar_glb.glb id=ses_0123456789abcdef"


async def test_json_logs_carry_the_request_and_the_caller_and_no_secret(tmp_path):
    from .test_sigkill_restart import start_server

    exp_id, key = await create_experience(Config(data_dir=tmp_path), "logged")
    port, log = free_port(), tmp_path / "server.log"
    proc = await start_server(tmp_path, port, log=log, ACS_LOG_FORMAT="json", ACS_MAX_FRAME_BYTES="4096")
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            async with http.post(f"{url}/v1/rpc/CreatePlayerToken", json={"PlayerId": "p1"},
                                 headers={"X-Request-Id": "trace-42"}) as r:
                assert r.headers["X-Request-Id"] == "trace-42"
                token = (await r.json())["Token"]
            async with http.post(f"{url}/v1/rpc/GetValidationRules", json={},
                                 headers={"X-Request-Id": "bad id with spaces"}) as r:
                generated = r.headers["X-Request-Id"]
                assert generated.startswith("req_")
        async with aiohttp.ClientSession() as http:
            # a token in the URL (as a browser page might send it), and an oversized frame
            async with http.get(f"{url}/v1/previews/pre_missing.png?token={token}") as r:
                assert r.status == 404
            async with http.ws_connect(f"{url}/v1/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.send_bytes(b"\x00" * 10_000)
                await ws.receive()
        await asyncio.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert key not in text and token not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert lines and all({"time", "level", "logger", "message"} <= set(d) for d in lines)
    traced = [d for d in lines if d.get("request_id") == "trace-42"]
    assert traced and traced[-1]["experience_id"] == exp_id and traced[-1]["method"] == "CreatePlayerToken"
    assert '"POST /v1/rpc/CreatePlayerToken' in traced[-1]["message"]  # the access line
    assert any(d.get("request_id") == generated for d in lines)
    [preview] = [d for d in lines if "/v1/previews/pre_missing.png" in d["message"]]
    assert preview["player_id"] == "p1" and "token=***" in preview["message"]
    [frame] = [d for d in lines if d["message"].startswith("websocket error")]
    assert frame["player_id"] == "p1" and frame["experience_id"] == exp_id and frame["request_id"].startswith("req_")
