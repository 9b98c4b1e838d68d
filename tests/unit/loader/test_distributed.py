"""Scans on Dask (access/distributed.py) over the archive on S3 (vault/remote.py): a TLS LocalCluster of 2 worker
processes on loopback, the key server as its own process, the archive published to SeaweedFS (tests/seaweed.py).

One cluster for the module (started once, ~5 s); each test copies the loader's small archive and starts its key
server. The workers ask the key server for keys with the case's process ticket; the tests check the results are
the local path's, a chunk outside the grant is refused and audited, a killed worker's tasks are re-run exactly
once, nothing a worker writes holds plaintext, and the cluster refuses plain tcp.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import dask
import polars as pl
import pytest
from distributed import Client, LocalCluster, wait
from distributed.security import Security

from seaweed import seaweed_s3_server  # noqa: F401  (the worker's S3 server, a fixture)
from investigator import errors, schema
from investigator.access.case import open_case
from investigator.access.distributed import WORKER_CONFIG, DaskScan, ScanSpec, check_cluster, scan_group
from investigator.vault.ingest import ingest_frames
from investigator.vault.remote import ObjectStore, RemoteArchive, publish

from .conftest import EDGE_DAY, keyserver_process

WIDE = {"start": EDGE_DAY - timedelta(days=3), "end": EDGE_DAY + timedelta(days=1)}
MARKER = "PLANTED-PLAINTEXT-7f3c1e"
ROLES = ("scheduler", "worker", "client")
# low: a worker holds ~190 MiB after a scan, so 100 MB more takes it past dask's default spill threshold
# (spill 0.7 of process memory) while staying under terminate (0.95)
MEMORY_LIMIT = 400 * 2**20


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A CA and a certificate per role, made as docs/admin.md ("Dask workers") tells the admin."""
    folder = tmp_path_factory.mktemp("dask-certs")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=investigator test dask CA", "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for role in ROLES:
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={role}",
                 "-keyout", f"{role}-key.pem", "-out", f"{role}.csr", cwd=folder)
        _openssl("x509", "-req", "-in", f"{role}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-days", "1", "-extfile", "san.ext", "-out", f"{role}.pem", cwd=folder)
    # a client certificate from a CA the cluster does not trust
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=client", "-keyout", "rogue-key.pem", "-out", "rogue.pem", cwd=folder)
    return folder


def _security(certs: Path) -> Security:
    return Security(tls_ca_file=str(certs / "ca.pem"), require_encryption=True,
                    **{f"tls_{r}_{w}": str(certs / f"{r}{'-key' if w == 'key' else ''}.pem")
                       for r in ROLES for w in ("cert", "key")})


@pytest.fixture(scope="module")
def dask_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dask-workers")


@pytest.fixture(scope="module")
def cluster(certs, dask_dir):
    """2 worker processes (1 thread each) over TLS on loopback; memory in RAM only (WORKER_CONFIG)."""
    with dask.config.set({**WORKER_CONFIG, "temporary-directory": str(dask_dir),
                          "distributed.scheduler.allowed-failures": 5}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", protocol="tls://",
                          security=_security(certs), dashboard_address="127.0.0.1:0", memory_limit=MEMORY_LIMIT) as running:
            with Client(running, security=_security(certs)) as client:
                yield running, client


@pytest.fixture
def client(cluster):
    running, client = cluster
    client.wait_for_workers(2, timeout=60)
    return client


@pytest.fixture
def s3_store(seaweed_s3, world):
    """The test's archive published to a fresh bucket on SeaweedFS."""
    url = seaweed_s3.bucket_url("dask")
    bucket = url.split("/")[2]
    boto3.client("s3", endpoint_url=seaweed_s3.endpoint, aws_access_key_id=seaweed_s3.access_key_id,
                 aws_secret_access_key=seaweed_s3.secret_access_key, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    store = ObjectStore(url, endpoint=seaweed_s3.endpoint, access_key_id=seaweed_s3.access_key_id,
                        secret_access_key=seaweed_s3.secret_access_key)
    publish(world.archive, store)
    return store


@pytest.fixture
def server(world):
    with keyserver_process(world, "--rate", "500") as running:
        yield running


def remote_case(world, url):
    grant = world.grant(**WIDE)
    code = world.code("sunli", datetime.now(timezone.utc))
    return open_case(world.archive, grant=grant, person="sunli", totp=code, keyserver=url,
                     signing_key=world.key("sunli"))


def test_dask_results_equal_the_local_path_and_spread_over_two_workers(world, server, s3_store, client):
    case = remote_case(world, server[1])
    local = case.messages()
    local_hits = case.search("订单 OR 退款 OR 合同", mode="exact")
    assert local.height > 20 and local_hits.height > 0
    scan = DaskScan(client, store=s3_store, group_size=8)
    remote = case.messages(executor=scan)
    assert remote.equals(local)
    assert remote["record_hash"].to_list() == local["record_hash"].to_list()
    assert scan.last is not None and len(scan.last.workers) >= 2, scan.last
    hits = case.search("订单 OR 退款 OR 合同", mode="exact", executor=scan)
    assert hits.equals(local_hits)
    events = case.events(executor=scan)
    assert events.equals(case.events())
    # a bare Client: the workers read the case's own folder (file://), for workers on this host
    assert case.messages(["ts", "record_hash"], executor=client).equals(local.select(["ts", "record_hash"]))
    # every release went through the key server under one process ticket per scan, audited; loads say "dask"
    releases = [e for e in world.audit("key.release") if e.details.get("process", "").startswith("dask scan")]
    assert releases and all(e.outcome == "allowed" and e.actor == "sunli" for e in releases)
    assert [e.details.get("executor") for e in world.audit("load")].count("dask") == 4
    # the tickets were revoked when their scans ended
    assert len(world.audit("process_ticket.revoke")) == 4


def test_a_worker_asking_for_a_chunk_outside_the_grant_is_refused_and_audited(world, server, s3_store, client):
    case = remote_case(world, server[1])
    token = case.process_ticket("dask scan outside", lifetime=600)
    inside = case._entries("messages")
    outside = [e for e in world.archive.chunk_entries("messages") if e not in inside]
    assert inside and outside
    spec = ScanSpec(store=s3_store, archive_id=world.archive.archive_id, keyserver=server[1], cafile=None,
                    token=token, kind="messages", parts=("meta", "content"), row_filter=pl.lit(True),
                    columns=("ts", "text"))
    future = client.submit(scan_group, spec, 0, (outside[0],), pure=False)
    with pytest.raises(errors.InvestigatorError) as refused:
        future.result(timeout=60)
    assert "process_ticket.scope" in str(refused.value) and token not in str(refused.value)
    denied = [e for e in world.audit("key.release")
              if e.outcome == "denied" and e.details.get("rule") == "process_ticket.scope"]
    assert len(denied) == 1 and denied[0].details["process"] == "dask scan outside"
    # a task naming a chunk the archive does not hold is refused on the worker, before any key request
    forged = type(inside[0])(**{**inside[0].__dict__, "chunk": "233000"})
    with pytest.raises(errors.IntegrityError):
        client.submit(scan_group, spec, 0, (forged,), pure=False).result(timeout=60)


@pytest.mark.slow
def test_a_killed_worker_s_tasks_are_rerun_without_duplicates_or_gaps(world, server, s3_store, client):
    case = remote_case(world, server[1])
    local = case.messages()
    pids = client.run(os.getpid)
    scan = DaskScan(client, store=s3_store, group_size=2)
    out: dict[str, object] = {}
    before = len(world.audit("key.release"))

    def run() -> None:
        try:
            out["frame"] = case.messages(executor=scan)
        except BaseException as exc:  # surfaced by the assertion below
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while len(world.audit("key.release")) - before < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim = sorted(pids.items())[0]
    os.kill(victim[1], signal.SIGKILL)  # mid-scan: some groups done, the rest queued or running
    killed_while_running = thread.is_alive()
    thread.join(timeout=120)
    assert "error" not in out, out.get("error")
    assert killed_while_running
    frame = out["frame"]
    assert isinstance(frame, pl.DataFrame) and frame.equals(local)
    assert frame["record_hash"].is_unique().all()
    assert scan.last is not None and scan.last.chunks == len(case._entries("messages"))
    # every group's keys were released (some twice: the tasks the dead worker held ran again elsewhere)
    releases = [e for e in world.audit("key.release")[before:] if e.details.get("process") == "dask scan messages"]
    assert len(releases) >= scan.last.groups
    assert {c for e in releases for c in e.details["chunks"]} == {e.chunk_id for e in case._entries("messages")}
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert victim[1] not in client.run(os.getpid).values()


@pytest.mark.slow
def test_no_file_a_worker_writes_holds_plaintext_even_under_memory_pressure(world, server, seaweed_s3, client,
                                                                         dask_dir, certs, tmp_path):
    # a planted message inside the grant's window
    row = {"message_id": "planted-1", "source": "edge", "conversation_id": "edge-conv", "conversation_type": "group",
           "ts": EDGE_DAY + timedelta(minutes=5), "sender_id": "zhangwei", "sender_name": "张伟",
           "recipients": ["wangfang"], "msg_type": "text", "text": f"{MARKER} " + "x" * 200}
    frame = schema.conform(pl.DataFrame([row], schema_overrides={"ts": schema.UTC_US}), "messages")
    ingest_frames(world.archive, messages=frame, events=None, sources=[], skipped=[], keys=world.keys,
                  actor="loader-test")
    url = seaweed_s3.bucket_url("spill")
    boto3.client("s3", endpoint_url=seaweed_s3.endpoint, aws_access_key_id=seaweed_s3.access_key_id,
                 aws_secret_access_key=seaweed_s3.secret_access_key, region_name="us-east-1").create_bucket(
        Bucket=url.split("/")[2])
    store = ObjectStore(url, endpoint=seaweed_s3.endpoint, access_key_id=seaweed_s3.access_key_id,
                        secret_access_key=seaweed_s3.secret_access_key)
    publish(world.archive, store)
    case = remote_case(world, server[1])
    scan = DaskScan(client, store=store, group_size=8)
    hits = case.search(MARKER, executor=scan)
    assert hits.height == 1  # the marker is there to be found
    assert MARKER.encode() not in b"".join(p.read_bytes() for p in seaweed_s3.folder.rglob("*") if p.is_file())

    # A cluster whose workers may spill (dask's defaults) and whose memory limit forces it: the scan refuses it,
    # and the check below does find plaintext in what such a worker writes (so the check can see it).
    with dask.config.set({"temporary-directory": str(tmp_path / "spilling"), "distributed.worker.memory.target": 0.1,
                          "distributed.worker.memory.spill": 0.1, "distributed.worker.memory.pause": False,
                          "distributed.worker.memory.terminate": False}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", protocol="tls://",
                          security=_security(certs), dashboard_address="127.0.0.1:0", memory_limit="400MiB") as spilling:
            with Client(spilling, security=_security(certs)) as spill_client:
                with pytest.raises(errors.ConfigError, match="spill"):
                    case.search(MARKER, executor=DaskScan(spill_client, store=store))
                blob = spill_client.scatter((MARKER + " ").encode() * 100_000)  # 2.5 MB: past spill=0.1
                deadline = time.monotonic() + 30
                while not _holds_marker(tmp_path / "spilling") and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert _holds_marker(tmp_path / "spilling"), "a spilling worker should have written the marker"
                del blob

    # our workers, pushed past the process-memory fraction where a default worker spills, write nothing
    assert case.search(MARKER, executor=scan).height == 1
    used = client.run(lambda dask_worker: dask_worker.monitor.get_process_memory())
    worker, rss = min(used.items(), key=lambda item: item[1])
    # planted bytes made on the worker itself (no transfer copies), up to 80 % of its limit
    size = max(int(0.8 * MEMORY_LIMIT) - rss, 10_000_000) // (len(MARKER) + 1)
    pressure = client.submit(lambda n: (MARKER + " ").encode() * n, size, workers=[worker], pure=False)
    wait(pressure, timeout=60)
    time.sleep(1.0)  # memory monitor ticks (every 100 ms)
    fraction = client.run(lambda dask_worker: dask_worker.monitor.get_process_memory() / MEMORY_LIMIT,
                          workers=[worker])[worker]
    assert fraction > 0.7, fraction  # past dask's default "spill" threshold (0.7 of process memory)
    assert not _holds_marker(dask_dir)
    client.cancel(pressure)
    del pressure
    assert not _holds_marker(dask_dir)
    assert any(dask_dir.rglob("*")), "the workers' directories exist"


def _holds_marker(folder: Path) -> bool:
    needle = MARKER.encode()
    for path in folder.rglob("*"):
        try:
            if path.is_file() and needle in path.read_bytes():
                return True
        except OSError:
            continue
    return False


def test_plain_tcp_and_certificateless_clients_are_refused(cluster, certs):
    running, client = cluster
    address = running.scheduler_address
    assert address.startswith("tls://")
    with pytest.raises((OSError, TimeoutError)):
        Client(address.replace("tls://", "tcp://"), timeout="3s")
    rogue = Security(tls_ca_file=str(certs / "ca.pem"), tls_client_cert=str(certs / "rogue.pem"),
                     tls_client_key=str(certs / "rogue-key.pem"), require_encryption=True)
    with pytest.raises((OSError, TimeoutError)):
        Client(address, security=rogue, timeout="3s")
    assert check_cluster(client)  # TLS, two workers, nothing spills


def test_the_remote_archive_verifies_what_the_store_says(world, s3_store):
    remote = RemoteArchive.open(s3_store)
    assert remote.archive_id == world.archive.archive_id
    assert remote.chunk_entries() == world.archive.chunk_entries()
    assert repr(remote).startswith("RemoteArchive(") and s3_store.secret_access_key not in repr(s3_store)
    with pytest.raises(errors.ArchiveError):
        remote.audit.append("x", "load", "y", {})
    # a manifest changed on the store: refused
    entry = remote.chunk_entries()[0]
    path, _ = entry.part("meta")
    s3_store.put(path, s3_store.get(path)[:-1] + b"\x00")
    with pytest.raises(errors.IntegrityError):
        RemoteArchive.open(s3_store).read_part_bytes(entry, "meta")
    manifest = world.archive.layout.relative(world.archive.layout.manifest(1))
    s3_store.put(manifest, s3_store.get(manifest).replace(b'"rows":', b'"rows": ', 1))
    with pytest.raises(errors.IntegrityError):
        RemoteArchive.open(s3_store).manifests()


def test_publish_sends_what_readers_need_and_nothing_else(world, tmp_path):
    from click.testing import CliRunner

    from investigator.cli import main

    url = f"file://{tmp_path / 'bucket'}"
    first = CliRunner().invoke(main, ["publish", str(world.archive.root), url, "--as", "wugang", "--json"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["publish", str(world.archive.root), url, "--json"])
    assert again.exit_code == 0 and '"written": 2' in again.output  # settings and public key; batches skipped
    # a copy of the archive left it: audited, by whom and where (publish once left no entry at all)
    published_entries = [e for e in world.archive.audit.entries() if e.action == "publish"]
    assert [(e.actor, e.target, e.outcome) for e in published_entries][:1] == [("wugang", url, "ok")]
    assert len(published_entries) == 2 and published_entries[1].details["written"] == 2
    top = {p.relative_to(tmp_path / "bucket").parts[0] for p in (tmp_path / "bucket").rglob("*") if p.is_file()}
    assert top == {"archive.toml", "keys", "batches"}
    published = {p.name for p in (tmp_path / "bucket" / "keys").rglob("*")}
    assert published <= {"archive-signing.pub", "transitions.jsonl"}, published  # no master or wrapped key
    batches = tmp_path / "bucket" / "batches"
    assert not any("keys" in p.relative_to(batches).parts for p in batches.rglob("*"))  # no wrapped data key
    remote = RemoteArchive.open(ObjectStore(url))
    assert remote.chunk_entries() == world.archive.chunk_entries()


class _FakeClient:
    """What check_cluster asks of a client: the scheduler's address and the workers' memory settings."""

    def __init__(self, address: str, memory: dict | None = None) -> None:
        self.scheduler = type("S", (), {"address": address})()
        self._memory = memory if memory is not None else {"w": {"data": "dict", "target": False, "spill": False}}

    def run(self, fn):
        return self._memory


def test_the_cluster_check_fails_closed():
    for address in ("tcp://10.0.0.5:8786", "ws://127.0.0.1:8786", "tcp://scheduler.internal:8786"):
        with pytest.raises(errors.ConfigError, match="TLS"):
            check_cluster(_FakeClient(address))
    assert check_cluster(_FakeClient("tls://10.0.0.5:8786"))
    assert check_cluster(_FakeClient("tcp://127.0.0.1:8786"))  # loopback: tests and one machine
    with pytest.raises(errors.ConfigError, match="TLS"):
        check_cluster(_FakeClient("tcp://127.0.0.1:8786"), allow_plain_loopback=False)
    for memory in ({"w": {"data": "SpillBuffer", "target": 0.6, "spill": 0.7}},
                   {"w": {"data": "dict", "target": False, "spill": 0.7}}, {}):
        with pytest.raises(errors.ConfigError):
            check_cluster(_FakeClient("tls://10.0.0.5:8786", memory))
    with pytest.raises(errors.ConfigError):
        DaskScan(_FakeClient("tls://x:1"), group_size=0)
    from investigator.access.distributed import as_dask_scan

    with pytest.raises(errors.ConfigError):
        as_dask_scan(object())
    spec = ScanSpec(store=ObjectStore("file:///tmp/x"), archive_id="a", keyserver="http://127.0.0.1:1",
                    cafile=None, token="ipt1.secret-token-text")
    assert "secret-token-text" not in repr(spec)
    assert "s3cr3t" not in repr(ObjectStore("s3://b/p", access_key_id="k", secret_access_key="s3cr3t"))
    with pytest.raises(errors.ConfigError):
        ObjectStore("s3://b/p", endpoint="http://s3.example.com")  # plain http off loopback
    with pytest.raises(errors.ConfigError):
        ObjectStore("https://b/p")


def test_a_worker_waits_when_the_key_server_says_slow_down_and_only_then(monkeypatch):
    from investigator.access import distributed

    monkeypatch.setattr(distributed.time, "sleep", lambda seconds: None)

    class Keys:
        def __init__(self, refusals):
            self.refusals, self.calls = list(refusals), 0

        def release(self, refs):
            self.calls += 1
            if self.refusals:
                raise self.refusals.pop(0)
            return {"ref": b"k"}

    busy = errors.PolicyDenied("too many requests; slow down", rule="keyserver.person_rate_limit")
    keys = Keys([busy, busy])
    assert distributed._Patient(keys).release(["ref"]) == {"ref": b"k"} and keys.calls == 3
    outside = Keys([errors.PolicyDenied("not in the ticket's chunk set", rule="process_ticket.scope")])
    with pytest.raises(errors.PolicyDenied):
        distributed._Patient(outside).release(["ref"])
    assert outside.calls == 1  # a refusal is final
    always = Keys([busy] * (distributed.RATE_RETRIES + 1))
    with pytest.raises(errors.PolicyDenied):
        distributed._Patient(always).release(["ref"])
