"""Selfie prompt and upload, 2D previews (SPEC §4 steps 2–4, §5)."""

from __future__ import annotations

import asyncio
import struct


from schemas import methods as m
from schemas.errors import AcsError, Conflict, InputRejected, InvalidParams, NotFound

from ..db import FileRow, Preview
from ..ids import new_id
from ..jobs import preview_job, probe_job
from ..service import Call, Service, method

MAX_PROMPT = 500

#: Roblox's PromptSelectAvatarGenerationImageAsync errors a client may answer with.
SELFIE_REFUSALS = {
    "SelfieConsentDenied": "Selfie consent not accepted",
    "MediaPermissionsDenied": "Permissions not granted for taking photo",
}


class PromptTimeout(AcsError):
    status = 408
    default_code = "Timeout"


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


@method("PromptSelectAvatarGenerationImageAsync")
async def prompt_select_image(svc: Service, call: Call, p: m.PromptSelectAvatarGenerationImageAsync) -> dict:
    session = svc.check_owner(svc.sessions.core.session(p.SessionId), call.principal, "session")
    if not svc.hub.player_online(session.experience_id, session.player_id):
        raise Conflict("The player's game client is not connected, so it cannot be asked for a selfie.",
                       code="FeatureUnavailable")
    file_id = new_id("file")
    async with svc.db.begin() as db:
        db.add(FileRow(id=file_id, session_id=session.session_id, experience_id=session.experience_id,
                       player_id=session.player_id, state="Pending", created_at=svc.clock()))
    pending = svc.prompts.open(file_id, session.experience_id, session.player_id, session.session_id)
    await svc.hub.to_player(session.experience_id, session.player_id, "PromptSelectImage", {
        "SessionId": session.session_id, "FileId": file_id, "UploadUrl": f"/v1/files/{file_id}",
    })
    timeout = p.TimeoutSeconds if p.TimeoutSeconds else svc.config.selfie_timeout
    try:
        await svc.prompts.wait(pending, timeout)
    except asyncio.TimeoutError:
        raise PromptTimeout("The player did not choose a selfie in time.") from None
    return {"FileId": file_id}


@method("RespondPromptSelectImage")
async def respond_select_image(svc: Service, call: Call, p: m.RespondPromptSelectImage) -> dict:
    reason = p.Reason or "SelfieConsentDenied"
    if reason not in SELFIE_REFUSALS:
        raise InvalidParams(f"Reason must be one of {', '.join(SELFIE_REFUSALS)}.")
    pending = svc.prompts.get(p.FileId)
    svc.check_owner(pending, call.principal, "selfie prompt")
    async with svc.db.begin() as db:
        row = await db.get(FileRow, p.FileId)
        row.state = "Declined"
    svc.prompts.fail(p.FileId, Conflict(SELFIE_REFUSALS[reason], code=reason))
    return {"FileId": p.FileId}


async def accept_upload(svc: Service, call: Call, file_id: str | None, session_id: str | None,
                        data: bytes) -> dict:
    """Store a selfie for a prompt (``file_id``) or directly for a session."""
    if file_id:
        async with svc.db() as db:
            row = svc.check_owner(await db.get(FileRow, file_id), call.principal, "file")
        if row.state != "Pending":
            raise Conflict("That file was already uploaded or declined.", code="FileNotPending")
    elif session_id:
        session = svc.check_owner(svc.sessions.core.session(session_id), call.principal, "session")
        row = None
    else:
        raise InvalidParams("Upload to /v1/files/{FileId} or pass ?SessionId=.")
    info = await svc.pool.run(probe_job, data)  # typed refusal on bad input; nothing stored
    sha = await svc.blobs.put(data)
    async with svc.db.begin() as db:
        if row is None:
            file_id = new_id("file")
            db.add(FileRow(id=file_id, session_id=session.session_id, experience_id=session.experience_id,
                           player_id=session.player_id, state="Uploaded", sha256=sha,
                           content_type=info["format"], width=info["width"], height=info["height"],
                           created_at=svc.clock()))
        else:
            row = await db.get(FileRow, file_id)
            row.state, row.sha256 = "Uploaded", sha
            row.content_type, row.width, row.height = info["format"], info["width"], info["height"]
    svc.prompts.resolve(file_id, file_id)
    return {"FileId": file_id, "Format": info["format"], "Width": info["width"], "Height": info["height"]}


@method("GenerateAvatar2DPreviewAsync")
async def generate_preview(svc: Service, call: Call, p: m.GenerateAvatar2DPreviewAsync) -> dict:
    session = svc.check_owner(svc.sessions.core.session(p.SessionId), call.principal, "session")
    async with svc.db() as db:
        f = svc.check_owner(await db.get(FileRow, p.FileId), call.principal, "file")
    if f.session_id != session.session_id or f.state != "Uploaded":
        raise NotFound("No uploaded selfie with that FileId in this session.", code="FileNotFound")
    if p.TextPrompt and len(p.TextPrompt) > MAX_PROMPT:
        raise InputRejected(f"The text prompt is longer than {MAX_PROMPT} characters.",
                            code="PromptTooLong", status=400)
    preview_id = new_id("pre")
    await svc.sessions.reserve(session.session_id, "2d", preview_id)
    try:
        await call.progress(0.0, "Queued")
        photo = await svc.blobs.get(f.sha256)
        await call.progress(0.1, "Stylizing")
        out = await svc.pool.run(preview_job, photo, p.TextPrompt, p.Style, svc.config.preview_size)
        await call.progress(0.9, "Saving")
        png_sha = await svc.blobs.put(out["png"])
        features_sha = await svc.blobs.put(out["features"])
        async with svc.db.begin() as db:
            db.add(Preview(id=preview_id, session_id=session.session_id, experience_id=session.experience_id,
                           player_id=session.player_id, file_id=f.id, png_sha=png_sha,
                           features_sha=features_sha, text_prompt=p.TextPrompt, report=out["report"],
                           created_at=svc.clock()))
    except BaseException:
        await svc.sessions.release(session.session_id, preview_id)
        raise
    await svc.sessions.commit(session.session_id, preview_id)
    await call.progress(1.0, "Done")
    return {"PreviewId": preview_id, **out["report"]}


@method("LoadAvatar2DPreviewAsync")
async def load_preview(svc: Service, call: Call, p: m.LoadAvatar2DPreviewAsync) -> dict:
    async with svc.db() as db:
        row = svc.check_owner(await db.get(Preview, p.PreviewId), call.principal, "preview")
    png = await svc.blobs.get(row.png_sha)
    width, height = png_size(png)
    return {"PreviewId": row.id, "Image": png, "Width": width, "Height": height,
            "Url": f"/v1/previews/{row.id}.png"}


async def preview_png(svc: Service, call: Call, preview_id: str) -> bytes:
    async with svc.db() as db:
        row = svc.check_owner(await db.get(Preview, preview_id), call.principal, "preview")
    return await svc.blobs.get(row.png_sha)


__all__ = ["accept_upload", "preview_png", "png_size"]
