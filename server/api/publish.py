"""PromptCreateAvatarAsync: confirm with the player, check, validate, store (SPEC §4, §6)."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError

from generation.prompt import is_offensive
from schemas import PROMPT_CREATE_AVATAR_RESULT
from schemas import methods as m
from schemas.errors import Conflict, InvalidParams

from ..db import Generation, Preview, Published
from ..documents import LiveDocument
from ..ids import new_id
from ..jobs import export_job
from ..service import Call, Service, method
from .avatars import owned_generation


def outcome(result: str, message: str | None = None, **ids) -> dict:
    out = {"Result": result, "ResultCode": PROMPT_CREATE_AVATAR_RESULT[result]}
    if message:
        out["Message"] = message
    return {**out, **ids}


@method("PromptCreateAvatarAsync")
async def prompt_create_avatar(svc: Service, call: Call, p: m.PromptCreateAvatarAsync) -> dict:
    gen = await owned_generation(svc, call, p.GenerationId)
    if gen.player_id != p.PlayerId:
        return outcome("PermissionDenied", "That generation belongs to another player.")
    exp = await svc.experience(call.principal)
    if p.TokenId is not None and p.TokenId not in (exp.settings or {}).get("CreationTokens", ()):
        return outcome("TokenInvalid", "The avatar creation token does not belong to this experience.")
    if p.Name is not None and is_offensive(p.Name):
        return outcome("ModeratedName", "That avatar name is not allowed; choose another.")
    doc = await svc.documents.open(gen)
    doc.check_editable()

    prompt_id = new_id("prm")
    pending = svc.prompts.open(prompt_id, gen.experience_id, gen.player_id, kind="publish")
    await svc.hub.to_player(gen.experience_id, gen.player_id, "PromptCreateAvatar", {
        "PromptId": prompt_id, "GenerationId": gen.id, "PlayerId": gen.player_id,
    })
    await call.progress(0.1, "WaitingForPlayer")
    timeout = p.TimeoutSeconds if p.TimeoutSeconds else svc.config.publish_timeout
    try:
        accepted, client_hash = await svc.prompts.wait(pending, timeout)
    except asyncio.TimeoutError:
        return outcome("Timeout", "The player did not answer the prompt in time.")
    if not accepted:
        return outcome("NoUserInput", "The player declined.")

    async with doc.lock:
        doc.check_editable()  # a concurrent publish may have won meanwhile
        doc.publishing = True
        server_hash = doc.avatar.content_hash()
        document = doc.wire()
    try:
        result = await _publish(svc, call, gen, doc, document, server_hash, p, client_hash)
    finally:
        doc.publishing = False
    if result["Result"] == "Success":
        doc.published = True
    return result


async def _publish(svc: Service, call: Call, gen: Generation, doc: LiveDocument, document: bytes,
                   server_hash: str, p: m.PromptCreateAvatarAsync, client_hash: str | None) -> dict:
    await call.progress(0.5, "Validating")
    stale = [who for who, h in (("game server", p.ContentHash), ("game client", client_hash))
             if h != server_hash]
    if stale:
        return outcome("InvalidHumanoidDescription",
                       f"The {' and '.join(stale)} copy is out of sync with the server's edit document "
                       f"(version {doc.version}); reload it and try again.")
    out = await svc.pool.run(export_job, document)
    if not out["ok"]:
        return outcome("UGCValidationFailed", "; ".join(out["reasons"]))

    await call.progress(0.8, "Storing")
    glb_sha = await svc.blobs.put(out["glb"])
    bundle_id, outfit_id = new_id("bnd"), new_id("out")
    try:
        async with svc.db.begin() as db:
            preview = await db.get(Preview, gen.preview_id)
            db.add(Published(bundle_id=bundle_id, outfit_id=outfit_id, experience_id=gen.experience_id,
                             player_id=gen.player_id, generation_id=gen.id,
                             name=(p.Name or f"Avatar of {gen.player_id}")[:50], glb_sha=glb_sha,
                             preview_sha=preview.png_sha, description=doc.avatar.description,
                             content_hash=server_hash, created_at=svc.clock()))
            row = await db.get(Generation, gen.id)
            row.published_bundle_id = bundle_id
    except IntegrityError:
        raise Conflict("This generation is already published.", code="AlreadyPublished") from None
    await call.progress(1.0, "Done")
    return outcome("Success", BundleId=bundle_id, OutfitId=outfit_id)


@method("RespondPromptCreateAvatar")
async def respond_create_avatar(svc: Service, call: Call, p: m.RespondPromptCreateAvatar) -> dict:
    pending = svc.prompts.get(p.PromptId, kind="publish")
    svc.check_owner(pending, call.principal, "prompt")
    if not svc.prompts.resolve(p.PromptId, (p.Accepted, p.ContentHash)):
        raise InvalidParams("That prompt was already answered or has expired.")
    return {"PromptId": p.PromptId}
