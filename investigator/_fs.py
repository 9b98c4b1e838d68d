"""Crash-safe file writing: write to a temporary name, fsync, rename, fsync the directory; lock files.

    >>> atomic_write(Path("out.json"), b"{}")   # doctest: +SKIP
    >>> write_new(Path("grant.json"), b"{}")    # doctest: +SKIP   (write-once: False if it exists)
    >>> with exclusive_lock(Path("locks/write.lock")):   # doctest: +SKIP
    ...     ...

Readers then see the old file or the new one, never a half-written one. Folders they create are made
with :func:`make_dirs`, which fsyncs each new folder's entry in its parent.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """Create folder ``path`` and its missing ancestors durably: each new folder's entry is fsynced in its parent.

    ``mkdir(parents=True)`` alone leaves a new folder's name to the file system's journal: after a
    crash, a file fsynced inside it (and its folder fsynced) can still be lost with the folder.
    Raises what ``mkdir`` raises (FileExistsError when a non-folder has the name, PermissionError ...).
    """
    path = Path(path)
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
        fsync_dir(folder.parent)  # also when a racing writer made it: its entry must be durable before ours


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (os.write may write fewer), then fsync it."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def write_synced(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create ``path`` (must not exist) with ``data`` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically (tmp + fsync + rename + dir fsync)."""
    path = Path(path)
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_synced(tmp, data, mode=mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


def write_new(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Create ``path`` with ``data`` durably, never replacing it; False (nothing written) when it exists.

    For write-once files (a grant, the pointer to it): ``data`` goes to a scratch file beside it
    (``.<name>.<hex>.tmp``, which the archive's state heads skip) and is fsynced, then ``os.link`` puts it
    in place (refusing an existing name, even one made by a racing writer) and the folder is fsynced. A
    crash leaves the whole file or none (at most a scratch file).
    """
    path = Path(path)
    make_dirs(path.parent)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_synced(scratch, data, mode=mode)
        try:
            os.link(scratch, path)
        except FileExistsError:
            return False
    finally:
        scratch.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def append_line(path: Path, line: bytes) -> None:
    """Append one line (``line`` ends with a newline) to an append-only file, fsynced.

    A line torn by a crash (the file not ending in a newline) is closed first, so the new line is never glued
    onto it (readers skip the torn one; the glued pair would be lost together). Creates the file when missing.
    """
    path = Path(path)
    make_dirs(path.parent)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        _write_all(fd, line)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


@contextmanager
def _flock(path: Path, operation: int) -> Iterator[None]:
    make_dirs(path.parent)
    with open(path, "a+") as handle:
        fcntl.flock(handle, operation)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def exclusive_lock(path: Path) -> AbstractContextManager[None]:
    """Hold an exclusive flock on ``path`` (created, with its folder, when missing) for the block."""
    return _flock(path, fcntl.LOCK_EX)


def shared_lock(path: Path) -> AbstractContextManager[None]:
    """Hold a shared flock on ``path`` (created when missing) for the block: many holders at once, and
    :func:`exclusive_lock_if_free` sees them."""
    return _flock(path, fcntl.LOCK_SH)


@contextmanager
def exclusive_lock_if_free(path: Path) -> Iterator[bool]:
    """Try an exclusive flock on ``path`` without waiting: the block gets True while it is held, False when
    another holder (shared or exclusive) has it."""
    make_dirs(path.parent)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
