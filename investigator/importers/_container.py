"""Safe reading of export containers: single files, zip archives and folders.

Exports arrive as one file, a zip (Slack, WhatsApp "export chat") or an unpacked
folder. Every importer reads through :class:`Container`, which refuses hostile
input before any byte is decompressed and never writes anything to disk:

    >>> box = Container.open("export.zip")          # doctest: +SKIP
    >>> [m for m in box.members() if m.endswith(".json")][:2]    # doctest: +SKIP
    ['channels.json', 'general/2016-01-01.json']
    >>> data = box.read("channels.json")             # doctest: +SKIP

Refused (always with :class:`~investigator.errors.ImportFormatError`): zip entries
with ``..`` or absolute paths, symlinks (zip mode bits or links in a folder),
duplicate or encrypted zip entries, members over ``MAX_MEMBER_BYTES``, totals over
``MAX_TOTAL_BYTES``, and members whose compression ratio exceeds ``MAX_RATIO``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from investigator.errors import ImportFormatError

# Caps, documented in docs/formats.md ("Limits"). They bound memory and refuse
# zip bombs before decompression; real exports are far below them.
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_MEMBER_BYTES = 512 * 1024**2
MAX_RATIO = 200
# Tiny members can legitimately compress very well (a file of spaces); the ratio
# rule only bites where a bomb could do harm.
RATIO_MIN_BYTES = 1024**2
MAX_LINE_BYTES = 16 * 1024**2
HEAD_BYTES = 64 * 1024

_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unsafe_name(name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or "\x00" in name:
        return True
    if len(name) > 1 and name[1] == ":":  # a Windows drive letter
        return True
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(part == ".." for part in parts)


class Container:
    """A file, zip or folder, read member by member under the caps above.

    Members are ``/``-separated relative names. A plain file is a container with
    one member, its own name. Use :meth:`open`; the constructor is internal.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind  # "file", "zip" or "dir"
        self.name = path.name
        self._zip: zipfile.ZipFile | None = None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._files: dict[str, Path] = {}
        self._sha: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        self.read_members: list[str] = []

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> Container:
        """Open ``path`` as a container.

        Raises ImportFormatError if the path is missing, a symlink inside a folder,
        or a hostile / unreadable zip.
        """
        path = Path(path)
        if not path.exists():
            raise ImportFormatError(path.name, "", "an existing file or folder")
        if path.is_dir():
            box = cls(path, "dir")
            box._scan_dir()
            return box
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic in (b"PK\x03\x04", b"PK\x05\x06"):
            box = cls(path, "zip")
            box._scan_zip()
            return box
        box = cls(path, "file")
        box._files[path.name] = path
        return box

    def _scan_dir(self) -> None:
        root = self.path
        for current, dirs, files in os.walk(root, followlinks=False):
            for entry in [*dirs, *files]:
                full = Path(current) / entry
                if full.is_symlink():
                    rel = full.relative_to(root).as_posix()
                    raise ImportFormatError(self.name, rel, "a regular file or folder, not a symlink")
            for entry in files:
                full = Path(current) / entry
                mode = full.lstat().st_mode
                if not stat.S_ISREG(mode):
                    rel = full.relative_to(root).as_posix()
                    raise ImportFormatError(self.name, rel, "a regular file")
                rel = full.relative_to(root).as_posix()
                self._files[rel] = full

    def _scan_zip(self) -> None:
        try:
            archive = zipfile.ZipFile(self.path)
            infos = archive.infolist()
        except Exception as exc:  # zipfile raises many types on corrupt input; all mean "not readable"
            raise ImportFormatError(self.name, "", "a readable zip archive") from exc
        total = 0
        for info in infos:
            name = info.filename
            where = f"zip:{name}" if not _unsafe_name(name) else "zip entry"
            if _unsafe_name(name):
                raise ImportFormatError(self.name, where, "relative member names without '..' or absolute paths")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ImportFormatError(self.name, where, "regular files, not symlinks")
            if info.flag_bits & 0x1:
                raise ImportFormatError(self.name, where, "unencrypted zip members")
            if info.is_dir():
                continue
            if name in self._infos:
                raise ImportFormatError(self.name, where, "unique member names")
            if info.file_size > MAX_MEMBER_BYTES:
                raise ImportFormatError(self.name, where, f"members of at most {MAX_MEMBER_BYTES} bytes uncompressed")
            if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise ImportFormatError(self.name, where, f"a compression ratio of at most {MAX_RATIO}:1 (zip bomb?)")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise ImportFormatError(self.name, where, f"at most {MAX_TOTAL_BYTES} bytes uncompressed in total")
            self._infos[name] = info
        self._zip = archive

    # -- reading ------------------------------------------------------------------------------

    def members(self) -> list[str]:
        """Relative names of every regular member, sorted."""
        if self.kind == "zip":
            return sorted(self._infos)
        return sorted(self._files)

    def has(self, member: str) -> bool:
        """Whether ``member`` exists."""
        return member in self._infos or member in self._files

    def size(self, member: str) -> int:
        """Uncompressed size of ``member`` in bytes."""
        if self.kind == "zip":
            return self._infos[member].file_size
        return self._files[member].stat().st_size

    def read(self, member: str, *, limit: int = MAX_MEMBER_BYTES) -> bytes:
        """All bytes of ``member``, refusing more than ``limit``.

        Raises ImportFormatError if the member is missing, too large, or corrupt.
        """
        self.read_members.append(member)
        if self.kind == "zip":
            assert self._zip is not None
            info = self._infos.get(member)
            if info is None:
                raise ImportFormatError(self.name, f"zip:{member}", "this member in the archive")
            if info.file_size > limit:
                raise ImportFormatError(self.name, f"zip:{member}", f"a member of at most {limit} bytes")
            try:
                with self._zip.open(info) as handle:
                    # Declared sizes can lie: never read past the cap.
                    data = handle.read(limit + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError) as exc:
                raise ImportFormatError(self.name, f"zip:{member}", "an intact zip member") from exc
            except RuntimeError as exc:  # encrypted members surface as RuntimeError
                raise ImportFormatError(self.name, f"zip:{member}", "an unencrypted zip member") from exc
            except Exception as exc:  # other decompressors (lzma, bz2) have their own error types
                raise ImportFormatError(self.name, f"zip:{member}", "an intact zip member") from exc
            if len(data) > limit:
                raise ImportFormatError(self.name, f"zip:{member}", f"a member of at most {limit} bytes")
            return data
        path = self._files.get(member)
        if path is None:
            raise ImportFormatError(self.name, member, "this file in the export")
        if path.stat().st_size > limit:
            raise ImportFormatError(self._file_name(member), "", f"a file of at most {limit} bytes")
        data = path.read_bytes()
        self._sha[member] = hashlib.sha256(data).hexdigest()
        self._sizes[member] = len(data)
        return data

    def iter_lines(self, member: str) -> Iterator[tuple[int, bytes]]:
        """``(line_number, raw_line)`` of ``member`` (1-based, newline stripped).

        Raises ImportFormatError for a line longer than MAX_LINE_BYTES.
        """
        data = self.read(member)
        start = 0
        number = 0
        length = len(data)
        while start < length:
            end = data.find(b"\n", start)
            if end < 0:
                end = length
            number += 1
            if end - start > MAX_LINE_BYTES:
                raise ImportFormatError(self._file_name(member), self.position(member, f"line {number}"),
                                        f"lines of at most {MAX_LINE_BYTES} bytes")
            yield number, data[start:end]
            start = end + 1

    def split_lines(self, data: bytes, member: str) -> tuple[list[bytes], int | None]:
        """The lines :meth:`iter_lines` yields for ``data`` (the bytes of ``member``), as one list,
        and the number of the first line longer than MAX_LINE_BYTES (None if there is none).

        Nothing is raised: a caller that walks the lines raises :meth:`long_line`
        on reaching that number, where iter_lines would have raised.
        """
        lines = data.split(b"\n")
        if not lines[-1]:
            lines.pop()  # iter_lines yields no empty last line
        too_long = None
        if len(data) > MAX_LINE_BYTES:
            too_long = next((n for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_BYTES), None)
        return lines, too_long

    def long_line(self, member: str, number: int) -> ImportFormatError:
        """The error :meth:`iter_lines` raises for line ``number`` of ``member``."""
        return ImportFormatError(self._file_name(member), self.position(member, f"line {number}"),
                                 f"lines of at most {MAX_LINE_BYTES} bytes")

    # -- provenance ---------------------------------------------------------------------------

    def _file_name(self, member: str) -> str:
        if self.kind == "dir":
            return PurePosixPath(member).name
        return self.name

    def provenance(self, member: str) -> tuple[str, str]:
        """``(source_file, source_sha256)`` for rows read from ``member``."""
        if self.kind == "dir":
            if member not in self._sha:
                self._sha[member] = sha256_file(self._files[member])
            return PurePosixPath(member).name, self._sha[member]
        if "" not in self._sha:
            self._sha[""] = sha256_file(self.path)
        return self.name, self._sha[""]

    def position(self, member: str, inner: str) -> str:
        """A ``source_position``: ``zip:<member><inner>`` in zips, ``<member><inner>`` in folders."""
        if self.kind == "zip":
            sep = " " if inner.startswith("line") else ""
            return f"zip:{member}{sep}{inner}"
        if self.kind == "dir":
            sep = " " if inner.startswith("line") else ""
            return f"{member}{sep}{inner}"
        return inner

    def error(self, member: str, inner: str, expected: str) -> ImportFormatError:
        """An ImportFormatError naming the file and position of ``member``/``inner``."""
        return ImportFormatError(self._file_name(member), self.position(member, inner), expected)

    def source_files(self, fmt: str) -> list[tuple[str, str, int, str]]:
        """``(name, sha256, size, format)`` of each file actually read."""
        if self.kind == "dir":
            out = []
            for member in dict.fromkeys(self.read_members):
                name, sha = self.provenance(member)
                out.append((name, sha, self._files[member].stat().st_size, fmt))
            return out
        name, sha = self.provenance("")
        return [(name, sha, self.path.stat().st_size, fmt)]

    def close(self) -> None:
        """Release the zip handle, if any."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a regular file (empty for folders)."""
    if path.is_dir():
        return b""
    with path.open("rb") as handle:
        return handle.read(size)


def member_names(path: Path, head: bytes) -> list[str] | None:
    """Member names of a zip or folder (safety-checked), or None for a plain file.

    Raises ImportFormatError for a hostile container, so detection refuses it early.
    """
    if not (path.is_dir() or head.startswith((b"PK\x03\x04", b"PK\x05\x06"))):
        return None
    box = Container.open(path)
    try:
        return box.members()
    finally:
        box.close()
