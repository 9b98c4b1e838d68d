"""Backup commands (智能备份: 云端+本地双轨备份): run, list, verify, restore, schedule."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from investigator.cli.options import (actor_option, archive_argument, default_actor, echo_checks, echo_json,
                                      json_option, open_and_unlock, pin_options, archive_pin, utc_now)
from investigator.errors import ConfigError, IntegrityError
from investigator.vault.layout import Layout
from investigator.vault.store import Archive

S3_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
target_argument = click.argument("target", metavar="TARGET")


def _target(spec: str, *, existing: bool = False) -> Any:
    """A directory path or s3://bucket/prefix; S3 endpoint and credentials from the standard AWS_* variables.

    ``existing``: a folder target must already be there (to list, check or restore from): a typo'd path or an
    unmounted disk is named as such, not read as a target without snapshots. Raises ConfigError.
    """
    from investigator.backup import S3Config, open_target

    if spec.startswith("s3://"):
        missing = [name for name in S3_ENV[1:] if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"{spec}: S3 credentials missing: set {' and '.join(missing)} "
                              "(and AWS_ENDPOINT_URL for a service other than AWS) / 未设置 S3 凭据")
        return open_target(spec, S3Config(endpoint=os.environ.get("AWS_ENDPOINT_URL") or None,
                                          access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                                          secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                                          region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"))
    if existing and not Path(spec).expanduser().is_dir():
        raise ConfigError(f"{spec}: no such folder", hint="a typo, or the disk is not mounted? (backup run makes "
                                                          "a folder target; list, verify and restore read one)")
    return open_target(spec)


@click.group()
def backup() -> None:
    """Backups (备份): run, list, verify, restore, schedule.

    Encrypted, incremental copies on a folder or an S3 bucket with Object Lock.

    \b
    Tiers come from the policy's [backup.tiers.*] (the seed's table): hourly (实时备份) to S3 + a
    local mirror, kept 6 months; weekly (周期性备份, Sunday) to a cold disk, 1 year; emergency
    (紧急备份) a case snapshot on removable media with a signed sealing record, 3 years.
    A target never receives the master key file, TOTP state or plaintext: restoring needs the
    custody, kept apart (docs/admin.md, "Backups"). S3: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY.
    Examples:
      investigator backup run ./case-archive --to s3://evidence-backup/case-archive --tier hourly
      investigator backup run ./case-archive --to /mnt/cold/investigator --tier weekly
      investigator backup verify /mnt/cold/investigator --read-data
      investigator backup restore /mnt/cold/investigator ./restored-archive
      investigator backup schedule ./case-archive
    """


@backup.command("run")
@archive_argument
@click.option("--to", "to", required=True, metavar="TARGET", help="A folder (made when missing) or s3://bucket/prefix.")
@click.option("--tier", type=click.Choice(["hourly", "weekly", "emergency"]), default="hourly", show_default=True,
              help="Backup tier: retention (and Object Lock retain-until) from the policy.")
@click.option("--case", default=None, metavar="CASE", help="emergency: the case the snapshot is made for.")
@click.option("--media-id", default=None, metavar="ID", help="emergency: the removable media's id (label, serial).")
@click.option("--photo", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="emergency: a photo of the sealed media; its SHA-256 goes into the sealing record.")
@click.option("--check-existing", is_flag=True,
              help="Hash objects the target already has instead of trusting their size (after a failed verify).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@actor_option
@json_option
def run(archive: Path, to: str, tier: str, case: str | None, media_id: str | None, photo: Path | None,
        check_existing: bool, progress: bool | None, actor: str | None, as_json: bool) -> None:
    """Back an archive up to TARGET (备份档案库).

    Only objects the target lacks, each read back and hashed.

    \b
    Signs a snapshot manifest (the seed's 时间戳校验文件) chained to the target's previous one,
    through the archive's custody (the passphrase: INVESTIGATOR_PASSPHRASE or a prompt); audited.
    An interrupted run resumes: run it again.
    Examples:
      investigator backup run ./case-archive --to /srv/investigator-mirror --tier hourly
      investigator backup run ./case-archive --to /media/usb-017 --tier emergency --case C-042 \\
          --media-id USB-017 --photo seal-USB-017.jpg --as admin
    """
    from investigator.backup import backup_run, seal_media
    from investigator.backup.tiers import tiers_for

    who = default_actor(actor)
    opened, keys = open_and_unlock(archive, who)
    chosen = tiers_for(opened)[tier]
    if chosen.seal_required and not media_id:
        raise ConfigError(f"the {tier} tier writes a sealing record: give --media-id (the media's label or serial)")
    target = _target(to)
    now = utc_now()
    result = backup_run(opened, target, keys=keys, tier=chosen, actor=who, case=case, now=now,
                        progress=_progress(progress), check_existing=check_existing)
    snap = result.snapshot
    out: dict[str, Any] = {"snapshot": snap.id, "seq": snap.seq, "target": target.url, "tier": tier,
                           "files": len(snap.body["files"]), "uploaded": result.uploaded,
                           "uploaded_bytes": result.uploaded_bytes, "reused": result.reused,
                           "retain_until": snap.body["retain_until"], "manifest_sha256": snap.digest}
    if chosen.seal_required:
        record = seal_media(opened, target, snap, signer=keys.signing, sealed_by=who, media_id=str(media_id),
                            photo=photo, now=now)
        out["seal"] = record["body"]
    if as_json:
        echo_json(out)
        return
    click.echo(f"snapshot {snap.id} (#{snap.seq}, {tier}) -> {target.url} / 备份完成")
    click.echo(f"  {out['files']} files: {result.uploaded} objects uploaded ({result.uploaded_bytes} bytes), "
               f"{result.reused} already there; kept until {out['retain_until']}")
    click.echo(f"  manifest sha256: {snap.digest}")
    if "seal" in out:
        click.echo(f"  sealing record (存储介质密封记录): media {media_id}, sealed by {who}, "
                   f"photo sha256 {out['seal']['photo_sha256'] or '-'}")


def _progress(flag: bool | None) -> bool:
    return flag if flag is not None else sys.stderr.isatty()


@backup.command("list")
@target_argument
@json_option
def list_(target: str, as_json: bool) -> None:
    """List the snapshots on TARGET, oldest first (列出备份快照).

    \b
    Example:
      investigator backup list s3://evidence-backup/case-archive
    """
    from investigator.backup import load_snapshots

    snapshots, bad = load_snapshots(_target(target, existing=True))
    rows = [{"seq": s.seq, "id": s.id, "tier": s.tier, "case": s.body.get("case"), "created": s.body["created"],
             "retain_until": s.body["retain_until"], "files": len(s.body["files"]),
             "bytes": s.body["totals"]["bytes"], "actor": s.body.get("actor")} for s in snapshots]
    if as_json:
        echo_json({"snapshots": rows, "unreadable": bad})
        return
    if not rows:
        click.echo("no snapshots / 无备份快照")
    for row in rows:
        case = f" case={row['case']}" if row["case"] else ""
        click.echo(f"#{row['seq']:<4} {row['id']}  {row['tier']:<9} {row['created']}  {row['files']} files, "
                   f"{row['bytes']} bytes, kept until {row['retain_until']}{case}")
    for key in bad:
        click.secho(f"unreadable snapshot manifest: {key}", fg="red", err=True)


def _subset(text: str | None) -> float:
    if text is None:
        return 0.0
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", text)
    if not match or not 0 < float(match.group(1)) <= 100:
        raise ConfigError(f"--read-data-subset {text!r}: expected a percentage such as 10%")
    return float(match.group(1)) / 100


@backup.command("verify")
@target_argument
@click.option("--read-data", is_flag=True, help="Download and hash every object.")
@click.option("--read-data-subset", default=None, metavar="N%", help="Download and hash a random N% of the objects.")
@pin_options
@json_option
def verify(target: str, read_data: bool, read_data_subset: str | None, pin_pubkey: Path | None,
           pin_fingerprint: str | None, as_json: bool) -> None:
    """Check the backups on TARGET (校验备份).

    As restic check: manifests, signatures, chain, objects; with --read-data every hash.

    \b
    Exit 0 when intact; 4 with each bad object named otherwise. Needs no key.
    Examples:
      investigator backup verify /mnt/cold/investigator
      investigator backup verify s3://evidence-backup/case-archive --read-data
      investigator backup verify /mnt/cold/investigator --read-data-subset 10% --fingerprint 3f2a...
    """
    from investigator.backup import check_target

    if read_data and read_data_subset:
        raise ConfigError("give --read-data or --read-data-subset, not both")
    share = 1.0 if read_data else _subset(read_data_subset)
    pin = archive_pin(pin_pubkey, pin_fingerprint)
    result = check_target(_target(target, existing=True), read_data=share, pin=pin)
    counts = result.counts
    echo_checks(result, as_json=as_json, fail="FAIL ", err=True,
                heading=f"backup check: {counts.get('snapshots', 0)} snapshots, {counts.get('objects', 0)} objects "
                        f"({counts.get('objects_read', 0)} read), {counts.get('seals', 0)} sealing records",
                summary="intact / 完好" if result.ok else f"{len(result.problems)} problem(s) found / 发现问题")
    if not result.ok:
        raise SystemExit(IntegrityError.exit_code)


@backup.command("restore")
@target_argument
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--snapshot", "snapshot_id", default=None, metavar="ID", help="Snapshot id or number (default: newest).")
@click.option("--master-key", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The archive's master key file from the custody backup (key-file custody), put in place so the "
                   "sealed files (notes, saved searches, held bundles) can be opened.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@pin_options
@actor_option
@json_option
def restore(target: str, dest: Path, snapshot_id: str | None, master_key: Path | None, progress: bool | None,
            pin_pubkey: Path | None, pin_fingerprint: str | None, actor: str | None, as_json: bool) -> None:
    """Restore a snapshot into DEST (恢复备份快照).

    DEST must be missing or empty; bit for bit, each file hashed.

    \b
    An interrupted restore resumes when run again with the same TARGET and --snapshot.
    Custody material is not in a backup: with sealed files, give --master-key (key-file custody)
    or the PKCS#11 / OpenBao settings; afterwards run 'investigator verify DEST'.
    Examples:
      investigator backup restore /mnt/cold/investigator ./restored-archive
      investigator backup restore s3://evidence-backup/case-archive ./restored --snapshot 12 \\
          --master-key /secure/custody-backup/master.json --fingerprint 3f2a...
    """
    import shutil

    from investigator.backup import find_snapshot, restore_snapshot
    from investigator.cli.options import unlock
    from investigator.custody.file import KeyFile

    source = _target(target, existing=True)
    pin = archive_pin(pin_pubkey, pin_fingerprint)
    snap = find_snapshot(source, snapshot_id)
    snap_id = snap.id  # fixed now, so a rerun resumes the same snapshot
    if master_key is not None:  # a wrong file is named now, before anything is written
        given = KeyFile.load(master_key).data.get("archive_id")
        if given != snap.body.get("archive_id"):
            raise ConfigError(f"{master_key}: the key file of archive {given}, not of archive "
                              f"{snap.body.get('archive_id')} whose snapshot {snap_id} is restored",
                              hint="give the master.json of this archive's custody backup")
    who = default_actor(actor)
    result = restore_snapshot(source, dest, snapshot_id=snap_id, pin=pin, progress=_progress(progress), actor=who)
    if master_key is not None:  # also without sealed files: the full 'verify' of the drill needs the key file
        key_file = Archive.open(dest).layout.key_file
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(master_key, key_file)
    if result.pending_sealed:
        keys = unlock(Archive.open(dest), who)
        result = restore_snapshot(source, dest, snapshot_id=snap_id, keys=keys, pin=pin,
                                  progress=_progress(progress), actor=who)
    out = {"snapshot": result.snapshot.id, "seq": result.snapshot.seq, "dest": str(dest), "files": result.files,
           "kept": result.kept, "complete": result.complete}
    if as_json:
        echo_json(out)
        return
    click.echo(f"restored snapshot {out['snapshot']} (#{out['seq']}) into {dest}: {result.files} files written, "
               f"{result.kept} already there / 恢复完成")
    click.echo("next: put the custody back (docs/admin.md, \"Restore drill\") and run "
               f"'investigator verify {dest}'")


@backup.command("schedule")
@click.argument("archive", required=False, default="/srv/investigator/archive")
@click.option("--format", "fmt", type=click.Choice(["cron", "systemd", "both"]), default="both", show_default=True)
def schedule(archive: str, fmt: str) -> None:
    """Print the timer lines of the scheduled tiers (打印定时备份计划).

    The cron / systemd timer lines of the policy's scheduled tiers (nothing is installed).

    \b
    Tiers from ARCHIVE's installed policy when it is an archive, else the default policy.
    Examples:
      investigator backup schedule /srv/investigator/archive --format cron
      investigator backup schedule /srv/investigator/archive --format systemd
    """
    from investigator.backup.tiers import BackupTiers, schedule_lines, tiers_for

    root = Path(archive)
    tiers = tiers_for(Archive.open(root)) if Layout(root).config.exists() else BackupTiers.default()
    lines = schedule_lines(tiers, archive)
    if fmt in ("cron", "both"):
        click.echo("\n".join(lines["cron"]))
    if fmt == "both":
        click.echo("")
    if fmt in ("systemd", "both"):
        click.echo("\n".join(lines["systemd"]))


def register(main: click.Group) -> None:
    main.add_command(backup)
