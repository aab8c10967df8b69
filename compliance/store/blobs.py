"""Content-addressed files (photos, licence photos): the name is the SHA-256 of the bytes.

A blob is written to a temporary file, synced, then renamed into place, so a reader sees all of
it or nothing, and a crash never leaves a half-written photo under a real name.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

from compliance.store.errors import CorruptBlob, InvalidBlobKey, MissingBlob

_SHA256 = re.compile(r"[0-9a-f]{64}")
# How many blob names a store remembers as durable, to skip syncing their folder when put again.
_DURABLE_KEPT = 4096


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._durable: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        """Where the blob lives (or would): ``root/ab/cd/abcd…``, so no folder grows huge."""
        if not _SHA256.fullmatch(sha256):
            raise InvalidBlobKey(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256, durably: once it returns, the file and its name are
        on disk. Storing the same bytes again writes nothing."""
        sha256 = sha256_of(data)
        final = self.path(sha256)
        if _holds(final, data):
            # Already there and whole (a damaged copy is rewritten below). Its name may still be in
            # flight, though: another put may have renamed it in and not yet synced the folder.
            if sha256 not in self._durable:
                _fsync_dir(final.parent)
                self._remember(sha256)
            return sha256
        new_folders = not final.parent.is_dir()
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp_name = str(final.parent / f".tmp-{sha256[:16]}-{os.getpid()}-{threading.get_ident()}.part")
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            try:
                os.fchmod(fd, 0o644)  # whatever the umask
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                # A new file: its data and size (what fdatasync flushes) are all a reader needs.
                os.fdatasync(fd)
            finally:
                os.close(fd)
            # Atomic on POSIX: a concurrent put of the same bytes just replaces equal content.
            os.replace(tmp_name, final)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        if new_folders:
            _fsync_dir(final.parent.parent)
            _fsync_dir(self.root)
        self._remember(sha256)
        return sha256

    def _remember(self, sha256: str) -> None:
        """Blobs this process has seen durable (written and synced, or their folder synced since)."""
        with self._lock:
            self._durable[sha256] = None
            while len(self._durable) > _DURABLE_KEPT:
                del self._durable[next(iter(self._durable))]

    def get(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its name."""
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise MissingBlob(sha256) from None
        if sha256_of(data) != sha256:
            raise CorruptBlob(f"blob {sha256} on disk does not match its digest")
        return data


def _holds(path: Path, data: bytes) -> bool:
    """Whether the file at ``path`` holds exactly ``data``: its size first (no read when it differs),
    then its bytes, compared as they are (cheaper than hashing them again)."""
    try:
        with open(path, "rb", buffering=0) as f:
            if os.fstat(f.fileno()).st_size != len(data):
                return False
            return f.readall() == data
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
