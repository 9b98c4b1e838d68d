"""Snapshot manifests: what one backup run put on a target, signed as the archive and chained per target.

    >>> snap = Snapshot.parse(target.get("snapshots/000003-20261129T204600Z.json"), what="...")  # doctest: +SKIP
    >>> snap.verify_signature(snap.key_chain(transitions_bytes))                                  # doctest: +SKIP
    >>> snap.parent == previous.digest                                                            # doctest: +SKIP
    True

A snapshot manifest is the seed's 时间戳校验文件 for a copy: every archive file of the snapshot with
its SHA-256, size and the object that holds it, the tier and its retain-until, the archive's id
and genesis signing key, and the SHA-256 of the previous snapshot manifest *on the same target*
(``parent``; the first one has 64 zeros). The archive signing key (through the custody, like batch
manifests and audit checkpoints) signs the RFC 8785 bytes of the body; the file is the RFC 8785
form of ``{"body", "key_id", "signature"}`` (docs/archive-format.md, "Snapshot manifests").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from investigator import _crypto
from investigator.backup.target import SNAPSHOTS, Target, object_key
from investigator.errors import IntegrityError
from investigator.schema import canonical_json
from investigator.vault.format import ArchiveSigner
from investigator.vault.keychain import KeyChain

SNAPSHOT_FORMAT = "investigator-snapshot/1"
GENESIS = "0" * 64


@dataclass(frozen=True)
class FileEntry:
    """One archive file in a snapshot: its path, SHA-256 and size, and the object holding its bytes.

    ``object`` is the SHA-256 of the stored object: the file's own hash for a file copied as is
    (already ciphertext or metadata); for a file sealed before upload (``wrapped_key`` set:
    notes, saved searches, held bundles, which are plaintext in the archive) the hash of the
    sealed bytes.
    """

    path: str
    sha256: str
    size: int
    object: str
    wrapped_key: dict[str, Any] | None = None

    @property
    def sealed(self) -> bool:
        return self.wrapped_key is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size, "object": self.object}
        if self.wrapped_key is not None:
            out["wrapped_key"] = self.wrapped_key
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "FileEntry":
        return cls(path=str(obj["path"]), sha256=str(obj["sha256"]), size=int(obj["size"]),
                   object=str(obj["object"]), wrapped_key=obj.get("wrapped_key"))


def snapshot_key(seq: int, snapshot_id: str) -> str:
    """The object key of a snapshot manifest: ``snapshots/<seq, 6 digits>-<id>.json`` (sorts by seq)."""
    return f"{SNAPSHOTS}/{seq:06d}-{snapshot_id}.json"


def seal_aad(archive_id: str, path: str, sha256: str) -> bytes:
    """Associated data of a sealed file object: binds it to its archive, path and plaintext hash."""
    return canonical_json({"archive": archive_id, "path": path, "purpose": "backup-object", "sha256": sha256})


@dataclass(frozen=True)
class Snapshot:
    """A signed snapshot manifest as stored."""

    body: dict[str, Any]
    key_id: str
    signature: str
    file_bytes: bytes
    signed_bytes: bytes

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def parent(self) -> str:
        return str(self.body["parent"])

    @property
    def tier(self) -> str:
        return str(self.body["tier"])

    @property
    def key(self) -> str:
        """Its object key on the target."""
        return snapshot_key(self.seq, self.id)

    @property
    def digest(self) -> str:
        """SHA-256 of the manifest file: what the next snapshot's ``parent`` names."""
        return hashlib.sha256(self.file_bytes).hexdigest()

    @property
    def files(self) -> list[FileEntry]:
        return [FileEntry.from_json(f) for f in self.body["files"]]

    @classmethod
    def build(cls, body: dict[str, Any], signer: ArchiveSigner) -> "Snapshot":
        """Sign ``body`` (``format`` added) as the archive."""
        body = {"format": SNAPSHOT_FORMAT, **body}
        signed = canonical_json(body)
        signature = signer.sign(signed)
        record = {"body": body, "key_id": signer.public.key_id, "signature": signature}
        return cls(body, signer.public.key_id, signature, canonical_json(record), signed)

    @classmethod
    def parse(cls, data: bytes, *, what: str) -> "Snapshot":
        """Parse manifest bytes. Raises IntegrityError naming ``what`` when malformed or not canonical."""
        try:
            outer = json.loads(data)
            body, key_id, signature = outer["body"], str(outer["key_id"]), str(outer["signature"])
            if canonical_json(outer) != data:
                raise IntegrityError("snapshot manifest is not in canonical form", path=what)
            if body.get("format") != SNAPSHOT_FORMAT:
                raise IntegrityError(f"unknown snapshot manifest format {body.get('format')!r}", path=what)
            int(body["seq"]), str(body["id"]), str(body["parent"]), str(body["archive_id"])
            [FileEntry.from_json(f) for f in body["files"]]
        except IntegrityError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError("not a valid snapshot manifest", path=what) from exc
        return cls(body, key_id, signature, data, canonical_json(body))

    def key_chain(self, transitions: bytes) -> KeyChain:
        """The archive's signing keys from the genesis key this manifest names and the snapshot's
        ``keys/transitions.jsonl`` bytes (empty when the archive never migrated). Raises IntegrityError."""
        genesis = _crypto.VerifyKey.from_b64(str(self.body["genesis_key"]))
        return KeyChain.parse(transitions, genesis=genesis, archive_id=str(self.body["archive_id"]))

    def verify_signature(self, chain: KeyChain, *, what: str = "") -> None:
        """Raise IntegrityError unless a key of the archive's chain signed this body."""
        chain.verify(self.signature, self.signed_bytes, what=what or self.key, key_id=self.key_id)


TRANSITIONS = "keys/transitions.jsonl"


def snapshot_chain(target: Target, snap: Snapshot) -> KeyChain:
    """The archive's key chain as of ``snap``. Raises IntegrityError (a missing or damaged transitions object)."""
    entry = next((f for f in snap.files if f.path == TRANSITIONS), None)
    data = b""
    if entry is not None:
        data = target.get(object_key(entry.object))
        if _crypto.sha256_hex(data) != entry.sha256:
            raise IntegrityError(f"object {object_key(entry.object)} ({TRANSITIONS}) does not match its hash",
                                 path=target.url)
    return snap.key_chain(data)
