"""Database schema (SQLAlchemy 2) and engine setup.

Rows hold state and metadata; payloads (selfies, PNGs, glb, edit snapshots)
live in the content-addressed blob store and are referenced by SHA-256.
SQLite runs in WAL mode with ``synchronous=FULL`` so every committed
transaction survives a crash of the server process.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import JSON, Boolean, Float, Integer, LargeBinary, String, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base", "Experience", "Player", "SessionRequest", "SessionRow", "FileRow", "Preview",
    "Generation", "EditOp", "EditSnapshot", "Published", "TokenRevocation", "JobRow", "StyleRow", "StyleExample",
    "open_engine", "migrate",
]


class Base(DeclarativeBase):
    pass


class Experience(Base):
    __tablename__ = "experiences"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[float] = mapped_column(Float)
    #: Per-experience overrides: Allowed2DGenerations, Allowed3DGenerations,
    #: SessionTime, QueueShare, DefaultStyle.
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Batches being made now: hold id → [photos, until when the hold counts] (BatchPhotosPerHour).
    batch_holds: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: The key before the last ``acs admin rotate-key`` (its hash) and until when it still authenticates.
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    previous_key_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class Player(Base):
    __tablename__ = "players"
    experience_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen: Mapped[float] = mapped_column(Float)


class SessionRequest(Base):
    __tablename__ = "session_requests"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    experience_id: Mapped[str] = mapped_column(String(40), index=True)
    player_id: Mapped[str] = mapped_column(String(128))
    #: Queued → Active → Ended, or Queued → Cancelled.
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    session_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)


class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(40))
    experience_id: Mapped[str] = mapped_column(String(40), index=True)
    player_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[float] = mapped_column(Float)
    session_time: Mapped[float] = mapped_column(Float)
    allowed_2d: Mapped[int] = mapped_column(Integer)
    allowed_3d: Mapped[int] = mapped_column(Integer)
    used_2d: Mapped[int] = mapped_column(Integer, default=0)
    used_3d: Mapped[int] = mapped_column(Integer, default=0)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: Charges in flight: job id → [kind "2d" | "3d", until when the reservation holds].
    reserved: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: While the player's client is away: when the session ends unless it comes back.
    disconnect_deadline: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Selfies accepted into the session and their bytes (capped per session).
    uploads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    upload_bytes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class FileRow(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(40), index=True)
    experience_id: Mapped[str] = mapped_column(String(40))
    player_id: Mapped[str] = mapped_column(String(128))
    #: Pending (prompted) → Uploaded, or Declined, or Expired (timed out, session ended);
    #: Uploaded → Deleted by retention.
    state: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class Preview(Base):
    __tablename__ = "previews"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: None for previews made by GenerateAvatar2DPreviewBatch (no session).
    session_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    experience_id: Mapped[str] = mapped_column(String(40))
    player_id: Mapped[str] = mapped_column(String(128))
    file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    png_sha: Mapped[str] = mapped_column(String(64))
    thumb_sha: Mapped[str] = mapped_column(String(64))
    #: msgpack blob with landmarks and sampled colours for the 3D builder.
    features_sha: Mapped[str] = mapped_column(String(64))
    text_prompt: Mapped[str | None] = mapped_column(String(500), nullable=True)
    report: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class Generation(Base):
    __tablename__ = "generations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(40), index=True)
    experience_id: Mapped[str] = mapped_column(String(40))
    player_id: Mapped[str] = mapped_column(String(128))
    preview_id: Mapped[str] = mapped_column(String(40))
    #: The edit document as generated (msgpack of Avatar.to_wire()).
    document_sha: Mapped[str] = mapped_column(String(64))
    glb_sha: Mapped[str] = mapped_column(String(64))
    description: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    loaded_by_server: Mapped[bool] = mapped_column(Boolean, default=False)
    loaded_by_client: Mapped[bool] = mapped_column(Boolean, default=False)
    published_bundle_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class EditOp(Base):
    """One accepted batch of edit ops; replayed over the base document on load."""

    __tablename__ = "edit_ops"
    generation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The sender's id for the batch: a resend after a reconnect is recognised by it.
    batch_id: Mapped[str] = mapped_column(String(128))
    origin: Mapped[str] = mapped_column(String(16))
    ops: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class EditSnapshot(Base):
    """The edit document at one version (msgpack of Avatar.to_wire("PNG")), so loading
    replays only the batches after it."""

    __tablename__ = "edit_snapshots"
    generation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_sha: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class TokenRevocation(Base):
    """Player tokens of this player issued at or before ``revoked_at`` are refused."""

    __tablename__ = "token_revocations"
    experience_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    revoked_at: Mapped[float] = mapped_column(Float)


class Published(Base):
    __tablename__ = "published"
    bundle_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    outfit_id: Mapped[str] = mapped_column(String(40), unique=True)
    experience_id: Mapped[str] = mapped_column(String(40), index=True)
    player_id: Mapped[str] = mapped_column(String(128))
    generation_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    glb_sha: Mapped[str] = mapped_column(String(64))
    preview_sha: Mapped[str] = mapped_column(String(64))
    description: Mapped[dict] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class JobRow(Base):
    """One generation job of the scaled-out form: its input and, once a worker ran it, its
    result (msgpack), so neither has to cross the job engine.  Deleted when the server
    that asked for it has read the result (the retention sweep takes orphans)."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(128), index=True)
    #: Queued → Running → Done | Failed (a stalled Running job is retried: Running again).
    state: Mapped[str] = mapped_column(String(16), index=True)
    args: Mapped[bytes] = mapped_column(LargeBinary)
    result: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: A typed refusal: {"type": "module.Class", "code", "message", "status"}.
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: Who runs it now ("host:pid"), and how many times a worker has started it.
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class StyleRow(Base):
    """A custom preview style fitted from example images (CreateStyle), private to its experience."""

    __tablename__ = "styles"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    experience_id: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(64))
    #: Pending → Fitting → Done | Failed; a Fitting style whose fitter stopped is Pending again.
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    portraits: Mapped[bool] = mapped_column(Boolean, default=True)
    #: How many example images it was made from.
    examples: Mapped[int] = mapped_column(Integer)
    #: Done: the fitted parameters (generation.style_fit.FittedStyle.to_wire()); Failed: {code, message}.
    params: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: Fitting: which server fits it and until when its claim holds (renewed while it works).
    fitter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    fitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class StyleExample(Base):
    """One example image of a style not fitted yet; the rows and their blobs go once it is
    fitted (or has failed, or is deleted)."""

    __tablename__ = "style_examples"
    style_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)


#: Alembic's script folder: env.py and versions/, one migration per schema change.
MIGRATIONS = Path(__file__).with_name("migrations")


#: The advisory lock key migrations hold on PostgreSQL (any fixed bigint of ours).
MIGRATION_LOCK = 0x616373_6D6967  # "acs" "mig"


def _upgrade(connection) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema (Alembic migrations, SQLite and PostgreSQL
    alike); a database made before migrations existed is adopted by the first one."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait and find it done.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file readable by its owner only, before SQLite creates it with
    the umask's mode; its -wal and -shm files take the same mode from it."""
    path = make_url(url).database
    if not path or path == ":memory:":
        return
    db_path = Path(path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        if p.exists():
            p.chmod(0o600)


def open_engine(url: str) -> tuple[AsyncEngine, async_sessionmaker]:
    """Create the engine (WAL for SQLite, a file only its owner can read) and a session factory."""
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
    engine = create_async_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine, async_sessionmaker(engine, expire_on_commit=False)
