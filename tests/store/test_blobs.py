"""Photo blobs are named by their SHA-256, written whole or not at all, and checked on read."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compliance.store.blobs import BlobStore
from compliance.store.errors import CorruptBlob, InvalidBlobKey, MissingBlob

DAY_AGO = time.time() - 2 * 24 * 3600


def test_put_names_the_blob_by_its_sha256(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"\xff\xd8\xff a photo's bytes"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.path(sha) == tmp_path / sha[:2] / sha[2:4] / sha
    assert store.path(sha).read_bytes() == data
    assert store.exists(sha)
    assert store.get(sha) == data


def test_put_twice_keeps_one_file_not_rewritten_but_dated_anew(tmp_path: Path) -> None:
    """The second put writes nothing, but dates the file now: a row is about to refer to it, so the
    orphan sweep must see it as new however old it was."""
    store = BlobStore(tmp_path)
    sha = store.put(b"same bytes")
    os.utime(store.path(sha), (DAY_AGO, DAY_AGO))
    first = store.path(sha).stat()
    assert store.put(b"same bytes") == sha
    second = store.path(sha).stat()
    assert second.st_ino == first.st_ino
    assert second.st_mtime > time.time() - 60
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
    from compliance.store.blobs import local as blobs

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


# The orphan sweep's side: listing a prefix, and removing only what nobody touched.


def aged(path: Path, when: float = DAY_AGO) -> Path:
    os.utime(path, (when, when))
    return path


def test_a_prefix_lists_blobs_temporary_files_and_blobs_set_aside(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = store.put(b"a photo")
    folder = store.path(sha).parent
    temporary = folder / f".tmp-{sha[:16]}-1-2.part"
    temporary.write_bytes(b"half a pho")
    aside = folder / f".orphan-{'0' * 64}"  # in another blob's folder: not this prefix's
    aside.write_bytes(b"x")
    mine = folder / f".orphan-{sha[:4]}{'0' * 60}"
    mine.write_bytes(b"set aside")
    (folder / "README").write_bytes(b"not ours")
    (folder / ("f" * 64)).write_bytes(b"a blob's name in the wrong folder")
    found = store.listing(sha[:2])
    assert [(b.name, b.path, b.size) for b in found.blobs] == [(sha, store.path(sha), 7)]
    assert [(t.path, t.size) for t in found.temporary] == [(temporary, 10)]
    assert [(a.name, a.path) for a in found.aside] == [(f"{sha[:4]}{'0' * 60}", mine)]
    assert store.prefixes() == [sha[:2]]
    assert store.listing("00" if sha[:2] != "00" else "01").blobs == []
    with pytest.raises(InvalidBlobKey):
        store.listing("../")


def test_an_untouched_blob_is_removed_and_a_touched_one_kept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    cutoff = time.time() - 3600
    old = store.put(b"old orphan")
    aged(store.path(old))
    assert store.remove_unless_touched(old, cutoff) == len(b"old orphan")
    assert not store.exists(old)
    assert store.remove_unless_touched(old, cutoff) is None  # already gone

    again = store.put(b"uploaded again")
    aged(store.path(again))
    store.put(b"uploaded again")  # after the sweep listed it as old: an upload now refers to it
    assert store.remove_unless_touched(again, cutoff) is None
    assert store.get(again) == b"uploaded again"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [store.path(again)]


def test_a_put_while_the_blob_is_set_aside_writes_it_again(tmp_path: Path) -> None:
    """The sweep moved the old file aside; a put of the same bytes then finds nothing to date and
    writes a new file, and the old copy set aside goes."""
    store = BlobStore(tmp_path)
    cutoff = time.time() - 3600
    sha = store.put(b"a photo")
    aged(store.path(sha))
    aside = store.path(sha).with_name(f".orphan-{sha}")
    os.rename(store.path(sha), aside)
    assert store.put(b"a photo") == sha
    assert store.settle_aside(sha, cutoff, keep=False) == len(b"a photo")
    assert store.get(sha) == b"a photo" and not aside.exists()


def test_a_blob_set_aside_goes_back_when_wanted_or_new(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    cutoff = time.time() - 3600
    wanted = store.put(b"referenced")
    aged(store.path(wanted))
    os.rename(store.path(wanted), store.path(wanted).with_name(f".orphan-{wanted}"))
    assert store.settle_aside(wanted, cutoff, keep=True) is None
    assert store.get(wanted) == b"referenced"
    new = store.put(b"dated now")
    os.rename(store.path(new), store.path(new).with_name(f".orphan-{new}"))
    assert store.settle_aside(new, cutoff, keep=False) is None
    assert store.get(new) == b"dated now"
    assert store.settle_aside(new, cutoff, keep=False) is None  # nothing set aside any more


def test_only_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    cutoff = time.time() - 3600
    folder = store.path(store.put(b"a photo")).parent
    stale = folder / ".tmp-0123456789abcdef-7-8.part"
    stale.write_bytes(b"crashed")
    aged(stale)
    writing = folder / ".tmp-0123456789abcdef-9-9.part"
    writing.write_bytes(b"being written")
    assert store.remove_temporary(stale, cutoff) == len(b"crashed")
    assert store.remove_temporary(writing, cutoff) is None
    assert not stale.exists() and writing.exists()
    with pytest.raises(InvalidBlobKey):
        store.remove_temporary(store.path(store.put(b"a photo")), cutoff)


def test_one_sweep_at_a_time_holds_the_folder(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.put(b"a photo")
    with store.exclusive() as first:
        with store.exclusive() as second:
            assert (first, second) == (True, False)
    with store.exclusive() as again:
        assert again
