"""Photos in any S3-compatible object store (AWS S3, MinIO, SeaweedFS, Alibaba OSS, Tencent COS),
through obstore. Keys are content-addressed as in the folder: ``<prefix>/ab/cd/<sha256>``.

Credentials, endpoint and region come from the standard AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``; ``AWS_ALLOW_HTTP=true`` for a
plain-http endpoint), which obstore reads as boto3 does.

Durability, the S3 way. A put is a conditional create (``If-None-Match: *``): an object already
there costs neither a read-back nor a write, and S3 writes are atomic (a reader sees all of an
object or nothing). S3 has no rename and no conditional delete, so the orphan sweep's race with
an upload that finds an old unreferenced photo already stored is closed from both sides:

- the sweep deletes an old unreferenced object only after copying it aside
  (``<prefix>/ab/cd/.orphan-<sha256>``); it then reads the database again and puts back every
  object some row now refers to (``settle_aside(keep=True)``), deleting the rest of the copies;
- every upload checks, once its row has committed, that its object is still there, and puts it
  again if not (``confirm``: one HEAD; asked even when the put created the object, in case a store
  ignores ``If-None-Match``).

Whatever the order: if the row committed before the sweep's second read, the sweep puts the photo
back; if after, the upload's check comes after the delete and writes the photo again. A reader may
miss the photo for the instant between the delete and the put-back, as with the folder's rename.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import PurePosixPath
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError
from obstore.store import S3Store

from compliance.store.blobs.local import _ASIDE, _PREFIX, _SHA256, BlobFile, PrefixListing, sha256_of
from compliance.store.errors import CorruptBlob, InvalidBlobKey, MissingBlob, PhotoStoreUnavailable

log = logging.getLogger("compliance.blobs")
P = ParamSpec("P")
T = TypeVar("T")
# How long one request may keep retrying a store that is away (a restart, a network blip) before
# the upload is refused with a 5xx and the client retries: short of a load balancer's timeout.
_RETRY_TIMEOUT = timedelta(seconds=30)
# A put that found its object already there, remembered until its row commits (``confirm``).
_FOUND_KEPT = 4096
# Outside the two-hex-digit folders the photos and the orphan sweep use.
_PROBE_KEY = "conditional-put-probe"


def _reaching(method: Callable[P, T]) -> Callable[P, T]:
    """The store's own errors stay as they are; obstore's (unreachable after the retries, refused
    credentials) become ``PhotoStoreUnavailable``, which the API answers 503."""

    @functools.wraps(method)
    def reach(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except (NotFoundError, AlreadyExistsError):
            raise
        except BaseError as exc:
            raise PhotoStoreUnavailable(f"the photo store did not answer: {str(exc).splitlines()[0]}") from exc

    return reach


def _client(url: str, *, timeout_s: int, connect_s: int, retries: int, retry_for: timedelta) -> S3Store:
    return S3Store.from_url(
        url,
        # Passing client options drops the ones obstore reads from the environment: say it again.
        client_options={
            "timeout": f"{timeout_s}s",
            "connect_timeout": f"{connect_s}s",
            "allow_http": os.environ.get("AWS_ALLOW_HTTP", "").lower() == "true",
        },
        retry_config={"max_retries": retries, "retry_timeout": retry_for},
    )


class S3BlobStore:
    """The photo store in a bucket, under a prefix (``s3://bucket/prefix``)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an S3 URL (s3://bucket/prefix): {url!r}")
        self.url = url
        self._s3 = _client(url, timeout_s=30, connect_s=5, retries=10, retry_for=_RETRY_TIMEOUT)
        # /readyz's: one short try, where the store's requests retry for up to 30 s.
        self._probe = _client(url, timeout_s=2, connect_s=1, retries=0, retry_for=timedelta(seconds=2))
        self._found: dict[str, None] = {}
        self._lock = threading.Lock()
        self._honours: bool | None = None
        self._probe_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r})"

    @staticmethod
    def key(sha256: str) -> str:
        if not _SHA256.fullmatch(sha256):
            raise InvalidBlobKey(f"not a SHA-256 hex digest: {sha256!r}")
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def _aside_key(self, sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{_ASIDE}{sha256}"

    def reachable(self) -> bool:
        try:
            obstore.head(self._probe, "readyz-probe")
        except (NotFoundError, FileNotFoundError):
            return True  # it answered: nothing by that name
        except BaseError:
            return False
        return True

    @_reaching
    def exists(self, sha256: str) -> bool:
        try:
            obstore.head(self._s3, self.key(sha256))
        except (NotFoundError, FileNotFoundError):
            return False
        return True

    @_reaching
    def put(self, data: bytes) -> str:
        """Store ``data`` under its SHA-256 (a conditional create: no bytes sent twice)."""
        sha256 = sha256_of(data)
        try:
            obstore.put(self._s3, self.key(sha256), data, mode="create")
        except AlreadyExistsError:
            with self._lock:  # confirm() checks it is still there once the row has committed
                self._found[sha256] = None
                while len(self._found) > _FOUND_KEPT:
                    del self._found[next(iter(self._found))]
        return sha256

    def confirm(self, sha256: str, data: bytes) -> None:
        """Called once the row that refers to ``sha256`` has committed: if the put found the object
        already there (it may have been an old orphan the sweep was deleting), make sure it still
        is, and write it again if not. On a store that ignores ``If-None-Match`` a put never finds
        one (it overwrites in silence), so there every upload is checked. The row is committed
        whatever happens here, so a store that is away now is logged, not raised."""
        with self._lock:
            found = self._found.pop(sha256, False) is None
        try:
            if (found or not self.honours_conditional_put()) and not self.exists(sha256):
                obstore.put(self._s3, self.key(sha256), data)
        except (PhotoStoreUnavailable, BaseError) as exc:
            log.error("photo %s: could not check it is still stored after its row committed: %s", sha256, exc)

    @_reaching
    def honours_conditional_put(self) -> bool:
        """Whether the store refuses a create over an existing object (``If-None-Match: *``), asked
        once per process with an object of its own outside the photos' folders."""
        with self._probe_lock:
            if self._honours is None:
                for _ in range(2):
                    try:
                        obstore.put(self._s3, _PROBE_KEY, b"conditional create probe", mode="create")
                    except AlreadyExistsError:
                        self._honours = True
                        break
                else:
                    self._honours = False  # two creates of one name went through
                    log.warning("the photo store ignores If-None-Match: every upload is checked after commit")
            return self._honours

    @_reaching
    def get(self, sha256: str) -> bytes:
        """The object's bytes (streamed in, chunk by chunk), checked against its name."""
        try:
            result = obstore.get(self._s3, self.key(sha256))
            data = b"".join(bytes(chunk) for chunk in result.stream(min_chunk_size=256 * 1024))
        except (NotFoundError, FileNotFoundError):
            raise MissingBlob(sha256) from None
        if sha256_of(data) != sha256:
            raise CorruptBlob(f"object {sha256} does not match its digest")
        return data

    @_reaching
    def head(self, sha256: str, size: int) -> bytes:
        """The first ``size`` bytes (all of a smaller object): one ranged GET."""
        try:
            return bytes(obstore.get_range(self._s3, self.key(sha256), start=0, length=size))
        except (NotFoundError, FileNotFoundError):
            raise MissingBlob(sha256) from None
        except Exception:
            # A zero-length object has no first byte to range over; a photo is never empty.
            if not self.exists(sha256):
                raise MissingBlob(sha256) from None
            raise

    # The orphan sweep's side.

    @_reaching
    def prefixes(self) -> list[str]:
        listed = obstore.list_with_delimiter(self._s3)
        names = (PurePosixPath(p).name for p in listed["common_prefixes"])
        return sorted(n for n in names if _PREFIX.fullmatch(n))

    @_reaching
    def listing(self, prefix: str) -> PrefixListing:
        """Every object under ``<prefix>/``: blobs and copies set aside by a sweep (S3 keeps no
        half-written objects, so there are no temporary ones)."""
        if not _PREFIX.fullmatch(prefix):
            raise InvalidBlobKey(f"not a blob folder: {prefix!r}")
        found = PrefixListing(prefix)
        for batch in obstore.list(self._s3, prefix=f"{prefix}/", chunk_size=1000):
            for meta in batch:
                key = meta["path"]
                name = PurePosixPath(key).name
                mtime = meta["last_modified"].timestamp()
                if _SHA256.fullmatch(name) and key == self.key(name):
                    found.blobs.append(BlobFile(name, PurePosixPath(key), meta["size"], mtime))  # type: ignore[arg-type]
                elif name.startswith(_ASIDE) and _SHA256.fullmatch(sha := name.removeprefix(_ASIDE)):
                    if key == self._aside_key(sha):
                        found.aside.append(BlobFile(sha, PurePosixPath(key), meta["size"], mtime))  # type: ignore[arg-type]
        return found

    @_reaching
    def remove_unless_touched(self, sha256: str, older_than: float) -> int | None:
        """Delete the object if it is still dated before ``older_than``, keeping a copy aside until
        ``settle_aside`` decides on it (the sweep reads the database again first); the bytes freed,
        or None if it was kept or is gone."""
        key = self.key(sha256)
        try:
            meta = obstore.head(self._s3, key)
        except (NotFoundError, FileNotFoundError):
            return None
        if meta["last_modified"].timestamp() >= older_than:
            return None
        obstore.copy(self._s3, key, self._aside_key(sha256), overwrite=True)
        obstore.delete(self._s3, key)
        return int(meta["size"])

    @_reaching
    def settle_aside(self, sha256: str, older_than: float, *, keep: bool) -> int | None:
        """Decide on a copy set aside: put back (unless an upload wrote the object again) if
        ``keep``, else deleted; the bytes freed or None. The copy's own date is when it was made,
        so ``older_than`` plays no part: an upload in flight is covered by ``confirm``."""
        aside = self._aside_key(sha256)
        try:
            meta = obstore.head(self._s3, aside)
        except (NotFoundError, FileNotFoundError):
            return None
        if keep:
            if not self.exists(sha256):
                obstore.copy(self._s3, aside, self.key(sha256), overwrite=True)
            obstore.delete(self._s3, aside)
            return None
        obstore.delete(self._s3, aside)
        return int(meta["size"])

    def remove_temporary(self, path: object, older_than: float) -> int | None:
        return None  # an S3 put is atomic: nothing half-written is ever listed

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        yield True  # no host-local lock for a bucket: the database's advisory lock is the one
