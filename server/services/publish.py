"""PromptCreateAvatarAsync: confirm with the player, check, validate, store (SPEC §4, §6).

Every ``PromptCreateAvatarResult`` is produced where its condition is real:

* ``PermissionDenied`` another player's generation; ``TokenInvalid`` a ``TokenId`` the
  experience does not hold (only token hashes are stored, see
  :func:`server.auth.hash_creation_token`); ``ModeratedName`` an offensive ``Name``;
  ``MaxOutfits`` the player already has ``MaxOutfitsPerPlayer`` published outfits in this
  experience -- all before the player is asked.
* ``Timeout`` / ``NoUserInput`` the player did not answer / declined.
* ``InvalidHumanoidDescription`` a copy out of sync; ``UGCValidationFailed`` the body fails
  validation.
* ``MaxOutfits`` again (checked under a per-player lock, so concurrent publishes of two
  generations cannot both pass the cap); ``PurchaseFailure`` the experience's
  ``PurchaseCallbackUrl`` refused, failed or could not be reached in
  the purchase port's time limit (5 s); ``UploadFailed`` the blob store could not write the
  exported glb; ``UnknownFailure`` anything unexpected after the player accepted (logged
  with its traceback).  In none of these is anything stored or the generation marked
  published: it stays editable and may be published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from generation.prompt import is_offensive
from schemas import PROMPT_CREATE_AVATAR_RESULT
from schemas import methods as m
from schemas.errors import AcsError, Conflict, InvalidParams
from server.core.auth import creation_token_matches
from server.core.ids import new_id
from server.db import Generation, Preview, Published
from server.services.avatars import owned_generation
from server.services.documents import LiveDocument
from server.services.locks import held
from server.services.service import Call, Service, method

log = logging.getLogger(__name__)

def outcome(result: str, message: str | None = None, **ids) -> dict:
    out = {"Result": result, "ResultCode": PROMPT_CREATE_AVATAR_RESULT[result]}
    if message:
        out["Message"] = message
    return {**out, **ids}


async def _outfit_limit_reached(svc: Service, gen: Generation, settings: dict) -> dict | None:
    """The ``MaxOutfits`` outcome when the player has used up the experience's cap, else None."""
    cap = settings.get("MaxOutfitsPerPlayer")
    if cap is None:
        return None
    async with svc.db() as db:
        count = await db.scalar(select(func.count()).select_from(Published).where(
            Published.experience_id == gen.experience_id, Published.player_id == gen.player_id))
    if count >= cap:
        return outcome("MaxOutfits", f"This player already has {count} published avatar(s); "
                                     f"this experience allows {cap}.")
    return None


@method("PromptCreateAvatarAsync")
async def prompt_create_avatar(svc: Service, call: Call, p: m.PromptCreateAvatarAsync) -> dict:
    result = await _prompt_create_avatar(svc, call, p)
    svc.metrics.publish_results.labels(result["Result"]).inc()
    return result


async def _prompt_create_avatar(svc: Service, call: Call, p: m.PromptCreateAvatarAsync) -> dict:
    gen = await owned_generation(svc, call, p.GenerationId)
    if gen.player_id != p.PlayerId:
        return outcome("PermissionDenied", "That generation belongs to another player.")
    exp = await svc.experience(call.principal)
    settings = exp.settings or {}
    if p.TokenId is not None and not creation_token_matches(p.TokenId, settings.get("CreationTokens", ())):
        return outcome("TokenInvalid", "The avatar creation token does not belong to this experience.")
    if p.Name is not None and is_offensive(p.Name):
        return outcome("ModeratedName", "That avatar name is not allowed; choose another.")
    doc = await svc.documents.open(gen)
    doc.check_editable()
    refusal = await _outfit_limit_reached(svc, gen, settings)
    if refusal is not None:
        return refusal

    prompt_id = new_id("prm")
    timeout = p.TimeoutSeconds if p.TimeoutSeconds else svc.config.publish_timeout
    pending = await svc.prompts.open(prompt_id, gen.experience_id, gen.player_id, kind="publish",
                                     ttl=timeout + 60)
    await svc.bus.to_player(gen.experience_id, gen.player_id, "PromptCreateAvatar", {
        "PromptId": prompt_id, "GenerationId": gen.id, "PlayerId": gen.player_id,
    })
    await call.progress(0.1, "WaitingForPlayer")
    try:
        accepted, client_hash = await svc.prompts.wait(pending, timeout)
    except asyncio.TimeoutError:
        return outcome("Timeout", "The player did not answer the prompt in time.")
    if not accepted:
        return outcome("NoUserInput", "The player declined.")

    ours = False  # whether this call set doc.publishing (and so must clear it)
    try:
        async with contextlib.AsyncExitStack() as publishing:
            async with doc.lock:
                # Scaled out, the document's lock is held across replicas until the outcome is
                # stored: edits and other publishes wait, then find it published.  (Taken under
                # doc.lock, as an edit takes it, and doc.lock is not taken again meanwhile.)
                await svc.documents.hold_for_publish(doc, publishing)
                doc.check_editable()  # a concurrent publish may have won meanwhile
                doc.publishing = ours = True
                server_hash = doc.avatar.content_hash()
                document = doc.wire()
            result = await _publish(svc, call, gen, doc, document, server_hash, p, client_hash, settings)
    except AcsError:
        raise
    except Exception:
        log.exception("publishing generation %s failed", gen.id)
        result = outcome("UnknownFailure", "Something went wrong while creating the avatar; nothing was stored. "
                                           "Try again.")
    finally:
        if ours:
            doc.publishing = False
    if result["Result"] == "Success":
        doc.published = True
    return result


async def _publish(svc: Service, call: Call, gen: Generation, doc: LiveDocument, document: bytes,
                   server_hash: str, p: m.PromptCreateAvatarAsync, client_hash: str | None,
                   settings: dict) -> dict:
    await call.progress(0.5, "Validating")
    stale = [who for who, h in (("game server", p.ContentHash), ("game client", client_hash))
             if h != server_hash]
    if stale:
        return outcome("InvalidHumanoidDescription",
                       f"The {' and '.join(stale)} copy is out of sync with the server's edit document "
                       f"(version {doc.version}); reload it and try again.")
    out = await svc.jobs.run("export", document, owner=gen.session_id)
    if not out["ok"]:
        return outcome("UGCValidationFailed", "; ".join(out["reasons"]))

    name = (p.Name or f"Avatar of {gen.player_id}")[:50]
    # One publish per player at a time from here (on every replica): the outfit count stays exact.
    async with held(svc.db, f"outfits:{gen.experience_id}:{gen.player_id}", shared=svc.config.scaled):
        refusal = await _outfit_limit_reached(svc, gen, settings)
        if refusal is not None:
            return refusal
        url = settings.get("PurchaseCallbackUrl")
        if url:
            await call.progress(0.7, "Purchasing")
            why = await svc.purchases.confirm(url, {"ExperienceId": gen.experience_id, "PlayerId": gen.player_id,
                                                    "GenerationId": gen.id, "Name": name})
            if why is not None:
                return outcome("PurchaseFailure", why)

        await call.progress(0.8, "Storing")
        try:
            glb_sha = await svc.blobs.put(out["glb"])  # atomic: a failed write leaves no blob behind
        except OSError as exc:
            log.error("storing the glb of generation %s failed: %s", gen.id, exc)
            return outcome("UploadFailed", "The avatar could not be stored; nothing was published. Try again.")
        bundle_id, outfit_id = new_id("bnd"), new_id("out")
        try:
            async with svc.db.begin() as db:
                preview = await db.get(Preview, gen.preview_id)
                db.add(Published(bundle_id=bundle_id, outfit_id=outfit_id, experience_id=gen.experience_id,
                                 player_id=gen.player_id, generation_id=gen.id, name=name, glb_sha=glb_sha,
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
    pending = await svc.prompts.get(p.PromptId, kind="publish")
    svc.check_owner(pending, call.principal, "prompt")
    if not await svc.prompts.resolve(p.PromptId, (p.Accepted, p.ContentHash)):
        raise InvalidParams("That prompt was already answered or has expired.")
    return {"PromptId": p.PromptId}
