"""The photo store: content-addressed photos (the name is the SHA-256 of the bytes), in a local
folder (``local``, the embedded default) or any S3-compatible object store (``s3``), chosen by
``COMPLIANCE_BLOB_URL`` (unset: the folder ``COMPLIANCE_BLOB_DIR``; ``file:///abs/path``;
``s3://bucket/prefix``). A third store is one class with the ``PhotoStore`` methods and one line in
``_STORES``.

Every store keeps the same promises: a photo is stored whole or not at all before the row that
refers to it commits; nothing on a request's path deletes one (photos are shared); the orphan sweep
(``compliance.service.orphans``) removes only old photos nothing refers to, and never one an
upload is about to refer to again, however the two interleave (each store says how).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from compliance.settings import Settings
from compliance.store.blobs.local import BlobFile, BlobStore, PrefixListing, sha256_of

__all__ = [
    "HEADER_BYTES",
    "BlobFile",
    "BlobStore",
    "PhotoStore",
    "PrefixListing",
    "open_photo_store",
    "photo_store_at",
    "sha256_of",
]

# Enough for a JPEG's or PNG's header with its EXIF block (the licence photo's size and orientation).
HEADER_BYTES = 128 * 1024


class PhotoStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256; the same bytes again write nothing."""

    def confirm(self, sha256: str, data: bytes) -> None:
        """Once the row that refers to ``sha256`` has committed: make sure the photo is still there."""

    def get(self, sha256: str) -> bytes:
        """The photo's bytes, checked against its name (``MissingBlob``, ``CorruptBlob``)."""

    def head(self, sha256: str, size: int) -> bytes:
        """The first ``size`` bytes of the photo (its header), without reading the rest."""

    def exists(self, sha256: str) -> bool: ...

    def reachable(self) -> bool:
        """Whether the store answers now, asked once and briefly (``/readyz``): no retries."""

    # The orphan sweep's side (``compliance.service.orphans``).

    def prefixes(self) -> list[str]:
        """The two-hex-digit prefixes that hold photos, in order."""

    def listing(self, prefix: str) -> PrefixListing: ...

    def remove_unless_touched(self, sha256: str, older_than: float) -> int | None: ...

    def settle_aside(self, sha256: str, older_than: float, *, keep: bool) -> int | None: ...

    def remove_temporary(self, path: Path, older_than: float) -> int | None: ...

    def exclusive(self) -> AbstractContextManager[bool]: ...


def _folder(url: str) -> PhotoStore:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise ValueError(f"a folder URL is file:///absolute/path, not {url!r}")
    return BlobStore(Path(unquote(parts.path)))


def _bucket(url: str) -> PhotoStore:
    from compliance.store.blobs.s3 import S3BlobStore  # obstore only where a bucket is used

    return S3BlobStore(url)


# The registry: a URL scheme and the store it opens.
_STORES: dict[str, Callable[[str], PhotoStore]] = {"file": _folder, "s3": _bucket}


def photo_store_at(url: str) -> PhotoStore:
    """The photo store a URL names; ``ValueError`` saying what is accepted if it names none."""
    scheme = urlsplit(url).scheme
    opener = _STORES.get(scheme)
    if opener is None:
        known = ", ".join(f"{s}://" for s in _STORES)
        raise ValueError(f"COMPLIANCE_BLOB_URL must start with one of {known}, not {url!r}")
    return opener(url)


def open_photo_store(settings: Settings) -> PhotoStore:
    """The photo store the settings choose: ``blob_url``, else the folder ``blob_dir``."""
    if settings.blob_url is None:
        return BlobStore(settings.blob_dir)
    return photo_store_at(settings.blob_url)
