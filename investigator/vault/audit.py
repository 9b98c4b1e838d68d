"""Append-only, hash-chained audit log with signed checkpoints.

Every action, allowed or refused, appends one entry. Each entry's hash covers
the previous entry's hash, so an edit, insertion or deletion anywhere breaks the
chain; signed checkpoints pin the chain's head, so truncation and a rewritten
tail are found up to the last checkpoint (docs/archive-format.md, "Audit log").

    >>> log = AuditLog(tmp_path / "audit")                     # doctest: +SKIP
    >>> log.append("alice", "ingest", "batch 3", {"rows": 10})  # doctest: +SKIP
    >>> log.checkpoint(archive_signing_key)                     # doctest: +SKIP
    >>> log.verify({key.public.key_id: key.public})             # doctest: +SKIP

Fail closed: if an entry cannot be written, :class:`AuditError` is raised and
the caller must not go on with the action. Two processes appending at once are
serialized by an exclusive file lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.verification import Verification
from investigator.errors import AuditError, IntegrityError
from investigator.schema import canonical_json, format_ts
from investigator.vault.layout import AUDIT_CHECKPOINTS_NAME, AUDIT_LOG_NAME, LOCK_NAME
from investigator.vault.format import ArchiveSigner

GENESIS = "0" * 64
LOG_NAME = AUDIT_LOG_NAME  # names: investigator/vault/layout.py
CHECKPOINT_NAME = AUDIT_CHECKPOINTS_NAME
OUTCOMES = ("ok", "allowed", "denied", "error")


def _entry_hash(entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One line of the log. ``details`` never holds message text or secrets."""

    seq: int
    ts: str
    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any]
    prev: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "actor": self.actor, "action": self.action,
                "target": self.target, "outcome": self.outcome, "details": self.details,
                "prev": self.prev, "hash": self.hash}


class AuditLog:
    """The audit log in directory ``folder`` (``archive.layout.audit_dir``, i.e. ``ARCHIVE/audit``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.log_path = self.folder / LOG_NAME
        self.checkpoint_path = self.folder / CHECKPOINT_NAME
        self._lock_path = self.folder / LOCK_NAME

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self._lock_path, "a+")
        except OSError as exc:
            raise AuditError(f"{self._lock_path}: cannot open the audit lock ({exc.strerror})") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    # --- reading -------------------------------------------------------------

    def _last_line(self) -> bytes | None:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                if size == 0:
                    return None
                block = min(size, 65536)
                while True:
                    handle.seek(size - block)
                    data = handle.read(block)
                    stripped = data.rstrip(b"\n")
                    cut = stripped.rfind(b"\n")
                    if cut >= 0 or block == size:
                        return stripped[cut + 1:]
                    block = min(size, block * 4)
        except FileNotFoundError:
            return None

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry in order. Raises AuditError naming the line of a malformed one."""
        try:
            handle = open(self.log_path, "rb")
        except FileNotFoundError:
            return
        with handle:
            for number, line in enumerate(handle, start=1):
                try:
                    obj = json.loads(line)
                    yield AuditEntry(**obj)
                except (ValueError, TypeError) as exc:
                    raise AuditError(f"{self.log_path}, line {number}: not a valid audit entry") from exc

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint record, in order."""
        try:
            lines = self.checkpoint_path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for number, line in enumerate(lines, start=1):
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                raise AuditError(f"{self.checkpoint_path}, line {number}: not a valid checkpoint") from exc
        return out

    # --- writing -------------------------------------------------------------

    def append(self, actor: str, action: str, target: str = "", details: Mapping[str, Any] | None = None,
               *, outcome: str = "ok", now: datetime | None = None) -> AuditEntry:
        """Append one entry and fsync it. Raises AuditError if it cannot be written."""
        if outcome not in OUTCOMES:
            raise AuditError(f"unknown audit outcome {outcome!r}")
        when = now or datetime.now(timezone.utc)
        with self._locked():
            last = self._last_line()
            if last is None:
                seq, prev = 1, GENESIS
            else:
                try:
                    head = json.loads(last)
                    seq, prev = int(head["seq"]) + 1, str(head["hash"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise AuditError(f"{self.log_path}: the last entry is damaged; run 'audit verify'") from exc
            entry: dict[str, Any] = {"seq": seq, "ts": format_ts(when), "actor": actor, "action": action,
                     "target": target, "outcome": outcome, "details": dict(details or {}), "prev": prev}
            entry["hash"] = _entry_hash(entry)
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
            try:
                with open(self.log_path, "ab") as handle:
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise AuditError(f"{self.log_path}: cannot append ({exc.strerror})") from exc
        return AuditEntry(**entry)

    def checkpoint(self, signer: ArchiveSigner, *, archive_id: str = "",
                   now: datetime | None = None) -> dict[str, Any] | None:
        """Sign the current head of the chain. Returns the checkpoint, or None for an empty log."""
        when = now or datetime.now(timezone.utc)
        with self._locked():
            last = self._last_line()
            if last is None:
                return None
            head = json.loads(last)
            body = {"archive_id": archive_id, "seq": head["seq"], "hash": head["hash"], "ts": format_ts(when)}
            record = {**body, "key_id": signer.public.key_id, "signature": signer.sign(canonical_json(body))}
            try:
                with open(self.checkpoint_path, "ab") as handle:
                    handle.write(json.dumps(record, sort_keys=True).encode() + b"\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise AuditError(f"{self.checkpoint_path}: cannot append ({exc.strerror})") from exc
        return record

    # --- verifying -----------------------------------------------------------

    def verify(self, public_keys: Mapping[str, _crypto.VerifyKey]) -> Verification:
        """Check the chain and every checkpoint; collect problems (never raises for tampering).

        ``public_keys`` maps key ids to the keys allowed to sign checkpoints.
        Raises AuditError only when the files cannot be read at all.
        """
        problems: list[str] = []
        by_seq: dict[int, str] = {}
        prev = GENESIS
        expected_seq = 1
        count = 0
        try:
            raw_lines = self.log_path.read_bytes().splitlines() if self.log_path.exists() else []
        except OSError as exc:
            raise AuditError(f"{self.log_path}: cannot read ({exc.strerror})") from exc
        for number, line in enumerate(raw_lines, start=1):
            where = f"{self.log_path.name}, line {number}"
            try:
                obj = json.loads(line)
                seq, stored_hash, stored_prev = int(obj["seq"]), obj["hash"], obj["prev"]
            except (ValueError, KeyError, TypeError):
                problems.append(f"{where}: not a valid audit entry")
                break
            if seq != expected_seq:
                problems.append(f"{where}: sequence {seq} where {expected_seq} was expected (entry inserted or removed)")
            if stored_prev != prev:
                problems.append(f"{where}: previous-hash link broken (an entry before it was changed, inserted or removed)")
            if _entry_hash(obj) != stored_hash:
                problems.append(f"{where}: entry hash does not match its content (entry edited)")
            by_seq[seq] = stored_hash
            prev = stored_hash
            expected_seq = seq + 1
            count += 1
        checkpoints = self.checkpoints()
        last_cp = 0
        for number, cp in enumerate(checkpoints, start=1):
            where = f"{self.checkpoint_path.name}, line {number}"
            body = {k: cp.get(k) for k in ("archive_id", "seq", "hash", "ts")}
            key = public_keys.get(str(cp.get("key_id")))
            if key is None:
                problems.append(f"{where}: signed by an unknown key {cp.get('key_id')!r}")
            else:
                try:
                    key.verify(str(cp.get("signature")), canonical_json(body))
                except IntegrityError:
                    problems.append(f"{where}: checkpoint signature does not verify")
            seq = int(cp.get("seq") or 0)
            last_cp = max(last_cp, seq)
            if seq not in by_seq:
                problems.append(f"{where}: checkpoint covers entry {seq}, which is missing (log truncated)")
            elif by_seq[seq] != cp.get("hash"):
                problems.append(f"{where}: entry {seq} differs from the checkpointed one (log rewritten)")
        return Verification("audit", problems=problems,
                            counts={"entries": count, "checkpoints": len(checkpoints), "last_checkpoint_seq": last_cp})
