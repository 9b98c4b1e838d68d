"""`bundle verify` pinned to the archive key (--pubkey / --fingerprint), and fed hostile bundles.

Each hostile bundle ends in exit code 4 with the member (and line) named, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from investigator import _crypto
from investigator.authority.grants import Grant
from investigator.authority.identity import unlock_person_key
from investigator.cli import main
from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.reports.bundles import export_bundle, verify_bundle
from investigator.schema import canonical_json
from investigator.vault.manifest import Manifest
from investigator.vault.store import Archive

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(demo_archive, tmp_path_factory) -> Archive:
    root = tmp_path_factory.mktemp("pinned-bundles") / "archive"
    shutil.copytree(demo_archive, root)
    return Archive.open(root)


@pytest.fixture(scope="module")
def bundle(archive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pb") / "case.zip"
    signer = unlock_person_key(archive, "sunli", DEMO_ONLY_PASSPHRASE.format(person="sunli"),
                               key_dir=archive.root / "demo-keys")
    result = export_bundle(archive, grant=demo_grant(archive.root), person="sunli", signer=signer,
                           passphrase=DEMO_PASSPHRASE, session=demo_session(archive.root), out=out)
    assert not result.held
    return out


def _fingerprint(archive: Archive) -> str:
    return hashlib.sha256(_crypto.VerifyKey.from_b64(archive.config.signing_public_key).raw).hexdigest()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(files: dict[str, bytes], target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return target


def _cli(*args: object):
    return CliRunner().invoke(main, ["bundle", "verify", *map(str, args)])


def test_pins_that_match_pass_and_unpinned_says_where_the_key_came_from(bundle, archive, tmp_path) -> None:
    pub = tmp_path / "pinned.pub"
    shutil.copy(archive.root / "keys" / "archive-signing.pub", pub)
    for args in (["--pubkey", pub], ["--fingerprint", _fingerprint(archive)]):
        out = _cli(bundle, *args)
        assert out.exit_code == 0, out.output
        assert "signing key pinned" in out.output and "taken from the bundle itself" not in out.output
    unpinned = _cli(bundle)
    assert unpinned.exit_code == 0, unpinned.output
    assert "taken from the bundle itself" in unpinned.output


def test_a_wrong_pin_fails_with_the_reason(bundle) -> None:
    other = hashlib.sha256(_crypto.SigningKey.generate().public.raw).hexdigest()
    out = _cli(bundle, "--fingerprint", other)
    assert out.exit_code == 4 and "not the pinned key" in out.output and other[:16] in out.output
    # the bundle's manifests are there, only not under the pinned key: not reported as missing
    assert "is not in the bundle" not in out.output
    assert "-000001: its ingest manifest (batch " in out.output and ".json, above)" in out.output
    with zipfile.ZipFile(bundle) as zf:
        batches = [n for n in zf.namelist() if n.startswith("manifests/")]
    assert "signed by an untrusted key" in out.output and all(n in out.output for n in batches)


def _forge(files: dict[str, bytes]) -> dict[str, bytes]:
    """The attack: a new archive key in the bundle, every archive signature (and the operator's) redone with it."""
    forged, operator = _crypto.SigningKey.generate(), _crypto.SigningKey.generate()
    files = dict(files)
    files.pop("archive-keys.jsonl", None)
    files["archive.pub"] = (forged.public.b64() + "\n").encode()
    for name in [n for n in files if n.startswith("manifests/")]:
        files[name] = Manifest.build(Manifest.parse(files[name], what=name).body, forged).file_bytes
    grant = json.loads(files["grant.json"])
    grant["grant"]["signature"] = forged.sign(canonical_json(grant["grant"]["body"]))
    files["grant.json"] = json.dumps(grant).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["grant_hash"] = Grant.from_json(grant).hash
    manifest["files"].pop("archive-keys.jsonl", None)
    for name in ["archive.pub", "grant.json", *[n for n in files if n.startswith("manifests/")]]:
        manifest["files"][name]["sha256"] = hashlib.sha256(files[name]).hexdigest()
    files["manifest.json"] = canonical_json(manifest)
    signature = json.loads(files["signature.json"])
    body = dict(signature["archive"]["body"], manifest_sha256=hashlib.sha256(files["manifest.json"]).hexdigest(),
                operator_key_id=operator.public.key_id)
    signature["archive"] = {"body": body, "key_id": forged.public.key_id, "signature": forged.sign(canonical_json(body))}
    signature["operator"].update(public=operator.public.b64(), key_id=operator.public.key_id,
                                 signature=operator.sign(files["manifest.json"]))
    files["signature.json"] = json.dumps(signature).encode()
    return files


def test_a_bundle_re_signed_with_a_replaced_key_is_caught_only_with_a_pin(bundle, archive, tmp_path) -> None:
    forged = _write(_forge(_members(bundle)), tmp_path / "forged.zip")
    unpinned = verify_bundle(forged)
    assert unpinned.ok, unpinned.problems  # self-consistent: the key it carries verifies it
    pinned = verify_bundle(forged, pin=_fingerprint(archive))
    assert not pinned.ok and any("not the pinned key" in p for p in pinned.problems)
    by_key = verify_bundle(forged, pubkeys=[archive.signing_public])
    assert not by_key.ok and any("not among the trusted keys" in p for p in by_key.problems)
    assert verify_bundle(bundle, pin=_fingerprint(archive)).ok  # the untouched bundle passes


def _set(name: str, data: bytes):
    return lambda files: files.__setitem__(name, data)


def _first_manifest(files: dict[str, bytes]) -> None:
    files[sorted(n for n in files if n.startswith("manifests/"))[0]] = b"{garbage"


def _message_without_leaf(files: dict[str, bytes]) -> None:
    row = json.loads(files["messages.jsonl"].decode().splitlines()[0])
    row.pop("leaf_index")
    files["messages.jsonl"] = (json.dumps(row) + "\n").encode()


HOSTILE = [
    ("garbage audit.jsonl", _set("audit.jsonl", b"{\"seq\": 1}\nnot json at all\n"), "audit.jsonl, line 2: not JSON"),
    ("audit line a list", _set("audit.jsonl", b"[1, 2]\n"), "audit.jsonl, line 1: not a JSON object"),
    ("audit entry of odd types", _set("audit.jsonl", b'{"seq": {"a": [1]}, "hash": 5, "details": 3}\n'),
     "audit.jsonl: entry"),
    ("audit.jsonl not UTF-8", _set("audit.jsonl", b"{}\n\xff\n"), "audit.jsonl: not UTF-8 at byte 3"),
    ("messages line garbage", _set("messages.jsonl", b"{}\n{oops\n"), "messages.jsonl, line 2: not JSON"),
    ("message without leaf", _message_without_leaf, "messages.jsonl, line 1: not a message record"),
    ("proofs not JSON", _set("proofs.jsonl", b"]\n"), "proofs.jsonl, line 1: not JSON"),
    ("manifest not JSON", _set("manifest.json", b"{\n]"), "manifest.json: not JSON (line 2, column 1)"),
    ("manifest a list", _set("manifest.json", b"[]"), "manifest.json: not a JSON object"),
    ("manifest files a list", _set("manifest.json", b'{"files": {"audit.jsonl": 3}}'),
     "manifest.json: 'files' is not a table"),
    ("signature missing", lambda f: f.pop("signature.json"), "signature.json: missing"),
    ("signature archive a string", _set("signature.json", b'{"archive": "x", "operator": 7}'),
     "signature.json: the archive key"),
    ("ingest manifest garbage", _first_manifest, "not a valid manifest"),
    ("grant not JSON", _set("grant.json", b"nope"), "grant.json missing or malformed"),
    ("release garbage", _set("release.json", b'{"reviewer": {"public": 12}}'), "release.json does not verify"),
    ("archive.pub garbage", _set("archive.pub", b"not a key\n"), "archive.pub: not an Ed25519 public key"),
]


@pytest.mark.parametrize("name,change,position", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bundles_exit_4_with_the_position(bundle, archive, tmp_path, name, change, position) -> None:
    files = _members(bundle)
    change(files)
    hostile = _write(files, tmp_path / "hostile.zip")
    pin = [] if name == "archive.pub garbage" else ["--fingerprint", _fingerprint(archive)]
    out = _cli(hostile, *pin)
    assert out.exit_code == 4, out.output
    assert isinstance(out.exception, SystemExit) and "Traceback" not in out.output
    assert position in out.output


def test_not_a_zip_is_a_finding(tmp_path) -> None:
    path = tmp_path / "case.zip"
    path.write_bytes(b"PK\x03\x04 truncated")
    out = _cli(path)
    assert out.exit_code == 4 and "not a readable zip file" in out.output
