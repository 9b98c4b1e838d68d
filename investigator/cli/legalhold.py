"""Legal hold commands (法律保全): add, release, list. Named apart from the circuit breaker's held bundles."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.cli.options import (archive_argument, as_person, echo_json, json_option, key_dir_option,
                                      parse_time, person_key, reason_option, unlock, utc_now)
from investigator.vault.store import Archive


@click.group()
def legalhold() -> None:
    """Legal holds (法律保全): add, release, list.

    Keep a time window from retention and shredding, on the archive and every target.

    \b
    A hold is signed by the person who adds it (legal or admin role); releasing it needs a person
    with the legal role and their TOTP code. While a hold is active no period meeting its window is
    crypto-shredded, no snapshot or object holding its data is forgotten or pruned, and backup runs
    set the S3 legal hold on those objects. All audited, refusals too.
    Examples:
      investigator legalhold add ./case-archive --case C-042 --start 2026-11-01 --end 2026-12-01 \\
          --conversation wx-group-7 --reason "labour arbitration" --as lixia
      investigator legalhold list ./case-archive
      investigator legalhold release ./case-archive HOLD-20261128-1a2b3c4d --as lixia --totp 123456 \\
          --reason "case closed"
    """


@legalhold.command("add")
@archive_argument
@click.option("--case", required=True, metavar="CASE", help="The case the hold is for.")
@click.option("--start", required=True, help="Start of the held window (ISO 8601; archive's zone without offset).")
@click.option("--end", required=True, help="End of the held window (exclusive).")
@click.option("--conversation", "conversations", multiple=True, metavar="ID", help="A conversation the hold is about.")
@click.option("--person", "persons", multiple=True, metavar="ID", help="A person the hold is about.")
@reason_option("Why (kept in the signed record).")
@as_person
@key_dir_option
@json_option
def add(archive: Path, case: str, start: str, end: str, conversations: tuple[str, ...], persons: tuple[str, ...],
        reason: str, as_id: str, key_dir: Path | None, as_json: bool) -> None:
    """Add a legal hold (设置法律保全).

    Signed with your personal key (legal or admin role).

    \b
    The whole window is kept (chunks mix conversations); --conversation / --person say what it is about.
    Example:
      investigator legalhold add ./case-archive --case C-042 --start 2026-11-01 --end 2026-12-01 \\
          --reason "labour arbitration" --as lixia
    """
    from investigator.backup.hold import add_hold

    opened = Archive.open(archive)
    zone = opened.config.zone
    hold = add_hold(opened, signer=(as_id, person_key(opened, as_id, key_dir)), case=case,
                    start=parse_time(start, zone, what="--start"), end=parse_time(end, zone, what="--end"),
                    reason=reason, conversations=conversations, persons=persons, now=utc_now())
    if as_json:
        echo_json(hold.summary())
        return
    click.echo(f"{hold.id}: hold for case {hold.case}, {hold.body['start']} .. {hold.body['end']} / 已保全")


@legalhold.command("release")
@archive_argument
@click.argument("hold_id", metavar="HOLD_ID")
@as_person
@click.option("--totp", required=True, help="Your current TOTP code (动态验证码).")
@reason_option("Why the hold ends (kept in the signed release).")
@key_dir_option
def release(archive: Path, hold_id: str, as_id: str, totp: str, reason: str, key_dir: Path | None) -> None:
    """Release a legal hold (解除法律保全).

    A person with the legal role, with a TOTP code, signs the release.

    \b
    The TOTP check needs the custody: run it where the master keys are (embedded mode, or the key
    server's host, like 'keys rotate').
    Example:
      investigator legalhold release ./case-archive HOLD-20261128-1a2b3c4d --as lixia --totp 123456 \\
          --reason "case closed"
    """
    from investigator.backup.hold import release_hold

    opened = Archive.open(archive)
    key = person_key(opened, as_id, key_dir)
    hold = release_hold(opened, unlock(opened, as_id), hold_id, signer=(as_id, key), totp=totp, reason=reason,
                        now=utc_now())
    click.echo(f"{hold.id} released by {as_id} / 已解除保全")


@legalhold.command("list")
@archive_argument
@click.option("--all", "show_all", is_flag=True, help="Released holds too.")
@json_option
def list_(archive: Path, show_all: bool, as_json: bool) -> None:
    """List legal holds, each verified (列出法律保全).

    Active ones; --all for released ones too.

    \b
    Example:
      investigator legalhold list ./case-archive --all
    """
    from investigator.backup.hold import load_holds

    holds = [h for h in load_holds(Archive.open(archive)) if show_all or h.active]
    if as_json:
        echo_json({"holds": [h.summary() for h in holds]})
        return
    if not holds:
        click.echo("no legal holds / 无保全")
    for hold in holds:
        state = "active" if hold.active else f"released {hold.release['body']['released']}" if hold.release else ""
        click.echo(f"{hold.id}  case {hold.case}  {hold.body['start']} .. {hold.body['end']}  {state}"
                   f"{'  PROBLEM: ' + hold.problem if hold.problem else ''}")


def register(group: click.Group) -> None:
    group.add_command(legalhold)
