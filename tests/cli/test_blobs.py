"""``compliance blobs migrate`` as an operator runs it: the photo folder copied into a real S3
bucket, each photo verified there; run again, it copies nothing twice; a bad target is one line."""

from __future__ import annotations

import hashlib
from pathlib import Path

from compliance.store.blobs import BlobStore, photo_store_at
from tests.cli.helpers import run
from tests.s3server import S3Server

PHOTOS = [b"\xff\xd8 photo %d " % n + bytes(range(256)) * n for n in range(1, 13)]


def test_a_folder_is_copied_into_a_bucket_and_a_second_run_resumes(isolated_env: Path, s3_server: S3Server) -> None:
    folder = BlobStore(isolated_env / "blobs")
    shas = [folder.put(data) for data in PHOTOS]
    target = s3_server.url("migrated-" + isolated_env.name[-8:])
    bucket = photo_store_at(target)
    bucket.put(PHOTOS[0])  # as if a first run was cut short after one photo

    code, stdout, stderr = run("blobs", "migrate", "--to", target)
    assert code == 0, stderr
    assert f"copied {len(PHOTOS) - 1} photo(s)" in stdout and "1 already there" in stdout and "0 failed" in stdout
    for sha, data in zip(shas, PHOTOS, strict=True):
        assert hashlib.sha256(bucket.get(sha)).hexdigest() == sha and bucket.get(sha) == data

    code, stdout, stderr = run("blobs", "migrate", "--to", target)
    assert code == 0, stderr
    assert "copied 0 photo(s)" in stdout and f"{len(PHOTOS)} already there" in stdout


def test_a_corrupt_photo_in_the_folder_is_named_and_not_copied(isolated_env: Path, s3_server: S3Server) -> None:
    folder = BlobStore(isolated_env / "blobs")
    good, bad = folder.put(PHOTOS[0]), folder.put(PHOTOS[1])
    folder.path(bad).write_bytes(b"bit rot")
    target = s3_server.url("rotten-" + isolated_env.name[-8:])
    code, stdout, stderr = run("blobs", "migrate", "--to", target)
    assert code == 1
    assert "1 failed" in stdout and bad in stderr
    assert photo_store_at(target).exists(good) and not photo_store_at(target).exists(bad)


def test_a_target_that_is_no_store_is_one_line(isolated_env: Path) -> None:
    code, _, stderr = run("blobs", "migrate", "--to", "ftp://elsewhere/photos")
    assert code == 2 and "error:" in stderr and "s3://" in stderr and "Traceback" not in stderr
