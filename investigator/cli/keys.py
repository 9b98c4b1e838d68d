"""Master-key rotation commands (定期更新加密密钥)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from investigator.cli.options import (actor_option, archive_argument, archive_passphrase, default_actor, echo_json,
                                      json_option, unlock)
from investigator.settings import KEYSERVER_ENV


@click.group()
def keys() -> None:
    """Master keys and custody (主密钥与托管), for the custodian.

    Master-key versions and custody: status, rotation, retirement, migration."""


@keys.command("status")
@archive_argument
@json_option
def status_cmd(archive: Path, as_json: bool) -> None:
    """Show master-key versions and custody (查看密钥状态).

    What each version wraps, whether rotation is due, the custody and the signing key.

    \b
    The key file's versions need no passphrase; a PKCS#11 or OpenBao custody is
    opened (its PIN / token from the environment; audited).
    Example:
      investigator keys status ./case-archive
    """
    from investigator.custody.migration import read_journal
    from investigator.custody.registry import backend_of
    from investigator.custody.rotation import status
    from investigator.vault.store import Archive

    opened = Archive.open(archive)
    custody = None if backend_of(opened) == "file" else unlock(opened, default_actor(None))
    info = status(opened, custody=custody)
    chain = opened.signing_keys()
    journal = read_journal(opened)
    info["custody"] = {"backend": backend_of(opened), "generation": opened.config.custody.get("generation", "1"),
                       "migrating_to": journal["to"]["backend"] if journal else None}
    info["signing"] = {"genesis_fingerprint": chain.fingerprint, "current_key_id": chain.current.key_id,
                       "transitions": len(chain.records)}
    if as_json:
        echo_json(info)
        return
    for row in info["versions"]:
        mark = "*" if row["version"] == info["current_version"] else " "
        click.echo(f"{mark} v{row['version']}  created {row['created']}  wraps {row['keys_wrapped']} keys")
    click.echo(f"custody {info['custody']['backend']} (generation {info['custody']['generation']}); signing key "
               f"{chain.current.key_id}, genesis fingerprint {chain.fingerprint}, {len(chain.records)} key transitions")
    if journal:
        click.secho(f"a migration to {journal['to']['backend']} is unfinished: rerun 'investigator keys migrate "
                    f"{archive} --to {journal['to']['backend']}' or pass --abort", fg="yellow")
    if info["rotation_due"]:
        click.secho(f"rotation due: the current master key is older than {info['rotate_after_days']} days",
                    fg="yellow")


@keys.command("rotate")
@archive_argument
@actor_option
def rotate_cmd(archive: Path, actor: str | None) -> None:
    """Rotate the master key (轮换主密钥).

    Add a master-key version and rewrap every data key under it (audited).

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
    """Retire an old master-key version (移除旧版主密钥).

    Remove an old master-key version once no key depends on it (audited).

    \b
    Example:
      INVESTIGATOR_PASSPHRASE=... investigator keys retire ./case-archive --version 1 --as wugang
    """
    from investigator.custody.rotation import retire
    from investigator.vault.store import Archive

    opened, who = Archive.open(archive), default_actor(actor)
    retire(opened, unlock(opened, who), version=version, actor=who)
    click.echo(f"master key v{version} retired")


@keys.command("migrate")
@archive_argument
@click.option("--to", "to", type=click.Choice(["file", "pkcs11", "openbao"]), default=None,
              help="The custody backend to move the master keys and the signing key to.")
@click.option("--token-label", default="investigator", show_default=True,
              help="pkcs11: the target token's label (module and PIN: INVESTIGATOR_PKCS11_MODULE / _PIN).")
@click.option("--mount", default="transit", show_default=True,
              help="openbao: the target transit mount (address and token: BAO_ADDR / BAO_TOKEN).")
@click.option("--kdf-cost", default=17, show_default=True, type=click.IntRange(14, 22),
              help="file: scrypt cost of the new key file, as a power of two.")
@click.option("--reason", default="", help="Why (recorded in the signed key transition and the audit log).")
@click.option("--abort", is_flag=True, help="Roll back an unfinished migration (before its switch) instead.")
@actor_option
def migrate_cmd(archive: Path, to: str | None, token_label: str, mount: str, kdf_cost: int, reason: str,
                abort: bool, actor: str | None) -> None:
    """Move the master keys to another custody (迁移主密钥托管).

    Move them to file, pkcs11 or openbao custody and switch to a new signing key.

    \b
    Every data key, the index key, the TOTP key and each consent file's key are
    wrapped again by the new custody; a new archive signing key is made there and
    a key transition signed by the old and the new key is appended to
    keys/transitions.jsonl (the one atomic switch). Signatures by the old key keep
    verifying through that chain. Crash-safe: rerun the same command after an
    interruption to finish, or pass --abort to roll back (before the switch).
    Both custodies' secrets come from the environment (INVESTIGATOR_PASSPHRASE,
    INVESTIGATOR_PKCS11_MODULE / _PIN, BAO_ADDR / BAO_TOKEN). Stop the key server
    and other writers first. Audited (keys.migrate).
    迁移主密钥托管（密钥文件、PKCS#11、OpenBao）并以签名的密钥交接记录更换归档签名密钥。
    Examples:
      INVESTIGATOR_PASSPHRASE=... INVESTIGATOR_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so \\
        INVESTIGATOR_PKCS11_PIN=... investigator keys migrate ./case-archive --to pkcs11 --as wugang
      INVESTIGATOR_PKCS11_MODULE=... INVESTIGATOR_PKCS11_PIN=... BAO_ADDR=https://bao:8200 BAO_TOKEN=... \\
        investigator keys migrate ./case-archive --to openbao --reason "HSM retired"
      investigator keys migrate ./case-archive --abort
    """
    from investigator.custody.migration import abort as abort_migration
    from investigator.custody.migration import migrate, read_journal
    from investigator.custody.registry import backend_of
    from investigator.errors import ConfigError
    from investigator.settings import Settings
    from investigator.vault.store import Archive

    opened, who = Archive.open(archive), default_actor(actor)
    if abort:
        target = abort_migration(opened, actor=who)
        click.echo(f"migration to {target} rolled back; the archive stays in its {backend_of(opened)} custody")
        return
    if to is None:
        raise ConfigError("name the target custody with --to (file, pkcs11 or openbao), or pass --abort")
    journal = read_journal(opened)
    source = str(journal["from"]["backend"]) if journal else backend_of(opened)
    if os.environ.get(KEYSERVER_ENV):
        archive_passphrase()  # refuses, like rotate and retire: a client of the key server opens no custody
    need_passphrase = "file" in (source, to)
    secrets = Settings.from_environ(os.environ).with_passphrase(
        archive_passphrase() if need_passphrase else None)
    result = migrate(opened, to=to, secrets=secrets, actor=who, reason=reason, token_label=token_label,
                     mount=mount, kdf_n=2**kdf_cost)
    click.echo(f"master keys moved {result.from_backend} -> {result.to_backend} (custody generation "
               f"{result.generation}); {result.rewrapped} keys rewrapped; signing key {result.old_key_id} -> "
               f"{result.new_key_id}{' (finished an interrupted migration)' if result.resumed else ''}")
    click.echo(f"主密钥已迁移至 {result.to_backend}；旧托管的密钥材料" +
               ("已删除" if result.from_backend == "file" else "须由托管人销毁 (docs/admin.md)"))


def register(main: click.Group) -> None:
    main.add_command(keys)
