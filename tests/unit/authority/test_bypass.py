"""The bypass table: every way around the authorization we could think of, each refused.

Each row is one attempt. It must raise the expected error with its own specific
reason, and write an audit entry with outcome "denied" carrying that reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from investigator import _crypto
from investigator.authority.directory import DirectoryStore, set_status
from investigator.authority.policy import PolicyStore
from investigator.errors import GrantExpired, GrantInvalid, IdentityCheckFailed, IntegrityError, PolicyDenied
from investigator.authority.grants import load_grant, revoke_grant
from investigator.authority.identity import check_identity, login, revoke_key
from investigator.schema import canonical_json, format_ts

from .conftest import NOW, SHANGHAI, Org

LATER = NOW + timedelta(minutes=5)


def _verify(org: Org, when: datetime = LATER) -> None:
    load_grant(org.grant_path).verify(org.archive, now=when)


def _edit_grant(org: Org, edit: Callable[[dict[str, Any]], None]) -> None:
    doc = org.grant_doc()
    edit(doc)
    org.write_grant_doc(doc)
    _verify(org)


def _request_body(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["request"]["body"]


# --- the attempts ---------------------------------------------------------------------------

def self_approval(org: Org) -> None:
    req = org.request("sunli", purpose="internal_audit")
    org.approve(req.id, "sunli")


def approver_not_supervisor(org: Org) -> None:
    req = org.request("zhangwei", groups=("客服一组",))
    org.approve(req.id, "xuming")  # a team lead of another department, not an approver role


def approver_is_admin(org: Org) -> None:
    req = org.request("zhangwei", groups=("客服一组",))
    org.approve(req.id, "wugang")


def wrong_totp(org: Org) -> None:
    req = org.request("sunli")
    good = org.code("zhouzong", NOW)
    org.approve(req.id, "zhouzong", totp="000000" if good != "000000" else "111111")


def expired_totp(org: Org) -> None:
    req = org.request("sunli")
    org.approve(req.id, "zhouzong", when=LATER, totp=org.code("zhouzong", LATER - timedelta(minutes=4)))


def replayed_totp(org: Org) -> None:
    first = org.request("sunli")
    second = org.request("sunli", case="T-2")
    code = org.code("zhouzong", LATER)
    org.approve(first.id, "zhouzong", when=LATER, totp=code)
    org.approve(second.id, "zhouzong", when=LATER + timedelta(seconds=5), totp=code)


def lockout(org: Org) -> None:
    req = org.request("sunli")
    for i in range(5):
        with pytest.raises(IdentityCheckFailed):
            org.approve(req.id, "zhouzong", when=LATER + timedelta(seconds=i), totp="999999x"[:6])
    # the right code, but too late: locked out
    org.approve(req.id, "zhouzong", when=LATER + timedelta(seconds=40))


def forged_request_signature(org: Org) -> None:
    req = org.request("sunli")
    path = org.archive.root / "org" / "requests" / req.id / "request.json"
    doc = json.loads(path.read_text())
    doc["signature"] = org.key("zhangwei").sign(canonical_json(doc["body"]))  # someone else's key
    path.write_text(json.dumps(doc))
    org.approve(req.id, "zhouzong")


def request_widened_before_approval(org: Org) -> None:
    req = org.request("sunli")
    path = org.archive.root / "org" / "requests" / req.id / "request.json"
    doc = json.loads(path.read_text())
    doc["body"]["window"]["start"] = "2026-01-01T00:00:00.000000Z"
    path.write_text(json.dumps(doc))
    org.approve(req.id, "zhouzong")


def forged_approval_signature(org: Org) -> None:
    def edit(doc: dict[str, Any]) -> None:
        body = doc["approvals"][0]["body"]
        doc["approvals"][0]["signature"] = org.key("sunli").sign(canonical_json(body))
    _edit_grant(org, edit)


def copied_approval(org: Org) -> None:
    # zhouzong's genuine approval of another request, copied into this grant
    other = org.request("zhaomin", case="T-9")
    org.approve(other.id, "zhouzong", when=LATER)
    copied = json.loads(next((org.archive.root / "org" / "requests" / other.id / "approvals").glob("*.json"))
                        .read_text())

    def edit(doc: dict[str, Any]) -> None:
        doc["approvals"][0] = copied
    _edit_grant(org, edit)


def grant_window_widened(org: Org) -> None:
    _edit_grant(org, lambda doc: _request_body(doc)["window"].update(start="2026-11-01T00:00:00.000000Z"))


def grant_scope_widened(org: Org) -> None:
    _edit_grant(org, lambda doc: _request_body(doc)["scope"].update(conversations=["g-project-a"]))


def grant_fields_widened(org: Org) -> None:
    _edit_grant(org, lambda doc: _request_body(doc).update(fields=["metadata", "content", "attachments"]))


def grant_expiry_extended(org: Org) -> None:
    _edit_grant(org, lambda doc: doc["grant"]["body"].update(expiry="2027-12-31T00:00:00.000000Z"))


def grant_approval_removed(org: Org) -> None:
    _edit_grant(org, lambda doc: doc.update(approvals=[]))


def grant_expired(org: Org) -> None:
    _verify(org, NOW + timedelta(days=8))


def grant_revoked(org: Org) -> None:
    revoke_grant(org.archive, org.grant_id, signer=org.signer("wugang"), reason="case closed", now=LATER)
    _verify(org)


def revoke_by_non_admin(org: Org) -> None:
    revoke_grant(org.archive, org.grant_id, signer=org.signer("zhangwei"), reason="nope", now=LATER)


def window_too_long(org: Org) -> None:
    org.request("zhaomin", start=datetime(2026, 11, 1, tzinfo=SHANGHAI), end=datetime(2026, 12, 5, tzinfo=SHANGHAI))


def window_beyond_lookback(org: Org) -> None:
    # an agent may read the current week only; 2026-11-18 was last week
    org.request("zhangwei", groups=("客服一组",), start=datetime(2026, 11, 18, 14, tzinfo=SHANGHAI),
                end=datetime(2026, 11, 18, 17, tzinfo=SHANGHAI))


def team_lead_beyond_month(org: Org) -> None:
    org.request("zhaomin", start=datetime(2026, 10, 30, tzinfo=SHANGHAI), end=datetime(2026, 11, 2, tzinfo=SHANGHAI))


def deactivated_requester(org: Org) -> None:
    key = org.key("liuyang")
    set_status(org.archive, "liuyang", "left", signer=org.signer("wugang"), now=NOW, reason="left")
    org.request("liuyang", key=key, groups=("采购部",))


def revoked_key_request(org: Org) -> None:
    old = org.key("zhangwei")
    revoke_key(org.archive, "zhangwei", signer=org.signer("wugang"), now=NOW, reason="laptop lost")
    org.request("zhangwei", key=old, groups=("客服一组",))


def revoked_key_approval(org: Org) -> None:
    req = org.request("sunli")
    old = org.key("zhouzong")
    revoke_key(org.archive, "zhouzong", signer=org.signer("wugang"), now=NOW, reason="laptop lost")
    org.approve(req.id, "zhouzong", key=old)


def complaint_without_consent(org: Org) -> None:
    org.request("sunli", purpose="customer_complaint", consent="")


def sensitive_one_approval(org: Org) -> None:
    req = org.request("zhaomin", purpose="legal_dispute")
    result = org.approve(req.id, "zhouzong")
    assert result.grant_path is None
    result.decision.raise_if_denied()


def admin_asks_content(org: Org) -> None:
    org.request("wugang")


def auditor_asks_content(org: Org) -> None:
    org.request("zhengjie")


def agent_beyond_team_group(org: Org) -> None:
    org.request("zhangwei", groups=("采购部",))


def agent_beyond_team_participant(org: Org) -> None:
    org.request("zhangwei", participants=("liuyang",))


def agent_unscoped(org: Org) -> None:
    org.request("zhangwei")


def agent_attachments(org: Org) -> None:
    org.request("zhangwei", groups=("客服一组",), fields=("metadata", "attachments"))


def policy_altered(org: Org) -> None:
    key = org.key("zhangwei")
    path = org.archive.root / "org" / "policy" / "000001.toml"
    path.write_text(path.read_text().replace('lookback = "week"', 'lookback = "all"'))
    org.request("zhangwei", key=key, groups=("客服一组",))


def directory_altered(org: Org) -> None:
    key = org.key("zhangwei")
    versions = sorted((org.archive.root / "org" / "directory").glob("*.json"))
    doc = json.loads(versions[-1].read_text())
    for person in doc["body"]["people"]:
        if person["id"] == "zhangwei":
            person["roles"] = ["executive"]
    versions[-1].write_text(json.dumps(doc))
    org.request("zhangwei", key=key)


def approve_rejected_request(org: Org) -> None:
    req = org.request("zhaomin")
    org.approve(req.id, "zhouzong", decision="reject", note="too wide")
    org.approve(req.id, "sunli", when=LATER)


def session_of_another_person(org: Org) -> None:
    token = login(org.archive, org.keys, "zhangwei", totp=org.code("zhangwei", NOW), now=NOW)
    check_identity(org.archive, org.keys, "sunli", session=token, now=LATER)


def session_expired(org: Org) -> None:
    token = login(org.archive, org.keys, "sunli", totp=org.code("sunli", NOW), now=NOW)
    check_identity(org.archive, org.keys, "sunli", session=token, now=NOW + timedelta(hours=9))


def operator_without_role(org: Org) -> None:
    org.request("sunli", operator="zhangwei")


BYPASSES = [
    # (attempt, error, audit action, rule or None, reason fragment)
    (self_approval, PolicyDenied, "request.approve", "approval.self", "cannot approve their own request"),
    (approver_not_supervisor, PolicyDenied, "request.approve", "approval.eligible", "neither zhangwei's direct supervisor"),
    (approver_is_admin, PolicyDenied, "request.approve", "approval.permission", "forbids approve"),
    (wrong_totp, IdentityCheckFailed, "totp.approve", None, "wrong TOTP code"),
    (expired_totp, IdentityCheckFailed, "totp.approve", None, "TOTP code expired"),
    (replayed_totp, IdentityCheckFailed, "totp.approve", None, "already used"),
    (lockout, IdentityCheckFailed, "totp.approve", None, "is locked out until"),
    (forged_request_signature, PolicyDenied, "request.approve", "request.signature", "signature does not verify"),
    (request_widened_before_approval, PolicyDenied, "request.approve", "request.signature", "edited after signing"),
    (forged_approval_signature, GrantInvalid, "grant.verify", None, "approval signature of zhouzong does not verify"),
    (copied_approval, GrantInvalid, "grant.verify", None, "differ from the signed list"),
    (grant_window_widened, GrantInvalid, "grant.verify", None, "edited after approval: window changed"),
    (grant_scope_widened, GrantInvalid, "grant.verify", None, "edited after approval: scope changed"),
    (grant_fields_widened, GrantInvalid, "grant.verify", None, "edited after approval: fields changed"),
    (grant_expiry_extended, GrantInvalid, "grant.verify", None, "grant body was edited after issue"),
    (grant_approval_removed, GrantInvalid, "grant.verify", None, "differ from the signed list"),
    (grant_expired, GrantExpired, "grant.verify", None, "expired at"),
    (grant_revoked, GrantExpired, "grant.verify", None, "was revoked at"),
    (revoke_by_non_admin, PolicyDenied, "grant.revoke", "grant.revoke", "not an admin"),
    (window_too_long, PolicyDenied, "request.new", "window.max_days", "longer than the 31 days"),
    (window_beyond_lookback, PolicyDenied, "request.new", "window.lookback", "before the current week"),
    (team_lead_beyond_month, PolicyDenied, "request.new", "window.lookback", "before the current month"),
    (deactivated_requester, PolicyDenied, "request.new", "person.active", "liuyang is not active"),
    (revoked_key_request, PolicyDenied, "request.new", "person.key", "was revoked at"),
    (revoked_key_approval, PolicyDenied, "request.approve", "person.key", "has no live signing key"),
    (complaint_without_consent, PolicyDenied, "request.new", "consent.required", "customer-consent reference"),
    (sensitive_one_approval, PolicyDenied, "grant.issue", "approval.count", "sensitive request needs 2 approvals"),
    (admin_asks_content, PolicyDenied, "request.new", "duty.no_content", "never reads content"),
    (auditor_asks_content, PolicyDenied, "request.new", "duty.no_content", "never reads content"),
    (agent_beyond_team_group, PolicyDenied, "request.new", "scope.team", "is not one of zhangwei's groups"),
    (agent_beyond_team_participant, PolicyDenied, "request.new", "scope.team", "'liuyang' is not in zhangwei's team"),
    (agent_unscoped, PolicyDenied, "request.new", "scope.team", "must scope the request"),
    (agent_attachments, PolicyDenied, "request.new", "fields.permission", "needs export"),
    (policy_altered, PolicyDenied, "request.new", "policy.integrity", "policy file altered outside the CLI"),
    (directory_altered, PolicyDenied, "request.new", "directory.integrity", "org directory altered outside the CLI"),
    (approve_rejected_request, PolicyDenied, "request.approve", "request.status", "already rejected"),
    (session_of_another_person, IdentityCheckFailed, "identity.check", None, "session belongs to 'zhangwei'"),
    (session_expired, IdentityCheckFailed, "identity.check", None, "session expired"),
    (operator_without_role, PolicyDenied, "request.new", "operator.eligible", "does not hold the operator role"),
]


@pytest.mark.parametrize("attempt,error,action,rule,reason", BYPASSES, ids=[b[0].__name__ for b in BYPASSES])
def test_bypass_is_refused_and_audited(org: Org, attempt, error, action, rule, reason):
    before = len(org.audit())
    with pytest.raises(error) as caught:
        attempt(org)
    assert reason in str(caught.value)
    if rule is not None:
        assert caught.value.rule == rule
    denied = [e for e in org.audit()[before:] if e["outcome"] == "denied" and e["action"] == action]
    assert denied, f"no denied audit entry for {action}"
    assert any(reason in e["details"].get("reason", "") for e in denied), denied
    if rule is not None:
        assert any(e["details"].get("rule") == rule for e in denied)


def test_table_is_big_enough():
    assert len(BYPASSES) >= 25
    assert len({b[0].__name__ for b in BYPASSES}) == len(BYPASSES)


# --- the archive key signs no policy once an admin is enrolled ------------------------------------------

def _forge_policy(org, body_extra: dict, *, signer_key=None, signer: str = "archive") -> None:
    """Write the next policy version as someone with the master keys would: signed, hashes right."""
    store = PolicyStore(org.archive)
    layout = org.archive.layout
    version = store._latest() + 1
    text = layout.policy_text(version - 1).read_text(encoding="utf-8").replace("max_failures = 5", "max_failures = 99")
    body = {"format": "investigator-policy-signature/1", "archive_id": org.archive.archive_id, "version": version,
            "sha256": _crypto.sha256_hex(text.encode()), "prev": _crypto.sha256_hex(layout.policy_text(version - 1)
                                                                                      .read_bytes()),
            "ts": format_ts(org.now), "note": "forged", **body_extra}
    key = signer_key or org.keys.signing
    layout.policy_text(version).write_text(text, encoding="utf-8")
    layout.policy_signature(version).write_text(json.dumps(
        {"body": body, "signature": {"signer": signer, "key_id": key.public.key_id,
                                     "signature": key.sign(canonical_json(body))}}), encoding="utf-8")


@pytest.mark.parametrize("claim", [{"directory_version": 1}, {}, {"directory_version": 10**6}])
def test_a_policy_signed_with_the_archive_key_after_the_bootstrap_is_refused(org, claim):
    directory = DirectoryStore(org.archive).load()
    assert directory.first_admin_version > 0
    PolicyStore(org.archive).load(directory)  # the demo's own policies load
    _forge_policy(org, claim)  # claims a directory version before the first admin, none (old records), or any
    with pytest.raises(IntegrityError, match="archive key after the first admin"):
        PolicyStore(org.archive).load(directory)


def test_an_admin_signed_policy_still_loads_and_the_bootstrap_one_before_it(org):
    directory = DirectoryStore(org.archive).load()
    admin = directory.admins()[0].id
    _forge_policy(org, {"directory_version": directory.version}, signer_key=org.key(admin), signer=admin)
    assert PolicyStore(org.archive).load(directory).max_failures == 99
