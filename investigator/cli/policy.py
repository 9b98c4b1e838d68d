"""Policy commands: check a policy file, install it (signed), show it, explain a decision."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.authority.directory import DirectoryStore
from investigator.cli.options import (admin_option, admin_signer, archive_argument, echo_json, json_option,
                                      key_dir_option, parse_time, split_multi, utc_now)
from investigator.errors import ConfigError
from investigator.vault.store import Archive


@click.group()
def policy() -> None:
    """The access policy (访问策略), docs/policy.md.

    Roles, lookbacks, approvals, consent.

    \b
    Example:
      investigator policy check my-policy.toml
      investigator policy explain ./case-archive --person zhangwei --purpose customer_complaint \\
          --start 2026-11-18T14:00 --end 2026-11-18T17:00 --participant zhangwei --consent CONSENT-20261118-1a2b3c4d
    """


def _policy_text(file: Path) -> str:
    """The policy file's text; ConfigError naming the file when it is not UTF-8 (a TOML file always is)."""
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}); a policy file is TOML, which is UTF-8",
                          hint="save it as UTF-8 (e.g. iconv -f gbk -t utf-8)") from None


@policy.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check_cmd(file: Path) -> None:
    """Validate a policy file (检查策略文件).

    List every problem (exit code 2 if any).

    \b
    Example:
      investigator policy check investigator/default_policy.toml
    """
    from investigator.authority.policy import check_policy_text

    problems = check_policy_text(_policy_text(file))
    if problems:
        for problem in problems:
            click.echo(f"{file}: {problem}", err=True)
        raise ConfigError(f"{file}: {len(problems)} problem(s) in the policy")
    click.echo(f"{file}: valid policy")


@policy.command("default")
def default_cmd() -> None:
    """Print the packaged default policy (打印默认策略).

    The seed's tables, to copy and edit.

    \b
    Example:
      investigator policy default > policy.toml
    """
    from investigator.authority.policy import default_policy_text

    click.echo(default_policy_text(), nl=False)


@policy.command("set")
@archive_argument
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--note", default="", help="Why the policy changes (signed and audited).")
@admin_option
@key_dir_option
def set_cmd(archive: Path, file: Path, note: str, as_id: str | None, key_dir: Path | None) -> None:
    """Install a policy file (启用新版策略).

    It becomes the archive's next signed version.

    \b
    Bootstrap (before any admin is enrolled) with the archive passphrase, later --as ADMIN.
    Example:
      investigator policy set ./case-archive policy.toml --as wugang --note "two approvals for exports"
    """
    from investigator.authority.policy import PolicyStore

    text = _policy_text(file)  # before the key is unlocked: a file in another encoding is a typo, not a refusal
    opened = Archive.open(archive)
    signer = admin_signer(opened, as_id, key_dir)
    installed = PolicyStore(opened).install(text, signer=signer,
                                            directory=DirectoryStore(opened).load(), now=utc_now(), note=note)
    click.echo(f"policy version {installed.version} installed ({installed.source_sha256[:16]})")


@policy.command("show")
@archive_argument
@json_option
def show_cmd(archive: Path, as_json: bool) -> None:
    """Show the archive's policy (查看当前策略).

    Its signature is checked first.

    \b
    Example:
      investigator policy show ./case-archive
    """
    from investigator.authority.policy import PolicyStore
    from investigator.authority.policy.rules import MIN_ORIGINALS_DAYS

    opened = Archive.open(archive)
    installed = PolicyStore(opened).load(DirectoryStore(opened).load())
    if as_json:
        echo_json({"version": installed.version, "sha256": installed.source_sha256, "policy": installed.raw})
        return
    click.echo(f"policy version {installed.version} (sha256 {installed.source_sha256[:16]}), signature valid")
    for role in installed.roles.values():
        click.echo(f"  {role.name:<10} {role.label:<6} {role.kind:<8} lookback={role.lookback:<6} "
                   f"permissions={','.join(sorted(role.permissions - role.forbid))}")
    # what an auditor reads off the policy (docs/auditor.md): dual control, the retention floor, the witnesses
    retention = installed.raw.get("retention", {})
    click.echo(f"dual control / 双重验证: {', '.join(installed.dual_control_purposes) or '-'}")
    click.echo(f"retention / 保存周期: originals_days={retention.get('originals_days', MIN_ORIGINALS_DAYS)} "
               f"period={retention.get('period', 'quarter')}")
    click.echo(f"audit witnesses / 见证: {', '.join(installed.witnesses) or '- (none)'}")


@policy.command("explain")
@archive_argument
@click.option("--person", "person_id", required=True, help="Who asks.")
@click.option("--request", "request_id", default=None, help="An existing request id (instead of the options below).")
@click.option("--purpose", default="internal_audit", show_default=True)
@click.option("--start", default=None, help="Window start (archive time zone unless an offset is given).")
@click.option("--end", default=None, help="Window end (exclusive).")
@click.option("--conversation", "conversations", multiple=True)
@click.option("--participant", "participants", multiple=True)
@click.option("--group", "groups", multiple=True)
@click.option("--fields", "fields", multiple=True, help="metadata, content, attachments (comma or repeat).")
@click.option("--consent", default="")
@click.option("--operator", default="")
@click.option("--approver", "approvers", multiple=True, help="Also explain approval by this person (repeatable).")
@json_option
def explain_cmd(archive: Path, person_id: str, request_id: str | None, purpose: str, start: str | None,
                end: str | None, conversations: tuple[str, ...], participants: tuple[str, ...],
                groups: tuple[str, ...], fields: tuple[str, ...], consent: str, operator: str,
                approvers: tuple[str, ...], as_json: bool) -> None:
    """Explain an access decision (逐条解释授权决定).

    Show, for a person and a request, each rule consulted and the decision.

    \b
    Examples:
      investigator policy explain ./case-archive --person zhangwei --purpose customer_complaint \\
          --start 2026-11-01T00:00 --end 2026-11-02T00:00 --group 客服一组
      investigator policy explain ./case-archive --person sunli --request REQ-20261128-1a2b3c4d --approver zhouzong
    """
    from investigator.authority.grants import explain, load_request
    from investigator.authority.policy import Request

    opened = Archive.open(archive)
    now = utc_now()
    if request_id:
        req = load_request(opened, request_id).request
        person_id = req.requester
    else:
        if not (start and end):
            raise click.UsageError("give --request, or --start and --end")
        zone = opened.config.zone
        directory = DirectoryStore(opened).load()
        person = directory.person(person_id)
        live = person.current_key
        req = Request(id="EXPLAIN", archive_id=opened.archive_id, case="explain", purpose=purpose,
                      requester=person_id, key_id=live.key_id if live else "(none)",
                      start=parse_time(start, zone, what="--start"), end=parse_time(end, zone, what="--end"),
                      tz=opened.config.timezone, fields=split_multi(fields) or ("metadata", "content"),
                      reason="explain", created=now, operator=operator, conversations=conversations,
                      participants=participants, groups=groups, consent=consent)
    decisions = explain(opened, person_id, req, now=now, approvers=approvers)
    if as_json:
        echo_json([d.to_json() for d in decisions])
        return
    for decision in decisions:
        for check in decision.consulted:
            click.echo(f"  [{'pass' if check.passed else 'FAIL'}] {check.rule:<22} {check.detail}")
        verdict = "ALLOWED" if decision.allowed else "DENIED"
        click.echo(f"=> {verdict} by rule {decision.rule}: {decision.reason}\n")


def register(group: click.Group) -> None:
    group.add_command(policy)
