"""Retention (SPEC §4): cached selfies after 24 h, previews and generations 48 h after creation
(and after their session), published bundles kept; shared blobs kept while referenced."""

from __future__ import annotations

import hashlib
import time

from client_sim.sdk import GameServer
from server.services.retention import sweep
from server.web.keys import SERVICE

from .conftest import Http, active_session, generate, new_experience, running_server

HOUR = 3600.0


async def test_sweep_deletes_what_expired_and_keeps_what_is_published(tmp_path, executor, astronaut_jpeg, database_url):
    key = await new_experience(tmp_path, InputCaching=True, Allowed3DGenerations=2, database_url=database_url)
    async with running_server(tmp_path, executor, database_url=database_url) as srv:
        svc = srv.app[SERVICE]
        http = Http(srv.url, key)
        async with GameServer(srv.url, key) as gs:
            sid = (await active_session(gs, "p"))["SessionId"]
            token = await gs.CreatePlayerToken("p")
            pre, kept_gen = await generate(gs, srv.url, token, astronaut_jpeg, sid)
            _, swept_gen = await generate(gs, srv.url, token, astronaut_jpeg, sid)  # ends the session (Gen3D)
        # Publish one of the two generations through the database row (the publish flow is tested elsewhere).
        from server.db import Generation
        async with svc.db.begin() as db:
            (await db.get(Generation, kept_gen)).published_bundle_id = "bnd_test"
            swept_glb = (await db.get(Generation, swept_gen)).glb_sha
        selfie = svc.blobs.path(hashlib.sha256(astronaut_jpeg).hexdigest())
        assert selfie.exists()  # input caching keeps it past the session's end

        # A scaled-out job whose server died before reading its result: an orphan row.
        from server.db import JobRow
        now = time.time()
        async with svc.db.begin() as db:
            db.add(JobRow(id="job_orphan", job="preview", owner="s", state="Done", args=b"", attempts=1,
                          created_at=now))
        assert await sweep(svc.db, svc.blobs, now + 0.5 * HOUR) == {
            "selfies": 0, "generations": 0, "previews": 0, "blobs": 0, "jobs": 0}
        assert (await sweep(svc.db, svc.blobs, now + 1 * HOUR + 1))["jobs"] == 1
        counts = await sweep(svc.db, svc.blobs, now + 49 * HOUR)
        assert counts["selfies"] == 2 and counts["generations"] == 1 and not selfie.exists()  # two uploads
        assert (await http.rpc("LoadGeneratedAvatarAsync", {"GenerationId": swept_gen}))[0] == 404
        # The published generation and the preview it was made from stay.
        assert (await http.rpc("LoadGeneratedAvatarAsync", {"GenerationId": kept_gen}))[0] == 200
        assert (await http.get(f"/v1/previews/{pre['PreviewId']}.png"))[0] == 200
        # Built from the same preview, both generations share their (content-addressed) glb
        # blob: deleting the swept one must not take the kept one's file.
        async with svc.db() as db:
            gen = await db.get(Generation, kept_gen)
        assert gen.glb_sha == swept_glb and svc.blobs.path(gen.glb_sha).exists()
