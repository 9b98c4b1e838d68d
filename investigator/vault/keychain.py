"""The archive's signing keys over time: the genesis key and the chain of signed key transitions.

    >>> chain = archive.signing_keys()                       # doctest: +SKIP
    >>> chain.genesis.key_id == chain.fingerprint            # doctest: +SKIP
    True
    >>> chain.verify(signature, data, what="grant G-1")      # doctest: +SKIP
    'a1b2c3d4e5f60718'

An archive signs as itself (manifests, audit checkpoints, grants, sessions,
directory and policy bootstraps, bundles) with one Ed25519 key at a time. The
first is the *genesis* key, recorded in ``archive.toml`` when the archive was
made and never changed there. A key inside a PKCS#11 token or an OpenBao
transit engine cannot be copied out, so moving the archive to another custody
(``investigator keys migrate``) makes a new key there and appends a *key
transition* to ``keys/transitions.jsonl``: a record naming the old and the new
key (id and public key), the backends, the time and the reason, signed by both
keys, and linked to the record before it by hash. The last record also names
the ``[custody]`` table in force from then on (appending it is the migration's
one atomic switch).

Every verifier of archive signatures asks the :class:`KeyChain` (the genesis key
plus every verified transition): ``verify`` accepts a signature by any key of the
chain and returns its key id; ``accepts`` / ``key`` answer for records that name
their key id. A chain that does not verify (bad signature, a gap in the
sequence, a broken link, a first record that does not start at the genesis key)
raises IntegrityError naming the file and the record's position. A reader who
pins the genesis key's fingerprint (``chain.fingerprint``) trusts every later key
through the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.errors import IntegrityError
from investigator.schema import canonical_json

TRANSITION_FORMAT = "investigator-key-transition/1"
WHERE = "keys/transitions.jsonl"  # the layout's path, as messages name it


def transition_body(*, archive_id: str, seq: int, prev: str, old: _crypto.VerifyKey, new: _crypto.VerifyKey,
                    old_backend: str, new_backend: str, custody: dict[str, str], time: str,
                    reason: str) -> dict[str, Any]:
    """The body of transition ``seq`` (what both keys sign, as RFC 8785 bytes)."""
    return {"format": TRANSITION_FORMAT, "archive_id": archive_id, "seq": seq, "prev": prev,
            "old": {"key_id": old.key_id, "public": old.b64(), "backend": old_backend},
            "new": {"key_id": new.key_id, "public": new.b64(), "backend": new_backend},
            "custody": dict(custody), "time": time, "reason": reason}


def record_line(record: dict[str, Any]) -> bytes:
    """One record as the line stored in the chain file (and hashed by the next record's ``prev``)."""
    return canonical_json(record) + b"\n"


@dataclass(frozen=True)
class KeyChain:
    """The archive keys a verifier accepts: the genesis key, then each key a verified transition added."""

    archive_id: str
    keys: tuple[_crypto.VerifyKey, ...]
    records: tuple[dict[str, Any], ...] = ()
    _by_id: dict[str, _crypto.VerifyKey] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({k.key_id: k for k in self.keys})

    @classmethod
    def of(cls, key: _crypto.VerifyKey, *, archive_id: str = "") -> "KeyChain":
        """A chain of one key (an archive that never migrated, or a key pinned by hand)."""
        return cls(archive_id, (key,))

    @classmethod
    def load(cls, path: Path, *, genesis: _crypto.VerifyKey, archive_id: str) -> "KeyChain":
        """Read and verify the chain file at ``path`` (absent: the genesis key alone).

        Raises IntegrityError naming the file and position of the first record
        that does not parse, is out of sequence, does not link to the one
        before, does not start from the key then current, or lacks a valid
        signature by either key.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls.of(genesis, archive_id=archive_id)
        except OSError as exc:
            raise IntegrityError("unreadable key transition chain", path=WHERE) from exc
        return cls.parse(data, genesis=genesis, archive_id=archive_id)

    @classmethod
    def parse(cls, data: bytes, *, genesis: _crypto.VerifyKey, archive_id: str) -> "KeyChain":
        """The chain in ``data`` (the chain file's bytes, e.g. a copy inside an evidence bundle), verified.

        Raises IntegrityError as :meth:`load` does.
        """
        keys, records, prev = [genesis], [], ""
        if not data:
            return cls.of(genesis, archive_id=archive_id)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        else:
            raise IntegrityError("the last key transition is incomplete (no line end)", path=WHERE)
        for position, line in enumerate(lines, start=1):
            where = f"{WHERE} record {position}"
            try:
                record = json.loads(line)
                body, signatures = record["body"], record["signatures"]
                old = _crypto.VerifyKey.from_b64(str(body["old"]["public"]))
                new = _crypto.VerifyKey.from_b64(str(body["new"]["public"]))
                sig_old, sig_new = str(signatures["old"]), str(signatures["new"])
                custody = body["custody"]
            except (ValueError, KeyError, TypeError, IntegrityError) as exc:
                raise IntegrityError("malformed key transition", path=where) from exc
            if body.get("format") != TRANSITION_FORMAT:
                raise IntegrityError(f"unknown key transition format {body.get('format')!r}", path=where)
            if body.get("archive_id") != archive_id:
                raise IntegrityError("key transition of another archive", path=where)
            if body.get("seq") != position:
                raise IntegrityError(f"key transition numbered {body.get('seq')!r}, expected {position} (a gap "
                                     "or a reordering)", path=where)
            if body.get("prev") != prev:
                raise IntegrityError("link to the previous key transition is broken", path=where)
            if old.raw != keys[-1].raw:
                first = "the archive's genesis key (archive.toml)" if position == 1 else "the key then current"
                raise IntegrityError(f"key transition does not start from {first}: unknown root", path=where)
            if any(k.raw == new.raw for k in keys):
                raise IntegrityError("key transition to a key already used", path=where)
            if body["old"].get("key_id") != old.key_id or body["new"].get("key_id") != new.key_id:
                raise IntegrityError("key transition names a key id that is not its key's", path=where)
            if not isinstance(custody, dict) or not all(isinstance(v, str) for v in custody.values()):
                raise IntegrityError("key transition's custody table is not a table of names", path=where)
            signed = canonical_json(body)
            old.verify(sig_old, signed, what=f"{where} (old key's signature)")
            new.verify(sig_new, signed, what=f"{where} (new key's signature)")
            if record_line(record) != line + b"\n":
                raise IntegrityError("key transition is not in its canonical form", path=where)
            keys.append(new)
            records.append(record)
            prev = _crypto.sha256_hex(line + b"\n")
        return cls(archive_id, tuple(keys), tuple(records))

    # --- what verifiers ask -------------------------------------------------------------------

    @property
    def genesis(self) -> _crypto.VerifyKey:
        """The key recorded in archive.toml when the archive was made (the root of trust)."""
        return self.keys[0]

    @property
    def fingerprint(self) -> str:
        """The genesis key's id: what a reader pins to trust this archive (and, through the chain, its keys)."""
        return self.genesis.key_id

    @property
    def current(self) -> _crypto.VerifyKey:
        """The key the archive signs with now (the last transition's new key, else the genesis key)."""
        return self.keys[-1]

    @property
    def custody(self) -> dict[str, str] | None:
        """The ``[custody]`` table the last transition switched to; None when the archive never migrated."""
        return dict(self.records[-1]["body"]["custody"]) if self.records else None

    @property
    def next_prev(self) -> str:
        """The ``prev`` a transition appended now must carry."""
        return _crypto.sha256_hex(record_line(self.records[-1])) if self.records else ""

    def by_id(self) -> dict[str, _crypto.VerifyKey]:
        """Every accepted key by its id (what the audit log's checkpoint check takes)."""
        return dict(self._by_id)

    def accepts(self, key_id: str) -> bool:
        """Is ``key_id`` one of the archive's keys (genesis or a verified transition's)?"""
        return key_id in self._by_id

    def key(self, key_id: str) -> _crypto.VerifyKey | None:
        """The archive key with id ``key_id``, None for a key this archive never had."""
        return self._by_id.get(key_id)

    def verify(self, signature_b64: str, data: bytes, *, what: str = "", key_id: str | None = None) -> str:
        """The id of the archive key that signed ``data``; IntegrityError when none did.

        With ``key_id`` (a record that names its signer) only that key is tried
        and an id outside the chain is refused as an unknown key.
        """
        if key_id is not None:
            key = self._by_id.get(key_id)
            if key is None:
                raise IntegrityError(f"signed by key {key_id!r}, which is not one of the archive's keys", path=what)
            key.verify(signature_b64, data, what=what)
            return key_id
        for key in reversed(self.keys):  # the current key signs almost everything new
            if key.is_valid(signature_b64, data):
                return key.key_id
        raise IntegrityError("signature does not verify under any of the archive's keys", path=what)

    def is_valid(self, signature_b64: str, data: bytes) -> bool:
        """True when some key of the chain signed ``data``."""
        return any(key.is_valid(signature_b64, data) for key in reversed(self.keys))
