"""Acquisition records (电子取证记录): the empty template, signing by the operator, checking against files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from investigator.cli.options import archive_argument, as_person, echo_json, json_option, key_dir_option, person_key


@click.group()
def acquisition() -> None:
    """Acquisition records (电子取证记录): template, sign, check.

    A record holds the device, owner, operator, monitor, tool, time and the hashes of the export,
    the video and the sealing photos, signed by the operator and bound into an ingest batch."""


@acquisition.command("template")
def template_cmd() -> None:
    """Print an empty acquisition record (打印空白取证记录).

    The record is JSON, to fill in.

    \b
    Fill every field, put the SHA-256 of each image / export file under "exports",
    of the video recording under "video" and of each sealing photo under
    "sealing_photos", then sign it and ingest with it.
    Example:
      investigator acquisition template > record.json
    """
    from investigator.vault.acquisition import empty_record

    click.echo(json.dumps(empty_record(), ensure_ascii=False, indent=2))


@acquisition.command("sign")
@archive_argument
@click.argument("record", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@as_person
@key_dir_option
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the signed record here (default: replace RECORD).")
def sign_cmd(archive: Path, record: Path, as_id: str, key_dir: Path | None, out: Path | None) -> None:
    """Sign a filled-in record as the operator (操作人签署取证记录).

    The record is signed with the operator's personal key.

    \b
    The key must be the signer's live key in the archive's directory; ingest checks
    that again. Passphrase: INVESTIGATOR_KEY_PASSPHRASE or a prompt.
    Example:
      investigator acquisition sign ./case-archive record.json --as liuyang
    """
    from investigator.errors import ImportFormatError
    from investigator.vault.acquisition import sign_record
    from investigator.vault.store import Archive

    opened = Archive.open(archive)
    try:
        body = json.loads(record.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFormatError(record.name, "", "an acquisition record in UTF-8 JSON") from exc
    if not isinstance(body, dict):
        raise ImportFormatError(record.name, "$", "a JSON object")
    signed = sign_record(body, person_key(opened, as_id, key_dir), signed_by=as_id)
    (out or record).write_text(json.dumps(signed, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    click.echo(f"signed by {as_id}: {out or record}")


@acquisition.command("check")
@archive_argument
@click.argument("record", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, exists=True))
@json_option
def check_cmd(archive: Path, record: Path, files: tuple[Path, ...], as_json: bool) -> None:
    """Check a signed record and its files (核验取证记录及文件).

    The fields, the signature, the signer in the directory, and that FILES are the ones it lists.

    \b
    Example:
      investigator acquisition check ./case-archive record.json "WhatsApp Chat - Lena.zip"
    """
    from investigator.vault.store import Archive

    opened = Archive.open(archive)
    checked = load_record(opened, record)
    problems = checked.problems_with([_file_source(path) for path in files])
    if as_json:
        echo_json({"record_sha256": checked.sha256, "signed_by": checked.signed_by, "problems": problems})
    else:
        click.echo(f"record {checked.sha256[:16]}... signed by {checked.signed_by}: signature valid")
        for problem in problems:
            click.secho(problem, fg="red")
    if problems:
        raise SystemExit(1)


def _file_source(path: Path) -> dict[str, Any]:
    from investigator import _crypto

    if path.is_dir():
        raise click.BadParameter(f"{path.name}: a folder; list its export files")
    return {"name": path.name, "sha256": _crypto.sha256_file(path)}


def load_record(archive: Any, path: Path) -> Any:
    """The signed record at ``path``, checked, whose key is ``signed_by``'s live key in ``archive``'s directory.

    Raises ImportFormatError (fields), IntegrityError (signature), IdentityCheckFailed
    (the key is not registered for the signer, or was revoked).
    """
    from investigator.authority.directory import DirectoryStore
    from investigator.errors import IdentityCheckFailed
    from investigator.vault.acquisition import AcquisitionRecord

    record = AcquisitionRecord.parse(path.read_bytes(), what=path.name)
    person = DirectoryStore(archive).load().person(record.signed_by)
    registered = person.key(record.key_id)
    if registered is None:
        raise IdentityCheckFailed(f"{path.name}: key {record.key_id} is not registered for {record.signed_by} "
                                  "in the directory")
    if registered.revoked:
        raise IdentityCheckFailed(f"{path.name}: key {record.key_id} of {record.signed_by} was revoked at "
                                  f"{registered.revoked}")
    return record


def register(group: click.Group) -> None:
    group.add_command(acquisition)
