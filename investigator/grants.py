"""Retrieval requests, approvals and grants: who asked, who approved, and how to prove it later.

    >>> req = new_request(archive, requester="sunli", signing_key=sunli_key, case="C-1",
    ...                   purpose="customer_complaint", start=t0, end=t1, fields=("metadata", "content"),
    ...                   reason="complaint 2026-11-18", consent="CONSENT-7", now=now)      # doctest: +SKIP
    >>> result = approve(archive, keys, req.id, approver="zhouzong", signing_key=zhou_key,
    ...                  totp="123456", now=now)                                            # doctest: +SKIP
    >>> grant = load_grant(result.grant_path)                                               # doctest: +SKIP
    >>> grant.verify(archive, now=now)       # raises GrantInvalid / GrantExpired            # doctest: +SKIP
    >>> grant.window, grant.scope, grant.fields, grant.operator                             # doctest: +SKIP

A grant file (``ARCHIVE/org/grants/<id>.json``, format in docs/policy.md,
"Grant file") holds the request body and the requester's signature, each
approval with the approver's signature and the key service's attestation that
the approver passed a TOTP check, and a grant body (request hash, approval
hashes, expiry) signed with the archive key. Anyone with the archive's public
material (archive key, directory, policy, revocation list) can verify it; any
change to a signed field breaks it. Every decision is audited with its rule.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from . import _crypto
from .directory import ADMIN_ROLE, Directory, DirectoryStore, Person, Signer, check_signer
from .errors import (ConfigError, GrantExpired, GrantInvalid, IdentityCheckFailed, IntegrityError, PolicyDenied)
from .fsutil import atomic_write
from .identity import verify_totp
from .policy import Decision, Policy, PolicyStore, Request, load_org, parse_utc, record_decision
from .schema import canonical_json, format_ts

if TYPE_CHECKING:
    from .archive import Archive
    from .keys import MasterKeys

GRANT_FORMAT = "investigator-grant/1"
APPROVAL_FORMAT = "investigator-approval/1"
DECISIONS = ("approve", "reject")


def body_hash(body: dict[str, Any]) -> str:
    """Hex SHA-256 of a body's RFC 8785 bytes."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _org(archive: "Archive") -> Path:
    return Path(archive.root) / "org"


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode())


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"{what}: not found") from exc
    except (OSError, ValueError) as exc:
        raise GrantInvalid(f"{what}: not readable JSON") from exc


# --- signed pieces -------------------------------------------------------------------

@dataclass(frozen=True)
class SignedRequest:
    """A request body and the requester's signature over its canonical bytes."""

    request: Request
    signature: str
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def hash(self) -> str:
        return body_hash(self.body)

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body, "signature": self.signature}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "SignedRequest":
        try:
            body = dict(obj["body"])
            return cls(Request.from_body(body), str(obj["signature"]), body)
        except (KeyError, TypeError, IntegrityError) as exc:
            raise GrantInvalid("malformed signed request") from exc

    def verify_signature(self, directory: Directory) -> Person:
        """The requester, after checking the signature with their registered, unrevoked key."""
        requester = directory.find(self.request.requester)
        if requester is None:
            raise GrantInvalid(f"requester {self.request.requester!r} is not in the directory")
        key = requester.key(self.request.key_id)
        if key is None:
            raise GrantInvalid(f"request signed with key {self.request.key_id!r}, not one of the requester's")
        try:
            key.verify_key().verify(self.signature, canonical_json(self.body))
        except IntegrityError as exc:
            raise GrantInvalid("the requester's signature does not verify: the request was forged or edited "
                               "after signing (window, scope, fields ...)") from exc
        if key.revoked:
            raise GrantInvalid(f"the requester's key {key.key_id} was revoked at {key.revoked}")
        return requester


@dataclass(frozen=True)
class Approval:
    """One approver's signed decision on one request, with the key service's TOTP attestation."""

    body: dict[str, Any]
    signature: str
    attestation: str  # archive-key signature over {"approval": hash, "totp_counter": n}
    totp_counter: int

    @property
    def approver(self) -> str:
        return str(self.body.get("approver"))

    @property
    def decision(self) -> str:
        return str(self.body.get("decision"))

    @property
    def hash(self) -> str:
        return body_hash(self.body)

    def attestation_bytes(self) -> bytes:
        return canonical_json({"approval": self.hash, "purpose": "totp-attestation", "totp_counter": self.totp_counter})

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body, "signature": self.signature,
                "attestation": {"totp_counter": self.totp_counter, "signature": self.attestation}}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Approval":
        try:
            return cls(dict(obj["body"]), str(obj["signature"]), str(obj["attestation"]["signature"]),
                       int(obj["attestation"]["totp_counter"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise GrantInvalid("malformed approval") from exc

    def verify(self, request_hash: str, directory: Directory, archive_public: _crypto.VerifyKey) -> None:
        """Raise GrantInvalid unless this approval is for ``request_hash``, validly signed and attested."""
        if self.body.get("format") != APPROVAL_FORMAT:
            raise GrantInvalid("approval of unknown format")
        if self.body.get("request_hash") != request_hash:
            raise GrantInvalid(f"approval by {self.approver} is for another request (copied approval)")
        approver = directory.find(self.approver)
        key = approver.key(str(self.body.get("key_id"))) if approver else None
        if approver is None or key is None:
            raise GrantInvalid(f"approval by {self.approver!r} is signed with a key not in the directory")
        try:
            key.verify_key().verify(self.signature, canonical_json(self.body))
        except IntegrityError as exc:
            raise GrantInvalid(f"the approval signature of {self.approver} does not verify (forged or copied "
                               "signature)") from exc
        if key.revoked:
            raise GrantInvalid(f"approver {self.approver}'s key {key.key_id} was revoked at {key.revoked}")
        if self.body.get("totp_verified") is not True or not archive_public.is_valid(self.attestation,
                                                                                     self.attestation_bytes()):
            raise GrantInvalid(f"the approval by {self.approver} has no valid TOTP attestation")


# --- the grant -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    """A verified-on-demand grant: request + approvals + a body signed with the archive key.

    Read with :func:`load_grant`; check with :meth:`verify` before trusting any field.
    """

    request: SignedRequest
    approvals: tuple[Approval, ...]
    body: dict[str, Any]
    signature: str
    path: Path | None = field(default=None, compare=False)

    # --- the loader's view ------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self.body.get("grant_id"))

    @property
    def hash(self) -> str:
        """Hex SHA-256 of the whole grant document's canonical bytes."""
        return body_hash(self.to_json())

    @property
    def window(self) -> tuple[datetime, datetime]:
        """``(start, end)`` aware UTC datetimes: the half-open window ``[start, end)``."""
        return self.request.request.start, self.request.request.end

    @property
    def scope(self) -> dict[str, list[str]]:
        """``{"conversations": [...], "participants": [...], "groups": [...]}``; empty list = not restricted."""
        return self.request.request.scope

    @property
    def fields(self) -> tuple[str, ...]:
        return self.request.request.fields

    @property
    def operator(self) -> str:
        """The person who performs the retrieval (the requester unless an operator was named)."""
        return self.request.request.performer

    @property
    def requester(self) -> str:
        return self.request.request.requester

    @property
    def case(self) -> str:
        return self.request.request.case

    @property
    def purpose(self) -> str:
        return self.request.request.purpose

    @property
    def templates(self) -> tuple[str, ...]:
        """Named report templates a standing (service) grant is limited to; empty = any use."""
        return self.request.request.templates

    @property
    def expiry(self) -> datetime:
        return parse_utc(str(self.body["expiry"]))

    @property
    def issued(self) -> datetime:
        return parse_utc(str(self.body["issued"]))

    @property
    def tz(self) -> str:
        return self.request.request.tz

    def allows_template(self, name: str) -> bool:
        return not self.templates or name in self.templates

    # --- files -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": GRANT_FORMAT, "request": self.request.to_json(),
                "approvals": [a.to_json() for a in self.approvals],
                "grant": {"body": self.body, "signature": self.signature}}

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, path: Path | None = None) -> "Grant":
        if not isinstance(obj, dict) or obj.get("format") != GRANT_FORMAT:
            raise GrantInvalid("not an investigator grant (unknown format)")
        try:
            return cls(SignedRequest.from_json(obj["request"]), tuple(Approval.from_json(a) for a in obj["approvals"]),
                       dict(obj["grant"]["body"]), str(obj["grant"]["signature"]), path)
        except (KeyError, TypeError) as exc:
            raise GrantInvalid("malformed grant file") from exc

    @classmethod
    def from_file(cls, path: Path | str) -> "Grant":
        """Read a grant file (no verification). Raises GrantInvalid or ConfigError (missing)."""
        return cls.from_json(_read_json(Path(path), str(path)), path=Path(path))

    # --- verification -----------------------------------------------------------------

    def verify_offline(self, *, archive_id: str, archive_public: _crypto.VerifyKey, policy: Policy,
                       directory: Directory, tz: ZoneInfo, now: datetime,
                       revoked: dict[str, dict[str, Any]] | None = None) -> None:
        """Check everything against public material only. Raises GrantInvalid / GrantExpired with the reason."""
        req = self.request.request
        if req.archive_id != archive_id or self.body.get("archive_id") != archive_id:
            raise GrantInvalid("grant belongs to another archive")
        # the grant body pins the request (field by field) and the approvals; the archive key signs it
        if not archive_public.is_valid(self.signature, canonical_json(self.body)):
            raise GrantInvalid("the grant's archive signature does not verify: the grant body was edited after "
                               "issue (expiry, approvals ...)")
        pinned = self.body.get("request_fields", {})
        current = request_field_hashes(self.request.body)
        changed = sorted(k for k in set(pinned) | set(current) if pinned.get(k) != current.get(k))
        if changed:
            raise GrantInvalid(f"the request was edited after approval: {', '.join(changed)} changed")
        if self.body.get("request_hash") != self.request.hash:
            raise GrantInvalid("the grant does not match its request (request replaced after approval)")
        requester = self.request.verify_signature(directory)
        approve = [a for a in self.approvals if a.decision == "approve"]
        if sorted(self.body.get("approvals", [])) != sorted(a.hash for a in self.approvals):
            raise GrantInvalid("the grant's approvals differ from the signed list (approval added or removed)")
        for approval in self.approvals:
            approval.verify(self.request.hash, directory, archive_public)
        if len(approve) != len(self.approvals):
            raise GrantInvalid("a grant may only hold approvals")
        if not requester.active:
            raise GrantInvalid(f"the requester {requester.id} is no longer active ({requester.status})")
        operator = directory.find(self.operator)
        if operator is None or not operator.active:
            raise GrantInvalid(f"the operator {self.operator} is no longer active")
        asked = policy.decide("request", person=requester, directory=directory, request=req, now=req.created, tz=tz)
        if not asked.allowed:
            raise GrantInvalid(f"the request breaks the policy ({asked.rule}): {asked.reason}")
        granted = policy.decide("grant", person=requester, directory=directory, request=req,
                                approvers=[a.approver for a in approve], now=now, tz=tz)
        if not granted.allowed:
            raise GrantInvalid(f"the approvals do not satisfy the policy ({granted.rule}): {granted.reason}")
        if self.id in (revoked or {}):
            record = (revoked or {})[self.id]
            raise GrantExpired(f"grant {self.id} was revoked at {record.get('ts')} by {record.get('by')}: "
                               f"{record.get('reason', '')}")
        if now < self.issued:
            raise GrantInvalid(f"grant {self.id} is not valid before {self.body['issued']}")
        if now >= self.expiry:
            raise GrantExpired(f"grant {self.id} expired at {self.body['expiry']}")

    def verify(self, archive: "Archive", *, now: datetime, actor: str = "verifier",
               policy: Policy | None = None, directory: Directory | None = None) -> "Grant":
        """Verify against the archive's public material; audit the outcome. Returns self.

        Raises GrantInvalid (signatures, fields, approvals, policy) or
        GrantExpired (past expiry or revoked), each naming the reason.
        """
        try:
            directory = directory or DirectoryStore(archive).load()
            if policy is None:
                policy = PolicyStore(archive).load(directory)
            self.verify_offline(archive_id=archive.archive_id, archive_public=archive.signing_public, policy=policy,
                                directory=directory, tz=archive.config.zone, now=now,
                                revoked=revocations(archive))
        except (GrantInvalid, IntegrityError, ConfigError) as exc:
            rule = "grant.expired" if isinstance(exc, GrantExpired) else "grant.invalid"
            archive.audit.append(actor, "grant.verify", self.id, {"rule": rule, "reason": str(exc)},
                                 outcome="denied", now=now)
            if isinstance(exc, GrantInvalid):
                raise
            raise GrantInvalid(str(exc)) from exc
        archive.audit.append(actor, "grant.verify", self.id, {"rule": "grant.valid", "grant_hash": self.hash,
                                                              "reason": "valid"}, outcome="allowed", now=now)
        return self

    def summary(self) -> dict[str, Any]:
        start, end = self.window
        return {"grant_id": self.id, "case": self.case, "purpose": self.purpose, "requester": self.requester,
                "operator": self.operator, "window": {"start": format_ts(start), "end": format_ts(end), "tz": self.tz},
                "scope": self.scope, "fields": list(self.fields), "templates": list(self.templates),
                "approvers": [a.approver for a in self.approvals], "issued": self.body.get("issued"),
                "expiry": self.body.get("expiry"), "request_id": self.request.id, "grant_hash": self.hash}


def request_field_hashes(body: dict[str, Any]) -> dict[str, str]:
    """Each top-level field of a request body -> hash, so an edit names the field that changed."""
    return {key: body_hash({"field": key, "value": value}) for key, value in body.items()}


def load_grant(path: Path | str) -> Grant:
    """Read a grant file (not yet verified: call :meth:`Grant.verify`)."""
    return Grant.from_file(path)


def find_grant(archive: "Archive", grant: str | Path) -> Path:
    """A grant file path from a path or a grant id. Raises ConfigError."""
    candidate = Path(grant)
    if candidate.exists():
        return candidate
    path = _org(archive) / "grants" / f"{grant}.json"
    if path.exists():
        return path
    raise ConfigError(f"no grant {grant!r} (neither a file nor a grant id of this archive)")


def revocations(archive: "Archive") -> dict[str, dict[str, Any]]:
    """grant id -> revocation record. Fail closed: any line naming a grant revokes it."""
    path = _org(archive) / "revocations.jsonl"
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            out[str(record["body"]["grant_id"])] = {**record["body"], "by": record["signature"]["signer"]}
        except (ValueError, KeyError, TypeError):
            continue
    return out


# --- the request workflow --------------------------------------------------------------------

def _requests_dir(archive: "Archive", request_id: str) -> Path:
    if not request_id.replace("-", "").isalnum():
        raise ConfigError(f"invalid request id {request_id!r}")
    return _org(archive) / "requests" / request_id


def new_request(archive: "Archive", *, requester: str, signing_key: _crypto.SigningKey, case: str, purpose: str,
                start: datetime, end: datetime, fields: Sequence[str], reason: str, now: datetime,
                conversations: Sequence[str] = (), participants: Sequence[str] = (), groups: Sequence[str] = (),
                legal_basis: str = "", consent: str = "", operator: str = "",
                templates: Sequence[str] = ()) -> SignedRequest:
    """File a signed retrieval request (电子证据调取申请单) after the policy allows it.

    Raises PolicyDenied (audited with its rule) when the policy refuses.
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
    record_decision(archive, decision, actor=requester, action="request.new", target=request_id, now=now,
                    details={"case": case, "purpose": purpose, "window": [format_ts(start), format_ts(end)],
                             "fields": list(req.fields)})
    decision.raise_if_denied()
    body = req.to_body()
    signed = SignedRequest(req, signing_key.sign(canonical_json(body)), body)
    folder = _requests_dir(archive, request_id)
    _write_json(folder / "request.json", signed.to_json())
    return signed


def load_request(archive: "Archive", request_id: str) -> SignedRequest:
    return SignedRequest.from_json(_read_json(_requests_dir(archive, request_id) / "request.json",
                                              f"request {request_id}"))


def request_approvals(archive: "Archive", request_id: str) -> list[Approval]:
    folder = _requests_dir(archive, request_id) / "approvals"
    if not folder.exists():
        return []
    return [Approval.from_json(_read_json(p, p.name)) for p in sorted(folder.glob("*.json"))]


def request_status(archive: "Archive", request_id: str) -> str:
    """'pending', 'rejected' or 'granted'."""
    if (_requests_dir(archive, request_id) / "grant").exists():
        return "granted"
    if any(a.decision == "reject" for a in request_approvals(archive, request_id)):
        return "rejected"
    return "pending"


def list_requests(archive: "Archive") -> list[dict[str, Any]]:
    root = _org(archive) / "requests"
    out = []
    for folder in sorted(root.iterdir()) if root.exists() else []:
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


def approve(archive: "Archive", keys: "MasterKeys", request_id: str, *, approver: str,
            signing_key: _crypto.SigningKey, totp: str, now: datetime, note: str = "",
            decision: str = "approve") -> ApprovalResult:
    """Record ``approver``'s signed decision (after a TOTP check); issue the grant once the policy is met.

    Checks, in order, each audited when it refuses: the request's signature
    and validity, the approver's eligibility (never oneself; the requester's
    direct supervisor or an approver role), the approver's live key, the TOTP
    code (wrong, expired, replayed, lock-out). Raises PolicyDenied,
    IdentityCheckFailed or GrantInvalid.
    """
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
    try:
        counter = verify_totp(archive, keys, approver, totp, now=now, policy=policy, purpose="approve")
    except IdentityCheckFailed as exc:
        _deny(archive, approver, action, request_id, "identity.totp", str(exc), now, IdentityCheckFailed)
        raise  # unreachable: _deny raises
    body = {"format": APPROVAL_FORMAT, "request_id": request_id, "request_hash": signed.hash, "approver": approver,
            "key_id": signing_key.public.key_id, "decision": decision, "note": note, "ts": format_ts(now),
            "totp_verified": True}
    unsigned = Approval(body, signing_key.sign(canonical_json(body)), "", counter)
    approval = Approval(body, unsigned.signature, keys.signing.sign(unsigned.attestation_bytes()), counter)
    folder = _requests_dir(archive, request_id) / "approvals"
    existing = request_approvals(archive, request_id)
    if any(a.approver == approver for a in existing):
        _deny(archive, approver, action, request_id, "approval.duplicate", f"{approver} has already decided", now)
    _write_json(folder / f"{len(existing) + 1:02d}-{approver}.json", approval.to_json())
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


def _issue(archive: "Archive", keys: "MasterKeys", signed: SignedRequest, approvals: Sequence[Approval], *,
           policy: Policy, requester: Person, now: datetime) -> Path:
    grant_id = f"G-{signed.hash[:16]}"
    body = {"format": "investigator-grant-body/1", "grant_id": grant_id, "archive_id": archive.archive_id,
            "request_id": signed.id, "request_hash": signed.hash, "approvals": [a.hash for a in approvals],
            "request_fields": request_field_hashes(signed.body),
            "issued": format_ts(now), "expiry": format_ts(now + policy.grant_lifetime(requester)),
            "policy_version": policy.version, "policy_sha256": policy.source_sha256}
    grant = Grant(signed, tuple(approvals), body, keys.signing.sign(canonical_json(body)))
    path = _org(archive) / "grants" / f"{grant_id}.json"
    _write_json(path, grant.to_json())
    (_requests_dir(archive, signed.id) / "grant").write_text(grant_id + "\n")
    return path


def revoke_grant(archive: "Archive", grant: str | Path, *, signer: Signer, reason: str, now: datetime) -> str:
    """Revoke a grant: an admin-signed line in ``org/revocations.jsonl``. Audited. Returns the grant id.

    Raises PolicyDenied (audited) if ``signer`` is not an admin (or the archive key).
    """
    path = find_grant(archive, grant)
    grant_id = load_grant(path).id
    directory = DirectoryStore(archive).load()
    body = {"format": "investigator-revocation/1", "grant_id": grant_id, "ts": format_ts(now), "reason": reason}
    data = canonical_json(body)
    signature = signer.key.sign(data)
    try:
        check_signer(signer.id, signer.key.public.key_id, signature, data, archive_public=archive.signing_public,
                     directory=directory, what="revocation")
    except IntegrityError as exc:
        _deny(archive, signer.id, "grant.revoke", grant_id, "grant.revoke", str(exc), now)
    record = {"body": body, "signature": {"signer": signer.id, "key_id": signer.key.public.key_id,
                                          "signature": signature}}
    archive.audit.append(signer.id, "grant.revoke", grant_id, {"rule": "grant.revoke", "reason": reason}, now=now)
    target = _org(archive) / "revocations.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
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


# --- the demo --------------------------------------------------------------------------------

#: DEMO ONLY. Deterministic TOTP secrets and passphrases so the demo and the tests can compute codes.
#: Never use these for real people: anyone who reads this file can log in as them.
DEMO_ONLY_TOTP_SECRETS: dict[str, bytes] = {
    pid: hashlib.sha1(f"investigator DEMO ONLY totp secret for {pid}".encode()).digest()
    for pid in ("wugang", "zhouzong", "sunli", "lixia", "zhaomin", "zhangwei", "zhengjie", "qianjin", "xuming",
                "liuyang")
}
DEMO_ONLY_PASSPHRASE = "DEMO-ONLY-passphrase-{person}"
DEMO_KDF_N = 2**14  # DEMO ONLY: low scrypt cost so the demo runs in seconds

_BUILTIN_PEOPLE = (  # used when data_samples/people.csv is absent
    ("zhouzong", "周总", "总经办", "管理层", "", "executive"),
    ("sunli", "孙丽", "法务部", "法务部", "zhouzong", "legal;operator"),
    ("lixia", "李霞", "法务部", "法务部", "zhouzong", "legal"),
    ("wugang", "吴刚", "信息技术部", "信息技术部", "zhouzong", "admin"),
    ("zhengjie", "郑洁", "审计部", "审计部", "zhouzong", "auditor"),
    ("zhaomin", "赵敏", "客服部", "客服一组", "zhouzong", "team_lead"),
    ("zhangwei", "张伟", "客服部", "客服一组", "zhaomin", "agent"),
    ("qianjin", "钱进", "安保部", "护卫队;安保部", "zhouzong", "team_lead;operator"),
    ("xuming", "徐明", "采购部", "采购部;项目A", "zhouzong", "team_lead"),
    ("liuyang", "刘洋", "采购部", "采购部;项目A", "xuming", "agent"),
)


@dataclass(frozen=True)
class DemoAuthority:
    """What :func:`demo_authority` set up. DEMO ONLY: its secrets are public constants."""

    people: tuple[str, ...]
    enrolled: tuple[str, ...]
    grant_path: Path
    grant_id: str
    operator_id: str
    operator_passphrase: str
    key_dir: Path

    def totp_for(self, person_id: str, now: datetime) -> str:
        """The DEMO-ONLY TOTP code of ``person_id`` at ``now`` (each code is accepted once)."""
        return _crypto.totp(DEMO_ONLY_TOTP_SECRETS[person_id], now.timestamp())

    def passphrase_for(self, person_id: str) -> str:
        return DEMO_ONLY_PASSPHRASE.format(person=person_id)


def demo_authority(archive: "Archive", keys: "MasterKeys", *, now: datetime, key_dir: Path | None = None,
                   people_csv: Path | None = None, kdf_n: int = DEMO_KDF_N) -> DemoAuthority:
    """DEMO ONLY: people, enrolment with public secrets, the default policy, and one approved grant.

    Imports ``data_samples/people.csv`` (or a built-in list), enrols the demo
    people with :data:`DEMO_ONLY_TOTP_SECRETS`, and has 孙丽 (sunli, legal +
    operator) request the complaint window 2026-11-18 14:00-17:00 (archive
    time zone), approved by her supervisor 周总 (zhouzong) with a computed code.
    Warns on every call: these identities are not secret.
    """
    from .directory import add_people, read_people_csv
    from .identity import enroll, unlock_person_key
    from .policy import default_policy_text

    warnings.warn("DEMO ONLY: demo people use public TOTP secrets and passphrases (investigator.grants."
                  "DEMO_ONLY_TOTP_SECRETS); never use this archive for real evidence", UserWarning, stacklevel=2)
    key_dir = Path(key_dir) if key_dir else Path(archive.root) / "demo-keys"
    csv_path = people_csv or Path(__file__).resolve().parents[1] / "data_samples" / "people.csv"
    if csv_path.exists():
        people = read_people_csv(csv_path)
    else:
        people = [Person(id=p[0], name=p[1], department=p[2], groups=tuple(p[3].split(";")), supervisor=p[4],
                         roles=tuple(p[5].split(";"))) for p in _BUILTIN_PEOPLE]
    known = {p.id for p in people}
    # the demo's legal reviewer (法律顾问), so the review -> release path runs end to end
    people += [Person(id=p[0], name=p[1], department=p[2], groups=tuple(p[3].split(";")), supervisor=p[4],
                      roles=tuple(p[5].split(";"))) for p in _BUILTIN_PEOPLE if p[0] == "lixia" and p[0] not in known]
    root = Signer.archive(keys.signing)
    when = now
    add_people(archive, people, signer=root, now=when, policy=Policy.default(), action="import")
    PolicyStore(archive).install(default_policy_text(), signer=root, directory=DirectoryStore(archive).load(),
                                 now=when, note="DEMO default policy")
    directory = DirectoryStore(archive).load()
    demo_ids = [pid for pid in DEMO_ONLY_TOTP_SECRETS if pid in directory]
    # the admin first, signed with the archive key (bootstrap); then the admin signs the rest
    admin_id = next(pid for pid in demo_ids if ADMIN_ROLE in directory.person(pid).roles)
    ordered = [admin_id] + [pid for pid in demo_ids if pid != admin_id]
    signer = root
    for pid in ordered:
        enroll(archive, keys, pid, signer=signer, passphrase=DEMO_ONLY_PASSPHRASE.format(person=pid), now=when,
               key_dir=key_dir, kdf_n=kdf_n, totp_secret=DEMO_ONLY_TOTP_SECRETS[pid])
        if pid == admin_id:
            signer = Signer(admin_id, unlock_person_key(archive, admin_id,
                                                        DEMO_ONLY_PASSPHRASE.format(person=admin_id),
                                                        key_dir=key_dir))
    zone = archive.config.zone
    start = datetime(2026, 11, 18, 14, 0, tzinfo=zone)
    end = datetime(2026, 11, 18, 17, 0, tzinfo=zone)
    operator = "sunli"
    sunli_key = unlock_person_key(archive, operator, DEMO_ONLY_PASSPHRASE.format(person=operator), key_dir=key_dir)
    signed = new_request(archive, requester=operator, signing_key=sunli_key, case="DEMO-2026-11-18-complaint",
                         purpose="customer_complaint", start=start, end=end, fields=("metadata", "content"),
                         reason="DEMO: customer complaint about delivery delay and agent conduct, 2026-11-18",
                         legal_basis="DEMO: 内部调查制度", consent="DEMO-CONSENT-0001", now=when)
    approver = directory.person(operator).supervisor or "zhouzong"
    approver_key = unlock_person_key(archive, approver, DEMO_ONLY_PASSPHRASE.format(person=approver), key_dir=key_dir)
    result = approve(archive, keys, signed.id, approver=approver, signing_key=approver_key,
                     totp=_crypto.totp(DEMO_ONLY_TOTP_SECRETS[approver], when.timestamp()), now=when,
                     note="DEMO approval")
    if result.grant_path is None:
        raise PolicyDenied(result.decision.reason, rule=result.decision.rule, decision=result.decision)
    return DemoAuthority(people=tuple(p.id for p in people), enrolled=tuple(ordered), grant_path=result.grant_path,
                         grant_id=result.grant_path.stem, operator_id=operator,
                         operator_passphrase=DEMO_ONLY_PASSPHRASE.format(person=operator), key_dir=key_dir)
