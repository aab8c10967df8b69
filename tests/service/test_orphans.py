"""The orphan sweep (``compliance.service.orphans``), on SQLite and PostgreSQL: a photo file that
nothing refers to goes once it is older than the grace; a photo a submission, a driver's licence
or the audit trail refers to stays however old; a younger one stays; so does one an upload is
about to refer to again."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compliance.photos import Photo, read_photo_file
from compliance.service import orphans
from compliance.service import registry as registering
from compliance.service.orphans import sweep_photos
from compliance.service.sweeper import run_sweeper
from compliance.settings import Settings
from compliance.store import Store, submissions
from tests.service.conftest import SAMPLES, service_settings
from tests.service.stack import RedisServer

GRACE = 24 * 3600.0
OLD = time.time() - 2 * GRACE  # well past the grace
RECENT = time.time() - GRACE / 2  # within it


def photo(name: str) -> Photo:
    return read_photo_file(SAMPLES / name, max_bytes=20_000_000, max_pixels=50_000_000)


def aged(store: Store, sha: str, when: float = OLD) -> str:
    os.utime(store.blobs.path(sha), (when, when))
    return sha


@dataclass
class Yard:
    store: Store
    settings: Settings
    submitted: str  # a submission's photo
    licence: str  # a driver's licence photo now
    old_licence: str  # the licence it replaced: only the audit trail names it
    orphan: str  # nothing refers to it: its row never committed


@pytest.fixture()
def yard(database_url: str, tmp_path: Path) -> Iterator[Yard]:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store = Store.open(settings)
    carrier = registering.add_carrier(store, code="ACME", name="Acme", actor="tests")
    old_licence = photo("licence_a.jpg")
    driver = registering.add_driver(store, carrier.id, name="Li", ref="D-1", licence=old_licence, actor="tests")
    licence = photo("licence_b.jpg")
    registering.replace_licence(store, carrier.id, driver.id, licence, actor="tests", reason="renewed")
    scene = store.blobs.put(b"\xff\xd8 a scene photo")
    with store.sessions() as s, s.begin():
        submissions.create_submission(
            s,
            carrier_id=carrier.id,
            driver_id=driver.id,
            photo_sha256=scene,
            photo_phash="0123456789abcdef",
            source="cli",
        )
    orphan = store.blobs.put(b"\xff\xd8 a photo whose row never committed")
    for sha in (scene, licence.sha256, old_licence.sha256, orphan):
        aged(store, sha)
    yield Yard(store, settings, scene, licence.sha256, old_licence.sha256, orphan)
    store.engine.dispose()


def files(store: Store) -> set[Path]:
    return {p for p in store.blobs.root.rglob("*") if p.is_file()}


def test_an_old_orphan_goes_and_every_referenced_photo_stays(yard: Yard) -> None:
    store = yard.store
    young = store.blobs.put(b"\xff\xd8 an upload whose row is about to commit")
    aged(store, young, RECENT)
    size = store.blobs.path(yard.orphan).stat().st_size
    result = sweep_photos(store, yard.settings)
    assert (result.removed, result.removed_bytes, result.skipped) == (1, size, None)
    assert (result.kept_referenced, result.kept_recent) == (3, 1)
    assert not store.blobs.exists(yard.orphan)
    for kept in (yard.submitted, yard.licence, yard.old_licence, young):
        assert store.blobs.exists(kept), kept
    again = sweep_photos(store, yard.settings)
    assert (again.removed, again.kept) == (0, 4)


def test_the_grace_is_a_setting(yard: Yard) -> None:
    store = yard.store
    aged(store, yard.orphan, time.time() - 3 * 3600)
    assert sweep_photos(store, yard.settings).removed == 0
    shorter = yard.settings.model_copy(update={"orphan_grace_s": 2 * 3600.0})
    assert sweep_photos(store, shorter).removed == 1
    assert not store.blobs.exists(yard.orphan)
    with pytest.raises(ValueError, match="orphan_grace_s"):
        Settings(orphan_grace_s=60)


def test_a_dry_run_counts_and_removes_nothing(yard: Yard) -> None:
    store = yard.store
    stale = store.blobs.path(yard.orphan).with_name(f".tmp-{yard.orphan[:16]}-1-1.part")
    stale.write_bytes(b"half")
    os.utime(stale, (OLD, OLD))
    before = files(store)
    size = store.blobs.path(yard.orphan).stat().st_size
    result = sweep_photos(store, yard.settings, dry_run=True)
    assert (result.dry_run, result.removed, result.temporary_removed) == (True, 1, 1)
    assert result.freed_bytes == size + 4
    assert files(store) == before


def test_stale_temporary_files_go_and_ones_being_written_stay(yard: Yard) -> None:
    store = yard.store
    folder = store.blobs.path(yard.submitted).parent
    stale, writing = folder / ".tmp-0000000000000000-1-1.part", folder / ".tmp-0000000000000000-2-2.part"
    stale.write_bytes(b"a put that died")
    writing.write_bytes(b"a put under way")
    os.utime(stale, (OLD, OLD))
    result = sweep_photos(store, yard.settings)
    assert (result.temporary_removed, result.temporary_bytes) == (1, len(b"a put that died"))
    assert not stale.exists() and writing.exists()


def test_an_old_orphan_an_upload_is_about_to_refer_to_again_stays(yard: Yard, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep asks the database while an upload of the same bytes is between its put and its
    commit: the put dated the file anew, so the sweep leaves it."""
    store = yard.store
    real = orphans.references.referenced_with_prefix

    def while_uploading(session, prefix):  # type: ignore[no-untyped-def]
        found = real(session, prefix)
        if prefix == yard.orphan[:2]:
            store.blobs.put(b"\xff\xd8 a photo whose row never committed")  # its row commits later
        return found

    monkeypatch.setattr(orphans.references, "referenced_with_prefix", while_uploading)
    result = sweep_photos(store, yard.settings)
    assert result.removed == 0
    assert store.blobs.get(yard.orphan) == b"\xff\xd8 a photo whose row never committed"


def test_a_sweep_cut_short_is_finished_by_the_next(yard: Yard) -> None:
    """Files set aside by a sweep that died before deciding: a referenced one goes back, an
    unreferenced old one goes."""
    store = yard.store
    for sha in (yard.submitted, yard.orphan):
        os.rename(store.blobs.path(sha), store.blobs.path(sha).with_name(f".orphan-{sha}"))
    result = sweep_photos(store, yard.settings)
    assert result.removed == 1
    assert store.blobs.exists(yard.submitted) and not store.blobs.exists(yard.orphan)
    assert not [p for p in files(store) if p.name.startswith(".orphan-")]


def test_one_photo_sweep_at_a_time(yard: Yard) -> None:
    with yard.store.blobs.exclusive():
        result = sweep_photos(yard.store, yard.settings)
    assert result.skipped == "another photo sweep is running"
    assert yard.store.blobs.exists(yard.orphan)


def test_the_sweeper_process_sweeps_photos_and_stops(yard: Yard, tmp_path: Path, redis_server: RedisServer) -> None:
    settings = service_settings(yard.settings.database_url, tmp_path, redis_server.url)
    assert settings.orphan_sweep_interval_s == 3600.0  # the re-queue sweep's is 30 s
    run_sweeper(settings, once=True)
    assert yard.store.blobs.exists(yard.orphan)  # --once (cron) re-queues only
    stop = threading.Event()
    sweeper = threading.Thread(target=run_sweeper, args=(settings,), kwargs={"stop": stop})
    sweeper.start()
    try:
        deadline = time.monotonic() + 30
        while yard.store.blobs.exists(yard.orphan) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not yard.store.blobs.exists(yard.orphan)
    finally:
        stop.set()
        sweeper.join(timeout=30)
    assert not sweeper.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "photo-sweep"]
