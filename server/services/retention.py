"""Retention (SPEC §4): what is deleted, and when.

* Selfies go when their session ends (see ``sessions.py``), or, with input
  caching on, :data:`SELFIE_CACHE_TTL` after upload.
* Previews and generations expire :data:`RESULT_TTL` after creation.  A
  generation's edit document lives on while its session is active and for
  :data:`RESULT_TTL` after the session ended; a preview stays while a generation
  made from it is kept.  Published bundles are never swept.

* A scaled-out job's row (its input and result) goes when the server that asked
  for it reads the result; a finished one whose server died first goes :data:`JOB_TTL`
  after it was made, and any row a day after.

A blob is deleted only when no remaining row refers to it (blobs are shared by
content).  :func:`sweep` takes ``now`` and is run periodically by the server.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select

from server.db import (
    EditOp,
    EditSnapshot,
    FileRow,
    Generation,
    JobRow,
    Preview,
    Published,
    SessionRow,
)

__all__ = ["sweep", "unreferenced_blobs", "RESULT_TTL", "SELFIE_CACHE_TTL", "SWEEP_INTERVAL", "JOB_TTL"]

RESULT_TTL = 48 * 3600.0
JOB_TTL = 3600.0
SELFIE_CACHE_TTL = 24 * 3600.0
SWEEP_INTERVAL = 600.0

#: Every column that names a blob.
_BLOB_COLUMNS = (FileRow.sha256, Preview.png_sha, Preview.thumb_sha, Preview.features_sha,
                 Generation.document_sha, Generation.glb_sha, EditSnapshot.document_sha,
                 Published.glb_sha, Published.preview_sha)


async def unreferenced_blobs(db, shas: set[str]) -> set[str]:
    """The blobs of ``shas`` that no row refers to any more."""
    if not shas:
        return set()
    used: set[str] = set()
    for column in _BLOB_COLUMNS:
        used |= set((await db.scalars(select(column).where(column.in_(shas)))).all())
    return shas - used


async def sweep(sessionmaker, blobs, now: float, *, open_documents: set[str] = frozenset()) -> dict:
    """Delete what has expired at ``now``; returns counts.  ``open_documents``: generation
    ids held open by connected copies (kept whatever their age)."""
    freed: set[str] = set()
    async with sessionmaker.begin() as db:
        files = (await db.scalars(select(FileRow).where(FileRow.state == "Uploaded",
                                                        FileRow.created_at < now - SELFIE_CACHE_TTL))).all()
        for f in files:
            freed.add(f.sha256)
            f.state, f.sha256 = "Deleted", None

        live_sessions = select(SessionRow.id).where(or_(SessionRow.ended_at.is_(None),
                                                        SessionRow.ended_at >= now - RESULT_TTL))
        gens = (await db.scalars(select(Generation).where(
            Generation.created_at < now - RESULT_TTL,
            Generation.published_bundle_id.is_(None),
            Generation.session_id.not_in(live_sessions)))).all()
        gens = [g for g in gens if g.id not in open_documents]
        for g in gens:
            freed |= {g.document_sha, g.glb_sha}
            freed |= set((await db.scalars(select(EditSnapshot.document_sha)
                                           .where(EditSnapshot.generation_id == g.id))).all())
            await db.execute(delete(EditOp).where(EditOp.generation_id == g.id))
            await db.execute(delete(EditSnapshot).where(EditSnapshot.generation_id == g.id))
            await db.delete(g)
        await db.flush()

        kept_previews = select(Generation.preview_id)
        previews = (await db.scalars(select(Preview).where(Preview.created_at < now - RESULT_TTL,
                                                           Preview.id.not_in(kept_previews)))).all()
        for p in previews:
            freed |= {p.png_sha, p.thumb_sha, p.features_sha}
            await db.delete(p)
        await db.flush()
        doomed = await unreferenced_blobs(db, {s for s in freed if s})
        jobs = (await db.execute(delete(JobRow).where(or_(
            JobRow.created_at < now - 24 * 3600.0,
            (JobRow.created_at < now - JOB_TTL) & JobRow.state.in_(("Done", "Failed")))))).rowcount
    for sha in doomed:
        blobs.delete_sync(sha)
    return {"selfies": len(files), "generations": len(gens), "previews": len(previews), "blobs": len(doomed),
            "jobs": jobs}
