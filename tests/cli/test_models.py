"""``compliance models pull``: failing clearly offline, and a local folder needing nothing."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import assert_one_line_error, run


def test_models_pull_offline_fails_with_one_line(isolated_env: Path) -> None:
    # A repository that does not exist: offline it cannot connect, online it is not found; no
    # test ever downloads gigabytes.
    code, _, stderr = run("models", "pull", "--mllm-model", "compliance-tests/no-such-model")
    assert_one_line_error(code, stderr, "could not download compliance-tests/no-such-model")


def test_models_pull_of_a_local_folder_needs_nothing(isolated_env: Path, tiny_model_dir: Path) -> None:
    code, stdout, stderr = run("models", "pull", "--mllm-model", str(tiny_model_dir))
    assert code == 0, stderr
    assert str(tiny_model_dir) in stdout.replace("\n", "")
