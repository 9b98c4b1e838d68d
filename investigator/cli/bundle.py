"""Evidence bundle commands: export, release, verify (电子取证)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from investigator.cli.options import (cafile_option, custody_secrets, echo_checks, echo_json, json_option, key_dir_option,
                                      key_server, keyserver_option, signing_key)

# embedded mode: the circuit breaker's notifier commands this process may run (absolute paths, ':'-separated)
NOTIFIERS_ENV = "INVESTIGATOR_BREAKER_NOTIFIERS"


@click.group()
def bundle() -> None:
    """Evidence bundles (证据包): export, release, verify.

    Export under a grant, release, verify offline.

    \b
    Example:
      investigator bundle export --archive A --grant G --as sunli --totp 123456 -o case.zip
      investigator bundle verify case.zip --pubkey A/keys/archive-signing.pub
    """


@bundle.command("export")
@click.option("--archive", "archive_path", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--grant", required=True, help="Grant id or grant file.")
@click.option("--as", "person", required=True, metavar="ID", help="The grant's operator (needs the export permission).")
@click.option("--totp", default=None)
@click.option("--session", default=None)
@click.option("--ids", "ids_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Export only these message ids (one per line).")
@click.option("--prefix", default="EV", show_default=True, help="Evidence number prefix (EV-000001 ...).")
@key_dir_option
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path, dir_okay=False))
@keyserver_option
@cafile_option
@json_option
@click.pass_context
def export_cmd(ctx: click.Context, archive_path: Path, grant: str, person: str, totp: str | None,
               session: str | None, ids_file: Path | None, prefix: str, key_dir: Path | None, out: Path,
               keyserver: str | None, cafile: str | None, as_json: bool) -> None:
    """Export the grant's messages as a bundle (导出证据包).

    A signed, offline-verifiable bundle (zip).

    \b
    Held by the circuit breaker (personal data, a sensitive grant), the bundle stays in the
    archive until a legal reviewer runs 'investigator bundle release'; exit code 8 then, and the
    key service may lock accounts the policy names (yours too) and notify the security team.
    With --keyserver (or INVESTIGATOR_KEYSERVER) the case is opened and the bundle attested by the
    key server; no archive passphrase is read. In embedded mode the policy's notifier runs only if
    INVESTIGATOR_BREAKER_NOTIFIERS lists its command (absolute paths, separated by ':').
    Examples:
      investigator bundle export --archive A --grant G-1a2b --as sunli --totp 123456 --prefix ACME -o case.zip
      investigator bundle export --archive A --grant G-1a2b --as sunli --totp 123456 -o case.zip \
          --keyserver http://127.0.0.1:8765
    """
    from investigator.vault.store import Archive
    from investigator.reports.bundles import export_bundle
    from investigator.errors import PolicyDenied
    from investigator.settings import SESSION_ENV

    opened = Archive.open(archive_path)
    ids = None
    if ids_file:
        ids = [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    signer = signing_key(opened, person, key_dir)
    remote = key_server(keyserver, person, signer, cafile) if keyserver else None
    result = export_bundle(opened, grant=grant, person=person, signer=signer, keyserver=remote,
                           custody_secrets=None if remote else custody_secrets(opened), totp=totp,
                           session=session or (None if totp else os.environ.get(SESSION_ENV)), ids=ids,
                           prefix=prefix, out=out,
                           notifiers=[n for n in os.environ.get(NOTIFIERS_ENV, "").split(os.pathsep) if n])
    if as_json:
        echo_json({"bundle_id": result.bundle_id, "path": str(result.path), "items": result.items,
                   "held": result.held, "reasons": result.reasons, "missing": result.missing,
                   "lockdown": result.lockdown.to_json() if result.lockdown else None})
    elif result.held:
        click.secho(f"held by the circuit breaker (熔断): {'; '.join(result.reasons)}", fg="yellow")
        click.echo(f"bundle {result.bundle_id} kept in the archive; a legal reviewer releases it with:\n"
                   f"  investigator bundle release {result.bundle_id} --archive {archive_path} --as LEGAL -o {out}")
        _echo_lockdown(result.lockdown, person)
    else:
        click.echo(f"bundle {result.bundle_id}: {result.items} items -> {result.path}")
    if result.missing and not as_json:
        shown = ", ".join(result.missing[:5]) + (" ..." if len(result.missing) > 5 else "")
        click.secho(f"warning: {len(result.missing)} id(s) in {ids_file} name no message of the grant's window and "
                    f"scope; not exported: {shown}", fg="yellow", err=True)
    if result.held:
        ctx.exit(PolicyDenied.exit_code)


def _echo_lockdown(lockdown, person: str) -> None:
    """What the key service did beyond the hold: accounts locked, the security team's notifier."""
    if lockdown is None:
        return
    if lockdown.locked:
        click.secho(f"accounts locked / 已冻结账号: {', '.join(lockdown.locked)}"
                    + (" (including yours: an admin unlocks it with a reason / 包括您的账号, 需管理员说明理由解冻)"
                       if person in lockdown.locked else ""), fg="red")
    notify = lockdown.notify
    if notify.status == "ok":
        click.echo("security team notified / 已上报安全部门")
    elif notify.status != "none":
        detail = (f"exit {notify.exit_code}" if notify.exit_code is not None
                  else "not run: the key service does not allow its command" if notify.status == "not_allowed"
                  else notify.status)
        click.secho(f"the security team's notifier failed ({detail}); the hold and the locks stand — tell the "
                    f"security team yourself / 上报安全部门失败, 冻结与扣留仍然有效, 请另行上报", fg="yellow")


@bundle.command("release")
@click.argument("bundle_id")
@click.option("--archive", "archive_path", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--as", "person", required=True, metavar="ID", help="A legal reviewer (not the operator).")
@click.option("--note", required=True)
@key_dir_option
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path, dir_okay=False))
@keyserver_option
@cafile_option
def release_cmd(bundle_id: str, archive_path: Path, person: str, note: str, key_dir: Path | None, out: Path,
                keyserver: str | None, cafile: str | None) -> None:
    """Release a held bundle (放行被熔断扣留的证据包).

    A bundle the circuit breaker held; a legal reviewer signs the release.

    \b
    With --keyserver (or INVESTIGATOR_KEYSERVER) the key server attests the release.
    Example:
      investigator bundle release B-1a2b3c --archive A --as fawu --note "court order 2026-17" -o case.zip
    """
    from investigator.vault.store import Archive
    from investigator.reports.bundles import release_bundle

    opened = Archive.open(archive_path)
    signer = signing_key(opened, person, key_dir)
    remote = key_server(keyserver, person, signer, cafile) if keyserver else None
    path = release_bundle(opened, bundle_id, releaser=person, signer=signer, keyserver=remote,
                          custody_secrets=None if remote else custody_secrets(opened), note=note, out=out)
    click.echo(f"released: {path}")


@bundle.command("verify")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--pubkey", "pubkeys", multiple=True,
              type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Pin the archive's key by a trusted copy of ARCHIVE/keys/archive-signing.pub; repeatable.")
@click.option("--fingerprint", "pin_fingerprint", default=None, metavar="HEX",
              help="Pin the archive's key by its fingerprint (SHA-256 of the raw Ed25519 key in hex, "
                   "'investigator info --json': signing_key_fingerprint); the bundle's own key must match.")
@json_option
@click.pass_context
def verify_cmd(ctx: click.Context, path: Path, pubkeys: tuple[Path, ...], pin_fingerprint: str | None,
               as_json: bool) -> None:
    """Verify a bundle offline (离线校验证据包).

    No archive, no secret. Exit 0 when intact, 4 with each problem.

    \b
    Pin the archive's key with --pubkey or --fingerprint; without either, the key the
    bundle carries (archive.pub) is used and the output says so: a bundle re-signed with
    another key then passes, so pin when it matters.
    Examples:
      investigator bundle verify case.zip --pubkey archive-signing.pub
      investigator bundle verify case.zip --fingerprint 3f2a...(64 hex digits)
    """
    from investigator.errors import ConfigError, IntegrityError
    from investigator.reports.bundles import verify_bundle
    from investigator.reports.seal import load_pubkey
    from investigator.vault.verify import parse_fingerprint

    if pubkeys and pin_fingerprint is not None:
        raise ConfigError("pass --pubkey or --fingerprint, not both")
    pin = parse_fingerprint(pin_fingerprint) if pin_fingerprint is not None else None
    result = verify_bundle(path, pubkeys=[load_pubkey(p) for p in pubkeys], pin=pin)
    echo_checks(result, as_json=as_json, summary=f"{path}: {'intact' if result.ok else 'NOT INTACT'} ({result.counts['items']} items)")
    if not result.ok:
        ctx.exit(IntegrityError.exit_code)


def register(main: click.Group) -> None:
    main.add_command(bundle)
