"""Registered customer consents (客户知情同意书): add, reference from a request, approve; every way to cheat refused.

Each refusal must name its rule (``consent.*``) and leave an audit entry with outcome "denied".
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from investigator.authority.consent import (add_consent, add_consent_bytes, check_consent, is_consent_id,
                                            list_consents, load_consent, verify_consent_file)
from investigator.authority.grants import load_grant, request_status
from investigator.errors import ConfigError, GrantInvalid, PolicyDenied
from investigator.schema import canonical_json

from .conftest import NOW, Org

LATER = NOW + timedelta(minutes=5)
FORM = ("客户知情同意书（电子签名版）: 本人王芳同意调取本人与客服的聊天记录。 signed: Wang Fang, "
        "customer wangfang, 2026-11-18, unique-marker-7f3a9c").encode()


def _add(org: Org, *, case: str = "T-1", data: bytes = FORM, who: str = "sunli", name: str = "consent.pdf"):
    return add_consent_bytes(org.archive, org.keys, data, name=name, case=case, customer="wangfang", uploader=who,
                             signing_key=org.key(who), now=NOW)


def _complaint(org: Org, consent: str, **kw: Any):
    return org.request("sunli", purpose="customer_complaint", consent=consent, **kw)


def _denied(org: Org, action: str, rule: str) -> dict[str, Any]:
    entries = [e for e in org.audit() if e["action"] == action and e["outcome"] == "denied"
               and e["details"].get("rule") == rule]
    assert entries, f"no denied {action} entry with rule {rule}"
    return entries[-1]


def _record_path(org: Org, consent_id: str) -> Path:
    return org.archive.layout.consent(consent_id)


def _edit_record(org: Org, consent_id: str, edit) -> None:
    path = _record_path(org, consent_id)
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def _flip(text: str) -> str:
    """The same text with its first character changed (a one-byte edit)."""
    return ("B" if text[0] != "B" else "C") + text[1:]


def _flip_file_byte(path: Path, at: int = 40) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# --- the happy path ---------------------------------------------------------------------------

def test_add_then_request_then_approve_issues_the_grant(org: Org):
    record = _add(org)
    assert is_consent_id(record.id)
    assert record.summary()["media_type"] == "application/pdf" and record.summary()["size"] == len(FORM)
    signed = _complaint(org, record.id)
    assert signed.request.consent == record.id
    result = org.approve(signed.id, "zhouzong")
    assert result.grant_path is not None and request_status(org.archive, signed.id) == "granted"
    load_grant(result.grant_path).verify(org.archive, now=LATER)
    audit = org.audit()
    added = [e for e in audit if e["action"] == "consent.add"]
    assert added[-1]["target"] == record.id and added[-1]["outcome"] == "allowed"
    assert {"case": "T-1", "customer": "wangfang"}.items() <= added[-1]["details"].items()
    assert added[-1]["details"]["sha256"] == record.sha256
    filed = [e for e in audit if e["action"] == "request.new" and e["target"] == signed.id]
    assert filed[-1]["details"]["consent"] == record.id and filed[-1]["outcome"] == "allowed"
    log = org.archive.layout.audit_log.read_bytes()
    assert b"unique-marker-7f3a9c" not in log and "本人王芳同意".encode() not in log


def test_the_record_is_signed_metadata_and_the_file_is_stored_encrypted(org: Org, tmp_path: Path):
    form = tmp_path / "王芳-知情同意书.pdf"
    form.write_bytes(FORM)
    record = add_consent(org.archive, org.keys, form, case="T-1", customer="wangfang", uploader="sunli",
                         signing_key=org.key("sunli"), now=NOW)
    loaded = load_consent(org.archive, record.id)
    assert loaded.body == record.body and loaded.file["name"] == "王芳-知情同意书.pdf"
    assert loaded.uploader == "sunli" and loaded.key_id == org.key("sunli").public.key_id
    # neither the file nor a recognisable piece of it is anywhere in the archive folder
    for path in org.archive.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert FORM not in data and b"unique-marker-7f3a9c" not in data and "本人王芳同意".encode() not in data, \
                path
    assert org.archive.layout.consent_file(record.id).stat().st_size > len(FORM)  # nonce + tag
    # the stored copy decrypts to the file (the approval's check)
    verdict = check_consent(org.archive, record.id, case="T-1", directory=org.directory(), keys=org.keys)
    assert verdict.allowed and verdict.rule == "consent.verified" and "decrypted" in verdict.reason
    # metadata of the case only
    assert [r.id for r in list_consents(org.archive, case="T-1")] == [record.id]
    assert list_consents(org.archive, case="T-404") == []


def test_verify_a_file_against_the_registered_consent(org: Org, tmp_path: Path):
    record = _add(org)
    same, other = tmp_path / "same.pdf", tmp_path / "other.pdf"
    same.write_bytes(FORM)
    other.write_bytes(FORM + b" ")
    _, passed, problems = verify_consent_file(org.archive, record.id, same, directory=org.directory(),
                                              actor="zhengjie", now=NOW)
    assert not problems and len(passed) == 3
    _, _, problems = verify_consent_file(org.archive, record.id, other, directory=org.directory(),
                                         actor="zhengjie", now=NOW)
    assert problems and "does not match" in problems[0]
    _denied(org, "consent.verify", "consent.hash")


# --- refusals when filing ------------------------------------------------------------------------

def test_unregistered_consent_is_refused(org: Org):
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, "CONSENT-20261128-deadbeef")
    assert err.value.rule == "consent.unregistered" and "investigator consent add" in err.value.hint
    _denied(org, "request.new", "consent.unregistered")


def test_consent_of_another_case_is_refused(org: Org):
    record = _add(org, case="T-OTHER")
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, record.id)
    assert err.value.rule == "consent.case" and "'T-OTHER'" in err.value.reason
    _denied(org, "request.new", "consent.case")


@pytest.mark.parametrize("where", ["signature", "sha256", "case"])
def test_tampered_record_is_refused(org: Org, where: str):
    record = _add(org, case="T-1" if where != "case" else "T-OTHER")

    def edit(doc: dict[str, Any]) -> None:
        if where == "signature":
            doc["signature"] = _flip(doc["signature"])
        elif where == "sha256":
            doc["body"]["file"]["sha256"] = _flip(doc["body"]["file"]["sha256"])
        else:  # a consent of another case, relabelled to fit the request
            doc["body"]["case"] = "T-1"
    _edit_record(org, record.id, edit)
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, record.id)
    assert err.value.rule == "consent.signature" and "does not verify" in err.value.reason
    _denied(org, "request.new", "consent.signature")


def test_record_signed_by_someone_else_is_refused(org: Org):
    record = _add(org)

    def edit(doc: dict[str, Any]) -> None:
        doc["body"]["uploader"] = "lixia"  # re-signed by sunli, but claims lixia uploaded it
        doc["signature"] = org.key("sunli").sign(canonical_json(doc["body"]))
    _edit_record(org, record.id, edit)
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, record.id)
    assert err.value.rule == "consent.signature"


def test_tampered_stored_file_is_refused(org: Org):
    record = _add(org)
    _flip_file_byte(org.archive.layout.consent_file(record.id))
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, record.id)
    assert err.value.rule == "consent.hash"
    _denied(org, "request.new", "consent.hash")


def test_missing_stored_file_is_refused(org: Org):
    record = _add(org)
    org.archive.layout.consent_file(record.id).unlink()
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, record.id)
    assert err.value.rule == "consent.hash" and "missing" in err.value.reason


@pytest.mark.parametrize("reference", ["CONSENT-7", "DEMO-CONSENT-0001", "客户王芳电话口头同意"])
def test_free_text_reference_is_refused_with_a_hint(org: Org, reference: str):
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, reference)
    assert err.value.rule == "consent.reference" and "free text" in err.value.reason
    assert "register the signed consent with 'investigator consent add" in err.value.diagnostics()
    entry = _denied(org, "request.new", "consent.reference")
    assert reference not in json.dumps(entry, ensure_ascii=False)  # the free text is not copied into the log


def test_a_named_consent_is_checked_even_where_the_purpose_needs_none(org: Org):
    with pytest.raises(PolicyDenied) as err:
        org.request("sunli", purpose="internal_audit", consent="CONSENT-7")
    assert err.value.rule == "consent.reference"
    org.request("sunli", purpose="internal_audit")  # and none is needed


def test_an_empty_reference_is_still_the_policy_s_refusal(org: Org):
    with pytest.raises(PolicyDenied) as err:
        _complaint(org, "")
    assert err.value.rule == "consent.required"


def test_only_people_who_may_request_register_consents(org: Org):
    with pytest.raises(PolicyDenied) as err:
        _add(org, who="wugang")  # admin: no request permission
    assert err.value.rule == "role.permission"
    _denied(org, "consent.add", "role.permission")
    with pytest.raises(PolicyDenied) as err:
        add_consent_bytes(org.archive, org.keys, FORM, name="c.pdf", case="T-1", customer="wangfang",
                          uploader="sunli", signing_key=org.key("lixia"), now=NOW)
    assert err.value.rule == "person.key"
    with pytest.raises(ConfigError):
        _add(org, data=b"")
    assert not list_consents(org.archive, case="T-1")


# --- the approval checks again --------------------------------------------------------------------

def test_stored_file_tampered_after_the_request_is_caught_on_approval(org: Org):
    record = _add(org)
    signed = _complaint(org, record.id)
    _flip_file_byte(org.archive.layout.consent_file(record.id))
    with pytest.raises(PolicyDenied) as err:
        org.approve(signed.id, "zhouzong")
    assert err.value.rule == "consent.hash"
    _denied(org, "request.approve", "consent.hash")
    assert request_status(org.archive, signed.id) == "pending"
    # the code was not spent on a refused approval, and a rejection stays possible
    assert org.approve(signed.id, "zhouzong", decision="reject").decision.rule == "request.rejected"


def test_wrapped_key_tampered_after_the_request_is_caught_on_approval(org: Org):
    """Only decryption sees this: the wrapped key is outside the signed body."""
    record = _add(org)
    signed = _complaint(org, record.id)

    def edit(doc: dict[str, Any]) -> None:
        doc["key"]["wrapped"] = _flip(doc["key"]["wrapped"])
    _edit_record(org, record.id, edit)
    with pytest.raises(PolicyDenied) as err:
        org.approve(signed.id, "zhouzong")
    assert err.value.rule == "consent.hash" and "does not decrypt" in err.value.reason


def test_record_tampered_or_removed_after_the_request_is_caught_on_approval(org: Org):
    record = _add(org)
    signed = _complaint(org, record.id)
    _edit_record(org, record.id, lambda doc: doc["body"].update(customer="someone-else"))
    with pytest.raises(PolicyDenied) as err:
        org.approve(signed.id, "zhouzong")
    assert err.value.rule == "consent.signature"
    _record_path(org, record.id).unlink()
    with pytest.raises(PolicyDenied) as err:
        org.approve(signed.id, "zhouzong", when=LATER)
    # the record was covered by the state head the refused approval's checkpoint wrote: its removal is caught as
    # such (issue #13, item 2); without a head it is consent.unregistered
    assert err.value.rule in ("consent.unregistered", "state.head")
    _denied(org, "request.approve", err.value.rule)


def test_a_grant_whose_consent_was_altered_no_longer_verifies(org: Org):
    record = _add(org)
    result = org.approve(_complaint(org, record.id).id, "zhouzong")
    grant = load_grant(result.grant_path)
    grant.verify(org.archive, now=LATER)
    _flip_file_byte(org.archive.layout.consent_file(record.id))
    with pytest.raises(GrantInvalid, match=r"consent does not verify \(consent.hash\)"):
        grant.verify(org.archive, now=LATER)
    entry = [e for e in org.audit() if e["action"] == "grant.verify"][-1]
    assert entry["outcome"] == "denied" and "consent.hash" in entry["details"]["reason"]


def test_the_demo_grant_rests_on_a_registered_consent(org: Org):
    grant = load_grant(org.grant_path)
    assert is_consent_id(grant.request.request.consent)
    record = load_consent(org.archive, grant.request.request.consent)
    assert record.case == grant.case and record.customer == "wangfang"
    assert check_consent(org.archive, record.id, case=grant.case, directory=org.directory(), keys=org.keys).allowed


def test_consents_survive_key_rotation_and_retirement_of_the_old_version(org: Org):
    """Rotation rewraps each consent file's key; retiring the old master key leaves every consent readable."""
    from investigator.custody.rotation import retire, rotate, wrapped_versions

    record = _add(org)
    before = load_consent(org.archive, record.id).wrapped_key["kek_version"]
    rotate(org.archive, org.keys, actor="wugang", now=NOW)
    assert wrapped_versions(org.archive)[f"consent {record.id}"] == before + 1
    retire(org.archive, org.keys, version=before, actor="wugang", now=NOW)
    assert load_consent(org.archive, record.id).signature  # still a signed record: only its unsigned key moved
    signed = _complaint(org, record.id)
    result = org.approve(signed.id, "zhouzong")  # approval decrypts the stored file and checks its hash
    assert result.grant_path is not None and request_status(org.archive, signed.id) == "granted"


def test_a_consent_never_replaces_files_already_under_its_id(org: Org, monkeypatch):
    """The files are created write-once: a (practically impossible) id collision, or a racing upload that wrote the
    blob first, is refused and leaves the files there as they were; nothing is audited as registered."""
    import investigator.authority.consent as consent

    monkeypatch.setattr(consent.secrets, "token_hex", lambda n: "0badc0de")
    blob = org.archive.layout.consent_file(f"CONSENT-{NOW.astimezone(org.archive.config.zone):%Y%m%d}-0badc0de")
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(b"the other upload's blob")
    registered = len([e for e in org.audit() if e["action"] == "consent.add" and e["outcome"] == "allowed"])
    with pytest.raises(ConfigError, match="is taken"):
        _add(org)
    assert blob.read_bytes() == b"the other upload's blob"
    assert len([e for e in org.audit() if e["action"] == "consent.add" and e["outcome"] == "allowed"]) == registered
