"""Pinned verification of an archive: `verify --pubkey/--fingerprint`, `info --json` prints the fingerprint.

The attack (issue #13): replace the archive's public key in archive.toml and
keys/archive-signing.pub and re-sign the manifests with the new key. Only a key
known out of band (the pin) tells the forged archive from the real one.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from click.testing import CliRunner

from support import message_frame
from investigator import _crypto
from investigator.cli import main
from investigator.vault.ingest import ingest_frames
from investigator.vault.manifest import Manifest
from investigator.vault.store import Archive
from investigator.vault.keychain import KeyChain
from investigator.vault.verify import check_archive_pin, check_pin, key_fingerprint
from investigator.verification import Verification


def _cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], env={"INVESTIGATOR_KEYSERVER": ""})


@pytest.fixture
def archive(make_archive):
    archive, keys = make_archive(timezone_name="UTC")
    for start in (0, 30):
        ingest_frames(archive, messages=message_frame(30, start_id=start), events=None, keys=keys, actor="tester",
                      sources=[{"name": f"t{start}.jsonl", "sha256": "0" * 64, "size": 1, "format": "jsonl"}],
                      skipped=[])
    return archive


def _fingerprint(archive: Archive) -> str:
    raw = _crypto.VerifyKey.from_b64(archive.config.signing_public_key).raw
    return hashlib.sha256(raw).hexdigest()


def _forge_key(root) -> _crypto.SigningKey:
    """The attack: a new key in archive.toml and keys/archive-signing.pub, every manifest re-signed and re-chained."""
    archive = Archive.open(root)
    old = archive.config.signing_public_key
    forged = _crypto.SigningKey.generate()
    toml = root / "archive.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(old, forged.public.b64()), encoding="utf-8")
    (root / "keys" / "archive-signing.pub").write_text(forged.public.b64() + "\n", encoding="utf-8")
    prev = None
    for seq in range(1, len(archive.batch_names()) + 1):
        path = archive.layout.manifest(seq)
        body = dict(Manifest.load(path).body)
        if prev is not None:
            body["prev_manifest"] = prev
        rebuilt = Manifest.build(body, forged)
        path.write_bytes(rebuilt.file_bytes)
        prev = rebuilt.digest
    return forged


def test_info_json_prints_the_fingerprint_of_the_genesis_key(archive) -> None:
    out = _cli("info", archive.root, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["signing_key_fingerprint"] == _fingerprint(archive)
    assert key_fingerprint(archive.signing_keys().genesis) == _fingerprint(archive)


def test_unpinned_verify_says_the_key_came_from_the_archive(archive) -> None:
    out = _cli("verify", archive.root, "--offline")
    assert out.exit_code == 0, out.output
    assert "taken from the archive itself" in out.output


def test_matching_pin_passes_by_fingerprint_and_by_key_file(archive, tmp_path) -> None:
    pinned = tmp_path / "pinned.pub"
    shutil.copy(archive.root / "keys" / "archive-signing.pub", pinned)
    by_hex = _cli("verify", archive.root, "--offline", "--fingerprint", _fingerprint(archive).upper())
    by_file = _cli("verify", archive.root, "--offline", "--pubkey", pinned)
    for out in (by_hex, by_file):
        assert out.exit_code == 0, out.output
        assert "signing key pinned" in out.output and "taken from the archive itself" not in out.output


def test_wrong_pin_fails_with_the_reason(archive) -> None:
    other = hashlib.sha256(_crypto.SigningKey.generate().public.raw).hexdigest()
    out = _cli("verify", archive.root, "--offline", "--fingerprint", other)
    assert out.exit_code == 4
    assert "not the pinned key" in out.output and other[:16] in out.output


def test_a_malformed_fingerprint_is_refused(archive) -> None:
    out = _cli("verify", archive.root, "--offline", "--fingerprint", "abc123")
    assert out.exit_code == 2 and "64 hex digits" in out.output


def test_replaced_and_resigned_key_is_caught_only_with_a_pin(archive, tmp_path) -> None:
    genuine = _fingerprint(archive)
    copy = tmp_path / "forged"
    shutil.copytree(archive.root, copy)
    forged = _forge_key(copy)
    opened = Archive.open(copy)
    for seq in (1, 2):  # the forgery is self-consistent: every manifest verifies under the archive's (new) key
        Manifest.load(opened.layout.manifest(seq)).verify_signature(opened.signing_keys(), what="m")
    assert key_fingerprint(opened.signing_keys().genesis) == key_fingerprint(forged.public)
    out = _cli("verify", copy, "--offline", "--fingerprint", genuine)
    assert out.exit_code == 4
    assert "archive.toml: the archive's genesis signing key" in out.output and "not the pinned key" in out.output
    untouched = _cli("verify", archive.root, "--offline", "--fingerprint", genuine)
    assert untouched.exit_code == 0, untouched.output


def test_a_public_key_file_that_disagrees_with_archive_toml_is_a_problem(archive) -> None:
    (archive.root / "keys" / "archive-signing.pub").write_text(_crypto.SigningKey.generate().public.b64() + "\n")
    result = Verification("archive")
    check_archive_pin(archive, _fingerprint(archive), result)
    assert any("keys/archive-signing.pub: differs" in p for p in result.problems)


def _garbage_line(path, line: bytes) -> None:
    path.write_bytes(path.read_bytes() + line)


HOSTILE = [
    ("manifest not JSON", lambda root: (root / "batches" / "00000002" / "manifest.json").write_bytes(b"{oops"),
     "batches/00000002/manifest.json"),
    ("manifest a list", lambda root: (root / "batches" / "00000001" / "manifest.json").write_bytes(b"[]"),
     "batches/00000001/manifest.json"),
    ("key transitions garbage", lambda root: (root / "keys" / "transitions.jsonl").write_bytes(b"garbage\n"),
     "keys/transitions.jsonl record 1"),
    ("audit line garbage", lambda root: _garbage_line(root / "audit" / "log.jsonl", b"{not json\n"), "log.jsonl, line"),
    ("public key file garbage", lambda root: (root / "keys" / "archive-signing.pub").write_bytes(b"\xff\xfe\n"),
     "keys/archive-signing.pub"),
]


@pytest.mark.parametrize("name,change,position", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_archives_exit_4_with_the_position(archive, name, change, position) -> None:
    change(archive.root)
    out = _cli("verify", archive.root, "--offline", "--fingerprint", _fingerprint(archive))
    assert out.exit_code == 4, out.output
    assert isinstance(out.exception, SystemExit) and "Traceback" not in out.output
    assert position in out.output


def test_a_migrated_chain_counts_through_its_genesis_key_only() -> None:
    genesis, later = _crypto.SigningKey.generate().public, _crypto.SigningKey.generate().public
    chain = KeyChain("archive-id", (genesis, later))
    rooted = Verification("archive")
    assert check_pin(chain, key_fingerprint(genesis), rooted) and rooted.ok
    assert "through 1 key transition(s)" in rooted.checked[0]
    current_only = Verification("archive")  # the current key is not the root: pin the genesis key
    assert not check_pin(chain, key_fingerprint(later), current_only)
    assert "not the pinned key" in current_only.problems[0]
