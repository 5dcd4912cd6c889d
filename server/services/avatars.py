"""3D generation, loading the shared edit document, edits and validation (SPEC §4, §6, §7)."""

from __future__ import annotations

import asyncio

import numpy as np

from meshes import Avatar, GetValidationRules, export_glb, validate_full_body
from meshes.r15 import BONE_INDEX
from meshes.sync import SIDE_SERVICE, IdAllocator
from schemas import methods as m
from schemas.errors import Conflict, InvalidParams, NotFound
from server.core.ids import new_id
from server.db import Generation, Preview
from server.services.documents import MAX_OPS_PER_BATCH
from server.services.service import Call, Service, method


async def owned_generation(svc: Service, call: Call, generation_id: str) -> Generation:
    async with svc.db() as db:
        return svc.check_owner(await db.get(Generation, generation_id), call.principal, "generation")


@method("GenerateAvatarAsync")
async def generate_avatar(svc: Service, call: Call, p: m.GenerateAvatarAsync) -> dict:
    session = await svc.active_session(p.SessionId, call.principal)
    async with svc.db() as db:
        preview = svc.check_owner(await db.get(Preview, p.PreviewId), call.principal, "preview")
    if preview.session_id != session.session_id:
        raise NotFound("No preview with that PreviewId in this session.", code="PreviewNotFound")
    generation_id = new_id("gen")
    await svc.sessions.reserve(session.session_id, "3d", generation_id)
    progress = svc.shared_progress(call, session, "Avatar", generation_id)
    try:
        await progress(0.0, "Queued")
        png, features = await asyncio.gather(svc.blobs.get(preview.png_sha), svc.blobs.get(preview.features_sha))
        await progress(0.1, "Building")
        # The build's seed: the call's, else the preview's (a seeded preview gives a seeded avatar).
        seed = p.Seed if p.Seed is not None else (preview.report or {}).get("seed")
        out = await svc.jobs.run("avatar", png, features, preview.text_prompt, seed, owner=session.session_id)
        await progress(0.9, "Saving")
        doc_sha = await svc.blobs.put(out["document"])
        glb_sha = await svc.blobs.put(out["glb"])
        row = Generation(id=generation_id, session_id=session.session_id, experience_id=session.experience_id,
                         player_id=session.player_id, preview_id=preview.id, document_sha=doc_sha,
                         glb_sha=glb_sha, description=out["description"], created_at=svc.clock())
        await asyncio.shield(svc.sessions.commit(session.session_id, generation_id, lambda db: db.add(row)))
    except BaseException:
        await asyncio.shield(svc.sessions.release(session.session_id, generation_id))
        raise
    await progress(1.0, "Done")
    return {"GenerationId": generation_id}


@method("LoadGeneratedAvatarAsync")
async def load_avatar(svc: Service, call: Call, p: m.LoadGeneratedAvatarAsync) -> dict:
    gen = await owned_generation(svc, call, p.GenerationId)
    doc = await svc.documents.open(gen)
    flag = "loaded_by_server" if call.principal.role == "server" else "loaded_by_client"
    async with svc.db.begin() as db:
        row = await db.get(Generation, gen.id)
        setattr(row, flag, True)
    async with doc.lock:
        svc.documents.subscribe(doc, call.conn)
        document, content_hash = await doc.bundle()
        return {
            "GenerationId": gen.id,
            "HumanoidDescription": document["description"],
            "Document": document,
            "Version": doc.version,
            "ContentHash": content_hash,
            "GlbUrl": f"/v1/generations/{gen.id}.glb",
        }


@method("ApplyEdits")
async def apply_edits(svc: Service, call: Call, p: m.ApplyEdits) -> dict:
    doc = await owned_document(svc, call, p.GenerationId)
    submitted = await svc.documents.apply(doc, p.Ops, call.conn, call.principal.role,
                                          base_version=p.BaseVersion, batch_id=p.BatchId)
    if not submitted.duplicate:
        svc.metrics.edits(call.principal.role, len(p.Ops))
    return {"GenerationId": doc.generation_id, "Version": submitted.version, "Duplicate": submitted.duplicate}


@method("SyncDocument")
async def sync_document(svc: Service, call: Call, p: m.SyncDocument) -> dict:
    doc = await owned_document(svc, call, p.GenerationId)
    return await svc.documents.sync(doc, -1 if p.Snapshot else p.Version, call.conn)


async def owned_document(svc: Service, call: Call, generation_id: str):
    """The open edit document of a generation the caller owns (no database read when open)."""
    doc = svc.documents.cached(generation_id)
    if doc is None:
        return await svc.documents.open(await owned_generation(svc, call, generation_id))
    return svc.check_owner(doc, call.principal, "generation")


#: Most ops a hairstyle batch may hold (a bun swapped for a ponytail takes about 1,100).
MAX_HAIRSTYLE_OPS = 4 * MAX_OPS_PER_BATCH


@method("SetHairstyle")
async def set_hairstyle(svc: Service, call: Call, p: m.SetHairstyle) -> dict:
    """Rebuilds the hair in a generation job, then orders the edits as one batch like any
    other (relayed to every copy, the caller's too); one hairstyle at a time per document."""
    if p.Style not in m.HAIR_STYLES:
        raise InvalidParams(f"Unknown Style {p.Style!r}; one of {', '.join(m.HAIR_STYLES)}.")
    doc = await owned_document(svc, call, p.GenerationId)

    def job_args(doc) -> tuple:
        doc.check_editable()
        avatar = doc.avatar
        if "HairAccessory" not in avatar.parts:
            raise Conflict("This avatar has no hair accessory to restyle.", code="NoHairAccessory")
        built = next((a.get("Color") for a in (avatar.metadata.get("BuiltColors") or {}).get("Accessories", [])
                      if a.get("Instance") == "HairAccessory"), None) or [0.24, 0.16, 0.12]
        head = avatar.parts["Head"]
        return (doc.version, {"positions": head.positions.astype(np.float32).tobytes(),
                              "triangles": head.triangles.astype(np.int32).tobytes()},
                avatar.parts["HairAccessory"].to_wire(), p.Style, [round(c * 255) for c in built],
                IdAllocator.resume(SIDE_SERVICE, avatar).next(), BONE_INDEX["Head"])

    if doc.restyling:
        raise Conflict("A hairstyle is already being made for this avatar; wait for it.",
                       code="HairstyleInProgress")
    doc.restyling = True
    try:
        version, *args = await svc.documents.read(doc, job_args)
        out = await svc.jobs.run("hairstyle", *args, owner=doc.generation_id)
        # one batch, so no copy ever sees half a hairstyle
        submitted = await svc.documents.apply(doc, out["ops"], None, call.principal.role, base_version=version,
                                              batch_id=new_id("hairstyle"), most=MAX_HAIRSTYLE_OPS)
        svc.metrics.edits("service", len(out["ops"]))
    finally:
        doc.restyling = False
    return {"GenerationId": doc.generation_id, "Version": submitted.version}


async def current_glb(svc: Service, call: Call, generation_id: str) -> bytes:
    """The shared edit document as it is now, as a glb (the page reloads its 3D view from it
    after a mesh edit).  Exported off the event loop from the per-version encoded copy."""
    doc = await owned_document(svc, call, generation_id)
    wire, _, version = await svc.documents.current(doc)
    if doc.glb is None or doc.glb[0] != version:  # one export per version, however many ask
        doc.glb = (version, await asyncio.to_thread(lambda: export_glb(Avatar.from_wire(wire))))
    return doc.glb[1]


@method("GetValidationRules")
async def get_rules(svc: Service, call: Call, p: m.GetValidationRules) -> dict:
    return GetValidationRules()


@method("ValidateUGCFullBodyAsync")
async def validate_body(svc: Service, call: Call, p: m.ValidateUGCFullBodyAsync) -> dict:
    gen = await owned_generation(svc, call, p.GenerationId)
    doc = await svc.documents.open(gen)
    async with doc.lock:
        ok, reasons = validate_full_body(doc.avatar)
    return {"Ok": ok, "FailureReasons": reasons}
