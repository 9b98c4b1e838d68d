"""Crypto-shredding: destroy a retention period's key, after every hold is checked, with a signed record.

    >>> record = shred_period(archive, custody, "2026Q1", actor="wugang", approver="lixia",
    ...                       originals_days=180)                                        # doctest: +SKIP
    >>> record.body["totals"]                                                            # doctest: +SKIP
    {'partitions': 90, 'chunks': 2160, 'rows': 1250000, 'files': 4410}

Data keys of a period's day partitions are wrapped under that period's key only
(vault/destruction.py), so destroying the key in the custody makes the period unreadable on the
archive and in every copy on every target, including snapshots taken before: they hold the same
wrapped keys and never the custody. The ciphertext stays where it is (the manifests and the
backup chain still verify by hash); ``verify`` reports the period's chunks as destroyed by the
signed destruction record, not as damage.

Order, so that a crash at any step is completed by the next run and loses nothing else: checks
(holds, the 180-day floor, every key of the period under its period key) -> ``retention.shred.start``
audited -> the signed destruction record written -> the key destroyed -> ``retention.shred``
audited and a checkpoint. A rerun that finds the record completes the destruction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from investigator import _crypto
from investigator._fs import atomic_write, make_dirs
from investigator.backup.hold import active_holds
from investigator.custody.base import Custody, PeriodCustody
from investigator.errors import ArchiveError, ConfigError, PolicyDenied
from investigator.schema import format_ts
from investigator.vault.destruction import (DESTRUCTION_FORMAT, PERIOD_KINDS, DestructionRecord, check_period,
                                            is_period_wrapped, period_of, period_window)
from investigator.vault.store import Archive

MIN_ORIGINALS_DAYS = 180  # the seed: 原始记录保存周期不少于180天; no policy can lower it


@dataclass(frozen=True)
class PeriodInfo:
    """One retention period of the archive: its partitions and counts, and what blocks shredding it."""

    period: str
    start: datetime
    end: datetime
    partitions: tuple[tuple[str, str], ...]
    chunks: int
    rows: int
    master_wrapped: int  # data keys of the period still readable through a master-key version
    destroyed: bool

    def expires(self, originals_days: int) -> datetime:
        """When the period's newest records reach the originals' retention."""
        return self.end + timedelta(days=max(originals_days, MIN_ORIGINALS_DAYS))


def periods(archive: Archive, *, master_versions: set[int] | None = None) -> list[PeriodInfo]:
    """Every period that has data, oldest first. ``master_versions``: the custody's master-key versions (a data
    key wrapped under one of them is readable without its period key; None: count every such key)."""
    chunks: dict[str, list[Any]] = {}
    for entry in archive.chunk_entries():
        period = period_of(entry.partition) if entry.kind in PERIOD_KINDS else None
        if period is not None:
            chunks.setdefault(period, []).append(entry)
    master: dict[str, int] = {}
    for _seq, kind, partition, relative in archive.data_key_files():
        period = period_of(partition) if kind in PERIOD_KINDS else None
        if period is None:
            continue
        wrapped = json.loads(archive.layout.resolve(relative).read_text(encoding="utf-8"))
        if not is_period_wrapped(wrapped) and (master_versions is None
                                               or int(wrapped.get("kek_version", 0)) in master_versions):
            master[period] = master.get(period, 0) + 1
    out = []
    for period in sorted(chunks):
        start, end = period_window(period)
        entries = chunks[period]
        out.append(PeriodInfo(period, start, end, tuple(sorted({(e.kind, e.partition) for e in entries})),
                              len(entries), sum(e.rows for e in entries), master.get(period, 0),
                              archive.layout.destruction_record(period).exists()))
    return out


def _record_body(archive: Archive, info: PeriodInfo, *, actor: str, approver: str, reason: str,
                 holds_checked: int, when: datetime) -> dict[str, Any]:
    layout = archive.layout
    parts: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in archive.chunk_entries():
        key = (entry.kind, entry.partition)
        if key not in set(info.partitions):
            continue
        part = parts.setdefault(key, {"kind": entry.kind, "partition": entry.partition, "batches": set(),
                                      "chunks": 0, "rows": 0, "files": []})
        part["batches"].add(entry.batch_seq)
        part["chunks"] += 1
        part["rows"] += entry.rows
        part["files"] += [{"path": relative, "sha256": sha} for relative, sha in entry.files]
    for seq, kind, partition, relative in archive.data_key_files():
        if (kind, partition) in parts:
            parts[(kind, partition)]["files"].append(
                {"path": relative, "sha256": _crypto.sha256_file(layout.resolve(relative))})
    listed = []
    for key in sorted(parts):
        part = parts[key]
        listed.append({**part, "batches": sorted(part["batches"]), "files": sorted(part["files"],
                                                                                   key=lambda f: f["path"])})
    return {"format": DESTRUCTION_FORMAT, "archive_id": archive.archive_id, "period": info.period,
            "scheme": "quarter", "window": [format_ts(info.start), format_ts(info.end)],
            "destroyed": format_ts(when), "actor": actor, "approver": approver, "reason": reason,
            "active_holds_checked": holds_checked, "partitions": listed,
            "totals": {"partitions": len(listed), "chunks": info.chunks, "rows": info.rows,
                       "files": sum(len(p["files"]) for p in listed)}}


def _refuse(archive: Archive, actor: str, period: str, reason: str, when: datetime) -> None:
    archive.audit.append(actor, "retention.shred", period, {"rule": "retention.shred", "reason": reason},
                         outcome="denied", now=when)


def shred_period(archive: Archive, custody: Custody, period: str, *, actor: str, approver: str,
                 originals_days: int = MIN_ORIGINALS_DAYS, now: datetime | None = None,
                 on_step: Callable[[str], None] | None = None) -> DestructionRecord:
    """Destroy ``period``'s key (see the module docstring); returns the signed destruction record.

    Raises PolicyDenied (audited) when a legal hold meets the period, its records are younger than
    the originals' retention (never less than 180 days), or a data key of the period is still wrapped
    under a master-key version; ArchiveError when the custody keeps no period keys or the period has
    no data; IntegrityError for a destruction record that does not verify.
    """
    when = now or datetime.now(timezone.utc)
    check_period(period)
    step = on_step or (lambda _name: None)
    if not isinstance(custody, PeriodCustody) or custody.period_scheme is None:
        _refuse(archive, actor, period, "the custody keeps no period keys", when)
        raise ArchiveError("this archive's custody keeps no period keys, so no period can be shredded "
                           "(archives made with 'investigator init --period-keys quarter')")
    with archive.write_lock():
        existing = DestructionRecord.load(archive, period)
        if existing is not None:  # an interrupted run: the record stands; finish the destruction
            destroyed = custody.destroy_period(period, now=when)
            archive.audit.append(actor, "retention.shred", period,
                                 {"resumed": True, "key_destroyed_now": destroyed,
                                  "record_sha256": existing.digest, **existing.body["totals"]}, now=when)
            archive.audit.checkpoint(custody.signing, archive_id=archive.archive_id, now=when)
            return existing
        info = next((p for p in periods(archive, master_versions=set(custody.versions())) if p.period == period),
                    None)
        if info is None:
            _refuse(archive, actor, period, "no data in this period", when)
            raise ArchiveError(f"period {period} holds no data of this archive")
        days = max(originals_days, MIN_ORIGINALS_DAYS)
        if info.expires(days) > when:
            reason = (f"records of {period} are kept at least {days} days after the period "
                      f"(until {format_ts(info.expires(days))})")
            _refuse(archive, actor, period, reason, when)
            raise PolicyDenied(reason, rule="retention.originals")
        holds = active_holds(archive)
        blocking = [h for h in holds if h.overlaps(info.start, info.end)]
        if blocking:
            reason = f"held by {', '.join(h.id for h in blocking)} (case {blocking[0].case}): a hold wins"
            _refuse(archive, actor, period, reason, when)
            raise PolicyDenied(reason, rule="legalhold")
        if info.master_wrapped:
            reason = (f"{info.master_wrapped} data key(s) of {period} are wrapped under a master-key version that "
                      "still exists (written before period keys): destroying the period key would not make them "
                      "unreadable; rotate the keys and retire the old version first")
            _refuse(archive, actor, period, reason, when)
            raise PolicyDenied(reason, rule="retention.shreddable")
        if period not in custody.period_keys():
            _refuse(archive, actor, period, "the custody holds no key of this period", when)
            raise ConfigError(f"the custody holds no key of period {period}")
        reason = f"retention: originals kept {days} days after the period; expired {format_ts(info.expires(days))}"
        body = _record_body(archive, info, actor=actor, approver=approver, reason=reason, holds_checked=len(holds),
                            when=when)
        archive.audit.append(actor, "retention.shred.start", period,
                             {"approver": approver, **body["totals"]}, now=when)
        record = DestructionRecord.build(body, custody.signing)
        path = archive.layout.destruction_record(period)
        make_dirs(path.parent)
        atomic_write(path, (json.dumps(record.to_json(), ensure_ascii=False, indent=1, sort_keys=True)
                            + "\n").encode())
        step("recorded")
        custody.destroy_period(period, now=when)
        step("destroyed")
        archive.audit.append(actor, "retention.shred", period,
                             {"approver": approver, "record_sha256": record.digest,
                              "window": body["window"], **body["totals"]}, now=when)
        archive.audit.checkpoint(custody.signing, archive_id=archive.archive_id, now=when)
        return record
