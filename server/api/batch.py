"""GenerateAvatar2DPreviewBatch: many photos, one style, results in input order (SPEC §5).

For a profile-photo platform calling the 2D pipeline alone: no session and no
allowance; each photo gets its own preview and report, or its own typed error,
and one bad photo does not fail the others.
"""

from __future__ import annotations

import asyncio

from schemas import methods as m
from schemas.errors import AcsError, InvalidParams

from ..config import MAX_UPLOAD_BYTES
from ..ids import new_id
from ..jobs import preview_job
from ..service import Call, Service, method
from .previews import preview_options, store_preview

MAX_BATCH = 50


async def run_batch(svc: Service, call: Call, photos: list[bytes], p) -> list[dict]:
    if not 1 <= len(photos) <= MAX_BATCH:
        raise InvalidParams(f"'Photos' must hold 1 to {MAX_BATCH} photos.")
    if not all(isinstance(x, bytes) for x in photos):
        raise InvalidParams("Every photo must be bytes (base64 strings in JSON requests).")
    exp = await svc.experience(call.principal)
    options = preview_options(svc, exp, p, None)
    done = 0

    async def one(index: int, photo: bytes) -> dict:
        nonlocal done
        try:
            if len(photo) > MAX_UPLOAD_BYTES:
                raise AcsError("The photo is larger than 10 MB.", code="ImageTooLarge", status=413)
            out = await svc.pool.run(preview_job, photo, options)
            preview_id = new_id("pre")
            await store_preview(svc, out, preview_id, session_id=None, experience_id=exp.id, player_id="",
                                file_id=None, text_prompt=p.TextPrompt)
            result = {"Index": index, "PreviewId": preview_id, "Url": f"/v1/previews/{preview_id}.png",
                      **out["report"]}
        except AcsError as err:
            result = {"Index": index, "error": err.to_wire()}
        done += 1
        await call.progress(done / len(photos), f"{done}/{len(photos)}")
        return result

    return list(await asyncio.gather(*(one(i, photo) for i, photo in enumerate(photos))))


@method("GenerateAvatar2DPreviewBatch")
async def generate_batch(svc: Service, call: Call, p: m.GenerateAvatar2DPreviewBatch) -> dict:
    return {"Results": await run_batch(svc, call, p.Photos, p)}
