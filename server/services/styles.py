"""Custom styles (SPEC §5): CreateStyle, GetStyle, ListStyles, DeleteStyle.

A game server sends 5–30 example images of a look; the server checks the set (counts and
sizes first, before any work; then, in one generation job, that every example decodes, that
they share one format and, for a portrait style, that at least half show a face), stores it
as a ``Pending`` style and answers with its ``StyleId`` at once.  The fit runs in the
background (:mod:`server.services.style_fits`); GetStyle reports ``Status`` and
``Progress``.  A ``Done`` style is used by passing its ``StyleId`` as ``Style`` to
GenerateAvatar2DPreviewAsync or GenerateAvatar2DPreviewBatch; it is private to the
experience that made it.  A refused set is not stored and does not count against the
experience's :data:`~server.services.style_fits.MAX_STYLES`.
"""

from __future__ import annotations

from schemas import methods as m
from schemas.errors import InputRejected, InvalidParams
from server.config import MAX_UPLOAD_BYTES
from server.services.service import Call, Service, method
from server.services.style_fits import style_wire

__all__ = ["MIN_EXAMPLES", "MAX_EXAMPLES", "MAX_EXAMPLES_BYTES"]

#: Example images per style (generation.style_fit.MIN_EXAMPLES / MAX_EXAMPLES).
MIN_EXAMPLES, MAX_EXAMPLES = 5, 30
#: All of a style's examples together.
MAX_EXAMPLES_BYTES = 64 * 1024 * 1024


def check_examples(images: list) -> list[bytes]:
    """Counts, types and sizes, before anything is decoded or stored."""
    if len(images) < MIN_EXAMPLES:
        raise InvalidParams(f"A style needs at least {MIN_EXAMPLES} example images; {len(images)} were sent.",
                            code="TooFewExamples")
    if len(images) > MAX_EXAMPLES:
        raise InvalidParams(f"A style takes at most {MAX_EXAMPLES} example images; {len(images)} were sent.",
                            code="TooManyExamples")
    if not all(isinstance(x, (bytes, bytearray)) for x in images):
        raise InvalidParams("Every example must be image bytes (base64 strings in JSON requests).")
    for i, x in enumerate(images):
        if len(x) > MAX_UPLOAD_BYTES:
            raise InputRejected(f"Example {i + 1} is larger than {MAX_UPLOAD_BYTES // 2**20} MB.",
                                code="ImageTooLarge", status=413)
    total = sum(len(x) for x in images)
    if total > MAX_EXAMPLES_BYTES:
        raise InputRejected(f"The examples total {total / 2**20:.0f} MB; at most {MAX_EXAMPLES_BYTES // 2**20} MB.",
                            code="ExamplesTooLarge", status=413)
    return [bytes(x) for x in images]


@method("CreateStyle")
async def create_style(svc: Service, call: Call, p: m.CreateStyle) -> dict:
    name = p.Name.strip()
    if not name:
        raise InvalidParams("'Name' must not be blank.")
    images = check_examples(p.Images)
    exp_id = call.principal.experience_id
    portraits = True if p.Portraits is None else p.Portraits
    await svc.styles.check_room(exp_id)
    # Typed refusals (UnreadableImage, MixedFormats, ImageTooSmall, NoFaceInExamples) before anything is stored.
    await svc.jobs.run("style_probe", images, portraits, owner=f"{exp_id}/styles")
    row = await svc.styles.create(exp_id, name, portraits, images)
    return style_wire(row)


@method("GetStyle")
async def get_style(svc: Service, call: Call, p: m.GetStyle) -> dict:
    return style_wire(await svc.styles.get(call.principal.experience_id, p.StyleId))


@method("ListStyles")
async def list_styles(svc: Service, call: Call, p: m.ListStyles) -> dict:
    return {"Styles": [style_wire(row) for row in await svc.styles.list(call.principal.experience_id)]}


@method("DeleteStyle")
async def delete_style(svc: Service, call: Call, p: m.DeleteStyle) -> dict:
    await svc.styles.delete(call.principal.experience_id, p.StyleId)
    return {"StyleId": p.StyleId, "Deleted": True}
