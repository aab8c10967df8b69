"""The local folder photo store. Content-addressed files (photos, licence photos): the name is the SHA-256 of the bytes.

A blob is written to a temporary file, synced, then renamed into place, so a reader sees all of
it or nothing, and a crash never leaves a half-written photo under a real name.

A blob is written before the row that refers to it commits, and it may be shared by several rows,
so nothing on a request's path ever deletes one. The orphan sweep (``compliance.service.orphans``)
removes the files no row refers to once they are older than a grace period; ``put`` refreshes the
time of a file it finds already there, so a file about to be referred to again always looks new.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from compliance.store.errors import CorruptBlob, InvalidBlobKey, MissingBlob

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{2}")
_TEMPORARY = re.compile(r"\.tmp-.*\.part")
# A blob the orphan sweep has moved aside to decide on: ``.orphan-<sha256>`` in the blob's folder.
_ASIDE = ".orphan-"
# How many blob names a store remembers as durable, to skip syncing their folder when put again.
_DURABLE_KEPT = 4096


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Photos in a local folder: the embedded default (``COMPLIANCE_BLOB_DIR``, or ``file:///…``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._durable: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root.resolve())!r})"

    def path(self, sha256: str) -> Path:
        """Where the blob lives (or would): ``root/ab/cd/abcd…``, so no folder grows huge."""
        if not _SHA256.fullmatch(sha256):
            raise InvalidBlobKey(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def reachable(self) -> bool:
        """The folder is there (or can be made) and this process may write in it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK | os.X_OK)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256, durably: once it returns, the file and its name are
        on disk. Storing the same bytes again writes no data; it only dates the file now."""
        sha256 = sha256_of(data)
        final = self.path(sha256)
        if _holds(final, data) and _touch(final):
            # Already there and whole (a damaged copy is rewritten below), and now dated as new, so
            # the orphan sweep keeps it until the row about to refer to it has committed (if the
            # sweep moved it away meanwhile, _touch failed and it is written again below). Its name
            # may still be in flight, though: another put may have renamed it in and not yet synced
            # the folder.
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

    def confirm(self, sha256: str, data: bytes) -> None:
        """Nothing to do once a row refers to the blob: ``put`` dated it, and the sweep moves a file
        aside before reading its date again (``remove_unless_touched``)."""

    def head(self, sha256: str, size: int) -> bytes:
        """The first ``size`` bytes of the blob (all of a smaller one)."""
        try:
            with open(self.path(sha256), "rb") as f:
                return f.read(size)
        except FileNotFoundError:
            raise MissingBlob(sha256) from None

    def get(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its name."""
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise MissingBlob(sha256) from None
        if sha256_of(data) != sha256:
            raise CorruptBlob(f"blob {sha256} on disk does not match its digest")
        return data

    # The orphan sweep's side: listing one prefix at a time, and removing only what nobody touched.

    def prefixes(self) -> list[str]:
        """The two-hex-digit folders under the root, in order."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if _PREFIX.fullmatch(e.name) and e.is_dir(follow_symlinks=False))

    def listing(self, prefix: str) -> PrefixListing:
        """Every file under ``root/<prefix>/``, sorted into blobs, temporary files (``.tmp-*.part``,
        written or left by a put) and blobs a sweep cut short had moved aside; anything else is
        left alone. One prefix holds about 1/256 of the blobs, so memory stays bounded."""
        if not _PREFIX.fullmatch(prefix):
            raise InvalidBlobKey(f"not a blob folder: {prefix!r}")
        found = PrefixListing(prefix)
        try:
            folders = sorted(e.path for e in os.scandir(self.root / prefix) if _PREFIX.fullmatch(e.name))
        except FileNotFoundError:
            return found
        for folder in folders:
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                name = entry.name
                here = BlobFile(name, Path(entry.path), info.st_size, info.st_mtime)
                if _SHA256.fullmatch(name) and self.path(name) == here.path:
                    found.blobs.append(here)
                elif (
                    name.startswith(_ASIDE)
                    and _SHA256.fullmatch(sha := name.removeprefix(_ASIDE))
                    and self.path(sha).parent == here.path.parent
                ):
                    found.aside.append(BlobFile(sha, here.path, here.size, here.mtime))
                elif _TEMPORARY.fullmatch(name):
                    found.temporary.append(here)
        return found

    def remove_unless_touched(self, sha256: str, older_than: float) -> int | None:
        """Remove the blob if its file is still dated before ``older_than`` (a Unix time); the bytes
        freed, or None if it was kept or is gone.

        The file is first moved aside (``.orphan-<sha256>``, atomically), then its time read: a put
        of the same bytes either touched it before the move (its time is then new: it goes back) or
        finds no file after it and writes a new one. So a photo that a row is about to refer to is
        never lost, whatever the timing; a reader may only miss it for the instant it is aside."""
        final = self.path(sha256)
        aside = final.with_name(_ASIDE + sha256)
        try:
            os.rename(final, aside)
        except FileNotFoundError:
            return None
        return self.settle_aside(sha256, older_than, keep=False)

    def settle_aside(self, sha256: str, older_than: float, *, keep: bool) -> int | None:
        """Decide on a blob moved aside (by ``remove_unless_touched`` or a sweep that was cut short):
        back in place if ``keep`` or it is dated from ``older_than`` on, else removed; the bytes freed
        or None."""
        final = self.path(sha256)
        aside = final.with_name(_ASIDE + sha256)
        try:
            info = os.stat(aside, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if keep or info.st_mtime >= older_than:
            if final.exists():
                aside.unlink(missing_ok=True)  # a put wrote it again meanwhile: the same bytes
            else:
                os.rename(aside, final)
                _fsync_dir(final.parent)
            return None
        aside.unlink(missing_ok=True)
        return info.st_size

    def remove_temporary(self, path: Path, older_than: float) -> int | None:
        """Remove a temporary file a put left behind (a crash between writing and renaming) if it is
        still dated before ``older_than``; the bytes freed, or None. One being written is new."""
        if path.parent.parent.parent != self.root or not _TEMPORARY.fullmatch(path.name):
            raise InvalidBlobKey(f"not a temporary blob file: {path}")
        try:
            info = os.stat(path, follow_symlinks=False)
            if info.st_mtime >= older_than:
                return None
            path.unlink()
        except FileNotFoundError:
            return None
        return info.st_size

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Whether this process got the folder to itself among the sweeps on this host (a lock on
        the root folder, released on leaving); False if another holds it."""
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield True  # no folder: nothing to sweep, nothing to race over
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            except OSError:
                # A file system without flock on a folder (NFS maps it to a write lock, refused on a
                # read-only descriptor): no lock on this host; the database's lock still holds.
                pass
            yield True
        finally:
            os.close(fd)  # releases the lock


@dataclass(frozen=True, slots=True)
class BlobFile:
    """A file found under the blob folder: ``name`` is the blob's SHA-256 for blobs (and for blobs
    moved aside), the file's name otherwise; ``mtime`` is its modification time (Unix seconds)."""

    name: str
    path: Path
    size: int
    mtime: float


@dataclass(slots=True)
class PrefixListing:
    prefix: str
    blobs: list[BlobFile] = field(default_factory=list)
    temporary: list[BlobFile] = field(default_factory=list)
    aside: list[BlobFile] = field(default_factory=list)


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


def _touch(path: Path) -> bool:
    """Date the file now; False if it is gone (the orphan sweep moved it aside meanwhile) or is
    another user's (then it is written again, as this user's, which dates it too)."""
    try:
        os.utime(path)
    except (FileNotFoundError, PermissionError):
        return False
    return True


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
