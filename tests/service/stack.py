"""A real stack for the service's tests and benches: a private redis-server and a private RabbitMQ
node that can be killed and restarted, worker and API processes started like production
(``compliance worker``/``api``), and a PostgreSQL schema of its own."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[2]
COMPLIANCE = [sys.executable, "-c", "from compliance.cli import main; main()"]
# The tests start private Redis servers from this binary (not the one on 6379 that `make serve` uses).
REDIS_SERVER = os.environ.get("COMPLIANCE_TEST_REDIS_SERVER", "redis-server")


class ServerUnavailable(RuntimeError):
    """A private server (Redis, RabbitMQ, S3) could not be started: outside a test; in a test it is
    a skip, and under CI a failure."""


def binary_missing(what: str, program: str, binary: str, hint: str) -> str | None:
    """Why no private ``what`` can be started from ``binary`` (``program`` not found), or None."""
    if shutil.which(binary) is None:
        return f"{what}: no {program} at {binary!r} ({hint})"
    return None


def redis_unavailable() -> str | None:
    """Why no private Redis can be started, or None when it can."""
    return binary_missing(
        "Redis", "redis-server", REDIS_SERVER, "apt-get install redis-server, or set COMPLIANCE_TEST_REDIS_SERVER"
    )


def cannot_start(reason: str, error: type[RuntimeError]) -> NoReturn:
    """A server a test or a bench needs cannot start: in a test a skip, which CI turns into a
    failure naming ``reason``; in a bench, ``error``."""
    if os.environ.get("PYTEST_CURRENT_TEST"):
        import pytest

        pytest.skip(reason)
    raise error(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """``redis-server --save "" --appendonly no`` on a port of its own: it keeps nothing on disk,
    like the production broker, so a restart empties every queue."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if reason := redis_unavailable():
            cannot_start(reason, ServerUnavailable)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        process = self.process
        wait_for(lambda: _pings(client) or process.poll() is not None, 10, "Redis (redis-server) to start")
        if process.poll() is not None:
            raise RuntimeError(f"Redis: {REDIS_SERVER} exited with status {process.returncode} on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()


RABBITMQ_SERVER = os.environ.get("COMPLIANCE_TEST_RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server")


def rabbitmq_unavailable() -> str | None:
    """Why no private RabbitMQ node can be started, or None when it can."""
    return binary_missing(
        "RabbitMQ",
        "rabbitmq-server",
        RABBITMQ_SERVER,
        "apt-get install rabbitmq-server, or set COMPLIANCE_TEST_RABBITMQ_SERVER",
    )


class RabbitServer:
    """A private RabbitMQ node: its own node name, AMQP and distribution ports, data, logs and Erlang
    cookie under ``folder``, started in the foreground so it can be killed by its process group.
    The shared server on 5672 is never touched. Its data survives a kill: a restart keeps every
    message of a durable queue, which is what RabbitMQ is for."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.dist_port = free_port()
        self.node = f"compliance-{self.port}@localhost"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _environment(self) -> dict[str, str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.folder / "enabled_plugins").write_text("[].\n")
        (self.folder / "rabbitmq-env.conf").write_text("")  # not the system's (its NODENAME is the shared node's)
        return {
            **os.environ,
            "HOME": str(self.folder),  # the node's own .erlang.cookie
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "rabbitmq.pid"),
        }

    def start(self, timeout: float = 60) -> None:
        if reason := rabbitmq_unavailable():
            cannot_start(reason, ServerUnavailable)
        env = self._environment()
        log = (self.folder / "node.log").open("ab")
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        process = self.process
        wait_for(
            lambda: _accepts(self.port) or process.poll() is not None, timeout, "RabbitMQ (rabbitmq-server) to start"
        )
        if process.poll() is not None:
            tail = (self.folder / "node.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"RabbitMQ: {RABBITMQ_SERVER} exited with status {process.returncode}: {tail}")

    def kill(self) -> None:
        """SIGKILL the node's whole process group (the start script, erlexec, beam.smp)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            wait_for(lambda: not _accepts(self.port), 10, "RabbitMQ to stop listening")

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _pings(client: object) -> bool:
    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except Exception:
        return False


class Process:
    """A ``compliance`` subprocess with its output in a log file, killed with its children."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.args, self.env, self.log, self.cwd = args, env, log, cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [*COMPLIANCE, *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        assert self.process is not None
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """The whole process group: a SIGKILLed worker leaves no pool child behind."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(queues: list[str], env: dict[str, str], log: Path, *args: str, ready_timeout: float = 120) -> Process:
    worker = Process(
        ["worker", *[a for q in queues for a in ("--queue", q)], "--loglevel", "info", *args], env, log
    ).start()
    wait_for(
        lambda: "ready." in worker.output() or (worker.process is not None and worker.process.poll() is not None),
        ready_timeout,
        f"worker {queues} to be ready",
    )
    assert worker.process is not None and worker.process.poll() is None, worker.output()[-3000:]
    return worker


def start_api(env: dict[str, str], log: Path, cwd: Path, *args: str) -> tuple[Process, str]:
    """``compliance api`` on a free port, run in ``cwd`` (a checkout, or a host's own folder), once it
    answers /healthz: the process and its base URL."""
    import httpx

    port = free_port()
    process = Process(["api", "--host", "127.0.0.1", "--port", str(port), *args], env, log, cwd=cwd).start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.process is not None and process.process.poll() is None, process.output()[-3000:]
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, "the API to answer")
    except BaseException:
        process.stop()
        raise
    return process, base


class ServiceStack:
    """The service's processes over one database, blob folder and private Redis, configured the way
    production is: every setting through ``COMPLIANCE_*`` environment variables.

    ``repo`` is the checkout whose code the API runs (PYTHONPATH and working folder): a bench can
    start another checkout's API (``bench/upload_load.py --compare``) over the same kind of stack."""

    def __init__(
        self,
        folder: Path,
        database_url: str,
        redis: RedisServer,
        *,
        repo: Path = REPO,
        rabbit: RabbitServer | None = None,
        **values: object,
    ) -> None:
        """``rabbit``: RabbitMQ is the broker, and ``redis`` counts only throttles and rate limits."""
        from compliance.settings import Settings

        self.folder = folder
        self.repo = repo
        self.redis = redis
        self.rabbit = rabbit
        broker = {"broker_url": rabbit.url, "redis_url": redis.url} if rabbit else {"broker_url": redis.url}
        self.values: dict[str, object] = {
            "database_url": database_url,
            "blob_dir": str(folder / "blobs"),
            **broker,
            "broker_connect_timeout_s": 0.5,
            "webhook_allow_private": True,
            # Shared by every API process, as production's (and required with an object store).
            "session_secret": "a-session-secret-every-api-process-of-the-stack-shares",
            **values,
        }
        self.metrics_dir = folder / "metrics"
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            **{f"COMPLIANCE_{k.upper()}": str(v) for k, v in self.values.items()},
        }
        self.settings = Settings(**self.values)  # type: ignore[arg-type]
        self.processes: list[Process] = []
        self._logs = 0

    def _log(self, name: str) -> Path:
        self._logs += 1
        return self.folder / f"{self._logs:02d}-{name}.log"

    def worker(self, queues: list[str], *args: str) -> Process:
        process = start_worker(queues, self.env, self._log("worker-" + "+".join(queues)), *args)
        self.processes.append(process)
        return process

    def api(self, workers: int = 1) -> tuple[Process, str]:
        process, base = start_api(self.env, self._log("api"), self.repo, "--workers", str(workers))
        self.processes.append(process)
        return process, base

    def sweeper(self) -> Process:
        process = Process(["sweeper"], self.env, self._log("sweeper")).start()
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
