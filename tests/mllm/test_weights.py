"""Finding a model id's weights on disk, without the network and without the modelscope package:
ModelScope's cache read as modelscope lays it out, and a version for what is found.

The layouts are modelscope 1.40's (models/<owner>--<name>/snapshots/<revision>) and those of its
earlier releases that it still reuses (1.20: hub/<owner>/<name>; 1.21-1.37: models/<owner>/<name>
under MODELSCOPE_CACHE, else under ~/.cache/modelscope/hub; dots in a name written ``___``).
Checked once against modelscope 1.40.2's own ``snapshot_download(..., local_files_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.mllm.backends.base import MllmError
from compliance.mllm.backends.weights import folder_version, modelscope_snapshot, resolve_local

MODEL_ID = "Qwen/Qwen2.5-VL-3B-Instruct"


def _model(folder: Path, weights: bytes = b"weights") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "modelscope"
    monkeypatch.setenv("MODELSCOPE_CACHE", str(root))
    return root


@pytest.mark.parametrize(
    "layout",
    [
        "models/Qwen--Qwen2.5-VL-3B-Instruct/snapshots/master",  # modelscope >= 1.38
        "models/Qwen/Qwen2___5-VL-3B-Instruct",  # 1.21-1.37 with MODELSCOPE_CACHE set
        "hub/models/Qwen/Qwen2___5-VL-3B-Instruct",  # 1.21-1.37 in its default cache
        "hub/Qwen/Qwen2___5-VL-3B-Instruct",  # 1.20
        "Qwen/Qwen2.5-VL-3B-Instruct",  # before the hub/ folder
    ],
)
def test_a_modelscope_download_is_found_by_model_id(cache: Path, layout: str) -> None:
    folder = _model(cache / layout)
    assert resolve_local(MODEL_ID, "modelscope") == folder


def test_the_default_cache_is_under_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELSCOPE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = _model(tmp_path / ".cache/modelscope/models/Qwen--Qwen2.5-VL-3B-Instruct/snapshots/master")
    assert resolve_local(MODEL_ID, "modelscope") == folder


def test_a_cache_modelscope_already_used_wins_over_a_new_snapshot(cache: Path) -> None:
    # modelscope keeps downloading into an older release's folder, so that is the one to judge with.
    older = _model(cache / "models/Qwen/Qwen2___5-VL-3B-Instruct")
    _model(cache / "models/Qwen--Qwen2.5-VL-3B-Instruct/snapshots/master")
    assert modelscope_snapshot(MODEL_ID) == older


def test_a_download_left_unfinished_is_not_a_model(cache: Path) -> None:
    # modelscope makes the snapshot folder before it lists the files: offline, it stays empty.
    (cache / "models/Qwen--Qwen2.5-VL-3B-Instruct/snapshots/master").mkdir(parents=True)
    with pytest.raises(MllmError) as caught:
        resolve_local(MODEL_ID, "modelscope")
    message = str(caught.value)
    assert MODEL_ID in message and "not on this machine" in message and "ModelScope's cache" in message
    assert str(cache) in message and "compliance models pull --source modelscope" in message


def test_one_revision_other_than_master_is_found_and_several_are_refused(cache: Path) -> None:
    snapshots = cache / "models/Qwen--Qwen2.5-VL-3B-Instruct/snapshots"
    v1 = _model(snapshots / "v1.0.0")
    assert modelscope_snapshot(MODEL_ID) == v1
    _model(snapshots / "v1.1.0")
    with pytest.raises(MllmError, match=r"several revisions .* \(v1\.0\.0, v1\.1\.0\)"):
        modelscope_snapshot(MODEL_ID)


def test_each_source_looks_only_in_its_own_cache(cache: Path) -> None:
    _model(cache / "models/Qwen--Qwen2.5-VL-3B-Instruct/snapshots/master")
    with pytest.raises(MllmError, match=r"not on this machine \(in the Hugging Face cache\)"):
        resolve_local("compliance-tests/no-such-model", "huggingface")
    assert modelscope_snapshot("compliance-tests/no-such-model") is None
    assert modelscope_snapshot("not-a-model-id") is None


def test_a_local_folder_is_used_as_given_whatever_the_source(tmp_path: Path) -> None:
    folder = _model(tmp_path / "Qwen2-VL-2B-Instruct")
    assert resolve_local(str(folder), "huggingface") == folder
    assert resolve_local(str(folder), "modelscope") == folder


def test_a_huggingface_snapshot_is_versioned_by_its_commit(tmp_path: Path) -> None:
    commit = "895c3a49bc3fa70a340399125c650a463535e71c"
    assert folder_version(_model(tmp_path / "models--Qwen--Qwen2-VL-2B-Instruct/snapshots" / commit)) == commit


def test_a_modelscope_snapshot_is_versioned_by_revision_and_weights(cache: Path) -> None:
    # "master" is a branch: the same name holds other weights after another pull.
    folder = _model(cache / "models/Qwen--Qwen2.5-VL-3B-Instruct/snapshots/master")
    version = folder_version(folder)
    assert version.startswith("master+sha256:") and folder_version(folder) == version
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert folder_version(folder) != version and folder_version(folder).startswith("master+sha256:")


def test_an_older_modelscope_download_is_versioned_by_the_revision_it_recorded(cache: Path) -> None:
    folder = _model(cache / "models/Qwen/Qwen2___5-VL-3B-Instruct")
    (folder / ".mv").write_text("Revision:v1.0.2,CreatedAt:1718000000")
    assert folder_version(folder).startswith("v1.0.2+sha256:")
    (folder / ".mv").unlink()
    assert folder_version(folder).startswith("sha256:")
