"""The key server: the only process that holds the master keys, served over HTTP(S).

    $ INVESTIGATOR_PASSPHRASE=... investigator keyserver ./case-archive --listen 127.0.0.1:8765

    >>> key = unlock_person_key(archive, "sunli", personal_passphrase)                    # doctest: +SKIP
    >>> case = investigator.open_case("case-archive", grant="G-...", person="sunli", totp="123456",
    ...                               keyserver="http://127.0.0.1:8765", signing_key=key)  # doctest: +SKIP

Protocol (JSON over POST; docs/admin.md, "Key server"):

- ``GET /v1/health`` -> ``{"status": "ok", "archive_id": ...}`` (the one unsigned request).
- ``POST /v1/open`` ``{"grant_id", "grant_hash", "person", "totp" | "session", "monitor"?, "monitor_totp"?}``
  -> a ticket. The server loads the grant from its own archive, checks that its
  hash is the one the client holds, then runs the same checks as the embedded
  service (grant, operator, identity, policy), audited either way.
- ``POST /v1/keys`` ``{"token", "refs": [[kind, partition, chunk, part], ...]}`` -> ``{"keys": {...}}``,
  only for chunk parts overlapping the ticket's window and opened by its fields.
- ``POST /v1/proofs`` ``{"token", "batch_seq", "leaf_indexes"}`` -> ``{"proofs": [...]}``: RFC 9162
  inclusion proofs (hashes only) for records inside the ticket's window.
- ``POST /v1/process-ticket`` ``{"token", "label", "lifetime_s"?}`` -> ``{"process_ticket", "id", "label",
  "expires", "chunks"}``: a short-lived process ticket for the case of ``token``
  (:mod:`investigator.access.process_ticket`), for a process the person starts (a report kernel).
- ``POST /v1/process-ticket/revoke`` ``{"id"}`` -> ``{"revoked": id}``: the person ends one early.
- ``POST /v1/keys-for-process`` ``{"process_ticket", "refs"}`` -> ``{"keys": {...}}``: **not signed**;
  the process ticket itself is the credential, and only keys of its bound chunk set are released.

Authority decisions that need the master keys (:mod:`investigator.access.custodian`; each signed by the
acting person, who must hold the role the decision needs):

- ``POST /v1/login`` ``{"totp", "hours"?}`` -> ``{"session"}``: a session for the signer after a TOTP check.
- ``POST /v1/decide`` ``{"request_id", "decision", "note", "totp", "signed_at", "signature"}`` -> the
  outcome (``granted``, ``grant_id``, ``rule``, ``reason``): the approver's signature over the approval
  body the server rebuilds from its own copy of the request (checked before the code), then the TOTP
  check, the policy and the archive's attestation.
- ``POST /v1/enroll-totp`` ``{"person"}`` -> ``{"uri", "secret_b32"}`` (an admin): a new TOTP secret,
  sealed on the server, handed back once.
- ``POST /v1/unlock-person`` ``{"person"}`` -> ``{"unlocked"}`` (an admin): clears a lock-out.
- ``POST /v1/unlock-account`` ``{"person", "reason", "totp", "unlock_id", "signed_at", "signature"}`` ->
  ``{"unlocked", "lock_ids"}``: an admin (never the locked person) lifts the circuit breaker's account locks,
  with a reason, their TOTP code and their signature over the unlock record (authority/locks.py).
- ``POST /v1/bundle/attest`` ``{"token", "body", "leaves": [[batch_seq, leaf_index], ...]}`` ->
  ``{"attestation", "verdict", "held"}``: for the operator of an open case with the export permission, the
  server reads the records ``leaves`` names itself (record hashes against the signed batch leaves, the
  grant's window and scope), runs the circuit breaker on them and signs the leaf set's hash and its own
  verdict into the attestation (access/exportcheck.py). A ``hold`` verdict gives no release attestation:
  the attestation says ``hold``, ``held`` carries the held bundle's key (``plain``, ``sealed``) and the
  ``lockdown`` done in the same request (locks, notifier). Without ``leaves`` (an older client): refused.
- ``POST /v1/bundle/attest-release`` ``{"body"}`` -> ``{"attestation", "key"}``: a legal reviewer's release of
  a held bundle (not its operator), and the key that opens it (access/held.py).
- ``POST /v1/verify`` ``{}`` -> the verification's findings (an admin or auditor); never content.
- ``POST /v1/checkpoint`` ``{}`` -> ``{"size"}``: the archive key signs the audit log's current tree head
  (any enrolled person, after a decision made on their side: a directory, policy or revocation change).
  Not audited itself: the checkpoint line is the record, and an entry for it would be the one entry it
  cannot cover.

Ingest without reading (:mod:`investigator.access.ingest_desk`; the ``archive`` permission):
``/v1/ingest/lookup`` (hashes in, yes/no and latest versions out), ``/v1/ingest/datakey`` (fresh keys
for the next batch only), ``/v1/ingest/commit`` (the staged batch checked, signed, committed) and
``/v1/consent/datakey`` (a fresh key for a new consent file).

Every other POST is signed with the acting person's personal key
(:mod:`investigator.access.client_auth` has the headers and the canonical string).
The server checks, in order: the client address's rate limit; the signature (time
within ±120 s, active person, live key, no replayed nonce); the person's rate limit;
the body's ids (a grant id, ticket token or chunk reference that is not one answers
like an unknown one); only then TOTP codes, sessions and tickets. A ticket is
accepted only with a signature of the person it was issued to.

Refusals answer 400 (malformed), 401 (identity, signature), 403 (policy, grant) or 429
(rate limit) with ``{"error": <class>, "message": <safe text>, "rule": ..., "reason": ...}``;
every one is audited with its rule. The server judges time by its own clock only.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from investigator import _crypto, errors
from investigator.access.client_auth import (PERSON_RE, RequestRefused, RequestSigner, RequestVerifier, SignedRequest,
                                             signed_header_values)
from investigator.access.custodian import CustodianDesk, DecisionOutcome, ExportAttestation, TotpEnrolment
from investigator.access.exportcheck import ServerVerdict
from investigator.access.held import read_held
from investigator.access.lockdown import Lockdown
from investigator.access.keyservice import ChunkRef, GrantGate, Ticket, unwrap_release, wrap_release
from investigator.access.process_ticket import (DEFAULT_LIFETIME, ID_RE, MAX_LIFETIME, ProcessTicketRefused,
                                                valid_label)
from investigator.authority.directory import DirectoryStore
from investigator.authority.grants import Grant, Presigned, approval_body
from investigator.authority.policy import parse_utc
from investigator.schema import canonical_json, format_ts
from investigator.verification import Verification
from investigator.vault.audited_state import HostRecord
from investigator.custody.base import Custody
from investigator.vault.store import Archive

MAX_BODY = 4 * 1024 * 1024
MAX_REFS = 20000
_STATUS = {"IdentityCheckFailed": 401, "RequestRefused": 401, "ProcessTicketRefused": 401, "PolicyDenied": 403,
           "ContentNotGranted": 403, "GrantInvalid": 403, "GrantExpired": 403, "IntegrityError": 409,
           "RateLimited": 429}
# path -> (audit action, handler method, signed by a person?). A handler takes the parsed body and the
# verified signature (signed paths) or the raw body (unsigned: the body carries its own credential).
_ROUTES: dict[str, tuple[str, str, bool]] = {
    "/v1/open": ("case.open", "_open", True),
    "/v1/keys": ("key.release", "_keys", True),
    "/v1/proofs": ("proof.release", "_proofs", True),
    "/v1/process-ticket": ("process_ticket.issue", "_issue_process_ticket", True),
    "/v1/process-ticket/revoke": ("process_ticket.revoke", "_revoke_process_ticket", True),
    "/v1/keys-for-process": ("key.release", "_keys_for_process", False),
    # authority decisions that need the master keys (investigator.access.custodian)
    "/v1/login": ("login", "_login", True),
    "/v1/decide": ("request.decide", "_decide", True),
    "/v1/enroll-totp": ("people.enroll_totp", "_enroll_totp", True),
    "/v1/unlock-person": ("people.unlock", "_unlock_person", True),
    "/v1/unlock-account": ("account.unlock", "_unlock_account", True),
    "/v1/bundle/attest": ("bundle.attest", "_attest_bundle", True),
    "/v1/bundle/attest-release": ("bundle.release", "_attest_release", True),
    "/v1/verify": ("verify", "_verify", True),
    "/v1/checkpoint": ("audit.checkpoint", "_checkpoint", True),
    # ingest: write without reading (investigator.access.ingest_desk)
    "/v1/ingest/lookup": ("ingest.lookup", "_ingest_lookup", True),
    "/v1/ingest/datakey": ("ingest.datakey", "_ingest_datakey", True),
    "/v1/ingest/commit": ("ingest.commit", "_ingest_commit", True),
    "/v1/consent/datakey": ("consent.datakey", "_consent_datakey", True),
}
# ids in requests are checked as ids before they touch a path or a lookup
GRANT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_REF_RES = (re.compile(r"^[a-z_]{1,32}$"), re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), re.compile(r"^[0-9]{6}$"),
            re.compile(r"^[a-z_]{1,32}$"), re.compile(r"^[1-9][0-9]{0,7}$"))
_BATCH_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HASH_PREFIX_RE = re.compile(r"^[0-9a-f]{32}$")
_KEY_PARTITION_RE = re.compile(r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8})$")  # a day, or a batch's folder name
MAX_DATA_KEYS = 4096  # data keys per request: a batch's partitions (days) and its index
NO_SUCH_GRANT = "no such grant in this archive"
NO_SUCH_TICKET = "unknown or closed case ticket; open the case again"


@dataclass
class RateLimit:
    """Token buckets: per client address before authentication (``rate`` requests per second,
    bursts of ``burst``), and per person after their signature verified (``person_rate``,
    ``person_burst``; by default the same). Memory stays bounded: at ``max_buckets`` keys, refilled
    buckets are forgotten, then the longest idle half.
    """

    rate: float = 20.0
    burst: int = 60
    person_rate: float | None = None
    person_burst: int | None = None
    max_buckets: int = 10000

    def __post_init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._people: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        if self.person_rate is None:
            self.person_rate = self.rate
        if self.person_burst is None:
            self.person_burst = self.burst

    def _take(self, buckets: dict[str, tuple[float, float]], key: str, rate: float, burst: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if key not in buckets and len(buckets) >= self.max_buckets:
                # forget refilled buckets; if that is not enough, the longest idle half
                for old in [k for k, (t, last) in buckets.items() if t + (now - last) * rate >= burst]:
                    del buckets[old]
                if len(buckets) >= self.max_buckets:
                    idle = sorted(buckets, key=lambda k: buckets[k][1])[:max(1, len(buckets) // 2)]
                    for old in idle:
                        del buckets[old]
            tokens, last = buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def allow(self, client: str) -> bool:
        """One request from client address ``client`` (checked before anything else)."""
        return self._take(self._buckets, client, self.rate, self.burst)

    def allow_person(self, person: str) -> bool:
        """One request signed by ``person`` (checked once the signature verified)."""
        return self._take(self._people, person, float(self.person_rate or self.rate),
                          int(self.person_burst or self.burst))


class _Refusal(Exception):
    """A refusal the handler answers and audits: HTTP status, error name, message, rule."""

    def __init__(self, status: int, error: str, message: str, rule: str, *, reason: str = "",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.rule = status, error, message, rule
        self.reason = reason or message
        self.details = details or {}


def _json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object; anything else is a malformed request."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise _malformed("request body is not JSON") from None
    if not isinstance(body, dict):
        raise _malformed("request body must be a JSON object")
    return body


def _malformed(message: str) -> _Refusal:
    return _Refusal(400, "KeyServiceError", message, "keyserver.malformed")


class KeyServer(ThreadingHTTPServer):
    """An HTTP server around a :class:`GrantGate` (master keys in this process only)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], gate: GrantGate, desk: CustodianDesk, *,
                 limit: RateLimit | None = None, verifier: RequestVerifier | None = None) -> None:
        super().__init__(address, _Handler)
        self.gate = gate
        self.desk = desk
        self.limit = limit or RateLimit()
        self.verifier = verifier or RequestVerifier(gate.archive)


class _Handler(BaseHTTPRequestHandler):
    server: KeyServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may sit idle or trickle its request (no thread held forever)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Request lines go to the audit log instead (never bodies: they hold codes and tokens).
        pass

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _deny(self, refusal: _Refusal, *, action: str, actor: str, target: str = "") -> None:
        """Audit and answer a refusal the gate did not audit itself."""
        self.server.gate.archive.audit.append(actor, action, target or self.path,
                                              {**refusal.details, "rule": refusal.rule, "reason": refusal.reason},
                                              outcome="denied")
        self._answer(refusal)

    def _answer(self, refusal: _Refusal) -> None:
        self._send(refusal.status, {"error": refusal.error, "message": refusal.message, "rule": refusal.rule,
                                    "reason": refusal.reason})

    def _gate_refused(self, err: errors.InvestigatorError) -> None:
        """Answer an error the gate raised (and audited)."""
        name = type(err).__name__
        status = _STATUS.get(name, 403 if isinstance(err, errors.GrantInvalid) else 400)
        self._answer(_Refusal(status, name, str(err), getattr(err, "rule", ""),
                              reason=getattr(err, "reason", str(err))))

    def _client(self) -> str:
        return f"client {self.client_address[0]}"

    def _limit_address(self, action: str) -> bool:
        if self.server.limit.allow(self.client_address[0]):
            return True
        self.close_connection = True  # the body stays unread
        self._deny(_Refusal(429, "RateLimited", "too many requests; slow down", "keyserver.rate_limit"),
                   action=action, actor=self._client())
        return False

    def _raw_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self.close_connection = True
            raise _malformed("request body missing or too large")
        return self.rfile.read(length)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._limit_address("keyserver.request"):
            return
        if self.path == "/v1/health":
            self._send(200, {"status": "ok", "archive_id": self.server.gate.archive.archive_id})
        else:
            self._deny(_Refusal(404, "NotFound", "unknown path", "keyserver.path"), action="keyserver.request",
                       actor=self._client())

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """Address rate limit -> body -> signature -> person rate limit -> JSON -> the endpoint's checks."""
        action, handler, signed_path = _ROUTES.get(self.path, ("keyserver.request", "", True))
        if not self._limit_address(action):
            return
        if not handler:
            self.close_connection = True
            self._deny(_Refusal(404, "NotFound", "unknown path", "keyserver.path"), action=action, actor=self._client())
            return
        try:
            raw = self._raw_body()
            if not signed_path:
                getattr(self, handler)(raw)
                return
            signed = self.server.verifier.verify("POST", self.path, signed_header_values(self.headers.get_all), raw)
        except _Refusal as refusal:
            self._deny(refusal, action=action, actor=self._client())
            return
        except RequestRefused as err:
            # the person is unproven: the client address acts, the claimed id is a detail
            self._deny(_Refusal(401, "IdentityCheckFailed", str(err), err.rule, details={"claimed": err.claimed}),
                       action=action, actor=self._client())
            return
        if not self.server.limit.allow_person(signed.person):
            self._deny(_Refusal(429, "RateLimited", "too many requests; slow down", "keyserver.person_rate_limit"),
                       action=action, actor=signed.person)
            return
        try:
            getattr(self, handler)(_json_object(raw), signed)
        except _Refusal as refusal:
            self._deny(refusal, action=action, actor=signed.person)
        except errors.InvestigatorError as err:  # the gate audited it
            self._gate_refused(err)
        except Exception as exc:  # a bug: answer and audit it, never drop the connection without a word
            self._deny(_Refusal(500, "KeyServiceError", "internal error in the key server (audited)",
                                "keyserver.error", reason=type(exc).__name__), action=action, actor=signed.person)

    def _grant(self, body: dict[str, Any]) -> Grant:
        """The archive's own copy of the grant named by id; any id that is not one answers like an unknown id."""
        grant_id = body.get("grant_id")
        unknown = _Refusal(403, "GrantInvalid", NO_SUCH_GRANT, "keyserver.unknown_grant",
                           details={"grant_id": repr(grant_id)[:80]})
        if not isinstance(grant_id, str) or not GRANT_ID_RE.match(grant_id):
            raise unknown
        try:
            path = self.server.gate.archive.layout.grant(grant_id)
        except errors.ConfigError:
            raise unknown from None
        if not path.is_file():
            raise unknown
        try:
            return Grant.from_file(path)
        except errors.InvestigatorError as err:
            raise _Refusal(403, "GrantInvalid", f"grant {grant_id} does not load: {err}", "grant.invalid") from None

    def _open(self, body: dict[str, Any], signed: SignedRequest) -> None:
        person = signed.person
        named = body.get("person")
        if named is not None and named != person:
            raise _Refusal(401, "IdentityCheckFailed", "the request names another person than the one who signed it",
                           "keyserver.person_mismatch", details={"named": repr(named)[:80]})
        for field in ("totp", "session", "monitor", "monitor_totp"):
            if body.get(field) is not None and not isinstance(body.get(field), str):
                raise _malformed(f"{field} must be a string")
        monitor = body.get("monitor")
        if monitor is not None and not PERSON_RE.match(monitor):
            raise _malformed("monitor is not a person id")
        grant = self._grant(body)
        if grant.hash != body.get("grant_hash"):
            raise _Refusal(403, "GrantInvalid", "the client's grant differs from the archive's copy (edited grant file)",
                           "keyserver.grant_hash")
        # only now, with the sender proven, may a code count toward the person's lock-out
        ticket = self.server.gate.open(grant=grant, person=person, totp=body.get("totp"), session=body.get("session"),
                                       monitor=monitor, monitor_totp=body.get("monitor_totp"))
        self._send(200, {"ticket": ticket.to_json()})

    def _ticket(self, body: dict[str, Any], signed: SignedRequest) -> Ticket:
        """The ticket named by the body's token; only for the person it was issued to."""
        token = body.get("token")
        if not isinstance(token, str) or not _TOKEN_RE.match(token):
            raise _Refusal(401, "IdentityCheckFailed", "no case ticket: open the case first", "keyserver.ticket")
        try:
            ticket, _grant = self.server.gate.ticket(token)
        except errors.IdentityCheckFailed:
            raise _Refusal(401, "IdentityCheckFailed", NO_SUCH_TICKET, "keyserver.ticket") from None
        if ticket.person != signed.person:
            # answered like an unknown ticket: a stolen token tells the thief nothing
            raise _Refusal(401, "IdentityCheckFailed", NO_SUCH_TICKET, "keyserver.ticket_person",
                           reason=f"ticket of {ticket.person} for grant {ticket.grant_id} presented by "
                                  f"{signed.person}")
        return ticket

    @staticmethod
    def _refs(body: dict[str, Any]) -> list[ChunkRef]:
        refs_raw = body.get("refs")
        if not isinstance(refs_raw, list) or len(refs_raw) > MAX_REFS:
            raise _malformed(f"refs must be a list of at most {MAX_REFS} chunk references")
        refs = []
        for item in refs_raw:
            # [kind, partition, chunk, part] (+ the batch since per-batch keys; 4 items: the partition's first key)
            if not (isinstance(item, list) and len(item) in (4, 5) and all(isinstance(x, str) for x in item)
                    and all(p.match(x) for p, x in zip(_REF_RES, item))):
                raise _malformed("malformed chunk reference")
            refs.append(ChunkRef.from_json(item))
        return refs

    def _keys(self, body: dict[str, Any], signed: SignedRequest) -> None:
        ticket = self._ticket(body, signed)
        released = self.server.gate.release(ticket, self._refs(body))
        self._send(200, {"keys": wrap_release(released)})

    def _issue_process_ticket(self, body: dict[str, Any], signed: SignedRequest) -> None:
        ticket = self._ticket(body, signed)
        label = body.get("label")
        if not valid_label(label):
            raise _malformed("label must be one printable line of 1 to 120 characters naming the process")
        lifetime = body.get("lifetime_s", DEFAULT_LIFETIME.total_seconds())
        if (not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or not lifetime > 0
                or lifetime == float("inf")):
            raise _malformed("lifetime_s must be a positive number of seconds")
        seconds = min(float(lifetime), MAX_LIFETIME.total_seconds())
        token, issued = self.server.gate.issue_process_ticket(ticket, label=str(label), key_id=signed.key_id,
                                                              lifetime=timedelta(seconds=seconds))
        self._send(200, {"process_ticket": token, "id": issued.id, "label": issued.label,
                         "expires": format_ts(issued.expires), "chunks": issued.chunks})

    def _revoke_process_ticket(self, body: dict[str, Any], signed: SignedRequest) -> None:
        ticket_id = body.get("id")
        if not isinstance(ticket_id, str) or not ID_RE.match(ticket_id):
            raise _malformed("id must be a process ticket id (PT-...)")
        try:
            self.server.gate.revoke_process_ticket(ticket_id, person=signed.person)
        except ProcessTicketRefused as err:  # audited by the gate; another person's ticket answers like none
            self._answer(_Refusal(401, "ProcessTicketRefused", "no such live process ticket", err.rule))
            return
        self._send(200, {"revoked": ticket_id})

    def _keys_for_process(self, raw: bytes) -> None:
        """Address rate limit (done) -> JSON -> the ticket's signature -> person rate limit -> the gate's checks."""
        body = _json_object(raw)
        try:
            ticket = self.server.gate.process_ticket(body.get("process_ticket"))
        except ProcessTicketRefused as err:
            # no credential proven: the client address acts
            raise _Refusal(401, "ProcessTicketRefused", str(err), err.rule) from None
        via = {"process": ticket.label, "process_ticket": ticket.id}
        if not self.server.limit.allow_person(ticket.person):
            self._deny(_Refusal(429, "RateLimited", "too many requests; slow down", "keyserver.person_rate_limit",
                                details=via), action="key.release", actor=ticket.person, target=ticket.grant_id)
            return
        try:
            refs = self._refs(body)
        except _Refusal as refusal:
            refusal.details.update(via)
            self._deny(refusal, action="key.release", actor=ticket.person, target=ticket.grant_id)
            return
        try:
            released = self.server.gate.release_for_process(ticket, refs)
        except errors.InvestigatorError as err:  # the gate audited it
            self._gate_refused(err)
            return
        self._send(200, {"keys": wrap_release(released)})

    def _proofs(self, body: dict[str, Any], signed: SignedRequest) -> None:
        ticket = self._ticket(body, signed)
        batch = body.get("batch_seq")
        leaves = body.get("leaf_indexes") or []
        if (not isinstance(batch, int) or isinstance(batch, bool) or not isinstance(leaves, list)
                or len(leaves) > MAX_REFS or not all(isinstance(i, int) and not isinstance(i, bool) for i in leaves)):
            raise _malformed("malformed proof request")
        proofs = self.server.gate.proofs(ticket, batch, leaves)
        self._send(200, {"proofs": proofs})


    # --- authority decisions (investigator.access.custodian) ---------------------------------

    @staticmethod
    def _string(body: dict[str, Any], field: str, *, pattern: "re.Pattern[str] | None" = None, optional: bool = False,
                limit: int = 2000) -> str:
        value = body.get(field)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or len(value) > limit or (pattern is not None and not pattern.match(value)):
            raise _malformed(f"{field} is missing or not a valid value")
        return value

    def _unknown(self, err: errors.ConfigError, *, action: str, actor: str, target: str) -> None:
        """An id that names nothing (person, request): audited here (the desk had nothing to audit yet)."""
        self._deny(_Refusal(400, "ConfigError", str(err), "keyserver.unknown"), action=action, actor=actor,
                   target=target)

    def _login(self, body: dict[str, Any], signed: SignedRequest) -> None:
        hours = body.get("hours")
        if hours is not None and (not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 24):
            raise _malformed("hours must be a whole number from 1 to 24")
        token = self.server.desk.login(signed.person, totp=self._string(body, "totp", limit=16), hours=hours)
        self._send(200, {"session": token})

    def _signed_at(self, body: dict[str, Any], *, what: str, rule: str, details: dict[str, Any]) -> datetime:
        """The body's ``signed_at`` (a UTC time within the verifier's clock skew of the server's clock).

        Raises _Refusal: 400 when it is no UTC time, 401 (rule ``rule``) when too far from the server's time.
        """
        try:
            signed_at = parse_utc(self._string(body, "signed_at", limit=40))
        except (ValueError, errors.InvestigatorError):
            raise _malformed("signed_at is not a UTC time") from None
        if abs((datetime.now(signed_at.tzinfo) - signed_at).total_seconds()) > self.server.verifier.skew:
            raise _Refusal(401, "IdentityCheckFailed", f"{what} was signed too far from the server's time", rule,
                           details=details)
        return signed_at

    def _decide(self, body: dict[str, Any], signed: SignedRequest) -> None:
        request_id = self._string(body, "request_id", pattern=GRANT_ID_RE)
        decision = self._string(body, "decision")
        if decision not in ("approve", "reject"):
            raise _malformed("decision must be approve or reject")
        note = self._string(body, "note", optional=True)
        signature = self._string(body, "signature", limit=200)
        signed_at = self._signed_at(body, what="the approval", rule="approval.time",
                                    details={"request_id": request_id})
        now = datetime.now(signed_at.tzinfo)
        person = self._directory_person(signed.person)
        try:
            outcome = self.server.desk.decide(request_id, approver=signed.person,
                                              signing_key=Presigned(person.current_key.verify_key(), signature),
                                              totp=self._string(body, "totp", limit=16), note=note, decision=decision,
                                              signed_at=signed_at, now=now)
        except errors.ConfigError as err:
            self._unknown(err, action=f"request.{decision}", actor=signed.person, target=request_id)
            return
        self._send(200, outcome.to_json())

    def _directory_person(self, person_id: str) -> Any:
        """The signer's directory entry with its live key (the signature already proved both exist)."""
        entry = DirectoryStore(self.server.gate.archive).load().find(person_id)
        if entry is None or entry.current_key is None:
            raise _Refusal(401, "IdentityCheckFailed", "no live key for the signer", "person.key")
        return entry

    def _enroll_totp(self, body: dict[str, Any], signed: SignedRequest) -> None:
        person = self._string(body, "person", pattern=PERSON_RE)
        try:
            enrolment = self.server.desk.enroll_totp(person, admin=signed.person)
        except errors.ConfigError as err:
            self._unknown(err, action="people.enroll_totp", actor=signed.person, target=person)
            return
        self._send(200, {"person": enrolment.person_id, "uri": enrolment.uri, "secret_b32": enrolment.secret_b32})

    def _unlock_person(self, body: dict[str, Any], signed: SignedRequest) -> None:
        person = self._string(body, "person", pattern=PERSON_RE)
        try:
            self.server.desk.clear_lockout(person, admin=signed.person)
        except errors.ConfigError as err:
            self._unknown(err, action="people.unlock", actor=signed.person, target=person)
            return
        self._send(200, {"unlocked": person})

    def _attest_bundle(self, body: dict[str, Any], signed: SignedRequest) -> None:
        ticket = self._ticket(body, signed)
        _, grant = self.server.gate.ticket(ticket.token)
        wanted = body.get("body")
        if not isinstance(wanted, dict):
            raise _malformed("body must be the attestation body (an object)")
        if body.get("leaves") is None:  # an older client: no records to judge, no attestation (audited)
            self.server.desk.attest_bundle(wanted, person=signed.person, grant=grant)
        done = self.server.desk.attest_export(wanted, body.get("leaves"), person=signed.person, grant=grant)
        held = None
        if done.held:
            assert done.key is not None and done.lockdown is not None
            held = {"plain": _crypto.b64(done.key), "sealed": done.sealed_key, "lockdown": done.lockdown.to_json()}
        self._send(200, {"attestation": done.attestation, "verdict": done.verdict.to_json(), "held": held})

    def _unlock_account(self, body: dict[str, Any], signed: SignedRequest) -> None:
        person = self._string(body, "person", pattern=PERSON_RE)
        signed_at = self._signed_at(body, what="the unlock", rule="account.unlock_signature",
                                    details={"person": person})
        now = datetime.now(signed_at.tzinfo)
        try:
            lifted = self.server.desk.unlock_account(
                person, admin=signed.person, reason=self._string(body, "reason", optional=True),
                totp=self._string(body, "totp", limit=16), unlock_id=self._string(body, "unlock_id", limit=40),
                signed_at=signed_at, signature=self._string(body, "signature", limit=200), now=now)
        except errors.ConfigError as err:
            self._unknown(err, action="account.unlock", actor=signed.person, target=person)
            return
        self._send(200, {"unlocked": person, "lock_ids": lifted})

    def _attest_release(self, body: dict[str, Any], signed: SignedRequest) -> None:
        wanted = body.get("body")
        if not isinstance(wanted, dict) or not isinstance(wanted.get("bundle_id"), str) \
                or not GRANT_ID_RE.match(wanted["bundle_id"]):
            raise _malformed("body must be the release body naming a bundle id")
        held = read_held(self.server.gate.archive, wanted["bundle_id"])
        if wanted.get("manifest_sha256") != held.manifest_sha256:
            raise _Refusal(409, "IntegrityError", "the release names another manifest than the held bundle's",
                           "release.manifest", details={"bundle_id": wanted["bundle_id"]})
        attested, key = self.server.desk.release_held(wanted, reviewer=signed.person, held=held)
        self._send(200, {"attestation": attested, "key": _crypto.b64(key) if key is not None else None})

    def _checkpoint(self, body: dict[str, Any], signed: SignedRequest) -> None:
        self._send(200, {"size": self.server.desk.checkpoint()})

    def _verify(self, body: dict[str, Any], signed: SignedRequest) -> None:
        result = self.server.desk.verify(actor=signed.person)
        self._send(200, {"subject": result.subject, "problems": result.problems, "warnings": result.warnings,
                         "checked": result.checked, "counts": result.counts, "facts": result.facts})

    # --- ingest: write without reading (investigator.access.ingest_desk) ----------------------

    @staticmethod
    def _ingest_field(body: dict[str, Any], field: str, pattern: "re.Pattern[str]") -> str:
        value = body.get(field)
        if not isinstance(value, str) or not pattern.match(value):
            raise _malformed(f"{field} is missing or not a valid value")
        return value

    def _ingest_lookup(self, body: dict[str, Any], signed: SignedRequest) -> None:
        kind = self._ingest_field(body, "kind", _REF_RES[0])
        rows = body.get("rows")
        if not (isinstance(rows, list) and len(rows) <= MAX_REFS and all(
                isinstance(r, list) and len(r) == 3 and all(isinstance(x, str) for x in r)
                and len(r[0]) <= 200 and len(r[1]) <= 400 and _HASH_PREFIX_RE.match(r[2]) for r in rows)):
            raise _malformed(f"rows must be at most {MAX_REFS} [source, id, 32-hex hash prefix] triples")
        present, versions = self.server.gate.ingest.lookup(signed.person, kind, [(r[0], r[1], r[2]) for r in rows])
        self._send(200, {"present": present, "versions": versions})

    def _ingest_datakey(self, body: dict[str, Any], signed: SignedRequest) -> None:
        batch_id = self._ingest_field(body, "batch_id", _BATCH_ID_RE)
        seq, wanted = body.get("seq"), body.get("keys")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 10**8:
            raise _malformed("seq must be a batch number")
        if not (isinstance(wanted, list) and 1 <= len(wanted) <= MAX_DATA_KEYS and all(
                isinstance(k, list) and len(k) == 2 and all(isinstance(x, str) for x in k)
                and _REF_RES[0].match(k[0]) and _KEY_PARTITION_RE.match(k[1]) for k in wanted)):
            raise _malformed(f"keys must be 1 to {MAX_DATA_KEYS} [kind, partition] pairs")
        issued = self.server.gate.ingest.data_keys(signed.person, batch_id, seq, [(k[0], k[1]) for k in wanted])
        self._send(200, {"keys": [{"kind": kind, "partition": partition, "plain": _crypto.b64(plain),
                                   "wrapped": wrapped} for (kind, partition), (plain, wrapped) in issued.items()]})

    def _ingest_commit(self, body: dict[str, Any], signed: SignedRequest) -> None:
        batch_id = self._ingest_field(body, "batch_id", _BATCH_ID_RE)
        digest = self._ingest_field(body, "body_sha256", _SHA256_RE)
        manifest = self.server.gate.ingest.commit(signed.person, batch_id, digest)
        self._send(200, {"seq": manifest.seq, "manifest_sha256": manifest.digest})

    def _consent_datakey(self, body: dict[str, Any], signed: SignedRequest) -> None:
        consent_id = self._ingest_field(body, "consent_id", GRANT_ID_RE)
        plain, sealed = self.server.gate.ingest.consent_key(signed.person, consent_id)
        self._send(200, {"plain": _crypto.b64(plain), "sealed": sealed})


def serve(archive: "Archive", keys: Custody, *, host: str = "127.0.0.1", port: int = 8765,
          certfile: str | None = None, keyfile: str | None = None, limit: RateLimit | None = None,
          record: HostRecord | None = None, notifiers: Sequence[str] = ()) -> KeyServer:
    """Make a key server bound to ``host:port`` (TLS when ``certfile`` is given). Call ``serve_forever()``.

    ``record``: where this host keeps what it verified of the audit log (every open resumes from it).
    ``notifiers``: the circuit breaker's notifier commands (absolute paths) this server may run when the
    signed policy names them (access/lockdown.py).
    Raises ConfigError when the address cannot be listened on (in use, not this host's, a port outside
    0..65535) or the certificate and key do not load.
    """
    try:
        server = KeyServer((host, port), GrantGate(archive, keys, record=record),
                           CustodianDesk(archive, keys, notifiers=frozenset(notifiers)), limit=limit)
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0..65535
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise errors.ConfigError(f"cannot listen on {host}:{port}: {reason}",
                                 hint="is another key server (or program) on that port? pick another --listen") \
            from None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, OSError) as exc:
            server.server_close()
            raise errors.ConfigError(f"{certfile}: the TLS certificate and its key {keyfile or '(in the same file)'} "
                                     f"do not load ({type(exc).__name__})",
                                     hint="--cert takes a PEM certificate (chain), --key its PEM private key") \
                from None
        server.socket = context.wrap_socket(server.socket, server_side=True)
    archive.audit.append("keyserver", "keyserver.start", f"{host}:{server.server_address[1]}",
                         {"tls": bool(certfile), "rate": server.limit.rate, "person_rate": server.limit.person_rate,
                          "totp_state": "host" if archive.config.custody.get("state_dir") else "archive folder",
                          "signed_requests": True, "clock_skew_s": server.verifier.skew,
                          "breaker_notifiers": sorted(notifiers)})
    return server


class RemoteKeyService:
    """The notebook side of the key server: no master key here, only released chunk-part keys.

    ``signer`` (a :class:`~investigator.access.client_auth.RequestSigner`: the person and
    their unlocked personal key) signs every request; the server refuses unsigned ones.
    ``archive_id`` is part of what is signed; when not given it is asked of ``GET /v1/health``.
    """

    def __init__(self, url: str, *, signer: RequestSigner | None = None, cafile: str | None = None,
                 timeout: float = 30.0, archive_id: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.signer = signer
        self._archive_id = archive_id
        self._prefix = urllib.parse.urlsplit(self.url).path
        self._context = ssl.create_default_context(cafile=cafile) if self.url.startswith("https") else None

    def __repr__(self) -> str:
        return f"RemoteKeyService(url={self.url!r}, signer={self.signer!r})"

    def _fail(self, exc: Exception) -> errors.KeyServiceError:
        return errors.KeyServiceError(f"key server at {self.url} unreachable or broke off ({type(exc).__name__})",
                                      hint="is 'investigator keyserver' running? nothing partial was returned")

    def archive_id(self) -> str:
        """The id of the archive the key server serves (part of every signature)."""
        if self._archive_id is None:
            try:
                with urllib.request.urlopen(self.url + "/v1/health", timeout=self.timeout,
                                            context=self._context) as response:
                    self._archive_id = str(json.loads(response.read())["archive_id"])
            except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
                raise self._fail(exc) from exc
        return self._archive_id

    def _post(self, path: str, obj: dict[str, Any], *, sign: bool = True) -> dict[str, Any]:
        data = json.dumps(obj).encode()
        headers = {"Content-Type": "application/json"}
        if sign and self.signer is not None:
            headers.update(self.signer.headers(archive_id=self.archive_id(), method="POST", path=self._prefix + path,
                                               body=data))
        request = urllib.request.Request(self.url + path, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                answer = {}
            if exc.code == 401 and sign:
                self._check_served_archive()  # a signature over another archive's id fails as 'not registered'
            raise _error_from(answer, exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise self._fail(exc) from exc

    def _check_served_archive(self) -> None:
        """ConfigError when the server serves another archive than the one this client signs for (a key server
        URL of another archive: every refusal then reads 'key ... is not registered', which misleads)."""
        if self._archive_id is None:
            return
        try:
            with urllib.request.urlopen(self.url + "/v1/health", timeout=self.timeout,
                                        context=self._context) as response:
                served = str(json.loads(response.read())["archive_id"])
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
            return  # the refusal itself is the answer then
        if served != self._archive_id:
            raise errors.ConfigError(f"the key server at {self.url} serves archive {served}, not this archive "
                                     f"({self._archive_id})",
                                     hint="check --keyserver / INVESTIGATOR_KEYSERVER: each archive has its own key "
                                          "server")

    def open(self, *, grant: "Grant", person: str, totp: str | None = None, session: str | None = None,
             monitor: str | None = None, monitor_totp: str | None = None, now: datetime | None = None) -> Ticket:
        if self.signer is not None and self.signer.person != person:
            raise errors.ConfigError(f"the signing key is {self.signer.person}'s, not {person}'s",
                                     hint="open the case with the personal key of the person who opens it")
        answer = self._post("/v1/open", {"grant_id": grant.id, "grant_hash": grant.hash, "person": person,
                                         "totp": totp, "session": session, "monitor": monitor,
                                         "monitor_totp": monitor_totp})
        t = answer["ticket"]
        return Ticket(token=t["token"], grant_id=t["grant_id"], person=t["person"], start=parse_utc(t["start"]),
                      end=parse_utc(t["end"]), parts=tuple(t["parts"]), expires=parse_utc(t["expires"]))

    def release(self, ticket: Ticket, refs: Sequence[ChunkRef], *, now: datetime | None = None) -> dict[ChunkRef, bytes]:
        answer = self._post("/v1/keys", {"token": ticket.token, "refs": [r.to_json() for r in refs]})
        return unwrap_release(answer.get("keys") or {}, refs)

    def proofs(self, ticket: Ticket, batch_seq: int, leaf_indexes: Sequence[int], *,
               now: datetime | None = None) -> list[dict[str, Any]]:
        answer = self._post("/v1/proofs", {"token": ticket.token, "batch_seq": batch_seq,
                                           "leaf_indexes": list(leaf_indexes)})
        return list(answer.get("proofs") or [])

    def process_ticket(self, ticket: Ticket, label: str, *, lifetime: timedelta = DEFAULT_LIFETIME) -> dict[str, Any]:
        """Ask for a process ticket for the case of ``ticket`` (signed by the person).

        Returns the server's answer: ``process_ticket`` (the token), ``id``, ``label``,
        ``expires`` and ``chunks`` (the size of the bound chunk set).
        """
        answer = self._post("/v1/process-ticket", {"token": ticket.token, "label": label,
                                                   "lifetime_s": lifetime.total_seconds()})
        if not isinstance(answer.get("process_ticket"), str):
            raise errors.KeyServiceError("the key server answered without a process ticket")
        return answer

    def revoke_process_ticket(self, ticket_id: str) -> None:
        """End a process ticket of this person's before its expiry (signed by the person)."""
        self._post("/v1/process-ticket/revoke", {"id": ticket_id})

    def release_for_process(self, token: str, refs: Sequence[ChunkRef]) -> dict[ChunkRef, bytes]:
        """Keys for ``refs``, presenting the process ticket ``token`` (never signed: the ticket is the credential)."""
        answer = self._post("/v1/keys-for-process", {"process_ticket": token, "refs": [r.to_json() for r in refs]},
                            sign=False)
        return unwrap_release(answer.get("keys") or {}, refs)

    # --- authority decisions (signed by the acting person; investigator.access.custodian) ----

    def login(self, *, totp: str, hours: int | None = None) -> str:
        """A session token for the signing person after the server checked ``totp``."""
        answer = self._post("/v1/login", {"totp": totp, "hours": hours})
        return str(answer["session"])

    def decide(self, request_id: str, *, request_hash: str, decision: str, totp: str, note: str,
               signing_key: _crypto.SigningKey) -> DecisionOutcome:
        """Approve or reject ``request_id``: the approval is signed here, the code checked on the server.

        ``request_hash`` is the hash of the request as this client read it; the
        server refuses when its own copy differs. Raises IdentityCheckFailed,
        PolicyDenied, GrantInvalid (as the server decided; audited there).
        """
        if self.signer is None or self.signer.key_id != signing_key.public.key_id:
            raise errors.ConfigError("the approval must be signed with the key that signs the request")
        signed_at = datetime.now(timezone.utc)
        body = approval_body(request_id=request_id, request_hash=request_hash, approver=self.signer.person,
                             key_id=signing_key.public.key_id, decision=decision, note=note, ts=signed_at)
        answer = self._post("/v1/decide", {"request_id": request_id, "decision": decision, "note": note, "totp": totp,
                                           "signed_at": format_ts(signed_at),
                                           "signature": signing_key.sign(canonical_json(body))})
        return DecisionOutcome.from_json(answer)

    def enroll_totp(self, person: str) -> TotpEnrolment:
        """Have the server make and seal ``person``'s TOTP secret (the signer must be an admin); shown once."""
        answer = self._post("/v1/enroll-totp", {"person": person})
        return TotpEnrolment(str(answer["person"]), str(answer["uri"]), str(answer["secret_b32"]))

    def clear_lockout(self, person: str) -> None:
        """Clear ``person``'s TOTP lock-out (the signer must be an admin)."""
        self._post("/v1/unlock-person", {"person": person})

    def attest_bundle(self, ticket: Ticket, body: dict[str, Any]) -> dict[str, Any]:
        """Without the exported records: refused by the server (BundleError, audited). Kept for the protocol's
        sake; :meth:`attest_export` is the request."""
        return dict(self._post("/v1/bundle/attest", {"token": ticket.token, "body": body})["attestation"])

    def attest_export(self, ticket: Ticket, body: dict[str, Any],
                      leaves: Sequence[Sequence[int]]) -> ExportAttestation:
        """The archive's attestation of a bundle exported from the open case ``ticket``, with the server's own
        circuit-breaker verdict on the records ``leaves`` names (``[batch_seq, leaf_index]``); for a hold, the
        held bundle's key and the lock-down the server did (:meth:`CustodianDesk.attest_export`)."""
        answer = self._post("/v1/bundle/attest", {"token": ticket.token, "body": body,
                                                  "leaves": [[int(b), int(i)] for b, i in leaves]})
        verdict = answer.get("verdict") or {}
        held = answer.get("held")
        server_verdict = ServerVerdict(bool(verdict.get("held")), tuple(str(r) for r in verdict.get("reasons") or ()),
                                       dict(verdict.get("categories") or {}), dict(verdict.get("pii") or {}))
        if not isinstance(held, dict):
            return ExportAttestation(dict(answer["attestation"]), server_verdict)
        return ExportAttestation(dict(answer["attestation"]), server_verdict, _crypto.unb64(str(held["plain"])),
                                 dict(held["sealed"]), Lockdown.from_json(held.get("lockdown")))

    def unlock_account(self, person: str, *, reason: str, totp: str, unlock_id: str, signed_at: datetime,
                       signature: str) -> list[str]:
        """An admin (the signer) lifts ``person``'s account locks; returns the lock ids lifted."""
        answer = self._post("/v1/unlock-account", {"person": person, "reason": reason, "totp": totp,
                                                   "unlock_id": unlock_id, "signed_at": format_ts(signed_at),
                                                   "signature": signature})
        return [str(x) for x in answer.get("lock_ids") or []]

    def release_held(self, body: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
        """The archive's attestation of the signer's release of a held bundle, and the key that opens it."""
        answer = self._post("/v1/bundle/attest-release", {"body": body})
        key = answer.get("key")
        return dict(answer["attestation"]), (_crypto.unb64(str(key)) if key else None)

    def checkpoint(self, *, now: datetime | None = None) -> int:
        """Have the server sign the audit log's current tree head (after a decision made here); its tree size."""
        return int(self._post("/v1/checkpoint", {})["size"])

    def verify(self) -> Verification:
        """A full verification run on the server (the signer must be an admin or auditor)."""
        answer = self._post("/v1/verify", {})
        return Verification(subject=str(answer.get("subject") or "archive"), problems=list(answer["problems"]),
                            warnings=list(answer["warnings"]), checked=list(answer["checked"]),
                            counts=dict(answer["counts"]), facts=dict(answer["facts"]))

    # --- ingest (signed by the ingesting person; investigator.access.ingest_client) ----------

    def ingest_lookup(self, kind: str, rows: Sequence[tuple[str, str, str]]) -> tuple[list[bool], list[int]]:
        """Is each (source, id, hash prefix) of ``kind`` stored, and the latest stored version of its (source, id)."""
        present: list[bool] = []
        versions: list[int] = []
        for start in range(0, len(rows), MAX_REFS):
            part = [list(r) for r in rows[start:start + MAX_REFS]]
            answer = self._post("/v1/ingest/lookup", {"kind": kind, "rows": part})
            if len(answer.get("present") or []) != len(part) or len(answer.get("versions") or []) != len(part):
                raise errors.KeyServiceError("the key server answered the dedup question for other rows")
            present.extend(bool(x) for x in answer["present"])
            versions.extend(int(x) for x in answer["versions"])
        return present, versions

    def ingest_data_keys(self, batch_id: str, seq: int,
                         wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[bytes, dict[str, Any]]]:
        """Fresh data keys (plain, wrapped) for staged batch ``batch_id`` (to become batch ``seq``)."""
        out: dict[tuple[str, str], tuple[bytes, dict[str, Any]]] = {}
        for start in range(0, len(wanted), MAX_DATA_KEYS):
            part = [list(k) for k in wanted[start:start + MAX_DATA_KEYS]]
            answer = self._post("/v1/ingest/datakey", {"batch_id": batch_id, "seq": seq, "keys": part})
            for item in answer.get("keys") or []:
                out[(str(item["kind"]), str(item["partition"]))] = (_crypto.unb64(item["plain"]), dict(item["wrapped"]))
        if set(out) != set(wanted):
            raise errors.KeyServiceError("the key server answered with other data keys than were asked for")
        return out

    def ingest_commit(self, batch_id: str, body_sha256: str) -> dict[str, Any]:
        """Have the server check, sign and commit staged batch ``batch_id``: ``{"seq", "manifest_sha256"}``."""
        return self._post("/v1/ingest/commit", {"batch_id": batch_id, "body_sha256": body_sha256})

    def consent_key(self, consent_id: str) -> tuple[bytes, dict[str, Any]]:
        """A fresh key for the file of new consent ``consent_id``: (plain, sealed by the server's custody)."""
        answer = self._post("/v1/consent/datakey", {"consent_id": consent_id})
        return _crypto.unb64(answer["plain"]), dict(answer["sealed"])


def _error_from(answer: dict[str, Any], status: int) -> errors.InvestigatorError:
    name, message, rule = answer.get("error", ""), answer.get("message", f"HTTP {status}"), answer.get("rule", "")
    if name == "ProcessTicketRefused":
        return ProcessTicketRefused(message, rule=rule or "process_ticket.invalid")
    if name == "IdentityCheckFailed" or status == 401:
        return errors.IdentityCheckFailed(message)
    if name == "GrantExpired":
        return errors.GrantExpired(message)
    if name == "GrantInvalid":
        return errors.GrantInvalid(message)
    if name in ("PolicyDenied", "ContentNotGranted", "RateLimited") or status in (403, 429):
        return errors.PolicyDenied(answer.get("reason") or message, rule=rule)
    if name == "IntegrityError":
        return errors.IntegrityError(message)
    if name == "ConfigError":
        return errors.ConfigError(message)
    if name == "BundleError":
        return errors.BundleError(message)
    return errors.KeyServiceError(f"key server refused: {message}")

