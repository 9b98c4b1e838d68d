"""Append-only audit log: a hash chain whose entries are the leaves of a transparency log (RFC 9162).

Every action, allowed or refused, appends one entry. Each entry's hash covers
the previous entry's hash, and the entries are the leaves of one Merkle tree.
A checkpoint is the archive key's signed note (C2SP tlog-checkpoint) over
(origin, tree size, root, time), with a consistency proof from the checkpoint
before it, so an edit, removal, insertion, reordering or truncation of the
entries any checkpoint covers fails, as does a removed, shortened or reordered
checkpoint file (docs/archive-format.md, "Audit log").

    >>> log = AuditLog(tmp_path / "audit")                        # doctest: +SKIP
    >>> log.append("alice", "ingest", "batch 3", {"rows": 10})     # doctest: +SKIP
    >>> log.checkpoint(archive_signing_key, archive_id=aid)        # doctest: +SKIP
    >>> result, head = log.verify_from(archive.signing_keys(), archive_id=aid, since=last_head)  # doctest: +SKIP

Fail closed: if an entry or a checkpoint cannot be written, :class:`AuditError`
is raised and the caller must not go on with the action; a checkpoint is refused
when the log no longer continues the last one. Two processes appending at once
are serialized by an exclusive file lock.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator._fs import atomic_write
from investigator.errors import AuditError
from investigator.schema import format_ts
from investigator.vault import merkle
from investigator.vault.checkpoint import (Checkpoint, CheckpointRecord, NoteError, SignedNote, is_legacy,
                                           origin_of, sign_checkpoint)
from investigator.vault.format import ArchiveSigner
from investigator.vault.keychain import KeyChain
from investigator.vault.layout import AUDIT_CHECKPOINTS_NAME, AUDIT_LOG_NAME, LOCK_NAME
from investigator.vault.tlog import GENESIS, VerifiedHead, entry_hash, verify_log
from investigator.verification import Verification

LOG_NAME = AUDIT_LOG_NAME  # names: investigator/vault/layout.py
CHECKPOINT_NAME = AUDIT_CHECKPOINTS_NAME
OUTCOMES = ("ok", "allowed", "denied", "error")
_entry_hash = entry_hash  # the name evidence bundles import
_REFUSE = "run 'investigator audit verify'"

__all__ = ["AuditEntry", "AuditLog", "GENESIS", "VerifiedHead", "checkpoint_line_size", "load_verified_head",
           "save_verified_head"]


@dataclass(frozen=True)
class AuditEntry:
    """One line of the log. ``details`` never holds message text or secrets.

    ``checkpoints`` is how many checkpoints the file held when the entry was
    appended (None for entries written before the transparency log), so a
    shortened checkpoint file shows.
    """

    seq: int
    ts: str
    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any]
    prev: str
    hash: str
    checkpoints: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"seq": self.seq, "ts": self.ts, "actor": self.actor, "action": self.action,
               "target": self.target, "outcome": self.outcome, "details": self.details,
               "prev": self.prev, "hash": self.hash}
        if self.checkpoints is not None:
            out["checkpoints"] = self.checkpoints
        return out


def _keys_of(keys: KeyChain | Mapping[str, _crypto.VerifyKey]) -> tuple[_crypto.VerifyKey, ...]:
    return tuple(keys.keys) if isinstance(keys, KeyChain) else tuple(keys.values())


def checkpoint_line_size(line: Mapping[str, Any] | None) -> int:
    """How many entries a checkpoint line (as :meth:`AuditLog.checkpoint` returns it) covers; 0 for none."""
    if line is None:
        return 0
    try:
        return int(line["seq"]) if is_legacy(line) else Checkpoint.parse(SignedNote.parse(str(line["note"])).text).size
    except (KeyError, TypeError, ValueError, NoteError):
        return 0


def load_verified_head(path: Path) -> VerifiedHead | None:
    """What this host verified last time (None when ``path`` does not exist). Raises AuditError if damaged."""
    try:
        obj = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AuditError(f"{path}: unreadable verified-head record") from exc
    return VerifiedHead.from_json(obj, where=str(path))


def save_verified_head(path: Path, head: VerifiedHead) -> None:
    """Replace ``path`` with ``head`` (atomically; the folder is created). Raises AuditError if it cannot."""
    try:
        atomic_write(Path(path), (json.dumps(head.to_json(), indent=1, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise AuditError(f"{path}: cannot write the verified-head record ({exc.strerror})") from exc


class AuditLog:
    """The audit log in directory ``folder`` (``archive.layout.audit_dir``, i.e. ``ARCHIVE/audit``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.log_path = self.folder / LOG_NAME
        self.checkpoint_path = self.folder / CHECKPOINT_NAME
        self._lock_path = self.folder / LOCK_NAME
        # called with each checkpoint line after it is written, outside the lock (vault/witness.py sends it to the
        # archive's witnesses; Archive sets it). May raise AuditError (a witness refused: fail closed).
        self.after_checkpoint: Callable[[dict[str, Any] | None], object] | None = None
        # called with the signer before each checkpoint, outside the lock (vault/statehead.py writes the next signed
        # state head and its pin entry, which the checkpoint then covers; Archive sets it)
        self.before_checkpoint: Callable[[ArchiveSigner, datetime], object] | None = None

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

    @staticmethod
    def _tail(path: Path) -> tuple[bytes | None, int]:
        """The last complete line of ``path`` (without its newline) and the length of the complete lines.

        A last line without its newline (a write cut short) is not returned;
        the length then ends before it.
        """
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                block = min(size, 65536)
                while size:
                    handle.seek(size - block)
                    data = handle.read(block)
                    complete = data.rfind(b"\n")
                    if complete >= 0:
                        before = data.rfind(b"\n", 0, complete)
                        if before >= 0 or block == size:
                            return data[before + 1:complete], size - block + complete + 1
                    elif block == size:
                        return None, 0
                    block = min(size, block * 4)
                return None, 0
        except FileNotFoundError:
            return None, 0

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
        """Every checkpoint line, parsed, in order (both formats; see :meth:`checkpoint_sizes`)."""
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

    def checkpoint_sizes(self) -> list[int]:
        """How many entries each checkpoint covers, in file order (unverified; :meth:`verify` checks them)."""
        out = []
        for obj in self.checkpoints():
            try:
                out.append(int(obj["seq"]) if is_legacy(obj) else
                           Checkpoint.parse(SignedNote.parse(str(obj["note"])).text).size)
            except (KeyError, TypeError, ValueError, NoteError):
                out.append(0)
        return out

    def _checkpoint_count(self) -> int:
        """How many complete checkpoint lines the file holds (the last line's index; counted for format 1)."""
        last, length = self._tail(self.checkpoint_path)
        if last is None:
            return 0
        try:
            obj = json.loads(last)
            if not is_legacy(obj):
                return int(obj["index"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{self.checkpoint_path}: the last checkpoint is damaged; {_REFUSE}") from exc
        with open(self.checkpoint_path, "rb") as handle:
            return handle.read(length).count(b"\n")

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
                    raise AuditError(f"{self.log_path}: the last entry is damaged; {_REFUSE}") from exc
            entry: dict[str, Any] = {"seq": seq, "ts": format_ts(when), "actor": actor, "action": action,
                                     "target": target, "outcome": outcome, "details": dict(details or {}),
                                     "prev": prev, "checkpoints": self._checkpoint_count()}
            entry["hash"] = entry_hash(entry)
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
            self._append_line(self.log_path, line)
        return AuditEntry(**entry)

    @staticmethod
    def _append_line(path: Path, line: bytes) -> None:
        try:
            with open(path, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise AuditError(f"{path}: cannot append ({exc.strerror})") from exc

    def checkpoint(self, signer: ArchiveSigner, *, archive_id: str = "",
                   now: datetime | None = None) -> dict[str, Any] | None:
        """Sign the log's current tree head as a checkpoint; return its line (None for an empty log).

        The new checkpoint carries the consistency proof from the last one,
        computed from that one's right edge and the entries appended since
        (the log is not reread). First :attr:`before_checkpoint` runs (the next
        signed state head and its pin entry, which this checkpoint covers). Nothing is written when no entry was
        appended since the last checkpoint (that one is returned). Raises
        AuditError, writing nothing, when the log does not continue the last
        checkpoint (an entry after it edited, the checkpoint's hints altered),
        when the checkpoint file is missing while the log says it had
        checkpoints, or when a line cannot be written. Then (outside the lock)
        the line goes to :attr:`after_checkpoint` (the archive's witnesses),
        which raises AuditError when a witness refuses it.
        """
        when = now or datetime.now(timezone.utc)
        origin = origin_of(archive_id)
        if self.before_checkpoint is not None:
            self.before_checkpoint(signer, when)
        with self._locked():
            last, length = self._tail(self.checkpoint_path)
            if self.checkpoint_path.exists() and self.checkpoint_path.stat().st_size != length:
                # a checkpoint line cut short by a crash: no entry can name it (entries follow complete lines)
                os.truncate(self.checkpoint_path, length)
            try:
                prev = json.loads(last) if last is not None else None
            except ValueError as exc:
                raise AuditError(f"{self.checkpoint_path}: the last checkpoint is damaged; {_REFUSE}") from exc
            if prev is None:
                frontier, start, head, index = merkle.CompactRange(), 0, GENESIS, 0
                new, end = self._read_after(start, head, 0, first=True)
                consistency_from = None
            elif is_legacy(prev):
                frontier, new, end, head = self._after_legacy(prev)
                index = self._checkpoint_count()
                consistency_from = frontier.size
            else:
                try:
                    record = CheckpointRecord.from_json(prev)
                    cp = Checkpoint.parse(SignedNote.parse(record.note).text)
                    frontier = merkle.CompactRange(cp.size, list(record.frontier))
                except (NoteError, ValueError) as exc:
                    raise AuditError(f"{self.checkpoint_path}: the last checkpoint is damaged; {_REFUSE}") from exc
                if frontier.root() != cp.root:
                    raise AuditError(f"{self.checkpoint_path}: the last checkpoint's hints do not match its signed "
                                     f"root; {_REFUSE}")
                if cp.origin != origin:
                    raise AuditError(f"{self.checkpoint_path}: the last checkpoint is of {cp.origin!r}, not "
                                     f"{origin!r}")
                new, end = self._read_after(record.log_bytes, record.head, cp.size)
                head, index, consistency_from = record.head, record.index, cp.size
            if not new:
                line_json = prev
            else:
                line_json = self._write_checkpoint(signer, frontier, new, end, origin, when, index, consistency_from)
        if self.after_checkpoint is not None:
            self.after_checkpoint(line_json)
        return line_json

    def _write_checkpoint(self, signer: ArchiveSigner, frontier: merkle.CompactRange, new: list[tuple[bytes, str]],
                          end: int, origin: str, when: datetime, index: int,
                          consistency_from: int | None) -> dict[str, Any]:
        """Sign and append the checkpoint over ``frontier`` extended by ``new`` (under the lock)."""
        proof = frontier.consistency_proof([leaf for leaf, _ in new]) if consistency_from else []
        tree = frontier.copy()
        for leaf, _ in new:
            tree.append(leaf)
        note = sign_checkpoint(Checkpoint(origin, tree.size, tree.root(), format_ts(when)), signer)
        line = CheckpointRecord(index=index + 1, note=note, key_id=signer.public.key_id,
                                consistency_from=consistency_from, proof=tuple(proof),
                                frontier=tuple(tree.hashes), head=new[-1][1], log_bytes=end)
        self._append_line(self.checkpoint_path, line.line())
        return line.to_json()

    def _read_after(self, offset: int, head: str, size: int, *,
                    first: bool = False) -> tuple[list[tuple[bytes, str]], int]:
        """(leaf hash, entry hash) of each entry after byte ``offset`` (entry ``size``, hash ``head``) and the end.

        Raises AuditError unless the entries there continue the chain: entry
        ``size + 1`` starts at ``offset`` and links to ``head``, each hash
        matches its entry. With ``first`` (no checkpoint yet) every entry must
        record that no checkpoint existed when it was appended.
        """
        try:
            with open(self.log_path, "rb") as handle:
                if offset:
                    handle.seek(offset - 1)
                    if handle.read(1) != b"\n":
                        raise AuditError(f"{self.log_path}: entry {size} no longer ends where the last checkpoint "
                                         f"recorded; {_REFUSE}")
                data = handle.read()
        except FileNotFoundError:
            data = b""
            if offset:
                raise AuditError(f"{self.log_path}: missing, though a checkpoint covers {size} entries") from None
        out: list[tuple[bytes, str]] = []
        seq, prev, position = size, head, offset
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # an entry still being written by no one (appends hold the lock): not covered
            try:
                obj = json.loads(line)
                ok = (int(obj["seq"]) == seq + 1 and obj["prev"] == prev and entry_hash(obj) == obj["hash"])
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise AuditError(f"{self.log_path}: entry {seq + 1} does not continue the checkpointed log; "
                                 f"{_REFUSE}")
            if first and obj.get("checkpoints") != 0:
                raise AuditError(f"{self.checkpoint_path}: missing, but the log's entry {seq + 1} was written when "
                                 f"checkpoints existed (or before the transparency log); refusing to start a new "
                                 f"checkpoint chain; {_REFUSE}")
            seq, prev = seq + 1, str(obj["hash"])
            position += len(line)
            out.append((merkle.leaf_hash(bytes.fromhex(prev)), prev))
        return out, position

    def _after_legacy(self, prev: dict[str, Any]) -> tuple[merkle.CompactRange, list[tuple[bytes, str]], int, str]:
        """For a format-1 last checkpoint: the tree it pins (from the whole log) and the entries after it."""
        entries, end = self._read_after(0, GENESIS, 0)
        try:
            size = int(prev["seq"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AuditError(f"{self.checkpoint_path}: the last checkpoint is damaged; {_REFUSE}") from exc
        if size > len(entries) or entries[size - 1][1] != prev.get("hash"):
            raise AuditError(f"{self.log_path}: entry {size} is not the one the last checkpoint pins; {_REFUSE}")
        frontier = merkle.CompactRange.of(leaf for leaf, _ in entries[:size])
        return frontier, entries[size:], end, entries[size - 1][1]

    # --- verifying -----------------------------------------------------------

    def verify(self, keys: KeyChain | Mapping[str, _crypto.VerifyKey], *,
               archive_id: str | None = None) -> Verification:
        """Check every entry, the Merkle tree and every checkpoint; collect problems (never raises for tampering).

        ``keys`` are the archive's signing keys (its :class:`KeyChain`, or its
        keys by id): only they may sign checkpoints. ``archive_id`` fixes the
        expected origin (default: the first checkpoint's). Raises AuditError
        only when the files cannot be read at all.
        """
        return self.verify_from(keys, archive_id=archive_id)[0]

    def verify_from(self, keys: KeyChain | Mapping[str, _crypto.VerifyKey], *, archive_id: str | None = None,
                    since: VerifiedHead | None = None, full: bool = False,
                    now: datetime | None = None) -> tuple[Verification, VerifiedHead | None]:
        """:meth:`verify`, resuming from ``since`` (what this host verified before; see ``tlog.verify_log``).

        Returns the result and, when it is ok, the head to keep for next time
        (:func:`save_verified_head`). A log shorter than ``since``, or whose
        entries or checkpoints differ from those verified then, fails.
        """
        try:
            log = self.log_path.read_bytes() if self.log_path.exists() else b""
            cps = self.checkpoint_path.read_bytes() if self.checkpoint_path.exists() else b""
        except OSError as exc:
            raise AuditError(f"{self.folder}: cannot read the audit log ({exc.strerror})") from exc
        when = format_ts(now or datetime.now(timezone.utc))
        return verify_log(log, cps, keys=_keys_of(keys), archive_id=archive_id, since=since, full=full,
                          verified_at=when)
