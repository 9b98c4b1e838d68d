"""Archive commands: init, ingest, info, verify, publish (the audit log has its own group: cli/audit.py)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from investigator.cli.options import (actor_option, archive_argument, archive_passphrase, archive_pin, cafile_option,
                                      check_witness_options, default_actor, echo_checks, echo_json, json_option,
                                      key_dir_option, key_server, keyserver_option, open_and_unlock, person_key,
                                      pin_options, witness_option)
from investigator._fs import exclusive_lock_if_free
from investigator.custody.registry import create_archive
from investigator.errors import ConfigError
from investigator.settings import KEYSERVER_ENV, Settings
from investigator.vault.config import DEFAULT_CHUNK_SECONDS, DEFAULT_TZ
from investigator.vault.store import Archive


#: the shortest archive passphrase 'init' accepts for a key file (the file is in the shared folder)
MIN_PASSPHRASE_CHARS = 12


@click.command()
@archive_argument
@click.option("--tz", "tz", default=DEFAULT_TZ, show_default=True, help="Archive time zone (IANA name).")
@click.option("--chunk-seconds", default=DEFAULT_CHUNK_SECONDS, show_default=True, type=int,
              help="Time-chunk size; keys are released per chunk. Must divide a day.")
@click.option("--kdf-cost", default=17, show_default=True, type=click.IntRange(14, 22),
              help="scrypt cost as a power of two (memory ~ 2^N * 1 KiB).")
@click.option("--custody", "backend", type=click.Choice(["file", "pkcs11", "openbao"]), default="file",
              show_default=True, help="Where the master keys live: a passphrase-protected key file in the archive, "
                                      "a PKCS#11 token (HSM), or OpenBao's transit engine.")
@click.option("--token-label", default="investigator", show_default=True,
              help="pkcs11: the token's label (module and PIN: INVESTIGATOR_PKCS11_MODULE / _PIN).")
@click.option("--mount", default="transit", show_default=True,
              help="openbao: the transit mount (address and token: BAO_ADDR / BAO_TOKEN).")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A folder on the key server's host for TOTP secrets and counters, kept out of the shared archive "
                   "folder (absolute path).")
@actor_option
@click.option("--period-keys", "period_keys", type=click.Choice(["quarter"]), default=None,
              help="Wrap data keys under one key per quarter, so expired quarters can be crypto-shredded "
                   "(every custody; docs/admin.md, section 12).")
def init(archive: Path, tz: str, chunk_seconds: int, kdf_cost: int, backend: str, token_label: str, mount: str,
         state_dir: Path | None, actor: str | None, period_keys: str | None) -> None:
    """Create a new encrypted archive (新建加密档案库).

    \b
    With the key file (default), the passphrase (at least 12 characters) comes from
    INVESTIGATOR_PASSPHRASE, else a prompt. With --custody pkcs11 or openbao the master keys and the signing
    key are made inside the token / transit engine and never leave it; archive.toml
    records the backend (no secrets).
    Examples:
      INVESTIGATOR_PASSPHRASE=... investigator init ./case-archive --tz Asia/Shanghai
      INVESTIGATOR_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so INVESTIGATOR_PKCS11_PIN=... \\
        investigator init ./case-archive --custody pkcs11 --token-label investigator
    """
    passphrase = archive_passphrase(confirm=True, custodian=True) if backend == "file" else None
    if passphrase is not None and len(passphrase) < MIN_PASSPHRASE_CHARS:
        # the key file sits in the folder every client reads: only the passphrase protects it (docs/admin.md)
        raise ConfigError(f"the archive passphrase has {len(passphrase)} characters; a new archive needs at least "
                          f"{MIN_PASSPHRASE_CHARS} / 归档口令至少 {MIN_PASSPHRASE_CHARS} 个字符",
                          hint="the key file keys/master.json is readable by everyone who can read the archive "
                               "folder: choose a long, random passphrase")
    secrets = Settings.from_environ(os.environ).with_passphrase(passphrase)
    created = create_archive(archive, backend=backend, secrets=secrets, token_label=token_label, mount=mount,
                             state_dir=state_dir, timezone_name=tz, chunk_seconds=chunk_seconds, actor=default_actor(actor),
                             kdf_n=2**kdf_cost, period_keys=period_keys)
    click.echo(f"created archive {created.archive_id} at {archive} (time zone {tz}, custody {backend})")


@click.command()
@archive_argument
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Export format, or 'auto' to detect each file. See docs/formats.md.")
@click.option("--tz", "tz", default=None, help="Zone of local times in the export (default: the archive's).")
@click.option("--lenient", is_flag=True, help="Skip malformed records (listed in the manifest) instead of failing.")
@click.option("--date-order", type=click.Choice(["dmy", "mdy", "ymd"]), default=None,
              help="WhatsApp: day/month order, when detection is ambiguous.")
@click.option("--map", "mappings", multiple=True, metavar="FIELD=COLUMN",
              help="csv/jsonl: map a normalized field to a source column (repeatable).")
@click.option("--map-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="csv/jsonl: a saved mapping, JSON or TOML {field = column}; --map entries override it.")
@click.option("--room-names", type=click.Path(exists=True, dir_okay=False), default=None,
              help="wecom: JSON or CSV mapping roomid -> group name.")
@click.option("--year", type=click.IntRange(1970, 9999), default=None,
              help="authlog: the year of the first line (syslog lines carry none; default: the file's "
                   "modification year, which a copy changes).")
@click.option("--keyserver", default=None, metavar="URL", envvar=KEYSERVER_ENV, show_envvar=True,
              help="Ingest through this key server (default: $INVESTIGATOR_KEYSERVER): fresh data keys per batch, "
                   "dedup asked of the server, the manifest signed there; no archive passphrase is read here.")
@click.option("--cafile", default=None, type=click.Path(exists=True, dir_okay=False), help="CA for an https key server.")
@key_dir_option
@click.option("--acquisition", "acquisition_file", default=None, metavar="RECORD",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A signed acquisition record (investigator acquisition template / sign): bound into the "
                   "batch's manifest; every file read must be one of its exports (by SHA-256).")
@actor_option
@json_option
def ingest(archive: Path, paths: tuple[Path, ...], fmt: str, tz: str | None, lenient: bool, date_order: str | None,
           mappings: tuple[str, ...], map_file: Path | None, room_names: str | None, year: int | None,
           keyserver: str | None, cafile: str | None, key_dir: Path | None, actor: str | None, as_json: bool,
           acquisition_file: Path | None) -> None:
    """Import export files into the archive (将导出文件导入档案库).

    The files go in as one atomic, idempotent batch.

    \b
    With --keyserver (or INVESTIGATOR_KEYSERVER) the archive passphrase is never
    read: --as names the ingesting person (the policy's 'archive' permission),
    whose personal key signs every request (passphrase: INVESTIGATOR_KEY_PASSPHRASE
    or a prompt). The server hands out fresh keys for the new batch only and
    answers the dedup question with yes/no: this process cannot read earlier
    records. It stages in the archive folder it shares with the server.
    Examples:
      investigator ingest ./case-archive data_samples/normalized/messages.jsonl
      investigator ingest ./case-archive slack-export.zip chat.txt --format auto
      investigator ingest ./case-archive dingtalk.csv --format csv --map ts=发送时间 --map sender_name=发送人
      investigator ingest ./case-archive dingtalk.csv --format csv --map-file dingtalk-mapping.toml
      investigator ingest ./case-archive auth.log --format authlog --year 2024
      investigator ingest ./case-archive "WhatsApp Chat - Lena.zip" --acquisition record.json
      investigator ingest ./case-archive export.jsonl --as zhaomin --keyserver https://keys.example:8765
    """
    from investigator.importers import ImportOptions
    from investigator.cli.acquisition import load_record
    from investigator.vault.ingest import ingest_paths

    who = default_actor(actor)
    mapping = _read_mapping(map_file) if map_file else {}  # usage mistakes first: before any key is unlocked
    for item in mappings:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected FIELD=COLUMN", param_hint="--map")
        field, column = item.split("=", 1)
        mapping[field.strip()] = column.strip()
    service = None
    keys = None
    if keyserver:
        from investigator.access.client_auth import RequestSigner
        from investigator.access.ingest_client import RemoteIngest
        from investigator.access.keyserver import RemoteKeyService

        opened = Archive.open(archive)
        remote = RemoteKeyService(keyserver, signer=RequestSigner(who, person_key(opened, who, key_dir)),
                                  cafile=cafile, archive_id=opened.archive_id)
        service = RemoteIngest(remote)
    else:
        opened, keys = open_and_unlock(archive, who)
        with exclusive_lock_if_free(opened.layout.write_lock) as free:
            if not free:  # the ingest waits for it below, silently: a second writer looked hung
                click.echo("another writer holds this archive (locks/write.lock: an ingest, key rotation or "
                           "retention run); this ingest waits for it / 等待其他写入完成", err=True)
    record = load_record(opened, acquisition_file) if acquisition_file else None
    options = ImportOptions(tz=tz or opened.config.timezone, lenient=lenient, date_order=date_order,
                            mapping=mapping or None, room_names=room_names, year=year)
    result = ingest_paths(opened, list(paths), keys=keys, actor=who, format=fmt, options=options, progress=not as_json,
                          service=service,
                          acquisition=record)
    if as_json:
        echo_json(result.to_json())
        return
    if result.batch_seq is None and not result.duplicates:  # a header-only export is no export of 0 duplicates
        click.echo("nothing to ingest: the input holds no records" + (" that could be read" if result.skipped else "")
                   + " / 输入中没有可导入的记录")
    elif result.batch_seq is None:
        click.echo(f"nothing new: {result.duplicates} records already in the archive")
    else:
        click.echo(f"batch {result.batch_seq}: {result.messages_added} messages, {result.events_added} events "
                   f"({result.duplicates} duplicates skipped, {result.new_versions} new versions, "
                   f"{result.chunks} chunks); Merkle root {result.merkle_root[:16]}...")
    if result.skipped:
        click.secho(f"note: {result.skipped} input records skipped; each is listed with its position and reason in the batch manifest", fg="yellow")


def _read_mapping(path: Path) -> dict[str, str]:
    """A saved column mapping: a JSON object or a TOML table of field = column."""
    import json
    import tomllib

    from investigator.errors import ImportFormatError

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # as the importers read the exports it maps (docs/formats.md): UTF-8, else GB18030
            text = raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise ImportFormatError(path.name, f"byte {exc.start}", "UTF-8 or GB18030 text") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ImportFormatError(path.name, "", "a JSON object or TOML table of field = column") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ImportFormatError(path.name, "", "only field = column pairs (strings)")
    return dict(data)


@click.command()
@archive_argument
@json_option
def info(archive: Path, as_json: bool) -> None:
    """Show the archive's counts, never content (档案库统计，不含内容).

    Messages, events, partitions, first and last time.

    \b
    Also the archive's signing key fingerprint (SHA-256 of its genesis Ed25519 public key):
    note it out of band and pin it in 'verify --fingerprint'.
    Example:
      investigator info ./case-archive --json
    """
    from investigator import _crypto
    from investigator.vault.verify import key_fingerprint

    opened = Archive.open(archive)
    summary = opened.info()
    summary["signing_key_fingerprint"] = key_fingerprint(_crypto.VerifyKey.from_b64(opened.config.signing_public_key))
    if as_json:
        echo_json(summary)
        return
    for key in ("archive_id", "messages", "events", "partitions", "batches", "first_ts", "last_ts", "timezone"):
        click.echo(f"{key:>11}: {summary[key]}")
    click.echo(f"signing key fingerprint: {summary['signing_key_fingerprint']}")


@click.command()
@archive_argument
@click.option("--offline", is_flag=True, help="Check everything that needs no key (no passphrase asked).")
@actor_option
@key_dir_option
@keyserver_option
@cafile_option
@pin_options
@witness_option
@json_option
def verify(archive: Path, offline: bool, actor: str | None, key_dir: Path | None, keyserver: str | None,
           cafile: str | None, pin_pubkey: Path | None, pin_fingerprint: str | None, witnesses: tuple[str, ...],
           as_json: bool) -> None:
    """Verify the archive and its audit log (校验档案库与审计日志).

    Verify every chunk, manifest, chain link, Merkle root, signature and the audit log.

    \b
    Exit 0 when intact; 4 with each problem (file and reason) otherwise.
    Examples:
      investigator verify ./case-archive
      investigator verify ./case-archive --offline --fingerprint 3f2a...(64 hex digits)
      investigator verify ./case-archive --offline --pubkey ~/pinned/archive-signing.pub
      investigator verify ./case-archive --as shenji --keyserver http://127.0.0.1:8765
      investigator verify ./case-archive --offline --witness /mnt/other-disk/witness

    A full verification decrypts every chunk, so it runs where the keys are: here in embedded
    mode, or on the key server with --keyserver (or INVESTIGATOR_KEYSERVER) for an admin or
    auditor (--as, signed with their personal key). Anyone may run --offline.
    Without --pubkey / --fingerprint the archive's own key (archive.toml) is trusted, and the
    output says so; with a pin, a key chain that does not root in the pinned key fails.
    With --witness (repeatable), the audit log is compared with what each witness holds: a
    witness with a larger tree, or one the log is not consistent with, fails (the archive and
    its log were rolled back together); checkpoints a witness lacks are reported.
    """
    from investigator.vault.verify import check_archive_pin, verify_archive

    who = default_actor(actor)
    pin = archive_pin(pin_pubkey, pin_fingerprint)
    if offline:
        opened = Archive.open(archive)
        report = verify_archive(opened, keys=None, actor=who)
    elif keyserver:
        opened = Archive.open(archive)
        report = key_server(keyserver, who, person_key(opened, who, key_dir), cafile).verify()
    else:
        opened, keys = open_and_unlock(archive, who)
        report = verify_archive(opened, keys=keys, actor=who)
    check_archive_pin(opened, pin, report)
    check_witness_options(opened, witnesses, report)
    counts = report.counts
    mode = "offline" if offline else "full"
    echo_checks(report, as_json=as_json, fail="FAIL ", err=True,
                heading=f"{mode} verification: {counts['manifests']} manifests, {counts['chunks']} chunks "
                        f"({counts['chunks_decrypted']} decrypted, {counts['records']} records), "
                        f"{counts['audit_entries']} audit entries",
                summary="intact" if report.ok else f"{len(report.problems)} problem(s) found")
    if not report.ok:
        raise SystemExit(4)


@click.command()
@archive_argument
@click.argument("url", metavar="URL")
@actor_option
@json_option
def publish(archive: Path, url: str, actor: str | None, as_json: bool) -> None:
    """Publish the archive for Dask workers (发布至对象存储).

    Publish what Dask workers read, in the vault layout (again after each ingest).

    \b
    URL is s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY) or file:///folder. Sent: archive.toml, the public signing key and key
    transitions, each committed batch's encrypted chunk parts and its manifest, verified first;
    never org/, audit/ or any secret key. Objects already there are skipped (docs/admin.md, section 14).
    Example:
      AWS_ENDPOINT_URL=https://s3.example investigator publish ./case-archive s3://evidence/case-archive
    """
    from investigator.vault.remote import ObjectStore, publish as publish_archive

    if url.startswith("s3://"):
        missing = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"{url}: S3 credentials missing: set {' and '.join(missing)} "
                              "(and AWS_ENDPOINT_URL for a service other than AWS)")
    store = ObjectStore(url, endpoint=os.environ.get("AWS_ENDPOINT_URL") or None,
                        access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or None,
                        secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
                        region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    done = publish_archive(Archive.open(archive), store, actor=default_actor(actor))
    summary = {"url": url, "written": done.written, "skipped": done.skipped, "bytes": done.bytes}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"published to {url}: {done.written} object(s) written ({done.bytes:,} bytes), "
               f"{done.skipped} already there")


def register(main: click.Group) -> None:
    for command in (init, ingest, info, verify, publish):
        main.add_command(command)
