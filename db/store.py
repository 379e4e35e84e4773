"""A content-addressed image store on disk: files are named by their sha256.

    store = ImageStore(data_dir / "store")
    sha = store.put(png_bytes)        # the same bytes are stored once
    store.path(sha)                   # <root>/ab/cd/abcd...<64 hex>
    store.get(sha) -> bytes

Writes are atomic (temporary file in the same folder, fsync, rename), so a reader
never sees half a file and two processes storing the same image both succeed.
Two levels of 2-hex-digit shards keep folders small (65,536 leaves).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ImageStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha: str) -> Path:
        """Where the file for `sha` lives (whether or not it exists)."""
        if not _SHA256.match(sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return self.root / sha[:2] / sha[2:4] / sha

    def put(self, data: bytes) -> str:
        """Store `data` (once) and return its sha256."""
        sha = sha256_hex(data)
        target = self.path(sha)
        if target.exists():
            try:
                # Fresh again: the reaper (db.check) leaves young files alone, so a
                # record about to name this file does not lose it.
                os.utime(target)
                return sha
            except FileNotFoundError:
                pass  # reaped just now: write it again
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            # Atomic; if another process won the race it wrote the same bytes.
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def get(self, sha: str) -> bytes:
        """The stored bytes; FileNotFoundError when `sha` is not stored."""
        return self.path(sha).read_bytes()

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def delete(self, sha: str) -> bool:
        """Remove the file for `sha`; True when there was one. Empty shards stay."""
        try:
            self.path(sha).unlink()
        except FileNotFoundError:
            return False
        return True
