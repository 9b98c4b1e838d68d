"""Grant commands: verify, show and revoke the grants that approved requests issue."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.cli.options import (admin_signer, archive_argument, archive_pin, echo_json, json_option,
                                      key_dir_option, pin_options, reason_option, utc_now)
from investigator.vault.store import Archive


@click.group()
def grant() -> None:
    """Grants (调取授权): verify, show, revoke.

    \b
    Example:
      investigator grant verify ./case-archive G-1a2b3c4d5e6f7a8b
    """


@grant.command("verify")
@archive_argument
@click.argument("grant_ref", metavar="GRANT")
@click.option("--as", "as_id", default="verifier", help="Who verifies (audit log).")
@pin_options
def verify_cmd(archive: Path, grant_ref: str, as_id: str, pin_pubkey: Path | None, pin_fingerprint: str | None) -> None:
    """Verify a grant (校验授权).

    With the archive's public material (exit code 9 if invalid or expired).

    \b
    GRANT is a grant id or a grant file. Exit code 4 when the grant file cannot be read
    (named with the position) or the archive's key does not root in the pinned one
    (--pubkey / --fingerprint); without a pin the archive's own key is trusted, and the
    output says so. Example:
      investigator grant verify ./case-archive G-1a2b3c4d5e6f7a8b --fingerprint 3f2a...
    """
    from investigator.authority.grants import find_grant, load_grant
    from investigator.errors import GrantInvalid, IntegrityError

    pin = archive_pin(pin_pubkey, pin_fingerprint)
    opened = Archive.open(archive)
    path = find_grant(opened, grant_ref)
    try:
        loaded = load_grant(path)
    except GrantInvalid as exc:  # not a grant file at all: hostile or damaged input, not a decision
        raise IntegrityError(str(exc)) from None
    checked = loaded.verify(opened, now=utc_now(), actor=as_id, pin=pin)
    start, end = checked.window
    click.echo(f"grant {checked.id}: valid until {checked.body['expiry']} -- {checked.operator} may retrieve "
               f"[{start.isoformat()}, {end.isoformat()}) fields={','.join(checked.fields)}")
    if pin is None:
        click.secho("note: the archive's signing key was taken from the archive itself (archive.toml), not pinned: "
                    "pass --pubkey FILE or --fingerprint HEX", fg="yellow")
    else:
        click.echo(f"  ok   signing key pinned: the archive's key chain roots in {pin[:16]}...")


@grant.command("show")
@archive_argument
@click.argument("grant_ref", metavar="GRANT")
@json_option
def show_grant_cmd(archive: Path, grant_ref: str, as_json: bool) -> None:
    """Show a grant's request, approvals and expiry (查看授权).

    Not verified: use 'grant verify'.

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
@reason_option("Why (kept in the signed revocation and the audit log).")
@click.option("--as", "as_id", default=None, metavar="ADMIN", help="The admin who revokes (personal key).")
@key_dir_option
def revoke_cmd(archive: Path, grant_ref: str, reason: str, as_id: str | None, key_dir: Path | None) -> None:
    """Revoke a grant (撤销授权).

    An admin-signed line in org/revocations.jsonl; audited.

    \b
    Example:
      investigator grant revoke ./case-archive G-1a2b3c4d5e6f7a8b --reason "case closed" --as wugang
    """
    from investigator.authority.grants import revoke_grant

    opened = Archive.open(archive)
    grant_id = revoke_grant(opened, grant_ref, signer=admin_signer(opened, as_id, key_dir), reason=reason,
                            now=utc_now())
    click.echo(f"grant {grant_id} revoked")


def register(group: click.Group) -> None:
    group.add_command(grant)
