"""The ``BlobStore`` on a folder: the data dir's, or a volume every replica and worker mounts.

A blob's name is the SHA-256 of its bytes, stored as ``ab/cdef...``.  Writes go
to a temporary file in the same folder, are fsynced and renamed into place,
so a crash never leaves a half-written blob under a valid name, and writing the
same content twice is a no-op.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from schemas.errors import NotFound

__all__ = ["FolderBlobStore"]


class FolderBlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise NotFound("No such blob.")
        return self.root / sha[:2] / sha[2:]

    def put_sync(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path(sha)
        if dest.exists():
            return sha
        dest.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def get_sync(self, sha: str) -> bytes:
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFound("No such blob.") from None

    def size(self, sha: str) -> int:
        """Bytes of a stored blob (0 when it is gone)."""
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError:
            return 0

    def delete_sync(self, sha: str) -> None:
        self.path(sha).unlink(missing_ok=True)

    async def put(self, data: bytes) -> str:
        return await asyncio.to_thread(self.put_sync, data)

    async def get(self, sha: str) -> bytes:
        return await asyncio.to_thread(self.get_sync, sha)
