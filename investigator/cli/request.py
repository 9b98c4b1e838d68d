"""Request commands: file, approve, reject, show and list retrieval requests (调取授权流程)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from investigator.cli.options import (archive_argument, as_person, cafile_option, desk, echo_json, json_option,
                                      key_dir_option, key_server, keyserver_option, parse_time, person_key,
                                      reason_option, split_multi, utc_now)
from investigator.cli.case import shown_time, shown_times, utc_option
from investigator.vault.store import Archive

PURPOSES = ("internal_audit", "legal_dispute", "regulatory_check", "customer_complaint")


@click.group()
def request() -> None:
    """Retrieval requests (电子证据调取申请单).

    File, approve, reject, show, list.

    \b
    Example:
      investigator request new ./case-archive --as sunli --case C-2026-017 --purpose customer_complaint \\
          --start 2026-11-18T14:00 --end 2026-11-18T17:00 --participant zhangwei \\
          --reason "complaint by 王芳" --consent CONSENT-20261118-1a2b3c4d
      investigator request approve ./case-archive REQ-20261128-1a2b3c4d --as zhouzong --totp 123456
    """


@request.command("new")
@archive_argument
@as_person
@click.option("--case", required=True, help="Case number.")
@click.option("--purpose", required=True, type=click.Choice(PURPOSES))
@click.option("--start", required=True, help="Window start, inclusive (archive time zone unless an offset is given).")
@click.option("--end", required=True, help="Window end, exclusive.")
@click.option("--conversation", "conversations", multiple=True, help="Limit to a conversation id (repeatable).")
@click.option("--participant", "participants", multiple=True, help="Limit to a participant (repeatable).")
@click.option("--group", "groups", multiple=True, help="Limit to a group / team (repeatable).")
@click.option("--fields", "fields", multiple=True, default=("metadata,content",), show_default=True,
              help="metadata, content, attachments (comma-separated or repeated).")
@click.option("--reason", required=True, help="Why the records are needed.")
@click.option("--legal-basis", default="", help="Legal basis (e.g. 劳动合同第12条, 网络安全法).")
@click.option("--consent", default="",
              help="A registered consent id (客户知情同意书, from 'investigator consent add'), where the policy wants one.")
@click.option("--operator", default="", help="Who performs the retrieval, if not the requester (operator role).")
@click.option("--template", "templates", multiple=True, help="Limit the grant to a named report template.")
@key_dir_option
def new_cmd(archive: Path, as_id: str, case: str, purpose: str, start: str, end: str, conversations: tuple[str, ...],
            participants: tuple[str, ...], groups: tuple[str, ...], fields: tuple[str, ...], reason: str,
            legal_basis: str, consent: str, operator: str, templates: tuple[str, ...], key_dir: Path | None) -> None:
    """File a signed retrieval request (提交调取申请); prints its id.

    \b
    The window is [start, end). Example:
      investigator request new ./case-archive --as zhaomin --case C-7 --purpose internal_audit \\
          --start 2026-11-24T08:30 --end 2026-11-24T09:15 --conversation g-cs-team --reason "..."
    """
    from investigator.authority.grants import new_request

    opened = Archive.open(archive)
    zone = opened.config.zone
    signed = new_request(opened, requester=as_id, signing_key=person_key(opened, as_id, key_dir), case=case,
                         purpose=purpose, start=parse_time(start, zone, what="--start"),
                         end=parse_time(end, zone, what="--end"), fields=split_multi(fields), reason=reason,
                         now=utc_now(), conversations=conversations, participants=participants, groups=groups,
                         legal_basis=legal_basis, consent=consent, operator=operator, templates=templates)
    click.echo(signed.id)


def _decide(archive: Path, request_id: str, as_id: str, totp: str, note: str, key_dir: Path | None,
            decision: str, keyserver: str | None, cafile: str | None) -> None:
    from investigator.authority.grants import load_request

    opened = Archive.open(archive)
    signing = person_key(opened, as_id, key_dir)
    if keyserver:  # the approval is signed here; the code is checked and the grant issued on the key server
        outcome = key_server(keyserver, as_id, signing, cafile).decide(
            request_id, request_hash=load_request(opened, request_id).hash, decision=decision, totp=totp, note=note,
            signing_key=signing)
    else:
        outcome = desk(opened, as_id).decide(request_id, approver=as_id, signing_key=signing, totp=totp, note=note,
                                             decision=decision)
    if decision == "reject":
        click.echo(f"{request_id} rejected by {as_id}")
    elif outcome.grant_id is not None:
        click.echo(f"{request_id} approved by {as_id}; grant issued: {outcome.grant_id}")
        click.echo(f"  {opened.layout.grant(outcome.grant_id)}")
    else:
        click.echo(f"{request_id} approved by {as_id}; waiting: {outcome.reason} ({outcome.rule})")


@request.command("approve")
@archive_argument
@click.argument("request_id")
@as_person
@click.option("--totp", required=True, help="The approver's current TOTP code (动态验证码).")
@click.option("--note", default="", help="A note kept in the signed approval.")
@key_dir_option
@keyserver_option
@cafile_option
def approve_cmd(archive: Path, request_id: str, as_id: str, totp: str, note: str, key_dir: Path | None,
                keyserver: str | None, cafile: str | None) -> None:
    """Approve a request (批准调取申请).

    Signed, TOTP-checked; issues the grant once the policy is satisfied.

    \b
    With --keyserver (or INVESTIGATOR_KEYSERVER) the approval is signed here and the code checked on the
    key server; no archive passphrase is read. Without one (embedded mode, one trusted machine) the
    archive passphrase (INVESTIGATOR_PASSPHRASE) unlocks the custody here.
    Examples:
      investigator request approve ./case-archive REQ-20261128-1a2b3c4d --as zhouzong --totp 123456
      investigator request approve ./case-archive REQ-20261128-1a2b3c4d --as zhouzong --totp 123456 \
          --keyserver https://keys.example:8765 --cafile ca.pem
    """
    _decide(archive, request_id, as_id, totp, note, key_dir, "approve", keyserver, cafile)


@request.command("reject")
@archive_argument
@click.argument("request_id")
@as_person
@click.option("--totp", required=True, help="The approver's current TOTP code.")
@reason_option("Why the request is rejected.")
@key_dir_option
@keyserver_option
@cafile_option
def reject_cmd(archive: Path, request_id: str, as_id: str, totp: str, reason: str, key_dir: Path | None,
               keyserver: str | None, cafile: str | None) -> None:
    """Reject a request (驳回调取申请).

    Signed, TOTP-checked, audited; it can no longer be granted.

    \b
    Example:
      investigator request reject ./case-archive REQ-20261128-1a2b3c4d --as zhouzong --totp 123456 --reason "too wide"
    """
    _decide(archive, request_id, as_id, totp, reason, key_dir, "reject", keyserver, cafile)


@request.command("show")
@archive_argument
@click.argument("request_id")
@utc_option
@json_option
def show_request_cmd(archive: Path, request_id: str, in_utc: bool, as_json: bool) -> None:
    """Show a request, its status and its approvals (查看调取申请).

    \b
    Times are shown in the archive's time zone with their offset; --utc shows UTC (--json is always UTC).
    Example:
      investigator request show ./case-archive REQ-20261128-1a2b3c4d
    """
    from investigator.authority.grants import load_request, request_approvals, request_status

    opened = Archive.open(archive)
    signed = load_request(opened, request_id)
    approvals = [a.body for a in request_approvals(opened, request_id)]
    out = {"request": signed.body, "status": request_status(opened, request_id), "approvals": approvals}
    if as_json:
        echo_json(out)
        return
    click.echo(json.dumps(shown_times(out, opened.config.timezone, utc=in_utc), ensure_ascii=False, indent=2,
                          sort_keys=True))


@request.command("list")
@archive_argument
@utc_option
@json_option
def list_requests_cmd(archive: Path, in_utc: bool, as_json: bool) -> None:
    """List requests and their status (列出调取申请).

    Times in the archive's zone; --utc for UTC.

    \b
    Example:
      investigator request list ./case-archive
    """
    from investigator.authority.grants import list_requests

    opened = Archive.open(archive)
    rows = list_requests(opened)
    if as_json:
        echo_json(rows)
        return
    zone = opened.config.timezone
    for row in rows:
        click.echo(f"{row['id']}  {row['status']:<8} {row['requester']:<10} {row['purpose']:<18} "
                   f"{shown_time(row['start'], zone, utc=in_utc)} .. {shown_time(row['end'], zone, utc=in_utc)}"
                   f"  case={row['case']}")


def register(group: click.Group) -> None:
    group.add_command(request)
