"""Acquisition records through the CLI: template -> fill -> sign (operator's personal key) -> ingest
--acquisition -> verify; a record whose key is not the signer's, or files it does not list, are refused."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner

from support import PASSPHRASE, TEST_KDF_N
from investigator import _crypto
from investigator.cli import main
from investigator.custody.file import create_archive, unlock_archive
from investigator.authority.directory import DirectoryStore, Person, Signer
from investigator.authority.identity import enroll
from investigator.vault.acquisition import sign_record
from investigator.vault.store import Archive

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "importers"
LENA = FIXTURES / "whatsapp" / "WhatsApp Chat - Lena.zip"
FINNISH = FIXTURES / "whatsapp" / "finnish_klo.txt"


def _fill(body: dict, export: Path) -> dict:  # type: ignore[type-arg]
    body.update(case_reference="2026-JC-017", acquired_at="2026-11-20T14:30:00+08:00")
    body["device"]["description"] = "iPhone 13 of the account holder"
    body["owner"].update(name="王芳", id="wangfang")
    body["operator"].update(name="刘洋", id="liuyang")
    body["monitor"].update(name="赵敏", id="zhaomin")
    body["tool"].update(name="Cellebrite UFED", version="7.69.0.12")
    body["exports"] = [{"name": export.name, "sha256": _crypto.sha256_file(export)}]
    body["video"] = {"name": "acq.mp4", "sha256": "b" * 64}
    body["sealing_photos"] = [{"name": "seal.jpg", "sha256": "c" * 64}]
    body["operation_log"] = {"name": "", "sha256": ""}
    return body


def test_template_sign_ingest_verify(tmp_path: Path) -> None:
    archive = create_archive(tmp_path / "a", passphrase=PASSPHRASE, kdf_n=TEST_KDF_N)
    keys = unlock_archive(archive, PASSPHRASE)
    key_dir = tmp_path / "keys"
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    store = DirectoryStore(archive)
    store.commit(store.load().with_person(Person(id="liuyang", name="刘洋", roles=("operator",))),
                 signer=Signer.archive(keys.signing), action="person_add", target="liuyang", now=now)
    enroll(archive, keys, "liuyang", signer=Signer.archive(keys.signing), passphrase="pw-liuyang", now=now,
           key_dir=key_dir, kdf_n=TEST_KDF_N)
    runner = CliRunner()
    env = {"INVESTIGATOR_PASSPHRASE": PASSPHRASE, "INVESTIGATOR_KEY_PASSPHRASE": "pw-liuyang"}

    template = runner.invoke(main, ["acquisition", "template"])
    record = tmp_path / "record.json"
    record.write_text(json.dumps(_fill(json.loads(template.output), LENA), ensure_ascii=False), encoding="utf-8")
    signed = runner.invoke(main, ["acquisition", "sign", str(archive.root), str(record), "--as", "liuyang",
                                  "--key-dir", str(key_dir)], env=env)
    assert signed.exit_code == 0, signed.output
    assert json.loads(record.read_text(encoding="utf-8"))["signature"]["signed_by"] == "liuyang"

    refused = runner.invoke(main, ["ingest", str(archive.root), str(FINNISH), "--acquisition", str(record),
                                   "--as", "liuyang"], env=env)
    assert refused.exit_code != 0 and "acquisition record" in refused.output
    done = runner.invoke(main, ["ingest", str(archive.root), str(LENA), "--acquisition", str(record), "--as",
                                "liuyang", "--json"], env=env)
    assert done.exit_code == 0, done.output
    manifest = Archive.open(archive.root).manifests()[-1]
    assert manifest.body["acquisition"]["signed_by"] == "liuyang"
    verified = runner.invoke(main, ["verify", str(archive.root)], env=env)
    assert verified.exit_code == 0, verified.output

    # Signed with a key the directory does not know for that person: refused before anything is read.
    stranger = sign_record({k: v for k, v in json.loads(record.read_text(encoding="utf-8")).items()
                            if k != "signature"}, _crypto.SigningKey.generate(), signed_by="liuyang")
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(stranger), encoding="utf-8")
    out = runner.invoke(main, ["ingest", str(archive.root), str(LENA), "--acquisition", str(forged), "--as",
                               "liuyang"], env=env)
    assert out.exit_code != 0 and "not registered for liuyang" in out.output
