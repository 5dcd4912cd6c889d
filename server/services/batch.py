"""GenerateAvatar2DPreviewBatch: many photos, one style, results in input order (SPEC §5).

For a profile-photo platform calling the 2D pipeline alone: no session, so no
session allowance; instead each experience may make ``BatchPhotosPerHour``
batch previews in any hour (setting, default ``ACS_BATCH_PHOTOS_PER_HOUR``).
A batch that would go over is refused whole before any work, with what is left;
only previews actually made are counted, so refused photos cost nothing.  Each
photo gets its own preview and report, or its own typed error, and one bad photo
does not fail the others.  The photos wait for workers as one owner
(``server.fair``), so a batch shares the generation workers with sessions instead
of queueing ahead of them.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from schemas import methods as m
from schemas.errors import AcsError, InvalidParams, RequestError
from server.config import MAX_UPLOAD_BYTES
from server.core.ids import new_id
from server.db import Experience, Preview
from server.services.locks import held
from server.services.previews import preview_options, store_preview
from server.services.service import Call, Service, method

MAX_BATCH = 50
#: The window of the BatchPhotosPerHour quota.
BATCH_WINDOW = 3600.0


async def _reserve_batch(svc: Service, exp, count: int) -> str:
    """Hold ``count`` photos of the experience's hourly batch quota, or refuse; returns the hold's id.

    Holds are stored with the experience (each expires after the window, should its
    server die mid-batch), checked and taken under the experience's quota lock, so
    concurrent batches, on any replica, see each other."""
    limit = int((exp.settings or {}).get("BatchPhotosPerHour", svc.config.batch_photos_per_hour))
    hold_id = new_id("hold")
    async with held(svc.db, f"batch-quota:{exp.id}", shared=svc.config.scaled):
        now = svc.clock()
        async with svc.db.begin() as db:
            made = await db.scalar(select(func.count()).select_from(Preview).where(
                Preview.experience_id == exp.id, Preview.session_id.is_(None),
                Preview.created_at > now - BATCH_WINDOW))
            row = await db.get(Experience, exp.id)
            holds = {h: v for h, v in (row.batch_holds or {}).items() if v[1] > now}
            left = max(0, limit - made - sum(n for n, _until in holds.values()))
            if count > left:
                raise RequestError(f"This experience may make {limit} batch previews per hour; {left} are left now.",
                                   code="BatchQuotaExceeded", status=429)
            row.batch_holds = {**holds, hold_id: [count, now + BATCH_WINDOW]}
    return hold_id


async def _release_batch(svc: Service, exp_id: str, hold_id: str) -> None:
    async with held(svc.db, f"batch-quota:{exp_id}", shared=svc.config.scaled):
        async with svc.db.begin() as db:
            row = await db.get(Experience, exp_id)
            holds = {h: v for h, v in (row.batch_holds or {}).items() if h != hold_id}
            row.batch_holds = holds or None


async def run_batch(svc: Service, call: Call, photos: list[bytes], p) -> list[dict]:
    if not 1 <= len(photos) <= MAX_BATCH:
        raise InvalidParams(f"'Photos' must hold 1 to {MAX_BATCH} photos.")
    if not all(isinstance(x, bytes) for x in photos):
        raise InvalidParams("Every photo must be bytes (base64 strings in JSON requests).")
    exp = await svc.experience(call.principal)
    options = await preview_options(svc, exp, p, None)
    hold = await _reserve_batch(svc, exp, len(photos))
    done = 0

    async def one(index: int, photo: bytes) -> dict:
        nonlocal done
        try:
            if len(photo) > MAX_UPLOAD_BYTES:
                raise AcsError("The photo is larger than 10 MB.", code="ImageTooLarge", status=413)
            out = await svc.jobs.run("preview", photo, options, owner=f"{exp.id}/batch")
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

    try:
        return list(await asyncio.gather(*(one(i, photo) for i, photo in enumerate(photos))))
    finally:
        await asyncio.shield(_release_batch(svc, exp.id, hold))


@method("GenerateAvatar2DPreviewBatch")
async def generate_batch(svc: Service, call: Call, p: m.GenerateAvatar2DPreviewBatch) -> dict:
    return {"Results": await run_batch(svc, call, p.Photos, p)}
