"""The deployment files hold what README "Roles and images" promises, with no Docker engine here:
docker-compose.yml is valid by the compose-spec schema (vendored, tests/data/compose-spec.json) and
shares nothing but the database, the broker and the bucket; every role's Dockerfile target exists and
runs as a user; the API and CPU worker need no torch, transformers or celery-batches.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from compliance.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ROLES = ("api", "worker-cpu", "worker-gpu")
# The services that run this project's images (the others are PostgreSQL, Redis, RabbitMQ, S3, vLLM).
OURS = sorted(name for name, service in SERVICES.items() if "build" in service)
WORKERS = sorted(name for name in OURS if name.startswith("worker-"))
# What an operator must set; the rest have defaults.
REQUIRED = {
    "COMPLIANCE_SESSION_SECRET": "a-session-secret-every-api-host-shares",
    "S3_SECRET_KEY": "a-bucket-secret",
    "COMPLIANCE_METRICS_TOKEN": "a-scrape-token",
}


def interpolated(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of one value: ${VAR}, ${VAR:-default}, ${VAR:?error} and $$."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        if variables.get(name):
            return variables[name]
        if op == ":?":
            raise KeyError(f"{name} is required: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}", one, value)


def environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    return {k: interpolated(str(v), variables) for k, v in SERVICES[service].get("environment", {}).items()}


def dockerfile_stages() -> dict[str, list[str]]:
    """Each stage of the Dockerfile by name, with its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if found := re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE):
            current = stages.setdefault(found.group(2), [f"FROM {found.group(1)}"])
        else:
            current.append(line)
    return stages


def test_the_compose_file_follows_the_compose_spec() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert [e.message for e in validator.iter_errors(COMPOSE)] == []
    # The schema is not vacuous: a misspelt key, a wrong condition are each caught.
    for wrong in ({"comand": ["compliance", "api"]}, {"depends_on": {"migrations": {"condition": "service_finished"}}}):
        broken = copy.deepcopy(COMPOSE)
        broken["services"]["api"] = {**broken["services"]["api"], **wrong}
        assert [list(e.path)[:2] for e in validator.iter_errors(broken)] == [["services", "api"]], wrong


def test_each_role_has_its_own_target_that_runs_as_a_user() -> None:
    stages = dockerfile_stages()
    for role in ROLES:
        assert role in stages, f"the Dockerfile has no target {role}"
        users = [i.split()[1] for i in stages[role] if i.upper().startswith("USER ")]
        assert users and users[-1] not in ("root", "0"), f"target {role} runs as root"
    assert {SERVICES[name]["build"]["target"] for name in OURS} == set(ROLES)
    assert all(SERVICES[name]["build"]["target"] in stages for name in OURS)
    # Photos are in the bucket: no image declares a volume.
    assert not [i for stage in stages.values() for i in stage if i.upper().startswith("VOLUME")]


def test_what_the_dockerfile_copies_is_in_the_build_context() -> None:
    """.dockerignore keeps everything out (the 7 GB .venv above all) but what the Dockerfile copies."""
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore
    let_in = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = [
        source.rstrip("/")
        for stage in dockerfile_stages().values()
        for line in stage
        if line.upper().startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert copied and all((ROOT / source).exists() and source in let_in for source in copied), (copied, let_in)


def test_the_api_and_cpu_images_install_no_gpu_stack() -> None:
    stages = dockerfile_stages()
    installs = {name: " ".join(i for i in stage if "pip install" in i) for name, stage in stages.items()}
    assert "[worker-gpu]" in installs["build-gpu"]
    for role in ("api", "worker-cpu"):
        built_from = [i.split("--from=")[1].split()[0] for i in stages[role] if "--from=" in i]
        assert built_from == ["build-cpu"], f"{role} copies {built_from}"
    assert "[api]" in installs["build-cpu"]
    assert not re.search(r"mllm|gpu|yolo|torch|transformers", installs["build-cpu"])


def test_the_api_and_cpu_extras_leave_out_the_gpu_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}

    heavy = {"torch", "torchvision", "transformers", "accelerate", "celery-batches", "ultralytics", "xgrammar"}
    for role in ("api", "worker-cpu"):
        assert not names(project["dependencies"] + extras[role]) & heavy, role
    assert extras["worker-gpu"] == ["compliance[mllm,gpu-worker]"]
    assert {"torch", "transformers"} <= names(extras["mllm"]) and names(extras["gpu-worker"]) == {"celery-batches"}


def test_api_and_workers_share_no_volume() -> None:
    def mounts(name: str) -> set[str]:
        return {str(v).split(":")[0] if isinstance(v, str) else v["source"] for v in SERVICES[name].get("volumes", [])}

    assert mounts("api") == set() and mounts("sweeper") == set()
    for worker in WORKERS:
        assert not mounts(worker) & (mounts("api") | mounts("sweeper")), worker
    # The GPU worker shares its model weights with vLLM, nothing with the other workers.
    assert mounts("worker-gpu") <= {"models"}
    assert all(mounts(w) == set() for w in WORKERS if w != "worker-gpu")


def test_photos_go_to_the_s3_service() -> None:
    assert "s3" in SERVICES
    for name in OURS:
        env = environment(name, REQUIRED)
        assert env["COMPLIANCE_BLOB_URL"] == "s3://photos/", name
        assert env["AWS_ENDPOINT_URL"] == "http://s3:8333" and env["AWS_ALLOW_HTTP"] == "true", name
        assert env["AWS_SECRET_ACCESS_KEY"] == REQUIRED["S3_SECRET_KEY"], name
        assert "COMPLIANCE_BLOB_DIR" not in env, name
        if name != "migrations":
            assert SERVICES[name]["depends_on"]["s3"]["condition"] == "service_healthy", name
    # The server knows the same key, and allows that identity its bucket only.
    identities = json.loads(interpolated(COMPOSE["configs"]["s3-identities"]["content"], REQUIRED))["identities"]
    assert [i["credentials"][0]["secretKey"] for i in identities] == [REQUIRED["S3_SECRET_KEY"]]
    assert identities[0]["actions"] == ["Read:photos", "Write:photos", "List:photos"]


def test_only_the_s3_gateway_is_on_the_network_and_only_for_who_needs_photos() -> None:
    script = " ".join(SERVICES["s3"]["command"])
    # Master, volume and filer have no authentication: the container's loopback only.
    assert "-ip.bind=127.0.0.1" in script and "-s3.ip.bind=0.0.0.0" in script
    assert "-s3.port.iceberg=0" in script and "-s3.port.lance=0" in script  # no other listeners
    assert "s3.bucket.create" in script and "test -f /tmp/bucket-ready" in SERVICES["s3"]["healthcheck"]["test"][1]
    assert SERVICES["s3"]["networks"] == ["photos"]
    on_photos = {name for name, service in SERVICES.items() if "photos" in service.get("networks", [])}
    assert on_photos == {"s3", "api", "sweeper", "worker-cpu", "worker-gpu"}


def test_migrations_run_once_as_their_own_step() -> None:
    assert SERVICES["migrations"]["command"] == ["compliance", "db", "upgrade"]
    assert SERVICES["migrations"]["restart"] == "no"
    for name in OURS:
        if name == "migrations":
            continue
        assert SERVICES[name]["depends_on"]["migrations"]["condition"] == "service_completed_successfully", name
        assert environment(name, REQUIRED)["COMPLIANCE_MIGRATE_ON_START"] == "false", name


def test_each_container_counts_its_own_metrics_and_the_sweeper_exports_the_gauges() -> None:
    for name in OURS:
        assert environment(name, REQUIRED)["PROMETHEUS_MULTIPROC_DIR"] == "/metrics", name
        assert any(str(t).split(":")[0] == "/metrics" for t in SERVICES[name]["tmpfs"]), name
    for worker in WORKERS:
        command = SERVICES[worker]["command"]
        assert command[command.index("--metrics-port") + 1] in SERVICES[worker]["expose"], worker
    port = environment("sweeper", REQUIRED)["COMPLIANCE_SWEEPER_METRICS_PORT"]
    assert port == "9101" and port in SERVICES["sweeper"]["expose"]
    assert environment("sweeper", REQUIRED)["COMPLIANCE_SWEEPER_METRICS_HOST"] == "0.0.0.0"
    assert "COMPLIANCE_SWEEPER_METRICS_PORT" not in environment("api", REQUIRED)


def test_the_operator_must_set_the_shared_secrets() -> None:
    for missing in REQUIRED:
        with pytest.raises(KeyError, match=missing):
            environment("api", {k: v for k, v in REQUIRED.items() if k != missing})
    assert environment("api", REQUIRED)["COMPLIANCE_SESSION_SECRET"] == REQUIRED["COMPLIANCE_SESSION_SECRET"]


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_every_service_starts_from_valid_settings(broker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What compose passes each service is a complete, valid Settings, with either broker; every
    COMPLIANCE_* variable it sets is one that Settings reads (a misspelt one would be ignored)."""
    variables = dict(REQUIRED)
    if broker == "rabbitmq":
        assert SERVICES["rabbitmq"]["profiles"] == ["rabbitmq"]
        variables["COMPLIANCE_BROKER_URL"] = "amqp://compliance:compliance@rabbitmq:5672//"
    fields = set(Settings.model_fields)
    for name in OURS:
        env = environment(name, variables)
        unknown = [
            k for k in env if k.startswith("COMPLIANCE_") and k.removeprefix("COMPLIANCE_").lower() not in fields
        ]
        assert unknown == [], f"{name} sets variables Settings does not read: {unknown}"
        for key in [k for k in os.environ if k.startswith("COMPLIANCE_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert settings.broker_url.startswith("amqp://" if broker == "rabbitmq" else "redis://redis:")
        assert settings.blob_url == "s3://photos/" and settings.migrate_on_start is False


# Imports a host without the GPU stack cannot make (the API and CPU worker images do not have them).
BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {"torch", "torchvision", "transformers", "accelerate", "peft", "trl",
                                           "datasets", "xgrammar", "ultralytics", "celery_batches", "triton"}:
                raise ImportError(f"{name} is not installed in this role")
            return None

    sys.meta_path.insert(0, Absent())
    """
)


def without_gpu_stack(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")},
        "PYTHONPATH": str(ROOT),
        "COMPLIANCE_DATABASE_URL": f"sqlite:///{cwd / 'compliance.db'}",
        "COMPLIANCE_BLOB_DIR": str(cwd / "blobs"),
        "COMPLIANCE_BROKER_URL": "redis://127.0.0.1:1/0",  # never reached: nothing here connects
    }
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_api_and_the_cpu_worker_need_no_gpu_stack(tmp_path: Path) -> None:
    done = without_gpu_stack(
        """
        from compliance.api.app import create_app
        create_app()
        import workers.main
        from compliance.queue.app import AUDIT, AUDIT_CHUNK, DELIVER_WEBHOOK, JUDGE, JUDGE_BATCH, MULTISTAGE, WEBHOOKS
        assert {JUDGE, AUDIT_CHUNK, DELIVER_WEBHOOK} <= set(workers.main.app.tasks), sorted(workers.main.app.tasks)
        assert JUDGE_BATCH not in workers.main.app.tasks
        assert workers.main.lacking([MULTISTAGE, AUDIT, WEBHOOKS]) is None
        from compliance.pipelines import get_pipeline
        from compliance.settings import get_settings
        get_pipeline("multistage", get_settings()).load()
        print("ready")
        """,
        tmp_path,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ready"), done.stderr[-3000:]


def test_the_demo_runs_without_the_gpu_stack(tmp_path: Path) -> None:
    done = without_gpu_stack(
        """
        import sys
        from compliance.cli import app
        sys.argv = ["compliance", "demo"]
        app()
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS" in done.stdout and "FAIL" in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize(
    "start",
    [
        'from workers.main import main; main(["--queue", "multistage", "--queue", "mllm"])',
        "import sys; from celery.__main__ import main\n"
        'sys.argv = ["celery", "-A", "workers.main", "worker", "-Q", "mllm"]; main()',
    ],
    ids=["compliance-worker", "celery-worker"],
)
def test_a_worker_for_the_mllm_queue_without_celery_batches_refuses_to_start(start: str, tmp_path: Path) -> None:
    done = without_gpu_stack(start, tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "error: the mllm queue needs celery-batches, which this install lacks: install the GPU worker's "
        "extra (pip install 'compliance[worker-gpu]') or serve the other queues"
    )


def test_serve_asked_for_the_mllm_worker_without_the_gpu_extra_refuses_in_one_line(tmp_path: Path) -> None:
    done = without_gpu_stack(
        """
        import sys
        from compliance.cli import app
        sys.argv = ["compliance", "serve", "--mllm"]
        app()
        """,
        tmp_path,
    )
    assert done.returncode != 0
    assert "compliance[worker-gpu]" in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
