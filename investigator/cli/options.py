"""Shared CLI option decorators, prompts and printers (as sqlite-utils shares its options).

    @click.command()
    @archive_argument
    @json_option
    def info(archive, as_json): ...

Also the helpers several command groups share: personal keys and admin signers
(people, policy, request, grant, login), time parsing, and the one printer of
verification results (archive, audit, report and bundle verify).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from investigator.authority.directory import Signer
from investigator.authority.identity import unlock_person_key
from investigator.errors import ConfigError
from investigator.settings import KEY_DIR_ENV, KEY_PASSPHRASE_ENV, KEYSERVER_ENV, PASSPHRASE_ENV
from investigator.vault.store import Archive
from investigator.verification import Verification
from investigator.custody.base import Custody
from investigator.custody.registry import backend_of, open_custody
from investigator.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

archive_argument = click.argument("archive", type=click.Path(path_type=Path, file_okay=False))
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
actor_option = click.option("--as", "actor", default=None, metavar="ID",
                            help="Who is acting (recorded in the audit log). Default: $USER.")
key_dir_option = click.option("--key-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
                              envvar=KEY_DIR_ENV, show_envvar=False,
                              help="Folder of personal key files (default: $INVESTIGATOR_KEY_DIR, else "
                                   "~/.investigator/keys/<archive id>).")
admin_option = click.option("--as", "as_id", default=None, metavar="ADMIN",
                            help="The admin who signs this change (personal key; passphrase from "
                                 "INVESTIGATOR_KEY_PASSPHRASE or a prompt). Omit only to bootstrap with the "
                                 "archive passphrase, before any admin is enrolled.")
keyserver_option = click.option("--keyserver", default=None, metavar="URL", envvar=KEYSERVER_ENV, show_envvar=True,
                                help="Go through this key server (default: $INVESTIGATOR_KEYSERVER): requests are "
                                     "signed with the acting person's key; no archive passphrase is read here.")
cafile_option = click.option("--cafile", default=None, type=click.Path(exists=True, dir_okay=False),
                             help="CA for an https key server.")
as_person = click.option("--as", "as_id", required=True, metavar="ID",
                         help="Who acts (their personal key signs; passphrase from INVESTIGATOR_KEY_PASSPHRASE "
                              "or a prompt).")


def _reason_given(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():  # 'required' lets --reason "" through: a signed revocation or hold saying nothing
        raise click.BadParameter("give the reason: it is kept in the signed record and the audit log")
    return value


def check_out_folder(path: Path, what: str) -> None:
    """ConfigError naming ``path`` unless it is (or can be made as) a folder this process can write; folders made
    to find out are removed again. Called before a TOTP code is spent or a run is audited."""
    missing, probe = [], Path(path).absolute()
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    made: list[Path] = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
        if not Path(path).is_dir() or not os.access(path, os.W_OK | os.X_OK):
            raise NotADirectoryError(errno.ENOTDIR, "not a writable folder")
    except OSError as exc:
        raise ConfigError(f"{path}: the {what} cannot be made or written ({exc.strerror or exc})",
                          hint="pass -o with a folder you can write") from None
    finally:
        for folder in reversed(made):
            folder.rmdir()


def reason_option(help_text: str) -> Callable[[F], F]:
    """A required, non-blank ``--reason`` (checked before any key or passphrase is read)."""
    return click.option("--reason", required=True, callback=_reason_given, help=help_text)




def pin_options(func: F) -> F:
    """``--pubkey FILE`` / ``--fingerprint HEX``: the archive key a verifier pins (see :func:`archive_pin`)."""
    func = click.option("--fingerprint", "pin_fingerprint", default=None, metavar="HEX",
                        help="Pin the archive's signing key: SHA-256 of its raw Ed25519 public key in hex "
                             "('investigator info --json' prints it as signing_key_fingerprint). A key chain "
                             "that does not root in it fails.")(func)
    return click.option("--pubkey", "pin_pubkey", default=None, metavar="FILE",
                        type=click.Path(path_type=Path, dir_okay=False, exists=True),
                        help="Pin the archive's signing key by a copy of ARCHIVE/keys/archive-signing.pub kept "
                             "out of band.")(func)


def witness_option(func: F) -> F:
    """``--witness PATH|s3://BUCKET/PREFIX`` (repeatable): compare the audit log with what each witness holds."""
    return click.option("--witness", "witnesses", multiple=True, metavar="PATH|s3://BUCKET/PREFIX",
                        help="A witness of this archive (a folder on another disk or host, or an Object-Locked "
                             "s3://bucket/prefix; repeatable): fails (exit 4) when a witness holds a larger tree "
                             "than the audit log or one the log is not consistent with (archive and log rolled back "
                             "together); checkpoints a witness lacks are reported.")(func)


def check_witness_options(archive: Archive, specs: tuple[str, ...], report: Verification) -> None:
    """Add what the witnesses ``specs`` say about ``archive``'s audit log to ``report`` (problems fail it)."""
    if not specs:
        return
    import investigator.backup  # noqa: F401  (registers s3:// witnesses)
    from investigator.vault.witness import check_witnesses, open_witness

    found = check_witnesses(archive.audit, archive.signing_keys().keys, archive.archive_id,
                            [open_witness(spec) for spec in specs])
    report.problems.extend(found.problems)
    report.warnings.extend(found.warnings)
    report.checked.extend(found.checked)
    report.facts["witnesses"] = found.counts


def archive_pin(pubkey: Path | None, fingerprint: str | None) -> str | None:
    """The pinned fingerprint from --pubkey or --fingerprint (None: unpinned). Raises ConfigError for both or a bad one."""
    from investigator.vault.verify import key_fingerprint, parse_fingerprint

    if pubkey is not None and fingerprint is not None:
        raise ConfigError("pass --pubkey or --fingerprint, not both")
    if fingerprint is not None:
        return parse_fingerprint(fingerprint)
    if pubkey is not None:
        from investigator.reports.signature import load_pubkey

        return key_fingerprint(load_pubkey(pubkey))
    return None


def default_actor(actor: str | None) -> str:
    import getpass

    return actor or getpass.getuser()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def archive_passphrase(*, confirm: bool = False, custodian: bool = False) -> str:
    """The archive passphrase from INVESTIGATOR_PASSPHRASE, else an interactive prompt.

    With INVESTIGATOR_KEYSERVER set this machine is a client of the key server:
    the passphrase is never read (ConfigError) unless ``custodian`` (the key
    server itself, the bootstrap ``init``).
    """
    if not custodian and os.environ.get(KEYSERVER_ENV):
        raise ConfigError(f"{command_path()} needs the archive's master keys, and {KEYSERVER_ENV} is set: "
                          "this client never reads the archive passphrase",
                          hint="run it on the key server's host (the custodian), where the custody is; "
                               "'investigator open' and open_case() go through the key server")
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    return click.prompt("Archive passphrase / 归档口令", hide_input=True, confirmation_prompt=confirm)


def command_path() -> str:
    """The running command as typed (``investigator request approve``), for the audit log's unlock entries."""
    ctx = click.get_current_context(silent=True)
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:  # the root's name depends on how it was started
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["investigator", *names])


def unlock(archive: Archive, actor: str, *, custodian: bool = False) -> Custody:
    """The master keys (embedded mode) through the archive's custody; audited with this command's name.

    The key file asks for the archive passphrase (INVESTIGATOR_PASSPHRASE, else a
    prompt); a PKCS#11 or OpenBao custody takes its PIN / token from the
    environment (investigator.settings) and never prompts for the passphrase.
    """
    return open_custody(archive, custody_secrets(archive, custodian=custodian), actor=actor, purpose=command_path())


def custody_secrets(archive: Archive, *, custodian: bool = False) -> Settings:
    """What the archive's custody needs, read here at the edge: the passphrase (key file; else a prompt), or the
    PKCS#11 PIN / OpenBao token from the environment. Refuses on a client of the key server (INVESTIGATOR_KEYSERVER)."""
    if not custodian and os.environ.get(KEYSERVER_ENV):
        archive_passphrase()  # refuses: a client of the key server holds no master keys, whatever the backend
    passphrase = archive_passphrase(custodian=custodian) if backend_of(archive) == "file" else None
    return Settings.from_environ(os.environ).with_passphrase(passphrase)


def key_server(url: str, person: str, key: Any, cafile: str | None = None) -> Any:
    """A client of the key server at ``url`` signing as ``person`` with their unlocked personal ``key``."""
    from investigator.access.client_auth import RequestSigner
    from investigator.access.keyserver import RemoteKeyService

    return RemoteKeyService(url, signer=RequestSigner(person, key), cafile=cafile)


def desk(archive: Archive, actor: str) -> Any:
    """The custodian's desk in this process (embedded mode): the custody unlocked here, audited."""
    from investigator.access.custodian import CustodianDesk

    return CustodianDesk(archive, unlock(archive, actor))


def open_and_unlock(path: Path, actor: str) -> tuple[Archive, Custody]:
    archive = Archive.open(path)
    return archive, unlock(archive, actor)


def personal_passphrase(person_id: str, *, env: str = KEY_PASSPHRASE_ENV, confirm: bool = False) -> str:
    """A personal key passphrase from ``env``, else a prompt."""
    value = os.environ.get(env)
    if value:
        return value
    return click.prompt(f"Passphrase of {person_id}'s personal key / 个人密钥口令", hide_input=True,
                        confirmation_prompt=confirm)


def person_key(archive: Archive, person_id: str, key_dir: Path | None) -> Any:
    """``person_id``'s unlocked personal signing key (people, policy, request and grant commands)."""
    return unlock_person_key(archive, person_id, personal_passphrase(person_id), key_dir=key_dir)


def signing_key(archive: Any, person: str, key_dir: Path | None) -> Any:
    """``person``'s unlocked signing key, for the report and bundle commands (their own prompt text)."""
    secret = os.environ.get(KEY_PASSPHRASE_ENV) or click.prompt(f"Passphrase of {person}'s signing key / 个人密钥口令",
                                                               hide_input=True)
    return unlock_person_key(archive, person, secret, key_dir=key_dir)


def admin_signer(archive: Archive, as_id: str | None, key_dir: Path | None) -> Signer:
    """The signer of an admin change: ``as_id``'s personal key, or the archive key (bootstrap)."""
    if as_id:
        key = person_key(archive, as_id, key_dir)
        url = os.environ.get(KEYSERVER_ENV)
        # a client holds no archive key: the key server signs the checkpoint after the change (issue #13)
        return Signer(as_id, key, notary=key_server(url, as_id, key) if url else None)
    keys = unlock(archive, "archive")
    return Signer.archive(keys.signing)


def parse_time(text: str, zone: ZoneInfo, *, what: str) -> datetime:
    """ISO 8601 time; without an offset it is read in ``zone`` (the archive's). Returns aware UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{what}: {text!r} is not an ISO 8601 time",
                          hint="e.g. 2026-11-18T14:20 (archive time zone) or 2026-11-18T06:20Z") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc)


def split_multi(values: tuple[str, ...]) -> tuple[str, ...]:
    """Values of a repeatable option, each of which may also be comma-separated."""
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, default=str))


def echo_checks(result: Verification, *, as_json: bool, summary: str, heading: str | None = None,
                fail: str = "  FAIL ", err: bool = False) -> None:
    """Print a verification result, or with ``as_json`` its ``to_json()``.

    The lines, in order: ``heading`` (if any); ``  ok   CHECK`` for each check made;
    ``warning: TEXT`` for each warning (yellow); ``{fail}PROBLEM`` for each problem
    (red, on stderr with ``err``); then ``summary``.
    """
    if as_json:
        echo_json(result.to_json())
        return
    if heading is not None:
        click.echo(heading)
    for line in result.checked:
        click.echo(f"  ok   {line}")
    for line in result.warnings:
        click.secho(f"warning: {line}", fg="yellow")
    for line in result.problems:
        click.secho(f"{fail}{line}", fg="red", err=err)
    click.echo(summary)
