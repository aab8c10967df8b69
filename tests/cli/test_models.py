"""``compliance models pull``: each source failing clearly offline, the source chosen by setting or
option, a local folder needing nothing.

The modelscope package is an optional extra that the test environment does not install: a stand-in
module takes its place, with its ``snapshot_download(model_id)`` and the error it raises offline
(modelscope 1.40: ``NetworkError``, a ``ConnectionError``, after its retries)."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compliance.settings import get_settings
from tests.cli.helpers import assert_one_line_error, run
from tests.conftest import REPO

MODEL = "compliance-tests/no-such-model"


def stand_in_modelscope(monkeypatch: pytest.MonkeyPatch, download: Callable[[str], str]) -> list[str]:
    """``import modelscope`` gives a module whose snapshot_download is ``download``; returns the ids asked for."""
    asked: list[str] = []

    def snapshot_download(model_id: str) -> str:
        asked.append(model_id)
        return download(model_id)

    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=snapshot_download))
    return asked


def offline(model_id: str) -> str:
    raise ConnectionError(
        "[E1020] Connection failed: HTTPSConnectionPool(host='modelscope.cn', port=443): Max retries exceeded\n"
        f"with url: /api/v1/models/{model_id}/repo/files?Revision=master (Failed to resolve 'modelscope.cn')"
    )


@pytest.fixture()
def modelscope_cache(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = isolated_env / "modelscope"
    monkeypatch.setenv("MODELSCOPE_CACHE", str(root))
    return root


def downloads_into(root: Path) -> Callable[[str], str]:
    """What modelscope 1.40 does online: the files under models/<owner>--<name>/snapshots/master."""

    def download(model_id: str) -> str:
        folder = root / "models" / model_id.replace("/", "--") / "snapshots" / "master"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        return str(folder)

    return download


def use_source(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    monkeypatch.setenv("COMPLIANCE_MODEL_SOURCE", source)
    get_settings.cache_clear()


@pytest.mark.parametrize(("source", "hub"), [("huggingface", "Hugging Face Hub"), ("modelscope", "ModelScope")])
def test_models_pull_offline_fails_with_one_line_naming_the_source_and_model(
    modelscope_cache: Path, monkeypatch: pytest.MonkeyPatch, source: str, hub: str
) -> None:
    # A repository that does not exist: offline it cannot connect, online it is not found; no
    # test ever downloads gigabytes.
    asked = stand_in_modelscope(monkeypatch, offline)
    code, _, stderr = run("models", "pull", "--source", source, "--mllm-model", MODEL)
    assert_one_line_error(code, stderr, f"could not download {MODEL} from", hub)
    assert asked == ([MODEL] if source == "modelscope" else [])


def test_pulling_from_modelscope_without_the_package_says_how_to_install_it(
    modelscope_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)  # import modelscope raises ImportError
    code, _, stderr = run("models", "pull", "--source", "modelscope", "--mllm-model", MODEL)
    assert_one_line_error(code, stderr, MODEL, "ModelScope", "pip install '.[modelscope]'")


def test_the_setting_chooses_the_source_and_judging_finds_the_download(
    modelscope_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compliance.mllm.backends.weights import resolve_local

    use_source(monkeypatch, "modelscope")
    asked = stand_in_modelscope(monkeypatch, downloads_into(modelscope_cache))
    code, stdout, stderr = run("models", "pull", "--mllm-model", MODEL)
    assert code == 0, stderr
    folder = modelscope_cache / "models" / "compliance-tests--no-such-model" / "snapshots" / "master"
    assert asked == [MODEL] and str(folder) in stdout.replace("\n", "")
    assert "COMPLIANCE_MODEL_SOURCE" not in stderr
    assert resolve_local(MODEL, get_settings().model_source) == folder


def test_the_option_overrides_the_setting(modelscope_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_source(monkeypatch, "modelscope")
    asked = stand_in_modelscope(monkeypatch, offline)
    code, _, stderr = run("models", "pull", "--source", "huggingface", "--mllm-model", MODEL)
    assert_one_line_error(code, stderr, "Hugging Face Hub")
    assert asked == []


def test_pulling_from_another_source_than_judging_uses_says_what_to_set(
    modelscope_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_modelscope(monkeypatch, downloads_into(modelscope_cache))
    code, _, stderr = run("models", "pull", "--source", "modelscope", "--mllm-model", MODEL)
    assert code == 0, stderr
    assert "COMPLIANCE_MODEL_SOURCE=modelscope" in stderr


def test_a_download_where_judging_would_not_find_it_is_an_error(
    modelscope_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_modelscope(monkeypatch, downloads_into(modelscope_cache / "elsewhere"))
    code, _, stderr = run("models", "pull", "--source", "modelscope", "--mllm-model", MODEL)
    assert_one_line_error(code, stderr, "where judging does not look", "COMPLIANCE_MLLM_MODEL=")


def test_models_pull_of_a_local_folder_needs_nothing(isolated_env: Path, tiny_model_dir: Path) -> None:
    for source in ("huggingface", "modelscope"):  # nor the modelscope package
        code, stdout, stderr = run("models", "pull", "--source", source, "--mllm-model", str(tiny_model_dir))
        assert code == 0, stderr
        assert str(tiny_model_dir) in stdout.replace("\n", "")


class _NotFound(http.server.BaseHTTPRequestHandler):
    asked: list[str]

    def do_GET(self) -> None:
        self.asked.append(self.path)
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def mirror() -> Iterator[tuple[str, list[str]]]:
    """A Hugging Face mirror on 127.0.0.1 that has no model, and the paths it was asked for."""
    asked: list[str] = []
    handler = type("Handler", (_NotFound,), {"asked": asked})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_huggingface_pull_asks_the_mirror_in_hf_endpoint(tmp_path: Path, mirror: tuple[str, list[str]]) -> None:
    # huggingface_hub reads HF_ENDPOINT once, when imported: a process of its own, as an operator runs it.
    endpoint, asked = mirror
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "0",
        "COMPLIANCE_MODEL_SOURCE": "huggingface",
    }
    done = subprocess.run(
        [sys.executable, "-m", "compliance.cli", "models", "pull", "--mllm-model", MODEL],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(done.returncode, done.stderr, f"could not download {MODEL} from", endpoint)
    assert any(path.startswith(f"/api/models/{MODEL}/") for path in asked), asked
