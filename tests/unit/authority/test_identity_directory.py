"""Directory, enrolment, TOTP state, sessions, and the grant API the loader uses."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from investigator import _crypto
from investigator.authority.directory import DirectoryStore, Person, PersonKey, Signer, add_people, read_people_csv
from investigator.errors import IdentityCheckFailed, IntegrityError, PolicyDenied, WrongPassphrase
from investigator.authority.grants import load_grant
from investigator.authority.identity import check_identity, login, revoke_session, unlock_person_key, verify_totp
from investigator.schema import canonical_json

from .conftest import NOW, SHANGHAI, Org

PEOPLE_CSV = Path(__file__).resolve().parents[3] / "data_samples" / "people.csv"


def test_people_csv_gives_identities_and_groups(org: Org):
    directory = org.directory()
    zhangwei = directory.person("zhangwei")
    assert zhangwei.supervisor == "zhaomin" and "agent" in zhangwei.roles
    names = directory.identities()["zhangwei"]
    assert names[:2] == ["zhangwei", "张伟"]
    if PEOPLE_CSV.exists():
        assert "U0ZHANGWEI" in names and "wxid_zhangwei" in names
        # everyone in people.csv, plus the demo's legal reviewer (lixia) that demo_authority adds
        assert {p.id for p in read_people_csv(PEOPLE_CSV)} | {"lixia"} == {p.id for p in directory.people}
    groups = directory.groups()
    assert {"zhangwei", "zhaomin"} <= set(groups["客服一组"])
    assert directory.teammates("zhangwei") >= {"zhangwei", "zhaomin"}


def test_self_made_admin_breaks_the_directory_chain(org: Org):
    store = DirectoryStore(org.archive)
    current = store.load()
    rogue = _crypto.SigningKey.generate()
    zhangwei = current.person("zhangwei")
    promoted = Person(**{**zhangwei.__dict__, "roles": ("admin",),
                         "keys": (PersonKey(rogue.public.key_id, rogue.public.b64(), "x"),)})
    body = {"format": "investigator-directory/1", "archive_id": org.archive.archive_id,
            "version": current.version + 1, "prev": current.digest, "ts": "x", "change": {},
            "people": [p.to_json() for p in current.with_person(promoted)]}
    doc = {"body": body, "signature": {"signer": "zhangwei", "key_id": rogue.public.key_id,
                                       "signature": rogue.sign(canonical_json(body))}}
    org.archive.layout.directory_version(current.version + 1).write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="not an admin"):
        store.load()


def test_archive_key_cannot_sign_once_an_admin_is_enrolled(org: Org):
    with pytest.raises(PolicyDenied) as caught:
        add_people(org.archive, [Person("newbie", "N", roles=("agent",))], signer=Signer.archive(org.keys.signing),
                   now=NOW)
    assert caught.value.rule == "directory.signer"
    assert org.audit()[-1]["outcome"] == "denied"


def test_admin_adds_people_and_roles_are_checked(org: Org):
    from investigator.errors import ConfigError
    from investigator.authority.policy import Policy

    add_people(org.archive, [Person("newbie", "N", roles=("agent",), supervisor="zhaomin")],
               signer=org.signer("wugang"), now=NOW, policy=Policy.default())
    assert "newbie" in org.directory()
    with pytest.raises(ConfigError, match="separation of duties"):
        add_people(org.archive, [Person("both", "B", roles=("admin", "auditor"))], signer=org.signer("wugang"),
                   now=NOW, policy=Policy.default())
    with pytest.raises(ConfigError, match="supervisor"):
        add_people(org.archive, [Person("orphan", "O", supervisor="nobody")], signer=org.signer("wugang"), now=NOW)


def test_wrong_key_passphrase(org: Org):
    with pytest.raises(WrongPassphrase):
        unlock_person_key(org.archive, "sunli", "not it", key_dir=org.key_dir)


def test_skew_of_one_step_is_accepted(org: Org):
    when = NOW + timedelta(minutes=3)
    verify_totp(org.archive, org.keys, "zhaomin", org.code("zhaomin", when - timedelta(seconds=30)), now=when)


def test_lockout_runs_out(org: Org):
    when = NOW + timedelta(minutes=1)
    for i in range(5):
        with pytest.raises(IdentityCheckFailed):
            verify_totp(org.archive, org.keys, "zhaomin", "000000x"[:6] if i % 2 else "12345", now=when)
    with pytest.raises(IdentityCheckFailed, match="locked out"):
        verify_totp(org.archive, org.keys, "zhaomin", org.code("zhaomin", when), now=when)
    later = when + timedelta(minutes=16)
    verify_totp(org.archive, org.keys, "zhaomin", org.code("zhaomin", later), now=later)


def test_edited_totp_state_is_detected(org: Org):
    path = org.archive.root / "org" / "totp" / "zhouzong.json"
    doc = json.loads(path.read_text())
    doc["state"]["last_counter"] = -1  # try to re-open used codes
    path.write_text(json.dumps(doc))
    # its MAC fails; the state head catches it first (a step below the one the head covers; issue #13, item 2)
    with pytest.raises((IdentityCheckFailed, PolicyDenied), match="altered|is below step"):
        verify_totp(org.archive, org.keys, "zhouzong", org.code("zhouzong", NOW), now=NOW)


def test_sessions(org: Org):
    token = login(org.archive, org.keys, "sunli", totp=org.code("sunli", NOW), now=NOW)
    assert check_identity(org.archive, org.keys, "sunli", session=token, now=NOW + timedelta(hours=7)).id == "sunli"
    revoke_session(org.archive, token, actor="sunli", now=NOW)
    with pytest.raises(IdentityCheckFailed, match="revoked"):
        check_identity(org.archive, org.keys, "sunli", session=token, now=NOW + timedelta(hours=1))
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(IdentityCheckFailed, match="signature"):
        check_identity(org.archive, org.keys, "sunli", session=forged, now=NOW)
    with pytest.raises(IdentityCheckFailed, match="TOTP code or a session"):
        check_identity(org.archive, org.keys, "sunli", now=NOW)


def test_a_session_token_has_exactly_one_valid_spelling(org: Org):
    """The last base64url character carries spare bits: a token with them changed must not pass as the same token."""
    token = login(org.archive, org.keys, "sunli", totp=org.code("sunli", NOW), now=NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = token[-1]
    twins = [token[:-1] + c for c in alphabet if c != last]
    assert len(twins) == 63
    for twin in twins:
        with pytest.raises(IdentityCheckFailed):
            check_identity(org.archive, org.keys, "sunli", session=twin, now=NOW)
    assert check_identity(org.archive, org.keys, "sunli", session=token, now=NOW).id == "sunli"


def test_demo_grant_gives_the_loader_what_it_needs(org: Org):
    grant = load_grant(org.grant_path).verify(org.archive, now=NOW)
    start, end = grant.window
    assert start == datetime(2026, 11, 18, 14, tzinfo=SHANGHAI) and end == datetime(2026, 11, 18, 17, tzinfo=SHANGHAI)
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
    assert grant.operator == "sunli" and grant.fields == ("metadata", "content")
    assert grant.scope == {"conversations": [], "participants": [], "groups": []}
    assert grant.id.startswith("G-") and len(grant.hash) == 64
    assert grant.allows_template("anything")
    assert org.audit()[-1]["action"] == "grant.verify" and org.audit()[-1]["outcome"] == "allowed"


def test_sensitive_request_with_two_approvals_and_legal_review(org: Org):
    req = org.request("zhaomin", purpose="legal_dispute", fields=("metadata", "content"))
    first = org.approve(req.id, "zhouzong")
    assert first.grant_path is None and first.decision.rule == "approval.count"
    second = org.approve(req.id, "sunli")
    assert second.grant_path is not None
    grant = load_grant(second.grant_path).verify(org.archive, now=NOW + timedelta(minutes=1))
    assert [a.approver for a in grant.approvals] == ["zhouzong", "sunli"]
    assert grant.expiry - grant.issued == timedelta(hours=72)  # team lead's grant lifetime


def test_operator_performs_for_an_executive(org: Org):
    req = org.request("zhouzong", operator="qianjin", purpose="internal_audit")
    # zhouzong has no supervisor: an approver role (legal) approves
    result = org.approve(req.id, "sunli")
    grant = load_grant(result.grant_path)
    assert grant.operator == "qianjin" and grant.requester == "zhouzong"
    with pytest.raises(PolicyDenied, match="own request"):
        org.approve(org.request("zhouzong", operator="qianjin", case="T-3").id, "qianjin",
                    when=NOW + timedelta(minutes=1))


def test_a_long_lived_directory_store_reverifies_whenever_a_version_file_changes(org: Org):
    """The key server's store checks signatures once per distinct set of version files, never on stale bytes."""
    from investigator.authority.directory import DirectoryStore
    from investigator.errors import IntegrityError

    store = DirectoryStore(org.archive)
    first = store.load()
    assert store.load() is first  # same bytes: the verified result is reused
    newest = sorted(org.archive.layout.directory_dir.glob("[0-9]*.json"))[-1]
    original = newest.read_bytes()
    tampered = original.replace(b'"active": true', b'"active": fals', 1) if b'"active": true' in original \
        else original[:-3] + bytes([original[-3] ^ 1]) + original[-2:]
    assert len(tampered) == len(original) and tampered != original
    newest.write_bytes(tampered)  # same size, same name: only the content differs
    with pytest.raises(IntegrityError):
        store.load()
    newest.write_bytes(original)
    assert store.load().digest == first.digest
    newest.unlink()  # a removed version is a different set: re-verified, not served from the cache
    assert store.load().version == first.version - 1


def test_a_directory_version_signed_with_the_archive_key_after_an_admin_exists_is_refused_on_load(org: Org):
    """Whoever holds the master keys cannot add a directory version once an admin signs the directory."""
    import json as _json

    from investigator.authority.directory import ARCHIVE_SIGNER, DirectoryStore
    from investigator.errors import IntegrityError
    from investigator.schema import canonical_json

    current = DirectoryStore(org.archive).load()
    assert current.admins()
    folder = org.archive.layout.directory_dir
    newest = sorted(folder.glob("[0-9]*.json"))[-1]
    body = dict(_json.loads(newest.read_bytes())["body"])
    body.update(version=current.version + 1, prev=current.digest,
                change={"action": "people.add", "target": "intruder", "by": ARCHIVE_SIGNER})
    data = canonical_json(body)
    forged = {"body": body, "signature": {"signer": ARCHIVE_SIGNER, "key_id": org.keys.signing.public.key_id,
                                          "signature": org.keys.signing.sign(data)}}
    (folder / f"{current.version + 1:06d}.json").write_text(_json.dumps(forged), encoding="utf-8")
    with pytest.raises(IntegrityError, match="enrolled admin"):  # well formed and chained: the signer rule refuses
        DirectoryStore(org.archive).load()
