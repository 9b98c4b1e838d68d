"""Legal holds and crypto-shredding on a real S3 with Object Lock (SeaweedFS on loopback, tests/seaweed.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backup_support import NOW, restore_custody
from seaweed import seaweed_s3_server  # noqa: F401  (the worker's server, a fixture)
from shred_support import NEW_DAY, OLD_DAY, code, copy_shred, person, read_partition, shred_template_fixture  # noqa: F401
from support import PASSPHRASE
from investigator.backup import BackupTiers, S3Target, Tier, backup_run, restore_snapshot
from investigator.backup.hold import add_hold, release_hold
from investigator.backup.retention import lift_released_holds
from investigator.backup.shred import shred_period
from investigator.backup.target import TargetError, object_key
from investigator.custody.file import unlock_archive
from investigator.errors import PeriodShredded
from investigator.vault.destruction import period_window
from investigator.vault.store import Archive


@pytest.fixture
def template(shred_template: Path) -> Path:
    return shred_template


def _target(server, name: str) -> S3Target:
    return S3Target.from_url(server.bucket_url(name), server.config())


def test_a_held_object_cannot_be_deleted_even_after_its_retain_until(template, tmp_path, seaweed_s3):
    archive = copy_shred(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    start, end = period_window("2026Q1")
    hold = add_hold(archive, signer=person(archive, "lixia"), case="C-042", start=start, end=end,
                    reason="arbitration", now=NOW)
    target = _target(seaweed_s3, "hold")
    # a one-day tier run "one day ago, less 4 seconds": every object's retain-until passes within the test
    now = datetime.now(timezone.utc)
    tier = Tier(name="hourly", label="test", retention_days=1)
    run = backup_run(archive, target, keys=keys, tier=tier, actor="wugang", now=now - timedelta(days=1, seconds=-4))
    assert run.held > 0
    files = {f.path: f for f in run.snapshot.files}
    held = next(f for p, f in files.items() if f"/{OLD_DAY}/" in p and p.endswith(".chk"))
    free = next(f for p, f in files.items() if f"/{NEW_DAY}/" in p and p.endswith(".chk"))
    head = target.client.head_object(Bucket=target.bucket, Key=f"{target.prefix}/{object_key(held.object)}")
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(TargetError):  # before its retain-until: refused for both
        target.delete(object_key(free.object))
    time.sleep(max(0.0, (now + timedelta(seconds=5) - datetime.now(timezone.utc)).total_seconds()))
    target.delete(object_key(free.object))  # retain-until passed, no hold: gone
    assert target.size(object_key(free.object)) is None
    with pytest.raises(TargetError, match="deletion refused"):  # held: not even after its retain-until
        target.delete(object_key(held.object))
    assert target.size(object_key(held.object)) == held.size
    # the hold released (legal role, TOTP): retention lifts the S3 legal hold, then the object may go
    when = datetime.now(timezone.utc)
    release_hold(archive, keys, hold.id, signer=person(archive, "lixia"), totp=code("lixia", when), reason="closed",
                 now=when)
    assert lift_released_holds(archive, target) >= 1
    target.delete(object_key(held.object))
    assert target.size(object_key(held.object)) is None


def test_a_shredded_period_is_unreadable_from_the_oldest_s3_snapshot(template, tmp_path, seaweed_s3):
    archive = copy_shred(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    target = _target(seaweed_s3, "shred")
    first = backup_run(archive, target, keys=keys, tier=BackupTiers.default()["hourly"], actor="wugang",
                       now=datetime.now(timezone.utc))
    shred_period(archive, keys, "2026Q1", actor="wugang", approver="lixia", now=NOW)
    dest = tmp_path / "restored"
    restore_snapshot(target, dest, snapshot_id=first.snapshot.id)
    restore_custody(archive.root, dest)  # today's custody: the period key is gone from it
    restored = Archive.open(dest)
    rkeys = unlock_archive(restored, PASSPHRASE)
    with pytest.raises(PeriodShredded):
        read_partition(restored, rkeys, OLD_DAY)
    assert read_partition(restored, rkeys, NEW_DAY) == 12
