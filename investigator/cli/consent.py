"""Consent commands: register, list, show and verify signed customer consents (客户知情同意书)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from investigator.cli.options import (archive_argument, as_person, echo_json, json_option, key_dir_option,
                                      open_and_unlock, person_key, utc_now)
from investigator.settings import KEYSERVER_ENV
from investigator.vault.store import Archive


def _echo_record(summary: dict[str, Any]) -> None:
    click.echo(f"{summary['id']}  case={summary['case']}  customer={summary['customer']}  "
               f"uploader={summary['uploader']}  {summary['created']}")
    click.echo(f"  file: {summary['name']} ({summary['media_type']}, {summary['size']} bytes)")
    click.echo(f"  sha256: {summary['sha256']}")


@click.group()
def consent() -> None:
    """Customer consents (客户知情同意书, 电子签名版).

    Register, list, show, verify.

    \b
    A request whose purpose needs consent (policy [consent] purposes) must name a
    registered consent of its case: --consent CONSENT-... (docs/policy.md).
    Example:
      investigator consent add ./case-archive 王芳-知情同意书.pdf --case C-2026-017 --customer wangfang --as sunli
      investigator request new ./case-archive --as sunli --case C-2026-017 --purpose customer_complaint \\
          --start 2026-11-18T14:00 --end 2026-11-18T17:00 --participant zhangwei \\
          --reason "complaint by 王芳" --consent CONSENT-20261128-1a2b3c4d
    """


@consent.command("add")
@archive_argument
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--case", required=True, help="Case number the consent is for (requests of this case may use it).")
@click.option("--customer", required=True, metavar="ID", help="The customer who consented (customer id).")
@as_person
@click.option("--keyserver", default=None, metavar="URL", envvar=KEYSERVER_ENV, show_envvar=True,
              help="Get the file's key from this key server (default: $INVESTIGATOR_KEYSERVER); no archive "
                   "passphrase is read here.")
@click.option("--cafile", default=None, type=click.Path(exists=True, dir_okay=False), help="CA for an https key server.")
@key_dir_option
@json_option
def add_cmd(archive: Path, file: Path, case: str, customer: str, as_id: str, keyserver: str | None,
            cafile: str | None, key_dir: Path | None, as_json: bool) -> None:
    """Register a signed customer consent (登记知情同意书).

    Prints its CONSENT-... id.

    \b
    The file is stored encrypted (AES-256-GCM, under a fresh key sealed by the
    archive's custody); the record holds its SHA-256, size, name and media type,
    the case, the customer, the uploader and the time, signed with the uploader's
    personal key. Embedded mode needs the archive passphrase too
    (INVESTIGATOR_PASSPHRASE); with --keyserver (or INVESTIGATOR_KEYSERVER) the
    server makes and seals the file's key and the passphrase is never read.
    Example:
      investigator consent add ./case-archive 王芳-知情同意书.pdf --case C-2026-017 --customer wangfang --as sunli
    """
    from investigator.authority.consent import add_consent

    opened = Archive.open(archive)
    signing_key = person_key(opened, as_id, key_dir)
    keys: Any
    if keyserver:
        from investigator.access.client_auth import RequestSigner
        from investigator.access.keyserver import RemoteKeyService

        keys = RemoteKeyService(keyserver, signer=RequestSigner(as_id, signing_key), cafile=cafile,
                                archive_id=opened.archive_id)
    else:
        _, keys = open_and_unlock(archive, as_id)
    record = add_consent(opened, keys, file, case=case, customer=customer, uploader=as_id, signing_key=signing_key,
                         now=utc_now())
    if as_json:
        echo_json(record.summary())
        return
    click.echo(record.id)
    click.echo(f"  registered consent (客户知情同意书) for case {record.case}, customer {record.customer}: "
               f"{record.file.get('name')} sha256={record.sha256[:16]}... signed by {record.uploader}", err=True)


@consent.command("list")
@archive_argument
@click.option("--case", default=None, help="Only the consents of this case.")
@json_option
def list_cmd(archive: Path, case: str | None, as_json: bool) -> None:
    """List registered consents (列出已登记的知情同意书).

    Metadata only; signatures are checked by 'consent verify' and by requests.

    \b
    Example:
      investigator consent list ./case-archive --case C-2026-017
    """
    from investigator.authority.consent import list_consents

    rows = [r.summary() for r in list_consents(Archive.open(archive), case=case)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no consents registered" + (f" for case {case}" if case else "") + " / 无已登记的知情同意书")
    for row in rows:
        click.echo(f"{row['id']}  case={row['case']:<16} customer={row['customer']:<12} "
                   f"uploader={row['uploader']:<10} {row['created']}  {row['size']} bytes  "
                   f"sha256={row['sha256'][:16]}...")


@consent.command("show")
@archive_argument
@click.argument("consent_id", metavar="ID")
@json_option
def show_cmd(archive: Path, consent_id: str, as_json: bool) -> None:
    """Show one consent record's metadata (查看知情同意书信息).

    Never the file's content.

    \b
    Example:
      investigator consent show ./case-archive CONSENT-20261128-1a2b3c4d
    """
    from investigator.authority.consent import load_consent

    summary = load_consent(Archive.open(archive), consent_id).summary()
    if as_json:
        echo_json(summary)
        return
    _echo_record(summary)
    click.echo(f"  record hash: {summary['record_hash']}  (signed with key {summary['key_id']})")


@consent.command("verify")
@archive_argument
@click.argument("consent_id", metavar="ID")
@click.option("--file", "file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The consent file to compare with the registered one.")
@click.option("--as", "as_id", default="verifier", help="Who verifies (audit log).")
@json_option
def verify_cmd(archive: Path, consent_id: str, file: Path, as_id: str, as_json: bool) -> None:
    """Check a file against a registered consent (核对知情同意书).

    Its hash and the uploader's signature (exit code 4 if not).

    \b
    Needs no passphrase. Example:
      investigator consent verify ./case-archive CONSENT-20261128-1a2b3c4d --file 王芳-知情同意书.pdf
    """
    from investigator.authority.consent import verify_consent_file
    from investigator.authority.directory import DirectoryStore
    from investigator.errors import IntegrityError

    opened = Archive.open(archive)
    record, passed, problems = verify_consent_file(opened, consent_id, file, directory=DirectoryStore(opened).load(),
                                                   actor=as_id, now=utc_now())
    if as_json:
        echo_json({"ok": not problems, "consent": record.summary(), "checked": passed, "problems": problems})
    else:
        for line in passed:
            click.echo(f"  ok   {line}")
        for line in problems:
            click.secho(f"  FAIL {line}", fg="red")
    if problems:
        raise IntegrityError(f"{file.name} does not match consent {consent_id} / 与已登记的知情同意书不符")
    if not as_json:
        click.echo(f"{file.name} matches consent {consent_id} (case {record.case}) / 与已登记的知情同意书一致")


def register(group: click.Group) -> None:
    group.add_command(consent)
