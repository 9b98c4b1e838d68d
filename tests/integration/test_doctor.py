"""`investigator doctor`: the quarterly security check (issue #14, item 7).

A clean archive flags nothing; each planted access anomaly (real audit entries appended through the archive's
audit API with chosen times) is flagged, alone; key rotation and backup freshness and integrity findings; on
the demo archive the auditor, without a grant, gets a sealed report that `report verify` accepts.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from support import PASSPHRASE, TEST_KDF_N, message_frame
from investigator.analysis import anomalies
from investigator.backup import DirectoryTarget, backup_run
from investigator.backup import doctor
from investigator.backup.tiers import BackupTiers
from investigator.cli import main
from investigator.cli.doctor import FINDINGS_EXIT
from investigator.custody.file import create_archive, unlock_archive
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.demo.run import DEMO_PASSPHRASE
from investigator.schema import format_ts
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive

AT = datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)  # Friday 14:00 in Shanghai: the check's time
CREATED = AT - timedelta(days=40)


def local(day: datetime, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` in Shanghai (UTC+8) on ``day``'s date."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=hour - 8, minutes=minute)


def build_clean(root: Path) -> Path:
    """An archive created 40 days before AT with five weeks of ordinary, office-hours work in its audit log."""
    archive = create_archive(root, passphrase=PASSPHRASE, kdf_n=TEST_KDF_N, now=CREATED)
    keys = unlock_archive(archive, PASSPHRASE)
    ingest_frames(archive, messages=message_frame(24), events=None, sources=[], skipped=[], keys=keys,
                  actor="tester", now=CREATED + timedelta(hours=1))
    pairs = [("sunli", "zhouzong"), ("liuyang", "zhaomin"), ("wugang", "zhouzong")]
    for d in range(35, 0, -1):
        day = AT - timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for i, who in enumerate(("sunli", "liuyang", "wugang")):
            archive.audit.append(who, "case.open", f"G-{who}", {"rule": "case.opened"}, outcome="allowed",
                                 now=local(day, 9 + i, 5))
            for k in range(2 + i):
                archive.audit.append(who, "key.release", f"G-{who}", {"rule": "grant.window"}, outcome="allowed",
                                     now=local(day, 9 + i, 10 + k))
        if d % 4 == 0:
            archive.audit.append("wugang", "case.open", "G-old", {"rule": "grant.expired"}, outcome="denied",
                                 now=local(day, 15))
        if d % 2 == 0:  # a request every other working day or so, each approved by the requester's supervisor
            requester, approver = pairs[d // 2 % 3]
            archive.audit.append(requester, "request.new", f"REQ-{d}", {"rule": "request.allowed"},
                                 outcome="allowed", now=local(day, 10))
            archive.audit.append(approver, "request.approve", f"REQ-{d}", {"rule": "approval.eligible"},
                                 outcome="allowed", now=local(day, 11))
    return root


@pytest.fixture(scope="module")
def clean_template(tmp_path_factory) -> Path:
    return build_clean(tmp_path_factory.mktemp("doctor") / "clean")


@pytest.fixture
def clean(clean_template, tmp_path) -> Archive:
    shutil.copytree(clean_template, tmp_path / "archive")
    return Archive.open(tmp_path / "archive")


def check(archive: Archive, *, at: datetime = AT, **kwargs) -> doctor.Doctor:
    """What the template does: examine, then the access anomalies over the period's entries."""
    found = doctor.examine(archive.root, at=format_ts(at), **kwargs)
    anomalies_found = anomalies.find_anomalies(anomalies.audit_frame(found.audit_entries), tz=found.timezone,
                                               since=found.since, until=found.at)
    found.add_anomalies(anomalies_found, anomalies.summary(anomalies_found), {})
    return found


def test_a_clean_archive_flags_nothing(clean):
    found = check(clean)
    assert found.findings.is_empty(), found.findings.to_dicts()
    assert found.integrity["result"].to_list() == ["intact", "intact"]
    summary = dict(found.key_summary.iter_rows())
    assert summary["current_version"] == "1" and summary["age_days"] == "40"
    assert summary["rotation_due"] == format_ts(CREATED + timedelta(days=92))[:10]
    retention = dict(found.retention.iter_rows())
    assert retention["originals kept at least"] == "180 days (periods: quarter)"
    assert retention["period 2026Q4"].startswith("kept: younger than 180 days")
    assert retention["legal holds"] == "none"
    assert found.anomaly_summary["findings"].to_list() == [0, 0, 0, 0]
    assert len(found.audit_entries) > 150 and all("details" in e and "hash" not in e for e in found.audit_entries)


def plant(archive: Archive, kind: str) -> str:
    """Append the audit entries of one anomaly (as the code paths that write them would); return its actor."""
    day = AT - timedelta(days=6)  # a Saturday; the weekday before it is a Friday
    friday = day - timedelta(days=1)
    if kind == "off_hours_open":
        archive.audit.append("liuyang", "case.open", "G-liuyang", {"rule": "case.opened"}, outcome="allowed",
                             now=local(friday, 23, 40))
        return "liuyang"
    if kind == "unusual_volume":
        for k in range(70):
            archive.audit.append("sunli", "key.release", "G-sunli", {"rule": "grant.window"}, outcome="allowed",
                                 now=local(friday, 13, k % 60))
        return "sunli"
    if kind == "refusal_burst":
        for k in range(7):
            archive.audit.append("wugang", "case.open", f"G-guess-{k}", {"rule": "grant.unknown"}, outcome="denied",
                                 now=local(friday, 16, k))
        return "wugang"
    assert kind == "repeated_pair"
    for k in range(9):
        when = friday - timedelta(days=k * 2)
        archive.audit.append("liuyang", "request.new", f"REQ-P{k}", {"rule": "request.allowed"}, outcome="allowed",
                             now=local(when, 10, 30))
        archive.audit.append("zhaomin", "request.approve", f"REQ-P{k}", {"rule": "approval.eligible"},
                             outcome="allowed", now=local(when, 10, 45))
    return "zhaomin"


@pytest.mark.parametrize("kind", anomalies.KINDS)
def test_each_planted_anomaly_is_flagged_alone(clean, kind):
    actor = plant(clean, kind)
    found = check(clean)
    assert found.findings["subject"].to_list() == [f"{kind}: {actor}"], found.findings.to_dicts()
    assert found.findings["area"].to_list() == ["access"]
    assert dict(found.anomaly_summary.iter_rows())[kind] == 1
    assert found.integrity["result"].to_list() == ["intact", "intact"]  # planted through the API: the chain holds


def test_key_rotation_overdue(clean):
    found = check(clean, at=CREATED + timedelta(days=100))
    assert found.findings["area"].to_list() == ["keys"]
    assert "rotation overdue since " + format_ts(CREATED + timedelta(days=92))[:10] in found.findings["finding"][0]


def test_backup_freshness_per_tier_and_target_integrity(clean, tmp_path):
    cold = tmp_path / "cold"
    weekly = BackupTiers.default()["weekly"]
    backup_run(clean, DirectoryTarget(cold), keys=unlock_archive(clean, PASSPHRASE), tier=weekly, actor="admin",
               now=AT - timedelta(days=3))
    found = check(clean, targets=[str(cold)], sample=100)
    assert found.findings.is_empty(), found.findings.to_dicts()
    row = found.backups.filter(found.backups["tier"] == "weekly").row(0, named=True)
    assert (row["target"], row["snapshots"], row["status"]) == (str(cold), 1, "fresh")
    assert found.integrity.filter(found.integrity["check"] == "backup target")["result"].to_list() == ["intact"]
    assert any("hourly: not checked" in note for note in found.notes)

    late = check(clean, at=AT + timedelta(days=12), targets=[str(cold)], sample=100)
    assert late.findings["subject"].to_list() == [f"weekly -> {cold}"]
    assert late.findings["finding"][0].startswith("stale: newest older than 14 days")

    victim = sorted((cold / "objects").rglob("*"))[-1]
    victim.write_bytes(b"x" + victim.read_bytes()[1:])
    damaged = check(clean, targets=[str(cold)], sample=100)
    assert damaged.findings["area"].unique().to_list() == ["integrity"]
    assert victim.name in " ".join(damaged.findings["finding"].to_list())


def cli(*args, env=None):
    base = {"INVESTIGATOR_LANG": "en", "INVESTIGATOR_KEYSERVER": "", "INVESTIGATOR_PASSPHRASE": ""}
    return CliRunner().invoke(main, [str(a) for a in args], env={**base, **(env or {})}, catch_exceptions=False)


def test_doctor_on_the_demo_archive_is_a_sealed_report_without_a_grant(demo_archive, tmp_path):
    root = tmp_path / "demo-archive"
    shutil.copytree(demo_archive, root)
    archive = Archive.open(root)
    auditor = {"INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(person="zhengjie")}

    # working hours around the clock: the demo's openings (made whenever the suite runs) are no finding
    calm = cli("doctor", root, "--as", "zhengjie", "--key-dir", root / "demo-keys", "-o", tmp_path / "calm",
               "--threshold", "work_start=0", "--threshold", "work_end=24", "--threshold", "rest_days=[]", "--json",
               env=auditor)
    assert calm.exit_code == 0, calm.output
    assert json.loads(calm.output)["findings"] == []
    calm_nb = json.loads(calm.output)["notebook"]
    assert cli("report", "verify", calm_nb, "--archive", root).exit_code == 0
    recorded = nbformat.read(calm_nb, as_version=4).metadata["investigator"]["seal"]["body"]["data"]["doctor"]
    assert (recorded["thresholds"]["work_end"], recorded["thresholds"]["rest_days"]) == (24, [])

    now = datetime.now(timezone.utc)
    for k in range(6):  # a burst of refusals an hour ago
        archive.audit.append("wugang", "case.open", f"G-guess-{k}", {"rule": "grant.unknown"}, outcome="denied",
                             now=now - timedelta(hours=1, minutes=-k))
    before = sum(1 for _ in archive.audit.entries())

    refused = cli("doctor", root, "--as", "sunli", "--key-dir", root / "demo-keys", "-o", tmp_path / "out",
                  env={"INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(person="sunli")})
    assert refused.exit_code == 8, refused.output
    assert not (tmp_path / "out").exists()
    denied = [e for e in archive.audit.entries() if e.seq > before]
    assert [(e.actor, e.action, e.outcome) for e in denied] == [("sunli", "doctor.run", "denied")]

    done = cli("doctor", root, "--as", "zhengjie", "--key-dir", root / "demo-keys", "-o", tmp_path / "out",
               "--json", env=auditor)
    assert done.exit_code == FINDINGS_EXIT, done.output
    result = json.loads(done.output)
    assert {"area": "access", "subject": "refusal_burst: wugang"} in [
        {k: f[k] for k in ("area", "subject")} for f in result["findings"]]
    assert all(f["area"] == "access" for f in result["findings"])  # intact, keys young, nothing shredded
    notebook = Path(result["notebook"])
    assert notebook.parent == tmp_path / "out" / "doctor" and Path(result["html"]).exists()

    verified = cli("report", "verify", notebook, "--archive", root, "--json")
    assert verified.exit_code == 0, verified.output
    assert cli("report", "verify", result["html"]).exit_code == 0
    seal = nbformat.read(str(notebook), as_version=4).metadata["investigator"]["seal"]
    assert seal["signer"] == "zhengjie" and seal["body"]["grant"] is None
    assert seal["body"]["basis"] == {"kind": "audit-metadata", "person": "zhengjie", "permission": "audit",
                                     "rule": "role.permission", "roles": ["auditor"]}
    assert seal["body"]["data"]["chunks"] == [] and seal["body"]["data"]["doctor"]["findings"] == result["findings"]

    # the auditor read no content: no unlock, no case, no key release, no session under their name
    mine = [e for e in archive.audit.entries() if e.actor == "zhengjie"]
    assert [e.action for e in mine if e.action != "report.verify"] == ["doctor.run", "report.seal"] * 2
    assert not {e.action for e in archive.audit.entries() if e.actor == "zhengjie"} & {
        "unlock", "login", "case.open", "key.release", "load"}

    # an edited finding no longer verifies
    text = notebook.read_text(encoding="utf-8").replace("refusal_burst", "nothing_here", 1)
    notebook.write_text(text, encoding="utf-8")
    assert cli("report", "verify", notebook, "--archive", root).exit_code == 4


def test_a_period_shredded_too_young_is_a_retention_finding(clean):
    # shred_period refuses this (180-day floor); a record saying it happened anyway is what the check must catch
    record = clean.layout.destruction_record("2026Q4")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"body": {"destroyed": format_ts(AT - timedelta(days=1)), "actor": "wugang",
                                           "approver": "lixia"}}), encoding="utf-8")
    found = check(clean)
    retention = found.findings.filter(found.findings["area"] == "retention")
    assert retention["subject"].to_list() == ["period 2026Q4"]
    assert "before its originals were 180 days old" in retention["finding"][0]
    assert dict(found.retention.iter_rows())["period 2026Q4"].startswith("shredded 2026-11-26 by wugang")


def test_a_relative_target_is_the_folder_the_auditor_named(demo_archive, tmp_path, monkeypatch):
    # the report kernel runs in the reports folder: '--target cold' was once looked for there ("no snapshot found")
    root = tmp_path / "demo-archive"
    shutil.copytree(demo_archive, root)
    archive = Archive.open(root)
    backup_run(archive, DirectoryTarget(tmp_path / "cold"), keys=unlock_archive(archive, DEMO_PASSPHRASE),
               tier=BackupTiers.default()["weekly"], actor="wugang")
    monkeypatch.chdir(tmp_path)
    done = cli("doctor", "demo-archive", "--as", "zhengjie", "--key-dir", root / "demo-keys", "-o", "out",
               "--target", "cold", "--json", env={"INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(
                   person="zhengjie")})
    assert done.exit_code in (0, FINDINGS_EXIT), done.output
    assert [f for f in json.loads(done.output)["findings"] if f["area"] == "integrity"] == []
    recorded = nbformat.read(json.loads(done.output)["notebook"], as_version=4).metadata["investigator"]["seal"]
    assert recorded["body"]["parameters"]["targets"] == [str(tmp_path / "cold")]
