"""`grant verify` pinned to the archive key, and fed hostile grant files (exit 4 with the position, no traceback)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from investigator import _crypto
from investigator.authority.grants import load_grant
from investigator.cli import main
from investigator.errors import IntegrityError
from investigator.schema import canonical_json
from investigator.vault.store import Archive

from .conftest import NOW, Org

LATER = NOW + timedelta(minutes=5)


def _fingerprint(org: Org) -> str:
    return hashlib.sha256(_crypto.VerifyKey.from_b64(org.archive.config.signing_public_key).raw).hexdigest()


def _other() -> str:
    return hashlib.sha256(_crypto.SigningKey.generate().public.raw).hexdigest()


def _cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], env={"INVESTIGATOR_KEYSERVER": ""})


def test_a_matching_pin_passes(org: Org) -> None:
    grant = load_grant(org.grant_path).verify(org.archive, now=LATER, pin=_fingerprint(org))
    assert grant.id == org.grant_id


def test_a_wrong_pin_fails_with_the_reason_and_is_audited(org: Org) -> None:
    with pytest.raises(IntegrityError, match="not the pinned key"):
        load_grant(org.grant_path).verify(org.archive, now=LATER, pin=_other())
    last = org.audit()[-1]
    assert last["action"] == "grant.verify" and last["outcome"] == "denied" and last["details"]["rule"] == "grant.pin"


def test_the_replaced_archive_key_is_caught_with_a_pin(org: Org) -> None:
    genuine = _fingerprint(org)
    forged = _crypto.SigningKey.generate()
    toml = org.archive.root / "archive.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(org.archive.config.signing_public_key,
                                                             forged.public.b64()), encoding="utf-8")
    (org.archive.root / "keys" / "archive-signing.pub").write_text(forged.public.b64() + "\n")
    doc = org.grant_doc()  # the attacker re-signs the grant with the new key
    doc["grant"]["signature"] = forged.sign(canonical_json(doc["grant"]["body"]))
    org.write_grant_doc(doc)
    with pytest.raises(IntegrityError, match="not the pinned key"):
        load_grant(org.grant_path).verify(Archive.open(org.archive.root), now=LATER, pin=genuine)


def test_cli_wrong_pin_exits_4_and_a_matching_pin_gets_past_the_pin(org: Org) -> None:
    wrong = _cli("grant", "verify", org.archive.root, org.grant_id, "--fingerprint", _other())
    assert wrong.exit_code == 4 and "not the pinned key" in wrong.output
    unpinned = _cli("grant", "verify", org.archive.root, org.grant_id)
    pinned = _cli("grant", "verify", org.archive.root, org.grant_id, "--fingerprint", _fingerprint(org))
    # the wall clock decides expiry here; the pin must change nothing but the note
    assert pinned.exit_code == unpinned.exit_code and "not the pinned key" not in pinned.output
    if unpinned.exit_code == 0:
        assert "taken from the archive itself" in unpinned.output and "signing key pinned" in pinned.output


HOSTILE = [
    ("not JSON", b"{\"format\": \n garbage", "line 2, column 2"),
    ("not UTF-8", b'{"format": "\x80"}', "not UTF-8 at byte 12"),
    ("a JSON list", b"[1, 2, 3]", "not an investigator grant"),
    ("request missing", json.dumps({"format": "investigator-grant/1"}).encode(), "field 'request'"),
    ("approvals not a list", None, "field 'approvals'"),
    ("an approval not an object", None, "field 'approvals[1]'"),
    ("grant body a string", None, "field 'grant'"),
]


@pytest.mark.parametrize("name,data,position", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_grant_files_exit_4_with_the_position(org: Org, tmp_path, name, data, position) -> None:
    if data is None:
        doc = org.grant_doc()
        if name == "approvals not a list":
            doc["approvals"] = "zhouzong"
        elif name == "an approval not an object":
            doc["approvals"] = [7]
        else:
            doc["grant"]["body"] = "expiry=2099"
        data = json.dumps(doc).encode()
    path = tmp_path / "hostile-grant.json"
    path.write_bytes(data)
    out = _cli("grant", "verify", org.archive.root, path)
    assert out.exit_code == 4, out.output
    assert "Traceback" not in out.output and isinstance(out.exception, SystemExit)
    assert str(path) in out.output and position in out.output


def test_a_signed_field_of_the_wrong_shape_is_a_finding(org: Org) -> None:
    doc = org.grant_doc()
    doc["grant"]["body"]["expiry"] = 12
    org.write_grant_doc(doc)
    out = _cli("grant", "verify", org.archive.root, org.grant_id)
    assert out.exit_code in (4, 9) and isinstance(out.exception, SystemExit), out.output
    assert "Traceback" not in out.output
