"""The photo store's contract, on both stores (``blob_url``: a local folder, a prefix of a real S3
server): content-addressed puts that write nothing twice, reads checked against the name, the
header alone, and the orphan sweep's listing and removal."""

from __future__ import annotations

import time

import pytest

from compliance.store.blobs import PhotoStore, photo_store_at, sha256_of
from compliance.store.blobs.s3 import S3BlobStore
from compliance.store.errors import InvalidBlobKey, MissingBlob
from tests.conftest import photo_names, s3_blob_url

PHOTO = b"\xff\xd8" + bytes(range(256)) * 40


@pytest.fixture()
def photos(blob_url: str) -> PhotoStore:
    return photo_store_at(blob_url)


def test_a_photo_goes_in_under_its_digest_and_comes_back_whole(photos: PhotoStore) -> None:
    sha = photos.put(PHOTO)
    assert sha == sha256_of(PHOTO)
    assert photos.exists(sha)
    assert photos.get(sha) == PHOTO
    assert photos.head(sha, 10) == PHOTO[:10]
    assert photos.head(sha, 1_000_000) == PHOTO  # a header longer than the photo: all of it
    assert photos.put(PHOTO) == sha  # again: already there, nothing to do
    photos.confirm(sha, PHOTO)
    assert photos.get(sha) == PHOTO


def test_a_missing_or_malformed_name_is_refused(photos: PhotoStore) -> None:
    absent = sha256_of(b"never stored")
    assert not photos.exists(absent)
    with pytest.raises(MissingBlob):
        photos.get(absent)
    with pytest.raises(MissingBlob):
        photos.head(absent, 16)
    with pytest.raises(InvalidBlobKey):
        photos.get("../../etc/passwd")


def test_the_sweep_lists_by_prefix_and_removes_an_old_photo_once(photos: PhotoStore) -> None:
    sha = photos.put(PHOTO)
    other = photos.put(PHOTO + b"other")
    assert sha[:2] in photos.prefixes() and other[:2] in photos.prefixes()
    listed = photos.listing(sha[:2])
    assert sha in {b.name for b in listed.blobs}
    entry = next(b for b in listed.blobs if b.name == sha)
    assert entry.size == len(PHOTO) and abs(entry.mtime - time.time()) < 300
    assert photos.remove_unless_touched(sha, older_than=time.time() - 3600) is None  # new: kept
    assert photos.get(sha) == PHOTO
    assert photos.remove_unless_touched(sha, older_than=time.time() + 3600) == len(PHOTO)
    photos.settle_aside(sha, time.time() + 3600, keep=False)
    assert not photos.exists(sha)
    assert photos.remove_unless_touched(sha, older_than=time.time() + 3600) is None  # already gone
    assert photos.get(other) == PHOTO + b"other"
    assert not photos.listing(sha[:2]).aside


def test_a_store_url_names_a_known_store(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="file://, s3://"):
        photo_store_at("ftp://host/photos")
    with pytest.raises(ValueError, match="absolute"):
        photo_store_at("file://relative/photos")


@pytest.mark.s3
def test_an_s3_store_that_honours_conditional_puts_checks_only_photos_it_found_stored(
    request: pytest.FixtureRequest,
) -> None:
    """SeaweedFS refuses a create over an existing object, as AWS S3 does: the store learns it once,
    and after commit checks only the photos whose put found them already there (the orphan sweep's
    race); on a store that ignored If-None-Match it would check every upload."""
    store = photo_store_at(s3_blob_url(request))
    assert isinstance(store, S3BlobStore)
    assert store.honours_conditional_put()
    assert store.honours_conditional_put()  # asked once, remembered
    assert "conditional-put-probe" not in photo_names(store)  # outside the photos' folders
