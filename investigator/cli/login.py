"""Login and logout: short-lived signed sessions after a TOTP check."""

from __future__ import annotations

import os
from pathlib import Path

import click

from investigator.cli.options import (archive_argument, as_person, cafile_option, desk, key_dir_option, key_server,
                                      keyserver_option, person_key, utc_now)
from investigator.errors import ConfigError
from investigator.vault.store import Archive


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
@key_dir_option
@keyserver_option
@cafile_option
def login(archive: Path, as_id: str, totp: str, hours: int | None, session_file: Path | None, key_dir: Path | None,
          keyserver: str | None, cafile: str | None) -> None:
    """Log in with a TOTP code (动态验证码登录).

    Check a TOTP code and start a short-lived signed session (for later commands and papermill runs).

    \b
    The token is printed and kept in a file (mode 600); pass it as INVESTIGATOR_SESSION.
    With --keyserver (or INVESTIGATOR_KEYSERVER) the request is signed with your personal key
    (INVESTIGATOR_KEY_PASSPHRASE or a prompt) and the code checked on the key server; no archive
    passphrase is read. Examples:
      investigator login ./case-archive --as sunli --totp 123456
      investigator login ./case-archive --as sunli --totp 123456 --keyserver http://127.0.0.1:8765
    """
    opened = Archive.open(archive)
    path = _session_file(opened.archive_id, as_id, session_file)
    existed = path.exists()
    try:  # opened before the code is checked: a file that cannot be written must not cost a single-use code
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the session file ({exc.strerror or exc})",
                          hint="pass --session-file in a folder you can write") from None
    with os.fdopen(fd, "w") as handle:
        try:
            if keyserver:
                token = key_server(keyserver, as_id, person_key(opened, as_id, key_dir), cafile).login(totp=totp,
                                                                                                     hours=hours)
            else:
                token = desk(opened, as_id).login(as_id, totp=totp, hours=hours)
        except BaseException:
            if not existed:
                path.unlink(missing_ok=True)
            raise
        handle.truncate(0)
        handle.write(token + "\n")
    click.echo(token)
    click.echo(f"session saved to {path}", err=True)


@click.command()
@archive_argument
@as_person
@click.option("--session-file", type=click.Path(path_type=Path, dir_okay=False), default=None)
def logout(archive: Path, as_id: str, session_file: Path | None) -> None:
    """Revoke the saved session of a person (退出登录).

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
    group.add_command(login)
    group.add_command(logout)
