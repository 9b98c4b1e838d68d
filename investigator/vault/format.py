"""Byte-level names of the archive format: magics, associated data, batch names, chunk-key derivation.

    >>> batch_dir_name(7)
    '00000007'
    >>> chunk_aad("a", 1, "messages", "2026-11-18", "140000", "meta")[:30]
    b'{"archive":"a","batch":1,"chun'

docs/archive-format.md is the specification; every constant here appears there.
The :class:`Keyring` protocol is what the vault needs from key custody (wrap and
unwrap partition data keys, sign as the archive). The vault never makes or
stores master keys itself: ``investigator.custody`` implements the protocol.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Protocol

from investigator import _crypto
from investigator.errors import IntegrityError
from investigator.schema import canonical_json

# Chunk formats (archive-format.md, "Versions"). Format 1: one file per chunk part, one index file per batch.
# Format 2: one file per key-release chunk holding every part (and the chunk's dedup index rows) as separately
# keyed segments. Both stay readable; new archives write format 2, a format-1 archive keeps writing format 1
# until ``investigator upgrade`` switches it.
FORMAT_V1 = 1
FORMAT_V2 = 2
FORMAT_VERSION = FORMAT_V2  # what a new archive writes
READABLE_FORMATS = (FORMAT_V1, FORMAT_V2)
CHUNK_MAGIC = b"IVCHUNK1"
CHUNK2_MAGIC = b"IVCHUNK2"
INDEX_MAGIC = b"IVINDEX1"
# The segment of a format-2 chunk file that holds the chunk's dedup index rows; its key derives from the
# batch's index key, which no grant opens (only the key service reads it, as it read format 1's index.chk).
INDEX_SEGMENT = "index"
# A format-2 header is small JSON (segment names and lengths); anything larger is not one of ours.
_MAX_HEADER = 4096
BATCH_DIGITS = 8
# The "kind" of a batch's own index key among its partition keys; its partition is the batch's folder name.
INDEX_KEY_KIND = "index"


def chunk_aad(archive_id: str, batch_seq: int, kind: str, partition: str, chunk: str, part: str,
              version: int = FORMAT_V1) -> bytes:
    """Associated data of a chunk part (format 1: its file; format 2: its segment of the chunk file).

    Binds the ciphertext to its archive, batch, kind, partition, chunk, part and format: a
    segment moved to another place, part or format does not authenticate.
    """
    return canonical_json({"archive": archive_id, "batch": batch_seq, "chunk": chunk, "format": version,
                           "kind": kind, "part": part, "partition": partition, "purpose": "chunk"})


def index_aad(archive_id: str, batch_seq: int) -> bytes:
    """Associated data of a format-1 batch's deduplication index file."""
    return canonical_json({"archive": archive_id, "batch": batch_seq, "format": FORMAT_V1, "purpose": "index"})


def pack_chunk_file(segments: list[tuple[str, bytes]]) -> bytes:
    """A format-2 chunk file from its sealed segments, in order: magic, header length, header, segments.

        >>> data = pack_chunk_file([("meta", b"abc"), ("index", b"de")])
        >>> data[:8], unpack_chunk_file(data, what="x")["index"]
        (b'IVCHUNK2', b'de')

    The header is RFC 8785 JSON ``{"segments": [{"length": n, "part": name}, ...]}``; each
    segment is an AEAD blob (nonce, ciphertext, tag) sealed by the caller.
    """
    header = canonical_json({"segments": [{"length": len(blob), "part": name} for name, blob in segments]})
    return b"".join([CHUNK2_MAGIC, struct.pack(">I", len(header)), header, *(blob for _, blob in segments)])


def unpack_chunk_file(data: bytes, *, what: str) -> dict[str, bytes]:
    """The sealed segments of a format-2 chunk file by part name (still encrypted).

    Raises IntegrityError (naming ``what``) for a file that is not a format-2 chunk file, whose
    header does not parse, names a segment twice, or whose segment lengths do not add up to the
    file's size.
    """
    if not data.startswith(CHUNK2_MAGIC) or len(data) < len(CHUNK2_MAGIC) + 4:
        raise IntegrityError("not a format-2 chunk file", path=what)
    (size,) = struct.unpack(">I", data[8:12])
    if size > _MAX_HEADER or 12 + size > len(data):
        raise IntegrityError("chunk file header is damaged", path=what)
    try:
        listed = json.loads(data[12:12 + size])["segments"]
        names = [str(s["part"]) for s in listed]
        lengths = [int(s["length"]) for s in listed]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError("chunk file header is damaged", path=what) from exc
    if len(set(names)) != len(names) or any(n < 0 for n in lengths) or 12 + size + sum(lengths) != len(data):
        raise IntegrityError("chunk file segments do not match its header", path=what)
    out, offset = {}, 12 + size
    for name, length in zip(names, lengths):
        out[name] = data[offset:offset + length]
        offset += length
    return out


def batch_dir_name(seq: int) -> str:
    """The folder name of batch ``seq`` under ``batches/`` (zero-padded, so names sort by number)."""
    return str(seq).zfill(BATCH_DIGITS)


def chunk_key(dek: bytes, *, archive_id: str, kind: str, partition: str, chunk: str, part: str) -> bytes:
    """The AES-256 key of one part of one time chunk, derived from its data key (HKDF-SHA256).

    ``dek`` is the data key of the batch that wrote the chunk for its partition (format change 2;
    earlier batches share their partition's first key): the derivation itself is unchanged.
    """
    info = f"investigator/chunk/v1/{kind}/{partition}/{chunk}/{part}".encode()
    return _crypto.hkdf(dek, salt=archive_id.encode(), info=info)


class ArchiveSigner(Protocol):
    """Signs as the archive (Ed25519): an in-memory key, or a key inside an HSM or a transit engine."""

    @property
    def public(self) -> _crypto.VerifyKey: ...

    def sign(self, data: bytes) -> str:
        """The base64 Ed25519 signature of ``data``."""
        ...


class Keyring(Protocol):
    """What the vault needs from unlocked key custody (``investigator.custody`` provides it).

    ``wrap`` / ``unwrap`` raise IntegrityError for a wrapped key that was
    altered, moved to another partition or made under an unknown master-key
    version; ``signing`` signs manifests and audit checkpoints as the archive.
    """

    @property
    def archive_id(self) -> str: ...

    @property
    def signing(self) -> ArchiveSigner: ...

    def new_data_key(self, kind: str, partition: str) -> tuple[bytes, dict[str, Any]]: ...

    def wrap(self, dek: bytes, kind: str, partition: str) -> dict[str, Any]: ...

    def unwrap(self, wrapped: dict[str, Any], *, what: str = "") -> bytes: ...
