"""Audit commands: verify the audit log's chain and checkpoints, show its entries (no content access)."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.authority.directory import DirectoryStore
from investigator.cli.options import archive_argument, echo_checks, echo_json, json_option
from investigator.vault.store import Archive


@click.group()
def audit() -> None:
    """Read and verify the audit log (no content access)."""


@audit.command("verify")
@archive_argument
@json_option
def audit_verify(archive: Path, as_json: bool) -> None:
    """Check the audit log's hash chain and signed checkpoints.

    \b
    Finds any edit, insertion, deletion or truncation up to the last checkpoint.
    Example:
      investigator audit verify ./case-archive
    """
    opened = Archive.open(archive)
    keys = opened.signing_keys().by_id()
    keys.update(_person_keys(opened))
    report = opened.audit.verify(keys)
    counts = report.counts
    echo_checks(report, as_json=as_json, fail="FAIL audit/", err=True,
                heading=f"{counts['entries']} entries, {counts['checkpoints']} checkpoints (last covers "
                        f"entry {counts['last_checkpoint_seq']})",
                summary="intact" if report.ok else f"{len(report.problems)} problem(s) found")
    if not report.ok:
        raise SystemExit(4)


def _person_keys(archive: Archive) -> dict:
    """Public keys of enrolled people, who may also sign checkpoints (empty before anyone is enrolled)."""
    if not DirectoryStore(archive).exists():
        return {}
    return DirectoryStore(archive).load().public_keys()


@audit.command("show")
@archive_argument
@click.option("--action", default=None, help="Only entries of this action (ingest, request.new, unlock, key.release ...).")
@click.option("--actor", "who", default=None, help="Only entries by this actor.")
@click.option("--limit", default=50, show_default=True, help="Show the last N entries (0 = all).")
@json_option
def audit_show(archive: Path, action: str | None, who: str | None, limit: int, as_json: bool) -> None:
    """Show audit entries (who did what, when, allowed or refused, and why).

    \b
    Example:
      investigator audit show ./case-archive --action ingest --limit 10
    """
    entries = [e for e in Archive.open(archive).audit.entries()
               if (action is None or e.action == action) and (who is None or e.actor == who)]
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
