"""Selfie upload and downloads: preview PNGs, generated and published glb."""

from __future__ import annotations

import contextlib

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from sqlalchemy import select

from schemas import decode
from schemas.errors import InputRejected, InvalidParams
from schemas.methods import GenerateAvatar2DPreviewBatch
from server.config import MAX_UPLOAD_BYTES
from server.db import Generation, Published
from server.services.avatars import current_glb
from server.services.batch import MAX_BATCH, run_batch
from server.services.previews import accept_upload, preview_png
from server.web.common import caller, json_response, require
from server.web.keys import SERVICE

routes = web.RouteTableDef()


def _too_large() -> InputRejected:
    return InputRejected(f"The photo is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.",
                         code="ImageTooLarge", status=413)


async def _read_limited(reader, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = await reader.read_chunk() if hasattr(reader, "read_chunk") else await reader.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _too_large()
        chunks.append(chunk)


@contextlib.contextmanager
def _multipart_refusals():
    """A multipart body aiohttp cannot parse (no boundary, a malformed part header) is the
    caller's error, answered ``InvalidParams``."""
    try:
        yield
    except (ValueError, HttpProcessingError) as exc:
        raise InvalidParams(f"The multipart body is malformed ({str(exc).splitlines()[0][:120]}).") from None


async def _upload_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES + 64 * 1024:
        raise _too_large()
    if request.content_type.startswith("multipart/"):
        with _multipart_refusals():
            reader = await request.multipart()
            async for part in reader:
                if part.name in ("file", "photo", "image"):
                    return await _read_limited(part, MAX_UPLOAD_BYTES)
        raise InvalidParams("The multipart upload has no 'file' field.")
    return await _read_limited(request.content, MAX_UPLOAD_BYTES)


#: HTTP requests' worth of rate budget one upload spends (it is read, then decoded).
UPLOAD_COST = 10.0


@routes.post("/v1/files/{file_id}")
async def upload_prompted(request: web.Request) -> web.Response:
    call = await caller(request, UPLOAD_COST)
    data = await _upload_body(request)
    return json_response(await accept_upload(request.app[SERVICE], call, request.match_info["file_id"],
                                             None, data))


@routes.post("/v1/files")
async def upload_direct(request: web.Request) -> web.Response:
    call = await caller(request, UPLOAD_COST)
    data = await _upload_body(request)
    return json_response(await accept_upload(request.app[SERVICE], call, None,
                                             request.query.get("SessionId"), data))


@routes.get("/v1/previews/{preview_id}.png")
async def get_preview(request: web.Request) -> web.Response:
    call = await caller(request)
    png = await preview_png(request.app[SERVICE], call, request.match_info["preview_id"])
    return web.Response(body=png, content_type="image/png")


@routes.get("/v1/previews/{preview_id}/thumbnail.png")
async def get_thumbnail(request: web.Request) -> web.Response:
    call = await caller(request)
    png = await preview_png(request.app[SERVICE], call, request.match_info["preview_id"], thumbnail=True)
    return web.Response(body=png, content_type="image/png")


@routes.post("/v1/previews/batch")
async def preview_batch(request: web.Request) -> web.Response:
    """GenerateAvatar2DPreviewBatch as multipart: repeated ``photo`` files plus
    ``Style``, ``TextPrompt``, ``HighRes`` fields."""
    call = await caller(request)
    require(call, "server")
    if not request.content_type.startswith("multipart/"):
        raise InvalidParams("Send the photos as multipart/form-data 'photo' fields.")
    photos, fields = [], {}
    with _multipart_refusals():
        reader = await request.multipart()
        async for part in reader:
            if part.name in ("photo", "file"):
                if len(photos) == MAX_BATCH:
                    raise InvalidParams(f"At most {MAX_BATCH} photos per batch.")
                photos.append(await _read_limited(part, MAX_UPLOAD_BYTES))
            elif part.name in ("Style", "TextPrompt", "HighRes"):
                fields[part.name] = (await part.read(decode=True)).decode("utf-8", "replace")
    if "HighRes" in fields:
        fields["HighRes"] = fields["HighRes"].lower() in ("1", "true", "yes")
    params = decode(GenerateAvatar2DPreviewBatch, {"Photos": photos, **fields})
    return json_response({"Results": await run_batch(request.app[SERVICE], call, params.Photos, params)})


@routes.get("/v1/generations/{generation_id}.glb")
async def get_generation_glb(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    call = await caller(request)
    async with svc.db() as db:
        gen = svc.check_owner(await db.get(Generation, request.match_info["generation_id"]),
                              call.principal, "generation")
    return web.Response(body=await svc.blobs.get(gen.glb_sha), content_type="model/gltf-binary")


@routes.get("/v1/generations/{generation_id}/current.glb")
async def get_current_glb(request: web.Request) -> web.Response:
    call = await caller(request)
    glb = await current_glb(request.app[SERVICE], call, request.match_info["generation_id"])
    return web.Response(body=glb, content_type="model/gltf-binary")


def _bundle_json(row: Published) -> dict:
    return {"BundleId": row.bundle_id, "OutfitId": row.outfit_id, "Name": row.name, "PlayerId": row.player_id,
            "GenerationId": row.generation_id, "ContentHash": row.content_hash, "CreatedAt": row.created_at,
            "HumanoidDescription": row.description, "GlbUrl": f"/v1/published/{row.bundle_id}.glb",
            "PreviewUrl": f"/v1/published/{row.bundle_id}.png"}


async def _published(request: web.Request) -> Published:
    svc = request.app[SERVICE]
    call = await caller(request)
    async with svc.db() as db:
        return svc.check_owner(await db.get(Published, request.match_info["bundle_id"]),
                               call.principal, "bundle")


@routes.get("/v1/published")
async def list_published(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    call = await caller(request)
    require(call, "server")
    async with svc.db() as db:
        rows = (await db.scalars(select(Published).where(Published.experience_id == call.principal.experience_id)
                                 .order_by(Published.created_at))).all()
    return json_response({"Bundles": [_bundle_json(r) for r in rows]})


@routes.get("/v1/published/{bundle_id}.glb")
async def get_published_glb(request: web.Request) -> web.Response:
    row = await _published(request)
    return web.Response(body=await request.app[SERVICE].blobs.get(row.glb_sha), content_type="model/gltf-binary")


@routes.get("/v1/published/{bundle_id}.png")
async def get_published_png(request: web.Request) -> web.Response:
    row = await _published(request)
    return web.Response(body=await request.app[SERVICE].blobs.get(row.preview_sha), content_type="image/png")


@routes.get("/v1/published/{bundle_id}")
async def get_published(request: web.Request) -> web.Response:
    return json_response(_bundle_json(await _published(request)))


__all__ = ["routes"]
