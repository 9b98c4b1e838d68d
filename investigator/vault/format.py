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

from typing import Any, Protocol

from investigator import _crypto
from investigator.schema import canonical_json

FORMAT_VERSION = 1
CHUNK_MAGIC = b"IVCHUNK1"
INDEX_MAGIC = b"IVINDEX1"
BATCH_DIGITS = 8
# The "kind" of a batch's own index key among its partition keys; its partition is the batch's folder name.
INDEX_KEY_KIND = "index"


def chunk_aad(archive_id: str, batch_seq: int, kind: str, partition: str, chunk: str, part: str) -> bytes:
    """Associated data of a chunk part file: binds it to its archive, batch, kind, partition, chunk and part."""
    return canonical_json({"archive": archive_id, "batch": batch_seq, "chunk": chunk, "format": FORMAT_VERSION,
                           "kind": kind, "part": part, "partition": partition, "purpose": "chunk"})


def index_aad(archive_id: str, batch_seq: int) -> bytes:
    """Associated data of a batch's deduplication index file."""
    return canonical_json({"archive": archive_id, "batch": batch_seq, "format": FORMAT_VERSION, "purpose": "index"})


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
