"""Copying every photo of one store into another (``compliance blobs migrate``): a folder into a
bucket when a carrier moves to several hosts.

Resumable: a photo the target already holds (at its size) is skipped, so a copy cut short is run
again from the start at the cost of a listing. Verified: each photo is read from the source checked
against its name, and read back from the target after the put, checked again.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from compliance.store.blobs import BlobFile, PhotoStore
from compliance.store.errors import CorruptBlob, MissingBlob


@dataclass
class PhotoCopy:
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0  # already in the target
    failed: list[str] = field(default_factory=list)  # "<sha256>: why", for the operator to look at


def count_photos(store: PhotoStore) -> int:
    return sum(len(store.listing(prefix).blobs) for prefix in store.prefixes())


def copy_photos(
    source: PhotoStore,
    target: PhotoStore,
    *,
    jobs: int = 8,
    done: Callable[[str], None] = lambda sha256: None,
) -> PhotoCopy:
    """Copy every photo of ``source`` that ``target`` lacks; ``done`` is called once per photo
    (copied, skipped or failed), from the calling thread."""
    result = PhotoCopy()

    def one(photo: BlobFile) -> tuple[str, int | None, str | None]:
        try:
            if target.exists(photo.name):  # written whole or not at all (rename, one PUT), and verified then
                return photo.name, None, None
            data = source.get(photo.name)  # checked against its name
            if target.put(data) != photo.name or target.get(photo.name) != data:
                return photo.name, None, "the copy read back differs"
            return photo.name, len(data), None
        except (CorruptBlob, MissingBlob) as exc:
            return photo.name, None, f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for prefix in source.prefixes():
            # One prefix at a time: map submits all it is given, so memory stays at 1/256 of them.
            for sha256, copied, error in pool.map(one, source.listing(prefix).blobs):
                if error is not None:
                    result.failed.append(f"{sha256}: {error}")
                elif copied is None:
                    result.skipped += 1
                else:
                    result.copied += 1
                    result.copied_bytes += copied
                done(sha256)
    return result
