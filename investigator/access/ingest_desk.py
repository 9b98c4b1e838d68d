"""The ingest side of the key service: data keys, dedup answers and manifest signatures for writers who read nothing.

    >>> desk = IngestDesk(archive, custody)                                                     # doctest: +SKIP
    >>> desk.lookup("zhaomin", "messages", [("slack", "1700000000.1", "ab" * 16)])          # doctest: +SKIP
    ([False], [0])
    >>> keys = desk.data_keys("zhaomin", batch_id, 3, [("messages", "2026-11-18"), ("index", "00000003")])  # doctest: +SKIP
    >>> desk.commit("zhaomin", batch_id, body_sha256)                                       # doctest: +SKIP

It lives inside the key service (:class:`~investigator.access.keyservice.GrantGate`, embedded or
served by ``investigator keyserver``) and holds the master keys; what it hands out is what an
ingest operator (归档, the policy's ``archive`` permission) needs to add records and nothing that
opens an earlier batch (archive-format.md, "Keys"; threat-model.md):

- :meth:`IngestDesk.data_keys`: a fresh data key per (kind, partition) of the *next* batch only,
  plain and wrapped (as KMS GenerateDataKey does), and the batch's own index key;
- :meth:`IngestDesk.lookup`: hashes in, yes/no and version numbers out (the server decrypts the
  dedup index itself; no record text, no other hash leaves it);
- :meth:`IngestDesk.commit`: checks the staged batch against what was issued for it, signs the
  manifest with the archive key, commits (atomic rename), audits, signs a checkpoint;
- :meth:`IngestDesk.consent_key`: the fresh key of one consent file (``consent add``), sealed.

Each is decided by the policy (deny by default: a person without the permission is refused) and
audited with counts only: never keys, never hashes in bulk.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

import polars as pl

from investigator import _crypto
from investigator.authority.consent import SEAL_PURPOSE, is_consent_id
from investigator.authority.policy import Decision, load_org
from investigator.custody.base import Custody
from investigator.errors import ArchiveError, IntegrityError, PolicyDenied
from investigator.schema import KINDS, canonical_json
from investigator.vault.format import INDEX_KEY_KIND, batch_dir_name
from investigator.vault.ingest import (DedupIndex, IssuedBatch, IssuedKey, Row, commit_batch, key_file_bytes,
                                       record_unaudited_batches)
from investigator.vault.manifest import Manifest
from investigator.vault.store import Archive

INGEST_PERMISSION = "archive"  # the seed's 归档权限: who may add records
CONSENT_PERMISSION = "request"  # who may register a consent (add_consent's own rule)
MAX_OPEN_BATCHES = 8  # staged batches one person may hold keys for at once
BATCH_LIFETIME = timedelta(hours=12)  # keys issued for a batch not committed by then are forgotten
BATCH_ID_RE = re.compile(r"^[0-9a-f]{32}$")
PARTITION_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _utcnow(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


class IngestDesk:
    """The key service's answers to an ingesting process (see the module docstring). Thread-safe."""

    def __init__(self, archive: Archive, keys: Custody) -> None:
        self.archive = archive
        self._keys = keys
        self._lock = threading.Lock()
        self._batches: dict[str, IssuedBatch] = {}
        self._index: tuple[int, DedupIndex] | None = None

    def __repr__(self) -> str:
        return f"IngestDesk(archive={self.archive.archive_id!r}, open_batches={len(self._batches)})"

    # --- policy --------------------------------------------------------------------------------

    def _allow(self, person: str, action: str, target: str, when: datetime, details: dict[str, Any], *,
               permission: str = INGEST_PERMISSION) -> None:
        """The policy's answer for ``person`` holding ``permission``; a refusal is audited and raised (PolicyDenied)."""
        directory, policy = load_org(self.archive, actor=person, action=action, target=target, now=when)
        found = directory.find(person)
        if found is None:
            decision = Decision(False, "person.known", f"no person {person!r} in the directory")
        elif permission == CONSENT_PERMISSION:  # decide("request") judges a request; here only the right to file one
            may = found.active and policy.rights(found).may(permission)
            decision = Decision(may, "role.permission", f"{person} {'may' if may else 'may not'} file retrieval "
                                f"requests ({', '.join(found.roles) or 'no role'}{'' if found.active else ', inactive'})")
        else:
            decision = policy.decide(permission, person=found, directory=directory, now=when,
                                     tz=self.archive.config.zone)
        if not decision.allowed:
            self._deny(person, action, target, when, decision.rule, decision.reason, details)

    def _deny(self, person: str, action: str, target: str, when: datetime, rule: str, reason: str,
              details: dict[str, Any]) -> NoReturn:
        self.archive.audit.append(person, action, target, {**details, "rule": rule, "reason": reason},
                                  outcome="denied", now=when)
        raise PolicyDenied(reason, rule=rule)

    # --- dedup ---------------------------------------------------------------------------------

    def _current_index(self) -> DedupIndex:
        """The dedup index of every committed batch, decrypted here only; new batches are read as they appear."""
        count = len(self.archive.manifests())
        with self._lock:
            cached = self._index
            if cached is None or cached[0] > count:
                index = DedupIndex(self.archive.read_index(self._keys))
            elif cached[0] < count:
                index = DedupIndex(pl.concat([cached[1].index, self.archive.read_index(self._keys, after=cached[0])]))
            else:
                index = cached[1]
            self._index = (count, index)
            return index

    def lookup(self, person: str, kind: str, rows: Sequence[Row], *,
               now: datetime | None = None) -> tuple[list[bool], list[int]]:
        """For each (source, id, hash prefix): is that record stored; the latest stored version of (source, id).

        Audited (``ingest.lookup``: kind, how many asked, how many present). Raises PolicyDenied
        (audited) without the ``archive`` permission or for an unknown kind.
        """
        when = _utcnow(now)
        details = {"kind": kind, "asked": len(rows)}
        if kind not in KINDS:
            self._deny(person, "ingest.lookup", kind, when, "ingest.kind", f"no record kind {kind!r}", details)
        self._allow(person, "ingest.lookup", kind, when, details)
        present, versions = self._current_index().answer(kind, rows)
        self.archive.audit.append(person, "ingest.lookup", kind,
                                  {**details, "present": sum(present), "rule": "role.permission"},
                                  outcome="allowed", now=when)
        return present, versions

    # --- data keys -----------------------------------------------------------------------------

    def data_keys(self, person: str, batch_id: str, seq: int, wanted: Sequence[tuple[str, str]], *,
                  now: datetime | None = None) -> dict[tuple[str, str], IssuedKey]:
        """Fresh data keys for staged batch ``batch_id``, which must become batch ``seq`` (the next one).

        ``wanted``: (kind, day) for each partition the batch writes, and (``index``, the batch's
        folder name) for its index. Audited (``ingest.datakey``: batch, seq, how many keys, which
        partitions). Raises PolicyDenied (audited): no ``archive`` permission (``role.permission``),
        ``seq`` is not the next batch (``ingest.seq``: keys are never made for a committed batch),
        a key name that is none of those (``ingest.key``), another person's batch id or too many
        open batches (``ingest.batch``).
        """
        when = _utcnow(now)
        details = {"batch_id": batch_id, "seq": seq, "keys": len(wanted)}
        target = f"batch {seq}"
        self._allow(person, "ingest.datakey", target, when, details)
        expected = len(self.archive.manifests()) + 1
        if seq != expected:
            self._deny(person, "ingest.datakey", target, when, "ingest.seq",
                       f"data keys are made only for the next batch ({expected}), never for a committed one", details)
        for kind, partition in wanted:
            if not ((kind in KINDS and PARTITION_RE.match(partition))
                    or (kind == INDEX_KEY_KIND and partition == batch_dir_name(seq))):
                self._deny(person, "ingest.datakey", target, when, "ingest.key",
                           f"no data key is made for {kind!r}/{partition!r}", details)
        with self._lock:
            for old in [b for b, issued in self._batches.items() if issued.started + BATCH_LIFETIME <= when]:
                del self._batches[old]
            issued = self._batches.get(batch_id)
            mine = sum(1 for b in self._batches.values() if b.person == person)
            refusal = None
            if issued is not None and (issued.person != person or issued.seq != seq):
                refusal = "the batch id belongs to another person's or another sequence's staged batch"
            elif issued is None and mine >= MAX_OPEN_BATCHES:
                refusal = f"{person} holds keys for {mine} staged batches (at most {MAX_OPEN_BATCHES}); commit first"
            elif issued is None:
                issued = self._batches[batch_id] = IssuedBatch(person, seq, when)
        if refusal or issued is None:
            self._deny(person, "ingest.datakey", target, when, "ingest.batch", refusal or "unknown batch", details)
        out: dict[tuple[str, str], IssuedKey] = {}
        for kind, partition in wanted:
            dek, wrapped = self._keys.new_data_key(kind, partition)
            out[(kind, partition)] = (dek, wrapped)
            with self._lock:
                issued.keys[(kind, partition)] = _crypto.sha256_hex(key_file_bytes(wrapped))
        self.archive.audit.append(person, "ingest.datakey", target,
                                  {**details, "partitions": sorted({f"{k}/{p}" for k, p in wanted})[:200],
                                   "rule": "role.permission"}, outcome="allowed", now=when)
        return out

    # --- commit --------------------------------------------------------------------------------

    def commit(self, person: str, batch_id: str, body_sha256: str, *, now: datetime | None = None) -> Manifest:
        """Check, sign and commit staged batch ``batch_id`` whose unsigned manifest has SHA-256 ``body_sha256``.

        The ingesting process staged the batch in the archive folder it shares with the key server
        (``staging/<batch id>/``, the body in ``manifest.unsigned.json``); the server reads it
        there, checks it (:func:`investigator.vault.ingest.commit_batch`) under the write lock,
        signs it and commits it. Audited as ``ingest`` (the batch's counts, as an embedded ingest)
        or, refused, as ``ingest.commit``. Raises PolicyDenied (no permission; ``ingest.batch``: no
        keys were issued to this person for that batch), IntegrityError (the staged batch does not
        check), ArchiveError (another batch was committed first: ingest again).
        """
        when = _utcnow(now)
        details: dict[str, Any] = {"batch_id": batch_id}
        self._allow(person, "ingest.commit", batch_id, when, details)
        with self._lock:
            issued = self._batches.get(batch_id)
        if issued is None or issued.person != person:
            self._deny(person, "ingest.commit", batch_id, when, "ingest.batch",
                       "no data keys were issued to this person for that batch (expired, or the key server "
                       "restarted): ingest again", details)
        try:
            path = self.archive.layout.staged_batch(batch_id).unsigned_manifest
            try:
                data = path.read_bytes()
            except OSError:
                raise IntegrityError("the staged batch is not visible to the key server (the ingesting process and "
                                     "the server share the archive folder)", path=f"staging/{batch_id}") from None
            if _crypto.sha256_hex(data) != body_sha256:
                raise IntegrityError("the staged manifest is not the one the request signed", path=f"staging/{batch_id}")
            try:
                body = json.loads(data)
            except ValueError:
                raise IntegrityError("the staged manifest is not JSON", path=f"staging/{batch_id}") from None
            if not isinstance(body, dict) or canonical_json(body) != data:
                raise IntegrityError("the staged manifest is not canonical JSON", path=f"staging/{batch_id}")
            with self.archive.write_lock():
                record_unaudited_batches(self.archive, actor=person)
                manifest = commit_batch(self.archive, self._keys.signing, batch_id=batch_id, body=body,
                                        issued=issued, actor=person, now=when)
        except (IntegrityError, ArchiveError) as err:
            rule = "ingest.seq" if isinstance(err, ArchiveError) else "ingest.check"
            self.archive.audit.append(person, "ingest.commit", batch_id, {**details, "rule": rule, "reason": str(err)},
                                      outcome="denied", now=when)
            raise
        with self._lock:
            self._batches.pop(batch_id, None)
        return manifest

    # --- consent files ----------------------------------------------------------------------------

    def consent_key(self, person: str, consent_id: str, *, now: datetime | None = None) -> tuple[bytes, dict[str, Any]]:
        """A fresh key for the file of consent ``consent_id`` (not yet registered): plain, and sealed by the custody.

        Audited (``consent.datakey``). Raises PolicyDenied (audited): the person may not file
        requests (``role.permission``), or the id is malformed or taken (``consent.reference``).
        """
        when = _utcnow(now)
        details: dict[str, Any] = {}
        self._allow(person, "consent.datakey", consent_id, when, details, permission=CONSENT_PERMISSION)
        layout = self.archive.layout
        if not is_consent_id(consent_id) or layout.consent(consent_id).exists() or layout.consent_file(consent_id).exists():
            self._deny(person, "consent.datakey", consent_id, when, "consent.reference",
                       "not a new consent id (CONSENT-YYYYMMDD-<8 hex>)", details)
        dek = _crypto.new_key()
        sealed = self._keys.seal(dek, purpose=SEAL_PURPOSE, name=consent_id)
        self.archive.audit.append(person, "consent.datakey", consent_id, {"rule": "role.permission"},
                                  outcome="allowed", now=when)
        return dek, sealed
