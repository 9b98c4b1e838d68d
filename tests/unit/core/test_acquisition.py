"""Acquisition records: fields checked, Ed25519 signature over the canonical record, export hashes matched."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from investigator import _crypto
from investigator.cli import main
from investigator.errors import ImportFormatError, IntegrityError
from investigator.importers import ImportOptions
from investigator.vault.acquisition import AcquisitionRecord, check_manifest_entry, empty_record, sign_record
from investigator.vault.ingest import ingest_paths
from investigator.vault.manifest import Manifest
from investigator.vault.verify import check_archive, verify_archive

EXPORT_SHA = "a" * 64


def filled(export_sha: str = EXPORT_SHA) -> dict:  # type: ignore[type-arg]
    body = empty_record()
    body.update(case_reference="2026-JC-017", acquired_at="2026-11-20T14:30:00+08:00", location="Room 3")
    body["device"].update(description="iPhone 13, black", model="A2634", imei="356789104512345")
    body["owner"].update(name="王芳", id="wangfang")
    body["operator"].update(name="刘洋", id="liuyang")
    body["monitor"].update(name="赵敏", id="zhaomin")
    body["tool"].update(name="Cellebrite UFED", version="7.69.0.12")
    body["exports"] = [{"name": "WhatsApp Chat - Lena.zip", "sha256": export_sha}]
    body["video"] = {"name": "acq-0017.mp4", "sha256": "b" * 64}
    body["sealing_photos"] = [{"name": "seal-1.jpg", "sha256": "c" * 64}, {"name": "seal-2.jpg", "sha256": "d" * 64}]
    body["operation_log"] = {"name": "oplog.pdf", "sha256": "e" * 64}
    return body


def test_template_is_the_empty_record_and_is_refused_until_filled() -> None:
    result = CliRunner().invoke(main, ["acquisition", "template"])
    assert result.exit_code == 0
    assert json.loads(result.output) == empty_record()
    with pytest.raises(ImportFormatError, match="device"):
        AcquisitionRecord.check_body(empty_record(), what="record.json")


def test_signed_record_parses_and_lists_its_exports() -> None:
    key = _crypto.SigningKey.generate()
    signed = sign_record(filled(), key, signed_by="liuyang")
    record = AcquisitionRecord.parse(json.dumps(signed, ensure_ascii=False).encode(), what="record.json")
    assert record.signed_by == "liuyang" and record.key_id == key.public.key_id
    assert record.export_hashes() == {EXPORT_SHA: "WhatsApp Chat - Lena.zip"}
    assert record.problems_with([{"name": "WhatsApp Chat - Lena.zip", "sha256": EXPORT_SHA}]) == []
    problems = record.problems_with([{"name": "other.txt", "sha256": "f" * 64}])
    assert len(problems) == 1 and problems[0].startswith("other.txt: SHA-256 ffffffffffffffff")
    entry = record.manifest_entry()
    assert entry["sha256"] == record.sha256 and entry["record"] == signed
    assert check_manifest_entry(entry, [{"name": "x", "sha256": EXPORT_SHA}], where="batches/000001") == []


@pytest.mark.parametrize("path,change", [
    ("owner", lambda b: b["owner"].update(name="someone else")),
    ("exports", lambda b: b["exports"][0].update(sha256="0" * 64)),
    ("video", lambda b: b["video"].update(sha256="1" * 64)),
    ("sealing_photos", lambda b: b["sealing_photos"].pop()),
])
def test_any_change_after_signing_breaks_the_signature(path: str, change) -> None:  # type: ignore[no-untyped-def]
    signed = sign_record(filled(), _crypto.SigningKey.generate(), signed_by="liuyang")
    forged = copy.deepcopy(signed)
    change(forged)
    with pytest.raises(IntegrityError, match="signature"):
        AcquisitionRecord.parse(json.dumps(forged).encode(), what="record.json")
    problems = check_manifest_entry({"sha256": "x", "record": forged}, [], where="batches/000001")
    assert problems and "signature" in problems[0]


@pytest.mark.parametrize("field,change", [
    ("exports[0].sha256", lambda b: b["exports"][0].update(sha256="ABC")),
    ("monitor", lambda b: b["monitor"].update(id="liuyang")),
    ("acquired_at", lambda b: b.update(acquired_at="2026-11-20 14:30")),
    ("tool.version", lambda b: b["tool"].update(version="")),
    ("video.sha256", lambda b: b.update(video={})),
    ("sealing_photos", lambda b: b.update(sealing_photos=[])),
])
def test_bad_fields_are_named(field: str, change) -> None:  # type: ignore[no-untyped-def]
    body = filled()
    change(body)
    with pytest.raises(ImportFormatError) as info:
        sign_record(body, _crypto.SigningKey.generate(), signed_by="liuyang")
    assert str(info.value).startswith(f"record, {field}: expected")


def test_unsigned_or_broken_json_is_refused() -> None:
    with pytest.raises(ImportFormatError, match="signature"):
        AcquisitionRecord.parse(json.dumps(filled()).encode(), what="record.json")
    with pytest.raises(ImportFormatError) as info:
        AcquisitionRecord.parse(b'{"format": \n  x}', what="record.json")
    assert "record.json, line 2, column 3" in str(info.value)


# -- bound into a batch at ingest, checked by verify --------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "importers"
LENA = FIXTURES / "whatsapp" / "WhatsApp Chat - Lena.zip"


def _record(export_sha: str) -> AcquisitionRecord:
    signed = sign_record(filled(export_sha), _crypto.SigningKey.generate(), signed_by="liuyang")
    return AcquisitionRecord.parse(json.dumps(signed).encode(), what="record.json")


def test_ingest_binds_the_record_and_verify_checks_the_export_hashes(make_archive) -> None:  # type: ignore[no-untyped-def]
    archive, keys = make_archive()
    record = _record(_crypto.sha256_file(LENA))
    result = ingest_paths(archive, [LENA], keys=keys, actor="liuyang", acquisition=record,
                          options=ImportOptions(tz="Europe/London"))
    assert result.batch_seq == 1
    manifest = archive.manifests()[-1]
    entry = manifest.body["acquisition"]
    assert entry["sha256"] == record.sha256 and entry["signed_by"] == "liuyang" and entry["record"] == record.body
    assert [s["sha256"] for s in manifest.body["sources"]] == [_crypto.sha256_file(LENA)]
    assert verify_archive(archive, keys=keys).ok

    # A batch whose export hash is not the record's: written with a valid archive signature, verify says so.
    forged = copy.deepcopy(manifest.body)
    forged.pop("format", None)
    forged["sources"][0]["sha256"] = "9" * 64
    rewritten = Manifest.build(forged, keys.signing)
    archive.layout.manifest(1).write_bytes(rewritten.file_bytes)
    problems = check_archive(archive, keys=None).problems
    assert any("acquisition record's exports" in p and p.startswith("batches/00000001/manifest.json") for p in problems)


def test_ingest_refuses_files_the_record_does_not_list(make_archive) -> None:  # type: ignore[no-untyped-def]
    archive, keys = make_archive()
    record = _record("a" * 64)
    with pytest.raises(IntegrityError) as info:
        ingest_paths(archive, [LENA], keys=keys, actor="liuyang", acquisition=record)
    assert "WhatsApp Chat - Lena.zip" in str(info.value) and "acquisition record" in str(info.value)
    assert archive.manifests() == []
    refused = [e for e in archive.audit.entries() if e.action == "ingest"]
    assert refused and refused[-1].outcome == "error"
