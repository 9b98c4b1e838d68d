"""Does the archive's audited state check out? What ``open`` asks before any key is released (issue #13, item 5).

    >>> record = HostRecord(Path("~/.investigator/verified").expanduser())      # doctest: +SKIP
    >>> report, head = check_audited_state(archive, since=record.load(archive))   # doctest: +SKIP
    >>> report.ok or report.problems[0]                                           # doctest: +SKIP
    'audit/log.jsonl: holds 310 entries; this host verified 342 on ... (log truncated or rolled back)'

Two checks, both without keys (docs/archive-format.md, "What open checks"):

- the audit log as a transparency log (:mod:`investigator.vault.tlog`):
  entries, Merkle tree, every checkpoint signed by the archive's key chain,
  the checkpoint file complete; resumed from what this host verified last
  (its :class:`HostRecord`, kept outside the archive), so a log rolled back
  below that, or rewritten, fails and an unchanged log costs one read of the
  appended bytes;
- the batches: every committed batch's signed manifest (the chain checked by
  :meth:`Archive.manifests`) is recorded by an ``ingest`` entry of the log
  with the same manifest hash, and every batch the log records is there.
  So deleting only the last batch, or planting one, fails even though each
  remaining manifest verifies.

The host record is kept per place: the archive id *and* the folder's absolute
path as given (not resolved, so replacing the folder by a link to an older copy
is still the same place). A rollback in place, or a copy rewritten in place, fails
against it. A copy in another folder is another place with a record of its own,
verified in full the first time: restoring a backup elsewhere, a second
analyst's copy, a restore rehearsal are legitimate, and they diverge from the
original as soon as they are opened (each opening appends to its own log), so
keying by archive id alone would call every such copy a rollback. A rollback
across places, or of log and archive together to a state this host never
verified, needs the witnesses outside the archive (issue #13, item 3). Not
checked here either: the decision files under ``org/``; the signed state heads
of item 2 plug in as ``checks`` (:data:`StateCheck`), which the key service
passes on from its ``state_checks``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from investigator.errors import AuditError, ConfigError, IntegrityError
from investigator.vault.audit import load_verified_head, save_verified_head
from investigator.vault.store import Archive
from investigator.vault.tlog import VerifiedHead
from investigator.verification import Verification

DEFAULT_VERIFIED_DIR = Path("~/.investigator/verified")

# one more check of the archive's state (issue #13, item 2: org/ against the newest signed head): it adds
# its problems to the report and never raises for what it finds
StateCheck = Callable[[Archive, Verification], None]


class HostRecord:
    """What this host verified of each archive folder: ``folder/<archive id>.<place>.json`` (outside any archive)."""

    def __init__(self, folder: Path | str | None) -> None:
        self.folder = Path(folder or DEFAULT_VERIFIED_DIR).expanduser()

    def __repr__(self) -> str:
        return f"HostRecord({str(self.folder)!r})"

    def path(self, archive: Archive) -> Path:
        """``folder/<archive id>.<place>.json``, place = SHA-256 of the folder's absolute path (first 16 hex).

        Raises ConfigError when the record folder lies inside the archive (the record must survive it).
        """
        root, where = archive.root.resolve(), self.folder.resolve()
        if where == root or root in where.parents:
            raise ConfigError(f"{self.folder}: inside the archive; the record of what this host verified must live "
                              "outside it", hint="unset INVESTIGATOR_VERIFIED_DIR (default ~/.investigator/verified) "
                                                 "or pick another folder")
        place = hashlib.sha256(os.path.abspath(archive.root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return self.folder / f"{archive.archive_id}.{place}.json"

    def load(self, archive: Archive) -> VerifiedHead | None:
        """The head verified last time (None: never). Raises AuditError for a damaged record."""
        return load_verified_head(self.path(archive))

    def save(self, archive: Archive, head: VerifiedHead) -> None:
        """Replace the record (atomically). Raises AuditError when it cannot be written."""
        save_verified_head(self.path(archive), head)


def _audited_batches(log: bytes) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """manifest hash -> (batch number, log line) of every ingest entry; and the problems of unreadable ones."""
    out: dict[str, tuple[int, int]] = {}
    problems: list[str] = []
    for number, line in enumerate(log.splitlines(), start=1):
        if b'"ingest"' not in line:
            continue  # cheap: only lines that may be ingest entries are parsed
        try:
            entry = json.loads(line)
            if entry.get("action") != "ingest":
                continue
            details = entry.get("details") or {}
            digest = details.get("manifest_sha256")
            if digest:
                out[str(digest)] = (int(details.get("batch") or 0), number)
        except (ValueError, TypeError, AttributeError):
            problems.append(f"audit/log.jsonl, line {number}: an ingest entry that does not parse")
    return out, problems


def check_batches(archive: Archive, log: bytes, report: Verification) -> None:
    """Committed batches against the log's ingest entries; each mismatch a problem naming batch and line."""
    audited, unreadable = _audited_batches(log)
    for problem in unreadable:
        report.problem(problem)
    try:
        manifests = archive.manifests()
    except IntegrityError as exc:
        report.problem(str(exc))
        return
    present = {m.digest: m.seq for m in manifests}
    for digest, (seq, line) in sorted(audited.items(), key=lambda item: item[1]):
        if digest not in present:
            report.problem(f"batches/{seq:08d}: recorded by the ingest entry at audit/log.jsonl line {line}, but no "
                           "committed batch has that manifest (batch deleted or replaced)")
    for manifest in manifests:
        if manifest.digest not in audited:
            report.problem(f"batches/{manifest.seq:08d}: committed, but no ingest entry of the audit log records it "
                           "(a batch planted, or its ingest entry removed; an interrupted ingest is recorded by the "
                           "next ingest)")
    report.counts["batches"] = len(manifests)


def check_audited_state(archive: Archive, *, since: VerifiedHead | None = None, now: datetime | None = None,
                        checks: Sequence[StateCheck] = ()) -> tuple[Verification, VerifiedHead | None]:
    """The audit log (resumed from ``since``), the batches and ``checks``; the report and, when ok, the head to keep.

    Never raises for what it finds: each problem names its file and position.
    Raises AuditError only when the audit files cannot be read at all.
    """
    try:
        keys = archive.signing_keys()
    except IntegrityError as exc:
        report = Verification("audited state")
        report.problem(str(exc))
        return report, None
    try:
        log = archive.audit.log_path.read_bytes()
    except FileNotFoundError:
        log = b""
    except OSError as exc:
        raise AuditError(f"{archive.audit.log_path}: cannot read the audit log ({exc.strerror})") from exc
    report, head = archive.audit.verify_from(keys, archive_id=archive.archive_id, since=since, now=now)
    report.subject = "audited state"
    report.problems[:] = [f"audit/{p}" if p.startswith(("log.jsonl", "checkpoints.jsonl")) else p
                          for p in report.problems]
    check_batches(archive, log, report)
    for check in checks:
        check(archive, report)
    return report, head if report.ok else None


__all__ = ["DEFAULT_VERIFIED_DIR", "HostRecord", "StateCheck", "check_audited_state", "check_batches"]
