"""The custodian's desk: every authority decision that needs the archive's master keys, in one place.

    >>> desk = CustodianDesk(archive, custody)                                          # doctest: +SKIP
    >>> token = desk.login("sunli", totp="123456")                                      # doctest: +SKIP
    >>> outcome = desk.decide("REQ-...", approver="zhouzong", signing_key=key, totp="654321")  # doctest: +SKIP
    >>> outcome.grant_id                                                                # doctest: +SKIP
    'G-...'

The same desk serves both homes of the key service: in embedded mode the CLI
unlocks the custody and calls it directly (one trusted machine); behind
``investigator keyserver`` the server calls it for signed requests
(``/v1/login``, ``/v1/decide``, ``/v1/enroll-totp``, ``/v1/unlock-person``,
``/v1/bundle/attest`` (the exported records read and judged here; a hold's key and lock-down come with
its answer), ``/v1/bundle/attest-release``, ``/v1/verify``), so the checks and audit entries are the same whichever way a decision arrives. What
needs a secret happens here: the TOTP check (secrets sealed under the master
key), the archive key's attestations (approvals, grants, sessions, bundles),
and full verification (decrypting every chunk). What a person signs stays on
their machine: the desk receives their signature, never their key
(:class:`~investigator.authority.grants.Presigned`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from investigator import _crypto
from investigator.authority.directory import DirectoryStore
from investigator.authority.grants import Grant, Presigned, approve
from investigator.authority.identity import clear_lockout, enroll_totp, login, verify_totp
from investigator.authority.locks import UNLOCK_ID_RE, check_unlock, unlock_body, write_unlock
from investigator.authority.policy import PolicyStore, load_org, record_decision
from investigator.access.held import HeldBundle, new_held_key, release_key
from investigator.access.exportcheck import ServerVerdict, judge, parse_leaves, read_export
from investigator.access.lockdown import Lockdown, trip
from investigator.custody.base import Custody
from investigator.errors import BundleError, ConfigError, IntegrityError, PolicyDenied
from investigator.schema import canonical_json
from investigator.verification import Verification
from investigator.vault.audit import checkpoint_line_size
from investigator.vault.format import Keyring
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive

# who may ask the key server for a full verification (it decrypts every chunk but returns only findings)
VERIFY_ROLES = ("admin", "auditor")


@dataclass(frozen=True)
class DecisionOutcome:
    """What an approval or rejection led to: the decision recorded, and the grant if one was issued."""

    request_id: str
    decision: str
    approval_hash: str
    granted: bool
    rule: str
    reason: str
    grant_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "decision": self.decision, "approval_hash": self.approval_hash,
                "granted": self.granted, "rule": self.rule, "reason": self.reason, "grant_id": self.grant_id}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "DecisionOutcome":
        grant_id = obj.get("grant_id")
        return cls(request_id=str(obj["request_id"]), decision=str(obj["decision"]),
                   approval_hash=str(obj.get("approval_hash") or ""), granted=bool(obj.get("granted")),
                   rule=str(obj.get("rule") or ""), reason=str(obj.get("reason") or ""),
                   grant_id=str(grant_id) if grant_id else None)


@dataclass(frozen=True)
class ExportAttestation:
    """The key service's answer to a bundle attestation: the attestation (with its verdict) and, for a hold,
    the held bundle's key (plain, sealed) and the lock-down done in the same operation."""

    attestation: dict[str, Any]
    verdict: ServerVerdict
    key: bytes | None = field(default=None, repr=False)
    sealed_key: dict[str, Any] | None = field(default=None, repr=False)
    lockdown: Lockdown | None = None

    @property
    def held(self) -> bool:
        return self.verdict.held


@dataclass(frozen=True)
class TotpEnrolment:
    """A TOTP secret made by the custody, handed back once. The repr shows neither the URI nor the secret."""

    person_id: str
    uri: str
    secret_b32: str

    def __repr__(self) -> str:
        return f"TotpEnrolment(person_id={self.person_id!r})"


def _utc(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def attestation(keys: Keyring, body: dict[str, Any]) -> dict[str, Any]:
    """The archive key's signature over ``body`` (canonical JSON), with the key id."""
    return {"body": body, "key_id": keys.signing.public.key_id, "signature": keys.signing.sign(canonical_json(body))}


class CustodianDesk:
    """Authority decisions with the master keys at hand (see the module docstring). Never prints a secret."""

    def __init__(self, archive: Archive, keys: Custody, *, notifiers: frozenset[str] = frozenset()) -> None:
        self.archive = archive
        self._keys = keys
        # the circuit breaker's notifier commands this desk's operator allows (access/lockdown.py)
        self.notifiers = frozenset(notifiers)

    def __repr__(self) -> str:
        return f"CustodianDesk(archive_id={self.archive.archive_id!r})"

    # --- checkpoints -------------------------------------------------------------------------

    def checkpoint(self, *, now: datetime | None = None) -> int:
        """Sign the audit log's current tree head with the archive key; return the tree size it covers.

        Writes nothing when no entry was appended since the last checkpoint. Raises
        AuditError (nothing written) when the log does not continue the last checkpoint.
        """
        line = self.archive.audit.checkpoint(self._keys.signing, archive_id=self.archive.archive_id, now=_utc(now))
        return checkpoint_line_size(line)

    def _may_export(self, person: str, *, action: str, grant_id: str, target: str,
                    when: datetime) -> tuple[Any, Any, Any]:
        """The verified directory, policy and allowing decision, once the policy lets ``person`` export; audited as
        ``action`` on ``target``. Raises PolicyDenied (audited) when it does not, or when org/ does not verify."""
        directory, policy = load_org(self.archive, actor=person, action=action, target=grant_id, now=when)
        decision = policy.decide("export", person=directory.person(person), directory=directory, now=when,
                                 tz=self.archive.config.zone)
        record_decision(self.archive, decision, actor=person, action=action, target=target, now=when)
        decision.raise_if_denied()
        return directory, policy, decision

    @contextmanager
    def _decision(self, now: datetime | None) -> Iterator[None]:
        """Checkpoint after the decision inside, allowed or refused (issue #13: after every decision)."""
        try:
            yield
        finally:
            self.checkpoint(now=now)

    # --- identity ----------------------------------------------------------------------------

    def login(self, person: str, *, totp: str, hours: int | None = None, now: datetime | None = None) -> str:
        """A signed session token after a TOTP check. Raises IdentityCheckFailed (audited)."""
        with self._decision(now):
            return login(self.archive, self._keys, person, totp=totp, now=_utc(now), hours=hours)

    def enroll_totp(self, person: str, *, admin: str, now: datetime | None = None,
                    totp_secret: bytes | None = None) -> TotpEnrolment:
        """Make and seal ``person``'s TOTP secret. Raises PolicyDenied (``admin`` is no admin; audited)."""
        with self._decision(now):
            uri, b32 = enroll_totp(self.archive, self._keys, person, admin=admin, now=_utc(now),
                                   totp_secret=totp_secret)
            return TotpEnrolment(person, uri, b32)

    def clear_lockout(self, person: str, *, admin: str, now: datetime | None = None) -> None:
        """Clear a TOTP lock-out. Raises PolicyDenied (``admin`` is no admin; audited)."""
        with self._decision(now):
            clear_lockout(self.archive, self._keys, person, admin=admin, now=_utc(now))

    # --- requests ----------------------------------------------------------------------------

    def decide(self, request_id: str, *, approver: str, signing_key: "_crypto.SigningKey | Presigned", totp: str,
               note: str = "", decision: str = "approve", signed_at: datetime | None = None,
               now: datetime | None = None) -> DecisionOutcome:
        """Approve or reject ``request_id`` (TOTP checked here); issues the grant once the policy is met.

        Raises PolicyDenied, IdentityCheckFailed or GrantInvalid (each audited).
        """
        # approve() checkpoints the audit log after the decision, whatever its outcome
        result = approve(self.archive, self._keys, request_id, approver=approver, signing_key=signing_key, totp=totp,
                         now=_utc(now), note=note, decision=decision, signed_at=signed_at)
        grant_id = result.grant_path.stem if result.grant_path is not None else None
        return DecisionOutcome(request_id=request_id, decision=decision, approval_hash=result.approval.hash,
                               granted=grant_id is not None, rule=result.decision.rule, reason=result.decision.reason,
                               grant_id=grant_id)

    # --- evidence bundles --------------------------------------------------------------------

    def attest_bundle(self, body: dict[str, Any], *, person: str, grant: Grant,
                      now: datetime | None = None) -> dict[str, Any]:
        """Refused: an attestation names the exported records and carries this desk's verdict
        (:meth:`attest_export`). An older client that asks without its records gets no attestation (audited,
        rule ``bundle.leaves``) — otherwise it could skip the circuit breaker's hold. Raises BundleError.
        """
        with self._decision(now):
            reason = ("the attestation needs the exported records ([batch_seq, leaf_index] pairs): the key service "
                      "reads and judges them itself; update the client")
            self.archive.audit.append(person, "bundle.attest", grant.id,
                                      {"rule": "bundle.leaves", "bundle_id": str(body.get("bundle_id") or "")[:40],
                                       "reason": reason}, outcome="denied", now=_utc(now))
            raise BundleError(reason)

    def attest_export(self, body: dict[str, Any], leaves: Any, *, person: str, grant: Grant,
                      now: datetime | None = None) -> ExportAttestation:
        """The archive's attestation of a bundle ``person`` exported from ``grant``'s case, judged here.

        ``leaves``: the exported records as ``[batch_seq, leaf_index]`` pairs. This desk reads those records
        itself (:func:`~investigator.access.exportcheck.read_export`: record hashes recomputed against the
        signed batch leaves, the grant's window and scope), runs the circuit breaker on them and signs the
        leaf set's hash and its own verdict into the attestation (``leaf_set_sha256``, ``items``,
        ``verdict``). When the verdict is ``hold``, no release attestation is given: the attestation says
        ``hold`` (``bundle verify`` then wants a legal reviewer's release), the key that seals the held
        bundle comes with it, and in the same operation the accounts the signed policy names are locked and
        the notifier runs (:mod:`investigator.access.lockdown`); audited ``bundle.attest`` denied, rule
        ``breaker.hold``. Raises PolicyDenied (``person`` is not the grant's operator, or has no export
        permission), BundleError (a body that does not
        match the case, records that are not genuine records of the grant), each audited.
        """
        with self._decision(now):
            when = _utc(now)
            if person != grant.operator:  # as over the key server, where the case ticket binds the person
                reason = f"{person} is not the operator of grant {grant.id} (the operator is {grant.operator})"
                self.archive.audit.append(person, "bundle.attest", grant.id, {"rule": "grant.operator",
                                                                              "reason": reason},
                                          outcome="denied", now=when)
                raise PolicyDenied(reason, rule="grant.operator")
            directory, policy, decision = self._may_export(person, action="bundle.attest", grant_id=grant.id,
                                                           target=grant.id, when=when)
            self._check_attest_body(body, person=person, grant=grant, directory=directory, when=when)
            try:
                read = read_export(self.archive, self._keys, grant=grant, directory=directory,
                                   leaves=parse_leaves(leaves))
            except (BundleError, IntegrityError) as err:
                rule = getattr(err, "rule", "bundle.leaves")
                self.archive.audit.append(person, "bundle.attest", grant.id,
                                          {"rule": rule, "bundle_id": body["bundle_id"],
                                           "reason": f"the attestation request's records: {err}"},
                                          outcome="denied", now=when)
                raise
            verdict = judge(read, policy=policy, grant=grant)
            attested = attestation(self._keys, {**body, "leaf_set_sha256": read.leaf_set_sha256, "items": read.items,
                                                "verdict": verdict.to_json()})
            details = {"bundle_id": body["bundle_id"], "manifest_sha256": body["manifest_sha256"],
                       "leaf_set_sha256": read.leaf_set_sha256, "items": read.items,
                       "verdict": "hold" if verdict.held else "release"}
            if not verdict.held:
                self.archive.audit.append(person, "bundle.attest", grant.id, {"rule": decision.rule, **details},
                                          outcome="allowed", now=when)
                return ExportAttestation(attested, verdict)
            self.archive.audit.append(person, "bundle.attest", grant.id,
                                      {"rule": "breaker.hold", **details,
                                       "reason": "the key service's circuit breaker holds this export ("
                                                 + "; ".join(verdict.reasons) + "): no release attestation; "
                                                 "only a legal reviewer's release makes it exportable"},
                                      outcome="denied", now=when)
            key, sealed = new_held_key(self._keys, body["bundle_id"])
            lockdown = trip(self.archive, self._keys, policy=policy, directory=directory, person=person, grant=grant,
                            bundle_id=body["bundle_id"], texts=read.texts,
                            notifiers=self.notifiers, now=when)
            return ExportAttestation(attested, verdict, key, sealed, lockdown)

    def _check_attest_body(self, body: dict[str, Any], *, person: str, grant: Grant, directory: Any,
                           when: datetime) -> None:
        """The attestation body must name this person, their live key, this grant, a bundle id and a hash."""
        live = directory.person(person).current_key
        expected = {"purpose": "bundle-operator", "archive_id": self.archive.archive_id, "operator": person,
                    "operator_key_id": live.key_id if live else None, "grant_id": grant.id}
        wrong = sorted(k for k, v in expected.items() if body.get(k) != v)
        if wrong or set(body) != {*expected, "bundle_id", "manifest_sha256"} \
                or not isinstance(body.get("bundle_id"), str) or not isinstance(body.get("manifest_sha256"), str):
            reason = f"the bundle attestation request does not match the case ({', '.join(wrong) or 'fields'})"
            self.archive.audit.append(person, "bundle.attest", grant.id,
                                      {"rule": "bundle.attest", "reason": reason}, outcome="denied", now=when)
            raise BundleError(reason)

    def attest_release(self, body: dict[str, Any], *, reviewer: str, operator: str,
                       now: datetime | None = None) -> dict[str, Any]:
        """The archive's attestation of a legal reviewer's release of a held bundle.

        ``operator`` is the bundle's operator (read from the held bundle by the
        caller). Raises PolicyDenied (not a legal reviewer, or the operator; audited).
        """
        with self._decision(now):
            when = _utc(now)
            bundle_id = str(body.get("bundle_id") or "")
            directory = DirectoryStore(self.archive).load()
            policy = PolicyStore(self.archive).load(directory)
            person = directory.find(reviewer)
            reason = ""
            if person is None or not person.active:
                reason = f"{reviewer} is not an active person in the directory"
            elif reviewer == operator:
                reason = "the operator may not release their own bundle"
            elif not set(person.roles) & set(policy.legal_review_roles):
                reason = f"only a legal reviewer ({', '.join(policy.legal_review_roles)}) may release a held bundle"
            elif body.get("purpose") != "bundle-release" or body.get("reviewer") != reviewer \
                    or (person.current_key is None or body.get("reviewer_key_id") != person.current_key.key_id):
                reason = "the release body does not name this reviewer and their live key"
            if reason:
                self.archive.audit.append(reviewer, "bundle.release", bundle_id,
                                          {"rule": "release.legal_role", "reason": reason}, outcome="denied",
                                          now=when)
                raise PolicyDenied(reason, rule="release.legal_role")
            return attestation(self._keys, body)

    def release_held(self, body: dict[str, Any], *, reviewer: str, held: HeldBundle,
                     now: datetime | None = None) -> tuple[dict[str, Any], bytes | None]:
        """A legal reviewer's release of a held bundle: the archive's attestation, and the key that opens it.

        The envelope is opened (authenticated) with the custody before anything is decided on the
        operator and manifest hash it names; the attested body adds the breaker's reasons the reviewer
        acknowledges. Raises PolicyDenied (not a legal reviewer, or the operator; audited), IntegrityError
        (an altered envelope or sealed key), BundleError (the body names another manifest).
        """
        try:
            key = release_key(self._keys, held)
        except IntegrityError:
            self.archive.audit.append(reviewer, "bundle.release", held.bundle_id,
                                      {"rule": "release.envelope",
                                       "reason": "the held bundle's envelope or sealed key does not verify"},
                                      outcome="denied", now=_utc(now))
            raise
        files = held.open(key)
        manifest = json.loads(files["manifest.json"])
        if body.get("manifest_sha256") != held.manifest_sha256 or body.get("bundle_id") != held.bundle_id:
            raise BundleError(f"the release names another bundle or manifest than held bundle {held.bundle_id}")
        # the reasons the key service held it for (attested, bundle format 2), else the exporting client's
        try:
            verdict = json.loads(files["signature.json"])["archive"]["body"]["verdict"]
        except (KeyError, TypeError, ValueError):
            verdict = manifest.get("breaker") or {}
        attested = self.attest_release({**body, "acknowledged": [str(r) for r in (verdict.get("reasons") or [])]},
                                       reviewer=reviewer, operator=held.operator, now=now)
        return attested, key

    # --- account locks (the circuit breaker's) ----------------------------------------------

    def unlock_account(self, person: str, *, admin: str, reason: str, totp: str, unlock_id: str,
                       signed_at: datetime, signature: str, now: datetime | None = None) -> list[str]:
        """An admin lifts ``person``'s account locks: checks, the admin's signature, their TOTP code, the record.

        ``signature`` is the admin's signature (made on their machine) over
        :func:`~investigator.authority.locks.unlock_body` for the person's active locks. Returns the lock
        ids lifted. Raises PolicyDenied (the locked person themselves, no admin, no reason, a signature
        over something else; audited), IdentityCheckFailed (the code; audited), ConfigError (no lock).
        """
        with self._decision(now):
            when = _utc(now)
            directory = DirectoryStore(self.archive).load()
            locks = check_unlock(self.archive, directory, person, admin=admin, reason=reason, now=when)
            if not UNLOCK_ID_RE.match(unlock_id):
                raise ConfigError("not an unlock id (UNLOCK-YYYYMMDD-xxxxxxxx)")
            body = unlock_body(self.archive, person, [lk.id for lk in locks], admin=admin, reason=reason,
                               signed_at=signed_at, unlock_id=unlock_id)
            key = directory.person(admin).current_key
            assert key is not None  # check_unlock: an active admin with a live key
            try:
                key.verify_key().verify(signature, canonical_json(body), what="unlock")
            except IntegrityError:
                reason_ = "the admin's signature does not cover this unlock (locks, reason or time differ)"
                self.archive.audit.append(admin, "account.unlock", person,
                                          {"rule": "account.unlock_signature", "reason": reason_},
                                          outcome="denied", now=when)
                raise PolicyDenied(reason_, rule="account.unlock_signature") from None
            verify_totp(self.archive, self._keys, admin, totp, now=when, purpose="unlock")
            write_unlock(self.archive, body, admin=admin, key_id=key.key_id, signature=signature, now=when)
            return [lk.id for lk in locks]

    # --- verification ------------------------------------------------------------------------

    def verify(self, *, actor: str, now: datetime | None = None) -> Verification:
        """Full verification (every chunk decrypted) for an admin or auditor. Raises PolicyDenied (audited)."""
        when = _utc(now)
        me = DirectoryStore(self.archive).load().find(actor)
        if actor != "archive" and (me is None or not me.active or not set(me.roles) & set(VERIFY_ROLES)):
            reason = f"a full verification is for {' or '.join(VERIFY_ROLES)}; others use 'verify --offline'"
            self.archive.audit.append(actor, "verify", "archive", {"rule": "role.permission", "reason": reason},
                                      outcome="denied", now=when)
            raise PolicyDenied(reason, rule="role.permission")
        return verify_archive(self.archive, keys=self._keys, actor=actor)


__all__ = ["CustodianDesk", "DecisionOutcome", "ExportAttestation", "TotpEnrolment", "VERIFY_ROLES", "attestation"]
