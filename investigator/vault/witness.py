"""Witnesses outside the archive: every checkpoint goes to places the archive's writer cannot roll back.

    >>> witness = open_witness("/mnt/other-disk/witness")                     # doctest: +SKIP
    >>> witness.submit(note, proof=lambda m: proof_from(m)).status            # doctest: +SKIP
    'accepted'
    >>> check_witnesses(archive.audit, archive.signing_keys(), archive.archive_id, [witness]).ok  # doctest: +SKIP

Issue #13, item 3 (docs/archive-format.md, "Witnesses"; docs/threat-model.md).
A witness holds, per archive, the checkpoints (signed notes) it was given. It
accepts a checkpoint only when a consistency proof (RFC 9162, verified with
:mod:`investigator.vault.merkle`) shows that its tree extends the last one the
witness holds; it writes the entry durably (fsync, or an Object-Locked S3 put)
before it answers; it never overwrites: a checkpoint that does not extend what
it holds is kept under ``conflicts/`` as evidence and refused. So when someone
who can write the archive rolls the archive *and* its audit log back together
to an earlier consistent state, the witness still holds a larger tree (or a
root the log is not consistent with): :func:`check_witnesses` reports it.

Layout of a witness (a folder, or the keys under an S3 prefix)::

    <archive id>/checkpoints/<size, 20 digits>-<root hex>.json   one WitnessEntry each
    <archive id>/conflicts/<size, 20 digits>-<root hex>-<note sha256 16 hex>.json

Seams (the vault knows neither the policy nor S3):

- which witnesses an archive has comes from its signed policy
  (``[audit] witnesses``); :mod:`investigator.authority.policy.store`
  installs the reader with :func:`set_witness_list`;
- ``s3://`` witnesses are made by :mod:`investigator.backup.witness`, which
  registers itself with :func:`register_scheme`; any other text is a folder;
- :class:`investigator.vault.store.Archive` sets the audit log's
  ``after_checkpoint`` to :func:`send_checkpoint`, so every checkpoint, from
  whichever caller, goes to every witness.

At checkpoint time a witness that cannot be reached does not stop the
decision (it is recorded already): the failure is audited (``witness.failed``,
outcome error), every later checkpoint retries and catches the witness up with a
proof computed from the log, and ``verify --witness`` reports the entries the
witness lacks. A witness that *refuses* the archive's checkpoint (it holds a
tree the log does not extend) is evidence of a rollback or a fork: audited
(``witness.refused``) and raised as AuditError, so the caller refuses to go on
(no key is released from a rolled-back archive). Each entry also carries the
hash of the archive's newest signed state head (``state_head``; vault/statehead.py),
null for an archive that has none yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from investigator import _crypto
from investigator._fs import fsync_dir, make_dirs
from investigator.errors import AuditError, ConfigError
from investigator.schema import format_ts
from investigator.vault import merkle
from investigator.vault.audit import AuditLog
from investigator.vault.statehead import newest_head_hash
from investigator.vault.checkpoint import (ORIGIN_PREFIX, Checkpoint, CheckpointRecord, NoteError, SignedNote,
                                           is_legacy, verify_note)
from investigator.verification import Verification

ENTRY_FORMAT = "investigator-witness/1"
WITNESS_ACTOR = "investigator"
_NAME_RE = re.compile(r"^(\d{20})-([0-9a-f]{64})(?:-[0-9a-f]{16})?\.json$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

ProofSource = Callable[[int], Sequence[bytes]]

# Fault injection for the crash-safety tests only: a child process they start sets this to a step of
# DirectoryStore.put_new ("mid-entry", "before-link", "after-link") and is killed with SIGKILL there.
CRASH_AT: str | None = None


def _crash_point(name: str) -> None:
    if CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


class WitnessError(AuditError):
    """A witness that cannot be read or written (the message names the witness and the entry, nothing secret)."""


# --- entries -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WitnessEntry:
    """One checkpoint a witness holds: the signed note, what it says, the state-head slot, when it was received."""

    origin: str
    size: int
    root: bytes
    note: str
    state_head: str | None
    received: str
    name: str = ""

    def to_bytes(self) -> bytes:
        body = {"format": ENTRY_FORMAT, "origin": self.origin, "size": self.size, "root": _crypto.b64(self.root),
                "note": self.note, "state_head": self.state_head, "received": self.received}
        return (json.dumps(body, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str) -> "WitnessEntry":
        """Raises WitnessError for bytes that are not an entry, or whose fields disagree with the note."""
        try:
            obj = json.loads(data)
            if obj.get("format") != ENTRY_FORMAT:
                raise ValueError("format")
            cp = Checkpoint.parse(SignedNote.parse(str(obj["note"])).text)
            entry = cls(origin=cp.origin, size=cp.size, root=cp.root, note=str(obj["note"]),
                        state_head=obj.get("state_head"), received=str(obj.get("received", "")), name=name)
        except (ValueError, KeyError, TypeError, AttributeError, NoteError) as exc:
            raise WitnessError(f"{name}: not a witness entry") from exc
        if obj.get("size") != entry.size or obj.get("root") != _crypto.b64(entry.root) \
                or obj.get("origin") != entry.origin:
            raise WitnessError(f"{name}: the entry's fields disagree with its signed note")
        return entry


def _archive_dir(origin: str) -> str:
    archive_id = origin.removeprefix(ORIGIN_PREFIX)
    if not origin.startswith(ORIGIN_PREFIX) or not _ID_RE.match(archive_id):
        raise WitnessError(f"checkpoint origin {origin!r} is not an archive's")
    return archive_id


# --- where entries are kept ----------------------------------------------------------------------

class WitnessStore(Protocol):
    """A place that keeps named byte strings and never replaces one (a folder; an Object-Locked bucket)."""

    @property
    def location(self) -> str: ...

    def prepare(self) -> None:
        """Ready to take entries (an S3 bucket is made with Object Lock when missing; a folder must exist)."""
        ...

    def put_new(self, name: str, data: bytes) -> bool:
        """Keep ``data`` under ``name`` durably before returning True; False (nothing changed) if ``name`` exists."""
        ...

    def get(self, name: str) -> bytes: ...

    def names(self, prefix: str) -> list[str]:
        """The names under folder ``prefix`` (ending in '/'), without the prefix; [] when there is none."""
        ...


class DirectoryStore:
    """A witness folder (on another disk or host): each entry written to a scratch file, fsynced, then linked in.

    ``os.link`` refuses an existing name, so an entry is never replaced; the
    folder is fsynced after the link, so an answer means the entry is on disk.
    A crash leaves at most a ``.partial-*`` scratch file, which is ignored.
    """

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)  # the witness's own folder (not an archive root)

    @property
    def location(self) -> str:
        return str(self.folder)

    def prepare(self) -> None:
        if not self.folder.is_dir():  # never made here: an absent folder is a disk that is not mounted
            raise WitnessError(f"witness {self.folder}: not a folder (not mounted?)")

    def put_new(self, name: str, data: bytes) -> bool:
        final = self.folder / name
        try:
            make_dirs(final.parent)  # each new subfolder's entry fsynced: the entry must survive a crash
            if final.exists():
                return False
            scratch = final.parent / f".partial-{secrets.token_hex(8)}"
            fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                _write_all(fd, data[:len(data) // 2])
                _crash_point("mid-entry")
                _write_all(fd, data[len(data) // 2:])
                os.fsync(fd)
            finally:
                os.close(fd)
            _crash_point("before-link")
            try:
                os.link(scratch, final)
                _crash_point("after-link")
            except FileExistsError:
                return False
            finally:
                scratch.unlink(missing_ok=True)
            fsync_dir(final.parent)
            return True
        except OSError as exc:
            raise WitnessError(f"witness {self.folder}: cannot write {name} ({exc.strerror})") from exc

    def get(self, name: str) -> bytes:
        try:
            return (self.folder / name).read_bytes()
        except OSError as exc:
            raise WitnessError(f"witness {self.folder}: cannot read {name} ({exc.strerror})") from exc

    def names(self, prefix: str) -> list[str]:
        folder = self.folder / prefix
        try:
            return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            if not self.folder.is_dir():
                raise WitnessError(f"witness {self.folder}: not a folder (not mounted?)") from None
            return []
        except OSError as exc:
            raise WitnessError(f"witness {self.folder}: cannot list {prefix} ({exc.strerror})") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --- the witness ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A witness's answer: ``accepted`` (new entry), ``held`` (it had it), ``conflict`` (refused, kept as evidence)."""

    status: str
    size: int
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "held")


class Witness:
    """The protocol over one :class:`WitnessStore`."""

    def __init__(self, store: WitnessStore) -> None:
        self.store = store

    @property
    def location(self) -> str:
        return self.store.location

    def __repr__(self) -> str:
        return f"Witness({self.location!r})"

    def _entries(self, origin: str, folder: str) -> list[WitnessEntry]:
        prefix = f"{_archive_dir(origin)}/{folder}/"
        out = []
        for name in self.store.names(prefix):
            if _NAME_RE.match(name):
                out.append(WitnessEntry.from_bytes(self.store.get(prefix + name), name=prefix + name))
        return sorted(out, key=lambda e: (e.size, e.name))

    def held(self, origin: str) -> list[WitnessEntry]:
        """Every checkpoint of ``origin`` this witness accepted, smallest tree first. Raises WitnessError."""
        return self._entries(origin, "checkpoints")

    def conflicts(self, origin: str) -> list[WitnessEntry]:
        """Every checkpoint of ``origin`` this witness refused (kept as evidence). Raises WitnessError."""
        return self._entries(origin, "conflicts")

    def latest(self, origin: str) -> WitnessEntry | None:
        """The largest tree held for ``origin`` (read from the names, then the entry itself)."""
        prefix = f"{_archive_dir(origin)}/checkpoints/"
        names = [n for n in self.store.names(prefix) if _NAME_RE.match(n)]
        if not names:
            return None
        name = max(names)
        return WitnessEntry.from_bytes(self.store.get(prefix + name), name=prefix + name)

    def submit(self, note: str, proof: ProofSource, *, state_head: str | None = None,
               now: datetime | None = None) -> Answer:
        """Offer the checkpoint ``note``; ``proof(m)`` gives the consistency proof from tree size m to this one.

        Accepted only when it extends the largest tree held (or none is held).
        The entry is durable before the answer. Raises WitnessError when the
        witness cannot be read or written, NoteError for a note that does not parse.
        """
        cp = Checkpoint.parse(SignedNote.parse(note).text)
        folder = _archive_dir(cp.origin)
        self.store.prepare()
        entry = WitnessEntry(cp.origin, cp.size, cp.root, note, state_head,
                             format_ts(now or datetime.now(timezone.utc)))
        name = f"{cp.size:020d}-{cp.root.hex()}.json"
        last = self.latest(cp.origin)
        reason = ""
        if last is None:
            pass
        elif cp.size == last.size:
            if cp.root == last.root:
                return Answer("held", cp.size)
            reason = f"a different tree of the same size {cp.size} is held"
        elif cp.size < last.size:
            if name in self.store.names(f"{folder}/checkpoints/"):
                return Answer("held", cp.size)
            reason = f"a larger tree ({last.size} entries) is held: rolled back or forked"
        else:
            try:
                steps = list(proof(last.size))
            except (AuditError, OSError, ValueError) as exc:
                raise WitnessError(f"witness {self.location}: no consistency proof from {last.size} to {cp.size} "
                                   f"({exc})") from exc
            if not merkle.verify_consistency(last.size, cp.size, steps, last.root, cp.root):
                reason = f"the consistency proof from the held tree of {last.size} entries does not verify"
        if reason:
            digest = hashlib.sha256(note.encode("utf-8")).hexdigest()[:16]
            self.store.put_new(f"{folder}/conflicts/{cp.size:020d}-{cp.root.hex()}-{digest}.json", entry.to_bytes())
            return Answer("conflict", cp.size, reason)
        self.store.put_new(f"{folder}/checkpoints/{name}", entry.to_bytes())
        return Answer("accepted", cp.size)


# --- opening witnesses; the seams ------------------------------------------------------------------

WitnessFactory = Callable[[str], Witness]
_schemes: dict[str, WitnessFactory] = {}
_list_source: list[Callable[[Any], Sequence[str]]] = []


def register_scheme(scheme: str, factory: WitnessFactory) -> None:
    """Make ``scheme://...`` witnesses with ``factory`` (``investigator.backup.witness`` registers ``s3``)."""
    _schemes[scheme] = factory


def set_witness_list(source: Callable[[Any], Sequence[str]]) -> None:
    """Where an archive's witness list comes from (``investigator.authority.policy.store``: the signed policy)."""
    _list_source[:] = [source]


def open_witness(spec: str) -> Witness:
    """The witness at ``spec``: ``scheme://...`` through its registered factory, anything else a folder."""
    scheme, sep, _ = spec.partition("://")
    if sep:
        factory = _schemes.get(scheme)
        if factory is None:
            raise ConfigError(f"no witness of kind {scheme}:// is available here",
                              hint="s3:// witnesses come with investigator.backup (boto3)")
        return factory(spec)
    if not spec:
        raise ConfigError("an empty witness location")
    return Witness(DirectoryStore(Path(spec).expanduser()))


def witnesses_of(archive: Any) -> list[str]:
    """The witness list of ``archive`` from its signed state ([] when no source is installed or none is set)."""
    return [str(s) for s in _list_source[0](archive)] if _list_source else []


def log_leaves(audit: AuditLog, size: int | None = None) -> list[bytes]:
    """The Merkle leaf hashes of the log's first ``size`` entries (all complete ones when None)."""
    try:
        data = audit.log_path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise AuditError(f"{audit.log_path}: unreadable ({exc.strerror})") from exc
    out: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if (size is not None and len(out) >= size) or not line.endswith(b"\n"):
            break
        try:
            out.append(merkle.leaf_hash(bytes.fromhex(str(json.loads(line)["hash"]))))
        except (ValueError, KeyError, TypeError):
            break
    return out


def proof_source(audit: AuditLog, record: CheckpointRecord | None, size: int) -> ProofSource:
    """Consistency proofs to the tree of ``size`` entries: the checkpoint's own when it starts where asked,
    else computed from the log's leaves."""
    def proof(old: int) -> Sequence[bytes]:
        if record is not None and record.consistency_from == old:
            return record.proof
        leaves = log_leaves(audit, size)
        if len(leaves) < size:
            raise AuditError(f"the log holds {len(leaves)} entries, fewer than the checkpoint's {size}")
        return merkle.consistency_proof_of_hashes(old, leaves)
    return proof


def send_checkpoint(archive: Any, line: dict[str, Any] | None) -> list[tuple[str, Answer | None]]:
    """Give checkpoint ``line`` (as :meth:`AuditLog.checkpoint` returns it) to every witness of ``archive``.

    A witness that cannot be reached: audited ``witness.failed`` (outcome
    error), the next checkpoint retries. A witness that refuses: audited
    ``witness.refused`` and AuditError raised (fail closed). Returns
    (location, answer or None) per witness.
    """
    if line is None or is_legacy(line):
        return []
    audit: AuditLog = archive.audit
    try:
        specs = witnesses_of(archive)
    except Exception as exc:  # noqa: BLE001 -- any failure to read the list is a witness failure, audited
        audit.append(WITNESS_ACTOR, "witness.failed", "policy",
                     {"reason": f"the witness list cannot be read ({type(exc).__name__})"}, outcome="error")
        return []
    if not specs:
        return []
    record = CheckpointRecord.from_json(line)
    size = Checkpoint.parse(SignedNote.parse(record.note).text).size
    results: list[tuple[str, Answer | None]] = []
    refused = []
    for spec in specs:
        try:
            answer = open_witness(spec).submit(record.note, proof_source(audit, record, size),
                                               state_head=newest_head_hash(archive.layout, archive_id=archive.archive_id))
        except Exception as exc:  # noqa: BLE001 -- unreachable, unwritable, misconfigured: retried next time
            reason = str(exc) if isinstance(exc, (AuditError, ConfigError)) else type(exc).__name__
            audit.append(WITNESS_ACTOR, "witness.failed", spec, {"size": size, "reason": reason}, outcome="error")
            results.append((spec, None))
            continue
        results.append((spec, answer))
        if answer.status == "conflict":
            audit.append(WITNESS_ACTOR, "witness.refused", spec, {"size": size, "reason": answer.reason},
                         outcome="error")
            refused.append(f"{spec}: {answer.reason}")
    if refused:
        raise AuditError("a witness refused the archive's checkpoint of " f"{size} entries ({'; '.join(refused)}); "
                         "the archive's audit log does not extend what the witness holds: run 'investigator verify "
                         "ARCHIVE --witness ...'")
    return results


# --- verifying against witnesses ---------------------------------------------------------------------

def check_witnesses(audit: AuditLog, keys: Iterable[_crypto.VerifyKey], archive_id: str,
                    witnesses: Sequence[Witness]) -> Verification:
    """Compare the archive's audit log and checkpoints with what each witness holds (never raises for findings).

    Problems (a rollback or a fork): a witness holds a checkpoint of more
    entries than the log has; the log's first N entries do not have the root
    of a checkpoint a witness holds; a witness kept a conflicting checkpoint;
    a witness entry not signed by the archive's key; a witness that cannot be
    read. Warnings: checkpoints of the archive newer than the witness's
    newest (missing entries: the witness was unreachable; the audit log's
    ``witness.failed`` entries say when).
    """
    from_origin = ORIGIN_PREFIX + (archive_id or "unnamed")
    keys = tuple(keys)
    result = Verification("witness", counts={"witnesses": 0, "witness_entries": 0, "missing_entries": 0})
    leaves = log_leaves(audit)
    ours = _archive_checkpoints(audit)
    for witness in witnesses:
        where = f"witness {witness.location}"
        result.count("witnesses")
        try:
            held = witness.held(from_origin)
            refused = witness.conflicts(from_origin)
        except (WitnessError, ConfigError) as exc:
            result.problem(f"{where}: cannot be read ({exc})")
            continue
        result.count("witness_entries", len(held))
        problems_before = len(result.problems)
        roots = _roots_at(leaves, {e.size for e in held})
        for entry in held:
            _key, why = verify_note(SignedNote.parse(entry.note), keys, from_origin)
            if why:
                result.problem(f"{where}, {entry.name}: {why}")
                continue
            if entry.size > len(leaves):
                result.problem(f"{where} holds a checkpoint of {entry.size} entries (signed {_time(entry)}); the "
                               f"archive's audit log has only {len(leaves)}: the archive and its audit log were "
                               "rolled back or truncated")
            elif roots[entry.size] != entry.root:
                result.problem(f"{where} holds a checkpoint of {entry.size} entries (signed {_time(entry)}) that "
                               "the archive's audit log is not consistent with: the archive and its audit log were "
                               "rolled back and written on since, or its entries rewritten")
        for entry in refused:
            result.problem(f"{where} refused a checkpoint of {entry.size} entries (signed {_time(entry)}) that does "
                           f"not extend what it held, and kept it as evidence ({entry.name}): a rollback or a fork")
        newest = held[-1].size if held else 0
        missing = [(size, root) for size, root in ours if size > newest]
        if missing:
            result.count("missing_entries", len(missing))
            result.warn(f"{where} lacks the archive's newest {len(missing)} checkpoint(s) (entries {newest + 1}.."
                        f"{missing[-1][0]} not witnessed; it was unreachable or is behind: the audit log's "
                        "witness.failed entries say when; the next checkpoint catches it up)")
        elif held and len(result.problems) == problems_before:
            result.check(f"{where}: holds {len(held)} checkpoint(s), newest of {newest} entries, consistent with "
                         "the audit log")
        else:
            result.warn(f"{where}: holds no checkpoint of this archive")
    return result


def _time(entry: WitnessEntry) -> str:
    try:
        return Checkpoint.parse(SignedNote.parse(entry.note).text).time
    except NoteError:
        return "?"


def _roots_at(leaves: Sequence[bytes], sizes: set[int]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    tree = merkle.CompactRange()
    if 0 in sizes:
        out[0] = tree.root()
    for leaf in leaves:
        tree.append(leaf)
        if tree.size in sizes:
            out[tree.size] = tree.root()
    return out


def _archive_checkpoints(audit: AuditLog) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    try:
        lines = audit.checkpoints()
    except AuditError:
        return out  # a damaged checkpoint file: the audit check reports it
    for obj in lines:
        if is_legacy(obj):
            continue
        try:
            cp = Checkpoint.parse(SignedNote.parse(str(obj["note"])).text)
        except (NoteError, KeyError, TypeError):
            continue
        out.append((cp.size, cp.root))
    return out
