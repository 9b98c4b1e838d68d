"""Backup targets: where snapshots go (a directory, or an S3 bucket with Object Lock), behind one small protocol.

    >>> target = DirectoryTarget(Path("/mnt/cold/investigator"))      # doctest: +SKIP
    >>> target.put("objects/ab/ab12...", data, retain_until=None)      # doctest: +SKIP
    >>> target.get("objects/ab/ab12...") == data                       # doctest: +SKIP
    True

A target stores opaque objects under keys (``objects/<2 hex>/<sha256>``, ``snapshots/<id>.json``,
``seals/<id>.json``: docs/archive-format.md, "Snapshot manifests"). It never sees a master key, an
unwrapped key or plaintext: what reaches it is what the backup run hands it. Objects are written
once; a target refuses nothing of its own accord, so the run checks what exists before it writes.

``retain`` and ``legal_hold`` set per-object protection where the target enforces it (S3 Object
Lock, compliance mode); a directory cannot enforce either and records nothing (``enforces_lock``
is False): the snapshot manifest still says how long each snapshot is to be kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from investigator._fs import atomic_write
from investigator.errors import ConfigError, IntegrityError

OBJECTS = "objects"
SNAPSHOTS = "snapshots"
SEALS = "seals"
_KEY_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class TargetError(IntegrityError):
    """A target could not be read or written (an object missing, unreadable, refused). Names the object."""


class TargetUnreachable(TargetError):
    """The target's server did not answer at all (connection refused, timed out): not a fact about one object."""


def object_key(sha256: str) -> str:
    """The key of a content-addressed object: ``objects/<first 2 hex>/<sha256>``."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ConfigError(f"{sha256!r} is not a SHA-256 hex digest")
    return f"{OBJECTS}/{sha256[:2]}/{sha256}"


def check_key(key: str) -> str:
    """``key`` if it is a plain relative key (no ``..``, no empty part, no odd characters); ConfigError otherwise."""
    if not _KEY_RE.match(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ConfigError(f"object key {key!r} is not a plain relative key")
    return key


@runtime_checkable
class Target(Protocol):
    """What a backup needs of a place to keep copies."""

    @property
    def url(self) -> str:
        """Where it is, for messages and the audit log (never credentials)."""
        ...

    @property
    def enforces_lock(self) -> bool:
        """True when the target itself refuses to delete or overwrite an object before its retain-until."""
        ...

    def prepare(self) -> None:
        """Make the folder or bucket when missing (a bucket with Object Lock). Raises TargetError."""
        ...

    def put(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """Store ``data`` under ``key`` (whole or not at all). Raises TargetError."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``. Raises TargetError when missing or unreadable."""
        ...

    def size(self, key: str) -> int | None:
        """The size of the object under ``key``, or None when there is none."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object whose key starts with ``prefix``, in key order."""
        ...

    def recover(self, key: str, sha256: str) -> bytes | None:
        """An earlier copy of ``key`` whose SHA-256 is ``sha256`` (a locked version under a damaged or forged
        newer one), or None where the target keeps no earlier copies."""
        ...

    def retain(self, key: str, until: datetime) -> None:
        """Extend the object's retain-until (never shorten it). A no-op where not enforced."""
        ...

    def legal_hold(self, key: str, on: bool) -> None:
        """Set or clear the object's legal hold. A no-op where not enforced."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under ``key`` for good (every version), for retention. Raises TargetError when the
        target refuses (S3: a retain-until not reached, a legal hold). Nothing there is not an error."""
        ...


@dataclass(frozen=True)
class DirectoryTarget:
    """A folder (local mirror, cold disk, removable disk), created when missing.

    Objects are written with an atomic rename, so an interrupted run leaves no half object; object
    files are made read-only. A directory cannot enforce retention or holds (``enforces_lock`` False).
    """

    folder: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))

    @property
    def url(self) -> str:
        return str(self.folder)

    @property
    def enforces_lock(self) -> bool:
        return False

    def prepare(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TargetError(f"cannot create the folder ({exc.strerror})", path=self.url) from exc

    def _path(self, key: str) -> Path:
        return self.folder.joinpath(*PurePosixPath(check_key(key)).parts)

    def put(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        path = self._path(key)
        try:
            if path.exists():
                path.chmod(0o644)  # a damaged copy being replaced by a good one
            atomic_write(path, data, mode=0o444)
        except OSError as exc:
            raise TargetError(f"cannot write ({exc.strerror})", path=f"{self.url}/{key}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise TargetError("missing", path=f"{self.url}/{key}") from exc
        except OSError as exc:
            raise TargetError(f"unreadable ({exc.strerror})", path=f"{self.url}/{key}") from exc

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except OSError:
            return None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        start = self.folder / prefix.split("/")[0] if prefix else self.folder
        if not start.exists():
            return
        found = []
        for folder, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith("."):  # a temporary file of an interrupted atomic write
                    continue
                path = Path(folder) / name
                key = path.relative_to(self.folder).as_posix()
                if key.startswith(prefix):
                    found.append((key, path.stat().st_size))
        yield from sorted(found)

    def recover(self, key: str, sha256: str) -> bytes | None:
        return None  # a folder keeps one copy

    def retain(self, key: str, until: datetime) -> None:
        return None

    def legal_hold(self, key: str, on: bool) -> None:
        return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            if path.exists():
                path.chmod(0o644)
                path.unlink()
        except OSError as exc:
            raise TargetError(f"cannot delete ({exc.strerror})", path=f"{self.url}/{key}") from exc
