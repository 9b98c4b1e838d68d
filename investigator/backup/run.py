"""The backup run: copy what a target lacks, read each copy back, sign a snapshot manifest, audit it.

    >>> result = backup_run(archive, DirectoryTarget(Path("/mnt/cold")), keys=custody,
    ...                     tier=BackupTiers.default()["weekly"], actor="admin")   # doctest: +SKIP
    >>> result.snapshot.id, result.uploaded                                          # doctest: +SKIP

What is copied comes from :class:`~investigator.vault.layout.Layout`: every file of the tracked
areas, minus scratch files, the demo-only areas and **custody material** (:func:`is_custody_material`:
master key files of every custody generation and the TOTP state under ``org/totp/``), which is
backed up with the custody, apart (docs/admin.md, "Custody backups"). Objects are content-addressed
by SHA-256 (``objects/<2 hex>/<sha256>``): the archive is append-only, so a run uploads only the
files that are new or grew, and an interrupted run resumes where it stopped. Batches, indexes
and wrapped keys are ciphertext already; the few plaintext files outside the batches (case notes,
saved searches, held bundles: :data:`SEALED_ENTRIES`) are sealed with AES-256-GCM under a fresh
data key wrapped by the custody before they leave, so a target never sees plaintext. Append-only
files are copied up to their last complete line.
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from investigator import _crypto
from investigator.backup.hold import active_holds, held_paths
from investigator.backup.snapshot import GENESIS, FileEntry, Snapshot, seal_aad, snapshot_key
from investigator.backup.target import OBJECTS, SNAPSHOTS, Target, TargetError, object_key
from investigator.backup.tiers import Tier
from investigator.errors import ArchiveError, ConfigError, IntegrityError, InvestigatorError
from investigator.schema import format_ts
from investigator.vault.format import Keyring
from investigator.vault.layout import APPEND_ONLY, SCRATCH, TEMPORARY, WRITE_ONCE, Entry, Layout
from investigator.vault.store import Archive

# Custody material: never on a target (restoring needs the custody, kept apart).
CUSTODY_ENTRIES = (Entry("keys/master.json", "the master key file", "custody"),
                   Entry("keys/custody/*/master.json", "a later custody generation's key file", "custody"),
                   Entry("org/totp/*", "sealed TOTP secrets and their replay counters", "custody"))
# Plaintext kept beside the vault: sealed before upload.
SEALED_ENTRIES = (Entry("cases/*/*.jsonl", "case tags, notes and saved searches", "sealed"),
                  Entry("exports/held/*.zip", "held evidence bundles", "sealed"))
READ_BACK_ATTEMPTS = 3
SEALED_OVERHEAD = 12 + 16  # AES-GCM nonce and tag (_crypto.seal)


def is_custody_material(relative: str) -> bool:
    """True for an archive path that belongs to the custody and never goes to a target."""
    return any(e.matches(relative) for e in CUSTODY_ENTRIES)


def is_sealed(relative: str) -> bool:
    """True for an archive path holding plaintext, sealed before it goes to a target."""
    return any(e.matches(relative) for e in SEALED_ENTRIES)


@dataclass(frozen=True)
class ArchiveFile:
    """A file a snapshot takes: its relative path, SHA-256 and size as taken, and whether it is sealed.

    Files that change (append-only, replaced) are held as read (``data``); write-once files (batches,
    the bulk) only by path, hashed when listed and read again, and checked, when copied.
    """

    path: str
    sha256: str
    size: int
    sealed: bool
    data: bytes | None = None
    source: Path | None = None

    def read(self) -> bytes:
        """The bytes as taken. Raises IntegrityError when a write-once file changed since it was listed."""
        if self.data is not None:
            return self.data
        assert self.source is not None
        data = self.source.read_bytes()
        if _crypto.sha256_hex(data) != self.sha256:
            raise IntegrityError("a write-once file changed during the backup", path=self.path)
        return data


def archive_files(archive: Archive) -> Iterator[ArchiveFile]:
    """Every file a snapshot copies, in layout order (see the module docstring for what is left out).

    Call it under the archive's write lock, so no batch is committed half-way through the listing.
    """
    layout = archive.layout
    for area in Layout.tracked():
        if area.demo_only:
            continue
        top = layout.area_path(area)
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
        for path in paths:
            relative = layout.relative(path)
            entry = layout.entry_of(path)
            if entry is None or entry is TEMPORARY or entry.changes == SCRATCH or is_custody_material(relative):
                continue
            sealed = is_sealed(relative)
            if entry.changes == WRITE_ONCE:
                yield ArchiveFile(relative, _crypto.sha256_file(path), path.stat().st_size, sealed, source=path)
                continue
            data = path.read_bytes()
            if entry.changes == APPEND_ONLY and not data.endswith(b"\n"):
                data = data[:data.rfind(b"\n") + 1]  # a line being appended right now: the next run takes it
            yield ArchiveFile(relative, _crypto.sha256_hex(data), len(data), sealed, data=data)


def load_snapshots(target: Target) -> tuple[list[Snapshot], list[str]]:
    """The target's snapshot manifests in key (= seq) order, and the keys of those that do not parse."""
    snapshots, bad = [], []
    for key, _size in target.list(f"{SNAPSHOTS}/"):
        try:
            snapshots.append(Snapshot.parse(target.get(key), what=f"{target.url}/{key}"))
        except IntegrityError:
            bad.append(key)
    return snapshots, bad


@dataclass
class RunResult:
    """What a run did: the snapshot, and how many objects and bytes it uploaded or found already there."""

    snapshot: Snapshot
    uploaded: int = 0
    uploaded_bytes: int = 0
    reused: int = 0
    retried: list[str] = field(default_factory=list)
    held: int = 0  # objects under an S3 legal hold (an active legal hold's data)


def put_checked(target: Target, key: str, data: bytes, *, retain_until: datetime | None,
                retried: list[str] | None = None) -> None:
    """Write ``data`` under ``key`` and read it back until its SHA-256 matches (a few attempts). Raises TargetError."""
    want = _crypto.sha256_hex(data)
    got = ""
    for attempt in range(READ_BACK_ATTEMPTS):
        try:
            target.put(key, data, retain_until=retain_until)
            got = _crypto.sha256_hex(target.get(key))
        except TargetError:
            if attempt == READ_BACK_ATTEMPTS - 1:
                raise
            got = "unreadable"
        if got == want:
            return
        if retried is not None:
            retried.append(key)
    raise TargetError(f"read back as {got}, expected sha256 {want}, {READ_BACK_ATTEMPTS} times",
                      path=f"{target.url}/{key}")


def _latest(target: Target, archive: Archive) -> Snapshot | None:
    snapshots, bad = load_snapshots(target)
    if bad:
        raise IntegrityError(f"snapshot manifest {bad[0]} does not parse", path=target.url,
                             hint="run 'investigator backup verify' on the target")
    if not snapshots:
        return None
    last = snapshots[-1]
    if last.body["archive_id"] != archive.archive_id:
        raise ConfigError(f"{target.url} holds snapshots of archive {last.body['archive_id']}, "
                          f"not of {archive.archive_id}", hint="use one target (or prefix) per archive")
    last.verify_signature(archive.signing_keys(), what=f"{target.url}/{last.key}")
    return last


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a run (a service manager stopping the timer's unit, a shutdown, ``timeout``)."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM ends the run like Ctrl-C, so its end is audited (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def backup_run(archive: Archive, target: Target, *, keys: Keyring, tier: Tier, actor: str, case: str | None = None,
               now: datetime | None = None, progress: bool = False, check_existing: bool = False,
               on_object: Callable[[str], None] | None = None) -> RunResult:
    """Back ``archive`` up to ``target`` as a snapshot of ``tier``; audited as ``backup.run``.

    ``keys`` is the archive's unlocked custody: it signs the snapshot manifest as the archive and
    wraps the keys of sealed files. ``check_existing`` reads back and hashes objects the target
    already has instead of trusting their size (after ``backup verify --read-data`` found damage).
    Raises TargetError (naming the object), IntegrityError when the target's last snapshot is not
    this archive's, ConfigError when the tier needs a case and none is given.
    """
    when = now or datetime.now(timezone.utc)
    if tier.case_required and not case:
        raise ConfigError(f"the {tier.name} tier backs up a case: give --case")
    retain_until = tier.retain_until(when)
    details: dict[str, Any] = {"target": target.url, "tier": tier.name, "case": case,
                               "retain_until": format_ts(retain_until)}
    archive.audit.append(actor, "backup.start", target.url, details, now=when)
    try:
        with _terminate_as_interrupt():
            result = _run(archive, target, keys=keys, tier=tier, actor=actor, case=case, when=when,
                          retain_until=retain_until, progress=progress, check_existing=check_existing,
                          on_object=on_object)
    except (InvestigatorError, KeyboardInterrupt) as exc:  # Ctrl-C too: a backup.start is never left without its end
        reason = (str(exc) if isinstance(exc, InvestigatorError) else
                  "stopped (SIGTERM): run it again to resume" if isinstance(exc, _Terminated) else
                  "interrupted: run it again to resume")
        archive.audit.append(actor, "backup.run", target.url,
                             {**details, "error": "SIGTERM" if isinstance(exc, _Terminated) else type(exc).__name__,
                              "reason": reason}, outcome="error", now=when)
        raise
    snap = result.snapshot
    archive.audit.append(actor, "backup.run", target.url,
                         {**details, "snapshot": snap.id, "seq": snap.seq, "manifest_sha256": snap.digest,
                          "files": len(snap.body["files"]), "uploaded": result.uploaded,
                          "uploaded_bytes": result.uploaded_bytes, "reused": result.reused,
                          "legal_hold_objects": result.held}, now=when)
    return result


def _run(archive: Archive, target: Target, *, keys: Keyring, tier: Tier, actor: str, case: str | None,
         when: datetime, retain_until: datetime, progress: bool, check_existing: bool,
         on_object: Callable[[str], None] | None) -> RunResult:
    target.prepare()
    parent = _latest(target, archive)
    previous = {f.path: f for f in parent.files} if parent else {}
    existing = dict(target.list(f"{OBJECTS}/"))
    with archive.write_lock():  # batches and their ingest entries as of one moment (verify pairs them)
        files = list(archive_files(archive))
        # legal holds win over retention on every target: the S3 legal hold on each object concerned (backup/hold.py)
        held = held_paths(archive, active_holds(archive)) if target.enforces_lock else set()
    held_keys: list[str] = []
    entries: list[FileEntry] = []
    uploaded = reused = uploaded_bytes = 0
    retried: list[str] = []
    bar = tqdm(total=sum(f.size for f in files), unit="B", unit_scale=True, disable=not progress,
               desc=f"backup {tier.name} -> {target.url}", leave=False)
    with bar:
        for item in files:
            digest = item.sha256
            wrapped: dict[str, Any] | None = None
            blob: bytes | None = None
            if item.sealed:
                before = previous.get(item.path)
                if before is not None and before.sha256 == digest and before.sealed:
                    stored_sha, wrapped = before.object, before.wrapped_key
                else:
                    dek = _crypto.new_key()
                    wrapped = keys.wrap(dek, "backup", digest)
                    blob = _crypto.seal(dek, item.read(), aad=seal_aad(archive.archive_id, item.path, digest))
                    stored_sha = _crypto.sha256_hex(blob)
                size = item.size + SEALED_OVERHEAD
            else:
                stored_sha, size = digest, item.size
            key = object_key(stored_sha)
            have = existing.get(key) == size
            if have and check_existing:
                try:
                    have = _crypto.sha256_hex(target.get(key)) == stored_sha
                except TargetError:
                    have = False
            if have:
                reused += 1
                if target.enforces_lock:
                    target.retain(key, retain_until)
            else:
                if item.sealed and blob is None:  # a sealed object to reuse is gone or damaged: seal again
                    dek = _crypto.new_key()
                    wrapped = keys.wrap(dek, "backup", digest)
                    blob = _crypto.seal(dek, item.read(), aad=seal_aad(archive.archive_id, item.path, digest))
                    stored_sha = _crypto.sha256_hex(blob)
                    key = object_key(stored_sha)
                elif blob is None:
                    blob = item.read()
                put_checked(target, key, blob, retain_until=retain_until, retried=retried)
                existing[key] = len(blob)
                uploaded += 1
                uploaded_bytes += len(blob)
                if on_object is not None:
                    on_object(key)
            if item.path in held:
                target.legal_hold(key, True)
                held_keys.append(key)
            entries.append(FileEntry(item.path, digest, item.size, stored_sha, wrapped))
            bar.update(item.size)
    snapshot_id = f"{when.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"
    with archive.write_lock():
        # chained to the target's newest manifest as of now, not as of the start: two runs of this archive to one
        # target once both wrote seq 1 (a chain every later 'backup verify' fails); the lock orders their manifests
        parent = _latest(target, archive)
        seq = parent.seq + 1 if parent else 1
        body = {"archive_id": archive.archive_id, "genesis_key": archive.config.signing_public_key, "id": snapshot_id,
                "seq": seq, "created": format_ts(when), "tier": tier.name, "case": case, "actor": actor,
                "parent": parent.digest if parent else GENESIS, "retain_until": format_ts(retain_until),
                "files": [e.to_json() for e in entries],
                "totals": {"files": len(entries), "bytes": sum(e.size for e in entries)}}
        snap = Snapshot.build(body, keys.signing)
        put_checked(target, snapshot_key(seq, snapshot_id), snap.file_bytes, retain_until=retain_until)
        if held_keys:  # the manifest names the held objects and the keys of sealed files: held with them
            target.legal_hold(snapshot_key(seq, snapshot_id), True)
    return RunResult(snap, uploaded=uploaded, uploaded_bytes=uploaded_bytes, reused=reused, retried=retried,
                     held=len(held_keys))


def find_snapshot(target: Target, snapshot_id: str | None) -> Snapshot:
    """The snapshot ``snapshot_id`` (its id, or its seq as a number), else the newest. Raises ArchiveError."""
    snapshots, _bad = load_snapshots(target)
    if not snapshots:
        raise ArchiveError(f"{target.url}: no snapshot manifest found (expected {SNAPSHOTS}/*.json)")
    if snapshot_id is None:
        return snapshots[-1]
    for snap in snapshots:
        if snap.id == snapshot_id or str(snap.seq) == snapshot_id:
            return snap
    raise ArchiveError(f"{target.url}: no snapshot {snapshot_id!r} (see 'investigator backup list')")

