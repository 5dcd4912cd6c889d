"""Server configuration: one frozen dataclass, read from ``ACS_*`` environment variables.

| variable | field | default |
|---|---|---|
| ``ACS_DATA_DIR`` | ``data_dir`` | ``./acs-data`` |
| ``ACS_DATABASE_URL`` | ``database_url`` | SQLite file in the data dir |
| ``ACS_REDIS_URL`` | ``redis_url`` | none: one process; set (with a PostgreSQL ``ACS_DATABASE_URL``), the scaled-out form: events cross replicas through Redis and ``acs worker`` runs the generation jobs |
| ``ACS_JOB_HEARTBEAT`` / ``ACS_JOB_STALLED_AFTER`` | ``job_heartbeat`` / ``job_stalled_after`` | ``2`` / ``10`` s: how often an ``acs worker`` says it is alive, and after how long without it its jobs are retried elsewhere |
| ``ACS_HOST`` / ``ACS_PORT`` | ``host`` / ``port`` | ``127.0.0.1`` / ``8080`` |
| ``ACS_CAPACITY`` | ``capacity`` | ``4`` sessions at once |
| ``ACS_WORKERS`` | ``workers`` | ``2`` generation processes |
| ``ACS_SESSION_TIME`` | ``session_time`` | ``600`` s |
| ``ACS_DEFAULT_HOLD`` | ``default_hold`` | ``60`` s: the session length ``waitTime`` assumes until some were measured |
| ``ACS_ALLOWED_2D`` / ``ACS_ALLOWED_3D`` | defaults per session | ``5`` / ``1`` |
| ``ACS_DISCONNECT_GRACE`` | ``disconnect_grace`` | ``30`` s |
| ``ACS_TOKEN_TTL`` | ``token_ttl`` | ``3600`` s |
| ``ACS_WS_IDLE_TIMEOUT`` | ``ws_idle_timeout`` | ``300`` s without a frame closes a socket |
| ``ACS_EDIT_OPS_PER_SECOND`` | ``edit_ops_per_second`` | ``2000`` edit ops/s per caller (burst 2×) |
| ``ACS_PREVIEW_SIZE`` | ``preview_size`` | ``800`` px (``1200`` with ``HighRes``) |
| ``ACS_STYLE_BACKEND`` | ``style_backend`` | ``procedural`` (or ``diffusion``) |
| ``ACS_DIFFUSION_MODEL`` | ``diffusion_model`` | none: a local diffusers img2img model directory |
| ``ACS_PUBLIC_URL`` | ``public_url`` | none: the server's address as players reach it (``https://avatars.example.com``); ``CreateEditorLink`` then returns a whole ``Url`` besides its ``Path`` |
| ``ACS_ALLOWED_ORIGINS`` | ``allowed_origins`` | none: browsers may open ``/v1/ws`` only from this server's own origin; a comma-separated list adds origins, ``*`` allows any |
| ``ACS_FRAME_BYTES_PER_SECOND`` | ``frame_bytes_per_second`` | ``4194304``: decompressed websocket bytes/s per player (per game server), burst one largest frame |
| ``ACS_FRAMES_PER_SECOND`` | ``frames_per_second`` | ``1000`` websocket frames/s per player (per game server), burst 2× |
| ``ACS_HTTP_REQUESTS_PER_SECOND`` | ``http_requests_per_second`` | ``100`` HTTP requests/s per player (per game server), burst 2×; beyond: 429 |
| ``ACS_WS_SEND_QUEUE_FRAMES`` / ``ACS_WS_SEND_QUEUE_BYTES`` | send queue per socket | ``1024`` frames / ``67108864`` bytes unread, then the peer is disconnected |
| ``ACS_CALLER_SEND_QUEUE_BYTES`` | all of a caller's sockets | ``268435456`` bytes unread, then the socket that would exceed it is disconnected |
| ``ACS_MAX_SOCKETS_PER_PLAYER`` | ``max_sockets_per_player`` | ``8`` websockets open at once per player |
| ``ACS_MAX_QUEUED_PER_EXPERIENCE`` | ``max_queued_per_experience`` | ``500`` session requests waiting per experience |
| ``ACS_UPLOADS_PER_SESSION`` / ``ACS_UPLOAD_BYTES_PER_SESSION`` | per session | ``10`` selfies / ``52428800`` bytes |
| ``ACS_METRICS_TOKEN`` | ``metrics_token`` | none: ``GET /metrics`` is open (counts only, no ids or secrets); set, a scrape must send ``Authorization: Bearer <token>`` |
| ``ACS_LOG_FORMAT`` | ``log_format`` | ``text``; ``json``: one JSON object per line, with the request id, experience and player ids |
| ``ACS_BATCH_PHOTOS_PER_HOUR`` | ``batch_photos_per_hour`` | ``200`` batch previews per experience per hour (setting ``BatchPhotosPerHour``) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["Config", "MAX_UPLOAD_BYTES"]

#: Largest selfie accepted (SPEC §5).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Config:
    data_dir: Path = field(default_factory=lambda: Path("acs-data"))
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    capacity: int = 4
    workers: int = 2
    session_time: float = 600.0
    allowed_2d: int = 5
    allowed_3d: int = 1
    disconnect_grace: float = 30.0
    token_ttl: float = 3600.0
    preview_size: int = 800
    high_res_size: int = 1200
    style_backend: str = "procedural"
    diffusion_model: str | None = None
    #: Session hold time assumed by waitTime until sessions have been measured (a selfie,
    #: a preview or two and a build take a person about a minute); see bench/queue_wait.py.
    default_hold: float = 60.0
    selfie_timeout: float = 120.0
    publish_timeout: float = 60.0
    max_frame_bytes: int = 16 * 1024 * 1024
    #: Websocket limits: a socket silent this long is closed; edit ops beyond this rate
    #: (with a burst of twice as many) are held back, not dropped.
    ws_idle_timeout: float = 300.0
    edit_ops_per_second: float = 2000.0
    #: Batches a document keeps in memory for reconnecting copies; further behind gets a snapshot.
    edit_history: int = 512
    #: Incoming websocket bytes (decompressed) per second per player or game server.
    frame_bytes_per_second: float = 4 * 1024 * 1024
    #: Incoming websocket frames per second per caller (a reader past it waits), and HTTP
    #: requests per second per caller (past it: 429); both with bursts of twice as many.
    frames_per_second: float = 1000.0
    http_requests_per_second: float = 100.0
    #: Unread frames / bytes a socket may pile up before its peer is disconnected.
    ws_send_queue_frames: int = 1024
    ws_send_queue_bytes: int = 64 * 1024 * 1024
    #: All of one caller's sockets together may leave this many bytes unread.
    caller_send_queue_bytes: int = 256 * 1024 * 1024
    #: Websockets one player may have open at once.
    max_sockets_per_player: int = 8
    #: Extra origins browsers may open websockets from (comma-separated; ``*``: any).
    allowed_origins: str = ""
    #: The server's address as players reach it; CreateEditorLink prefixes its Path with it.
    public_url: str = ""
    max_queued_per_experience: int = 500
    uploads_per_session: int = 10
    upload_bytes_per_session: int = 50 * 1024 * 1024
    batch_photos_per_hour: int = 200
    #: Scaled out: a worker's heartbeat period, and the silence after which its jobs are retried.
    job_heartbeat: float = 2.0
    job_stalled_after: float = 10.0
    #: Set, ``GET /metrics`` needs ``Authorization: Bearer <metrics_token>``.
    metrics_token: str = ""
    #: ``text`` or ``json`` (one object per line, for a log pipeline).
    log_format: str = "text"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'acs.db'}"

    @property
    def scaled(self) -> bool:
        """The scaled-out form: state in PostgreSQL, events through Redis, jobs run by ``acs worker``."""
        return bool(self.redis_url)

    def check(self) -> None:
        """Refuse settings that cannot work together, with what to change."""
        if self.log_format not in ("text", "json"):
            raise ValueError(f"ACS_LOG_FORMAT must be text or json, not {self.log_format!r}.")
        if self.scaled and not self.db_url.startswith("postgresql"):
            raise ValueError("ACS_REDIS_URL (the scaled-out form) needs ACS_DATABASE_URL=postgresql+asyncpg://...: "
                             "replicas and workers share their state through PostgreSQL.")

    @property
    def blob_dir(self) -> Path:
        return Path(self.data_dir) / "blobs"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Config":
        env = os.environ if env is None else env
        values: dict = {}
        for name, f in cls.__dataclass_fields__.items():
            raw = env.get(f"ACS_{name.upper()}")
            if raw is None:
                continue
            default = getattr(cls(), name)
            if isinstance(default, Path) or name == "data_dir":
                values[name] = Path(raw)
            elif isinstance(default, bool):
                values[name] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[name] = int(raw)
            elif isinstance(default, float):
                values[name] = float(raw)
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> "Config":
        return replace(self, **changes)
