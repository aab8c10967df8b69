"""Photo blobs are named by their SHA-256, written whole or not at all, and checked on read."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compliance.store.blobs import BlobStore
from compliance.store.errors import CorruptBlob, InvalidBlobKey, MissingBlob


def test_put_names_the_blob_by_its_sha256(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"\xff\xd8\xff a photo's bytes"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.path(sha) == tmp_path / sha[:2] / sha[2:4] / sha
    assert store.path(sha).read_bytes() == data
    assert store.exists(sha)
    assert store.get(sha) == data


def test_put_twice_keeps_one_file_untouched(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = store.put(b"same bytes")
    first = store.path(sha).stat()
    assert store.put(b"same bytes") == sha
    second = store.path(sha).stat()
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [store.path(sha)]


def test_different_bytes_get_different_names(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert store.put(b"one") != store.put(b"two")
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 2


def test_concurrent_puts_of_one_photo_leave_one_whole_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = bytes(range(256)) * 4096
    with ThreadPoolExecutor(max_workers=8) as pool:
        names = set(pool.map(lambda _: store.put(data), range(32)))
    assert len(names) == 1
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.path(names.pop())]  # no temporary files left behind
    assert files[0].read_bytes() == data


def test_missing_blob_is_a_lookup_error(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(sha)
    with pytest.raises(MissingBlob) as caught:
        store.get(sha)
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ABC", "g" * 64, "A" * 64, ""])
def test_keys_that_are_not_sha256_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        BlobStore(tmp_path).path(key)


def test_a_blob_changed_on_disk_is_reported(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = store.put(b"original")
    store.path(sha).write_bytes(b"tampered")
    with pytest.raises(CorruptBlob):
        store.get(sha)
    # Putting the real bytes again repairs it.
    store.put(b"original")
    assert store.get(sha) == b"original"


def test_putting_a_blob_already_on_disk_syncs_its_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob found on disk may have been renamed in by another put (another process) that has not
    yet synced its folder: the first put that finds it syncs the folder before saying it is stored;
    later puts in this process know it is durable and sync nothing."""
    from compliance.store import blobs

    sha = BlobStore(tmp_path).put(b"photo bytes")  # as if by another process
    synced: list[Path] = []
    real = blobs._fsync_dir
    monkeypatch.setattr(blobs, "_fsync_dir", lambda folder: (synced.append(folder), real(folder)))
    store = BlobStore(tmp_path)
    assert store.put(b"photo bytes") == sha
    assert synced == [store.path(sha).parent]
    assert store.put(b"photo bytes") == sha
    assert synced == [store.path(sha).parent]


def test_a_blob_of_another_size_on_disk_is_rewritten(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = store.put(b"original")
    store.path(sha).write_bytes(b"cut")
    assert store.put(b"original") == sha
    assert store.get(sha) == b"original"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [store.path(sha)]
