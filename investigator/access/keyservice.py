"""Key services: the only way a loader gets chunk keys. One interface, two homes.

    >>> service = EmbeddedKeyService(archive, unlock_archive(archive, passphrase))            # doctest: +SKIP
    >>> ticket = service.open(grant=grant, person="sunli", totp="123456", now=now)    # doctest: +SKIP
    >>> keys = service.release(ticket, [ChunkRef("messages", "2026-11-18", "060000", "meta")], now=now)  # doctest: +SKIP

- :class:`EmbeddedKeyService` runs in-process with the master keys (one trusted
  machine; see docs/threat-model.md for its limits).
- :class:`RemoteKeyService` talks to ``investigator keyserver``, a separate
  process that alone holds the master keys; the notebook side never sees one.

Both check, before anything is released: the grant (signatures, approvals,
expiry, revocation, policy), that the person is the grant's operator, and the
person's identity (a single-use TOTP code or a live session). Every release
returns keys only for chunk parts that overlap the grant's window and that its
fields open; anything else is refused with :class:`PolicyDenied` and audited.

The gate also issues *process tickets* (:mod:`investigator.access.process_ticket`) for an open
case and releases keys to whoever presents one, within the chunk set it is bound to
(:meth:`GrantGate.issue_process_ticket`, :meth:`GrantGate.release_for_process`): a report
kernel or a worker the person starts then needs neither the person's key nor the master keys.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from investigator import _crypto
from investigator.access.ingest_desk import IngestDesk
from investigator.access.process_ticket import (DEFAULT_LIFETIME, MAX_LIFETIME, ProcessTicket, ProcessTicketRefused,
                                                chunk_name, chunk_set, chunk_set_hash, decode, encode, new_id)
from investigator.authority.directory import Directory
from investigator.authority.grants import Grant, revocations
from investigator.authority.identity import check_identity
from investigator.authority.locks import refuse_if_locked
from investigator.authority.policy import Policy, load_org
from investigator.authority.state_head import state_check
from investigator.custody.base import Custody
from investigator.custody.registry import open_custody
from investigator.settings import Settings
from investigator.errors import (AuditError, GrantExpired, GrantInvalid, IdentityCheckFailed, IntegrityError,
                                 PolicyDenied)
from investigator.schema import KINDS, format_ts, parts_for_fields
from investigator.vault.audit import checkpoint_line_size
from investigator.vault.audited_state import HostRecord, StateCheck, check_audited_state
from investigator.vault.format import chunk_key
from investigator.vault.proofs import inclusion_proofs
from investigator.vault.store import Archive

TICKET_LIFETIME = timedelta(hours=8)
MAX_PROCESS_TICKETS = 64  # live process tickets per person (expired ones are forgotten as new ones are issued)


@dataclass(frozen=True, order=True)
class ChunkRef:
    """One part of one time chunk as one batch wrote it: what a key is released for.

    ``batch`` is the seq of the batch whose data key encrypts the chunk (each batch has its own,
    archive-format.md, "Keys"); 0 is the reference of clients from before per-batch keys: the
    partition's first key, which opens every batch written before the change. On the wire a
    ref is ``[kind, partition, chunk, part]`` plus ``"<batch>"`` when ``batch`` is set.
    """

    kind: str
    partition: str
    chunk: str
    part: str
    batch: int = 0

    def to_json(self) -> list[str]:
        base = [self.kind, self.partition, self.chunk, self.part]
        return [*base, str(self.batch)] if self.batch else base

    @classmethod
    def from_json(cls, obj: Sequence[str]) -> "ChunkRef":
        """Parse a wire ref (4 items, or 5 with the batch). Raises ValueError for anything else."""
        items = [str(x) for x in obj]
        if len(items) not in (4, 5):
            raise ValueError("a chunk reference has 4 or 5 items")
        batch = int(items[4]) if len(items) == 5 else 0
        if batch < 0:
            raise ValueError("a batch number is positive")
        return cls(items[0], items[1], items[2], items[3], batch)

    @property
    def chunk_name(self) -> str:
        """The time chunk and part, without the batch (what a grant's window and a process ticket's set judge)."""
        return chunk_name(self.kind, self.partition, self.chunk, self.part)

    def window(self, chunk_seconds: int) -> tuple[datetime, datetime]:
        """[start, end) of the time chunk. Raises ValueError for a malformed partition or chunk."""
        return _chunk_window(self.partition, self.chunk, chunk_seconds)


_PARTITION = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CHUNK = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})")


@functools.lru_cache(maxsize=65536)
def _chunk_window(partition: str, chunk: str, chunk_seconds: int) -> tuple[datetime, datetime]:
    # a pure function of its arguments, asked for every part of every chunk of every release; the archive's
    # own names (YYYY-MM-DD, HHMMSS) are read without strptime (~15 us each), anything else as before
    day, time = _PARTITION.fullmatch(partition), _CHUNK.fullmatch(chunk)
    if day and time:  # datetime checks the ranges (month 13, hour 24 ... raise ValueError, as strptime does)
        (year, month, date), (hour, minute, second) = day.groups(), time.groups()
        start = datetime(int(year), int(month), int(date), int(hour), int(minute), int(second), tzinfo=timezone.utc)
    else:
        start = datetime.strptime(f"{partition}{chunk}", "%Y-%m-%d%H%M%S").replace(tzinfo=timezone.utc)
    return start, start + timedelta(seconds=chunk_seconds)


@dataclass(frozen=True)
class Ticket:
    """Proof that a case was opened: grant, person, window and the parts the fields open.

    ``token`` is opaque (a random id for the embedded service, a server-issued
    token for the key server). Never contains key material.
    """

    token: str
    grant_id: str
    person: str
    start: datetime
    end: datetime
    parts: tuple[str, ...]
    expires: datetime

    def __repr__(self) -> str:
        return f"Ticket(grant_id={self.grant_id!r}, person={self.person!r}, parts={self.parts})"

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "grant_id": self.grant_id, "person": self.person, "start": format_ts(self.start),
                "end": format_ts(self.end), "parts": list(self.parts), "expires": format_ts(self.expires)}


class KeyService(Protocol):
    """What the loader needs from a key service."""

    def open(self, *, grant: "Grant", person: str, totp: str | None = None, session: str | None = None,
             monitor: str | None = None, monitor_totp: str | None = None, now: datetime | None = None) -> Ticket: ...

    def release(self, ticket: Ticket, refs: Sequence[ChunkRef], *, now: datetime | None = None) -> dict[ChunkRef, bytes]: ...

    def proofs(self, ticket: Ticket, batch_seq: int, leaf_indexes: Sequence[int], *,
               now: datetime | None = None) -> list[dict[str, Any]]: ...

    def checkpoint(self, *, now: datetime | None = None) -> int: ...


def _utcnow(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


@dataclass
class _IssuedProcessTicket:
    """What the gate remembers of a process ticket it issued: the ticket, its grant, the bound chunk set."""

    ticket: ProcessTicket
    grant: "Grant"
    chunks: frozenset[str]
    revoked: str = ""


class GrantGate:
    """The checks both key services run: open a case, then judge each key request.

    Holds the master keys; lives in-process (embedded) or inside the key server.
    ``record`` is where this host keeps what it verified of the audit log
    (outside the archive; None: only in memory, for this gate's lifetime):
    every open checks the audited state from there on (fail closed), and
    ``state_checks`` besides (the hook for the signed state heads of issue #13, item 2).
    """

    def __init__(self, archive: "Archive", keys: Custody, *, record: HostRecord | None = None,
                 state_checks: Sequence[StateCheck] = ()) -> None:
        self.archive = archive
        self._keys = keys
        self._record = record
        # the decision files against their signed state head first (authority/state_head.py), then any others
        self._state_checks = (state_check, *state_checks)
        self._verified: Any = None  # the VerifiedHead of the last check that passed
        self._tickets: dict[str, tuple[Ticket, "Grant"]] = {}
        self._process: dict[str, _IssuedProcessTicket] = {}
        self._lock = threading.Lock()
        self.ingest = IngestDesk(archive, keys)  # data keys, dedup answers and commits for ingesting processes
        self.released = 0  # number of keys released, for tests and the server's metrics

    def __repr__(self) -> str:
        return f"GrantGate(archive={self.archive.archive_id!r}, open_tickets={len(self._tickets)})"

    def open(self, *, grant: "Grant", person: str, totp: str | None = None, session: str | None = None,
             monitor: str | None = None, monitor_totp: str | None = None, now: datetime | None = None) -> Ticket:
        """Verify grant, operator, identity (and the monitor's, under dual control); audit either way.

        The directory and the policy are loaded once, here, and passed to the
        grant, identity and dual-control checks. Raises GrantInvalid / GrantExpired, PolicyDenied
        (not the operator; directory or policy altered outside the CLI),
        IdentityCheckFailed.
        """
        when = _utcnow(now)
        self._check_audited_state(person, grant.id, when)
        directory, policy = load_org(self.archive, actor=person, action="case.open", target=grant.id, now=when)
        grant.verify(self.archive, now=when, actor=person, policy=policy, directory=directory)
        if person != grant.operator:
            reason = f"{person} is not the operator of grant {grant.id} (the operator is {grant.operator})"
            self.archive.audit.append(person, "case.open", grant.id, {"rule": "grant.operator", "reason": reason},
                                      outcome="denied", now=when)
            raise PolicyDenied(reason, rule="grant.operator")
        check_identity(self.archive, self._keys, person, totp=totp, session=session, now=when,
                       directory=directory, policy=policy)
        self._check_monitor(grant, person, monitor, monitor_totp, when, directory=directory, policy=policy)
        start, end = grant.window
        ticket = Ticket(token=secrets.token_urlsafe(24), grant_id=grant.id, person=person, start=start, end=end,
                        parts=parts_for_fields(grant.fields), expires=min(grant.expiry, when + TICKET_LIFETIME))
        with self._lock:
            # a long-running key server forgets expired tickets as new ones arrive
            for token in [t for t, (old, _) in self._tickets.items() if old.expires <= when]:
                del self._tickets[token]
            self._tickets[ticket.token] = (ticket, grant)
        self.archive.audit.append(person, "case.open", grant.id,
                                  {"rule": "case.opened", "grant_hash": grant.hash, "window": [format_ts(start),
                                   format_ts(end)], "parts": list(ticket.parts), "monitor": monitor or ""},
                                  outcome="allowed", now=when)
        self._checkpoint(when)
        return ticket

    def _check_audited_state(self, person: str, grant_id: str, when: datetime) -> None:
        """Fail closed unless the audit log, its checkpoints and the batches check out (issue #13, item 5).

        Resumes from what this host verified last (its record, else this gate's
        memory), so an unchanged archive costs one read of what was appended since.
        Raises IntegrityError with the first problem, audited as ``case.open``
        denied (rule ``archive.audited_state``) when the log can still be appended to.
        """
        with self._lock:
            try:
                since = self._verified
                if self._record is not None:
                    since = self._record.load(self.archive) or since
                report, head = check_audited_state(self.archive, since=since, now=when, checks=self._state_checks)
            except AuditError as exc:  # the host's record or the log cannot be read at all
                report, head = None, None
                reason = str(exc)
            if report is not None and report.ok and head is not None:
                self._verified = head
                if self._record is not None:
                    self._record.save(self.archive, head)
                return
            if report is not None and report.ok:
                return  # an empty log: nothing to resume from
            if report is not None:
                more = f" (and {len(report.problems) - 1} more problem(s))" if len(report.problems) > 1 else ""
                reason = report.problems[0] + more
        rule = "archive.audited_state"
        try:
            self.archive.audit.append(person, "case.open", grant_id, {"rule": rule, "reason": reason},
                                      outcome="denied", now=when)
        except AuditError:
            reason += " (the refusal could not be audited: the log's last entry is damaged)"
        raise IntegrityError(f"the archive's audited state does not check out, refusing to open: {reason}",
                             hint="run 'investigator audit verify' and 'investigator verify --offline' for every "
                                  "problem")

    def _checkpoint(self, when: datetime) -> None:
        # The key service holds the archive key: it pins the audit chain's head
        # after every decision it makes, so truncation is found up to here.
        self.archive.audit.checkpoint(self._keys.signing, archive_id=self.archive.archive_id, now=when)

    def checkpoint(self, *, now: datetime | None = None) -> int:
        """Sign the log's current tree head (first the next state head, when org/ or cases/ changed): what a case
        asks after its tags or saved searches changed. Returns the tree size (0: empty log).

        Raises AuditError (nothing written) when the log or the state does not continue the last checkpoint.
        """
        line = self.archive.audit.checkpoint(self._keys.signing, archive_id=self.archive.archive_id,
                                             now=_utcnow(now))
        return checkpoint_line_size(line)

    def _check_monitor(self, grant: "Grant", person: str, monitor: str | None, monitor_totp: str | None,
                       when: datetime, *, directory: Directory, policy: Policy) -> None:
        """Dual control (操作人+监控人): required for the policy's purposes; the monitor is checked whenever named."""
        refusal = None
        if monitor is None:
            if grant.purpose in policy.dual_control_purposes:
                refusal = ("dual_control.required", f"cases of purpose {grant.purpose!r} need a monitor (监控人) "
                           "to pass an identity check too (open_case(monitor=..., monitor_totp=...))")
        elif monitor == person:
            refusal = ("dual_control.distinct", "the monitor (监控人) must be another person than the operator")
        else:
            found = directory.find(monitor)
            roles = [policy.roles[r] for r in (found.roles if found else ()) if r in policy.roles]
            if found is None or not found.active or not any({"approve", "audit"} & set(r.permissions) for r in roles):
                refusal = ("dual_control.monitor_role", f"{monitor} cannot act as monitor (an active person with "
                           "an approve or audit permission is needed)")
        if refusal:
            rule, reason = refusal
            self.archive.audit.append(person, "case.open", grant.id, {"rule": rule, "reason": reason},
                                      outcome="denied", now=when)
            raise PolicyDenied(reason, rule=rule)
        if monitor is not None:
            check_identity(self.archive, self._keys, monitor, totp=monitor_totp, now=when, directory=directory,
                           policy=policy)

    def ticket(self, token: str) -> tuple[Ticket, "Grant"]:
        with self._lock:
            found = self._tickets.get(token)
        if found is None:
            raise IdentityCheckFailed("unknown or closed case ticket; open the case again")
        return found

    def release(self, ticket: Ticket, refs: Sequence[ChunkRef], *, now: datetime | None = None) -> dict[ChunkRef, bytes]:
        """Chunk-part keys for ``refs``; all or nothing. Refusals raise PolicyDenied and are audited."""
        when = _utcnow(now)
        known, grant = self.ticket(ticket.token)
        # a case opened before the circuit breaker locked its person gets no more keys (authority/locks.py)
        refuse_if_locked(self.archive, None, known.person, action="key.release", target=grant.id, now=when)
        return self._release(known, grant, refs, when, via={})

    def _release(self, known: Ticket, grant: "Grant", refs: Sequence[ChunkRef], when: datetime, *,
                 via: dict[str, Any]) -> dict[ChunkRef, bytes]:
        """Judge ``refs`` against ``known`` (window, fields, expiry, revocation), then derive and audit the keys.

        ``via`` joins the audit details: empty for a case ticket, the process label and ticket id for a
        process ticket.
        """
        refused = self._judge(known, grant, refs, when)
        if refused:
            ref, rule, reason = refused
            self.archive.audit.append(known.person, "key.release", grant.id,
                                      {**via, "rule": rule, "reason": reason, "chunk": "/".join(ref.to_json()),
                                       "requested": len(refs)}, outcome="denied", now=when)
            raise PolicyDenied(reason, rule=rule)
        out: dict[ChunkRef, bytes] = {}
        data_keys: dict[tuple[str, str, int], bytes] = {}
        for ref in refs:
            dek = data_keys.get((ref.kind, ref.partition, ref.batch))
            if dek is None:
                try:
                    dek = self.archive.data_key(self._keys, ref.kind, ref.partition, ref.batch or None)
                except IntegrityError as exc:  # no such partition or batch, or its wrapped key was altered
                    self.archive.audit.append(known.person, "key.release", grant.id,
                                              {**via, "rule": "chunk.unknown", "reason": str(exc),
                                               "chunk": "/".join(ref.to_json())}, outcome="denied", now=when)
                    raise
                data_keys[(ref.kind, ref.partition, ref.batch)] = dek
            out[ref] = chunk_key(dek, archive_id=self.archive.archive_id, kind=ref.kind, partition=ref.partition,
                                 chunk=ref.chunk, part=ref.part)
        self.released += len(out)
        parts = sorted({r.part for r in refs})
        self.archive.audit.append(known.person, "key.release", grant.id,
                                  {**via, "rule": "grant.window", "keys": len(out), "parts": parts,
                                   "chunks": sorted({f"{r.kind}/{r.partition}/{r.chunk}" for r in refs})[:200]},
                                  outcome="allowed", now=when)
        self._checkpoint(when)
        return out

    # --- process tickets ---------------------------------------------------------------

    def issue_process_ticket(self, ticket: Ticket, *, label: str, key_id: str,
                             lifetime: timedelta = DEFAULT_LIFETIME,
                             now: datetime | None = None) -> tuple[str, ProcessTicket]:
        """A process ticket for the open case of ``ticket``: (token, its body). Audited (never the token).

        ``key_id`` is the personal key that signed the request: revoking it ends the ticket.
        The expiry is the earliest of ``lifetime`` (at most :data:`MAX_LIFETIME`), the case
        ticket's expiry and the grant's. Refused (PolicyDenied, GrantInvalid) when the case
        ticket expired (``ticket.expired``), the grant was revoked (``grant.revoked``) or no
        longer verifies, or the person holds :data:`MAX_PROCESS_TICKETS` live ones
        (``process_ticket.limit``).
        """
        when = _utcnow(now)
        known, grant = self.ticket(ticket.token)
        where = {"label": label}
        refusal = None
        if when >= known.expires:
            refusal = ("ticket.expired", f"the case ticket expired at {format_ts(known.expires)}; open the case again")
        elif grant.id in revocations(self.archive):
            refusal = ("grant.revoked", f"grant {grant.id} was revoked")
        else:
            with self._lock:
                live = sum(1 for e in self._process.values()
                           if e.ticket.person == known.person and e.ticket.expires > when and not e.revoked)
            if live >= MAX_PROCESS_TICKETS:
                refusal = ("process_ticket.limit", f"{known.person} holds {live} live process tickets (at most "
                           f"{MAX_PROCESS_TICKETS}); revoke some or let them expire")
        if refusal is None:
            try:
                grant.verify(self.archive, now=when, actor=known.person)
            except GrantInvalid as exc:
                rule = "grant.expired" if isinstance(exc, GrantExpired) else "grant.invalid"
                self.archive.audit.append(known.person, "process_ticket.issue", grant.id,
                                          {**where, "rule": rule, "reason": str(exc)}, outcome="denied", now=when)
                raise
        if refusal:
            rule, reason = refusal
            self.archive.audit.append(known.person, "process_ticket.issue", grant.id,
                                      {**where, "rule": rule, "reason": reason}, outcome="denied", now=when)
            raise PolicyDenied(reason, rule=rule)
        lifetime = min(lifetime, MAX_LIFETIME)
        chunks = chunk_set(self.archive, known.start, known.end, grant.fields)
        issued = ProcessTicket(id=new_id(), archive_id=self.archive.archive_id, grant_id=grant.id,
                               grant_hash=grant.hash, person=known.person, key_id=key_id, label=label,
                               start=known.start, end=known.end, parts=known.parts, chunks=len(chunks),
                               chunks_sha256=chunk_set_hash(chunks), issued=when,
                               expires=min(when + lifetime, known.expires, grant.expiry))
        token = encode(issued, self._keys.signing)
        with self._lock:
            for old in [i for i, e in self._process.items() if e.ticket.expires <= when]:
                del self._process[old]
            self._process[issued.id] = _IssuedProcessTicket(issued, grant, chunks)
        self.archive.audit.append(known.person, "process_ticket.issue", grant.id,
                                  {**where, "rule": "process_ticket.issued", "process_ticket": issued.id,
                                   "expires": format_ts(issued.expires), "grant_hash": grant.hash,
                                   "key_id": key_id, "window": [format_ts(issued.start), format_ts(issued.end)],
                                   "parts": list(issued.parts), "chunks": issued.chunks,
                                   "chunks_sha256": issued.chunks_sha256}, outcome="allowed", now=when)
        self._checkpoint(when)
        return token, issued

    def process_ticket(self, token: Any) -> ProcessTicket:
        """The body of a process ticket whose form and archive signature verify (nothing else is judged here).

        Raises ProcessTicketRefused (``process_ticket.invalid``); not audited here: the caller
        knows who presented the token.
        """
        return decode(token, self._keys.signing.public, archive_id=self.archive.archive_id)

    def release_for_process(self, ticket: ProcessTicket, refs: Sequence[ChunkRef], *,
                            now: datetime | None = None) -> dict[ChunkRef, bytes]:
        """Chunk-part keys for a process presenting ``ticket`` (from :meth:`process_ticket`); all or nothing.

        Checked in order, the first failure refused and audited (``key.release``, with the
        process label and ticket id): expiry (``process_ticket.expired``); issued by this gate
        (``process_ticket.unknown``: another or an earlier run of the key server); revoked by
        the person (``process_ticket.revoked``); the grant revoked (``grant.revoked``); the
        person still active with the personal key that asked for it (``process_ticket.revoked``);
        the grant still verifies (``grant.invalid`` / ``grant.expired``); every ref inside the
        bound chunk set (``process_ticket.scope``); then the case path's own window and field
        checks, and the release.
        """
        when = _utcnow(now)
        via = {"process": ticket.label, "process_ticket": ticket.id}
        with self._lock:
            issued = self._process.get(ticket.id)
        grant = issued.grant if issued is not None else None
        refusal: tuple[str, str] | None = None
        if when >= ticket.expires:
            refusal = ("process_ticket.expired", f"the process ticket expired at {format_ts(ticket.expires)}")
        elif issued is None or issued.ticket != ticket:
            refusal = ("process_ticket.unknown", "the process ticket was not issued by this run of the key server "
                       "(it restarted, or the ticket is another server's); ask the person for a new one")
        elif issued.revoked:
            refusal = ("process_ticket.revoked", f"{ticket.person} revoked the process ticket at {issued.revoked}")
        elif ticket.grant_id in revocations(self.archive):
            refusal = ("grant.revoked", f"grant {ticket.grant_id} was revoked")
        if refusal is None and grant is not None:
            directory, policy = load_org(self.archive, actor=ticket.person, action="key.release", target=grant.id,
                                         now=when)
            person = directory.find(ticket.person)
            key = person.key(ticket.key_id) if person is not None else None
            if person is None or not person.active or key is None or key.revoked:
                refusal = ("process_ticket.revoked", f"{ticket.person} is no longer active, or the personal key "
                           f"{ticket.key_id} that asked for the process ticket was revoked")
            else:
                try:
                    grant.verify(self.archive, now=when, actor=ticket.person, policy=policy, directory=directory)
                except GrantInvalid as exc:
                    rule = "grant.expired" if isinstance(exc, GrantExpired) else "grant.invalid"
                    self.archive.audit.append(ticket.person, "key.release", ticket.grant_id,
                                              {**via, "rule": rule, "reason": str(exc), "requested": len(refs)},
                                              outcome="denied", now=when)
                    raise
        if refusal is None and issued is not None:
            outside = next((r for r in refs if r.chunk_name not in issued.chunks), None)
            if outside is not None:
                refusal = ("process_ticket.scope", f"chunk part {'/'.join(outside.to_json())} is outside the chunk "
                           f"set the process ticket is bound to ({ticket.chunks} parts of the grant's window)")
        if refusal or grant is None:
            rule, reason = refusal or ("process_ticket.unknown", "unknown process ticket")
            self.archive.audit.append(ticket.person, "key.release", ticket.grant_id,
                                      {**via, "rule": rule, "reason": reason, "requested": len(refs)},
                                      outcome="denied", now=when)
            raise PolicyDenied(reason, rule=rule)
        view = Ticket(token="", grant_id=grant.id, person=ticket.person, start=ticket.start, end=ticket.end,
                      parts=ticket.parts, expires=ticket.expires)
        return self._release(view, grant, refs, when, via=via)

    def revoke_process_ticket(self, ticket_id: str, *, person: str, now: datetime | None = None) -> ProcessTicket:
        """End a process ticket before its expiry; only the person it was issued for may. Audited.

        Raises ProcessTicketRefused: ``process_ticket.unknown`` (no such live ticket) or
        ``process_ticket.person`` (another person's; answered like an unknown one).
        """
        when = _utcnow(now)
        with self._lock:
            issued = self._process.get(ticket_id)
            if issued is not None and issued.ticket.person == person and not issued.revoked:
                issued.revoked = format_ts(when)
        if issued is None or issued.ticket.person != person:
            rule = "process_ticket.unknown" if issued is None else "process_ticket.person"
            reason = ("no such live process ticket" if issued is None else
                      f"process ticket of {issued.ticket.person} revoked by {person}")
            self.archive.audit.append(person, "process_ticket.revoke", ticket_id, {"rule": rule, "reason": reason},
                                      outcome="denied", now=when)
            raise ProcessTicketRefused("no such live process ticket", rule=rule)
        self.archive.audit.append(person, "process_ticket.revoke", issued.ticket.grant_id,
                                  {"rule": "process_ticket.revoked", "process_ticket": ticket_id,
                                   "label": issued.ticket.label, "revoked": issued.revoked}, outcome="allowed",
                                  now=when)
        self._checkpoint(when)
        return issued.ticket

    def proofs(self, ticket: Ticket, batch_seq: int, leaf_indexes: Sequence[int], *,
               now: datetime | None = None) -> list[dict[str, Any]]:
        """RFC 9162 inclusion proofs (hashes only) for records of the ticket's window. Audited.

        Each leaf must lie in a chunk that overlaps the grant's window; anything
        else is refused with PolicyDenied (rule ``grant.window``); so is every
        proof once the ticket expired (``ticket.expired``) or the grant was
        revoked (``grant.revoked``).
        """
        when = _utcnow(now)
        known, grant = self.ticket(ticket.token)
        manifest = next((m for m in self.archive.manifests() if m.seq == batch_seq), None)
        start, end = format_ts(known.start), format_ts(known.end)
        refusal = None
        if manifest is None:
            refusal = ("grant.window", f"no batch {batch_seq}")
        else:
            for index in leaf_indexes:
                entry = next((c for c in manifest.chunks if c.leaf_start <= index < c.leaf_start + c.leaf_count), None)
                if entry is None or not (entry.start < end and entry.end > start):
                    refusal = ("grant.window", f"leaf {index} of batch {batch_seq} is not in the granted window")
                    break
        if when >= known.expires:
            refusal = ("ticket.expired", f"the case ticket expired at {format_ts(known.expires)}")
        if grant.id in revocations(self.archive):
            refusal = ("grant.revoked", f"grant {grant.id} was revoked")
        if refusal:
            rule, reason = refusal
            self.archive.audit.append(known.person, "proof.release", grant.id,
                                      {"rule": rule, "reason": reason}, outcome="denied", now=when)
            raise PolicyDenied(reason, rule=rule)
        out = inclusion_proofs(self.archive, self._keys, batch_seq, list(leaf_indexes))
        self.archive.audit.append(known.person, "proof.release", grant.id,
                                  {"rule": "grant.window", "batch": batch_seq, "proofs": len(out)},
                                  outcome="allowed", now=when)
        return out

    def _judge(self, ticket: Ticket, grant: "Grant", refs: Sequence[ChunkRef],
               when: datetime) -> tuple[ChunkRef, str, str] | None:
        if when >= ticket.expires:
            return (refs[0] if refs else ChunkRef("", "", "", ""), "ticket.expired",
                    f"the case ticket expired at {format_ts(ticket.expires)}; open the case again")
        if grant.id in revocations(self.archive):
            return (refs[0] if refs else ChunkRef("", "", "", ""), "grant.revoked", f"grant {grant.id} was revoked")
        chunk_seconds = self.archive.config.chunk_seconds
        opened: dict[str, tuple[str, ...]] = {}  # kind -> the parts the grant's fields open (asked once per kind)
        for ref in refs:
            if ref.kind not in KINDS:
                return ref, "chunk.unknown", f"no record kind {ref.kind!r}"
            if ref.kind not in opened:
                opened[ref.kind] = parts_for_fields(grant.fields, ref.kind)
            if ref.part not in opened[ref.kind]:
                return ref, "fields.parts", (f"the grant's fields ({', '.join(grant.fields)}) do not open the "
                                              f"{ref.part!r} part")
            try:
                start, end = ref.window(chunk_seconds)
            except ValueError:
                return ref, "chunk.unknown", "malformed chunk reference"
            if not (start < ticket.end and end > ticket.start):
                return ref, "grant.window", (f"chunk {ref.kind}/{ref.partition}/{ref.chunk} is outside the granted "
                                              f"window [{format_ts(ticket.start)}, {format_ts(ticket.end)})")
        return None


class EmbeddedKeyService(GrantGate):
    """The in-process key service: master keys in this process (one trusted machine)."""


def wrap_release(keys: dict[ChunkRef, bytes]) -> dict[str, str]:
    """Keys as JSON-safe text for the wire (base64)."""
    return {"/".join(ref.to_json()): _crypto.b64(key) for ref, key in keys.items()}


def unwrap_release(obj: dict[str, str], refs: Sequence[ChunkRef]) -> dict[ChunkRef, bytes]:
    """Parse a key-server answer; raises IntegrityError unless it holds exactly the keys asked for."""
    wanted = {"/".join(r.to_json()): r for r in refs}
    if set(obj) != set(wanted):
        raise IntegrityError("the key server answered with other keys than were asked for")
    return {wanted[name]: _crypto.unb64(value) for name, value in obj.items()}


def unlock_archive(archive: Archive, passphrase: str | None = None, *, actor: str = "", purpose: str = "",
                   secrets: Settings | None = None) -> Custody:
    """The archive's master keys for the embedded key service (one trusted machine), from its configured custody.

    ``secrets`` carries what the archive's backend needs (the edge reads it from
    the environment); ``passphrase`` alone is enough for the key file. Whoever
    holds these holds every key: only the demo, the key server itself and
    single-machine use call this (docs/threat-model.md). A wrong passphrase,
    PIN or token raises WrongPassphrase and is audited; so is every open.
    """
    return open_custody(archive, (secrets or Settings()).with_passphrase(passphrase), actor=actor, purpose=purpose)
