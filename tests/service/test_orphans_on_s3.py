"""The orphan sweep over a real S3 server, on SQLite and PostgreSQL: S3 has no rename, so the race
the folder closes with a rename aside is closed from both sides (``compliance.store.blobs.s3``):
the sweep asks the database again after deleting and puts back what a row now refers to, and an
upload whose put found its photo already stored checks it is still there once its row committed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compliance.service import orphans
from compliance.service import registry as registering
from compliance.service.orphans import sweep_photos
from compliance.settings import Settings
from compliance.store import Store, registry
from tests.conftest import s3_blob_url
from tests.service.test_orphans import photo

GRACE = 24 * 3600.0
LATER = time.time() + 2 * GRACE  # the sweep's "now": every object is past the grace


@dataclass
class Bucket:
    store: Store
    settings: Settings
    carrier_id: int
    licence: str  # a driver's licence photo: referenced
    orphan: bytes  # a photo whose row never committed
    orphan_sha: str


@pytest.fixture()
def bucket(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bucket]:
    settings = Settings(database_url=database_url, blob_url=s3_blob_url(request), orphan_grace_s=GRACE)
    store = Store.open(settings)
    carrier = registering.add_carrier(store, code="ACME", name="Acme", actor="tests")
    driver = registering.add_driver(store, carrier.id, name="Li", ref="D-1", licence=photo("licence_a.jpg"), actor="t")
    orphan = photo("licence_b.jpg")
    store.blobs.put(orphan.data)
    yield Bucket(store, settings, carrier.id, driver.licence_sha256 or "", orphan.data, orphan.sha256)
    store.engine.dispose()


def test_an_old_orphan_goes_and_a_referenced_photo_stays(bucket: Bucket) -> None:
    store = bucket.store
    assert sweep_photos(store, bucket.settings, dry_run=True, now=LATER).removed == 1
    assert sweep_photos(store, bucket.settings, now=time.time()).removed == 0  # within the grace
    result = sweep_photos(store, bucket.settings, now=LATER)
    assert (result.removed, result.removed_bytes) == (1, len(bucket.orphan))
    assert not store.blobs.exists(bucket.orphan_sha)
    assert store.blobs.exists(bucket.licence)
    assert not store.blobs.listing(bucket.orphan_sha[:2]).aside  # no copy left behind


def _commit_a_driver_referring_to(bucket: Bucket, sha: str) -> None:
    """The row of an upload whose photo put has already run, committing now."""
    with bucket.store.sessions() as s, s.begin():
        registry.add_driver(
            s, carrier_id=bucket.carrier_id, name="Wang", external_ref="D-2", licence_sha256=sha, actor="t"
        )


def test_a_row_committed_while_the_sweep_deletes_gets_its_photo_back(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload's put finds the old orphan (nothing written), the sweep (which asked the database
    before) deletes it, the upload's row commits: the sweep's second question puts it back."""
    store = bucket.store
    real = store.blobs.remove_unless_touched

    def deleting(sha: str, older_than: float) -> int | None:
        store.blobs.put(bucket.orphan)  # the upload's put: already there
        freed = real(sha, older_than)
        _commit_a_driver_referring_to(bucket, sha)
        return freed

    monkeypatch.setattr(store.blobs, "remove_unless_touched", deleting)
    result = sweep_photos(store, bucket.settings, now=LATER)
    assert result.removed == 0 and result.kept_referenced >= 2
    assert store.blobs.get(bucket.orphan_sha) == bucket.orphan
    assert not store.blobs.listing(bucket.orphan_sha[:2]).aside


def test_a_row_committed_after_the_sweep_puts_its_photo_again(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload's put finds the old orphan, the sweep deletes it and finishes, then the row
    commits: the upload's check after its commit writes the photo again."""
    store = bucket.store
    real = orphans.references.referenced_with_prefix
    calls: list[str] = []

    def asking(session, prefix):  # type: ignore[no-untyped-def]
        if prefix == bucket.orphan_sha[:2] and not calls:
            calls.append(prefix)
            store.blobs.put(bucket.orphan)  # the upload's put, between the first question and the delete
        return real(session, prefix)

    monkeypatch.setattr(orphans.references, "referenced_with_prefix", asking)
    assert sweep_photos(store, bucket.settings, now=LATER).removed == 1
    assert not store.blobs.exists(bucket.orphan_sha)
    _commit_a_driver_referring_to(bucket, bucket.orphan_sha)
    store.blobs.confirm(bucket.orphan_sha, bucket.orphan)  # what intake and registry do after the commit
    assert store.blobs.get(bucket.orphan_sha) == bucket.orphan


def test_copies_left_aside_by_a_sweep_cut_short_are_settled_by_the_next(bucket: Bucket) -> None:
    store = bucket.store
    for sha in (bucket.licence, bucket.orphan_sha):
        assert store.blobs.remove_unless_touched(sha, LATER) is not None  # deleted, copy aside; then died
    assert not store.blobs.exists(bucket.licence)
    sweep_photos(store, bucket.settings, now=LATER)
    assert store.blobs.exists(bucket.licence) and not store.blobs.exists(bucket.orphan_sha)
    assert not store.blobs.listing(bucket.licence[:2]).aside and not store.blobs.listing(bucket.orphan_sha[:2]).aside
