"""Restore a snapshot into an empty folder, bit for bit, resumable after a crash.

    >>> result = restore_snapshot(DirectoryTarget(Path("/mnt/cold")), Path("restored"))   # doctest: +SKIP
    >>> result.files, result.pending_sealed                                                # doctest: +SKIP
    (412, [])

``DEST`` must be missing or empty. A journal (``DEST/.investigator-restore.json``: target, snapshot id,
manifest SHA-256) is written first and removed last, so a restore that was killed resumes when run
again with the same target and snapshot (files already written are hashed and kept), and any other
non-empty ``DEST`` is refused. Before anything is written the snapshot manifest's signature is
checked against the archive's key chain as the snapshot records it (``pin``: the genesis key's
fingerprint, to check that chain against a key noted out of band); every object is hashed before
it is written (on S3, a damaged or forged newest version gives way to the locked one whose hash is
right), and every file after. Sealed files (notes, saved searches, held bundles) need the
custody to unwrap their keys: without ``keys`` they are left pending and the journal stays, so a
second run with the custody (its key file put back from the custody backup) finishes the restore.
Custody material is never in a snapshot: restore it from the custody backup (docs/admin.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from investigator import _crypto
from investigator._fs import atomic_write
from investigator.backup.run import find_snapshot
from investigator.backup.snapshot import FileEntry, Snapshot, seal_aad, snapshot_chain
from investigator.backup.target import Target, object_key
from investigator.errors import ArchiveError, IntegrityError
from investigator.vault.format import Keyring
from investigator.vault.layout import APPEND_ONLY, Layout
from investigator.vault.store import Archive
from investigator.vault.verify import RESTORE_JOURNAL, key_fingerprint

JOURNAL_NAME = RESTORE_JOURNAL  # verify tells an unfinished restore by it


@dataclass
class RestoreResult:
    """What a restore wrote: the snapshot, files written now, files already there (a resumed run), pending."""

    snapshot: Snapshot
    files: int = 0
    kept: int = 0
    pending_sealed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.pending_sealed


def _journal(target: Target, snap: Snapshot) -> bytes:
    return (json.dumps({"target": target.url, "snapshot": snap.id, "manifest_sha256": snap.digest},
                       sort_keys=True) + "\n").encode()


def _check_dest(dest: Path, journal: bytes) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise ArchiveError(f"{dest}: exists and is not a folder; restore needs a missing or empty folder")
    names = {p.name for p in dest.iterdir()}
    if not names:
        return
    marker = dest / JOURNAL_NAME
    if JOURNAL_NAME in names and marker.read_bytes() == journal:
        return  # an interrupted restore of the same snapshot from the same target: resume
    raise ArchiveError(f"{dest}: folder is not empty; restore writes only into a missing or empty folder",
                       hint="name a new folder; an interrupted restore resumes only with the same target and "
                            "--snapshot")


def restore_snapshot(target: Target, dest: Path, *, snapshot_id: str | None = None, keys: Keyring | None = None,
                     pin: str | None = None, progress: bool = False, actor: str | None = None,
                     on_file: Callable[[str], None] | None = None) -> RestoreResult:
    """Restore snapshot ``snapshot_id`` (default: the newest) of ``target`` into ``dest``.

    Raises ArchiveError for a non-empty ``dest`` (other than this restore's own journal) or an
    unknown snapshot; IntegrityError naming the object for a manifest whose signature does not verify
    or an object whose hash is not the one recorded (nothing bad is written); TargetError for an
    object missing or unreadable. With ``actor``, a complete restore is audited as ``backup.restore`` in
    the restored archive's log (one entry after the restored ones; without it the folder is bit for bit
    the snapshot).
    """
    dest = Path(dest)
    snap = find_snapshot(target, snapshot_id)
    chain = snapshot_chain(target, snap)
    if pin is not None and key_fingerprint(chain.keys[0]) != pin:
        raise IntegrityError("the snapshot's archive key is not the pinned one", path=f"{target.url}/{snap.key}")
    snap.verify_signature(chain, what=f"{target.url}/{snap.key}")
    journal = _journal(target, snap)
    _check_dest(dest, journal)
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write(dest / JOURNAL_NAME, journal)
    layout = Layout(dest)
    result = RestoreResult(snap)
    files = snap.files
    bar = tqdm(total=sum(f.size for f in files), unit="B", unit_scale=True, disable=not progress,
               desc=f"restore {snap.id} <- {target.url}", leave=False)
    with bar:
        for entry in files:
            path = layout.resolve(entry.path)
            if path.is_file() and _already(layout, path, entry):
                result.kept += 1
            elif entry.sealed and keys is None:
                result.pending_sealed.append(entry.path)
            else:
                atomic_write(path, _fetch(target, snap, entry, keys))
                result.files += 1
                if on_file is not None:
                    on_file(entry.path)
            bar.update(entry.size)
    if result.complete:
        (dest / JOURNAL_NAME).unlink()
        if actor is not None:
            Archive.open(dest).audit.append(actor, "backup.restore", target.url, {
                "snapshot": snap.id, "seq": snap.seq, "manifest_sha256": snap.digest, "files": len(files),
                "written": result.files, "kept": result.kept})
    return result


def _already(layout: Layout, path: Path, entry: FileEntry) -> bool:
    """Is ``entry`` already restored at ``path``? An append-only file (the audit log) may have grown since
    (the custody's unlock between the two passes of a restore with sealed files is audited there)."""
    declared = layout.entry_of(path)
    if declared is not None and declared.changes == APPEND_ONLY:
        with open(path, "rb") as handle:
            return _crypto.sha256_hex(handle.read(entry.size)) == entry.sha256
    return _crypto.sha256_file(path) == entry.sha256


def _fetch(target: Target, snap: Snapshot, entry: FileEntry, keys: Keyring | None) -> bytes:
    key = object_key(entry.object)
    data = target.get(key)
    where = f"{target.url}/{key} ({entry.path})"
    if _crypto.sha256_hex(data) != entry.object:
        data = target.recover(key, entry.object) or data  # S3: the locked version under a forged newer one
    if _crypto.sha256_hex(data) != entry.object:
        raise IntegrityError("object does not match its hash (damaged copy; run 'investigator backup verify "
                             "--read-data')", path=where)
    if entry.sealed:
        assert keys is not None and entry.wrapped_key is not None
        dek = keys.unwrap(entry.wrapped_key, what=where)
        data = _crypto.open_sealed(dek, data, aad=seal_aad(str(snap.body["archive_id"]), entry.path, entry.sha256),
                                   what=where)
    if _crypto.sha256_hex(data) != entry.sha256 or len(data) != entry.size:
        raise IntegrityError("restored bytes do not match the snapshot manifest", path=where)
    return data
