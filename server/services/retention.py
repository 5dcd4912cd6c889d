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

:func:`erase_player` deletes everything of one player at once, for a data-protection
request (``acs admin erase-player``), with the same helpers and the same blob rule.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select

from schemas.errors import Conflict
from server.db import (
    EditOp,
    EditSnapshot,
    FileRow,
    Generation,
    JobRow,
    Player,
    Preview,
    Published,
    SessionRequest,
    SessionRow,
    StyleExample,
)

__all__ = ["sweep", "erase_player", "unreferenced_blobs", "RESULT_TTL", "SELFIE_CACHE_TTL", "SWEEP_INTERVAL",
           "JOB_TTL"]

RESULT_TTL = 48 * 3600.0
JOB_TTL = 3600.0
SELFIE_CACHE_TTL = 24 * 3600.0
SWEEP_INTERVAL = 600.0

#: Every column that names a blob.
_BLOB_COLUMNS = (FileRow.sha256, Preview.png_sha, Preview.thumb_sha, Preview.features_sha,
                 Generation.document_sha, Generation.glb_sha, EditSnapshot.document_sha,
                 Published.glb_sha, Published.preview_sha, StyleExample.sha256)


async def unreferenced_blobs(db, shas: set[str]) -> set[str]:
    """The blobs of ``shas`` that no row refers to any more."""
    if not shas:
        return set()
    used: set[str] = set()
    for column in _BLOB_COLUMNS:
        used |= set((await db.scalars(select(column).where(column.in_(shas)))).all())
    return shas - used


async def _drop_generations(db, gens) -> tuple[set[str], int, int]:
    """Delete generations with their edit documents (batches and snapshots); returns the
    blobs they named, and how many edit batches and snapshots went."""
    freed: set[str] = set()
    ops = snapshots = 0
    for g in gens:
        freed |= {g.document_sha, g.glb_sha}
        freed |= set((await db.scalars(select(EditSnapshot.document_sha)
                                       .where(EditSnapshot.generation_id == g.id))).all())
        ops += (await db.execute(delete(EditOp).where(EditOp.generation_id == g.id))).rowcount
        snapshots += (await db.execute(delete(EditSnapshot).where(EditSnapshot.generation_id == g.id))).rowcount
        await db.delete(g)
    await db.flush()
    return freed, ops, snapshots


async def _drop_previews(db, previews) -> set[str]:
    """Delete previews; returns the blobs they named."""
    freed: set[str] = set()
    for p in previews:
        freed |= {p.png_sha, p.thumb_sha, p.features_sha}
        await db.delete(p)
    await db.flush()
    return freed


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
        freed |= (await _drop_generations(db, gens))[0]

        kept_previews = select(Generation.preview_id)
        previews = (await db.scalars(select(Preview).where(Preview.created_at < now - RESULT_TTL,
                                                           Preview.id.not_in(kept_previews)))).all()
        freed |= await _drop_previews(db, previews)
        doomed = await unreferenced_blobs(db, {s for s in freed if s})
        jobs = (await db.execute(delete(JobRow).where(or_(
            JobRow.created_at < now - 24 * 3600.0,
            (JobRow.created_at < now - JOB_TTL) & JobRow.state.in_(("Done", "Failed")))))).rowcount
    for sha in doomed:
        blobs.delete_sync(sha)
    return {"selfies": len(files), "generations": len(gens), "previews": len(previews), "blobs": len(doomed),
            "jobs": jobs}


class _DryRun(Exception):
    """Rolls an erasure's transaction back once its report is made."""


async def erase_player(store, blobs, experience_id: str, player_id: str, *, dry_run: bool = False) -> dict:
    """Delete everything stored of one player: selfies, previews, generations with their edit
    documents, published bundles, sessions and session requests, their jobs and the player's
    row, and every blob of theirs that no other row (another player's, say: blobs are shared
    by content) still names.  Returns a report of counts and ids.  ``dry_run``: the same
    report, nothing deleted.

    Refused (``Conflict``) while the player has an active session or a queued request:
    a running server holds those in memory and may still write to them; end the session
    (``EndSession``, or let it expire) and erase again."""
    def mine(model):
        return (model.experience_id == experience_id) & (model.player_id == player_id)

    report: dict = {}
    try:
        async with store.begin() as db:
            active = (await db.scalars(select(SessionRow.id).where(mine(SessionRow), SessionRow.ended_at.is_(None))
                                       )).all()
            queued = (await db.scalars(select(SessionRequest.id).where(
                mine(SessionRequest), SessionRequest.state == "Queued"))).all()
            if active or queued:
                what = f"an active session ({active[0]})" if active else f"a queued session request ({queued[0]})"
                raise Conflict(f"Player {player_id!r} has {what}; end it (EndSession) or let it expire, "
                               "then erase again.", code="PlayerSessionActive")

            files = (await db.scalars(select(FileRow).where(mine(FileRow)))).all()
            freed = {f.sha256 for f in files if f.sha256}
            for f in files:
                await db.delete(f)
            published = (await db.scalars(select(Published).where(mine(Published)))).all()
            for b in published:
                freed |= {b.glb_sha, b.preview_sha}
                await db.delete(b)
            await db.flush()
            gens = (await db.scalars(select(Generation).where(mine(Generation)))).all()
            gen_blobs, ops, snapshots = await _drop_generations(db, gens)
            previews = (await db.scalars(select(Preview).where(mine(Preview)))).all()
            freed |= gen_blobs | await _drop_previews(db, previews)

            sessions = (await db.scalars(select(SessionRow.id).where(mine(SessionRow)))).all()
            requests = (await db.execute(delete(SessionRequest).where(mine(SessionRequest)))).rowcount
            await db.execute(delete(SessionRow).where(mine(SessionRow)))
            jobs = (await db.execute(delete(JobRow).where(JobRow.owner.in_(sessions)))).rowcount if sessions else 0
            players = (await db.execute(delete(Player).where(mine(Player)))).rowcount
            freed.discard(None)
            doomed = await unreferenced_blobs(db, freed)
            report = {
                "experience_id": experience_id, "player_id": player_id, "erased": not dry_run,
                "deleted": {"files": len(files), "previews": len(previews), "generations": len(gens),
                            "edit_batches": ops, "edit_snapshots": snapshots, "published": len(published),
                            "sessions": len(sessions), "session_requests": requests, "jobs": jobs,
                            "players": players, "blobs": len(doomed)},
                "ids": {"files": sorted(f.id for f in files), "previews": sorted(p.id for p in previews),
                        "generations": sorted(g.id for g in gens), "bundles": sorted(b.bundle_id for b in published),
                        "sessions": sorted(sessions), "blobs": sorted(doomed)},
                #: Blobs of this player's rows that stay because another row still names them.
                "blobs_kept_shared": len(freed - doomed),
            }
            if dry_run:
                raise _DryRun
    except _DryRun:
        return report
    for sha in doomed:
        blobs.delete_sync(sha)
    return report
