"""Content-addressed files (photos, licence photos): the name is the SHA-256 of the bytes.

A blob is written to a temporary file, synced, then renamed into place, so a reader sees all of
it or nothing, and a crash never leaves a half-written photo under a real name.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from compliance.store.errors import CorruptBlob, InvalidBlobKey, MissingBlob

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Where the blob lives (or would): ``root/ab/cd/abcd…``, so no folder grows huge."""
        if not _SHA256.fullmatch(sha256):
            raise InvalidBlobKey(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256. Storing the same bytes again writes nothing."""
        sha256 = sha256_of(data)
        final = self.path(sha256)
        if final.is_file() and sha256_of(final.read_bytes()) == sha256:
            return sha256  # already there and whole; a damaged copy is rewritten below
        new_folders = not final.parent.is_dir()
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.chmod(tmp_name, 0o644)
            # Atomic on POSIX: a concurrent put of the same bytes just replaces equal content.
            os.replace(tmp_name, final)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        if new_folders:
            _fsync_dir(final.parent.parent)
            _fsync_dir(self.root)
        return sha256

    def get(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its name."""
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise MissingBlob(sha256) from None
        if sha256_of(data) != sha256:
            raise CorruptBlob(f"blob {sha256} on disk does not match its digest")
        return data


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
