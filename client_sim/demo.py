"""``acs demo``: start the server in-process and drive the whole flow once."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from server.admin import create_experience
from server.config import Config
from server.runner import RunningServer

from .flow import run_player_flow

__all__ = ["run_demo"]

STEPS = ("queue", "upload", "preview", "load_preview", "generate", "load_avatar", "edit_sync", "publish",
         "download")


async def run_demo(out_dir: Path, *, data_dir: Path | None = None, photo: bytes | None = None,
                   text_prompt: str | None = None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="acs-demo-") as tmp:
        config = Config(data_dir=data_dir or Path(tmp), port=0, workers=1)
        t0 = time.perf_counter()
        _exp, key = await create_experience(config, "demo")
        async with RunningServer(config) as srv:
            startup = time.perf_counter() - t0
            flow = await run_player_flow(srv.url, key, "player-1", photo=photo, text_prompt=text_prompt)
    if flow.publish.get("Result") != "Success":
        raise RuntimeError(f"publish did not succeed: {flow.publish}")
    (out_dir / "preview.png").write_bytes(flow.preview_png)
    (out_dir / "avatar.glb").write_bytes(flow.glb)
    (out_dir / "humanoid_description.json").write_text(json.dumps(flow.description, indent=2))
    return {"startup": startup, "flow": flow}


def summary(result: dict, out_dir: Path) -> str:
    flow = result["flow"]
    lines = [f"server started in {result['startup'] * 1000:.0f} ms (database, blob store, worker pool)"]
    for name in STEPS:
        if name in flow.timings:
            lines.append(f"  {name:<13} {flow.timings[name] * 1000:8.0f} ms")
    lines.append(f"  {'total':<13} {flow.timings['total'] * 1000:8.0f} ms")
    report = flow.preview
    lines += [
        f"preview: face_count={report.get('face_count')} quality={report.get('input_quality_score')} "
        f"style={report.get('style')} warnings={report.get('validation_warnings')}",
        f"edits: server and client copies converged: {flow.hashes['server_copy'] == flow.hashes['client_copy']}",
        f"publish: {flow.publish['Result']} BundleId={flow.publish.get('BundleId')} "
        f"OutfitId={flow.publish.get('OutfitId')}",
        f"wrote {out_dir / 'preview.png'}, {out_dir / 'avatar.glb'} ({len(flow.glb) // 1024} KiB), "
        f"{out_dir / 'humanoid_description.json'}",
    ]
    return "\n".join(lines)
