"""Retention commands (保存周期): plan (a dry run: what would go, why) and apply (admin + legal, each with TOTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from investigator.cli.backup import _target
from investigator.cli.options import archive_argument, echo_json, json_option, unlock, utc_now
from investigator.vault.store import Archive

target_option = click.option("--target", "targets", multiple=True, metavar="TARGET",
                             help="A backup target to plan for too (folder or s3://bucket/prefix); repeatable.")


@click.group()
def retention() -> None:
    """Retention (保存周期): plan, apply.

    Originals >= 180 days, per-tier copies, snapshot keep rules; crypto-shredding.

    \b
    The policy's [retention] says how long originals are kept after their quarter (never less than
    180 days) and the snapshots' keep rules, counted back from today; copies keep their tier's
    retention_days. An expired quarter is crypto-shredded: its key is destroyed in the custody,
    which makes every copy unreadable, with a signed destruction record. A legal hold wins.
    Examples:
      investigator retention plan ./case-archive --target /mnt/cold/investigator
      investigator retention apply ./case-archive --target /mnt/cold/investigator \\
          --as wugang --totp 123456 --approver lixia --approver-totp 654321
    """


def _print_plan(plan: Any, as_json: bool) -> None:
    if as_json:
        echo_json(plan.to_json())
        return
    if not plan.items:
        click.echo("nothing to plan / 无")
    for item in plan.items:
        click.echo(f"{item.action:<14} {item.where}  {item.what}: {item.reason}")
    for problem in plan.problems:
        click.echo(f"PROBLEM: {problem}")


@retention.command("plan")
@archive_argument
@target_option
@json_option
def plan_cmd(archive: Path, targets: tuple[str, ...], as_json: bool) -> None:
    """Show what retention would remove and keep, and why (预览清理计划).

    Nothing is changed; no passphrase.

    \b
    Example:
      investigator retention plan ./case-archive --target s3://evidence-backup/case-archive --json
    """
    from investigator.backup.retention import plan_retention

    _print_plan(plan_retention(Archive.open(archive), [_target(t, existing=True) for t in targets], now=utc_now()),
                as_json)


@retention.command("apply")
@archive_argument
@target_option
@click.option("--as", "admin", required=True, metavar="ADMIN", help="The admin who applies retention.")
@click.option("--totp", required=True, help="The admin's current TOTP code.")
@click.option("--approver", required=True, metavar="LEGAL", help="A person with the legal role who approves.")
@click.option("--approver-totp", required=True, help="The approver's current TOTP code.")
@json_option
def apply_cmd(archive: Path, targets: tuple[str, ...], admin: str, totp: str, approver: str, approver_totp: str,
              as_json: bool) -> None:
    """Apply retention now (执行保存周期清理).

    Shred expired quarters, forget expired snapshots, prune their objects. Audited.

    \b
    Needs the custody (run it where the master keys are: embedded mode or the key server's host),
    an admin and a person with the legal role, each with a TOTP code.
    Example:
      investigator retention apply ./case-archive --target /mnt/cold/investigator \\
          --as wugang --totp 123456 --approver lixia --approver-totp 654321
    """
    from investigator.backup.retention import apply_retention, plan_retention

    chosen = [_target(t, existing=True) for t in targets]  # a missing folder is named before any key is unlocked
    opened = Archive.open(archive)
    custody = unlock(opened, admin)
    now = utc_now()
    plan = plan_retention(opened, chosen, now=now,
                          master_versions=set(custody.versions()))
    result = apply_retention(opened, custody, plan, admin=admin, admin_totp=totp, approver=approver,
                             approver_totp=approver_totp, now=now)
    out = {"shredded": result.shredded, "forgotten": result.forgotten, "pruned": result.pruned,
           "refused": result.refused}
    if as_json:
        echo_json(out)
        return
    click.echo(f"shredded {len(result.shredded)} period(s) {' '.join(result.shredded)}; forgot "
               f"{len(result.forgotten)} snapshot(s); pruned {result.pruned} object(s) / 已执行")
    for line in result.refused:
        click.echo(f"refused: {line}")


def register(group: click.Group) -> None:
    group.add_command(retention)
