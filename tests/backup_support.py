"""Helpers of the backup tests: one small archive with people, a grant, a case note and a planted marker.

Built once per test worker (``backup_template``) and copied per test (``copy_template``). The marker text is in
message records and in a case note, so a scan of every object written to a target proves that no plaintext
left the archive.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from support import PASSPHRASE, TEST_KDF_N, message_frame
from investigator import _crypto
from investigator.custody.file import create_archive, unlock_archive
from investigator.demo.people import DEMO_ONLY_TOTP_SECRETS, demo_authority
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)
MARKER = "PLAINTEXT-MARKER-明文标记-7f3a"
CUSTODY_PATHS = ("keys/master.json", "org/totp")  # what the custody backup holds (and the targets never do)
DEMO_PATHS = ("demo-keys",)


def build_template(root: Path) -> Path:
    """An archive at ``root/archive``: two batches of messages (some carrying MARKER), the demo people, policy and
    the complaint grant (2026-11-18 14:00-17:00 Shanghai), and a case note with MARKER."""
    archive = create_archive(root / "archive", passphrase=PASSPHRASE, kdf_n=TEST_KDF_N, now=NOW - timedelta(days=2))
    keys = unlock_archive(archive, PASSPHRASE)
    ingest_frames(archive, messages=message_frame(48, text="hello {i} " + MARKER), events=None, sources=[],
                  skipped=[], keys=keys, actor="backup-test", now=NOW - timedelta(days=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = demo_authority(archive, keys, now=NOW - timedelta(minutes=30), key_dir=root / "archive" / "demo-keys",
                              kdf_n=TEST_KDF_N)
    (root / "grant_id").write_text(demo.grant_id)
    case_dir = archive.layout.case_tags("T-BACKUP")
    case_dir.parent.mkdir(parents=True, exist_ok=True)
    case_dir.write_text('{"author":"sunli","message_id":"m3","note":"' + MARKER + '","tag":"evidence"}\n',
                        encoding="utf-8")
    return root


@pytest.fixture(scope="session", name="backup_template")
def backup_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template, built once per test worker; tests copy it (``copy_template``). Import
    ``backup_template_fixture`` into a module and ask for ``backup_template``."""
    return build_template(tmp_path_factory.mktemp("backup-template"))


def copy_template(template: Path, dest: Path) -> Archive:
    shutil.copytree(template / "archive", dest)
    return Archive.open(dest)


def add_batch(archive: Archive, *, start_id: int, n: int = 12) -> None:
    """Another ingest batch (day 19), so a second backup has new objects."""
    keys = unlock_archive(archive, PASSPHRASE)
    ingest_frames(archive, messages=message_frame(n, day=19, start_id=start_id, text="later {i} " + MARKER),
                  events=None, sources=[], skipped=[], keys=keys, actor="backup-test", now=NOW - timedelta(days=1))


def restore_custody(original: Path, restored: Path) -> None:
    """The restore drill's second step: put the custody material (and the DEMO-ONLY key files) back."""
    for relative in CUSTODY_PATHS + DEMO_PATHS:
        source, target = original / relative, restored / relative
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@dataclass
class Opener:
    """Opens the template's grant as sunli with a fresh TOTP step each time."""

    grant: str
    clock: datetime = NOW

    def rows(self, archive: Archive) -> Any:
        from investigator.access.case import open_case
        from investigator.access.keyservice import EmbeddedKeyService

        self.clock += timedelta(seconds=31)
        code = _crypto.totp(DEMO_ONLY_TOTP_SECRETS["sunli"], self.clock.timestamp())
        case = open_case(archive, grant=self.grant, person="sunli", totp=code,
                         key_service=EmbeddedKeyService(archive, unlock_archive(archive, PASSPHRASE)), now=self.clock)
        return case.messages().sort("message_id")


def scan_for(data_by_key: dict[str, bytes], needle: str) -> list[str]:
    """The keys whose bytes contain ``needle`` (UTF-8) anywhere."""
    raw = needle.encode("utf-8")
    return [key for key, data in data_by_key.items() if raw in data]


class FaultyTarget:
    """Wraps a target and damages chosen puts: ``flip`` (one bit), ``truncate`` (half), ``fail_after`` (N bytes
    written, then an error, as a non-atomic writer would leave it). With ``lie`` the wrapper answers reads of a
    damaged object with the good bytes, so the run's read-back cannot see the damage (a lying disk or cache):
    only ``backup verify --read-data`` on the real target can."""

    def __init__(self, inner: Any, faults: dict[int, str], *, lie: bool = True, fail_bytes: int = 7) -> None:
        self.inner, self.faults, self.lie, self.fail_bytes = inner, faults, lie, fail_bytes
        self.puts = 0
        self.damaged: dict[str, str] = {}  # object key -> fault
        self._good: dict[str, bytes] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, key: str, data: bytes, *, retain_until=None) -> None:
        from investigator.backup.target import TargetError

        fault = self.faults.get(self.puts) if key.startswith("objects/") else None
        if self.damaged.get(key) == "fail_after":
            fault = "fail_after"  # the connection stays down for this object: every retry fails too
        if key.startswith("objects/"):
            self.puts += 1
        if fault is None:
            return self.inner.put(key, data, retain_until=retain_until)
        self.damaged[key] = fault
        if fault == "flip":
            bad = bytearray(data)
            bad[len(bad) // 2] ^= 0x10
            self.inner.put(key, bytes(bad), retain_until=retain_until)
        elif fault == "truncate":
            self.inner.put(key, data[:len(data) // 2], retain_until=retain_until)
        elif fault == "fail_after":
            self.inner.put(key, data[:self.fail_bytes], retain_until=retain_until)
            raise TargetError(f"connection lost after {self.fail_bytes} bytes", path=key)
        if self.lie:
            self._good[key] = data

    def get(self, key: str) -> bytes:
        return self._good[key] if key in self._good else self.inner.get(key)


def target_objects(target: Any) -> dict[str, bytes]:
    """Every object on a target, by key."""
    return {key: target.get(key) for key, _size in target.list("")}


def archive_files_bytes(root: Path, *, skip: tuple[str, ...] = CUSTODY_PATHS + DEMO_PATHS + ("locks",)) -> dict[str, bytes]:
    """Every file under ``root`` but custody material, demo key files and locks."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(skip) and not path.name.startswith("."):
            out[rel] = path.read_bytes()
    return out


# --- scenarios shared by the directory and the S3 tests ---------------------------------------------------------

def roundtrip(template: Path, tmp: Path, target: Any, opener: Opener) -> None:
    """Backup, an incremental second and third run, restore into an empty folder: verify intact, same info,
    the case opens with the same rows; and no plaintext or custody material on the target."""
    from investigator.backup import BackupTiers, backup_run, check_target, restore_snapshot
    from investigator.vault.verify import verify_archive

    archive = copy_template(template, tmp / "archive")
    keys = unlock_archive(archive, PASSPHRASE)
    tier = BackupTiers.default()["hourly"]
    first = backup_run(archive, target, keys=keys, tier=tier, actor="admin", now=NOW)
    assert first.uploaded == len({f["object"] for f in first.snapshot.body["files"]}) and first.reused == 0
    again = backup_run(archive, target, keys=keys, tier=tier, actor="admin", now=NOW + timedelta(hours=1))
    changed = {f["path"] for f in again.snapshot.body["files"]} - {
        f["path"] for f in again.snapshot.body["files"] if f in first.snapshot.body["files"]}
    assert changed == {"audit/log.jsonl"} and again.uploaded == 1  # only what changed: the audit log grew
    add_batch(archive, start_id=500)
    uploaded: list[str] = []
    third = backup_run(archive, target, keys=keys, tier=tier, actor="admin", now=NOW + timedelta(hours=2),
                       on_object=uploaded.append)
    before = {f["object"] for f in again.snapshot.body["files"]}
    new = {f["object"] for f in third.snapshot.body["files"]} - before
    assert third.uploaded == len(new) == len(uploaded) > 5 and third.reused == len(third.snapshot.body["files"]) - len(new)
    by_object = {f["object"]: f["path"] for f in third.snapshot.body["files"]}
    # (org/state/: the ingest's checkpoint heads decision files changed since the last head, issue #13 item 2)
    assert all(by_object[key.rsplit("/", 1)[1]].startswith(("batches/00000002", "audit/", "keys/", "org/state/"))
               for key in uploaded), uploaded
    assert [s.seq for s in (first.snapshot, again.snapshot, third.snapshot)] == [1, 2, 3]
    assert third.snapshot.parent == again.snapshot.digest and again.snapshot.parent == first.snapshot.digest
    checked = check_target(target, read_data=1.0)
    assert checked.ok, checked.problems
    assert checked.counts["snapshots"] == 3 and checked.counts["objects_read"] == checked.counts["objects"]

    # no plaintext and no custody material on the target
    objects = target_objects(target)
    assert MARKER.encode() in (archive.layout.case_tags("T-BACKUP")).read_bytes()  # the note is plaintext at home
    assert scan_for(objects, MARKER) == []
    master = archive.layout.key_file.read_bytes()
    totp = [p.read_bytes() for p in archive.layout.totp_dir.glob("*.json")]
    assert totp and not any(data == master or data in totp for data in objects.values())
    paths = {f["path"] for f in third.snapshot.body["files"]}
    assert not any(p == "keys/master.json" or p.startswith(("org/totp/", "demo-keys/")) for p in paths)

    # restore into an empty folder: bit for bit, then the drill: custody back, verify, info, the case
    dest = tmp / "restored"
    result = restore_snapshot(target, dest)
    assert result.pending_sealed == ["cases/T-BACKUP/tags.jsonl"] and not result.complete
    restore_custody(archive.root, dest)
    from investigator.vault.store import Archive

    restored = Archive.open(dest)
    result = restore_snapshot(target, dest, keys=unlock_archive(restored, PASSPHRASE))
    assert result.complete and result.files == 1
    home, back = archive_files_bytes(archive.root), archive_files_bytes(dest)
    assert set(back) == set(home)
    for rel, data in back.items():
        if rel == "audit/log.jsonl":  # the original logged the third run and more since; the copy ends earlier
            assert home[rel].startswith(data.split(b"\n")[0]) and len(data) <= len(home[rel])
            snap_entry = next(f for f in third.snapshot.body["files"] if f["path"] == rel)
            assert _crypto.sha256_hex(data[:snap_entry["size"]]) == snap_entry["sha256"]
        else:
            assert data == home[rel], rel
    report = verify_archive(restored, keys=unlock_archive(restored, PASSPHRASE), actor="drill")
    assert report.ok, report.problems
    assert restored.info() == archive.info()
    rows = opener.rows(archive)
    assert rows.height > 0 and opener.rows(restored).equals(rows)


def faults(template: Path, tmp: Path, target: Any) -> None:
    """Faults injected on the way to ``target``: a run that cannot see them completes; verify --read-data names
    each damaged object; a run cut off mid-object fails, and the next run completes; nothing is lost."""
    from investigator.backup import BackupTiers, backup_run, check_target, restore_snapshot
    from investigator.backup.target import TargetError
    from investigator.vault.store import Archive
    from investigator.vault.verify import verify_archive

    archive = copy_template(template, tmp / "archive")
    keys = unlock_archive(archive, PASSPHRASE)
    tier = BackupTiers.default()["weekly"]
    lying = FaultyTarget(target, {3: "flip", 9: "truncate", 20: "flip"})
    backup_run(archive, lying, keys=keys, tier=tier, actor="admin", now=NOW)
    assert len(lying.damaged) == 3
    structure = check_target(target)
    truncated = [k for k, f in lying.damaged.items() if f == "truncate"]
    assert [p for p in structure.problems if "expected" in p and "bytes" in p] and \
        all(any(k in p for p in structure.problems) for k in truncated)
    deep = check_target(target, read_data=1.0)
    named = {k for k in lying.damaged if any(p.startswith(f"object {k} (") for p in deep.problems)}
    assert named == set(lying.damaged), deep.problems
    assert len([p for p in deep.problems if "content hash" in p]) == 3

    # an honest target that fails mid-object: the read-back catches a flipped copy and retries; a cut-off fails
    add_batch(archive, start_id=700)
    flaky = FaultyTarget(target, {0: "flip", 1: "fail_after"}, lie=False)
    try:
        backup_run(archive, flaky, keys=keys, tier=tier, actor="admin", now=NOW + timedelta(hours=1))
        raise AssertionError("the run should have failed")
    except TargetError as exc:
        assert "connection lost" in str(exc)
    assert "backup.run" in [e.action for e in archive.audit.entries() if e.outcome == "error"]

    # the next run completes; --check-existing replaces the copies verify found damaged
    done = backup_run(archive, target, keys=keys, tier=tier, actor="admin", now=NOW + timedelta(hours=2),
                      check_existing=True)
    assert done.snapshot.seq == 2
    assert done.uploaded >= 3 + 1  # the three damaged copies again, and what is new
    healed = check_target(target, read_data=1.0)
    assert healed.ok, healed.problems  # same content, same key: the good copy replaced the damaged one

    dest = tmp / "restored"
    restore_snapshot(target, dest, snapshot_id=str(done.snapshot.seq))
    restore_custody(archive.root, dest)
    restored = Archive.open(dest)
    restore_snapshot(target, dest, snapshot_id=str(done.snapshot.seq), keys=unlock_archive(restored, PASSPHRASE))
    report = verify_archive(restored, keys=unlock_archive(restored, PASSPHRASE), actor="drill")
    assert report.ok, report.problems
    assert restored.info() == archive.info()  # nothing lost
