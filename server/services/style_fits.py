"""Custom styles: storing them, fitting them in the background, finding a fitted one (SPEC §5).

A style is a ``styles`` row and, until it is fitted, one ``style_examples`` row per example
image (the image itself is a blob).  Its state is ``Pending`` → ``Fitting`` → ``Done`` |
``Failed``; the fitting is generation jobs (:mod:`server.jobs`): one ``style_measure`` per
example, run as one owner's jobs so they share the workers fairly with sessions, then one
``style_fit``.  ``progress`` is 0.9 × the share of examples measured, then 1 when done.

**Who fits a style.**  Every server runs :meth:`StyleFits.run`: it claims a style that is
``Pending``, or ``Fitting`` whose claim has lapsed, with one conditional UPDATE (so two
replicas never both fit it), at most :data:`MAX_PARALLEL` at once, and renews its claim
(``lease_until``, :data:`LEASE` seconds) while it works.  CreateStyle wakes the local
loop; otherwise it looks every :data:`POLL` seconds.

**Restarts.**  Nothing is lost: the examples stay until the fit ends.  A style left
``Fitting`` by a server that stopped is fitted again from the start: at once when one
process owns the database (embedded; at start every ``Fitting`` style is set back to
``Pending``), else once its claim lapses (at most :data:`LEASE` seconds).  A style is
tried :data:`MAX_ATTEMPTS` times; one whose fits keep breaking (a worker dying on it)
is then ``Failed`` with ``FitFailed``.  An example that turns out unusable while being
measured fails the style at once with that refusal's code.

**The examples go** once the style is ``Done`` or ``Failed`` (or deleted): their rows in
the same transaction as the outcome, their blobs right after, unless another row still
names the same bytes (blobs are shared by content).  A fitted style keeps only its
parameters (``params``, ≈ 2 KB of JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

from sqlalchemy import delete, func, or_, select, update

from schemas.errors import AcsError, Conflict, InputRejected, NotFound
from schemas.methods import PREVIEW_STYLES
from server.core.ids import new_id
from server.db import StyleExample, StyleRow
from server.ports import BlobStore, JobQueue, Store
from server.services.locks import held
from server.services.retention import unreferenced_blobs

__all__ = ["StyleFits", "style_wire", "LEASE", "POLL", "MAX_PARALLEL", "MAX_ATTEMPTS", "MAX_STYLES"]

log = logging.getLogger(__name__)

#: Seconds a fitter's claim on a style holds unless renewed (it renews every third of it).
LEASE = 30.0
#: Seconds between looks for styles to fit (CreateStyle wakes the local fitter at once).
POLL = 5.0
#: Styles one server fits at once.
MAX_PARALLEL = 2
#: Fits of one style before it is Failed (a fit broken by a stopped server or a dead worker counts).
MAX_ATTEMPTS = 3
#: Custom styles an experience may hold (Failed ones do not count).
MAX_STYLES = 100


def _owner(experience_id: str) -> str:
    return f"{experience_id}/styles"


def unknown_style(style: str) -> InputRejected:
    """The refusal for a style the caller has no such fitted style of: unknown, or another experience's."""
    return InputRejected(f"Unknown style '{style[:40]}'. Available styles: {', '.join(PREVIEW_STYLES)} and this "
                         f"experience's custom styles (ListStyles).", code="UnknownStyle", status=400)


def style_wire(row: StyleRow) -> dict:
    """GetStyle's answer for a row."""
    out = {"StyleId": row.id, "Name": row.name, "Status": row.state, "Progress": round(float(row.progress or 0), 4),
           "Examples": row.examples, "Portraits": bool(row.portraits), "CreatedAt": row.created_at}
    if row.state == "Failed" and row.error:
        out["Error"] = {"code": row.error.get("code", "FitFailed"), "message": row.error.get("message", "")}
    if row.state == "Done" and row.params:
        p = row.params
        sp = p.get("params", {})
        out["FittedAt"] = row.fitted_at
        out["Fitted"] = {
            "Base": p.get("base"),
            "Palette": p.get("palette_rgb"),
            "PaletteShares": p.get("shares"),
            "PaletteStrength": p.get("strength"),
            "Background": {"Scene": p.get("scene"), "Colours": p.get("background")},
            "LineStrength": sp.get("line_strength"),
            "LineWidth": (p.get("measured") or {}).get("line_width"),
            "Levels": sp.get("levels"),
            "Smoothing": {"Passes": sp.get("passes"), "SigmaColor": sp.get("sigma_color")},
            "SkinKeep": sp.get("skin_keep"),
            "ToneCurve": p.get("tone"),
            "Chroma": p.get("chroma"),
        }
    return out


class StyleFits:
    def __init__(self, *, db: Store, blobs: BlobStore, jobs: JobQueue, clock: Callable[[], float], shared: bool):
        self.db = db
        self.blobs = blobs
        self.jobs = jobs
        self.clock = clock
        self.shared = shared
        #: This server's name in ``styles.fitter``.
        self.me = new_id("fitter")
        self._wake = asyncio.Event()
        self._fits: dict[str, asyncio.Task] = {}
        self._loop: asyncio.Task | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.shared:
            # One process: the fits the previous one left half done start again now.
            async with self.db.begin() as db:
                await db.execute(update(StyleRow).where(StyleRow.state == "Fitting")
                                 .values(state="Pending", fitter=None, lease_until=None, progress=0.0))
        self._loop = asyncio.create_task(self.run(), name="style-fits")

    async def stop(self) -> None:
        """Stop fitting; a style being fitted stays ``Fitting`` and is fitted again later."""
        tasks = [t for t in (self._loop, *self._fits.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self._claim_due()
            except Exception:
                log.exception("looking for styles to fit failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL)
            self._wake.clear()

    def _due(self, now: float):
        return or_(StyleRow.state == "Pending", (StyleRow.state == "Fitting") & (StyleRow.lease_until < now))

    async def _claim_due(self) -> None:
        room = MAX_PARALLEL - len(self._fits)
        if room <= 0:
            return
        now = self.clock()
        async with self.db() as db:
            ids = (await db.scalars(select(StyleRow.id).where(self._due(now)).order_by(StyleRow.created_at)
                                    .limit(room * 4))).all()
        for style_id in ids:
            if len(self._fits) >= MAX_PARALLEL:
                break
            if style_id in self._fits:
                continue
            now = self.clock()
            async with self.db.begin() as db:
                claimed = (await db.execute(update(StyleRow).where(StyleRow.id == style_id, self._due(now)).values(
                    state="Fitting", fitter=self.me, lease_until=now + LEASE, progress=0.0,
                    attempts=StyleRow.attempts + 1))).rowcount
            if claimed:
                task = asyncio.create_task(self._fit(style_id), name=f"fit {style_id}")
                self._fits[style_id] = task
                task.add_done_callback(lambda _t, sid=style_id: self._fit_ended(sid))

    def _fit_ended(self, style_id: str) -> None:
        self._fits.pop(style_id, None)
        self._wake.set()  # room for the next one

    # -- one fit -------------------------------------------------------------------------

    async def _fit(self, style_id: str) -> None:
        async with self.db() as db:
            row = await db.get(StyleRow, style_id)
            shas = (await db.scalars(select(StyleExample.sha256).where(StyleExample.style_id == style_id)
                                     .order_by(StyleExample.position))).all()
        if row is None:
            return
        if row.attempts > MAX_ATTEMPTS:
            await self._finish(style_id, "Failed", error=AcsError(
                f"Fitting this style failed {MAX_ATTEMPTS} times; create it again.", code="FitFailed",
                status=500).to_wire())
            return
        renew = asyncio.create_task(self._renew(style_id))
        try:
            images = [await self.blobs.get(sha) for sha in shas]
            if not images:
                raise NotFound("The style's examples are gone.", code="ExamplesLost")
            measured = 0
            writing = asyncio.Lock()  # one progress write at a time, each with the latest count: never backwards

            async def measure(image: bytes) -> dict:
                nonlocal measured
                m = await self.jobs.run("style_measure", image, bool(row.portraits), owner=_owner(row.experience_id))
                measured += 1
                async with writing:
                    await self._progress(style_id, 0.9 * measured / len(images))
                return m

            measurements = await asyncio.gather(*(measure(x) for x in images))
            fitted = await self.jobs.run("style_fit", list(measurements), row.name, owner=_owner(row.experience_id))
        except asyncio.CancelledError:
            raise  # the server is stopping: the style stays Fitting and is fitted again later
        except (InputRejected, NotFound) as err:  # an example is unusable (or gone): no retry helps
            await self._finish(style_id, "Failed", error=err.to_wire())
        except Exception as exc:  # a worker died, a database hiccup: the next attempt, if any is left
            log.warning("fitting style %s failed (attempt %d): %s", style_id, row.attempts, exc)
            async with self.db.begin() as db:
                await db.execute(update(StyleRow).where(StyleRow.id == style_id, StyleRow.fitter == self.me,
                                                        StyleRow.state == "Fitting")
                                 .values(state="Pending", fitter=None, lease_until=None, progress=0.0))
            self._wake.set()
        else:
            await self._finish(style_id, "Done", params=fitted)
        finally:
            renew.cancel()

    async def _renew(self, style_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE / 3)
            with contextlib.suppress(Exception):
                async with self.db.begin() as db:
                    await db.execute(update(StyleRow).where(StyleRow.id == style_id, StyleRow.fitter == self.me,
                                                            StyleRow.state == "Fitting")
                                     .values(lease_until=self.clock() + LEASE))

    async def _progress(self, style_id: str, progress: float) -> None:
        async with self.db.begin() as db:
            await db.execute(update(StyleRow).where(StyleRow.id == style_id, StyleRow.fitter == self.me,
                                                    StyleRow.state == "Fitting")
                             .values(progress=round(progress, 4), lease_until=self.clock() + LEASE))

    async def _finish(self, style_id: str, state: str, *, params: dict | None = None, error: dict | None = None
                      ) -> None:
        """The outcome, and the examples go (rows now, blobs right after) -- if this server still
        holds the style (it was not deleted or taken over meanwhile)."""
        async with self.db.begin() as db:
            done = (await db.execute(update(StyleRow).where(
                StyleRow.id == style_id, StyleRow.fitter == self.me, StyleRow.state == "Fitting").values(
                state=state, params=params, error=error, progress=1.0 if state == "Done" else 0.0, fitter=None,
                lease_until=None, fitted_at=self.clock()))).rowcount
            doomed = await self._drop_examples(db, style_id) if done else set()
        self._delete_blobs(doomed)
        if done:
            log.info("style %s %s", style_id, state.lower())

    async def _drop_examples(self, db, style_id: str) -> set[str]:
        """Delete a style's example rows (in ``db``'s transaction); returns the blobs no row names now."""
        shas = set((await db.scalars(select(StyleExample.sha256).where(StyleExample.style_id == style_id))).all())
        await db.execute(delete(StyleExample).where(StyleExample.style_id == style_id))
        if not shas:
            return set()
        return await unreferenced_blobs(db, shas)  # another style's examples count as references too

    def _delete_blobs(self, shas: set[str]) -> None:
        for sha in shas:
            with contextlib.suppress(OSError):
                self.blobs.delete_sync(sha)

    # -- what the methods use ------------------------------------------------------------

    async def create(self, experience_id: str, name: str, portraits: bool, images: list[bytes]) -> StyleRow:
        """Store a checked example set as a Pending style (refused when the experience holds
        :data:`MAX_STYLES`) and wake the fitter."""
        await self.check_room(experience_id)
        shas = [await self.blobs.put(x) for x in images]
        style_id = new_id("style")
        row = StyleRow(id=style_id, experience_id=experience_id, name=name, state="Pending", progress=0.0,
                       portraits=portraits, examples=len(images), attempts=0, created_at=self.clock())
        async with held(self.db, f"styles:{experience_id}", shared=self.shared):
            await self.check_room(experience_id)
            async with self.db.begin() as db:
                db.add(row)
                for i, sha in enumerate(shas):
                    db.add(StyleExample(style_id=style_id, position=i, sha256=sha))
        self.wake()
        return row

    async def check_room(self, experience_id: str) -> None:
        async with self.db() as db:
            held_ = await db.scalar(select(func.count()).select_from(StyleRow).where(
                StyleRow.experience_id == experience_id, StyleRow.state != "Failed"))
        if held_ >= MAX_STYLES:
            raise Conflict(f"This experience already has {MAX_STYLES} custom styles; delete one first (DeleteStyle).",
                           code="TooManyStyles")

    async def get(self, experience_id: str, style_id: str) -> StyleRow:
        """The experience's style, or NotFound (unknown and other experiences' styles alike)."""
        async with self.db() as db:
            row = await db.get(StyleRow, style_id)
        if row is None or row.experience_id != experience_id:
            raise NotFound("No such style.", code="StyleNotFound")
        return row

    async def list(self, experience_id: str) -> list[StyleRow]:
        async with self.db() as db:
            return list((await db.scalars(select(StyleRow).where(StyleRow.experience_id == experience_id)
                                          .order_by(StyleRow.created_at, StyleRow.id))).all())

    async def delete(self, experience_id: str, style_id: str) -> None:
        await self.get(experience_id, style_id)
        task = self._fits.get(style_id)
        if task is not None:
            task.cancel()
        async with self.db.begin() as db:
            await db.execute(delete(StyleRow).where(StyleRow.id == style_id))
            doomed = await self._drop_examples(db, style_id)
        self._delete_blobs(doomed)

    async def fitted(self, experience_id: str, style: str) -> dict:
        """The fitted parameters of the experience's style ``style`` (a StyleId) for a preview.

        Unknown and other experiences' styles get the same refusal as an unknown style name;
        one not fitted yet is ``StyleNotReady``, a failed one ``StyleFailed`` (both 409)."""
        async with self.db() as db:
            row = await db.get(StyleRow, style)
        if row is None or row.experience_id != experience_id:
            raise unknown_style(style)
        if row.state == "Failed":
            raise Conflict(f"The style '{row.name}' could not be fitted; create it again with other examples.",
                           code="StyleFailed")
        if row.state != "Done" or not row.params:
            raise Conflict(f"The style '{row.name}' is still being fitted ({row.state}, {row.progress:.0%}); "
                           "wait until GetStyle says Done.", code="StyleNotReady")
        return row.params
