"""`investigator backup ...` end to end: run, list, verify (exit 4 naming the object), restore, the emergency
tier's sealing record, S3 from the standard AWS_* variables, and SIGKILL during a backup and a restore."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from backup_support import NOW, backup_template_fixture, copy_template, restore_custody  # noqa: F401
from seaweed import seaweed_s3_server  # noqa: F401  (the worker's server, a fixture)
from support import PASSPHRASE, REPO, message_frame
from investigator import _crypto
from investigator.backup import DirectoryTarget, check_target, load_snapshots
from investigator.backup.seal import seal_key, verify_seal
from investigator.cli import main
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive


@pytest.fixture
def template(backup_template: Path) -> Path:
    return backup_template  # built once per worker (backup_support); copy before changing


def cli(*args: object, env: dict[str, str] | None = None):
    base = {"INVESTIGATOR_PASSPHRASE": PASSPHRASE, "INVESTIGATOR_LANG": "en", "INVESTIGATOR_KEYSERVER": ""}
    return CliRunner().invoke(main, [str(a) for a in args], env={**base, **(env or {})}, catch_exceptions=False)


def info(root: Path) -> dict:
    result = cli("info", root, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_run_list_verify_restore_through_the_cli(template, tmp_path):
    archive = copy_template(template, tmp_path / "archive")
    target = tmp_path / "cold"
    done = cli("backup", "run", archive.root, "--to", target, "--tier", "weekly", "--as", "admin", "--json")
    assert done.exit_code == 0, done.output
    run = json.loads(done.output)
    assert run["uploaded"] == run["files"] - 0 and run["tier"] == "weekly"
    again = json.loads(cli("backup", "run", archive.root, "--to", target, "--tier", "weekly", "--json").output)
    assert again["uploaded"] == 1 and again["reused"] == again["files"] - 1  # only the audit log grew
    listed = json.loads(cli("backup", "list", target, "--json").output)
    assert [s["seq"] for s in listed["snapshots"]] == [1, 2] and listed["unreadable"] == []
    assert cli("backup", "verify", target, "--read-data").exit_code == 0
    assert cli("backup", "verify", target, "--read-data-subset", "30%").exit_code == 0
    assert cli("backup", "verify", target, "--read-data-subset", "abc").exit_code == 2
    actions = [e.action for e in archive.audit.entries()]
    assert actions.count("backup.start") == 2 and actions.count("backup.run") == 2

    # one object damaged at rest: exit 4, the object and its archive file named
    snapshot = load_snapshots(DirectoryTarget(target))[0][-1]
    entry = next(f for f in snapshot.files if f.path.endswith(".chk"))
    damaged = target / "objects" / entry.object[:2] / entry.object
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:-3] + b"xyz")
    failed = cli("backup", "verify", target, "--read-data")
    assert failed.exit_code == 4
    assert f"object objects/{entry.object[:2]}/{entry.object} ({entry.path})" in failed.output
    assert cli("backup", "verify", target).exit_code == 0  # same size: only reading the data finds it
    repaired = cli("backup", "run", archive.root, "--to", target, "--tier", "weekly", "--check-existing")
    assert repaired.exit_code == 0 and cli("backup", "verify", target, "--read-data").exit_code == 0

    # restore: a non-empty folder is refused; an empty one gets the snapshot, the key file from the custody backup
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    refused = cli("backup", "restore", target, busy)
    assert refused.exit_code == 3 and "not empty" in refused.output
    dest = tmp_path / "restored"
    restored = cli("backup", "restore", target, dest, "--master-key", archive.layout.key_file, "--as", "admin",
                   "--json")
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.output)["complete"] is True
    assert cli("verify", dest).exit_code == 0
    assert {k: v for k, v in info(dest).items()} == info(archive.root)
    assert (dest / "cases" / "T-BACKUP" / "tags.jsonl").read_bytes() == archive.layout.case_tags("T-BACKUP").read_bytes()
    assert [e.action for e in Archive.open(dest).audit.entries() if e.action != "state.head"][-1] in \
        ("verify", "backup.restore")
    assert "backup.restore" in [e.action for e in Archive.open(dest).audit.entries()]


def test_restore_puts_the_master_key_in_place_without_sealed_files(make_archive, tmp_path):
    # the restore drill (docs/admin.md): restore --master-key, then a full verify; an archive without case notes
    # has no sealed file, and the key file given was once left out, so the verify failed "key file not found"
    archive, keys = make_archive()
    ingest_frames(archive, messages=message_frame(12), events=None, sources=[], skipped=[], keys=keys,
                  actor="tester", now=NOW)
    target, dest = tmp_path / "cold", tmp_path / "restored"
    assert cli("backup", "run", archive.root, "--to", target, "--tier", "weekly").exit_code == 0
    other, _ = make_archive("other")  # a key file of another archive, or no key file at all: refused before writing
    for wrong, says in ((other.layout.key_file, "the key file of archive"), (archive.root / "archive.toml",
                                                                           "not a readable key file")):
        refused = cli("backup", "restore", target, dest, "--master-key", wrong)
        assert refused.exit_code in (2, 3) and says in refused.output and not dest.exists(), refused.output
    restored = cli("backup", "restore", target, dest, "--master-key", archive.layout.key_file, "--json")
    assert restored.exit_code == 0, restored.output
    assert (dest / "keys" / "master.json").read_bytes() == archive.layout.key_file.read_bytes()
    verified = cli("verify", dest)
    assert verified.exit_code == 0, verified.output


def test_a_relative_target_is_audited_as_an_absolute_path(template, tmp_path, monkeypatch):
    # 'backup run --to cold' and 'backup restore cold ...' once wrote 'cold' into the audit log: where, for an auditor?
    archive = copy_template(template, tmp_path / "archive")
    monkeypatch.chdir(tmp_path)
    assert cli("backup", "run", archive.root, "--to", "cold", "--tier", "weekly").exit_code == 0
    assert cli("backup", "restore", "cold", "restored", "--master-key", archive.layout.key_file).exit_code == 0
    ran = [e for e in archive.audit.entries() if e.action in ("backup.start", "backup.run")]
    restored = [e for e in Archive.open(tmp_path / "restored").audit.entries() if e.action == "backup.restore"]
    assert {e.target for e in ran + restored} == {str(tmp_path / "cold")}


def test_the_emergency_tier_writes_a_signed_audited_sealing_record(template, tmp_path):
    archive = copy_template(template, tmp_path / "archive")
    usb = tmp_path / "media" / "usb-017"
    photo = tmp_path / "seal-usb-017.jpg"
    photo.write_bytes(b"\xff\xd8\xff a photo of the sealed bag")
    no_case = cli("backup", "run", archive.root, "--to", usb, "--tier", "emergency", "--media-id", "USB-017")
    assert no_case.exit_code == 2 and "--case" in no_case.output
    no_media = cli("backup", "run", archive.root, "--to", usb, "--tier", "emergency", "--case", "T-BACKUP")
    assert no_media.exit_code == 2 and "--media-id" in no_media.output
    done = cli("backup", "run", archive.root, "--to", usb, "--tier", "emergency", "--case", "T-BACKUP",
               "--media-id", "USB-017", "--photo", photo, "--as", "wugang", "--json")
    assert done.exit_code == 0, done.output
    out = json.loads(done.output)
    seal = out["seal"]
    assert (seal["media_id"], seal["sealed_by"], seal["case"]) == ("USB-017", "wugang", "T-BACKUP")
    assert seal["photo_sha256"] == _crypto.sha256_file(photo) and seal["snapshot_sha256"] == out["manifest_sha256"]
    assert seal["retain_until"].startswith("2029") or seal["retain_until"] > "2029"  # three years
    target = DirectoryTarget(usb)
    record_bytes = (usb / seal_key(out["snapshot"])).read_bytes()
    logged = [e for e in archive.audit.entries() if e.action == "backup.seal"]
    assert len(logged) == 1 and logged[0].actor == "wugang" and logged[0].target == "USB-017"
    assert logged[0].details["record_sha256"] == _crypto.sha256_hex(record_bytes)
    snapshots = {s.id: s for s in load_snapshots(target)[0]}
    assert verify_seal(target, seal_key(out["snapshot"]), snapshots) == []
    checked = check_target(target, read_data=1.0)
    assert checked.ok and checked.counts["seals"] == 1
    # a changed record (another media id) no longer verifies, and the check names it
    record = json.loads(record_bytes)
    record["body"]["media_id"] = "USB-999"
    from investigator.schema import canonical_json

    path = usb / seal_key(out["snapshot"])
    path.chmod(0o644)
    path.write_bytes(canonical_json(record))
    problems = check_target(target).problems
    assert any(p.startswith(seal_key(out["snapshot"])) and "signature" in p for p in problems)


def test_s3_through_the_standard_variables(template, tmp_path, seaweed_s3):
    archive = copy_template(template, tmp_path / "archive")
    url = seaweed_s3.bucket_url("cli")
    missing = cli("backup", "run", archive.root, "--to", url, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert missing.exit_code == 2 and "AWS_ACCESS_KEY_ID" in missing.output
    done = cli("backup", "run", archive.root, "--to", url, "--tier", "hourly", "--json", env=seaweed_s3.env())
    assert done.exit_code == 0, done.output
    assert seaweed_s3.secret_access_key not in done.output
    checked = cli("backup", "verify", url, "--read-data", env=seaweed_s3.env())
    assert checked.exit_code == 0, checked.output
    dest = tmp_path / "restored"
    restored = cli("backup", "restore", url, dest, "--master-key", archive.layout.key_file, env=seaweed_s3.env())
    assert restored.exit_code == 0, restored.output
    assert info(dest) == info(archive.root)


# --- SIGKILL in the middle ------------------------------------------------------------------------------------

KILL_BACKUP = textwrap.dedent("""
    import os, signal, sys
    from datetime import datetime, timezone
    from investigator.backup import BackupTiers, DirectoryTarget, S3Config, open_target, backup_run
    from investigator.custody.file import unlock_archive
    from investigator.vault.store import Archive
    archive = Archive.open(sys.argv[1])
    s3 = S3Config(endpoint=os.environ.get("AWS_ENDPOINT_URL"), access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
                  secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    seen = []
    def on_object(key):
        seen.append(key)
        if len(seen) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    backup_run(archive, open_target(sys.argv[2], s3), keys=unlock_archive(archive, os.environ["INVESTIGATOR_PASSPHRASE"]),
               tier=BackupTiers.default()["hourly"], actor="admin", on_object=on_object)
""")

KILL_RESTORE = textwrap.dedent("""
    import os, signal, sys
    from investigator.backup import DirectoryTarget, restore_snapshot
    seen = []
    def on_file(path):
        seen.append(path)
        if len(seen) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    restore_snapshot(DirectoryTarget(sys.argv[1]), __import__("pathlib").Path(sys.argv[2]), on_file=on_file)
""")


def _killed(script: str, *args: object, env: dict[str, str] | None = None) -> None:
    full = {**os.environ, "INVESTIGATOR_PASSPHRASE": PASSPHRASE, **(env or {})}
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=full, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.mark.parametrize("kind", ["directory", "s3"])
def test_sigkill_during_a_backup_then_the_next_run_completes(template, tmp_path, kind, request):
    archive = copy_template(template, tmp_path / "archive")
    if kind == "s3":
        server = request.getfixturevalue("seaweed_s3")
        url, env = server.bucket_url("kill"), server.env()
    else:
        url, env = str(tmp_path / "mirror"), {}
    # killed at the 20th object: still among the batch files (format 2 writes one per chunk), which are stored
    # as they are; sealed files (org/, audit/) get a fresh key per run and so are never reused after a kill
    _killed(KILL_BACKUP, archive.root, url, 20, env=env)
    listed = json.loads(cli("backup", "list", url, "--json", env=env).output)
    assert listed["snapshots"] == []  # killed before its manifest: no snapshot, 20 objects already there
    done = cli("backup", "run", archive.root, "--to", url, "--tier", "hourly", "--json", env=env)
    assert done.exit_code == 0, done.output
    out = json.loads(done.output)
    assert out["reused"] >= 20 and out["uploaded"] == out["files"] - out["reused"]
    checked = cli("backup", "verify", url, "--read-data", env=env)
    assert checked.exit_code == 0, checked.output
    dest = tmp_path / "restored"
    assert cli("backup", "restore", url, dest, "--master-key", archive.layout.key_file, env=env).exit_code == 0
    assert cli("verify", dest).exit_code == 0 and info(dest) == info(archive.root)  # nothing lost


def test_sigkill_during_a_restore_then_the_next_run_completes(template, tmp_path):
    archive = copy_template(template, tmp_path / "archive")
    target = tmp_path / "cold"
    assert cli("backup", "run", archive.root, "--to", target, "--tier", "weekly").exit_code == 0
    dest = tmp_path / "restored"
    _killed(KILL_RESTORE, target, dest, 30)
    assert (dest / ".investigator-restore.json").exists()
    snapshot = load_snapshots(DirectoryTarget(target))[0][-1]
    # a second backup makes a newer snapshot: resuming with the old one is allowed, another one is refused
    assert cli("backup", "run", archive.root, "--to", target, "--tier", "weekly").exit_code == 0
    refused = cli("backup", "restore", target, dest)
    assert refused.exit_code == 3 and "not empty" in refused.output
    resumed = cli("backup", "restore", target, dest, "--snapshot", snapshot.id, "--master-key",
                  archive.layout.key_file, "--json")
    assert resumed.exit_code == 0, resumed.output
    out = json.loads(resumed.output)
    assert out["complete"] and out["kept"] >= 30
    assert not (dest / ".investigator-restore.json").exists()
    restore_custody(archive.root, dest)
    assert cli("verify", dest).exit_code == 0 and info(dest) == info(archive.root)
    assert NOW is not None


def test_a_target_folder_that_is_not_there_is_named(tmp_path):
    # 'backup list /mnt/cld/investigator' (a typo, or an unmounted disk) said 'no snapshots' with exit 0, and
    # 'backup verify' 'no snapshot found': both read as an empty target
    missing = tmp_path / "cld" / "investigator"
    for args in (("backup", "list", missing), ("backup", "verify", missing), ("backup", "restore", missing,
                                                                             tmp_path / "dest")):
        result = cli(*args)
        assert result.exit_code == 2 and f"{missing}: no such folder" in result.output, result.output
    assert not missing.exists() and not (tmp_path / "dest").exists()
    archive = tmp_path / "archive"  # retention plans for the targets given: a missing one was left out in silence
    assert cli("init", archive, "--kdf-cost", "14").exit_code == 0
    for args in (("retention", "plan", archive, "--target", missing),
                 ("retention", "apply", archive, "--target", missing, "--as", "wugang", "--totp", "123456",
                  "--approver", "lixia", "--approver-totp", "654321")):
        result = cli(*args)
        assert result.exit_code == 2 and f"{missing}: no such folder" in result.output, result.output
    assert "unlock" not in [e.action for e in Archive.open(archive).audit.entries()]
