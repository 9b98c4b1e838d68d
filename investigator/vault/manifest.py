"""Signed ingest manifests (the seed's 时间戳校验文件, "timestamp check file").

One manifest per ingest batch: source files and their SHA-256, every chunk file
with its ciphertext SHA-256, row counts, the time range, the RFC 9162 Merkle
root over the batch's record hashes, and the hash of the previous manifest.
The archive signing key signs the RFC 8785 canonical body.

    >>> m = Manifest.load(Path("batches/00000001/manifest.json"))   # doctest: +SKIP
    >>> m.verify_signature(archive_public_key)                       # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.errors import IntegrityError
from investigator.schema import canonical_json
from investigator.vault.format import ArchiveSigner
from investigator.vault.keychain import KeyChain

MANIFEST_FORMAT = "investigator-manifest/1"
GENESIS = "0" * 64


_CHUNK_FIELDS = ("kind", "partition", "chunk", "rows", "start", "end", "ts_min", "ts_max", "leaf_start", "leaf_count")


@dataclass(frozen=True)
class ChunkEntry:
    """One time chunk of one batch as a manifest lists it: its parts' files and hashes.

    Format 1 lists one file per part (``"parts": {name: {"path", "sha256"}}``); format 2 one file
    for the whole chunk (``"file": {"path", "sha256"}, "parts": [names]``), whose segments hold
    the parts (archive-format.md, "Byte layouts"). ``parts`` reads the same for both: for format 2
    every part names the chunk's one file.
    """

    batch_seq: int
    kind: str
    partition: str  # UTC day, YYYY-MM-DD
    chunk: str  # chunk start within the day, HHMMSS
    rows: int
    start: str  # chunk window [start, end) in UTC
    end: str
    ts_min: str
    ts_max: str
    leaf_start: int
    leaf_count: int
    parts: tuple[tuple[str, str, str], ...]  # (part, path relative to the archive, SHA-256 of the file)
    format: int = 1  # the chunk format (vault/format.py FORMAT_V1 / FORMAT_V2)

    @property
    def chunk_id(self) -> str:
        """Stable name of the time chunk (shared by every batch that wrote into it)."""
        return f"{self.kind}/{self.partition}/{self.chunk}"

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(p for p, _, _ in self.parts)

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """The distinct (path, SHA-256) files of the chunk: one per part (format 1), or its one file (format 2)."""
        return tuple(dict.fromkeys((path, digest) for _, path, digest in self.parts))

    def part(self, name: str) -> tuple[str, str]:
        """(path, sha256) of part ``name``. Raises IntegrityError if the manifest lists no such part."""
        for part, path, digest in self.parts:
            if part == name:
                return path, digest
        raise IntegrityError(f"chunk {self.chunk_id} of batch {self.batch_seq} has no {name!r} part")

    @classmethod
    def from_json(cls, batch_seq: int, obj: dict[str, Any]) -> "ChunkEntry":
        if "file" in obj:  # format 2: one file, parts are its segments
            path, digest = str(obj["file"]["path"]), str(obj["file"]["sha256"])
            parts = tuple((str(name), path, digest) for name in sorted(obj["parts"]))  # as format 1: by name
            return cls(batch_seq=batch_seq, parts=parts, format=2, **{k: obj[k] for k in _CHUNK_FIELDS})
        parts = tuple((name, str(v["path"]), str(v["sha256"])) for name, v in sorted(obj["parts"].items()))
        return cls(batch_seq=batch_seq, parts=parts, **{k: obj[k] for k in _CHUNK_FIELDS})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in _CHUNK_FIELDS}
        if self.format == 2:
            path, digest = self.files[0]
            out["file"] = {"path": path, "sha256": digest}
            out["parts"] = list(self.part_names)
        else:
            out["parts"] = {name: {"path": path, "sha256": digest} for name, path, digest in self.parts}
        return out


@dataclass(frozen=True)
class Manifest:
    """A signed manifest as stored: ``{"body": ..., "key_id": ..., "signature": ...}``."""

    body: dict[str, Any]
    key_id: str
    signature: str
    file_bytes: bytes
    signed_bytes: bytes  # the RFC 8785 bytes of ``body``, exactly as signed

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def chunk_format(self) -> int:
        """The chunk format of the batch's files (``chunk_format`` in the body; 1 when absent)."""
        return int(self.body.get("chunk_format", 1))

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the manifest file: what the next manifest and the audit log point at (hashed once)."""
        return hashlib.sha256(self.file_bytes).hexdigest()

    @functools.cached_property
    def chunks(self) -> list[ChunkEntry]:
        """The batch's chunk entries (parsed once: large archives list thousands)."""
        return [ChunkEntry.from_json(self.seq, c) for c in self.body.get("chunks", [])]

    def chunks_overlapping(self, kind: str | None, start: str, end: str) -> list[ChunkEntry]:
        """The chunk entries (of ``kind``, or all) whose window overlaps ``[start, end)`` (UTC timestamps as stored).

        A window load needs a few of the archive's chunks; parsing every entry of every batch
        (:attr:`chunks`) cost ~5 µs each, ~0.09 s per process for a year of hourly chunks. The
        raw entries are compared first (chunk windows are fixed-width UTC strings: string order is
        time order) and only the overlapping ones parsed, unless :attr:`chunks` already was.
        """
        if "chunks" in self.__dict__:  # parsed already (cached_property)
            return [c for c in self.chunks if (kind is None or c.kind == kind) and c.start < end and c.end > start]
        return [ChunkEntry.from_json(self.seq, c) for c in self.body.get("chunks", [])
                if (kind is None or c["kind"] == kind) and c["start"] < end and c["end"] > start]

    @classmethod
    def build(cls, body: dict[str, Any], signer: ArchiveSigner) -> "Manifest":
        body = {"format": MANIFEST_FORMAT, **body}
        signed = canonical_json(body)
        signature = signer.sign(signed)
        record = {"body": body, "key_id": signer.public.key_id, "signature": signature}
        return cls(body, signer.public.key_id, signature, canonical_json(record), signed)

    @classmethod
    def parse(cls, data: bytes, *, what: str) -> "Manifest":
        """Parse manifest bytes. Raises IntegrityError naming ``what`` if malformed.

        The file is the RFC 8785 form of ``{"body", "key_id", "signature"}``, so
        it is ``{"body":`` + the signed bytes + ``,"key_id":"…","signature":"…"}``.
        The body is parsed from exactly the signed bytes (archive-format.md,
        "Manifest"), which spares re-canonicalizing a large body to verify it.
        """
        try:
            # The tail {"key_id","signature"} is parsed alone: a large body is parsed once, not twice. The last
            # ',"key_id":' is the outer one (the body comes first; a string cannot hold an unescaped quote).
            tail_at = data.rfind(b',"key_id":')
            if tail_at < 0:
                raise ValueError("no key_id")  # not a manifest at all: "not a valid manifest" below
            tail = json.loads(b"{" + data[tail_at + 1:])
            key_id, signature = str(tail["key_id"]), str(tail["signature"])
            prefix = b'{"body":'
            suffix = canonical_json({"key_id": key_id, "signature": signature})[1:]  # '"key_id":…}'
            if not (data.startswith(prefix) and data.endswith(b"," + suffix)):
                raise IntegrityError("manifest is not in canonical form", path=what)
            signed = data[len(prefix):len(data) - len(suffix) - 1]
            body = json.loads(signed)
            if body.get("format") != MANIFEST_FORMAT:
                raise IntegrityError(f"unknown manifest format {body.get('format')!r}", path=what)
            int(body["seq"])
        except IntegrityError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError("not a valid manifest", path=what) from exc
        return cls(body, key_id, signature, data, signed)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IntegrityError(f"manifest unreadable ({exc.strerror})", path=str(path)) from exc
        return cls.parse(data, what=str(path))

    def verify_signature(self, key: "_crypto.VerifyKey | KeyChain", *, what: str = "") -> None:
        """Raise IntegrityError unless the archive key (one key, or any key of the archive's chain) signed this body."""
        if isinstance(key, KeyChain):
            key.verify(self.signature, self.signed_bytes, what=what, key_id=self.key_id)
            return
        if self.key_id != key.key_id:
            raise IntegrityError(f"signed by key {self.key_id!r}, not the archive key {key.key_id!r}", path=what)
        key.verify(self.signature, self.signed_bytes, what=what)
