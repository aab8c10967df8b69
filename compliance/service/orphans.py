"""The orphan sweep: removing photo files that nothing refers to.

Photos are content-addressed and shared: two uploads of the same bytes share one file, so nothing
on a request's path deletes one (a refused request cannot know whether a concurrent one is about
to refer to the same file). A file is left behind when a photo was written and its row then never
committed (the commit failed, the process died). This sweep finds such files, one two-hex-digit
prefix of the blob folder at a time (about 1/256 of the photos in memory at once):

1. the prefix's files are listed with their times;
2. those older than ``orphan_grace_s`` are checked against the database: a submission's photo,
   a driver's licence photo, or a licence photo the audit trail names (an old one, replaced);
3. an old file none of them refers to is removed, unless it was touched since it was listed.

Why the grace: an upload writes its photo before its row commits (so a committed row never points
at a missing file), so for a moment every new photo looks like an orphan. The grace (a day by
default) is far longer than any transaction. A photo already on disk is dated anew by the put that
finds it (``BlobStore.put``), and the removal moves the file aside before reading its time again
(``BlobStore.remove_unless_touched``), so an old orphan that an upload is about to refer to again
is kept too, however the two interleave.

An object store (S3) has no rename: there the removal copies the object aside and deletes it, the
database is asked again, and what a row now refers to is put back; an upload that found its photo
already stored checks once its row has committed that it still is (``PhotoStore.confirm``).

Stale temporary files (``.tmp-*.part``, a put that died before its rename) older than the grace
go as well. One sweep at a time: a PostgreSQL advisory lock across hosts, and a lock on the blob
folder on this host.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from compliance.settings import Settings
from compliance.store import Store, references
from compliance.store.blobs import PrefixListing
from compliance.store.db import alone, session_factory

log = logging.getLogger("compliance.orphans")

# Any constant but the re-queue sweep's: one photo sweep at a time per database.
_LOCK_KEY = 0x6F727068


@dataclass
class PhotoSweep:
    """What one sweep found. In a dry run, ``removed`` and the bytes are what it would remove."""

    dry_run: bool = False
    kept_referenced: int = 0  # old enough, and something refers to it
    kept_recent: int = 0  # within the grace (not asked about)
    removed: int = 0
    removed_bytes: int = 0
    temporary_removed: int = 0
    temporary_bytes: int = 0
    skipped: str | None = None  # why it did nothing or stopped early

    @property
    def kept(self) -> int:
        return self.kept_referenced + self.kept_recent

    @property
    def freed_bytes(self) -> int:
        return self.removed_bytes + self.temporary_bytes


def sweep_photos(
    store: Store,
    settings: Settings,
    *,
    dry_run: bool = False,
    now: float | None = None,
    stop: threading.Event | None = None,
) -> PhotoSweep:
    """Remove (or with ``dry_run`` only count) the photo files nothing refers to that are older
    than ``settings.orphan_grace_s``; ``now`` is a Unix time (default: the clock). ``stop``, when
    set, ends the sweep between two prefixes."""
    result = PhotoSweep(dry_run=dry_run)
    older_than = (time.time() if now is None else now) - settings.orphan_grace_s
    reading = session_factory(store.engine, read_only=True)
    with store.blobs.exclusive() as alone_here, alone(store.engine, _LOCK_KEY) as alone_anywhere:
        if not (alone_here and alone_anywhere):
            result.skipped = "another photo sweep is running"
            return result
        for prefix in store.blobs.prefixes():
            if stop is not None and stop.is_set():
                result.skipped = "stopped"
                break
            _sweep_prefix(store, reading, store.blobs.listing(prefix), older_than, result)
    log.info(
        "photo sweep%s: kept %d (%d referenced, %d within the grace), %s %d (%d bytes), %d stale temporary file(s)",
        " (dry run)" if dry_run else "",
        result.kept,
        result.kept_referenced,
        result.kept_recent,
        "would remove" if dry_run else "removed",
        result.removed,
        result.freed_bytes,
        result.temporary_removed,
    )
    return result


def _sweep_prefix(
    store: Store, reading: sessionmaker[Session], found: PrefixListing, older_than: float, result: PhotoSweep
) -> None:
    blobs = store.blobs
    for temporary in found.temporary:
        if temporary.mtime >= older_than:
            continue
        freed = temporary.size if result.dry_run else blobs.remove_temporary(temporary.path, older_than)
        if freed is not None:
            result.temporary_removed += 1
            result.temporary_bytes += freed
    old = [b for b in found.blobs if b.mtime < older_than]
    result.kept_recent += len(found.blobs) - len(old)
    if not old and not found.aside:
        return  # nothing to ask the database about
    with reading() as s:
        referenced = references.referenced_with_prefix(s, found.prefix)
        unreferenced = {b.name for b in (*old, *found.aside) if b.name not in referenced}
        if unreferenced:
            referenced |= references.named_by_audit_trail(s, unreferenced)
    # Files a sweep cut short had moved aside: back in place if wanted or new, else removed.
    for aside in found.aside:
        wanted = aside.name in referenced
        if result.dry_run:
            freed = None if wanted or aside.mtime >= older_than else aside.size
        else:
            freed = blobs.settle_aside(aside.name, older_than, keep=wanted)
        _count(result, freed, referenced=wanted)
    removed: list[str] = []
    for blob in old:
        if blob.name in referenced:
            result.kept_referenced += 1
            continue
        freed = blob.size if result.dry_run else blobs.remove_unless_touched(blob.name, older_than)
        _count(result, freed, referenced=False)
        if freed is not None and not result.dry_run:
            removed.append(blob.name)
    if removed:
        _put_back_wanted(store, reading, found.prefix, removed, older_than, result)


def _put_back_wanted(
    store: Store,
    reading: sessionmaker[Session],
    prefix: str,
    removed: list[str],
    older_than: float,
    result: PhotoSweep,
) -> None:
    """Ask the database again about what was just removed, and put back what a row committed since
    the first question refers to (a store without rename, S3, keeps a copy aside until now; the
    folder has settled its own already, so this finds nothing aside there)."""
    with reading() as s:
        wanted = references.referenced_with_prefix(s, prefix) & set(removed)
        wanted |= references.named_by_audit_trail(s, set(removed) - wanted)
    for name in removed:
        keep = name in wanted
        store.blobs.settle_aside(name, older_than, keep=keep)
        if keep:
            result.removed -= 1
            result.kept_referenced += 1


def _count(result: PhotoSweep, freed: int | None, *, referenced: bool) -> None:
    if freed is not None:
        result.removed += 1
        result.removed_bytes += freed
    elif referenced:
        result.kept_referenced += 1
    else:
        result.kept_recent += 1  # touched since it was listed: an upload is using it


def sweep_photos_every(store: Store, settings: Settings, stop: threading.Event) -> None:
    """Sweep now and then every ``orphan_sweep_interval_s`` until ``stop`` is set (the sweeper
    process runs this in a thread of its own, so a long walk never delays re-queueing)."""
    while not stop.is_set():
        try:
            result = sweep_photos(store, settings, stop=stop)
        except Exception:  # the database or the disk may be away: say so and try next time
            log.exception("photo sweep failed")
        else:
            if result.skipped:
                log.warning("photo sweep skipped: %s", result.skipped)
        stop.wait(settings.orphan_sweep_interval_s)
