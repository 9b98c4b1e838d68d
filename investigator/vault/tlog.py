"""Verification of the audit log as a transparency log: the entries, their Merkle tree and the checkpoints.

    >>> result, head = verify_log(log_bytes, checkpoint_bytes, keys=chain.keys, archive_id=aid)  # doctest: +SKIP
    >>> result.ok, result.facts.get("first_bad_entry")                                             # doctest: +SKIP
    (False, 41)
    >>> verify_log(log_bytes, checkpoint_bytes, keys=chain.keys, since=head)                      # doctest: +SKIP

Pure over the bytes of ``audit/log.jsonl`` and ``audit/checkpoints.jsonl``
(:class:`investigator.vault.audit.AuditLog` reads them): never raises for what
it finds, every problem names the file and line. What is checked
(docs/archive-format.md, "Audit log"; docs/auditor.md, "Checkpoints: what they prove"):

- each entry: its hash, its sequence number, its link to the entry before;
- the entries are the leaves of one RFC 9162 Merkle tree (leaf = the entry's
  32-byte hash); every checkpoint is a signed note by one of the archive's
  keys over (origin, tree size, root, time) whose root is the tree of the
  log's first ``size`` entries, and carries a consistency proof from the
  checkpoint before it;
- the checkpoint file itself: present whenever the log is not empty, each
  line in its place (``index``), tree sizes never going back, and not shorter
  than the log says (each entry records how many checkpoints existed when it
  was appended);
- against :class:`VerifiedHead`, what this host verified last time (kept
  outside the archive): the log and the checkpoint file still begin with the
  bytes verified then, so only what was appended since is checked again, and
  a truncated, rolled back or rewritten log is reported as such.

Format-1 ("legacy") checkpoints, which sign only the hash-chain head, are
verified as before (archive key, the entry they pin) with a warning.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from investigator import _crypto
from investigator.errors import AuditError
from investigator.schema import canonical_json
from investigator.vault import merkle
from investigator.vault.checkpoint import (Checkpoint, CheckpointRecord, NoteError, SignedNote, is_legacy,
                                           origin_of, verify_note)
from investigator.verification import Verification

GENESIS = "0" * 64
LOG = "log.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
HEAD_FORMAT = "investigator-verified-head/1"


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 bytes of ``entry`` without its ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def leaf_of(entry_hash_hex: str) -> bytes:
    """The Merkle leaf hash of an entry: SHA-256(0x00 || 32-byte entry hash)."""
    return merkle.leaf_hash(bytes.fromhex(entry_hash_hex))


@dataclass(frozen=True)
class VerifiedHead:
    """What this host verified last time, kept outside the archive (``~/.investigator/verified/<id>.<place>.json``).

    ``checkpoints`` lines (``checkpoints_bytes`` bytes, digest
    ``checkpoints_sha256``) and ``entries`` entries (``log_bytes`` bytes,
    digest ``log_sha256``) were verified; the last checkpoint covers ``size``
    entries with ``root``; ``frontier`` is that tree's right edge, entry
    ``size`` has hash ``size_head`` and ends at byte ``size_bytes``.
    """

    archive_id: str
    origin: str
    checkpoints: int
    checkpoints_bytes: int
    checkpoints_sha256: str
    last_line_sha256: str
    last_format: str
    size: int
    root: str
    frontier: list[str]
    size_bytes: int
    size_head: str
    entries: int
    log_bytes: int
    log_sha256: str
    head: str
    verified_at: str
    format: str = HEAD_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "verified head") -> "VerifiedHead":
        """Raises AuditError (naming ``where``) for a record that is not one."""
        try:
            if obj.get("format") != HEAD_FORMAT:
                raise AuditError(f"{where}: not a verified-head record of format {HEAD_FORMAT}")
            head = cls(**{k: obj[k] for k in cls.__dataclass_fields__})
            merkle.CompactRange(head.size, [_crypto.unb64(h) for h in head.frontier])
            return head
        except AuditError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise AuditError(f"{where}: damaged verified-head record") from exc


@dataclass
class _Prev:
    """The checkpoint before the one being checked: its line, tree size and (signed or computed) root."""

    line: int
    size: int
    root: bytes | None  # None: unknown (that checkpoint did not verify)
    matches_log: bool
    legacy: bool


@dataclass
class _Entries:
    count: int = 0
    base: int = 0  # tree size before the first leaf in ``leaves``
    leaves: list[bytes] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)
    heads: dict[int, str] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    frontiers: dict[int, merkle.CompactRange] = field(default_factory=dict)
    counts: list[tuple[int, Any]] = field(default_factory=list)  # (position, the entry's "checkpoints")
    complete: bool = True  # False when a line did not parse: later entries are unknown
    consumed: int = 0  # bytes of complete lines read
    last_hash: str = GENESIS  # the stored hash of the last entry read


class _Run:
    def __init__(self, log: bytes, cps: bytes, keys: Iterable[_crypto.VerifyKey], archive_id: str | None,
                 since: VerifiedHead | None, full: bool) -> None:
        self.log, self.cps = log, cps
        self.keys = tuple(keys)
        self.by_id = {k.key_id: k for k in self.keys}
        self.origin = origin_of(archive_id) if archive_id is not None else None
        self.archive_id = archive_id
        self.since = since
        self.full = full
        self.result = Verification("audit", counts={"entries": 0, "checkpoints": 0, "last_checkpoint_seq": 0,
                                                    "legacy_checkpoints": 0, "uncovered_entries": 0})
        self.first_entry: int | None = None
        self.first_checkpoint: int | None = None
        self.repeats: dict[tuple[str, str], list[int]] = {}
        # (lo, hi, hash): subtree hashes of signed trees (verified proofs' nodes, validated right edges, roots)
        self.authentic: list[tuple[int, int, bytes]] = []
        # (line, size, place among the problems) of the first checkpoint whose root the log lacks
        self.mismatches: list[tuple[int, int, int]] = []
        self.structure_broken = False  # checkpoint lines missing, out of place or out of order
        self._levels: list[list[bytes]] | None = None

    # --- reporting --------------------------------------------------------------------------------

    def entry_problem(self, line: int, text: str, *, first_bad: int | None = None) -> None:
        self.result.problem(f"{LOG}, line {line}: {text}")
        bad = first_bad if first_bad is not None else line
        self.first_entry = bad if self.first_entry is None else min(self.first_entry, bad)

    def checkpoint_problem(self, line: int, text: str, *, first_bad_entry: int | None = None) -> None:
        self.result.problem(f"{CHECKPOINTS}, line {line}: {text}")
        self.first_checkpoint = line if self.first_checkpoint is None else min(self.first_checkpoint, line)
        if first_bad_entry is not None:
            self.first_entry = first_bad_entry if self.first_entry is None else min(self.first_entry, first_bad_entry)

    def repeat(self, file: str, kind: str, line: int) -> bool:
        """True for the first problem of ``kind`` in ``file``; later ones are only counted (one cause, one line)."""
        self.repeats.setdefault((file, kind), []).append(line)
        return len(self.repeats[(file, kind)]) == 1

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> tuple[Verification, VerifiedHead | None]:
        resume = self._resume()
        lines = self._checkpoint_lines(resume)
        needed = {size for size in (self._size_of(obj) for _, obj, _ in lines) if size is not None}
        if self.since is not None:
            needed |= {self.since.size, self.since.entries}
        entries = self._entries(resume, needed)
        sizes = self._checkpoints(lines, resume, entries)
        self._report_mismatch(entries)
        total = len(lines) + (resume.checkpoints if resume is not None else 0)
        if total == 0 and entries.count > 0:
            recorded = max((c for _, c in entries.counts if isinstance(c, int)), default=0)
            said = f"; its entries record {recorded} checkpoint(s)" if recorded else ""
            self.result.problem(f"{CHECKPOINTS}: missing or empty while the log holds {entries.count} entries "
                                f"(checkpoints deleted{said})")
            self.first_checkpoint = 1
        elif not self.structure_broken:  # else the entries' counts only repeat what is already reported
            self._entry_counts(entries, sizes, total, resume)
        if self.since is not None and resume is None:
            self._against_since(lines, entries)
        for (file, kind), where in self.repeats.items():
            if len(where) > 1:
                lines_ = f"line {where[1]}" if len(where) == 2 else f"lines {where[1]}..{where[-1]}"
                self.result.problem(f"{file}, {lines_}: {len(where) - 1} more {kind} (the same cause as line "
                                    f"{where[0]})")
        counts = self.result.counts
        counts["entries"], counts["checkpoints"] = entries.count, total
        counts["uncovered_entries"] = max(0, entries.count - counts["last_checkpoint_seq"])
        counts["legacy_checkpoints"] = sum(1 for _, obj, _ in lines if is_legacy(obj))
        if counts["legacy_checkpoints"]:
            self.result.warn(f"{CHECKPOINTS}: {counts['legacy_checkpoints']} format-1 checkpoint(s) (before the "
                             "transparency log): each signs only the hash-chain head it pins, with no Merkle root "
                             "or consistency proof; verified as before")
        if self.first_entry is not None:
            self.result.facts["first_bad_entry"] = self.first_entry
        if self.first_checkpoint is not None:
            self.result.facts["first_bad_checkpoint"] = self.first_checkpoint
        if resume is not None:
            self.result.facts["incremental_from_checkpoint"] = resume.checkpoints
        if self.origin is not None:
            self.result.facts["origin"] = self.origin
        head = self._new_head(lines, entries, resume) if self.result.ok else None
        return self.result, head

    # --- where to start -------------------------------------------------------------------------

    def _resume(self) -> VerifiedHead | None:
        """The verified head to resume from, when both files still begin with the bytes verified then."""
        since = self.since
        if since is None or self.full:
            return None
        if self.archive_id is not None and since.archive_id != self.archive_id:
            return None
        if (len(self.cps) >= since.checkpoints_bytes and len(self.log) >= since.log_bytes
                and _sha(self.cps[:since.checkpoints_bytes]) == since.checkpoints_sha256
                and _sha(self.log[:since.log_bytes]) == since.log_sha256):
            self.origin = self.origin or since.origin
            return since
        return None

    def _checkpoint_lines(self, resume: VerifiedHead | None) -> list[tuple[int, Any, int]]:
        """(line number, parsed object or None, end offset) of each complete checkpoint line (after ``resume``)."""
        out: list[tuple[int, Any, int]] = []
        start, number = (resume.checkpoints_bytes, resume.checkpoints) if resume is not None else (0, 0)
        data = self.cps
        while start < len(data):
            end = data.find(b"\n", start)
            number += 1
            if end < 0:
                self.result.warn(f"{CHECKPOINTS}, line {number}: incomplete last line (an interrupted checkpoint "
                                 "write), ignored; the next checkpoint replaces it")
                break
            try:
                obj: Any = json.loads(data[start:end])
            except ValueError:
                obj = None
            out.append((number, obj, end + 1))
            start = end + 1
        return out

    @staticmethod
    def _size_of(obj: Any) -> int | None:
        try:
            if is_legacy(obj):
                return int(obj["seq"])
            if isinstance(obj, dict) and "note" in obj:
                return Checkpoint.parse(SignedNote.parse(str(obj["note"])).text).size
        except (NoteError, ValueError, TypeError):
            return None
        return None

    # --- entries --------------------------------------------------------------------------------

    def _entries(self, resume: VerifiedHead | None, needed: set[int]) -> _Entries:
        out = _Entries()
        start, prev, seq = 0, GENESIS, 0
        compact = merkle.CompactRange()
        if resume is not None:
            start, prev, seq = resume.size_bytes, resume.size_head, resume.size
            out.last_hash = prev
            compact = merkle.CompactRange(resume.size, [_crypto.unb64(h) for h in resume.frontier])
            out.count = out.base = resume.size
            out.roots[resume.size] = compact.root()
            out.heads[resume.size] = prev
            out.ends[resume.size] = start
            out.frontiers[resume.size] = compact.copy()
        elif 0 in needed:
            out.roots[0], out.heads[0], out.ends[0] = compact.root(), GENESIS, 0
        data = self.log
        out.consumed = start
        chain_broken = False
        while start < len(data):
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end
            line_no = out.count + 1
            raw = data[start:stop]
            if not raw.strip():
                self.entry_problem(line_no, "empty line")
                out.complete = False
                break
            try:
                obj = json.loads(raw)
                stored_seq, stored_hash, stored_prev = int(obj["seq"]), str(obj["hash"]), str(obj["prev"])
            except (ValueError, KeyError, TypeError):
                self.entry_problem(line_no, "not a valid audit entry")
                out.complete = False
                break
            if stored_seq != seq + 1:
                self.entry_problem(line_no, f"sequence {stored_seq} where {seq + 1} was expected (entry inserted, "
                                            "removed or reordered)")
            if stored_prev != prev:
                if not chain_broken:
                    self.entry_problem(line_no, "previous-hash link broken (an entry before it was changed, "
                                                "inserted or removed)")
                chain_broken = True
            actual = entry_hash(obj)
            if actual != stored_hash:
                self.entry_problem(line_no, "entry hash does not match its content (entry edited)")
            out.count += 1
            leaf = merkle.leaf_hash(bytes.fromhex(actual))
            compact.append(leaf)
            out.leaves.append(leaf)
            if "checkpoints" in obj:
                out.counts.append((out.count, obj["checkpoints"]))
            elif out.counts:
                out.counts.append((out.count, None))
            prev, seq = stored_hash, stored_seq
            out.last_hash = stored_hash
            start = stop + 1
            out.consumed = min(start, len(data))
            if out.count in needed:
                out.roots[out.count] = compact.root()
                out.heads[out.count] = stored_hash
                out.ends[out.count] = out.consumed
                out.frontiers[out.count] = compact.copy()
        return out

    def _range_hash(self, entries: _Entries, lo: int, hi: int) -> bytes | None:
        """MTH of leaves ``[lo, hi)`` of the log as it is (None when the log does not reach ``hi``)."""
        if lo < entries.base or hi > entries.base + len(entries.leaves) or lo >= hi:
            return None
        if self._levels is None:  # every perfect aligned subtree, once: 2n hashes
            self._levels = [entries.leaves]
            while len(self._levels[-1]) > 1:
                below = self._levels[-1]
                self._levels.append([merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        return self._subtree(lo - entries.base, hi - entries.base)

    def _subtree(self, lo: int, hi: int) -> bytes:
        assert self._levels is not None
        width = hi - lo
        if width & (width - 1) == 0 and lo % width == 0:
            return self._levels[width.bit_length() - 1][lo // width]
        k = 1
        while k << 1 < width:
            k <<= 1
        return merkle.node_hash(self._subtree(lo, lo + k), self._subtree(lo + k, hi))

    # --- checkpoints ----------------------------------------------------------------------------

    def _checkpoints(self, lines: list[tuple[int, Any, int]], resume: VerifiedHead | None,
                     entries: _Entries) -> dict[int, int]:
        """Check every checkpoint line after ``resume``; return the tree size of each checkpoint position."""
        sizes: dict[int, int] = {}
        prev: _Prev | None = None
        seen_note = False
        offset = 0
        if resume is not None:
            offset = resume.checkpoints
            sizes[offset] = resume.size
            prev = _Prev(offset, resume.size, _crypto.unb64(resume.root), True, resume.last_format == "legacy")
            seen_note = resume.last_format != "legacy"
            self.result.counts["last_checkpoint_seq"] = resume.size
            lines = [item for item in lines if item[0] > offset]
        legacy_archive: str | None = None
        for line, obj, _end in lines:
            if obj is None or not isinstance(obj, dict):
                self.structure_broken = True
                self.checkpoint_problem(line, "not a valid checkpoint line")
                continue
            if is_legacy(obj):
                if seen_note:
                    self.structure_broken = True
                    self.checkpoint_problem(line, "a format-1 checkpoint after transparency-log checkpoints "
                                                  "(downgrade: inserted or reordered)")
                legacy_archive = legacy_archive or str(obj.get("archive_id"))
                prev = self._legacy(line, obj, prev, entries, legacy_archive) or prev
                if prev is not None and prev.line == line:
                    sizes[line] = prev.size
                continue
            seen_note = True
            checked = self._note(line, obj, prev, entries)
            if checked is not None:
                sizes[line] = checked.size
                prev = checked
        return sizes

    def _legacy(self, line: int, obj: dict[str, Any], prev: _Prev | None, entries: _Entries,
                archive_id: str) -> _Prev | None:
        body = {k: obj.get(k) for k in ("archive_id", "seq", "hash", "ts")}
        try:
            seq = int(obj["seq"])
        except (ValueError, TypeError):
            self.checkpoint_problem(line, "not a valid checkpoint line")
            return None
        key = self.by_id.get(str(obj.get("key_id")))
        if key is None:
            self.checkpoint_problem(line, f"signed by key {obj.get('key_id')!r}, which is not one of the archive's "
                                          "keys (only the archive key signs checkpoints)")
        elif not key.is_valid(str(obj.get("signature")), canonical_json(body)):
            self.checkpoint_problem(line, "checkpoint signature does not verify")
        if self.archive_id is not None and obj.get("archive_id") != self.archive_id:
            self.checkpoint_problem(line, "a checkpoint of another archive")
        elif obj.get("archive_id") != archive_id:
            self.checkpoint_problem(line, "names another archive than the checkpoints before it")
        if prev is not None and seq < prev.size:
            self.structure_broken = True
            self.checkpoint_problem(line, f"covers entry {seq}, before the previous checkpoint's {prev.size} "
                                          "(checkpoints reordered)")
        matches = True
        if seq > entries.count and entries.complete:
            matches = False
            if self.repeat(CHECKPOINTS, "checkpoints cover missing entries", line):
                self.checkpoint_problem(line, f"checkpoint covers entry {seq}, which is missing (log truncated: "
                                              f"the log holds {entries.count})", first_bad_entry=entries.count + 1)
        elif seq in entries.heads and entries.heads[seq] != obj.get("hash"):
            matches = False
            if self.repeat(CHECKPOINTS, "checkpoints do not match the log", line):
                start = prev.size + 1 if prev is not None and prev.matches_log else 1
                self.checkpoint_problem(line, f"entry {seq} differs from the checkpointed one (log rewritten: "
                                              f"a change among entries {start}..{seq})", first_bad_entry=start)
        self.result.counts["last_checkpoint_seq"] = max(self.result.counts["last_checkpoint_seq"], seq)
        return _Prev(line, seq, entries.roots.get(seq) if matches else None, matches, True)

    def _note(self, line: int, obj: dict[str, Any], prev: _Prev | None, entries: _Entries) -> _Prev | None:
        try:
            record = CheckpointRecord.from_json(obj)
            note = SignedNote.parse(record.note)
            cp = Checkpoint.parse(note.text)
        except NoteError as err:
            self.checkpoint_problem(line, f"not a valid checkpoint ({err})")
            return None
        if self.origin is None:
            self.origin = cp.origin
        if cp.origin != self.origin:
            self.checkpoint_problem(line, f"origin {cp.origin!r} is not this archive's {self.origin!r}")
        key, why = verify_note(note, self.keys, cp.origin)
        if key is None:
            if self.repeat(CHECKPOINTS, f"checkpoints: {why}", line):
                self.checkpoint_problem(line, why)
        elif record.key_id != key.key_id:
            self.checkpoint_problem(line, f"names key {record.key_id!r} but is signed by the archive key "
                                          f"{key.key_id!r} (record edited)")
        if record.index != line:
            self.structure_broken = True
            self.checkpoint_problem(line, f"is checkpoint {record.index} of the file, found at line {line} "
                                          "(checkpoints removed, inserted or reordered)")
        signed = key is not None
        if prev is None:
            if record.consistency_from is not None:
                self.checkpoint_problem(line, f"proves consistency from tree size {record.consistency_from}, but "
                                              "no checkpoint comes before it (earlier checkpoints removed)")
        elif cp.size < prev.size:
            self.structure_broken = True
            self.checkpoint_problem(line, f"tree size {cp.size} is smaller than the previous checkpoint's "
                                          f"{prev.size} (checkpoints reordered)")
        elif record.consistency_from != prev.size:
            self.structure_broken = True
            self.checkpoint_problem(line, f"proves consistency from tree size {record.consistency_from}, not from the "
                                          f"previous checkpoint's {prev.size} (a checkpoint removed, inserted or "
                                          "reordered)")
        elif prev.root is not None and not merkle.verify_consistency(prev.size, cp.size, record.proof, prev.root,
                                                                      cp.root):
            self.checkpoint_problem(line, f"the consistency proof from line {prev.line} (tree size {prev.size}) does "
                                          "not verify: the two signed trees are not one append-only log")
        if signed:
            self._authentic(cp, record, prev)
        matches = self._against_log(line, cp, record, entries)
        if signed:
            self.result.counts["last_checkpoint_seq"] = max(self.result.counts["last_checkpoint_seq"], cp.size)
        return _Prev(line, cp.size, cp.root if signed else None, matches and signed, False)

    def _authentic(self, cp: Checkpoint, record: CheckpointRecord, prev: _Prev | None) -> None:
        """Remember the subtree hashes a signed checkpoint vouches for (for :meth:`_report_mismatch`).

        The root itself; its right edge when the writer hints fold to the
        signed root; the consistency proof's nodes when it verifies between two
        trusted roots (collision resistance makes each of them the hash the
        signed tree had over its range).
        """
        self.authentic.append((0, cp.size, cp.root))
        try:
            edge = merkle.CompactRange(cp.size, list(record.frontier))
        except ValueError:
            edge = None
        if edge is not None and edge.root() == cp.root:
            self.authentic.extend((lo, hi, h) for (lo, hi), h in zip(edge.ranges(), edge.hashes))
        if (prev is not None and prev.root is not None and record.consistency_from == prev.size
                and merkle.verify_consistency(prev.size, cp.size, record.proof, prev.root, cp.root)):
            ranges = merkle.consistency_ranges(prev.size, cp.size)
            self.authentic.extend((lo, hi, h) for (lo, hi), h in zip(ranges, record.proof))

    def _report_mismatch(self, entries: _Entries) -> None:
        """Report the first checkpoint whose root the log lacks, with the narrowest range of the first change.

        The first changed entry lies before the end of the shortest signed
        subtree the log no longer matches, and after every signed subtree from
        the start that it still matches.
        """
        if not self.mismatches:
            return
        line, size, place = self.mismatches[0]
        differ: list[tuple[int, int]] = []
        same: list[tuple[int, int]] = []
        for lo, hi, digest in self.authentic:
            if hi <= entries.base:
                continue  # resumed: the bytes before were verified unchanged
            (same if self._range_hash(entries, lo, hi) == digest else differ).append((lo, hi))
        end = min((hi for _, hi in differ), default=size)
        first = entries.base
        for lo, hi in sorted(same):
            if lo <= first < hi:
                first = hi
        first = min(first, end - 1)
        self.checkpoint_problem(line, f"the log's first {size} entries are not the ones this checkpoint signed "
                                      f"(edited, removed, inserted or reordered): the first change is among entries "
                                      f"{first + 1}..{end}", first_bad_entry=first + 1)
        self.result.problems.insert(place, self.result.problems.pop())  # in file order

    def _against_log(self, line: int, cp: Checkpoint, record: CheckpointRecord, entries: _Entries) -> bool:
        if cp.size > entries.count:
            if entries.complete and self.repeat(CHECKPOINTS, "checkpoints cover missing entries", line):
                self.checkpoint_problem(line, f"covers {cp.size} entries, the log holds {entries.count} (entries "
                                              "removed or the log truncated)",
                                        first_bad_entry=entries.count + 1)
            return False
        root = entries.roots.get(cp.size)
        if root is None:
            return False
        if root != cp.root:
            if self.repeat(CHECKPOINTS, "checkpoints do not match the log", line):
                self.mismatches.append((line, cp.size, len(self.result.problems)))
            return False
        hints_ok = (entries.heads.get(cp.size) == record.head and entries.ends.get(cp.size) == record.log_bytes
                    and entries.frontiers.get(cp.size) is not None
                    and tuple(entries.frontiers[cp.size].hashes) == record.frontier)
        if not hints_ok:
            self.checkpoint_problem(line, "its writer hints (head, log_bytes, frontier) do not match the log it "
                                          "signed (record edited); the next checkpoint would be refused")
        return True

    # --- the checkpoint count each entry records --------------------------------------------------

    def _entry_counts(self, entries: _Entries, sizes: dict[int, int], total: int,
                      resume: VerifiedHead | None) -> None:
        floor = resume.checkpoints if resume is not None else 0
        last = -1
        for position, count in entries.counts:
            if count is None:
                if self.repeat(LOG, "entries lack a checkpoint count", position):
                    self.entry_problem(position, "lacks the checkpoint count the entries before it carry "
                                                 "(entry replaced)")
                continue
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                self.entry_problem(position, "its checkpoint count is not a number")
                continue
            if count < last:
                if self.repeat(LOG, "entries go back in checkpoint count", position):
                    self.entry_problem(position, f"records {count} checkpoints, fewer than the entry before it "
                                                 f"({last}): entries reordered")
            last = max(last, count)
            if count > total:
                if self.repeat(LOG, "entries name missing checkpoints", position):
                    self.entry_problem(position, f"was appended after checkpoint {count}, but {CHECKPOINTS} holds "
                                                 f"{total} (checkpoint file shortened or rolled back)")
                    self.first_checkpoint = min(self.first_checkpoint or total + 1, total + 1)
                continue
            if resume is not None and count < floor:
                if self.repeat(LOG, "entries name missing checkpoints", position):
                    self.entry_problem(position, f"records {count} checkpoints, but checkpoint {floor} was verified "
                                                 "before it was appended")
                continue
            if count in sizes and sizes[count] > position - 1:
                if self.repeat(LOG, "entries are out of place for their checkpoints", position):
                    self.entry_problem(position, f"was appended after checkpoint {count}, which covers "
                                                 f"{sizes[count]} entries: entries removed or reordered before it")
            if count + 1 in sizes and sizes[count + 1] < position:
                if self.repeat(LOG, "entries are out of place for their checkpoints", position):
                    self.entry_problem(position, f"was appended before checkpoint {count + 1}, which covers only "
                                                 f"{sizes[count + 1]} entries: entries inserted or reordered")

    # --- against what this host verified before ----------------------------------------------------

    def _against_since(self, lines: list[tuple[int, Any, int]], entries: _Entries) -> None:
        since = self.since
        assert since is not None
        when = since.verified_at
        if self.archive_id is not None and since.archive_id != self.archive_id:
            self.result.problem(f"the verified-head record is of archive {since.archive_id}, not this one")
            return
        if len(lines) < since.checkpoints:
            self.result.problem(f"{CHECKPOINTS}: holds {len(lines)} checkpoints; this host verified "
                                f"{since.checkpoints} on {when} (checkpoints removed or rolled back)")
            self.first_checkpoint = min(self.first_checkpoint or len(lines) + 1, len(lines) + 1)
        elif since.checkpoints:
            end = lines[since.checkpoints - 1][2]
            start = lines[since.checkpoints - 2][2] if since.checkpoints > 1 else 0
            if _sha(self.cps[start:end]) != since.last_line_sha256:
                self.result.problem(f"{CHECKPOINTS}, line {since.checkpoints}: differs from the checkpoint this "
                                    f"host verified on {when} (checkpoints rewritten)")
                self.first_checkpoint = min(self.first_checkpoint or since.checkpoints, since.checkpoints)
        if entries.complete and entries.count < since.entries:
            self.result.problem(f"{LOG}: holds {entries.count} entries; this host verified {since.entries} on "
                                f"{when} (log truncated or rolled back)")
            self.first_entry = min(self.first_entry or entries.count + 1, entries.count + 1)
        root = entries.roots.get(since.size)
        if root is not None and _crypto.b64(root) != since.root:
            self.result.problem(f"{LOG}: the first {since.size} entries are not the ones this host verified on "
                                f"{when} (log rewritten)")
        elif entries.heads.get(since.entries, since.head) != since.head:
            self.result.problem(f"{LOG}: entries {since.size + 1}..{since.entries} are not the ones this host "
                                f"verified on {when} (log rewritten after its last checkpoint)")
        if self.result.ok and (_sha(self.log[:since.log_bytes]) != since.log_sha256
                               or _sha(self.cps[:since.checkpoints_bytes]) != since.checkpoints_sha256):
            self.result.warn("the audit files' bytes changed since this host verified them, though every entry "
                             "and checkpoint still verifies (reformatted?)")

    # --- the next verified head ---------------------------------------------------------------------

    def _new_head(self, lines: list[tuple[int, Any, int]], entries: _Entries,
                  resume: VerifiedHead | None) -> VerifiedHead | None:
        if entries.count == 0:
            return None
        if lines:
            checkpoints, obj, end = lines[-1]
            start = lines[-2][2] if len(lines) > 1 else (resume.checkpoints_bytes if resume is not None else 0)
            size = self._size_of(obj)
            last_format = "legacy" if is_legacy(obj) else "note"
            last_line_sha = _sha(self.cps[start:end])
        elif resume is not None:
            checkpoints, end, size = resume.checkpoints, resume.checkpoints_bytes, resume.size
            last_format, last_line_sha = resume.last_format, resume.last_line_sha256
        else:
            return None
        if size is None or size not in entries.frontiers:
            return None
        frontier = entries.frontiers[size]
        return VerifiedHead(
            archive_id=self.archive_id if self.archive_id is not None else
            (self.origin or "").removeprefix("investigator/archive/"),
            origin=self.origin or "", checkpoints=checkpoints, checkpoints_bytes=end,
            checkpoints_sha256=_sha(self.cps[:end]), last_line_sha256=last_line_sha, last_format=last_format,
            size=size, root=_crypto.b64(frontier.root()), frontier=[_crypto.b64(h) for h in frontier.hashes],
            size_bytes=entries.ends[size], size_head=entries.heads[size], entries=entries.count,
            log_bytes=entries.consumed, log_sha256=_sha(self.log[:entries.consumed]),
            head=entries.last_hash, verified_at="")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_log(log: bytes, checkpoints: bytes, *, keys: Iterable[_crypto.VerifyKey], archive_id: str | None = None,
               since: VerifiedHead | None = None, full: bool = False,
               verified_at: str = "") -> tuple[Verification, VerifiedHead | None]:
    """Verify the audit log ``log`` and its checkpoint file ``checkpoints`` (both files' bytes).

    ``keys`` are the archive's signing keys (its key chain): only they may
    sign checkpoints. ``archive_id`` fixes the expected origin (None: the
    first checkpoint's). With ``since`` (what this host verified before) the
    run resumes from it when both files still begin with the bytes verified
    then (``full`` rechecks everything, still comparing with ``since``).
    Returns the result, and when it is ok, the :class:`VerifiedHead` to keep
    for next time (``verified_at`` recorded in it). Never raises for what it
    finds.
    """
    result, head = _Run(log, checkpoints, keys, archive_id, since, full).run()
    if head is not None:
        head = VerifiedHead(**{**head.to_json(), "verified_at": verified_at})
    return result, head

