"""The quarterly security check (每季度开展系统安全检测): `investigator doctor`, a sealed report under the audit role.

    >>> result = run_doctor(archive, person="zhengjie", signer=key, targets=["/mnt/cold/investigator"],
    ...                     out_dir=Path("reports"))                                        # doctest: +SKIP
    >>> result.findings                                                                     # doctest: +SKIP
    []

Two halves. :func:`examine` runs in the report kernel (templates/doctor.ipynb) and gathers, without
any key or grant: the archive's offline verification (manifests, chain, signatures, file hashes,
audit log) and each backup target's check (all objects read and hashed, or a sample); master-key
versions, their ages and the rotation due date; what retention and legal holds have done; the
newest snapshot of each backup tier on the given targets; and the audit entries of the period, whose
access anomalies the template finds with :mod:`investigator.analysis.anomalies` (the layers keep
backup and analysis apart; the notebook joins them, :meth:`Doctor.add_anomalies`). Only counts and
metadata enter the report: ids, times,
actions, rules, file names, never message text or a secret. :func:`run_doctor` checks that the
person holds the ``audit`` permission (audited), executes the template with no secret in the
kernel's environment, and seals the notebook under that permission
(:func:`investigator.reports.seal.audit_basis`; the seal names no grant).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl

from investigator.backup.check import check_target
from investigator.backup.hold import load_holds
from investigator.backup.retention import plan_retention, retention_rules
from investigator.backup.run import load_snapshots
from investigator.backup.s3 import S3Config, S3Target
from investigator.backup.shred import MIN_ORIGINALS_DAYS, periods
from investigator.backup.target import DirectoryTarget, Target, TargetError
from investigator.backup.tiers import BackupTiers, Tier, tiers_for
from investigator import _crypto
from investigator.custody.rotation import ROTATE_AFTER, status as key_status
from investigator.errors import ConfigError, InvestigatorError
from investigator.reports.audit_view import head_seq
from investigator.reports.html import write_html
from investigator.reports.run import execute, find_template, kernel_env, output_path
from investigator.reports.seal import AUDIT_BASIS, audit_basis, provenance_output, seal_notebook
from investigator.schema import format_ts
from investigator.settings import (BAO_TOKEN_ENV, KEY_PASSPHRASE_ENV, KEYSERVER_ENV, PASSPHRASE_ENV, PKCS11_PIN_ENV,
                                   PROCESS_TICKET_ENV, SESSION_ENV)
from investigator.vault.store import Archive
from investigator.vault.verify import check_archive

TEMPLATE = "doctor"
PERIOD_DAYS = 92  # a quarter: how far back the anomaly checks look
#: the kernel of a doctor run holds no secret: every variable that could carry one is removed
KERNEL_SECRETS = (PASSPHRASE_ENV, SESSION_ENV, KEY_PASSPHRASE_ENV, PKCS11_PIN_ENV, BAO_TOKEN_ENV, PROCESS_TICKET_ENV,
                  KEYSERVER_ENV)
FINDING_COLUMNS: dict[str, Any] = {"area": pl.String, "subject": pl.String, "finding": pl.String}


def _utc(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def cron_interval(cron: str) -> timedelta:
    """How often a five-field cron line runs, roughly: hourly, daily, weekly or monthly."""
    minute, hour, dom, _month, dow = cron.split()
    if hour == "*" or hour.startswith("*/"):
        return timedelta(hours=1)
    if dow != "*":
        return timedelta(days=7)
    if dom != "*":
        return timedelta(days=31)
    return timedelta(days=1)


def open_target(spec: str) -> Target:
    """A target by its spec (S3 endpoint and credentials from the kernel's AWS_* variables, read by boto3)."""
    if spec.startswith("s3://"):
        return S3Target.from_url(spec, S3Config())
    return DirectoryTarget(Path(spec).expanduser())


@dataclass
class Doctor:
    """What one quarterly check found; each section a frame of metadata, ``findings`` the ones that need action."""

    archive_id: str
    timezone: str
    at: datetime
    until: int
    period_days: int
    sample: float
    integrity: pl.DataFrame
    keys: pl.DataFrame
    key_summary: pl.DataFrame
    retention: pl.DataFrame
    backups: pl.DataFrame
    findings: pl.DataFrame
    #: the audit entries of the period (``AuditEntry.to_json()``, metadata only) for the anomaly checks
    audit_entries: list[dict[str, Any]] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)
    anomalies: pl.DataFrame = field(default_factory=pl.DataFrame)
    anomaly_summary: pl.DataFrame = field(default_factory=pl.DataFrame)
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def since(self) -> datetime:
        """The start of the period the access checks read (``period_days`` before the check)."""
        return self.at - timedelta(days=self.period_days)

    def add_anomalies(self, found: pl.DataFrame, summary: pl.DataFrame, thresholds: Mapping[str, Any]) -> None:
        """Take the anomalies the template found (columns kind, actor, detail ...): one finding each."""
        self.anomalies, self.anomaly_summary, self.thresholds = found, summary, dict(thresholds)
        access = pl.DataFrame([{"area": "access", "subject": f"{row['kind']}: {row['actor']}",
                                "finding": str(row["detail"])} for row in found.iter_rows(named=True)],
                              schema=FINDING_COLUMNS)
        self.findings = pl.concat([self.findings, access], how="vertical")

    def provenance(self) -> dict[str, Any]:
        """The provenance record's extra fields (the seal copies them): no chunks, no grant, the findings."""
        return {"archive_id": self.archive_id, "grant_id": "", "basis": AUDIT_BASIS, "chunks": [],
                "merkle_roots": {}, "audit_until": self.until,
                "rows": {"audit_entries": self.until, "findings": self.findings.height},
                "doctor": {"at": format_ts(self.at), "period_days": self.period_days, "sample_percent": self.sample,
                           "thresholds": self.thresholds, "findings": self.findings.to_dicts()},
                "resolved_parameters": {"until": self.until, "at": format_ts(self.at)}}

    def scope_statement(self, *, lang: str = "zh") -> str:
        zh = not lang.lower().startswith("en")
        since = self.since
        sampled = "全部" if self.sample >= 100 else f"{self.sample:g}%"
        return "\n".join([
            "## 范围与限制" if zh else "## Scope and limits", "",
            f"- {'归档' if zh else 'Archive'} `{self.archive_id}`; {'检查时间' if zh else 'checked at'} "
            f"{format_ts(self.at)} (UTC); {'时区' if zh else 'time zone'} {self.timezone}",
            f"- {'审计条目截至' if zh else 'Audit entries up to'} #{self.until}; "
            f"{'访问异常检查期间' if zh else 'anomalies over'} {format_ts(since)[:10]} – {format_ts(self.at)[:10]}",
            f"- {'备份对象读取并校验' if zh else 'Backup objects read and hashed'}: "
            f"{sampled if zh else ('all' if self.sample >= 100 else f'{self.sample:g}% sample')}",
            "- " + ("仅元数据与计数：无授权、无密钥、不含消息内容" if zh
                    else "Metadata and counts only: no grant, no key, no message content"),
            f"- {'发现' if zh else 'Findings'}: **{self.findings.height}**",
        ])


def _integrity(opened: Archive, targets: Sequence[str], sample: float) -> tuple[pl.DataFrame, list[dict[str, str]]]:
    rows, findings = [], []
    report = check_archive(opened, keys=None)  # offline: manifests, chain, signatures, file hashes, audit log
    rows.append({"check": "archive (offline)", "subject": str(opened.archive_id),
                 "result": "intact" if report.ok else f"{len(report.problems)} problem(s)",
                 "detail": "; ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))})
    for problem in report.problems[:20]:
        findings.append({"area": "integrity", "subject": "archive", "finding": problem})
    audit = opened.audit.verify(opened.signing_keys(), archive_id=opened.archive_id)
    rows.append({"check": "audit log", "subject": "audit/", "result": "intact" if audit.ok
                 else f"{len(audit.problems)} problem(s)", "detail": ""})
    for problem in audit.problems[:20]:
        findings.append({"area": "integrity", "subject": "audit log", "finding": problem})
    for spec in targets:
        try:
            result = check_target(open_target(spec), read_data=sample / 100.0)
        except (InvestigatorError, OSError) as exc:
            findings.append({"area": "integrity", "subject": spec, "finding": f"target not readable: {exc}"})
            rows.append({"check": "backup target", "subject": spec, "result": "unreadable", "detail": ""})
            continue
        rows.append({"check": "backup target", "subject": spec,
                     "result": "intact" if result.ok else f"{len(result.problems)} problem(s)",
                     "detail": "; ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))})
        for problem in result.problems[:20]:
            findings.append({"area": "integrity", "subject": spec, "finding": problem})
    return pl.DataFrame(rows, schema=dict.fromkeys(("check", "subject", "result", "detail"), pl.String)), findings


def _keys(opened: Archive, at: datetime) -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, str]]]:
    """Master-key versions and ages: the key file's metadata (no passphrase), else the audit log's rotations."""
    versions: list[dict[str, Any]] = []
    source = "key file (keys/master.json, versions only)"
    try:
        info = key_status(opened, now=at)
        versions = [{"version": v["version"], "created": _utc(v["created"]), "keys_wrapped": v["keys_wrapped"]}
                    for v in info["versions"]]
    except (InvestigatorError, OSError, ValueError):
        # another custody: its versions are behind its PIN or token; the audit log dates the rotations
        source = f"audit log ({opened.config.custody.get('backend', 'file')} custody not opened)"
        dated = [e for e in opened.audit.entries() if e.action in ("init", "keys.rotate", "keys.migrate")
                 and e.outcome in ("ok", "allowed")]
        versions = [{"version": i + 1, "created": _utc(e.ts), "keys_wrapped": None} for i, e in enumerate(dated)]
    frame = pl.DataFrame(versions, schema={"version": pl.Int64, "created": pl.Datetime("us", "UTC"),
                                           "keys_wrapped": pl.Int64})
    frame = frame.with_columns(age_days=((pl.lit(at) - pl.col("created")).dt.total_hours() // 24).cast(pl.Int64))
    findings = []
    if frame.height:
        current = frame.sort("version").row(-1, named=True)
        due = current["created"] + ROTATE_AFTER
        summary = {"current_version": str(current["version"]), "created": format_ts(current["created"]),
                   "age_days": str(current["age_days"]), "rotation_due": format_ts(due)[:10],
                   "rotation_every_days": str(ROTATE_AFTER.days), "source": source}
        if at > due:
            findings.append({"area": "keys", "subject": f"master key v{current['version']}",
                             "finding": f"rotation overdue since {format_ts(due)[:10]} ({current['age_days']} days "
                                        f"old; every {ROTATE_AFTER.days} days)"})
    else:
        summary = {"current_version": "unknown", "source": source}
        findings.append({"area": "keys", "subject": "master key", "finding": "no key version could be dated"})
    table = pl.DataFrame({"item": list(summary), "value": list(summary.values())})
    return frame, table, findings


def _retention(opened: Archive, at: datetime) -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """Retention rules, each period's state (kept, due, held, shredded) and the legal holds; violations as findings.

    A finding: a period shredded while a hold covering it was active, or before its originals were
    :data:`~investigator.backup.shred.MIN_ORIGINALS_DAYS` old; a hold or destruction record that
    does not read or verify. A period past its retention and not yet shredded is listed, not a finding.
    """
    rows: list[tuple[str, str]] = []
    findings: list[dict[str, str]] = []
    try:
        rules = retention_rules(opened)
        holds = load_holds(opened)
        plan = plan_retention(opened, [], rules=rules, now=at)
        infos = periods(opened)
    except (InvestigatorError, OSError, ValueError) as exc:
        findings.append({"area": "retention", "subject": "rules and holds", "finding": f"not readable: {exc}"})
        return pl.DataFrame({"item": ["retention"], "status": ["not readable"]}), findings
    keep = ", ".join(f"{k} {v}" for k, v in sorted(rules.keep.items()))
    rows.append(("originals kept at least", f"{rules.originals_days} days (periods: {rules.period})"))
    rows.append(("snapshot keep rules", keep or "none (each copy keeps its tier's retention_days)"))
    rows += [(f"period {item.what}", f"{'due for shredding' if item.action == 'shred' else 'kept'}: {item.reason}")
             for item in plan.items if item.where == "archive"]
    for info in (i for i in infos if i.destroyed):
        where = opened.layout.relative(opened.layout.destruction_record(info.period))
        try:
            body = json.loads(opened.layout.destruction_record(info.period).read_text(encoding="utf-8"))["body"]
            destroyed = _utc(str(body["destroyed"]))
        except (OSError, ValueError, KeyError, TypeError):
            findings.append({"area": "retention", "subject": f"period {info.period}",
                             "finding": f"{where}: destruction record does not read"})
            rows.append((f"period {info.period}", "shredded (record unreadable)"))
            continue
        rows.append((f"period {info.period}", f"shredded {format_ts(destroyed)[:10]} by {body.get('actor')} "
                                              f"(approver {body.get('approver')}; {info.chunks} chunks)"))
        if destroyed < info.end + timedelta(days=MIN_ORIGINALS_DAYS):
            findings.append({"area": "retention", "subject": f"period {info.period}",
                             "finding": f"shredded {format_ts(destroyed)[:10]}, before its originals were "
                                        f"{MIN_ORIGINALS_DAYS} days old"})
        for hold in holds:
            released = hold.release["body"]["released"] if hold.release is not None else None
            if (hold.overlaps(info.start, info.end) and _utc(str(hold.body.get("created") or "0001-01-01T00:00:00"))
                    <= destroyed and (released is None or _utc(str(released)) > destroyed)):
                findings.append({"area": "retention", "subject": f"period {info.period}",
                                 "finding": f"shredded while {hold.id} (case {hold.case}) held it"})
    for hold in holds:
        start, end = hold.window
        state = "active" if hold.active else f"released {str(hold.release['body']['released'])[:10]}" \
            if hold.release is not None else "inactive"
        rows.append((f"hold {hold.id}", f"case {hold.case}, {format_ts(start)[:10]} – {format_ts(end)[:10]}: {state}"))
        if hold.problem:
            findings.append({"area": "retention", "subject": f"hold {hold.id}", "finding": hold.problem})
    if not holds:
        rows.append(("legal holds", "none"))
    return pl.DataFrame(rows, schema={"item": pl.String, "status": pl.String}, orient="row"), findings


def _backups(opened: Archive, tiers: BackupTiers, targets: Sequence[str],
             at: datetime) -> tuple[pl.DataFrame, list[dict[str, str]], list[str]]:
    snaps: dict[str, list[Any]] = {}
    for spec in targets:
        try:
            found, _bad = load_snapshots(open_target(spec))
        except (TargetError, OSError):
            found = []  # the integrity section names the unreadable target
        snaps[spec] = [s for s in found if s.body.get("archive_id") == opened.archive_id]
    rows, findings, notes = [], [], []
    for tier in tiers:
        candidates = [t for t in targets if t in tier.targets or any(s.tier == tier.name for s in snaps[t])]
        if not candidates:
            rows.append(_tier_row(tier, "-", 0, None, at, "not checked (no target of this tier given)"))
            if tier.scheduled:
                notes.append(f"tier {tier.name}: not checked, none of its targets given ({', '.join(tier.targets)})")
            continue
        for spec in candidates:
            mine = [s for s in snaps[spec] if s.tier == tier.name]
            newest = max((_utc(str(s.body["created"])) for s in mine), default=None)
            if not tier.scheduled:
                rows.append(_tier_row(tier, spec, len(mine), newest, at, "event-triggered (no schedule)"))
                continue
            interval = cron_interval(tier.cron)
            if newest is None:
                state = "no snapshot"
            elif at - newest > 2 * interval:
                state = f"stale: newest older than {_span(2 * interval)}"
            else:
                state = "fresh"
            rows.append(_tier_row(tier, spec, len(mine), newest, at, state))
            if state != "fresh":
                findings.append({"area": "backups", "subject": f"{tier.name} -> {spec}",
                                 "finding": f"{state} (runs every {_span(interval)})"})
    schema: dict[str, Any] = {"tier": pl.String, "label": pl.String, "schedule": pl.String, "target": pl.String,
              "snapshots": pl.Int64, "newest": pl.Datetime("us", "UTC"), "age_hours": pl.Float64,
              "status": pl.String}
    return pl.DataFrame(rows, schema=schema), findings, notes


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def _tier_row(tier: Tier, target: str, count: int, newest: datetime | None, at: datetime,
              state: str) -> dict[str, Any]:
    return {"tier": tier.name, "label": tier.label, "schedule": tier.cron or "event", "target": target,
            "snapshots": count, "newest": newest,
            "age_hours": round((at - newest).total_seconds() / 3600, 1) if newest else None, "status": state}


def examine(archive: str | Path, *, targets: Sequence[str] = (), sample: float = 100.0, at: str = "",
            until: int = 0, period_days: int = PERIOD_DAYS) -> Doctor:
    """Run every check of the quarterly security check on ``archive`` (no keys; see the module docstring).

    ``at`` (UTC text) is the check's time, ``until`` the last audit entry read (0: now and the head),
    so a reproduction reads the same. Raises ConfigError for a bad ``sample``; what the checks
    find is in the result, never raised. The access anomalies are added by the caller
    (:meth:`Doctor.add_anomalies`, over ``audit_entries``).
    """
    if not 0 < float(sample) <= 100:
        raise ConfigError(f"sample {sample!r}: expected a percentage above 0 and at most 100")
    opened = Archive.open(Path(archive))
    when = _utc(at) if at else datetime.now(timezone.utc)
    until = until or head_seq(opened)
    integrity, findings = _integrity(opened, targets, float(sample))
    keys, key_summary, key_findings = _keys(opened, when)
    backups, backup_findings, notes = _backups(opened, tiers_for(opened), targets, when)
    retention, retention_findings = _retention(opened, when)
    since = format_ts(when - timedelta(days=period_days))
    entries = [{k: v for k, v in e.to_json().items() if k not in ("prev", "hash")}
               for e in opened.audit.entries() if e.seq <= until and e.ts >= since]
    every = findings + key_findings + retention_findings + backup_findings
    return Doctor(archive_id=opened.archive_id, timezone=opened.config.timezone, at=when, until=until,
                  period_days=period_days, sample=float(sample), integrity=integrity, keys=keys,
                  key_summary=key_summary, retention=retention, backups=backups,
                  findings=pl.DataFrame(every, schema=FINDING_COLUMNS), audit_entries=entries, notes=notes)


@dataclass
class DoctorResult:
    notebook: Path
    html: Path
    digest: str
    report_id: str
    findings: list[dict[str, Any]]
    held: bool = False


def _absolute(spec: str) -> str:
    """A folder target as an absolute path (the kernel runs in the reports folder); an s3:// URL as it is."""
    return spec if spec.startswith("s3://") else str(Path(spec).expanduser().resolve())


def run_doctor(archive: Archive, *, person: str, signer: _crypto.SigningKey, targets: Sequence[str] = (),
               sample: float = 100.0, out_dir: Path = Path("reports"), lang: str = "zh", html: bool = True,
               thresholds: Mapping[str, Any] | None = None, now: datetime | None = None) -> DoctorResult:
    """Execute templates/doctor.ipynb as ``person`` (who must hold ``audit``), seal it, write the HTML copy.

    Raises PolicyDenied (audited) when ``person`` may not audit, ConfigError, ReportError
    (the run failed or cannot be sealed).
    """
    import nbformat

    when = now or datetime.now(timezone.utc)
    basis = audit_basis(archive, person, when, action="doctor.run")  # refused (audited) before anything runs
    path = find_template(TEMPLATE)
    target = output_path(out_dir, "doctor", TEMPLATE, when)
    params: dict[str, Any] = {"archive": str(Path(archive.root).resolve()), "person": person,
                              "targets": [_absolute(t) for t in targets], "sample": float(sample),
                              "at": format_ts(when),
                              "until": head_seq(archive), "lang": lang, "thresholds": dict(thresholds or {})}
    archive.audit.append(person, "doctor.run", archive.archive_id,
                         {"rule": basis["rule"], "template": TEMPLATE, "output": target.name,
                          "targets": len(params["targets"]), "sample_percent": params["sample"]},
                         outcome="allowed", now=when)
    started, ended = execute(path, target, params, env=kernel_env(archive, dict.fromkeys(KERNEL_SECRETS)))
    nb = nbformat.read(str(target), as_version=4)
    sealed = seal_notebook(nb, archive=archive, signer=signer, person=person, template=path, started=started,
                           ended=ended)
    nbformat.write(nb, str(target))
    html_path = write_html(target, page=sealed.page) if html else target.with_suffix(".html")
    record = provenance_output(nb) or {}
    return DoctorResult(notebook=target, html=html_path, digest=sealed.digest, report_id=sealed.report_id,
                        findings=list((record.get("doctor") or {}).get("findings") or []), held=sealed.held)
