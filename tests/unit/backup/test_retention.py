"""Retention, legal holds and crypto-shredding (issue #14, items 4-6) on the file custody and a directory target."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from backup_support import MARKER, NOW, restore_custody
from shred_support import (NEW_DAY, OLD_DAY, code, copy_shred, person, read_partition,  # noqa: F401
                           shred_template_fixture)
from support import PASSPHRASE, REPO
from investigator.authority.policy.rules import check_policy_text, default_policy_text
from investigator.backup import BackupTiers, DirectoryTarget, backup_run, check_target, restore_snapshot
from investigator.backup.hold import active_holds, add_hold, held_paths, load_holds, release_hold
from investigator.backup.retention import (RetentionRules, apply_retention, keep_reasons, plan_retention)
from investigator.backup.shred import shred_period
from investigator.custody.file import unlock_archive
from investigator.custody.rotation import retire, rotate, wrapped_versions
from investigator.errors import ConfigError, IdentityCheckFailed, IntegrityError, PeriodShredded, PolicyDenied
from investigator.vault.destruction import DestructionRecord, period_window
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive

Q1_START, Q1_END = period_window("2026Q1")


@pytest.fixture
def template(shred_template: Path) -> Path:
    return shred_template


def _denied(archive: Archive, action: str) -> list:
    return [e for e in archive.audit.entries() if e.action == action and e.outcome == "denied"]


def test_records_younger_than_180_days_are_never_removed(template, tmp_path):
    archive = copy_shred(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    plan = plan_retention(archive, [], now=NOW)
    assert [(i.action, i.what) for i in plan.items] == [("shred", "2026Q1"), ("keep-period", "2026Q4")]
    assert "younger than 180 days" in plan.of("keep-period")[0].reason
    # the policy refuses less than 180 days, and shredding refuses it whatever it is told
    assert any("at least 180" in p for p in check_policy_text(default_policy_text().replace(
        "originals_days = 180", "originals_days = 90")))
    with pytest.raises(ConfigError, match="at least 180"):
        RetentionRules.from_policy({"retention": {"originals_days": 179}})
    with pytest.raises(PolicyDenied, match="at least 180 days"):
        shred_period(archive, keys, "2026Q4", actor="wugang", approver="lixia", originals_days=0, now=NOW)
    # 179 days after the end of Q1: still refused
    with pytest.raises(PolicyDenied, match="at least 180 days"):
        shred_period(archive, keys, "2026Q1", actor="wugang", approver="lixia", now=Q1_END + timedelta(days=179))
    assert len(_denied(archive, "retention.shred")) == 2
    assert read_partition(archive, keys, OLD_DAY) == 12 and read_partition(archive, keys, NEW_DAY) == 12
    assert verify_archive(archive, keys=keys).ok


def test_a_hold_blocks_retention_and_shredding_until_legal_releases_it(template, tmp_path):
    archive = copy_shred(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    with pytest.raises(PolicyDenied):  # an agent cannot add a hold
        add_hold(archive, signer=person(archive, "zhangwei"), case="C-1", start=Q1_START, end=Q1_END, reason="x",
                 now=NOW)
    with pytest.raises(ConfigError, match="--end"):
        add_hold(archive, signer=person(archive, "lixia"), case="C-1", start=Q1_END, end=Q1_START, reason="x", now=NOW)
    hold = add_hold(archive, signer=person(archive, "lixia"), case="C-042", start=Q1_START + timedelta(days=40),
                    end=Q1_START + timedelta(days=42), conversations=("c1",), reason="labour arbitration", now=NOW)
    assert [h.id for h in active_holds(archive)] == [hold.id]
    plan = plan_retention(archive, [], now=NOW)
    assert plan.of("shred") == [] and hold.id in plan.of("keep-period")[0].reason
    with pytest.raises(PolicyDenied, match="held by"):
        shred_period(archive, keys, "2026Q1", actor="wugang", approver="lixia", now=NOW)
    assert any(f"{OLD_DAY}" in p for p in held_paths(archive, active_holds(archive)))
    # release: not by the admin, not with a wrong code; a forged release file releases nothing
    with pytest.raises(PolicyDenied, match="legal role"):
        release_hold(archive, keys, hold.id, signer=person(archive, "wugang"), totp=code("wugang", NOW),
                     reason="done", now=NOW)
    with pytest.raises(IdentityCheckFailed):
        release_hold(archive, keys, hold.id, signer=person(archive, "lixia"), totp="000000", reason="done",
                     now=NOW + timedelta(seconds=31))
    when = NOW + timedelta(minutes=2)
    release_hold(archive, keys, hold.id, signer=person(archive, "lixia"), totp=code("lixia", when),
                 reason="case closed", now=when)
    assert active_holds(archive) == []
    release_path = archive.layout.hold_release(hold.id)
    saved = release_path.read_bytes()
    forged = json.loads(saved)
    forged["body"]["reason"] = "forged"
    release_path.write_text(json.dumps(forged))
    assert [h.id for h in active_holds(archive)] == [hold.id] and load_holds(archive)[0].problem
    release_path.write_bytes(saved)
    assert len(_denied(archive, "legalhold.add")) == 2 and len(_denied(archive, "legalhold.release")) == 1
    assert len(_denied(archive, "retention.shred")) == 1
    shred_period(archive, keys, "2026Q1", actor="wugang", approver="lixia", now=when)
    with pytest.raises(PeriodShredded):
        read_partition(archive, unlock_archive(archive, PASSPHRASE), OLD_DAY)


def test_a_shredded_period_is_unreadable_on_every_target_while_everything_else_verifies(template, tmp_path):
    archive = copy_shred(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    target = DirectoryTarget(tmp_path / "cold")
    tier = BackupTiers.default()["weekly"]
    before = backup_run(archive, target, keys=keys, tier=tier, actor="wugang", now=NOW - timedelta(days=1))
    record = shred_period(archive, keys, "2026Q1", actor="wugang", approver="lixia", now=NOW)
    body = record.body
    assert body["totals"] == {"partitions": 1, "chunks": 12, "rows": 12, "files": body["totals"]["files"]}
    assert MARKER not in json.dumps(body, ensure_ascii=False) and "2026Q1" not in keys.period_keys()
    entry = [e for e in archive.audit.entries() if e.action == "retention.shred"][-1]
    assert entry.outcome == "ok" and entry.details["record_sha256"] == record.digest
    # the archive: the period is destroyed (signed record), the rest decrypts and verifies
    fresh = unlock_archive(archive, PASSPHRASE)
    with pytest.raises(PeriodShredded):
        read_partition(archive, fresh, OLD_DAY)
    assert read_partition(archive, fresh, NEW_DAY) == 12
    report = verify_archive(archive, keys=fresh)
    assert report.ok, report.problems
    assert report.counts["chunks_destroyed"] == 12 and report.counts["chunks_decrypted"] == 12
    after = backup_run(archive, target, keys=fresh, tier=tier, actor="wugang", now=NOW + timedelta(hours=1))
    assert check_target(target, read_data=1.0).ok
    # the oldest snapshot, taken before the shredding, restored with today's custody: the period stays unreadable
    for snap, name in ((before.snapshot, "old"), (after.snapshot, "new")):
        dest = tmp_path / name
        restore_snapshot(target, dest, snapshot_id=snap.id)
        restore_custody(archive.root, dest)
        restored = Archive.open(dest)
        rkeys = unlock_archive(restored, PASSPHRASE)
        with pytest.raises(PeriodShredded):
            read_partition(restored, rkeys, OLD_DAY)
        assert read_partition(restored, rkeys, NEW_DAY) == 12
    # the snapshot after the shredding carries the record: it verifies as a whole
    assert verify_archive(Archive.open(tmp_path / "new"), keys=unlock_archive(Archive.open(tmp_path / "new"),
                                                                             PASSPHRASE)).ok
    # a forged record is damage, and it does not hide the destroyed chunks
    path = archive.layout.destruction_record("2026Q1")
    forged = json.loads(path.read_text())
    forged["body"]["totals"]["rows"] = 1
    path.write_text(json.dumps(forged))
    assert not verify_archive(archive, keys=fresh).ok
    with pytest.raises(IntegrityError):
        DestructionRecord.load(archive, "2026Q1")


def test_rotation_never_rewraps_a_period_key_and_refuses_nothing_after_shredding(template, tmp_path):
    archive = copy_shred(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    assert [k for k in wrapped_versions(archive) if k.startswith("messages/")] == []  # under period keys only
    rotate(archive, keys, actor="wugang", now=NOW)
    assert not list(archive.layout.rewrapped_dir.glob("messages/*.json"))  # never rewrapped under the new version
    retire(archive, keys, version=1, actor="wugang", now=NOW)
    shred_period(archive, keys, "2026Q1", actor="wugang", approver="lixia", now=NOW)
    rotate(archive, keys, actor="wugang", now=NOW + timedelta(minutes=1))  # skips the destroyed period
    fresh = unlock_archive(archive, PASSPHRASE)
    assert read_partition(archive, fresh, NEW_DAY) == 12
    assert verify_archive(archive, keys=fresh).ok


_KILL_SCRIPT = """
import os, signal, sys
from datetime import datetime
sys.path.insert(0, {tests!r})
from support import PASSPHRASE
from investigator.backup.shred import shred_period
from investigator.custody.file import unlock_archive
from investigator.vault.store import Archive
archive = Archive.open({root!r})
def step(name):
    if name == {step!r}:
        os.kill(os.getpid(), signal.SIGKILL)
shred_period(archive, unlock_archive(archive, PASSPHRASE), "2026Q1", actor="wugang", approver="lixia",
             now=datetime.fromisoformat({now!r}), on_step=step)
"""


@pytest.mark.parametrize("step", ["recorded", "destroyed"])
def test_sigkill_during_shredding_then_the_next_run_completes_and_nothing_is_lost(template, tmp_path, step):
    archive = copy_shred(template, tmp_path / "a")
    script = _KILL_SCRIPT.format(tests=str(REPO / "tests"), root=str(archive.root), step=step, now=NOW.isoformat())
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env={**os.environ}, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    keys = unlock_archive(archive, PASSPHRASE)
    assert archive.layout.destruction_record("2026Q1").exists()
    assert ("2026Q1" in keys.period_keys()) == (step == "recorded")
    shred_period(archive, keys, "2026Q1", actor="wugang", approver="lixia", now=NOW)  # completes
    fresh = unlock_archive(archive, PASSPHRASE)
    assert "2026Q1" not in fresh.period_keys() and "2026Q1" in fresh.destroyed_periods()
    assert read_partition(archive, fresh, NEW_DAY) == 12
    report = verify_archive(archive, keys=fresh)
    assert report.ok, report.problems
    resumed = [e for e in archive.audit.entries() if e.action == "retention.shred"]
    assert resumed[-1].details["resumed"] is True
    # a destroyed period takes no new data
    with pytest.raises(PeriodShredded):
        fresh.new_data_key("messages", OLD_DAY)


def test_snapshot_keep_rules_count_from_the_clock_and_apply_needs_admin_and_legal(template, tmp_path):
    archive = copy_shred(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    target = DirectoryTarget(tmp_path / "t")
    tier = BackupTiers.default()["weekly"]  # kept 366 days
    runs = [backup_run(archive, target, keys=keys, tier=tier, actor="wugang", now=NOW - timedelta(days=d))
            for d in (60, 30, 3, 2)]
    # a validly signed snapshot dated far ahead (a wrong clock, or a forger with the key): never counted
    backup_run(archive, target, keys=keys, tier=tier, actor="wugang", now=NOW + timedelta(days=900))
    later = NOW + timedelta(days=400)  # every retain-until passed
    rules = RetentionRules(keep={"keep_daily": 7, "keep_last": 1})
    plan = plan_retention(archive, [target], rules=rules, now=later)
    assert any("in the future" in p for p in plan.problems)
    # measured from the clock: 400 days on, no daily bucket holds a snapshot; keep_last keeps the newest counted one
    forgotten = [i.what for i in plan.of("forget")]
    assert forgotten == [r.snapshot.id for r in runs[:3]]
    reasons = keep_reasons([r.snapshot for r in runs], {"keep_daily": 7}, NOW)
    assert reasons[runs[3].snapshot.id] == ["keep_daily"] and reasons[runs[0].snapshot.id] == []
    # the admin alone, or an admin as approver, is refused (audited); TOTP both
    t1 = later + timedelta(seconds=31)
    with pytest.raises(PolicyDenied):
        apply_retention(archive, keys, plan, admin="wugang", admin_totp=code("wugang", t1), approver="wugang",
                        approver_totp=code("wugang", t1), now=t1)
    with pytest.raises(IdentityCheckFailed):
        apply_retention(archive, keys, plan, admin="wugang", admin_totp=code("wugang", t1), approver="lixia",
                        approver_totp="123456", now=t1)
    t2 = later + timedelta(minutes=3)
    result = apply_retention(archive, keys, plan, admin="wugang", admin_totp=code("wugang", t2), approver="lixia",
                             approver_totp=code("lixia", t2), now=t2)
    assert result.shredded == ["2026Q1", "2026Q4"] and len(result.forgotten) == 3 and not result.refused
    report = check_target(target, read_data=1.0)
    assert report.ok, report.problems
    assert report.counts["forgotten"] == 3 and report.counts["snapshots"] == 2
    assert [e for e in archive.audit.entries() if e.action == "retention.apply"][-1].outcome == "ok"
    assert len(_denied(archive, "retention.apply")) == 1


def test_cli_legalhold_and_retention_plan(template, tmp_path):
    from click.testing import CliRunner
    from investigator.cli import main

    archive = copy_shred(template, tmp_path / "a")
    env = {"INVESTIGATOR_KEY_PASSPHRASE": "DEMO-ONLY-passphrase-lixia", "INVESTIGATOR_KEY_DIR":
           str(archive.root / "demo-keys"), "INVESTIGATOR_PASSPHRASE": PASSPHRASE}
    runner = CliRunner()
    out = runner.invoke(main, ["legalhold", "add", str(archive.root), "--case", "C-7", "--start", "2026-02-01",
                               "--end", "2026-03-01", "--reason", "audit", "--as", "lixia", "--json"], env=env)
    assert out.exit_code == 0, out.output
    hold_id = json.loads(out.output)["id"]
    out = runner.invoke(main, ["legalhold", "list", str(archive.root)], env=env)
    assert hold_id in out.output
    out = runner.invoke(main, ["retention", "plan", str(archive.root), "--json"], env=env)
    items = json.loads(out.output)["items"]
    assert {i["what"]: i["action"] for i in items} == {"2026Q1": "keep-period", "2026Q4": "keep-period"}
    out = runner.invoke(main, ["legalhold", "release", str(archive.root), hold_id, "--as", "lixia", "--totp",
                               "000000", "--reason", "x"], env=env)
    assert out.exit_code == IdentityCheckFailed.exit_code
    # apply: the admin's and the legal approver's codes; the hold keeps 2026Q1, 2026Q4 is young: nothing shredded
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    apply = ["retention", "apply", str(archive.root), "--as", "wugang", "--totp", code("wugang", now),
             "--approver", "lixia", "--approver-totp", code("lixia", now), "--json"]
    out = runner.invoke(main, apply, env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"shredded": [], "forgotten": [], "pruned": 0, "refused": []}
    out = runner.invoke(main, apply[:-5] + ["--approver", "wugang", "--approver-totp", "123456"], env=env)
    assert out.exit_code == PolicyDenied.exit_code  # the admin cannot approve their own retention run
    shutil.rmtree(archive.root)


def test_a_case_over_a_shredded_period_opens_without_its_chunks(template, tmp_path):
    from backup_support import Opener

    archive = copy_shred(template, tmp_path / "a")
    opener = Opener(sorted(archive.layout.grants_dir.glob("G-*.json"))[0].stem)
    assert opener.rows(archive).height > 0  # the demo grant's window is on 2026-11-18 (2026Q4)
    keys = unlock_archive(archive, PASSPHRASE)
    shred_period(archive, keys, "2026Q4", actor="wugang", approver="lixia", now=NOW + timedelta(days=400))
    assert opener.rows(archive).height == 0  # destroyed by a signed record: left out, not an integrity failure
