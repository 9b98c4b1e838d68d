"""The signed documents: a request (电子证据调取申请单), approvals, and the grant that joins them.

    >>> grant = load_grant("org/grants/G-1a2b.json").verify(archive, now=now)   # doctest: +SKIP

Part of :mod:`investigator.authority.grants`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from investigator import _crypto
from investigator.authority.consent import check_consent
from investigator.authority.directory import Directory, DirectoryStore, Person
from investigator.errors import ConfigError, GrantExpired, GrantInvalid, IntegrityError
from investigator._fs import atomic_write, make_dirs
from investigator.authority.policy import Policy, PolicyStore, Request, parse_utc
from investigator.schema import canonical_json, format_ts
from investigator.vault.statehead import check_files
from investigator.vault.store import Archive
from investigator.vault.verify import check_archive_pin
from investigator.verification import Verification


GRANT_FORMAT = "investigator-grant/1"
APPROVAL_FORMAT = "investigator-approval/1"
DECISIONS = ("approve", "reject")


def body_hash(body: dict[str, Any]) -> str:
    """Hex SHA-256 of a body's RFC 8785 bytes."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode()


def _write_json(path: Path, obj: Any) -> None:
    make_dirs(path.parent)
    atomic_write(path, _json_bytes(obj))


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"{what}: not found") from exc
    except json.JSONDecodeError as exc:
        raise GrantInvalid(f"{what}: not readable JSON (line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise GrantInvalid(f"{what}: not readable JSON (not UTF-8 at byte {exc.start})") from None
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

    def verify(self, request_hash: str, directory: Directory, archive_public: _crypto.SignatureCheck) -> None:
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
        """A grant from its parsed file (no verification). Raises GrantInvalid naming the file and field."""
        where = f"{path}: " if path is not None else ""
        if not isinstance(obj, dict) or obj.get("format") != GRANT_FORMAT:
            raise GrantInvalid(f"{where}not an investigator grant (unknown format)")
        field = "request"
        try:
            request = SignedRequest.from_json(obj["request"])
            field = "approvals"
            if not isinstance(obj["approvals"], list):
                raise TypeError("approvals")
            approvals = []
            for position, item in enumerate(obj["approvals"], start=1):
                field = f"approvals[{position}]"
                approvals.append(Approval.from_json(item))
            field = "grant"
            if not isinstance(obj["grant"], dict) or not isinstance(obj["grant"]["body"], dict):
                raise TypeError("grant")
            return cls(request, tuple(approvals), dict(obj["grant"]["body"]), str(obj["grant"]["signature"]), path)
        except (KeyError, TypeError, ValueError, AttributeError, GrantInvalid) as exc:
            raise GrantInvalid(f"{where}malformed grant file: field {field!r} missing or not of the expected "
                               "shape") from exc

    @classmethod
    def from_file(cls, path: Path | str) -> "Grant":
        """Read a grant file (no verification). Raises GrantInvalid or ConfigError (missing)."""
        return cls.from_json(_read_json(Path(path), str(path)), path=Path(path))

    # --- verification -----------------------------------------------------------------

    def verify_offline(self, *, archive_id: str, archive_public: _crypto.SignatureCheck, policy: Policy,
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
               policy: Policy | None = None, directory: Directory | None = None, pin: str | None = None) -> "Grant":
        """Verify against the archive's public material; audit the outcome. Returns self.

        Raises GrantInvalid (signatures, fields, approvals, policy, the request's
        customer consent no longer verifying, a field of the wrong shape) or
        GrantExpired (past expiry or revoked), each naming the reason. With
        ``pin`` (a fingerprint, investigator.vault.verify.parse_fingerprint)
        raises IntegrityError first when the archive's key chain does not root
        in the pinned key: then no archive signature can be trusted.
        """
        if pin is not None:
            pinned = Verification("grant")
            if not check_archive_pin(archive, pin, pinned):
                archive.audit.append(actor, "grant.verify", self.id,
                                     {"rule": "grant.pin", "reason": "the archive key is not the pinned key"},
                                     outcome="denied", now=now)
                raise IntegrityError("; ".join(pinned.problems),
                                     hint="the archive's key is not the one you pinned: do not trust its grants")
        try:
            directory = directory or DirectoryStore(archive).load()
            if policy is None:
                policy = PolicyStore(archive).load(directory)
            self.verify_offline(archive_id=archive.archive_id, archive_public=archive.signing_keys(), policy=policy,
                                directory=directory, tz=archive.config.zone, now=now,
                                revoked=revocations(archive))
            req = self.request.request
            if req.purpose in policy.consent_purposes or req.consent.strip():
                # the consent the grant rests on must still be there, signed, of this case and unaltered
                verdict = check_consent(archive, req.consent, case=req.case, directory=directory)
                if not verdict.allowed:
                    raise GrantInvalid(f"the request's customer consent does not verify ({verdict.rule}): "
                                       f"{verdict.reason}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # hostile input: a finding, not a crash
            reason = f"malformed grant: a field is not of the expected shape ({type(exc).__name__})"
            archive.audit.append(actor, "grant.verify", self.id, {"rule": "grant.invalid", "reason": reason},
                                 outcome="denied", now=now)
            raise GrantInvalid(reason) from None
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
    try:
        path: Path | None = archive.layout.grant(str(grant))
    except ConfigError:  # not a plain name: no grant id of this archive
        path = None
    if path is not None and path.exists():
        return path
    raise ConfigError(f"no grant {grant!r} (neither a file nor a grant id of this archive)")


def revocations(archive: "Archive") -> dict[str, dict[str, Any]]:
    """grant id -> revocation record. Fail closed: any line naming a grant revokes it; the first line of a grant is
    its record (when and by whom it was revoked: a later line must not move that time).

    Raises IntegrityError when the file is below the newest signed state head (lines removed, an older copy).
    """
    path = archive.layout.revocations
    out: dict[str, dict[str, Any]] = {}
    # lines removed below the newest signed state head would un-revoke a grant (issue #13, item 2)
    problems = check_files(archive, [archive.layout.relative(path)])
    if problems:
        raise IntegrityError(f"the revocations do not match their signed state head: {problems[0]}",
                             hint="run 'investigator verify --offline'")
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            out.setdefault(str(record["body"]["grant_id"]), {**record["body"], "by": record["signature"]["signer"]})
        except (ValueError, KeyError, TypeError):
            continue
    return out


