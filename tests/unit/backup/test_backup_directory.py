"""Backups to a directory target: incremental runs, restore drill, faults, chain and signature checks."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from backup_support import (MARKER, NOW, FaultyTarget, Opener, backup_template_fixture,  # noqa: F401
                            copy_template, faults, roundtrip,
                            target_objects)
from support import PASSPHRASE
from investigator.backup import (BackupTiers, DirectoryTarget, backup_run, check_target, is_custody_material,
                                 restore_snapshot)
from investigator.backup.run import archive_files, load_snapshots
from investigator.backup.target import TargetError
from investigator.custody.file import unlock_archive
from investigator.errors import ArchiveError, ConfigError, IntegrityError


@pytest.fixture
def template(backup_template: Path) -> Path:
    return backup_template  # built once per worker (backup_support); copy before changing


def test_roundtrip_incremental_restore_and_no_plaintext(template, tmp_path):
    roundtrip(template, tmp_path, DirectoryTarget(tmp_path / "mirror"), Opener((template / "grant_id").read_text()))


def test_faults_are_found_named_and_repaired(template, tmp_path):
    faults(template, tmp_path, DirectoryTarget(tmp_path / "cold"))


def test_what_a_snapshot_takes_leaves_out_custody_demo_and_scratch(template, tmp_path):
    archive = copy_template(template, tmp_path / "a")
    (archive.layout.staging_dir / "leftover").mkdir(parents=True)
    (archive.layout.staging_dir / "leftover" / "x.chk").write_bytes(b"x")
    taken = {f.path: f for f in archive_files(archive)}
    assert "archive.toml" in taken and "keys/index-key.json" in taken and "audit/log.jsonl" in taken
    assert not [p for p in taken if p.startswith(("staging/", "locks/", "demo-keys/", "org/totp/"))]
    assert "keys/master.json" not in taken and is_custody_material("keys/custody/2/master.json")
    assert taken["cases/T-BACKUP/tags.jsonl"].sealed and not taken["audit/log.jsonl"].sealed


def test_an_append_only_file_is_taken_up_to_its_last_complete_line(template, tmp_path):
    archive = copy_template(template, tmp_path / "a")
    with open(archive.layout.audit_log, "ab") as handle:
        handle.write(b'{"half an entry')
    data = next(f.data for f in archive_files(archive) if f.path == "audit/log.jsonl")
    assert data.endswith(b"}\n") and b"half an entry" not in data


def test_restore_refuses_a_folder_that_is_not_empty(template, tmp_path):
    archive = copy_template(template, tmp_path / "a")
    target = DirectoryTarget(tmp_path / "t")
    backup_run(archive, target, keys=unlock_archive(archive, PASSPHRASE), tier=BackupTiers.default()["weekly"],
               actor="admin", now=NOW)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="not empty"):
        restore_snapshot(target, dest)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    with pytest.raises(ArchiveError, match="no snapshot 'nope'"):
        restore_snapshot(target, tmp_path / "new", snapshot_id="nope")


def test_a_failed_run_is_audited_with_its_reason(template, tmp_path):
    # 'audit show' prints details.reason: a failed run once recorded only the exception's class name
    archive = copy_template(template, tmp_path / "a")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(TargetError, match="cannot create the folder"):
        backup_run(archive, DirectoryTarget(tmp_path / "a-file"), keys=unlock_archive(archive, PASSPHRASE),
                   tier=BackupTiers.default()["weekly"], actor="admin", now=NOW)
    last = list(archive.audit.entries())[-1]
    assert (last.action, last.outcome, last.details["error"]) == ("backup.run", "error", "TargetError")
    assert "cannot create the folder" in last.details["reason"]

    def ctrl_c(key: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C once left backup.start without any backup.run after it
        backup_run(archive, DirectoryTarget(tmp_path / "t"), keys=unlock_archive(archive, PASSPHRASE),
                   tier=BackupTiers.default()["weekly"], actor="admin", now=NOW, on_object=ctrl_c)
    last = list(archive.audit.entries())[-1]
    assert (last.action, last.outcome, last.details["error"]) == ("backup.run", "error", "KeyboardInterrupt")
    assert "interrupted" in last.details["reason"]


def test_two_runs_to_one_target_at_once_keep_one_chain(template, tmp_path):
    # a second 'backup run' started while the first uploaded: both chained to "no snapshot yet" and wrote seq 1,
    # and every later 'backup verify' of the target failed ("seq 1, expected 2", "chain broken")
    archive = copy_template(template, tmp_path / "a")
    target, weekly = DirectoryTarget(tmp_path / "t"), BackupTiers.default()["weekly"]
    keys = unlock_archive(archive, PASSPHRASE)
    started: list[str] = []

    def the_other_run_meanwhile(key: str) -> None:
        if not started:
            started.append(key)
            backup_run(archive, target, keys=keys, tier=weekly, actor="second", now=NOW)

    first = backup_run(archive, target, keys=keys, tier=weekly, actor="first", now=NOW, on_object=the_other_run_meanwhile)
    snapshots, bad = load_snapshots(target)
    assert [(s.seq, s.body["actor"]) for s in snapshots] == [(1, "second"), (2, "first")] and not bad
    assert first.snapshot.body["parent"] == snapshots[0].digest
    assert check_target(target, read_data=1.0).ok


def test_a_changed_dropped_or_foreign_snapshot_manifest_fails_the_check(template, tmp_path):
    archive = copy_template(template, tmp_path / "a")
    keys = unlock_archive(archive, PASSPHRASE)
    target = DirectoryTarget(tmp_path / "t")
    tier = BackupTiers.default()["weekly"]
    runs = [backup_run(archive, target, keys=keys, tier=tier, actor="admin", now=NOW + timedelta(hours=h))
            for h in range(3)]
    assert check_target(target).ok
    # a forged body (the retain-until shortened), re-serialized canonically: the signature fails
    second = target.folder / runs[1].snapshot.key
    record = json.loads(second.read_bytes())
    record["body"]["retain_until"] = "2026-12-01T00:00:00.000000Z"
    from investigator.schema import canonical_json

    original = second.read_bytes()
    second.chmod(0o644)
    second.write_bytes(canonical_json(record))
    problems = check_target(target).problems
    assert any(runs[1].snapshot.key in p and "signature" in p for p in problems)
    assert any(runs[2].snapshot.key in p and "chain broken" in p for p in problems)
    # the middle snapshot removed: a gap in seq and a broken link
    second.unlink()
    problems = check_target(target).problems
    assert any("seq 3, expected 2" in p for p in problems), problems
    second.write_bytes(original)
    assert check_target(target).ok
    # a run refuses a target holding another archive's snapshots
    other = copy_template(template, tmp_path / "b")
    other_keys = unlock_archive(other, PASSPHRASE)
    assert other.archive_id == archive.archive_id  # a copy: same id, so the signature decides
    from investigator.custody.file import create_archive

    stranger = create_archive(tmp_path / "c", passphrase=PASSPHRASE, kdf_n=2**14)
    with pytest.raises(ConfigError, match="holds snapshots of archive"):
        backup_run(stranger, target, keys=unlock_archive(stranger, PASSPHRASE), tier=tier, actor="admin", now=NOW)
    assert other_keys is not None


def test_restore_refuses_a_damaged_object_and_names_it(template, tmp_path):
    archive = copy_template(template, tmp_path / "a")
    target = DirectoryTarget(tmp_path / "t")
    run = backup_run(archive, target, keys=unlock_archive(archive, PASSPHRASE),
                     tier=BackupTiers.default()["weekly"], actor="admin", now=NOW)
    entry = next(f for f in run.snapshot.files if f.path.endswith(".chk"))
    path = target.folder / "objects" / entry.object[:2] / entry.object
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=entry.object) as caught:
        restore_snapshot(target, tmp_path / "r")
    assert entry.path in str(caught.value)


def test_a_read_back_mismatch_is_retried_and_recorded(template, tmp_path):
    archive = copy_template(template, tmp_path / "a")
    flaky = FaultyTarget(DirectoryTarget(tmp_path / "t"), {2: "flip"}, lie=False)
    run = backup_run(archive, flaky, keys=unlock_archive(archive, PASSPHRASE), tier=BackupTiers.default()["weekly"],
                     actor="admin", now=NOW)
    assert run.retried == list(flaky.damaged) and check_target(flaky.inner, read_data=1.0).ok


def test_the_read_data_subset_reads_that_share(template, tmp_path):
    import random

    archive = copy_template(template, tmp_path / "a")
    target = DirectoryTarget(tmp_path / "t")
    backup_run(archive, target, keys=unlock_archive(archive, PASSPHRASE), tier=BackupTiers.default()["weekly"],
               actor="admin", now=NOW)
    result = check_target(target, read_data=0.25, rng=random.Random(7))
    assert result.ok and result.counts["objects_read"] == round(result.counts["objects"] * 0.25)


def test_the_marker_scan_would_see_plaintext(tmp_path):
    # the scan's own check: a plaintext object is found
    from backup_support import scan_for

    target = DirectoryTarget(tmp_path / "t")
    target.put("objects/aa/leak", ("x" + MARKER).encode())
    assert scan_for(target_objects(target), MARKER) == ["objects/aa/leak"]


def test_directory_target_keys_stay_inside(tmp_path):
    target = DirectoryTarget(tmp_path / "t")
    for key in ("../x", "objects/../../x", "/etc/passwd", "a//b", ""):
        with pytest.raises(ConfigError):
            target.put(key, b"x")
    shutil.rmtree(tmp_path / "t", ignore_errors=True)


def test_a_write_once_file_changed_between_listing_and_copying_is_refused(template, tmp_path):
    archive = copy_template(template, tmp_path / "a")
    listed = {f.path: f for f in archive_files(archive)}
    chunk = next(f for p, f in listed.items() if p.endswith(".chk"))
    assert chunk.data is None and chunk.source is not None  # batches are hashed when listed, read when copied
    data = bytearray(chunk.source.read_bytes())
    data[0] ^= 1
    chunk.source.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="changed during the backup"):
        chunk.read()


SIGTERM_RUN = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from support import PASSPHRASE
from investigator.backup import BackupTiers, DirectoryTarget, backup_run
from investigator.custody.file import unlock_archive
from investigator.vault.store import Archive

archive = Archive.open({root!r})
backup_run(archive, DirectoryTarget({target!r}), keys=unlock_archive(archive, PASSPHRASE),
           tier=BackupTiers.default()["weekly"], actor="admin",
           on_object=lambda key: os.kill(os.getpid(), signal.SIGTERM))
"""


def test_a_run_stopped_with_sigterm_is_audited_as_ended(template, tmp_path):
    """`timeout 150 investigator backup run ...` (or systemd stopping the timer's unit) sent SIGTERM and the
    process died at once: the audit log kept 'backup.start' with no 'backup.run' after it. SIGTERM now ends a run
    like Ctrl-C: audited as an error with its reason, then the process exits."""
    import subprocess
    import sys

    from support import REPO
    from investigator.vault.store import Archive

    archive = copy_template(template, tmp_path / "a")
    script = SIGTERM_RUN.format(tests=str(REPO / "tests"), root=str(archive.root), target=str(tmp_path / "t"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" in done.stderr  # the library raises; the CLI prints 'Aborted!'
    start, end = [e for e in Archive.open(archive.root).audit.entries() if e.action.startswith("backup.")][-2:]
    assert (start.action, end.action, end.outcome, end.details["error"]) == (
        "backup.start", "backup.run", "error", "SIGTERM")
    assert "run it again to resume" in end.details["reason"]


class _StopsAnswering:
    """A target whose server stops answering after ``reads`` object reads (SeaweedFS stopped mid-restore)."""

    def __init__(self, inner, reads: int) -> None:
        self._inner, self._left = inner, reads

    def get(self, key: str) -> bytes:
        if key.startswith("objects/"):
            self._left -= 1
            if self._left < 0:
                raise TargetError("unreadable (ReadTimeoutError)", path=key)
        return self._inner.get(key)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_verify_of_a_half_restored_folder_says_so_and_writes_nothing_into_it(template, tmp_path):
    """A restore from S3 broken off by a stopped server left a half-filled folder; 'investigator verify r3 --offline'
    then listed 260 problems, among them 'archive.toml says format 2, the audit log format 1: switched without an
    audited upgrade (put format_version = 1 back ...)', advice that is wrong there, and appended its own entry to
    the half-restored audit log. It now names the unfinished restore first and writes nothing."""
    from backup_support import restore_custody
    from investigator.backup import restore_snapshot
    from investigator.vault.verify import verify_archive
    from investigator.vault.store import Archive

    archive = copy_template(template, tmp_path / "a")
    target = DirectoryTarget(tmp_path / "t")
    backup_run(archive, target, keys=unlock_archive(archive, PASSPHRASE), tier=BackupTiers.default()["weekly"],
               actor="admin", now=NOW)
    dest = tmp_path / "restored"
    with pytest.raises(TargetError, match="ReadTimeoutError"):
        restore_snapshot(_StopsAnswering(target, reads=5), dest)
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    report = verify_archive(Archive.open(dest))
    assert not report.ok and report.problems[0].startswith(".investigator-restore.json: this folder is an "
                                                           "unfinished restore")
    assert not any("put format_version" in p for p in report.problems)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before  # nothing written into it
    restore_snapshot(target, dest)  # finishing it (the sealed files with the custody put back): then it verifies
    restore_custody(archive.root, dest)
    restore_snapshot(target, dest, keys=unlock_archive(Archive.open(dest), PASSPHRASE))
    assert verify_archive(Archive.open(dest)).ok


def test_a_data_check_stops_at_a_target_that_stopped_answering(template, tmp_path):
    """`backup verify s3://walk-backup/b1 --read-data` with SeaweedFS stopped mid-way printed nothing for 130 s (then
    killed): every one of the 312 objects waited out the S3 timeouts in turn (hours in all), each reported as if
    that object were unreadable. A target that does not answer now ends the read after the first such object,
    saying how many were not read."""
    from investigator.backup.target import TargetUnreachable

    archive = copy_template(template, tmp_path / "a")
    target = DirectoryTarget(tmp_path / "t")
    backup_run(archive, target, keys=unlock_archive(archive, PASSPHRASE), tier=BackupTiers.default()["weekly"],
               actor="admin", now=NOW)
    reads = []

    class Silent:
        def get(self, key: str) -> bytes:
            if key.startswith("objects/"):
                reads.append(key)
                if len(reads) > 3:
                    raise TargetUnreachable("unreadable (ReadTimeoutError: the S3 endpoint does not answer)",
                                            path=key)
            return target.get(key)

        def __getattr__(self, name):
            return getattr(target, name)

    result = check_target(Silent(), read_data=1.0)
    assert len(reads) == 4 and result.counts["objects_read"] == 4
    (problem,) = result.problems
    assert "the target stopped answering" in problem and f"{result.counts['objects'] - 4} more object(s) not read" \
        in problem
