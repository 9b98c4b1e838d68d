"""Backups to a real S3 server with Object Lock (SeaweedFS on loopback, tests/seaweed.py): the round trip, faults,
the lock itself, and the server's hardening."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from backup_support import Opener, backup_template_fixture, copy_template, faults, roundtrip  # noqa: F401
from seaweed import seaweed_s3_server  # noqa: F401  (the worker's server, a fixture)
from support import PASSPHRASE
from investigator.backup import BackupTiers, S3Config, S3Target, backup_run, check_target
from investigator.custody.file import unlock_archive


@pytest.fixture
def template(backup_template: Path) -> Path:
    return backup_template  # built once per worker (backup_support); copy before changing


def _target(server, name: str) -> S3Target:
    return S3Target.from_url(server.bucket_url(name), server.config())


def test_roundtrip_on_s3(template, tmp_path, seaweed_s3):
    roundtrip(template, tmp_path, _target(seaweed_s3, "roundtrip"), Opener((template / "grant_id").read_text()))


def test_faults_on_s3(template, tmp_path, seaweed_s3):
    faults(template, tmp_path, _target(seaweed_s3, "faults"))


def test_object_lock_refuses_delete_and_keeps_the_locked_version(template, tmp_path, seaweed_s3):
    archive = copy_template(template, tmp_path / "a")
    target = _target(seaweed_s3, "lock")
    # the run's own clock: retain-until is measured from now, so the lock is in force during the test
    now = datetime.now(timezone.utc)
    run = backup_run(archive, target, keys=unlock_archive(archive, PASSPHRASE), tier=BackupTiers.default()["hourly"],
                     actor="admin", now=now)
    client, bucket = target.client, target.bucket
    entry = next(f for f in run.snapshot.files if f.path.endswith(".chk"))
    key = f"{target.prefix}/objects/{entry.object[:2]}/{entry.object}"
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > now + timedelta(days=182)
    version = head["VersionId"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):  # compliance mode: the lock cannot be lifted or shortened either
        client.put_object_retention(Bucket=bucket, Key=key, VersionId=version,
                                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + timedelta(days=1)})
    # an overwrite (or a plain delete) only stacks a new version: the locked bytes stay, and verify sees the forgery
    original = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=b"forged")
    assert client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == original
    found = check_target(target, read_data=1.0).problems
    assert any(p.startswith(f"object objects/{entry.object[:2]}/{entry.object} ({entry.path})") for p in found)
    # a restore takes the locked version under the forgery
    from investigator.backup import restore_snapshot

    restored = restore_snapshot(target, tmp_path / "restored")
    assert (tmp_path / "restored" / entry.path).read_bytes() == original and restored.pending_sealed
    client.delete_object(Bucket=bucket, Key=key)
    assert client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == original
    manifest = client.head_object(Bucket=bucket, Key=f"{target.prefix}/{run.snapshot.key}")
    assert manifest["ObjectLockMode"] == "COMPLIANCE"


def test_a_second_run_extends_the_lock_of_objects_it_reuses(template, tmp_path, seaweed_s3):
    archive = copy_template(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    target = _target(seaweed_s3, "extend")
    now = datetime.now(timezone.utc)
    tiers = BackupTiers.default()
    first = backup_run(archive, target, keys=keys, tier=tiers["hourly"], actor="admin", now=now)
    backup_run(archive, target, keys=keys, tier=tiers["weekly"], actor="admin", now=now + timedelta(minutes=1))
    entry = next(f for f in first.snapshot.files if f.path == "archive.toml")
    head = target.client.head_object(Bucket=target.bucket, Key=f"{target.prefix}/objects/{entry.object[:2]}/{entry.object}")
    assert head["ObjectLockRetainUntilDate"] > now + timedelta(days=365)
    # and an hourly run after it never shortens the weekly lock (compliance mode would refuse anyway)
    backup_run(archive, target, keys=keys, tier=tiers["hourly"], actor="admin", now=now + timedelta(minutes=2))
    again = target.client.head_object(Bucket=target.bucket, Key=f"{target.prefix}/objects/{entry.object[:2]}/{entry.object}")
    assert again["ObjectLockRetainUntilDate"] == head["ObjectLockRetainUntilDate"]


def test_wrong_credentials_and_anonymous_requests_are_refused(seaweed_s3, tmp_path):
    from investigator.backup.target import TargetError

    wrong = S3Target.from_url("s3://ready-probe", S3Config(endpoint=seaweed_s3.endpoint,
                                                           access_key_id=seaweed_s3.access_key_id,
                                                           secret_access_key="not-the-secret"))
    with pytest.raises(TargetError) as caught:
        wrong.get("probe")
    assert "not-the-secret" not in str(caught.value) and "not-the-secret" not in repr(wrong)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        opener.open(f"{seaweed_s3.endpoint}/ready-probe/probe", timeout=5)
    assert anonymous.value.code == 403


def test_the_server_listens_on_loopback_only_and_the_filer_http_api_is_off(seaweed_s3):
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True)
    if listening.returncode != 0:
        pytest.skip("ss is not available")
    ours = [line for line in listening.stdout.splitlines() if f"pid={seaweed_s3.pid}," in line]
    assert ours, listening.stdout
    for line in ours:
        assert line.split()[3].startswith("127.0.0.1:"), line
        assert int(line.split()[3].rsplit(":", 1)[1]) in seaweed_s3.ports, line  # no fixed side port
    # sockets: filer and S3 in the worker's folder; weed's fixed /tmp grpc sockets named after this worker's ports
    assert {p.name.split("-")[0] for p in seaweed_s3.folder.glob("*.sock")} == {"filer", "s3"}
    grpc = {int(p.name.rsplit("-", 1)[1].split(".")[0]) for p in Path("/tmp").glob("seaweedfs-*-grpc-*.sock")}
    assert {seaweed_s3.ports[i] for i in (1, 3, 7)} <= grpc


def test_the_filer_http_api_cannot_delete_a_locked_object(seaweed_s3):
    client = S3Target.from_url("s3://ready-probe", seaweed_s3.config()).client
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    filer_http = seaweed_s3.ports[4]
    for method, path in (("DELETE", "/buckets/ready-probe/probe"), ("GET", "/buckets/ready-probe/probe")):
        request = urllib.request.Request(f"http://127.0.0.1:{filer_http}{path}", method=method)
        try:
            with opener.open(request, timeout=5) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0  # refused outright
        assert status not in (200, 202, 204), (method, status)
    assert client.get_object(Bucket="ready-probe", Key="probe")["Body"].read() == b"ready"


def test_a_bucket_without_object_lock_is_refused_by_name_before_anything_is_written(template, tmp_path, seaweed_s3):
    """`backup run --to s3://nolock/b1` on an existing bucket made without Object Lock failed at the first object
    with 's3://nolock/b1/objects/f0/f02f...: cannot write (InvalidRequest)', which says nothing of the lock; an S3
    witness there would fail its puts the same way. Both now refuse the bucket, naming what it lacks."""
    from investigator.backup.target import TargetError
    from investigator.backup.witness import s3_witness
    from investigator.vault.witness import WitnessError

    archive = copy_template(template, tmp_path / "a")
    target = _target(seaweed_s3, "nolock")
    target.client.create_bucket(Bucket=target.bucket)  # no ObjectLockEnabledForBucket
    with pytest.raises(TargetError, match=f"bucket '{target.bucket}' has no Object Lock") as caught:
        backup_run(archive, target, keys=unlock_archive(archive, PASSPHRASE), tier=BackupTiers.default()["hourly"],
                   actor="admin")
    assert "create-bucket" in caught.value.hint
    last = list(archive.audit.entries())[-1]
    assert (last.action, last.outcome) == ("backup.run", "error") and "no Object Lock" in last.details["reason"]
    assert target.client.list_objects_v2(Bucket=target.bucket).get("KeyCount", 0) == 0  # nothing half-written
    witness = s3_witness(target.url, seaweed_s3.config())
    with pytest.raises(WitnessError, match="no Object Lock"):
        witness.store.prepare()
    # a bucket made here (with the lock) passes
    locked = _target(seaweed_s3, "locked")
    locked.prepare()
    locked.prepare()  # existing now, with its lock: still fine
