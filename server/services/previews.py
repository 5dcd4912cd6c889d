"""Selfie prompt and upload, 2D previews (SPEC §4 steps 2–4, §5)."""

from __future__ import annotations

import asyncio
import logging
import struct

from sqlalchemy import update

from schemas import methods as m
from schemas.errors import (
    AcsError,
    Conflict,
    InputRejected,
    InvalidParams,
    NotFound,
    RequestError,
)
from server.core.ids import new_id
from server.db import FileRow, Preview
from server.services.service import Call, Service, method

log = logging.getLogger(__name__)

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


#: Scaled out, how long a player's just-opened socket on another replica may take to show.
PRESENCE_SETTLE = 1.0


async def _player_online(svc: Service, session) -> bool:
    online = await svc.bus.player_online(session.experience_id, session.player_id)
    deadline = svc.clock() + (PRESENCE_SETTLE if svc.config.scaled else 0.0)
    while not online and svc.clock() < deadline:
        await asyncio.sleep(0.05)
        online = await svc.bus.player_online(session.experience_id, session.player_id)
    return online


@method("PromptSelectAvatarGenerationImageAsync")
async def prompt_select_image(svc: Service, call: Call, p: m.PromptSelectAvatarGenerationImageAsync) -> dict:
    session = await svc.active_session(p.SessionId, call.principal)
    if not await _player_online(svc, session):
        raise Conflict("The player's game client is not connected, so it cannot be asked for a selfie.",
                       code="FeatureUnavailable")
    file_id = new_id("file")
    # Refuses a second open prompt for the session before anything is stored.
    timeout = p.TimeoutSeconds if p.TimeoutSeconds else svc.config.selfie_timeout
    pending = await svc.prompts.open(file_id, session.experience_id, session.player_id, kind="selfie",
                                     session_id=session.session_id, ttl=timeout + 60)
    try:
        async with svc.db.begin() as db:
            db.add(FileRow(id=file_id, session_id=session.session_id, experience_id=session.experience_id,
                           player_id=session.player_id, state="Pending", created_at=svc.clock()))
        await svc.bus.to_player(session.experience_id, session.player_id, "PromptSelectImage", {
            "SessionId": session.session_id, "FileId": file_id, "UploadUrl": f"/v1/files/{file_id}",
        })
        await svc.prompts.wait(pending, timeout)
    except BaseException as exc:
        # Timed out, declined, session ended or the caller went away: the upload
        # slot closes, so a late upload cannot land in it.
        await svc.prompts.discard(file_id)
        async with svc.db.begin() as db:
            await db.execute(update(FileRow).where(FileRow.id == file_id, FileRow.state == "Pending")
                             .values(state="Expired"))
        if isinstance(exc, asyncio.TimeoutError):
            raise PromptTimeout("The player did not choose a selfie in time.") from None
        raise
    return {"FileId": file_id}


@method("RespondPromptSelectImage")
async def respond_select_image(svc: Service, call: Call, p: m.RespondPromptSelectImage) -> dict:
    reason = p.Reason or "SelfieConsentDenied"
    if reason not in SELFIE_REFUSALS:
        raise InvalidParams(f"Reason must be one of {', '.join(SELFIE_REFUSALS)}.")
    svc.check_owner(await svc.prompts.get(p.FileId, kind="selfie"), call.principal, "selfie prompt")
    async with svc.db.begin() as db:
        declined = (await db.execute(update(FileRow).where(FileRow.id == p.FileId, FileRow.state == "Pending")
                                     .values(state="Declined"))).rowcount
    if not declined:
        raise Conflict("That selfie was already uploaded.", code="FileNotPending")
    await svc.prompts.fail(p.FileId, Conflict(SELFIE_REFUSALS[reason], code=reason))
    return {"FileId": p.FileId}


def check_upload_room(svc: Service, session, size: int) -> None:
    """Refuse a selfie the session has no room for (``ACS_UPLOADS_PER_SESSION`` selfies,
    ``ACS_UPLOAD_BYTES_PER_SESSION`` bytes); checked before any work is done on it."""
    cfg = svc.config
    if session.uploads >= cfg.uploads_per_session:
        raise RequestError(f"This session already received {cfg.uploads_per_session} selfies, the most it may.",
                           code="TooManyUploads", status=429)
    if session.upload_bytes + size > cfg.upload_bytes_per_session:
        raise RequestError(f"This session's selfies may total at most {cfg.upload_bytes_per_session // 2**20} MB.",
                           code="UploadQuotaExceeded", status=413)


async def accept_upload(svc: Service, call: Call, file_id: str | None, session_id: str | None,
                        data: bytes) -> dict:
    """Store a selfie for a prompt (``file_id``) or directly for a session."""
    if file_id:
        async with svc.db() as db:
            row = svc.check_owner(await db.get(FileRow, file_id), call.principal, "file")
        session_id = row.session_id
    elif not session_id:
        raise InvalidParams("Upload to /v1/files/{FileId} or pass ?SessionId=.")
    session = await svc.active_session(session_id, call.principal)
    if file_id and row.state != "Pending":
        raise Conflict("That file was already uploaded, declined or expired.", code="FileNotPending")
    # Room is taken before the photo is decoded, so concurrent uploads cannot all pass the
    # check; a refused or failed upload gives it back.
    await svc.sessions.take_upload_room(session_id, len(data), lambda s, size: check_upload_room(svc, s, size))
    stored = False
    try:
        info = await svc.jobs.run("probe", data, owner=session_id)  # typed refusal on bad input
        # Checked again under the queue lock: a session that ended meanwhile has already
        # had its selfies deleted, so this one must not be kept.
        async with svc.sessions.while_active(session_id):
            async with svc.db.begin() as db:
                if file_id:
                    row = await db.get(FileRow, file_id)
                    if row.state != "Pending":
                        raise Conflict("That file was already uploaded, declined or expired.",
                                       code="FileNotPending")
                else:
                    file_id = new_id("file")
                    row = FileRow(id=file_id, session_id=session_id, experience_id=session.experience_id,
                                  player_id=session.player_id, created_at=svc.clock())
                    db.add(row)
                try:
                    row.sha256 = await svc.blobs.put(data)
                except OSError:
                    log.exception("selfie of session %s not stored", session_id)
                    raise AcsError("The selfie could not be stored; try again.", code="UploadFailed",
                                   status=503) from None
                row.state = "Uploaded"
                row.content_type, row.width, row.height = info["format"], info["width"], info["height"]
        stored = True
    finally:
        if not stored:
            await asyncio.shield(svc.sessions.give_back_upload_room(session_id, len(data)))
    await svc.prompts.resolve(file_id, file_id)
    return {"FileId": file_id, "Format": info["format"], "Width": info["width"], "Height": info["height"]}


async def preview_options(svc: Service, exp, p, session_id: str | None) -> dict:
    """make_preview's keywords from the call, the experience's settings and the server config.

    A ``Style`` (or ``DefaultStyle`` setting) that is a custom style's id brings that style's
    fitted parameters (``custom_style``); another experience's is refused like an unknown style."""
    if p.TextPrompt and len(p.TextPrompt) > MAX_PROMPT:
        raise InputRejected(f"The text prompt is longer than {MAX_PROMPT} characters.",
                            code="PromptTooLong", status=400)
    palette = None
    if p.Palette is not None:
        ok = all(isinstance(c, list) and len(c) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c) for c in p.Palette)
        if not ok or not 1 <= len(p.Palette) <= 4:
            raise InvalidParams("'Palette' must be 1 to 4 colours, each [r, g, b] with integers 0..255.")
        palette = [tuple(c) for c in p.Palette]
    settings = exp.settings or {}
    style = p.Style or settings.get("DefaultStyle")
    custom = None
    if style and style.startswith(m.STYLE_ID_PREFIX):
        custom = await svc.styles.fitted(exp.id, style)
    return {
        "text_prompt": p.TextPrompt,
        "style": style,
        "custom_style": custom,
        "size": svc.config.high_res_size if p.HighRes else svc.config.preview_size,
        "palette": palette,
        "likeness_threshold": settings.get("LikenessThreshold"),
        "session_id": session_id,
        "backend": svc.config.style_backend,
        "diffusion_model": svc.config.diffusion_model,
        "seed": getattr(p, "Seed", None),
    }


async def store_preview(svc: Service, out: dict, preview_id: str, **row) -> None:
    """Blobs first, then the row (with the session's charge, if any), so a row never
    points at a missing blob and a stored preview is charged exactly once."""
    png_sha, thumb_sha, features_sha = [await svc.blobs.put(out[k]) for k in ("png", "thumbnail", "features")]

    def write(db) -> None:
        db.add(Preview(id=preview_id, png_sha=png_sha, thumb_sha=thumb_sha, features_sha=features_sha,
                       report=out["report"], created_at=svc.clock(), **row))

    if row["session_id"] is None:
        async with svc.db.begin() as db:
            write(db)
    else:
        await asyncio.shield(svc.sessions.commit(row["session_id"], preview_id, write))


@method("GenerateAvatar2DPreviewAsync")
async def generate_preview(svc: Service, call: Call, p: m.GenerateAvatar2DPreviewAsync) -> dict:
    session = await svc.active_session(p.SessionId, call.principal)
    async with svc.db() as db:
        f = svc.check_owner(await db.get(FileRow, p.FileId), call.principal, "file")
    if f.session_id != session.session_id or f.state != "Uploaded":
        raise NotFound("No uploaded selfie with that FileId in this session.", code="FileNotFound")
    options = await preview_options(svc, await svc.experience(call.principal), p, session.session_id)
    preview_id = new_id("pre")
    await svc.sessions.reserve(session.session_id, "2d", preview_id)
    progress = svc.shared_progress(call, session, "Preview", preview_id)
    try:
        await progress(0.0, "Queued")
        photo = await svc.blobs.get(f.sha256)
        await progress(0.1, "Stylizing")
        out = await svc.jobs.run("preview", photo, options, owner=session.session_id)
        await progress(0.9, "Saving")
        await store_preview(svc, out, preview_id, session_id=session.session_id,
                            experience_id=session.experience_id, player_id=session.player_id,
                            file_id=f.id, text_prompt=p.TextPrompt)
    except BaseException:
        await asyncio.shield(svc.sessions.release(session.session_id, preview_id))
        raise
    await progress(1.0, "Done")
    return {"PreviewId": preview_id, **out["report"]}


@method("LoadAvatar2DPreviewAsync")
async def load_preview(svc: Service, call: Call, p: m.LoadAvatar2DPreviewAsync) -> dict:
    async with svc.db() as db:
        row = svc.check_owner(await db.get(Preview, p.PreviewId), call.principal, "preview")
    png = await svc.blobs.get(row.png_sha)
    width, height = png_size(png)
    return {"PreviewId": row.id, "Image": png, "Width": width, "Height": height,
            "Url": f"/v1/previews/{row.id}.png", "ThumbnailUrl": f"/v1/previews/{row.id}/thumbnail.png"}


async def preview_png(svc: Service, call: Call, preview_id: str, *, thumbnail: bool = False) -> bytes:
    async with svc.db() as db:
        row = svc.check_owner(await db.get(Preview, preview_id), call.principal, "preview")
    return await svc.blobs.get(row.thumb_sha if thumbnail else row.png_sha)


__all__ = ["accept_upload", "preview_png", "png_size"]
