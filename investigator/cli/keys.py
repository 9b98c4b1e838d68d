"""Master-key rotation commands (定期更新加密密钥)."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.cli.options import actor_option, archive_argument, default_actor, echo_json, json_option, unlock


@click.group()
def keys() -> None:
    """Master-key versions: status, rotation, retirement (admin; needs the archive passphrase)."""


@keys.command("status")
@archive_argument
@json_option
def status_cmd(archive: Path, as_json: bool) -> None:
    """Show master-key versions, what each wraps, and whether rotation is due.

    \b
    The key file's versions need no passphrase; a PKCS#11 or OpenBao custody is
    opened (its PIN / token from the environment; audited).
    Example:
      investigator keys status ./case-archive
    """
    from investigator.custody.registry import backend_of
    from investigator.custody.rotation import status
    from investigator.vault.store import Archive

    opened = Archive.open(archive)
    custody = None if backend_of(opened) == "file" else unlock(opened, default_actor(None))
    info = status(opened, custody=custody)
    if as_json:
        echo_json(info)
        return
    for row in info["versions"]:
        mark = "*" if row["version"] == info["current_version"] else " "
        click.echo(f"{mark} v{row['version']}  created {row['created']}  wraps {row['keys_wrapped']} keys")
    if info["rotation_due"]:
        click.secho(f"rotation due: the current master key is older than {info['rotate_after_days']} days",
                    fg="yellow")


@keys.command("rotate")
@archive_argument
@actor_option
def rotate_cmd(archive: Path, actor: str | None) -> None:
    """Add a master-key version and rewrap every data key under it (audited).

    \b
    Example:
      INVESTIGATOR_PASSPHRASE=... investigator keys rotate ./case-archive --as wugang
    """
    from investigator.custody.rotation import rotate
    from investigator.vault.store import Archive

    opened, who = Archive.open(archive), default_actor(actor)
    result = rotate(opened, unlock(opened, who), actor=who)
    click.echo(f"master key v{result.version} is current; {result.rewrapped} keys rewrapped under it")


@keys.command("retire")
@archive_argument
@click.option("--version", "version", type=int, required=True, help="The old master-key version to remove.")
@actor_option
def retire_cmd(archive: Path, version: int, actor: str | None) -> None:
    """Remove an old master-key version once no key depends on it (audited).

    \b
    Example:
      INVESTIGATOR_PASSPHRASE=... investigator keys retire ./case-archive --version 1 --as wugang
    """
    from investigator.custody.rotation import retire
    from investigator.vault.store import Archive

    opened, who = Archive.open(archive), default_actor(actor)
    retire(opened, unlock(opened, who), version=version, actor=who)
    click.echo(f"master key v{version} retired")


def register(main: click.Group) -> None:
    main.add_command(keys)
