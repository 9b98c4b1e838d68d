"""The audit log of one grant as frames, for the audit_review template and evidence bundles.

    >>> view = case_audit("demo-archive", grant="G-...", until=0)   # doctest: +SKIP
    >>> view.by_action                                             # doctest: +SKIP

Reads ``ARCHIVE/audit`` only: no keys, no content. An entry belongs to a grant
when its target is the grant id or its request id, or its details name the grant.
``until`` fixes the last entry read (0 = the current head), so a report over the
audit log can be reproduced although the log keeps growing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from investigator.authority.grants import Grant, find_grant
from investigator.vault.store import Archive
from investigator.vault.audit import AuditEntry


def grant_entries(archive: Archive, grant_id: str, *, request_id: str = "", until: int = 0) -> list[AuditEntry]:
    """Audit entries about ``grant_id`` (and its request), up to seq ``until`` (0 = all)."""
    out = []
    for entry in archive.audit.entries():
        if until and entry.seq > until:
            break
        details = entry.details or {}
        if (entry.target in {grant_id, request_id} - {""} or details.get("grant_id") == grant_id
                or details.get("grant") == grant_id):
            out.append(entry)
    return out


def unattributed_refusals(archive: Archive, people: set[str], *, since: str, until: int = 0) -> list[AuditEntry]:
    """Refusals by ``people`` from ``since`` (canonical UTC text) that name no grant of the archive.

    E.g. a notebook opening an unknown grant id (``case.open`` denied, rule ``grant.unknown``):
    the attempt belongs to no grant, so :func:`grant_entries` cannot find it, but an auditor of
    these people's grant should see it.
    """
    known = {p.stem for p in archive.layout.grants_dir.glob("*.json")} if archive.layout.grants_dir.exists() else set()
    out = []
    for entry in archive.audit.entries():
        if until and entry.seq > until:
            break
        details = entry.details or {}
        if (entry.outcome == "denied" and entry.actor in people and entry.ts >= since
                and entry.target not in known and details.get("rule") == "grant.unknown"):
            out.append(entry)
    return out


def head_seq(archive: Archive) -> int:
    last = 0
    for entry in archive.audit.entries():
        last = entry.seq
    return last


ENTRY_SCHEMA: dict[str, Any] = {"seq": pl.Int64, "ts": pl.Datetime("us", "UTC"), "actor": pl.String,
                                "action": pl.String, "outcome": pl.String, "target": pl.String, "rule": pl.String,
                                "reason": pl.String}


@dataclass
class CaseAudit:
    archive_id: str
    grant_id: str
    timezone: str
    until: int
    entries: pl.DataFrame
    chain: pl.DataFrame
    by_action: pl.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)
    #: refusals by the grant's operator or requester that name no grant (an unknown grant id), since the issue
    other_refusals: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ENTRY_SCHEMA))

    def provenance(self) -> dict[str, Any]:
        return {"archive_id": self.archive_id, "grant_id": self.grant_id, "audit_until": self.until,
                "rows": {"audit_entries": self.entries.height}, "chunks": [], "merkle_roots": {},
                "resolved_parameters": {"until": self.until}}


def case_audit(archive: str | Path, *, grant: str, people: list[str] | None = None, until: int = 0) -> CaseAudit:
    """The grant's audit entries, the chain verification and counts by action (no content is read)."""
    opened = Archive.open(Path(archive))
    loaded = Grant.from_file(find_grant(opened, grant))
    until = until or head_seq(opened)
    entries = grant_entries(opened, loaded.id, request_id=loaded.request.id, until=until)
    if people:
        entries = [e for e in entries if e.actor in set(people)]
    frame = _frame(entries)
    others = _frame(unattributed_refusals(opened, {loaded.operator, loaded.requester},
                                          since=str(loaded.body["issued"]), until=until))
    report = opened.audit.verify(opened.signing_keys(), archive_id=opened.archive_id)
    checkpoints = [size for size in opened.audit.checkpoint_sizes() if size <= until]
    chain = pl.DataFrame({"check": ["audit chain (whole log)", "entries of this grant", "last checkpoint at or before",
                                    "read up to entry"],
                          "result": ["intact" if report.ok else "PROBLEMS: " + "; ".join(report.problems[:3]),
                                     str(frame.height), str(max(checkpoints)) if checkpoints else "none",
                                     str(until)]})
    by_action = frame.group_by(["action", "outcome"]).agg(pl.len().alias("entries")).sort(["action", "outcome"])
    return CaseAudit(archive_id=opened.archive_id, grant_id=loaded.id, timezone=opened.config.timezone, until=until,
                     entries=frame, chain=chain, by_action=by_action, other_refusals=others)


def _frame(entries: list[AuditEntry]) -> pl.DataFrame:
    rows = [{"seq": e.seq, "ts": e.ts, "actor": e.actor, "action": e.action, "outcome": e.outcome,
             "target": e.target, "rule": str((e.details or {}).get("rule", "")),
             "reason": str((e.details or {}).get("reason", ""))} for e in entries]
    return pl.DataFrame(rows, schema={**ENTRY_SCHEMA, "ts": pl.String}).with_columns(
        pl.col("ts").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.fZ")).sort("seq")


def scope_statement(view: CaseAudit, *, lang: str = "zh", limits: list[str] | None = None) -> str:
    zh = not lang.lower().startswith("en")
    return "\n".join([
        "## 范围与限制" if zh else "## Scope and limits", "",
        f"- {'授权' if zh else 'Grant'}: `{view.grant_id}`; {'归档' if zh else 'archive'} `{view.archive_id}`",
        f"- {'审计条目截至' if zh else 'Audit entries up to'} #{view.until}",
        f"- {'限制' if zh else 'Limits'}: " + "; ".join(limits or ["-"]),
    ])
