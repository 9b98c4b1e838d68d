"""Request, grant and login commands: the retrieval authorization workflow (调取授权流程)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from investigator.vault.store import Archive
from investigator.errors import ConfigError
from investigator.cli.options import archive_argument, archive_passphrase, echo_json, json_option
from investigator.cli.people_cmds import _split_multi, key_dir_option, parse_time, person_key, utc_now
from investigator.custody.file import unlock_archive

PURPOSES = ("internal_audit", "legal_dispute", "regulatory_check", "customer_complaint")
as_person = click.option("--as", "as_id", required=True, metavar="ID",
                         help="Who acts (their personal key signs; passphrase from INVESTIGATOR_KEY_PASSPHRASE "
                              "or a prompt).")


@click.group()
def request() -> None:
    """Retrieval requests (电子证据调取申请单): file, approve, reject, show.

    \b
    Example:
      investigator request new ./case-archive --as sunli --case C-2026-017 --purpose customer_complaint \\
          --start 2026-11-18T14:00 --end 2026-11-18T17:00 --participant zhangwei \\
          --reason "complaint by 王芳" --consent CONSENT-2026-0042
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
@click.option("--consent", default="", help="Customer-consent reference (客户知情同意书), where the policy wants one.")
@click.option("--operator", default="", help="Who performs the retrieval, if not the requester (operator role).")
@click.option("--template", "templates", multiple=True, help="Limit the grant to a named report template.")
@key_dir_option
def new_cmd(archive: Path, as_id: str, case: str, purpose: str, start: str, end: str, conversations: tuple[str, ...],
            participants: tuple[str, ...], groups: tuple[str, ...], fields: tuple[str, ...], reason: str,
            legal_basis: str, consent: str, operator: str, templates: tuple[str, ...], key_dir: Path | None) -> None:
    """File a signed retrieval request; prints its id.

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
                         end=parse_time(end, zone, what="--end"), fields=_split_multi(fields), reason=reason,
                         now=utc_now(), conversations=conversations, participants=participants, groups=groups,
                         legal_basis=legal_basis, consent=consent, operator=operator, templates=templates)
    click.echo(signed.id)


def _decide(archive: Path, request_id: str, as_id: str, totp: str, note: str, key_dir: Path | None,
            decision: str) -> None:
    from investigator.authority.grants import approve

    opened = Archive.open(archive)
    signing_key = person_key(opened, as_id, key_dir)
    keys = unlock_archive(opened, archive_passphrase(), actor=as_id)
    result = approve(opened, keys, request_id, approver=as_id, signing_key=signing_key, totp=totp, now=utc_now(),
                     note=note, decision=decision)
    if decision == "reject":
        click.echo(f"{request_id} rejected by {as_id}")
    elif result.grant_path is not None:
        click.echo(f"{request_id} approved by {as_id}; grant issued: {result.grant_path.stem}")
        click.echo(f"  {result.grant_path}")
    else:
        click.echo(f"{request_id} approved by {as_id}; waiting: {result.decision.reason} ({result.decision.rule})")


@request.command("approve")
@archive_argument
@click.argument("request_id")
@as_person
@click.option("--totp", required=True, help="The approver's current TOTP code (动态验证码).")
@click.option("--note", default="", help="A note kept in the signed approval.")
@key_dir_option
def approve_cmd(archive: Path, request_id: str, as_id: str, totp: str, note: str, key_dir: Path | None) -> None:
    """Approve a request (signed, TOTP-checked); issues the grant once the policy is satisfied.

    \b
    Needs the archive passphrase too (INVESTIGATOR_PASSPHRASE): the embedded key service checks the code.
    Example:
      investigator request approve ./case-archive REQ-20261128-1a2b3c4d --as zhouzong --totp 123456
    """
    _decide(archive, request_id, as_id, totp, note, key_dir, "approve")


@request.command("reject")
@archive_argument
@click.argument("request_id")
@as_person
@click.option("--totp", required=True, help="The approver's current TOTP code.")
@click.option("--reason", required=True, help="Why the request is rejected.")
@key_dir_option
def reject_cmd(archive: Path, request_id: str, as_id: str, totp: str, reason: str, key_dir: Path | None) -> None:
    """Reject a request (signed, TOTP-checked, audited); it can no longer be granted.

    \b
    Example:
      investigator request reject ./case-archive REQ-20261128-1a2b3c4d --as zhouzong --totp 123456 --reason "too wide"
    """
    _decide(archive, request_id, as_id, totp, reason, key_dir, "reject")


@request.command("show")
@archive_argument
@click.argument("request_id")
@json_option
def show_request_cmd(archive: Path, request_id: str, as_json: bool) -> None:
    """Show a request, its status and its approvals.

    \b
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
    click.echo(json.dumps(out, ensure_ascii=False, indent=2, sort_keys=True))


@request.command("list")
@archive_argument
@json_option
def list_requests_cmd(archive: Path, as_json: bool) -> None:
    """List requests and their status.

    \b
    Example:
      investigator request list ./case-archive
    """
    from investigator.authority.grants import list_requests

    rows = list_requests(Archive.open(archive))
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']}  {row['status']:<8} {row['requester']:<10} {row['purpose']:<18} "
                   f"{row['start']} .. {row['end']}  case={row['case']}")


@click.group()
def grant() -> None:
    """Grants: verify, show, revoke.

    \b
    Example:
      investigator grant verify ./case-archive G-1a2b3c4d5e6f7a8b
    """


@grant.command("verify")
@archive_argument
@click.argument("grant_ref", metavar="GRANT")
@click.option("--as", "as_id", default="verifier", help="Who verifies (audit log).")
def verify_cmd(archive: Path, grant_ref: str, as_id: str) -> None:
    """Verify a grant with the archive's public material (exit code 9 if invalid or expired).

    \b
    GRANT is a grant id or a grant file. Example:
      investigator grant verify ./case-archive G-1a2b3c4d5e6f7a8b
    """
    from investigator.authority.grants import find_grant, load_grant

    opened = Archive.open(archive)
    checked = load_grant(find_grant(opened, grant_ref)).verify(opened, now=utc_now(), actor=as_id)
    start, end = checked.window
    click.echo(f"grant {checked.id}: valid until {checked.body['expiry']} -- {checked.operator} may retrieve "
               f"[{start.isoformat()}, {end.isoformat()}) fields={','.join(checked.fields)}")


@grant.command("show")
@archive_argument
@click.argument("grant_ref", metavar="GRANT")
@json_option
def show_grant_cmd(archive: Path, grant_ref: str, as_json: bool) -> None:
    """Show a grant's request, approvals and expiry (not verified: use 'grant verify').

    \b
    Example:
      investigator grant show ./case-archive G-1a2b3c4d5e6f7a8b --json
    """
    from investigator.authority.grants import find_grant, load_grant

    opened = Archive.open(archive)
    loaded = load_grant(find_grant(opened, grant_ref))
    if as_json:
        echo_json(loaded.to_json())
        return
    echo_json(loaded.summary())


@grant.command("revoke")
@archive_argument
@click.argument("grant_ref", metavar="GRANT")
@click.option("--reason", required=True)
@click.option("--as", "as_id", default=None, metavar="ADMIN", help="The admin who revokes (personal key).")
@key_dir_option
def revoke_cmd(archive: Path, grant_ref: str, reason: str, as_id: str | None, key_dir: Path | None) -> None:
    """Revoke a grant (admin-signed line in org/revocations.jsonl; audited).

    \b
    Example:
      investigator grant revoke ./case-archive G-1a2b3c4d5e6f7a8b --reason "case closed" --as wugang
    """
    from investigator.authority.grants import revoke_grant
    from investigator.cli.people_cmds import admin_signer

    opened = Archive.open(archive)
    grant_id = revoke_grant(opened, grant_ref, signer=admin_signer(opened, as_id, key_dir), reason=reason,
                            now=utc_now())
    click.echo(f"grant {grant_id} revoked")


def _session_file(archive_id: str, person_id: str, explicit: Path | None) -> Path:
    if explicit:
        return explicit
    return Path.home() / ".investigator" / "sessions" / archive_id / f"{person_id}.token"


@click.command()
@archive_argument
@as_person
@click.option("--totp", required=True, help="Current TOTP code.")
@click.option("--hours", type=click.IntRange(1, 24), default=None, help="Lifetime (default: the policy's, 8 h).")
@click.option("--session-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to keep the token (default ~/.investigator/sessions/<archive>/<id>.token).")
def login(archive: Path, as_id: str, totp: str, hours: int | None, session_file: Path | None) -> None:
    """Check a TOTP code and start a short-lived signed session (for later commands and papermill runs).

    \b
    The token is printed and kept in a file (mode 600); pass it as INVESTIGATOR_SESSION. Example:
      investigator login ./case-archive --as sunli --totp 123456
    """
    from investigator.authority.identity import login as do_login

    opened = Archive.open(archive)
    keys = unlock_archive(opened, archive_passphrase(), actor=as_id)
    token = do_login(opened, keys, as_id, totp=totp, now=utc_now(), hours=hours)
    path = _session_file(opened.archive_id, as_id, session_file)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    click.echo(token)
    click.echo(f"session saved to {path}", err=True)


@click.command()
@archive_argument
@as_person
@click.option("--session-file", type=click.Path(path_type=Path, dir_okay=False), default=None)
def logout(archive: Path, as_id: str, session_file: Path | None) -> None:
    """Revoke the saved session of a person.

    \b
    Example:
      investigator logout ./case-archive --as sunli
    """
    from investigator.authority.identity import revoke_session

    opened = Archive.open(archive)
    path = _session_file(opened.archive_id, as_id, session_file)
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{path}: no saved session") from exc
    revoke_session(opened, token, actor=as_id, now=utc_now())
    path.unlink()
    click.echo("session revoked")


def register(group: click.Group) -> None:
    group.add_command(request)
    group.add_command(grant)
    group.add_command(login)
    group.add_command(logout)
