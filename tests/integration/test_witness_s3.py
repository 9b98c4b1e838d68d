"""The S3 witness (issue #14, item 8) on a real S3 server with Object Lock (SeaweedFS on loopback, tests/seaweed.py):
each checkpoint is an Object-Locked object (compliance mode) that cannot be deleted before its retain-until, and
the witness catches a rollback of the archive and its audit log together."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from seaweed import seaweed_s3_server  # noqa: F401  (the worker's server, a fixture)
from witness_support import cli, ingest, replace_with, witnessed_archive
from investigator.backup import S3Target
from investigator.backup.target import TargetError
from investigator.vault.checkpoint import origin_of
from investigator.vault.witness import log_leaves, open_witness


@pytest.fixture
def s3_env(seaweed_s3, monkeypatch):
    """The standard variables (boto3 reads them; so do the CLI and the checkpoint writer)."""
    for name, value in seaweed_s3.env().items():
        monkeypatch.setenv(name, value)
    return seaweed_s3.env()


def test_a_witness_object_is_locked_and_cannot_be_deleted(tmp_path, seaweed_s3, s3_env):
    url = seaweed_s3.bucket_url("witness-lock")
    archive, _keys = witnessed_archive(tmp_path / "archive", [url], batches=1)
    witness = open_witness(url)
    held = witness.held(origin_of(archive.archive_id))
    assert held and held[-1].size == len(log_leaves(archive.audit))
    assert "witness.failed" not in [e.action for e in archive.audit.entries()]
    target = S3Target.from_url(url, seaweed_s3.config())
    key = f"{target.prefix}/{held[-1].name}"
    head = target.client.head_object(Bucket=target.bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc).replace(year=datetime.now().year + 9)
    with pytest.raises(ClientError) as refused:
        target.client.delete_object(Bucket=target.bucket, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(TargetError, match="deletion refused"):
        target.delete(held[-1].name)
    assert witness.held(origin_of(archive.archive_id))[-1].note == held[-1].note


def test_the_s3_witness_catches_a_rollback_of_archive_and_audit_log_together(tmp_path, seaweed_s3, s3_env):
    url = seaweed_s3.bucket_url("witness-rollback")
    root = tmp_path / "archive"
    archive, keys = witnessed_archive(root, [url])
    earlier = tmp_path / "earlier"
    shutil.copytree(root, earlier)
    ingest(archive, keys, 4)
    assert cli("audit", "verify", root, "--no-record", "--witness", url, env=s3_env).exit_code == 0
    replace_with(root, earlier)
    assert cli("audit", "verify", root, "--no-record", env=s3_env).exit_code == 0
    caught = cli("audit", "verify", root, "--no-record", "--witness", url, env=s3_env)
    assert caught.exit_code == 4
    assert "the archive and its audit log were rolled back or truncated" in caught.output
    assert cli("verify", root, "--offline", "--witness", url, env=s3_env).exit_code == 4


def test_the_cli_in_a_fresh_process_writes_checkpoints_to_an_s3_witness(tmp_path, seaweed_s3, s3_env):
    """`investigator ingest` on an archive whose policy names an S3 witness recorded 'witness.failed: no witness
    of kind s3:// is available here' at every checkpoint: s3:// was registered only by importing
    investigator.backup, which this test module (and every in-process CLI test) did, the real command not."""
    import os
    import subprocess
    import sys

    from support import PASSPHRASE, REPO

    url = seaweed_s3.bucket_url("witness-cli")
    archive, _keys = witnessed_archive(tmp_path / "archive", [url], batches=1)
    env = {**os.environ, **s3_env, "INVESTIGATOR_PASSPHRASE": PASSPHRASE, "INVESTIGATOR_LANG": "en"}
    env.pop("INVESTIGATOR_KEYSERVER", None)
    done = subprocess.run([sys.executable, "-m", "investigator", "ingest", str(archive.root),
                           str(REPO / "data_samples" / "telegram" / "result.json"), "--as", "wugang"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    failed = [e.details for e in archive.audit.entries() if e.action == "witness.failed"]
    assert failed == []
    held = open_witness(url).held(origin_of(archive.archive_id))
    assert held[-1].size == len(log_leaves(archive.audit))  # the CLI's own checkpoint reached the witness
