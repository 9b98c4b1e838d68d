"""The request workflow: file, approve (with a TOTP check), issue, revoke, explain.

    >>> approve(archive, keys, "REQ-1", approver="zhouzong", signing_key=key, totp="123456", now=now)  # doctest: +SKIP

Part of :mod:`investigator.authority.grants`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator._fs import append_line, write_new
from investigator.authority.directory import DirectoryStore, Person, Signer, check_signer
from investigator.errors import (
    ConfigError,
    GrantInvalid,
    IdentityCheckFailed,
    IntegrityError,
    PolicyDenied,
)
from investigator.authority.consent import check_consent, consent_refusal
from investigator.authority.identity import verify_totp
from investigator.authority.policy import Decision, Policy, PolicyStore, Request, load_org, record_decision
from investigator.schema import canonical_json, format_ts
from investigator.authority.grants.documents import (
    APPROVAL_FORMAT,
    DECISIONS,
    Approval,
    Grant,
    SignedRequest,
    _json_bytes,
    _read_json,
    _write_json,
    find_grant,
    load_grant,
    request_field_hashes,
    revocations,
)
from investigator.vault.statehead import check_files
from investigator.vault.store import Archive
from investigator.custody.base import Custody


# Fault injection for the crash tests only: a child process sets this to "after-grant" (the grant file written,
# the request's pointer not yet) and is killed with SIGKILL there.
CRASH_AT: str | None = None


def _crash_point(name: str) -> None:
    if CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


# --- the request workflow --------------------------------------------------------------------

def _request_id(request_id: str) -> str:
    if not request_id.replace("-", "").isalnum():
        raise ConfigError(f"invalid request id {request_id!r}")
    return request_id


def new_request(archive: "Archive", *, requester: str, signing_key: _crypto.SigningKey, case: str, purpose: str,
                start: datetime, end: datetime, fields: Sequence[str], reason: str, now: datetime,
                conversations: Sequence[str] = (), participants: Sequence[str] = (), groups: Sequence[str] = (),
                legal_basis: str = "", consent: str = "", operator: str = "",
                templates: Sequence[str] = ()) -> SignedRequest:
    """File a signed retrieval request (电子证据调取申请单) after the policy allows it.

    Raises PolicyDenied (audited with its rule) when the policy refuses, or when
    the request needs (or names) a customer consent and ``consent`` is not a
    registered, signed consent of this case whose stored copy is intact
    (rules ``consent.reference``, ``consent.unregistered``, ``consent.signature``,
    ``consent.case``, ``consent.hash``; see :mod:`investigator.authority.consent`).
    """
    request_id = f"REQ-{now.astimezone(archive.config.zone):%Y%m%d}-{secrets.token_hex(4)}"
    directory, policy = load_org(archive, actor=requester, action="request.new", target=request_id, now=now)
    person = directory.find(requester)
    if person is None:
        decision = Decision(False, "person.known", f"no person {requester!r} in the directory")
        record_decision(archive, decision, actor=requester, action="request.new", target=request_id, now=now)
        decision.raise_if_denied()
    assert person is not None
    req = Request(id=request_id, archive_id=archive.archive_id, case=case, purpose=purpose, requester=requester,
                  key_id=signing_key.public.key_id, start=start, end=end, tz=archive.config.timezone,
                  fields=tuple(dict.fromkeys(fields)), reason=reason, created=now,
                  operator="" if operator == requester else operator, conversations=tuple(conversations),
                  participants=tuple(participants), groups=tuple(groups), legal_basis=legal_basis, consent=consent,
                  templates=tuple(templates))
    decision = policy.decide("request", person=person, directory=directory, request=req, now=now,
                             tz=archive.config.zone)
    details: dict[str, Any] = {"case": case, "purpose": purpose, "window": [format_ts(start), format_ts(end)],
                               "fields": list(req.fields)}
    if decision.allowed and _needs_consent(policy, req):
        verdict = check_consent(archive, req.consent, case=case, directory=directory)
        if not verdict.allowed:
            record_decision(archive, Decision(False, verdict.rule, verdict.reason,
                                              decision.consulted + verdict.consulted),
                            actor=requester, action="request.new", target=request_id, now=now, details=details)
            raise consent_refusal(verdict)
        details["consent"] = req.consent
    record_decision(archive, decision, actor=requester, action="request.new", target=request_id, now=now,
                    details=details)
    decision.raise_if_denied()
    body = req.to_body()
    signed = SignedRequest(req, signing_key.sign(canonical_json(body)), body)
    _write_json(archive.layout.request_file(_request_id(request_id)), signed.to_json())
    return signed


def _needs_consent(policy: Policy, req: Request) -> bool:
    """A request's consent is checked when its purpose needs one, or when it names one at all."""
    return req.purpose in policy.consent_purposes or bool(req.consent.strip())


def load_request(archive: "Archive", request_id: str) -> SignedRequest:
    return SignedRequest.from_json(_read_json(archive.layout.request_file(_request_id(request_id)),
                                              f"request {request_id}"))


def request_approvals(archive: "Archive", request_id: str) -> list[Approval]:
    """The request's approvals and rejections in order. Raises IntegrityError for one deleted below the state head."""
    folder = archive.layout.approvals_dir(_request_id(request_id))
    problems = check_files(archive, prefix=archive.layout.relative(folder) + "/")
    if problems:  # a rejection deleted would let an approval through (issue #13, item 2)
        raise IntegrityError(f"the request's decisions do not match their signed state head: {problems[0]}",
                             hint="run 'investigator verify --offline'")
    if not folder.exists():
        return []
    return [Approval.from_json(_read_json(p, p.name)) for p in sorted(folder.glob("*.json"))]


def request_status(archive: "Archive", request_id: str) -> str:
    """'pending', 'rejected' or 'granted'."""
    if archive.layout.request_grant(_request_id(request_id)).exists():
        return "granted"
    if any(a.decision == "reject" for a in request_approvals(archive, request_id)):
        return "rejected"
    return "pending"


def list_requests(archive: "Archive") -> list[dict[str, Any]]:
    requests = archive.layout.requests_dir
    out = []
    for folder in sorted(requests.iterdir()) if requests.exists() else []:
        try:
            signed = load_request(archive, folder.name)
        except (GrantInvalid, ConfigError):
            continue
        req = signed.request
        out.append({"id": req.id, "case": req.case, "purpose": req.purpose, "requester": req.requester,
                    "start": format_ts(req.start), "end": format_ts(req.end), "status": request_status(archive, req.id)})
    return out


@dataclass(frozen=True)
class ApprovalResult:
    """What :func:`approve` did: the approval written, and the grant if the policy is now satisfied."""

    approval: Approval
    decision: Decision  # the "grant" decision after this approval
    grant_path: Path | None = None


def _deny(archive: "Archive", actor: str, action: str, target: str, rule: str, reason: str, now: datetime,
          exc: type[Exception] = PolicyDenied) -> None:
    archive.audit.append(actor, action, target, {"rule": rule, "reason": reason}, outcome="denied", now=now)
    if exc is PolicyDenied:
        raise PolicyDenied(reason, rule=rule)
    raise exc(reason)


def approval_body(*, request_id: str, request_hash: str, approver: str, key_id: str, decision: str, note: str,
                  ts: datetime) -> dict[str, Any]:
    """The body an approver signs (client side, or in-process): the same bytes on both sides of the key server."""
    return {"format": APPROVAL_FORMAT, "request_id": request_id, "request_hash": request_hash, "approver": approver,
            "key_id": key_id, "decision": decision, "note": note, "ts": format_ts(ts), "totp_verified": True}


class Presigned:
    """An approver's signature made on their own machine, standing in for their key on the key server.

    ``sign(data)`` returns the signature only if it verifies over ``data`` with
    the approver's registered public key; otherwise IntegrityError (the client
    signed another request, decision, note or time than the server rebuilt).
    """

    def __init__(self, public: _crypto.VerifyKey, signature: str) -> None:
        self.public = public
        self._signature = signature

    def __repr__(self) -> str:
        return f"Presigned(key_id={self.public.key_id!r})"

    def sign(self, data: bytes) -> str:
        self.public.verify(self._signature, data, what="approval signature")
        return self._signature


def approve(archive: "Archive", keys: Custody, request_id: str, *, approver: str,
            signing_key: "_crypto.SigningKey | Presigned", totp: str, now: datetime, note: str = "",
            decision: str = "approve", signed_at: datetime | None = None) -> ApprovalResult:
    """Record ``approver``'s signed decision (after a TOTP check); issue the grant once the policy is met.

    Checks, in order, each audited when it refuses: the request's signature
    and validity, the approver's eligibility (never oneself; the requester's
    direct supervisor or an approver role), the approver's live key, the
    request's customer consent where it needs or names one (decrypted and
    hashed again: ``consent.*`` rules), the TOTP code (wrong, expired,
    replayed, lock-out). Raises PolicyDenied,
    IdentityCheckFailed or GrantInvalid.

    ``signing_key`` is the approver's key, or (on the key server) a
    :class:`Presigned` signature the approver's client made over
    :func:`approval_body` at ``signed_at``; a signature that does not cover the
    body rebuilt here is refused (audited, ``approval.signature``) before the
    code is checked, so it costs no TOTP attempt. ``now`` is this process's clock.

    Whatever the outcome, the archive key then checkpoints the audit log (issue #13: after every decision).
    """
    try:
        return _approve(archive, keys, request_id, approver=approver, signing_key=signing_key, totp=totp, now=now,
                        note=note, decision=decision, signed_at=signed_at)
    finally:
        archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id, now=now)


def _approve(archive: "Archive", keys: Custody, request_id: str, *, approver: str,
             signing_key: "_crypto.SigningKey | Presigned", totp: str, now: datetime, note: str,
             decision: str, signed_at: datetime | None) -> ApprovalResult:
    action = "request.approve" if decision == "approve" else "request.reject"
    if decision not in DECISIONS:
        raise ConfigError(f"decision must be one of {', '.join(DECISIONS)}")
    directory, policy = load_org(archive, actor=approver, action=action, target=request_id, now=now)
    signed = load_request(archive, request_id)
    req = signed.request
    try:
        signed.verify_signature(directory)
    except GrantInvalid as exc:
        _deny(archive, approver, action, request_id, "request.signature", str(exc), now)
    _finish_interrupted_issue(archive, signed, actor=approver, now=now)
    status = request_status(archive, request_id)
    if status != "pending":
        _deny(archive, approver, action, request_id, "request.status", f"request {request_id} is already {status}", now)
    person = directory.find(approver)
    if person is None:
        _deny(archive, approver, action, request_id, "person.known", f"no person {approver!r} in the directory", now)
    assert person is not None
    eligible = policy.decide("approve", person=person, directory=directory, request=req, now=now,
                             tz=archive.config.zone)
    if not eligible.allowed:
        record_decision(archive, eligible, actor=approver, action=action, target=request_id, now=now)
        eligible.raise_if_denied()
    live = person.current_key
    if live is None or live.key_id != signing_key.public.key_id:
        _deny(archive, approver, action, request_id, "person.key",
              f"{approver} signs with key {signing_key.public.key_id}, which is not their live key (revoked?)", now)
    requester = directory.find(req.requester)
    asked = policy.decide("request", person=requester, directory=directory, request=req, now=req.created,
                          tz=archive.config.zone) if requester else Decision(False, "person.known", "unknown requester")
    if not asked.allowed:
        record_decision(archive, asked, actor=approver, action=action, target=request_id, now=now)
        asked.raise_if_denied()
    if requester is not None and not requester.active:
        _deny(archive, approver, action, request_id, "person.active", f"the requester {requester.id} has left", now)
    if decision == "approve" and _needs_consent(policy, req):
        # again, and this time the stored copy is decrypted: a consent altered after the request is caught
        verdict = check_consent(archive, req.consent, case=req.case, directory=directory, keys=keys)
        if not verdict.allowed:
            record_decision(archive, verdict, actor=approver, action=action, target=request_id, now=now)
            raise consent_refusal(verdict)
    body = approval_body(request_id=request_id, request_hash=signed.hash, approver=approver,
                         key_id=signing_key.public.key_id, decision=decision, note=note, ts=signed_at or now)
    try:
        approver_signature = signing_key.sign(canonical_json(body))
    except IntegrityError:
        _deny(archive, approver, action, request_id, "approval.signature",
              "the approver's signature does not cover this request, decision, note and time", now,
              IdentityCheckFailed)
        raise  # unreachable: _deny raises
    try:
        counter = verify_totp(archive, keys, approver, totp, now=now, policy=policy, purpose="approve")
    except IdentityCheckFailed as exc:
        _deny(archive, approver, action, request_id, "identity.totp", str(exc), now, IdentityCheckFailed)
        raise  # unreachable: _deny raises
    unsigned = Approval(body, approver_signature, "", counter)
    approval = Approval(body, unsigned.signature, keys.signing.sign(unsigned.attestation_bytes()), counter)
    existing = request_approvals(archive, request_id)
    if any(a.approver == approver for a in existing):
        _deny(archive, approver, action, request_id, "approval.duplicate", f"{approver} has already decided", now)
    _write_json(archive.layout.approval(_request_id(request_id), len(existing) + 1, approver), approval.to_json())
    archive.audit.append(approver, action, request_id, {"rule": eligible.rule, "reason": eligible.reason,
                                                        "approval_hash": approval.hash, "note": note},
                         outcome="allowed", now=now)
    if decision == "reject":
        return ApprovalResult(approval, Decision(False, "request.rejected", f"rejected by {approver}"))
    approvals = [*existing, approval]
    granted = policy.decide("grant", person=requester or person, directory=directory, request=req,
                            approvers=[a.approver for a in approvals if a.decision == "approve"], now=now,
                            tz=archive.config.zone)
    if not granted.allowed:
        archive.audit.append(approver, "grant.issue", request_id, {"rule": granted.rule, "reason": granted.reason,
                                                                   "state": "waiting"}, outcome="denied", now=now)
        return ApprovalResult(approval, granted)
    path = _issue(archive, keys, signed, approvals, policy=policy, requester=requester or person, now=now)
    archive.audit.append(approver, "grant.issue", path.stem, {"rule": granted.rule, "reason": granted.reason,
                                                              "request": request_id,
                                                              "grant_hash": load_grant(path).hash},
                         outcome="allowed", now=now)
    return ApprovalResult(approval, granted, path)


def _issue(archive: "Archive", keys: Custody, signed: SignedRequest, approvals: Sequence[Approval], *,
           policy: Policy, requester: Person, now: datetime) -> Path:
    grant_id = _grant_id(signed)
    body = {"format": "investigator-grant-body/1", "grant_id": grant_id, "archive_id": archive.archive_id,
            "request_id": signed.id, "request_hash": signed.hash, "approvals": [a.hash for a in approvals],
            "request_fields": request_field_hashes(signed.body),
            "issued": format_ts(now), "expiry": format_ts(now + policy.grant_lifetime(requester)),
            "policy_version": policy.version, "policy_sha256": policy.source_sha256}
    grant = Grant(signed, tuple(approvals), body, keys.signing.sign(canonical_json(body)))
    path = archive.layout.grant(grant_id)
    # write-once, grant first, then the request's pointer to it: a grant is never replaced (the state heads and
    # audit entries pin its hash), and a kill between the two is finished by the next approval of the request
    if not write_new(path, _json_bytes(grant.to_json())):
        raise IntegrityError(f"grant {grant_id} exists already; the request's next approval finishes its issue",
                             path=archive.layout.relative(path))
    _crash_point("after-grant")
    _point_to_grant(archive, signed.id, grant_id)
    return path


def _point_to_grant(archive: "Archive", request_id: str, grant_id: str) -> None:
    """Write ``org/requests/<id>/grant`` once. Raises IntegrityError if it names another grant."""
    pointer = archive.layout.request_grant(_request_id(request_id))
    if not write_new(pointer, (grant_id + "\n").encode()) and pointer.read_text().strip() != grant_id:
        raise IntegrityError(f"request {request_id} already points to another grant",
                             path=archive.layout.relative(pointer))


def _finish_interrupted_issue(archive: "Archive", signed: SignedRequest, *, actor: str, now: datetime) -> None:
    """An issue killed after its grant file and before the request's pointer: write the pointer, audit the issue.

    The grant id is derived from the request's hash, so the grant is found without the pointer. It was
    signed by the archive key once the policy was met; it stands as written (never issued twice).
    """
    grant_path = archive.layout.grant(_grant_id(signed))
    if archive.layout.request_grant(_request_id(signed.id)).exists() or not grant_path.exists():
        return
    grant = load_grant(grant_path)
    if grant.request.hash != signed.hash:
        raise IntegrityError(f"grant {grant.id} is not the grant of request {signed.id}",
                             path=archive.layout.relative(grant_path))
    _point_to_grant(archive, signed.id, grant.id)
    archive.audit.append(actor, "grant.issue", grant.id,
                         {"rule": "grant.issue", "request": signed.id, "grant_hash": grant.hash,
                          "reason": "finishing an issue interrupted after the grant was written"},
                         outcome="allowed", now=now)


def _grant_id(signed: SignedRequest) -> str:
    return f"G-{signed.hash[:16]}"


def revoke_grant(archive: "Archive", grant: str | Path, *, signer: Signer, reason: str, now: datetime) -> str:
    """Revoke a grant: an admin-signed line in ``org/revocations.jsonl``. Audited. Returns the grant id.

    Raises PolicyDenied (audited) if ``signer`` is not an admin (or the archive key), ConfigError when the grant
    was revoked already (nothing is written: a second line would only repeat it).
    """
    path = find_grant(archive, grant)
    grant_id = load_grant(path).id
    earlier = revocations(archive).get(grant_id)
    if earlier is not None:
        raise ConfigError(f"grant {grant_id} was already revoked at {earlier.get('ts')} by {earlier.get('by')}",
                          hint="nothing was written; 'investigator grant verify' shows the revocation")
    directory = DirectoryStore(archive).load()
    body = {"format": "investigator-revocation/1", "grant_id": grant_id, "ts": format_ts(now), "reason": reason}
    data = canonical_json(body)
    signature = signer.key.sign(data)
    try:
        check_signer(signer.id, signer.key.public.key_id, signature, data, archive_public=archive.signing_keys(),
                     directory=directory, what="revocation")
    except IntegrityError as exc:
        _deny(archive, signer.id, "grant.revoke", grant_id, "grant.revoke", str(exc), now)
    record = {"body": body, "signature": {"signer": signer.id, "key_id": signer.key.public.key_id,
                                          "signature": signature}}
    # the line first, then its entry: a process killed in between leaves a revocation in force (fail closed) that
    # the next state head covers, never an audited revocation without its line (which every load would refuse)
    append_line(archive.layout.revocations, (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode())
    archive.audit.append(signer.id, "grant.revoke", grant_id, {"rule": "grant.revoke", "reason": reason}, now=now)
    signer.checkpoint(archive, now=now)
    return grant_id


def explain(archive: "Archive", person_id: str, request: Request, *, now: datetime,
            approvers: Sequence[str] = ()) -> list[Decision]:
    """Decisions for ``request`` by ``person_id``: filing it, and (with ``approvers``) granting it. Pure reads."""
    directory = DirectoryStore(archive).load()
    policy = PolicyStore(archive).load(directory)
    person = directory.person(person_id)
    out = [policy.decide("request", person=person, directory=directory, request=request, now=now,
                         tz=archive.config.zone)]
    for approver in approvers:
        out.append(policy.decide("approve", person=directory.person(approver), directory=directory, request=request,
                                 now=now, tz=archive.config.zone))
    if approvers:
        out.append(policy.decide("grant", person=person, directory=directory, request=request, approvers=approvers,
                                 now=now, tz=archive.config.zone))
    return out


