"""Shared CLI option decorators and prompts (as sqlite-utils shares its options).

    @click.command()
    @archive_argument
    @json_option
    def info(archive, as_json): ...
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from investigator.vault.store import Archive
from investigator.vault.config import PASSPHRASE_ENV, passphrase_from_env
from investigator.custody.file import MasterKeys
from investigator.custody.file import unlock_archive

F = TypeVar("F", bound=Callable[..., Any])

archive_argument = click.argument("archive", type=click.Path(path_type=Path, file_okay=False))
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
actor_option = click.option("--as", "actor", default=None, metavar="ID",
                            help="Who is acting (recorded in the audit log). Default: $USER.")


def default_actor(actor: str | None) -> str:
    import getpass

    return actor or getpass.getuser()


def archive_passphrase(*, confirm: bool = False) -> str:
    """The archive passphrase from INVESTIGATOR_PASSPHRASE, else an interactive prompt."""
    value = passphrase_from_env(PASSPHRASE_ENV)
    if value:
        return value
    return click.prompt("Archive passphrase / 归档口令", hide_input=True, confirmation_prompt=confirm)


def open_and_unlock(path: Path, actor: str) -> tuple[Archive, MasterKeys]:
    archive = Archive.open(path)
    return archive, unlock_archive(archive, archive_passphrase(), actor=actor)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, default=str))


def echo_checks(result: Any, *, as_json: bool, summary: str) -> None:
    """Print a verification result (``checked`` and ``problems`` lines, then ``summary``), or its JSON."""
    if as_json:
        echo_json(result.to_json())
        return
    for line in result.checked:
        click.echo(f"  ok   {line}")
    for line in result.problems:
        click.secho(f"  FAIL {line}", fg="red")
    click.echo(summary)
