"""``investigator upgrade``: switch an archive to the newest chunk format (归档格式升级), verified first."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.cli.options import actor_option, archive_argument, default_actor, echo_json, json_option, unlock


@click.command()
@archive_argument
@actor_option
@json_option
def upgrade(archive: Path, actor: str | None, as_json: bool) -> None:
    """Upgrade the archive to format 2 (升级档案库格式).

    Switch a format-1 archive to writing format-2 batches, after a full verification (audited).

    \b
    将格式 1 的归档切换为写入格式 2 的批次：先完整校验（解密每个分块、重算每条记录的哈希），
    校验通过后记入审计日志（archive.upgrade），再原子地改写 archive.toml 的 format_version。
    已有批次一个字节都不改、不删，永久保留、始终可读。校验不通过则拒绝升级（同样记入审计），
    归档保持不变。升级中途被中断时，再运行一次本命令即可完成。

    \b
    Nothing of the existing batches is rewritten or deleted: every format-1 file is kept and
    stays readable, forever; only new batches are written in format 2. If the archive does not
    verify, the upgrade is refused (audited) and nothing changes (exit 4). If an upgrade was
    interrupted ('verify' warns of it), run this command again: it finishes the switch.
    Runs where the master keys are (embedded mode), like 'keys rotate'.
    Example / 示例:
      INVESTIGATOR_PASSPHRASE=... investigator upgrade ./case-archive --as wugang
    """
    from investigator.vault.store import Archive
    from investigator.vault.upgrade import upgrade_archive

    opened, who = Archive.open(archive), default_actor(actor)
    result = upgrade_archive(opened, unlock(opened, who), actor=who, progress=not as_json)
    if as_json:
        echo_json(result.to_json())
        return
    if result.already_current:
        click.echo(f"already format {result.to_version}: nothing to do / 归档已是格式 {result.to_version}，无需升级")
        return
    done = "finished the interrupted upgrade" if result.completed else "upgraded"
    click.echo(f"{done}: format {result.from_version} -> {result.to_version}, {result.batches_verified} batch(es) "
               "verified; old batches kept unchanged, new batches are written in format "
               f"{result.to_version}")
    zh = "已完成此前中断的升级" if result.completed else "已升级"
    click.echo(f"{zh}：格式 {result.from_version} -> {result.to_version}，已校验 {result.batches_verified} 个批次；"
               f"原有批次保持不变，新批次将以格式 {result.to_version} 写入")


def register(main: click.Group) -> None:
    main.add_command(upgrade)
