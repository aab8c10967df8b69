"""The layers hold (the import-linter contracts in pyproject.toml), and a wrong import breaks them.

``make test`` runs ``lint-imports`` on the tree; these tests show the contracts are not vacuous: a
copy of the package with one wrong import fails the contract it breaks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def verdicts(output: str) -> dict[str, str]:
    """Each contract's name and KEPT or BROKEN, from lint-imports' report (names wrap at 80 columns)."""
    report = output.split("dependencies.", 1)[1].split("Contracts:", 1)[0]
    report = " ".join(line.strip() for line in report.splitlines() if line.strip() and set(line.strip()) != {"-"})
    return {name.strip(): state for name, state in re.findall(r"(.+?) (KEPT|BROKEN)", report)}


def test_the_tree_keeps_every_contract() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    states = verdicts(done.stdout)
    assert len(states) == 5 and set(states.values()) == {"KEPT"}, states


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for name in ("compliance", "workers"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("models", "samples", "static", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("compliance/store/blobs/local.py", "import compliance.service.intake", "One-way flow"),
        ("compliance/mllm/prompt.py", "import compliance.store.models", "never read the store"),
        ("compliance/queue/publisher.py", "import workers.tasks", "never imports the worker processes"),
        ("compliance/dashboard/overview.py", "import compliance.pipelines", "never reach for a pipeline"),
        ("compliance/dashboard/filters.py", "import compliance.dashboard.submissions", "No import circle"),
        # Inside a function counts like any other import.
        ("compliance/checks/face.py", "def _later():\n    import compliance.api.app", "One-way flow"),
    ],
)
def test_a_wrong_import_breaks_its_contract(copy: Path, module: str, wrong_import: str, contract: str) -> None:
    path = copy / module
    original = path.read_text()
    try:
        path.write_text(original + "\n\n" + wrong_import + "  # noqa\n")
        done = lint(copy)
    finally:
        path.write_text(original)
    assert done.returncode != 0, done.stdout
    broken = [name for name, state in verdicts(done.stdout).items() if state == "BROKEN"]
    assert any(contract in name for name in broken), done.stdout
