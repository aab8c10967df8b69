"""Under CI nothing is skipped: a missing PostgreSQL, Redis, Chromium, S3 server or dev set fails the run, named;
without CI the same tests are skips. And ``.ci/run`` stops, naming the service, when one cannot start.

Each case runs pytest in a subprocess on a small probe file that asks for one thing through the
suite's own fixtures (loaded as plugins: tests/conftest.py with its CI hook, the service's and the
dashboard's conftest), with that thing made missing: PostgreSQL at a closed port, no redis-server
binary, no Chromium at its path, an empty dev-set folder.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = """
def test_postgres(database_url):
    pass

def test_redis(redis_server):
    pass

def test_chromium(browser):
    pass

def test_dev_set(dev_dir):
    pass

def test_s3(s3_server):
    pass
"""

# What each probe needs, how it is made missing, and the words the failure must name it by.
MISSING = {
    "postgres": (
        "test_postgres[postgresql]",
        {"COMPLIANCE_TEST_POSTGRES_URL": "postgresql+psycopg://postgres@127.0.0.1:1/test"},
        "PostgreSQL",
    ),
    "redis": ("test_redis", {"COMPLIANCE_TEST_REDIS_SERVER": "/nonexistent/redis-server"}, "Redis"),
    "chromium": ("test_chromium", {"COMPLIANCE_TEST_CHROMIUM": "/nonexistent/chromium"}, "Chromium"),
    "dev set": ("test_dev_set", {"COMPLIANCE_EVAL_DIR": "{empty}"}, "dev set"),
    "s3": ("test_s3", {"COMPLIANCE_TEST_WEED": "/nonexistent/weed"}, "SeaweedFS"),
}
PLUGINS = ["-p", "tests.conftest", "-p", "tests.service.conftest", "-p", "tests.dashboard.conftest"]


def _pytest(tmp_path: Path, tests: list[str], env: dict[str, str], ci: bool) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    environment |= {k: v.format(empty=empty) for k, v in env.items()}
    environment["PYTHONPATH"] = str(REPO)
    if ci:
        environment["CI"] = "1"
    command = [sys.executable, "-m", "pytest", *PLUGINS, "-p", "no:cacheprovider", "-ra", "-q"]
    command += ["--rootdir", str(tmp_path), *[f"{probe}::{t}" for t in tests]]
    return subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_under_ci_a_missing_service_fails_the_run_naming_it(tmp_path: Path, missing: str) -> None:
    test, env, name = MISSING[missing]
    run = _pytest(tmp_path, [test], env, ci=True)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "CI is set, so this may not be skipped" in output and name in output, output
    assert " skipped" not in output.splitlines()[-1], output


def test_without_ci_the_same_are_skips_naming_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for _, e, _ in MISSING.values() for k, v in e.items()}
    run = _pytest(tmp_path, [t for t, _, _ in MISSING.values()], env, ci=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert f"{len(MISSING)} skipped" in output.splitlines()[-1], output
    for _, _, name in MISSING.values():
        assert "SKIPPED" in output and name in output, (name, output)


def test_under_ci_a_module_skipped_while_collected_fails_too(tmp_path: Path) -> None:
    (tmp_path / "test_module_skip.py").write_text(
        'import pytest\n\nplaywright = pytest.importorskip("no_such_browser_driver")\n\n\ndef test_x():\n    pass\n'
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    environment["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q"]
    command += ["--rootdir", str(tmp_path), str(tmp_path / "test_module_skip.py")]
    skipped = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert skipped.returncode in (0, 5) and "1 skipped" in skipped.stdout, skipped.stdout  # 5: no test ran
    failed = subprocess.run(
        command, cwd=tmp_path, env=environment | {"CI": "1"}, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode != 0 and "no_such_browser_driver" in failed.stdout, failed.stdout
    assert "CI is set, so this may not be skipped" in failed.stdout, failed.stdout


# -- .ci/run ------------------------------------------------------------------------------------

# Stand-ins for the commands .ci/run calls: each service up or not; anything that would install or
# build fails loudly, so that a run that got past the checks is seen (and nothing is installed).
UP = "#!/bin/sh\nexit 0\n"
DOWN = "#!/bin/sh\nexit 1\n"
NEVER = '#!/bin/sh\necho "$0 $* must not be reached" >&2\nexit 99\n'


def _ci_run(tmp_path: Path, *, postgres: bool, redis: bool, redis_binary: bool = True, **env: str) -> tuple[int, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {
        "pg_isready": UP if postgres else DOWN,
        "pg_ctlcluster": DOWN,
        "redis-cli": UP if redis else DOWN,
        "redis-server": DOWN,
        "sleep": UP,
        "fc-list": "#!/bin/sh\necho 'WenQuanYi Micro Hei:lang=zh'\n",
        "sudo": '#!/bin/sh\nexec "$@"\n',
        "apt-get": UP,
        "make": NEVER,
        "pip": NEVER,
    }
    for name, script in stubs.items():
        if name == "redis-server" and not redis_binary:
            continue
        path = bin_dir / name
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    # Only the stand-ins and the basic tools: no real redis-server can be found behind them.
    tools = bin_dir / "tools"
    tools.mkdir()
    for tool in ("bash", "sh", "env", "ls", "seq", "head", "grep", "dirname", "id"):
        real = _which(tool)
        if real:
            (tools / tool).symlink_to(real)
    environment = {"PATH": f"{bin_dir}:{tools}", "HOME": str(tmp_path), **env}
    run = subprocess.run(
        ["bash", str(REPO / ".ci" / "run")], env=environment, capture_output=True, text=True, timeout=120
    )
    return run.returncode, run.stdout + run.stderr


def _which(tool: str) -> str | None:
    for folder in ("/usr/bin", "/bin", "/usr/local/bin"):
        if os.access(f"{folder}/{tool}", os.X_OK):
            return f"{folder}/{tool}"
    return None


def test_ci_run_stops_when_postgresql_cannot_start(tmp_path: Path) -> None:
    code, output = _ci_run(tmp_path, postgres=False, redis=True)
    assert code != 0 and "PostgreSQL" in output and "must not be reached" not in output, output


def test_ci_run_stops_when_redis_cannot_start(tmp_path: Path) -> None:
    code, output = _ci_run(tmp_path, postgres=True, redis=False)
    assert code != 0 and "Redis" in output and "must not be reached" not in output, output


def test_ci_run_stops_when_the_tests_cannot_start_their_own_redis(tmp_path: Path) -> None:
    code, output = _ci_run(tmp_path, postgres=True, redis=True, redis_binary=False)
    assert code != 0 and "redis-server" in output and "must not be reached" not in output, output


def test_ci_run_stops_without_the_dev_set(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = _ci_run(tmp_path, postgres=True, redis=True, COMPLIANCE_EVAL_DIR=str(empty))
    assert code != 0 and "dev set" in output and "must not be reached" not in output, output


def test_ci_run_stops_without_chromium(tmp_path: Path, dev_dir: Path) -> None:
    chromium = "/nonexistent/chromium"
    code, output = _ci_run(
        tmp_path, postgres=True, redis=True, COMPLIANCE_EVAL_DIR=str(dev_dir), COMPLIANCE_TEST_CHROMIUM=chromium
    )
    assert code != 0 and "Chromium" in output and "must not be reached" not in output, output
