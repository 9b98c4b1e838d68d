"""Signed state heads: the decision files under org/ and cases/, chained, signed and pinned (issue #13, item 2).

    >>> head = write_state_head(archive, keys.signing)               # doctest: +SKIP
    >>> head.seq, head.components["revocations"]["count"]           # doctest: +SKIP
    (7, 2)
    >>> view = check_state(archive)                                  # doctest: +SKIP
    >>> view.problems                                                # doctest: +SKIP
    ['org/revocations.jsonl: holds 1 line(s) ... below state head 7 ...']

A state head is one line of ``org/state/heads.jsonl`` (docs/archive-format.md,
"State heads"): for each component of :data:`~investigator.vault.layout.STATE_COMPONENTS`
a count, the latest file and its SHA-256 and a digest of all its files; the files
added or changed since the previous head (path, SHA-256, size); the SHA-256 of
the previous head (a chain); signed by the archive key. Each head is pinned by
a ``state.head`` audit entry carrying its hash, which the next checkpoint
covers and the witnesses receive.

This module is the people-agnostic half: which files, their hashes, whether
the files extend the newest head (nothing covered removed or changed,
append-only files prefix-extended; files added or replaced since are
*pending*), whether the heads file agrees with the audit log's pins. What a
pending change means (a TOTP counter must not go back, a lock-out must not
vanish unrecorded ...) is the authority's: it registers a :data:`Judge` and a
:data:`Facts` function (``investigator.authority.state_head``).

Heads are written only where the archive key is: :meth:`AuditLog.checkpoint`
calls :func:`write_state_head` first (the archive sets ``before_checkpoint``),
so every checkpoint after a decision, by the embedded key service or the key
server, first writes the next head when the files changed. The writer takes
the files as they are; it refuses (an audited ``state.head`` error entry, no
head) when they do not extend the newest head.
"""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from investigator import _crypto
from investigator._fs import exclusive_lock, make_dirs
from investigator.errors import AuditError, IntegrityError
from investigator.schema import canonical_json, format_ts
from investigator.vault.format import ArchiveSigner
from investigator.vault.keychain import KeyChain
from investigator.vault.layout import APPEND_ONLY, REPLACED, STATE_COMPONENTS, Layout
from investigator.verification import Verification

# an investigator.vault.store.Archive (not imported: the archive imports this module to write heads)
Archive = Any

HEAD_FORMAT = "investigator-state-head/1"
PIN_ACTION = "state.head"
PIN_ACTOR = "archive"
ZERO = "0" * 64
HEADS = "org/state/heads.jsonl"

# Fault injection for the crash tests only: a child process sets this to "mid-line" (half a head line written) or
# "before-pin" (the line written, its audit pin not yet) and is killed with SIGKILL there.
CRASH_AT: str | None = None


def _crash_point(name: str) -> None:
    if CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


# --- what the files are ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FileState:
    """One covered file: SHA-256 and size of its bytes (append-only: up to the last line end), facts if any."""

    sha256: str
    size: int
    facts: Mapping[str, Any] | None = None
    lines: int | None = None  # append-only files: how many lines

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sha256": self.sha256, "size": self.size}
        if self.facts:
            out["facts"] = dict(self.facts)
        if self.lines is not None:
            out["lines"] = self.lines
        return out

    @classmethod
    def from_json(cls, obj: Any) -> "FileState":
        facts, lines = obj.get("facts"), obj.get("lines")
        return cls(str(obj["sha256"]), int(obj["size"]), dict(facts) if isinstance(facts, dict) else None,
                   int(lines) if lines is not None else None)


# (component, relative path, bytes) -> facts about the file worth keeping in the head (the authority's: e.g. a
# TOTP state's last step and lock-out), or None
Facts = Callable[[str, str, bytes], "Mapping[str, Any] | None"]
_facts: Facts | None = None


def set_facts(facts: Facts | None) -> None:
    """Install the function that extracts facts from covered files (``investigator.authority.state_head``)."""
    global _facts
    _facts = facts


@functools.lru_cache(maxsize=65536)
def component_of(relative: str) -> tuple[str, str] | None:
    """(component, how it changes) of a relative path, None for a path no component covers."""
    parts = PurePosixPath(relative).parts
    for name, patterns, changes in STATE_COMPONENTS:
        for pattern in patterns:
            bits = pattern.split("/")
            if len(bits) == len(parts) and all(fnmatchcase(p, b) for p, b in zip(parts, bits)):
                return name, changes
    return None


# path -> ((size, mtime, ctime, inode, facts installed), state): a file is hashed again whenever any of them changed
# (ctime too: a restored copy with its mtime set back still gets a new ctime, which no user can set)
_CACHE: dict[str, tuple[tuple[int, int, int, int, bool], FileState]] = {}

# Components whose files may be missing: custody material a backup never copies (backup/run.py, CUSTODY_ENTRIES),
# so a restored archive lacks them; without its TOTP state a person cannot pass an identity check at all (fail
# closed), and a new enrolment is audited.
MAY_VANISH = frozenset({"totp"})


def _file_state(path: Path, relative: str, component: str, changes: str) -> FileState | None:
    """The state of one file (cached by size, mtime, ctime and inode), None when it vanished meanwhile."""
    try:
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, _facts is not None)
        cached = _CACHE.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrityError(f"cannot read ({exc.strerror})", path=relative) from exc
    if changes == APPEND_ONLY:
        data = data[:data.rfind(b"\n") + 1]  # a line cut short by a crash is not yet part of the file
    facts = _facts(component, relative, data) if _facts is not None else None
    state = FileState(_crypto.sha256_hex(data), len(data), facts,
                      data.count(b"\n") if changes == APPEND_ONLY else None)
    _CACHE[str(path)] = (stamp, state)
    return state


def _relative(layout: Layout, path: Path) -> str:
    """``layout.relative(path)``, remembered: pathlib's relative_to cost ~1 ms per check of ~50 files."""
    key = (str(layout.root), str(path))
    found = _RELATIVE.get(key)
    if found is None:
        if len(_RELATIVE) >= 65536:
            _RELATIVE.clear()
        found = _RELATIVE[key] = layout.relative(path)
    return found


_RELATIVE: dict[tuple[str, str], str] = {}


def current_files(layout: Layout) -> dict[str, FileState]:
    """Every covered file that exists now, by relative path. Raises IntegrityError for an unreadable one."""
    out: dict[str, FileState] = {}
    files = layout.state_files()
    for name, _, changes in STATE_COMPONENTS:
        for path in files.get(name, ()):
            relative = _relative(layout, path)
            state = _file_state(path, relative, name, changes)
            if state is not None:
                out[relative] = state
    return out


def summarize(files: Mapping[str, FileState]) -> dict[str, dict[str, Any]]:
    """Per component: count (files; lines of append-only files), latest file, its hash, digest of all its files."""
    grouped: dict[str, list[str]] = {name: [] for name, _, _ in STATE_COMPONENTS}
    for relative in files:
        where = component_of(relative)
        if where is not None:
            grouped[where[0]].append(relative)
    out: dict[str, dict[str, Any]] = {}
    for name, _, changes in STATE_COMPONENTS:
        paths = sorted(grouped[name])
        digest = _crypto.sha256_hex(b"".join(f"{p}\x00{files[p].sha256}\x00{files[p].size}\n".encode()
                                             for p in paths))
        count = sum(files[p].lines or 0 for p in paths) if changes == APPEND_ONLY else len(paths)
        latest = paths[-1] if paths else ""
        out[name] = {"count": count, "latest": latest, "latest_sha256": files[latest].sha256 if latest else "",
                     "digest": digest}
    return out


# --- heads -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StateHead:
    """One signed head (a line of ``org/state/heads.jsonl``)."""

    body: Mapping[str, Any]
    key_id: str
    signature: str
    line: int

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def prev(self) -> str:
        return str(self.body["prev"])

    @property
    def audit_bytes(self) -> int:
        return int(self.body["audit_bytes"])

    @property
    def components(self) -> Mapping[str, Any]:
        return self.body["components"]

    @property
    def changes(self) -> dict[str, FileState]:
        return {str(k): FileState.from_json(v) for k, v in self.body["changes"].items()}

    @functools.cached_property
    def signed_bytes(self) -> bytes:
        """The RFC 8785 bytes of the body (what the signature and :attr:`hash` cover), computed once per head."""
        return canonical_json(dict(self.body))

    @functools.cached_property
    def hash(self) -> str:
        """SHA-256 (hex) of the RFC 8785 bytes of the body: what the next head's ``prev`` and the pin carry."""
        return _crypto.sha256_hex(self.signed_bytes)

    def to_line(self) -> bytes:
        return canonical_json({"body": dict(self.body), "key_id": self.key_id, "signature": self.signature}) + b"\n"

    def verify(self, keys: KeyChain) -> None:
        """Raise IntegrityError unless an archive key of ``keys`` signed the body."""
        keys.verify(self.signature, self.signed_bytes, what=f"{HEADS}, line {self.line}",
                    key_id=self.key_id)

    def __repr__(self) -> str:
        return f"StateHead(seq={self.seq}, hash={self.hash[:16]!r})"


@dataclass
class HeadsFile:
    """The heads of ``org/state/heads.jsonl`` in order, the problems found reading them, the bytes of whole lines."""

    heads: list[StateHead] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    length: int = 0
    present: bool = False

    @property
    def newest(self) -> StateHead | None:
        return self.heads[-1] if self.heads else None


# heads file path -> (its whole lines, the parse of them): a load parses only the heads appended since
_HEADS_CACHE: dict[str, tuple[bytes, HeadsFile]] = {}


def read_heads(layout: Layout, *, archive_id: str) -> HeadsFile:
    """Parse and chain-check every head (not the signatures; :meth:`StateHead.verify`). Never raises for content."""
    out = HeadsFile()
    try:
        data = layout.state_heads.read_bytes()
        out.present = True
    except FileNotFoundError:
        return out
    except OSError as exc:
        out.problems.append(f"{HEADS}: cannot read ({exc.strerror})")
        return out
    out.length = data.rfind(b"\n") + 1  # a last line without its newline: a write cut short, not a head
    whole = data[:out.length]
    key = f"{layout.state_heads}\x00{archive_id}"
    cached = _HEADS_CACHE.get(key)
    start = 0
    if cached is not None and not cached[1].problems and whole.startswith(cached[0]):
        out.heads, start = list(cached[1].heads), len(cached[0])
    prev = out.heads[-1].hash if out.heads else ZERO
    _parse_heads(whole, start, len(out.heads), prev, archive_id, out)
    _HEADS_CACHE[key] = (whole, HeadsFile(list(out.heads), list(out.problems), out.length, True))
    return out


def _parse_heads(whole: bytes, start: int, before: int, prev: str, archive_id: str, out: HeadsFile) -> None:
    """Parse the heads in ``whole`` from byte ``start`` (``before`` heads precede it, the last with hash ``prev``)."""
    for number, line in enumerate(whole[start:].splitlines(), start=before + 1):
        try:
            obj = json.loads(line)
            head = StateHead(dict(obj["body"]), str(obj["key_id"]), str(obj["signature"]), number)
            ok_format = head.body.get("format") == HEAD_FORMAT
            seq, link, _ = head.seq, head.prev, head.changes
            _ = head.audit_bytes, dict(head.components)
        except (ValueError, KeyError, TypeError, AttributeError):
            out.problems.append(f"{HEADS}, line {number}: not a state head")
            return
        if not ok_format or head.body.get("archive_id") != archive_id:
            out.problems.append(f"{HEADS}, line {number}: not a state head of this archive")
            return
        if seq != number or link != prev:
            out.problems.append(f"{HEADS}, line {number}: head {seq} does not follow head {number - 1} (expected seq "
                                f"{number} linked to the previous head's hash: heads removed, reordered or swapped)")
            return
        out.heads.append(head)
        prev = head.hash


def replay(heads: Sequence[StateHead]) -> tuple[dict[str, FileState], list[str]]:
    """The files the newest head covers (each head's changes applied in order) and problems (digests that differ)."""
    files: dict[str, FileState] = {}
    for head in heads:
        files.update(head.changes)
    problems = []
    if heads:
        newest = heads[-1]
        mine = summarize(files)
        for name, summary in newest.components.items():
            if name in mine and (not isinstance(summary, dict) or summary.get("digest") != mine[name]["digest"]):
                problems.append(f"{HEADS}, line {newest.line}: component {name}: its digest does not match the files "
                                "its heads list")
    return files, problems


# --- the audit log's pins ----------------------------------------------------------------------

@dataclass(frozen=True)
class LogEntry:
    """An audit entry of the tail after a head, as the checks need it (line number in the log)."""

    line: int
    seq: int
    actor: str
    action: str
    target: str
    outcome: str
    details: Mapping[str, Any]


def log_entries(log: bytes, start: int = 0, first_line: int | None = 1) -> Iterator[LogEntry]:
    """The entries of ``log`` from byte ``start`` (whole lines only; unparsable lines skipped: tlog reports them).

    Lines are numbered from ``first_line``; None numbers each by its entry's seq (for a tail read from an offset).
    """
    for number, line in enumerate(log[start:].splitlines(keepends=True), start=first_line or 1):
        if not line.endswith(b"\n"):
            break
        try:
            obj = json.loads(line)
            seq = int(obj["seq"])
            yield LogEntry(number if first_line is not None else seq, seq, str(obj.get("actor", "")),
                           str(obj.get("action", "")), str(obj.get("target", "")), str(obj.get("outcome", "")),
                           dict(obj.get("details") or {}))
        except (ValueError, KeyError, TypeError):
            continue


def _pins(entries: Sequence[LogEntry]) -> list[LogEntry]:
    return [e for e in entries if e.action == PIN_ACTION and e.outcome == "ok" and "seq" in e.details]


# --- comparing files with a head ---------------------------------------------------------------

@dataclass
class StateView:
    """The files against the newest head: problems, and what is pending (added or replaced since)."""

    newest: StateHead | None
    files: dict[str, FileState]
    covered: dict[str, FileState]
    tail: list[LogEntry]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    added: dict[str, FileState] = field(default_factory=dict)  # new files and grown append-only files
    replaced: dict[str, tuple[FileState, FileState]] = field(default_factory=dict)  # (covered, now)
    pinned: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def pending(self) -> bool:
        return bool(self.added or self.replaced)


# (archive, view) -> problems with the pending changes (the authority's judgement; never raises)
Judge = Callable[[Archive, StateView], list[str]]
_judge: Judge | None = None


def set_judge(judge: Judge | None) -> None:
    """Install the authority's judgement of pending changes (``investigator.authority.state_head``)."""
    global _judge
    _judge = judge


def _prefix_sha(path: Path, size: int) -> str | None:
    try:
        with open(path, "rb") as handle:
            return _crypto.sha256_hex(handle.read(size))
    except OSError:
        return None


def compare(layout: Layout, covered: Mapping[str, FileState], files: Mapping[str, FileState],
            view: StateView, *, seq: int) -> None:
    """Files against the covered state: removed / rewritten -> problems; added / replaced -> pending."""
    for relative, old in sorted(covered.items()):
        where = component_of(relative)
        changes = where[1] if where else REPLACED
        new = files.get(relative)
        if new is None and where is not None and where[0] in MAY_VANISH:
            view.warnings.append(f"{relative}: covered by state head {seq}, but missing (custody material a backup "
                                 "does not copy; its person needs a new enrolment)")
        elif new is None:
            view.problems.append(f"{relative}: covered by state head {seq}, but missing (a decision file deleted)")
        elif new.sha256 == old.sha256 and new.size == old.size:
            continue
        elif changes == APPEND_ONLY:
            if new.size < old.size or _prefix_sha(layout.resolve(relative), old.size) != old.sha256:
                view.problems.append(f"{relative}: state head {seq} covers its first {old.size} bytes; they are "
                                     f"{'cut to ' + str(new.size) if new.size < old.size else 'changed'} (lines "
                                     "removed, or an older copy restored)")
            else:
                view.added[relative] = new
        elif changes == REPLACED:
            view.replaced[relative] = (old, new)
        else:
            view.problems.append(f"{relative}: changed since state head {seq} covered it (a write-once decision "
                                 "file replaced)")
    for relative, new in files.items():
        if relative not in covered:
            view.added[relative] = new


def _read_log(archive: Archive, start: int) -> tuple[bytes, int]:
    """The audit log from byte ``start - 1`` on (the whole log for 0) and the offset it starts at (cheap).

    The byte before ``start`` is included, so that the caller can check a line
    ends there; nothing before it is read or held (the log only grows).
    """
    base = max(start - 1, 0)
    try:
        with open(archive.audit.log_path, "rb") as handle:
            handle.seek(base)
            return handle.read(), base
    except FileNotFoundError:
        return b"", base


def check_state(archive: Archive, *, log: bytes | None = None, judge: bool = True) -> StateView:
    """The files against the newest head, the heads against the audit log's pins; never raises for content.

    Cheap: the newest head's signature, the audit log's tail after it, and the
    covered files (hashed once per process while unchanged). ``judge``: also ask
    the installed :data:`Judge` about pending changes.
    """
    layout = archive.layout
    heads = read_heads(layout, archive_id=archive.archive_id)
    base = 0  # the offset in the log of log[0]
    if log is None:
        log, base = _read_log(archive, heads.newest.audit_bytes if heads.newest else 0)
    view = StateView(heads.newest, {}, {}, [], problems=list(heads.problems))
    try:
        view.files = current_files(layout)
    except IntegrityError as exc:
        view.problems.append(str(exc))
        return view
    if view.problems:
        return view
    newest = heads.newest
    if newest is None:
        pins = _pins(list(log_entries(log))) if b'"state.head"' in log else []
        if pins:
            view.problems.append(f"{HEADS}: {'missing' if not heads.present else 'empty'}, but the audit log pins "
                                 f"state head {pins[-1].details.get('seq')} (audit/log.jsonl line {pins[-1].line}): "
                                 "the state heads were deleted")
        elif view.files:  # (no decision file at all: nothing to cover, nothing to say)
            view.warnings.append(f"{HEADS}: no state head yet (the next decision by the key service writes the first, "
                                 "from the files as they are)")
            view.added = dict(view.files)
        view.tail = list(log_entries(log))
        return view
    try:
        newest.verify(archive.signing_keys())
    except IntegrityError as exc:
        view.problems.append(f"{HEADS}, line {newest.line}: {exc}")
        return view
    start = newest.audit_bytes
    if start > base + len(log) or (start and log[start - 1 - base:start - base] != b"\n"):
        view.problems.append(f"{HEADS}, line {newest.line}: state head {newest.seq} was written when the audit log "
                             f"held {start} bytes; the log no longer ends a line there (log rolled back or rewritten)")
        return view
    # a tail read does not know how many lines precede it: its entries are numbered by seq (entry n is line n)
    first_line = log.count(b"\n", 0, start) + 1 if base == 0 else None
    view.tail = list(log_entries(log, start - base, first_line))
    for pin in _pins(view.tail):
        seq = pin.details.get("seq")
        where = f"audit/log.jsonl line {pin.line}"
        if seq == newest.seq and pin.details.get("sha256") == newest.hash:
            view.pinned = True
        elif isinstance(seq, int) and seq > newest.seq:
            view.problems.append(f"{HEADS}: the audit log pins state head {seq} ({where}), but the file's newest is "
                                 f"head {newest.seq} (heads removed, or an older org/ restored)")
        else:
            view.problems.append(f"{HEADS}, line {newest.line}: head {newest.seq} is not the head the audit log pins "
                                 f"at {where} (a head replaced or swapped)")
    if not view.pinned:
        view.warnings.append(f"{HEADS}, line {newest.line}: state head {newest.seq} is not pinned in the audit log "
                             "yet (a writer stopped after writing it; the next one pins it)")
    covered, problems = _replayed(layout, archive.archive_id, heads)
    view.covered = covered
    view.problems.extend(problems)
    compare(layout, covered, view.files, view, seq=newest.seq)
    if judge and _judge is not None and view.ok:
        view.problems.extend(_judge(archive, view))
    return view


# --- writing -------------------------------------------------------------------------------------

def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        if CRASH_AT == "mid-line":
            handle.write(data[:len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
            _crash_point("mid-line")
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _pin(archive: Archive, head: StateHead, now: datetime) -> None:
    archive.audit.append(PIN_ACTOR, PIN_ACTION, HEADS, {"seq": head.seq, "sha256": head.hash,
                                                        "changes": len(head.changes)}, now=now)


def write_state_head(archive: Archive, signer: ArchiveSigner, *, now: datetime | None = None) -> StateHead | None:
    """Write (and pin) the next head when the files changed since the newest; return the newest head.

    Called by :meth:`AuditLog.checkpoint` before it signs (the archive sets
    ``before_checkpoint``), so it runs only where the archive key is. Without
    an installed :data:`Judge` (no authority in this process), a head whose
    replaced files changed is left to a writer that has one. When the files do not extend the newest head, or the heads do not
    agree with the audit log, no head is written: a ``state.head`` entry with
    outcome ``error`` records why (the caller's checkpoint then covers it) and
    None is returned. An unpinned newest head (a writer killed after writing
    it) is pinned first. Raises AuditError only when the audit log cannot be
    appended to.
    """
    when = now or datetime.now(timezone.utc)
    layout = archive.layout
    with exclusive_lock(layout.state_lock):
        heads_path = layout.state_heads
        if heads_path.exists():
            length = read_heads(layout, archive_id=archive.archive_id).length
            if heads_path.stat().st_size != length:
                os.truncate(heads_path, length)  # a head line cut short by a crash: never pinned, never read
        view = check_state(archive)
        if not view.ok:
            more = f" (and {len(view.problems) - 1} more)" if len(view.problems) > 1 else ""
            archive.audit.append(PIN_ACTOR, PIN_ACTION, HEADS, {"rule": "state.extends",
                                                                "reason": view.problems[0] + more},
                                 outcome="error", now=when)
            return None
        newest = view.newest
        if newest is not None and not view.pinned:
            _pin(archive, newest, when)
        if newest is None and not view.files:
            return None  # nothing to cover yet: the first decision file gets the first head
        if newest is not None and not view.pending:
            return newest
        if view.replaced and _judge is None:
            return newest  # whether a replaced file went back is the authority's to judge: left to a writer with it
        changes = {**view.added, **{p: new for p, (_, new) in view.replaced.items()}}
        files = {**view.covered, **changes}
        components = summarize(files)
        body = {"format": HEAD_FORMAT, "archive_id": archive.archive_id, "seq": (newest.seq + 1) if newest else 1,
                "prev": newest.hash if newest else ZERO, "created": format_ts(when),
                "audit_bytes": _log_length(archive), "components": components,
                "changes": {p: s.to_json() for p, s in sorted(changes.items())}}
        head = StateHead(body, signer.public.key_id, signer.sign(canonical_json(body)),
                         (newest.line + 1) if newest else 1)
        make_dirs(layout.state_dir)
        try:
            _append(heads_path, head.to_line())
        except OSError as exc:
            raise AuditError(f"{HEADS}: cannot append ({exc.strerror})") from exc
        _crash_point("before-pin")
        _pin(archive, head, when)
        return head


def _log_length(archive: Archive) -> int:
    """The audit log's length in whole lines (the tail a head's pin and later entries are read from)."""
    try:
        size = archive.audit.log_path.stat().st_size
    except FileNotFoundError:
        return 0
    with open(archive.audit.log_path, "rb") as handle:
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return size
        handle.seek(0)
        data = handle.read(size)
    return data.rfind(b"\n") + 1


# (archive, report) -> None: the whole check `verify` runs (the authority's, with the audit cross-check)
Verifier = Callable[[Archive, Verification], None]
_verifier: Verifier | None = None


def set_verifier(verifier: Verifier | None) -> None:
    """Install the full state check ``investigator verify`` runs (``investigator.authority.state_head``)."""
    global _verifier
    _verifier = verifier


def verify_heads(archive: Archive, report: Verification) -> None:
    """Add the state heads' problems to ``report``: the installed verifier's, else files vs heads vs pins only."""
    if _verifier is not None:
        _verifier(archive, report)
        return
    try:
        view = check_state(archive, judge=False)
    except OSError as exc:
        report.problem(f"{HEADS}: cannot be checked ({exc.strerror})")
        return
    for problem in view.problems:
        report.problem(problem)
    for warning in view.warnings:
        report.warn(warning)


def check_files(archive: Archive, relatives: Sequence[str] = (), *, prefix: str = "") -> list[str]:
    """The cheap check of a few files against the newest head (the heads' signature and pins are ``check_state``'s).

    For a reader that loads one decision file often (revocations on every key
    release; a request's approvals, every file under ``prefix``): removed,
    rewritten or cut below the newest head is a problem.
    """
    layout = archive.layout
    heads = read_heads(layout, archive_id=archive.archive_id)
    if heads.problems:
        return list(heads.problems)
    if heads.newest is None:
        return []
    covered = _covered(layout, archive.archive_id, heads)
    mine = {r: covered[r] for r in relatives if r in covered}
    if prefix:
        mine.update((r, state) for r, state in covered.items() if r.startswith(prefix))
    files = {}
    for relative in mine:
        where = component_of(relative)
        state = _file_state(layout.resolve(relative), relative, *where) if where else None
        if state is not None:
            files[relative] = state
    view = StateView(heads.newest, files, mine, [])
    compare(layout, mine, files, view, seq=heads.newest.seq)
    if view.ok and view.replaced and _judge is not None:
        view.problems.extend(_judge(archive, view))
    return view.problems


def _covered(layout: Layout, archive_id: str, heads: HeadsFile) -> dict[str, FileState]:
    return _replayed(layout, archive_id, heads)[0]


def _replayed(layout: Layout, archive_id: str, heads: HeadsFile) -> tuple[dict[str, FileState], list[str]]:
    """:func:`replay` of ``heads``, kept per heads file while its newest head is the same (a copy each time).

    The heads are a hash chain (``read_heads`` checked every link), so the newest
    head's hash names the whole list: replaying every head's changes on every
    check cost time in the number of heads, which grows by one per decision.
    """
    newest = heads.newest
    key = f"{layout.state_heads}\x00{archive_id}"
    cached = _COVERED_CACHE.get(key)
    if newest is not None and cached is not None and cached[0] == newest.hash:
        return dict(cached[1]), list(cached[2])
    files, problems = replay(heads.heads)
    if newest is not None:
        _COVERED_CACHE[key] = (newest.hash, dict(files), list(problems))
    return files, problems


# heads file -> (hash of its newest head, the files the heads cover, the problems replaying them found)
_COVERED_CACHE: dict[str, tuple[str, dict[str, FileState], list[str]]] = {}


def newest_head_hash(layout: Layout, *, archive_id: str) -> str | None:
    """The hash of the newest head in the file (unverified; what the witnesses receive), None for none."""
    newest = read_heads(layout, archive_id=archive_id).newest
    return newest.hash if newest else None


__all__ = ["CRASH_AT", "FileState", "HEAD_FORMAT", "HEADS", "HeadsFile", "Judge", "LogEntry", "PIN_ACTION",
           "StateHead", "StateView", "check_files", "check_state", "compare", "component_of", "current_files", "log_entries",
           "newest_head_hash", "read_heads", "replay", "set_facts", "set_judge", "set_verifier", "verify_heads", "summarize", "write_state_head"]
