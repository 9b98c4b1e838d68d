"""Audit commands: verify the audit log as a transparency log, show its entries (no content access)."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.cli.options import (archive_argument, archive_pin, check_witness_options, echo_checks, echo_json,
                                     json_option, pin_options, witness_option)
from investigator.settings import VERIFIED_DIR_ENV
from investigator.vault.audit import load_verified_head, save_verified_head
from investigator.vault.audited_state import HostRecord
from investigator.vault.store import Archive
from investigator.verification import Verification


@click.group()
def audit() -> None:
    """Read and verify the audit log (查阅、校验审计日志).

    No content access."""


@audit.command("verify")
@archive_argument
@click.option("--full", is_flag=True,
              help="Recheck every entry and checkpoint, not only what was appended since this host last verified "
                   "(still compared with that record).")
@click.option("--verified-dir", "verified", type=click.Path(path_type=Path, file_okay=False), default=None,
              envvar=VERIFIED_DIR_ENV, show_envvar=True,
              help="Folder where this host records the last checkpoint it verified, one <archive id>.<place>.json "
                   "per archive folder (default: ~/.investigator/verified; shared with open and the key server). "
                   "Must be outside the archive.")
@click.option("--no-record", is_flag=True,
              help="Neither read nor update this host's record (a full check of the files alone).")
@pin_options
@witness_option
@json_option
def audit_verify(archive: Path, full: bool, verified: Path | None, no_record: bool, pin_pubkey: Path | None,
                 pin_fingerprint: str | None, witnesses: tuple[str, ...], as_json: bool) -> None:
    """Verify the audit log (校验审计日志).

    Check the audit log's entries, Merkle tree and signed checkpoints.

    \b
    Every checkpoint must be a note signed by the archive's key (its key
    chain; no personal key counts) whose root is the tree of the log's first
    entries, with a consistency proof from the checkpoint before it. Finds
    any edit, insertion, removal, reordering or truncation of the entries a
    checkpoint covers, and a missing, shortened or reordered checkpoint file.
    This host records the last checkpoint it verified outside the archive and
    starts from there next time; a log shorter than, or different from, what
    was verified then fails (rollback). Prints the first bad position.
    --witness PATH (repeatable; a folder or s3://bucket/prefix) also compares
    the log with what each witness holds, which catches a rollback of the
    archive and its log together to an earlier consistent state.
    Exit 0 when intact, 4 with each problem on stderr.

    \b
    Example:
      investigator audit verify ./case-archive
      investigator audit verify ./case-archive --full --fingerprint 3f5a...e1
      investigator audit verify ./case-archive --witness /mnt/other-disk/witness
    """
    from investigator.vault.verify import check_archive_pin

    pin = archive_pin(pin_pubkey, pin_fingerprint)
    opened = Archive.open(archive)
    # where this host keeps what it verified: --verified-dir, $INVESTIGATOR_VERIFIED_DIR, ~/.investigator/verified
    record = None if no_record else HostRecord(verified).path(opened)
    since = load_verified_head(record) if record is not None else None
    report, head = opened.audit.verify_from(opened.signing_keys(), archive_id=opened.archive_id, since=since,
                                            full=full)
    report.problems[:] = [f"audit/{p}" for p in report.problems]  # the pin's problems name their own file
    check_archive_pin(opened, pin, report)
    check_witness_options(opened, witnesses, report)
    if record is not None and head is not None and report.ok:
        save_verified_head(record, head)
        report.facts["verified_head"] = str(record)
    counts = report.counts
    heading = (f"{counts['entries']} entries, {counts['checkpoints']} checkpoints (last covers entry "
               f"{counts['last_checkpoint_seq']}; {counts['uncovered_entries']} after it not yet covered)")
    if "incremental_from_checkpoint" in report.facts and since is not None:
        heading += (f"; checked from checkpoint {since.checkpoints} (entry {since.size}), which this host verified "
                    f"on {since.verified_at}")
    elif since is not None:
        heading += f"; compared with what this host verified on {since.verified_at}"
    echo_checks(report, as_json=as_json, fail="FAIL ", err=True, heading=heading,
                summary="intact" if report.ok else f"{len(report.problems)} problem(s) found; {_first_bad(report)}")
    if not report.ok:
        raise SystemExit(4)


def _first_bad(report: Verification) -> str:
    entry, checkpoint = report.facts.get("first_bad_entry"), report.facts.get("first_bad_checkpoint")
    where = [f"log.jsonl line {entry} (entry {entry})"] if entry else []
    where += [f"checkpoints.jsonl line {checkpoint}"] if checkpoint else []
    return "first bad position: " + (" and ".join(where) if where else "see above")


@audit.command("show")
@archive_argument
@click.option("--action", default=None, help="Only entries of this action (ingest, request.new, unlock, key.release ...).")
@click.option("--actor", "who", default=None, help="Only entries by this actor.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0),
              help="Show the last N entries (0 = all).")
@json_option
def audit_show(archive: Path, action: str | None, who: str | None, limit: int, as_json: bool) -> None:
    """Show audit entries (查看审计记录).

    Who did what, when, allowed or refused, and why.

    \b
    Example:
      investigator audit show ./case-archive --action ingest --limit 10
    """
    every = list(Archive.open(archive).audit.entries())
    entries = [e for e in every if (action is None or e.action == action) and (who is None or e.actor == who)]
    # a typo'd name matches nothing and reads like "it never happened": say which names the log has
    for option, value, known in (("--action", action, {e.action for e in every}), ("--actor", who,
                                                                                   {e.actor for e in every})):
        if value is not None and value not in known:
            names = sorted(known)
            more = f" (and {len(names) - 40} more)" if len(names) > 40 else ""
            click.echo(f"note: no entry has {option} {value!r}; this log has: {', '.join(names[:40])}{more}",
                       err=True)
    if limit:
        entries = entries[-limit:]
    if as_json:
        echo_json([e.to_json() for e in entries])
        return
    for e in entries:
        reason = e.details.get("reason", "")
        click.echo(f"{e.seq:>6} {e.ts} {e.actor:<12} {e.action:<10} {e.outcome:<7} {e.target} {reason}".rstrip())


def register(main: click.Group) -> None:
    main.add_command(audit)
