"""Audit checkpoints as signed notes (C2SP tlog-checkpoint over C2SP signed-note), and their file lines.

    >>> cp = Checkpoint(origin_of("498454f8"), 3, bytes(32), "2026-11-29T12:00:00.000000Z")   # doctest: +SKIP
    >>> note = sign_checkpoint(cp, archive_signer)                                            # doctest: +SKIP
    >>> key, problem = verify_note(SignedNote.parse(note), archive.signing_keys().keys, cp.origin)  # doctest: +SKIP

A checkpoint is the archive's signature over the head of the audit log's Merkle
tree (docs/archive-format.md, "Audit log"): the note text is

    investigator/archive/<archive id>     origin (also the signature's key name)
    <tree size>                           decimal, no leading zeros
    <root hash>                           base64 of the RFC 9162 root over the first <tree size> entries
    time <UTC time>                       one extension line: when the archive signed it

followed by a blank line and one signature line per signer, ``— <key name>
base64(4-byte key ID || Ed25519 signature)``, the key ID being
SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4] (signed-note,
"Ed25519 signatures"). Only the archive's keys (the key chain) count:
signatures by any other key are ignored, as the signed-note spec asks, and a
note without a valid archive signature fails.

Each line of ``audit/checkpoints.jsonl`` (a :class:`CheckpointRecord`) holds
the note and what makes the file a chain: its 1-based ``index``, the
consistency proof from the checkpoint before it, and writer hints (the tree's
right edge, the last covered entry's hash and byte offset) that let the next
checkpoint be written without rereading the log. Nothing outside the note is
signed; everything outside it is checked against the note or the log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from investigator import _crypto
from investigator.errors import AuditError
from investigator.vault.format import ArchiveSigner

ORIGIN_PREFIX = "investigator/archive/"
EM_DASH = "\u2014"
ED25519 = 0x01  # signed-note signature type of plain Ed25519 note signatures
RECORD_FORMAT = "tlog-checkpoint"
TIME_PREFIX = "time "


class NoteError(AuditError):
    """A note or checkpoint line that does not parse (the message names what is wrong, never key bytes)."""


def origin_of(archive_id: str) -> str:
    """The checkpoint origin (and signature key name) of archive ``archive_id``."""
    return ORIGIN_PREFIX + (archive_id or "unnamed")


def note_key_id(name: str, key: _crypto.VerifyKey) -> bytes:
    """signed-note key ID of Ed25519 ``key`` under key name ``name`` (4 bytes)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + key.raw).digest()[:4]


def vkey(name: str, key: _crypto.VerifyKey) -> str:
    """The signed-note verifier key text ``name+hex(key ID)+base64(0x01 || key)`` (for other tools)."""
    return f"{name}+{note_key_id(name, key).hex()}+{_crypto.b64(bytes([ED25519]) + key.raw)}"


@dataclass(frozen=True)
class Checkpoint:
    """The note text of a checkpoint: origin, tree size, root hash and the signing time."""

    origin: str
    size: int
    root: bytes
    time: str

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_crypto.b64(self.root)}\n{TIME_PREFIX}{self.time}\n"

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        """The checkpoint in note text ``text`` (tlog-checkpoint, "Note text"). Raises NoteError."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("checkpoint text needs origin, size and root hash on non-empty lines")
        origin, size_text, root_text, *extensions = lines
        if not size_text.isdigit() or not size_text.isascii() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError("checkpoint tree size is not a decimal number without leading zeros")
        try:
            root = _crypto.unb64(root_text)
        except ValueError as exc:
            raise NoteError("checkpoint root hash is not base64") from exc
        if len(root) != 32:
            raise NoteError("checkpoint root hash is not 32 bytes")
        times = [e[len(TIME_PREFIX):] for e in extensions if e.startswith(TIME_PREFIX)]
        if len(times) != 1 or len(extensions) != 1:
            raise NoteError("checkpoint needs exactly one extension line, 'time <UTC time>'")
        return cls(origin, int(size_text), root, times[0])


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{EM_DASH} {self.name} {_crypto.b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class SignedNote:
    """A signed note: its text (ending in a newline) and its signature lines (signed-note, "Format")."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def serialize(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def parse(cls, note: str, *, max_signatures: int = 16) -> "SignedNote":
        """Parse ``note``. Raises NoteError for anything the signed-note format does not allow."""
        if any(ord(c) < 0x20 and c != "\n" for c in note):
            raise NoteError("note holds control characters")
        cut = note.rfind("\n\n")
        if cut < 0 or not note.endswith("\n"):
            raise NoteError("note has no blank line before its signatures")
        text, block = note[:cut + 1], note[cut + 2:]
        signatures = []
        for line in block[:-1].split("\n"):
            prefix = EM_DASH + " "
            parts = line[len(prefix):].split(" ") if line.startswith(prefix) else []
            if len(parts) != 2 or not parts[0] or "+" in parts[0]:
                raise NoteError("note signature line is not '\u2014 <key name> <base64>'")
            try:
                raw = _crypto.unb64(parts[1])
            except ValueError as exc:
                raise NoteError("note signature is not base64") from exc
            if len(raw) < 5:
                raise NoteError("note signature is too short")
            signatures.append(NoteSignature(parts[0], raw[:4], raw[4:]))
        if not signatures or len(signatures) > max_signatures:
            raise NoteError(f"note carries {len(signatures)} signatures (1 to {max_signatures} allowed)")
        return cls(text, tuple(signatures))


def sign_checkpoint(checkpoint: Checkpoint, signer: ArchiveSigner) -> str:
    """The signed note of ``checkpoint``, signed by ``signer`` under the checkpoint's origin as key name."""
    text = checkpoint.text()
    signature = _crypto.unb64(signer.sign(text.encode("utf-8")))
    return SignedNote(text, (NoteSignature(checkpoint.origin, note_key_id(checkpoint.origin, signer.public),
                                           signature),)).serialize()


def verify_note(note: SignedNote, keys: Iterable[_crypto.VerifyKey], name: str) -> tuple[_crypto.VerifyKey | None, str]:
    """The key of ``keys`` whose signature under ``name`` verifies, or None and why not.

    signed-note, "Signatures": signatures of unknown keys are ignored; a
    known key's signature that fails rejects the note; without a valid
    known signature the note is rejected.
    """
    known = {note_key_id(name, k): k for k in keys}
    signed = None
    others = 0
    for sig in note.signatures:
        key = known.get(sig.key_id) if sig.name == name else None
        if key is None:
            others += 1
            continue
        if not key.is_valid(_crypto.b64(sig.signature), note.text.encode("utf-8")):
            return None, "the archive key's signature does not verify (note text altered)"
        signed = signed or key
    if signed is None:
        seen = f" (it carries {others} signature(s) by other keys, ignored)" if others else ""
        return None, f"not signed by the archive's key{seen}"
    return signed, ""


@dataclass(frozen=True)
class CheckpointRecord:
    """One line of ``audit/checkpoints.jsonl`` in the transparency-log format."""

    index: int
    note: str
    key_id: str
    consistency_from: int | None
    proof: tuple[bytes, ...]
    frontier: tuple[bytes, ...]
    head: str
    log_bytes: int

    def to_json(self) -> dict[str, Any]:
        consistency = None if self.consistency_from is None else \
            {"from": self.consistency_from, "proof": [_crypto.b64(p) for p in self.proof]}
        return {"format": RECORD_FORMAT, "index": self.index, "key_id": self.key_id, "note": self.note,
                "consistency": consistency, "frontier": [_crypto.b64(h) for h in self.frontier],
                "head": self.head, "log_bytes": self.log_bytes}

    def line(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, obj: Any) -> "CheckpointRecord":
        """Raises NoteError for a record that is not of this format or lacks a field."""
        try:
            if obj.get("format") != RECORD_FORMAT:
                raise NoteError(f"unknown checkpoint format {obj.get('format')!r}")
            consistency = obj.get("consistency")
            proof: Sequence[str] = [] if consistency is None else consistency["proof"]
            index, log_bytes = obj["index"], obj["log_bytes"]
            start = None if consistency is None else consistency["from"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (index, log_bytes, start or 0)):
                raise NoteError("checkpoint record numbers are not integers")
            return cls(index=index, note=str(obj["note"]), key_id=str(obj.get("key_id", "")),
                       consistency_from=start, proof=tuple(_crypto.unb64(p) for p in proof),
                       frontier=tuple(_crypto.unb64(h) for h in obj["frontier"]), head=str(obj["head"]),
                       log_bytes=log_bytes)
        except NoteError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise NoteError("checkpoint record lacks a field or has one of the wrong type") from exc


def is_legacy(obj: Any) -> bool:
    """A format-1 checkpoint line: ``{archive_id, seq, hash, ts, key_id, signature}`` (no note, no tree)."""
    return isinstance(obj, dict) and "note" not in obj and "seq" in obj and "signature" in obj
