"""Evidence bundles: export under the demo grant, offline verification, tamper detection, refusals."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from investigator.vault.store import Archive
from investigator.reports.bundles import export_bundle, verify_bundle
from investigator.vault.proofs import inclusion_proofs
from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session
from investigator.errors import PolicyDenied
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.authority.identity import unlock_person_key
from investigator.vault.merkle import verify_inclusion
from investigator.custody.file import unlock_archive

pytestmark = pytest.mark.slow


def key(archive: Archive, person: str):
    return unlock_person_key(archive, person, DEMO_ONLY_PASSPHRASE.format(person=person),
                             key_dir=archive.root / "demo-keys")


@pytest.fixture(scope="module")
def bundle_archive(demo_archive, tmp_path_factory) -> Archive:
    root = tmp_path_factory.mktemp("bundles") / "archive"
    shutil.copytree(demo_archive, root)
    return Archive.open(root)


@pytest.fixture(scope="module")
def bundle(bundle_archive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "case.zip"
    result = export_bundle(bundle_archive, grant=demo_grant(bundle_archive.root), person="sunli",
                           signer=key(bundle_archive, "sunli"), passphrase=DEMO_PASSPHRASE,
                           session=demo_session(bundle_archive.root), prefix="ACME", out=out)
    assert not result.held and result.path == out
    return out


def rewrite(source: Path, target: Path, change) -> Path:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(source) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    change(files)
    with zipfile.ZipFile(target, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return target


def test_bundle_verifies_offline_with_the_archive_key_only(bundle, bundle_archive):
    result = verify_bundle(bundle, pubkeys=[bundle_archive.signing_public])
    assert result.ok, result.problems
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        summary = zf.read("summary.csv").decode("utf-8-sig").splitlines()
    assert {"messages.parquet", "messages.jsonl", "proofs.jsonl", "attachments.jsonl", "summary.csv", "grant.json",
            "audit.jsonl", "manifest.json", "signature.json", "archive.pub"} <= names
    assert summary[0].startswith("evidence_no,") and summary[1].startswith("ACME-000001,")
    # local time with its UTC offset (the load file names no zone otherwise), the same instant as ts_utc
    first = next(csv.DictReader(summary))
    local = datetime.fromisoformat(first["ts_local"])
    assert first["ts_local"].endswith("+08:00") and len(first["ts_local"]) == len("2026-11-18 14:35:00+08:00")
    utc = datetime.strptime(first["ts_utc"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert local == utc.replace(microsecond=0)
    # copies of one message from several exports are linked to its canonical item: 116 items, 38 messages
    table = list(csv.DictReader(summary))
    canonical = {r["evidence_no"] for r in table if not r["copy_of"]}
    assert len(table) == 116 and len(canonical) == 38
    assert {r["copy_of"] for r in table if r["copy_of"]} <= canonical
    complaint = [r for r in table if r["ts_local"] == "2026-11-18 14:35:00+08:00"]
    assert len(complaint) == 8 and len({r["copy_of"] or r["evidence_no"] for r in complaint}) == 1
    # each copy's sender is named as the directory knows her, whatever account the export shows
    assert {r["sender_person"] for r in complaint} == {"王芳 (wangfang)"}
    assert {r["sender_name"] for r in complaint if r["source"] == "wecom"} == {"wmgcCs42YaNEANiWge"}
    assert not verify_bundle(bundle, pubkeys=[key(bundle_archive, "sunli").public]).ok  # wrong anchor


def test_each_proof_checks_against_the_signed_manifest_root(bundle, bundle_archive):
    with zipfile.ZipFile(bundle) as zf:
        proofs = [json.loads(line) for line in zf.read("proofs.jsonl").decode().splitlines()]
    roots = {m.seq: m.body["merkle"] for m in bundle_archive.manifests()}
    for proof in proofs:
        merkle = roots[proof["batch_seq"]]
        assert proof["root"] == merkle["root"] and proof["tree_size"] == merkle["leaves"]
        assert verify_inclusion(bytes.fromhex(proof["record_hash"]), proof["leaf_index"], merkle["leaves"],
                                [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(merkle["root"]))


def test_inclusion_proofs_outside_the_window(bundle_archive):
    keys = unlock_archive(bundle_archive, DEMO_PASSPHRASE)
    manifest = bundle_archive.manifests()[0]
    last = manifest.body["merkle"]["leaves"] - 1
    [proof] = inclusion_proofs(bundle_archive, keys, manifest.seq, [last])
    assert set(proof) == {"batch_seq", "leaf_index", "tree_size", "record_hash", "root", "path"}


@pytest.mark.parametrize("change", [
    pytest.param(lambda f: f.__setitem__("summary.csv", f["summary.csv"] + b"x"), id="change-file"),
    pytest.param(lambda f: f.__setitem__("extra.txt", b"added"), id="add-file"),
    pytest.param(lambda f: f.pop("audit.jsonl"), id="remove-file"),
    pytest.param(lambda f: f.pop("manifests/" + sorted(n[10:] for n in f if n.startswith("manifests/"))[0]),
                 id="remove-ingest-manifest"),
    pytest.param(lambda f: f.__setitem__("signature.json", f["signature.json"].replace(b'"signature":"', b'"signature":"A', 1)),
                 id="signature"),
])
def test_any_file_change_fails(bundle, bundle_archive, tmp_path, change):
    tampered = rewrite(bundle, tmp_path / "t.zip", change)
    assert not verify_bundle(tampered, pubkeys=[bundle_archive.signing_public]).ok


def test_a_changed_message_fails_even_with_a_fixed_manifest(bundle, bundle_archive, tmp_path):
    import hashlib

    def change(files):
        lines = files["messages.jsonl"].decode().splitlines()
        row = json.loads(lines[0])
        row["text"] = (row.get("text") or "") + " (edited)"
        row["complete"] = True
        lines[0] = json.dumps(row, ensure_ascii=False, sort_keys=True)
        files["messages.jsonl"] = ("\n".join(lines) + "\n").encode()
        manifest = json.loads(files["manifest.json"])
        manifest["files"]["messages.jsonl"]["sha256"] = hashlib.sha256(files["messages.jsonl"]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()

    result = verify_bundle(rewrite(bundle, tmp_path / "m.zip", change), pubkeys=[bundle_archive.signing_public])
    assert not result.ok
    assert any("record hash" in p or "manifest.json changed" in p for p in result.problems)


def test_ids_that_name_no_granted_message_are_said_not_silently_dropped(bundle, bundle_archive, tmp_path):
    from click.testing import CliRunner

    from investigator.cli import main

    root = bundle_archive.root
    with zipfile.ZipFile(bundle) as zf:
        first = json.loads(zf.read("messages.jsonl").decode().splitlines()[0])["message_id"]
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{first}\nno-such-message\n{first}\n", encoding="utf-8")
    env = {"INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE,
           "INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(person="sunli")}
    args = ["bundle", "export", "--archive", str(root), "--grant", demo_grant(root), "--as", "sunli",
            "--session", demo_session(root), "--key-dir", str(root / "demo-keys"), "--ids", str(ids)]
    done = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "one.zip")], env=env)
    assert done.exit_code == 0, done.output
    assert "1 items" in done.output and "1 id(s) in" in done.output and "not exported: no-such-message" in done.output
    done = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "two.zip"), "--json"], env=env)
    assert json.loads(done.stdout)["missing"] == ["no-such-message"]
    [entry] = [e for e in bundle_archive.audit.entries() if e.action == "bundle.export"
               and e.details.get("bundle_id") == json.loads(done.stdout)["bundle_id"]]
    assert entry.details["ids_missing"] == 1 and entry.details["items"] == 1


def test_export_needs_the_export_permission(bundle_archive, tmp_path):
    with pytest.raises(PolicyDenied):
        export_bundle(bundle_archive, grant=demo_grant(bundle_archive.root), person="zhangwei",
                      signer=key(bundle_archive, "zhangwei"), passphrase=DEMO_PASSPHRASE, session="x",
                      out=tmp_path / "no.zip")
    assert not (tmp_path / "no.zip").exists()
    denied = [e for e in bundle_archive.audit.entries() if e.action == "bundle.export" and e.outcome == "denied"]
    assert denied


def test_breaker_holds_the_bundle_until_a_legal_release(bundle_archive, tmp_path, monkeypatch):
    from investigator.access import exportcheck

    # the embedded key service's reading of [breaker.categories] (test_breaker_lockdown.py signs a real policy):
    # what holds is its verdict, not the exporting client's
    monkeypatch.setattr(exportcheck, "policy_categories", lambda policy: {"complaint": ["投诉"]})
    result = export_bundle(bundle_archive, grant=demo_grant(bundle_archive.root), person="sunli",
                           signer=key(bundle_archive, "sunli"), passphrase=DEMO_PASSPHRASE,
                           session=demo_session(bundle_archive.root), out=tmp_path / "held.zip")
    assert result.held and not (tmp_path / "held.zip").exists()
    assert result.path.is_relative_to(bundle_archive.root)
    assert any(e.action == "breaker.alert" for e in bundle_archive.audit.entries())
    from investigator.reports.bundles import release_bundle

    with pytest.raises(PolicyDenied):  # an executive is no legal reviewer; the operator may not release
        release_bundle(bundle_archive, result.bundle_id, releaser="zhouzong", signer=key(bundle_archive, "zhouzong"),
                       passphrase=DEMO_PASSPHRASE, note="x", out=tmp_path / "r.zip")
    with pytest.raises(PolicyDenied):
        release_bundle(bundle_archive, result.bundle_id, releaser="sunli", signer=key(bundle_archive, "sunli"),
                       passphrase=DEMO_PASSPHRASE, note="x", out=tmp_path / "r.zip")
    assert not (tmp_path / "r.zip").exists()  # refused before anything is written, each refusal audited
    assert [e.actor for e in bundle_archive.audit.entries()
            if e.action == "bundle.release" and e.outcome == "denied"] == ["zhouzong", "sunli"]
    _held_is_encrypted_and_released_by_a_legal_reviewer(bundle_archive, result, tmp_path)


def _held_is_encrypted_and_released_by_a_legal_reviewer(archive: Archive, result, tmp_path: Path) -> None:
    """The held bundle is an envelope no one reads without the key service; a legal reviewer's release opens it."""
    from investigator.access.held import HELD_FORMAT
    from investigator.errors import IntegrityError
    from investigator.reports.bundles import release_bundle

    held = result.path
    assert held.suffix == ".held" and not zipfile.is_zipfile(held)
    envelope = json.loads(held.read_bytes())
    assert envelope["format"] == HELD_FORMAT and envelope["operator"] == "sunli"
    assert set(envelope) == {"format", "archive_id", "bundle_id", "operator", "manifest_sha256", "created", "key",
                             "ciphertext"}  # metadata, a sealed key, and ciphertext: nothing readable
    text = held.read_bytes()
    assert b"messages.jsonl" not in text and "投诉".encode() not in text
    # the operator named in the envelope is bound to the ciphertext: an edit is caught before any decision
    original = held.read_bytes()
    held.write_text(json.dumps({**envelope, "operator": "zhouzong"}), encoding="utf-8")
    with pytest.raises(IntegrityError):
        release_bundle(archive, result.bundle_id, releaser="sunli", signer=key(archive, "sunli"),
                       passphrase=DEMO_PASSPHRASE, note="x", out=tmp_path / "r.zip")
    assert not (tmp_path / "r.zip").exists()
    last = [e for e in archive.audit.entries() if e.action == "bundle.release"][-1]
    assert (last.actor, last.outcome, last.details["rule"]) == ("sunli", "denied", "release.envelope")
    held.write_bytes(original)
    released = release_bundle(archive, result.bundle_id, releaser="lixia", signer=key(archive, "lixia"),
                              passphrase=DEMO_PASSPHRASE, note="personal data checked", out=tmp_path / "r.zip")
    checked = verify_bundle(released, pubkeys=[archive.signing_public])
    assert checked.ok and checked.facts.get("released"), checked.problems
    with zipfile.ZipFile(released) as zf:
        body = json.loads(zf.read("release.json"))["body"]
    assert body["reviewer"] == "lixia" and body["acknowledged"]  # the breaker's reasons, as the desk read them

