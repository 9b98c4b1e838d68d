"""Key hierarchy: passphrase -> key file -> master keys (KEK) -> data keys -> chunk keys.

    passphrase --scrypt--> file key --AES-GCM--> KEK v1, v2 ... and the archive signing key
    KEK vN --AES-GCM wrap--> per-partition data key (DEK), one per (kind, UTC day)
    DEK --HKDF-SHA256(info = kind/partition/chunk)--> chunk key, one per time chunk

Only chunk keys ever leave a key service; a KEK or a DEK never does
(docs/archive-format.md, "Keys"; docs/threat-model.md).

    >>> master = KeyFile.create(path, archive_id, "correct horse")    # doctest: +SKIP
    >>> keys = KeyFile.load(path).unlock("correct horse")              # doctest: +SKIP
    >>> dek, wrapped = keys.new_data_key("messages", "2026-11-28")     # doctest: +SKIP
    >>> archive = create_archive(Path("case-archive"), passphrase="correct horse")  # doctest: +SKIP
    >>> keys = unlock_archive(archive, "correct horse", actor="admin")              # doctest: +SKIP

This is the first custody backend: the master keys live in the archive's
``keys/master.json``, sealed under a key derived from the passphrase (scrypt).
Chunk keys are derived in :func:`investigator.vault.format.chunk_key`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator._fs import atomic_write
from investigator.errors import ArchiveError, IntegrityError, WrongPassphrase
from investigator.vault.config import check_timezone, validate_chunk_seconds
from investigator.vault.store import Archive
from investigator.schema import canonical_json, format_ts

KEYFILE_FORMAT = "investigator-keyfile/1"
WRAP_FORMAT = "investigator-wrapped-key/1"


def _kek_aad(archive_id: str, version: int) -> bytes:
    return canonical_json({"archive": archive_id, "purpose": "kek", "version": version})


def _signing_aad(archive_id: str) -> bytes:
    return canonical_json({"archive": archive_id, "purpose": "archive-signing-key"})


def _dek_aad(archive_id: str, kind: str, partition: str, kek_version: int) -> bytes:
    return canonical_json({"archive": archive_id, "kek_version": kek_version, "kind": kind,
                           "partition": partition, "purpose": "dek"})


class MasterKeys:
    """Unlocked key-encryption keys and the archive signing key: the key file's :class:`Custody`. Never printed.

    Made by :meth:`KeyFile.unlock`; it keeps the key derived from the
    passphrase (not the passphrase) so that rotation can add a version.
    """

    def __init__(self, archive_id: str, keks: dict[int, bytes], signing: _crypto.SigningKey, *,
                 keyfile: "KeyFile | None" = None, file_key: bytes | None = None) -> None:
        self.archive_id = archive_id
        self._keks = dict(keks)
        self.signing = signing
        self._keyfile = keyfile
        self._file_key = file_key

    def __repr__(self) -> str:
        return f"MasterKeys(archive_id={self.archive_id!r}, versions={sorted(self._keks)})"

    @property
    def current_version(self) -> int:
        return max(self._keks)

    def new_data_key(self, kind: str, partition: str) -> tuple[bytes, dict[str, Any]]:
        """A fresh DEK for a partition and its wrapped form (a JSON object to store)."""
        dek = _crypto.new_key()
        return dek, self.wrap(dek, kind, partition)

    def wrap(self, dek: bytes, kind: str, partition: str) -> dict[str, Any]:
        """Wrap ``dek`` under the current KEK."""
        version = self.current_version
        blob = _crypto.seal(self._keks[version], dek, aad=_dek_aad(self.archive_id, kind, partition, version))
        return {"format": WRAP_FORMAT, "kind": kind, "partition": partition, "kek_version": version,
                "wrapped": _crypto.b64(blob)}

    def unwrap(self, wrapped: dict[str, Any], *, what: str = "") -> bytes:
        """The DEK inside ``wrapped``. Raises IntegrityError if it was altered or moved."""
        try:
            version = int(wrapped["kek_version"])
            kind, partition = str(wrapped["kind"]), str(wrapped["partition"])
            blob = _crypto.unb64(wrapped["wrapped"])
        except (KeyError, ValueError, TypeError) as exc:
            raise IntegrityError("malformed wrapped key", path=what) from exc
        if version not in self._keks:
            self._refresh()  # a rotation by another process (the CLI beside a running key server)
        if version not in self._keks:
            raise IntegrityError(f"wrapped under unknown master key version {version}", path=what)
        return _crypto.open_sealed(self._keks[version], blob,
                                   aad=_dek_aad(self.archive_id, kind, partition, version), what=what)


    def _refresh(self) -> None:
        """Take in master-key versions added to the key file since this unlock (with the key derived then).

        A version that does not open under that key (the file was replaced) is
        left out, so unwrapping under it still fails as an unknown version.
        """
        if self._keyfile is None or self._file_key is None:
            return
        try:
            current = KeyFile.load(self._keyfile.path)
        except ArchiveError:
            return
        for entry in current.data.get("keks", []):
            version = int(entry["version"])
            if version in self._keks:
                continue
            try:
                self._keks[version] = _crypto.open_with_passphrase_key(
                    self._file_key, _crypto.unb64(entry["sealed"]), aad=_kek_aad(self.archive_id, version),
                    what=str(self._keyfile.path))
            except (WrongPassphrase, IntegrityError, ValueError, KeyError):
                continue
        self._keyfile = current

    def seal(self, secret: bytes, *, purpose: str, name: str) -> dict[str, Any]:
        """Seal a small secret (the TOTP key ...) under the current KEK, bound to ``purpose`` and ``name``.

        The sealed form is a wrapped key (the same JSON object as a data key's).
        """
        return self.wrap(secret, purpose, name)

    def unseal(self, sealed: dict[str, Any], *, what: str = "") -> bytes:
        """The secret inside ``sealed``. Raises IntegrityError if it was altered or moved."""
        return self.unwrap(sealed, what=what)

    def versions(self) -> dict[int, str]:
        """Master-key versions and when each was made (no secrets)."""
        if self._keyfile is None:
            return {v: "" for v in sorted(self._keks)}
        return self._keyfile.versions()

    def add_version(self, *, now: datetime) -> int:
        """Add a new master-key version to the key file (rotation); new wraps use it. Raises ArchiveError."""
        if self._keyfile is None or self._file_key is None:
            raise ArchiveError("these master keys were not unlocked from a key file; cannot add a version")
        version = self.current_version + 1
        kek = _crypto.new_key()
        self._keyfile.data["keks"].append({
            "version": version, "created": format_ts(now),
            "sealed": _crypto.b64(_crypto.seal(self._file_key, kek, aad=_kek_aad(self.archive_id, version)))})
        self._keyfile._write()
        self._keks[version] = kek
        return version

    def remove_version(self, version: int) -> None:
        """Drop master-key ``version`` (retirement). Raises ArchiveError for the current or an unknown version.

        Callers check first that no wrapped key depends on it.
        """
        if version not in self._keks:
            raise ArchiveError(f"master key version {version} is not in the key file (versions: {sorted(self._keks)})")
        if version == self.current_version:
            raise ArchiveError(f"version {version} is the current master key; rotate first")
        if self._keyfile is None:
            raise ArchiveError("these master keys were not unlocked from a key file; cannot remove a version")
        self._keyfile.remove_kek_version(version)
        del self._keks[version]


@dataclass(frozen=True)
class KeyFile:
    """The passphrase-protected key file ``ARCHIVE/keys/master.json``."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def create(cls, path: Path, archive_id: str, passphrase: str, *, kdf_n: int = _crypto.SCRYPT_N,
               now: datetime | None = None) -> tuple["KeyFile", MasterKeys]:
        """Make a new key file with KEK version 1 and a new archive signing key.

        Raises ArchiveError if the file exists (keys are never overwritten).
        """
        if path.exists():
            raise ArchiveError(f"{path}: a key file already exists; refusing to overwrite it")
        params = _crypto.KdfParams.new(n=kdf_n)
        file_key = _crypto.derive_passphrase_key(passphrase, params)
        kek = _crypto.new_key()
        signing = _crypto.SigningKey.generate()
        created = format_ts(now or datetime.now(timezone.utc))
        data = {
            "format": KEYFILE_FORMAT,
            "archive_id": archive_id,
            "kdf": params.to_json(),
            "keks": [{"version": 1, "created": created,
                      "sealed": _crypto.b64(_crypto.seal(file_key, kek, aad=_kek_aad(archive_id, 1)))}],
            "signing_key": {"public": signing.public.b64(),
                            "sealed": _crypto.b64(_crypto.seal(file_key, signing.raw(), aad=_signing_aad(archive_id)))},
        }
        keyfile = cls(path, data)
        keyfile._write()
        return keyfile, MasterKeys(archive_id, {1: kek}, signing, keyfile=keyfile, file_key=file_key)

    @classmethod
    def load(cls, path: Path) -> "KeyFile":
        """Read a key file. Raises ArchiveError if missing or not a key file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ArchiveError(f"{path}: key file not found") from exc
        except (OSError, ValueError) as exc:
            raise ArchiveError(f"{path}: not a readable key file") from exc
        if data.get("format") != KEYFILE_FORMAT:
            raise ArchiveError(f"{path}: unknown key file format {data.get('format')!r}")
        return cls(path, data)

    def unlock(self, passphrase: str) -> MasterKeys:
        """Decrypt every KEK and the signing key. Raises WrongPassphrase."""
        archive_id = self.data["archive_id"]
        params = _crypto.KdfParams.from_json(self.data["kdf"])
        file_key = _crypto.derive_passphrase_key(passphrase, params)
        keks = {}
        for entry in self.data["keks"]:
            version = int(entry["version"])
            keks[version] = _crypto.open_with_passphrase_key(
                file_key, _crypto.unb64(entry["sealed"]), aad=_kek_aad(archive_id, version), what=str(self.path))
        raw = _crypto.open_with_passphrase_key(
            file_key, _crypto.unb64(self.data["signing_key"]["sealed"]), aad=_signing_aad(archive_id),
            what=str(self.path))
        signing = _crypto.SigningKey.from_raw(raw)
        if signing.public.b64() != self.data["signing_key"]["public"]:
            raise WrongPassphrase(f"{self.path}: signing key does not match its public key")
        return MasterKeys(archive_id, keks, signing, keyfile=self, file_key=file_key)

    def versions(self) -> dict[int, str]:
        """Master-key versions in the file and when each was made (readable without the passphrase)."""
        return {int(e["version"]): str(e["created"]) for e in self.data["keks"]}

    def remove_kek_version(self, version: int) -> None:
        """Drop a master-key version from the file (retirement). Callers check nothing depends on it."""
        self.data["keks"] = [e for e in self.data["keks"] if int(e["version"]) != version]
        self._write()

    @property
    def signing_public(self) -> _crypto.VerifyKey:
        return _crypto.VerifyKey.from_b64(self.data["signing_key"]["public"])

    def _write(self) -> None:
        atomic_write(self.path, (json.dumps(self.data, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)


def check_passphrase(passphrase: str | None) -> str:
    """Raise WrongPassphrase for a missing passphrase."""
    if not passphrase:
        raise WrongPassphrase("no passphrase given",
                              hint="set INVESTIGATOR_PASSPHRASE or answer the prompt")
    return passphrase


def create_archive(root: Path | str, *, passphrase: str, timezone_name: str = "Asia/Shanghai",
                   chunk_seconds: int = 3600, actor: str = "admin", kdf_n: int = _crypto.SCRYPT_N,
                   custody: dict[str, str] | None = None, now: datetime | None = None) -> Archive:
    """Create a new archive at ``root`` whose master keys live in a passphrase-protected key file.

    ``custody`` is the ``[custody]`` table to record (default ``backend = "file"``).

    Raises ConfigError for a bad time zone or chunk size, WrongPassphrase for an
    empty passphrase, ArchiveError if ``root`` holds anything.
    """
    check_timezone(timezone_name)
    validate_chunk_seconds(chunk_seconds)
    if not passphrase:
        raise WrongPassphrase("an empty passphrase is not accepted",
                              hint="set INVESTIGATOR_PASSPHRASE or answer the prompt")
    when = now or datetime.now(timezone.utc)

    def new_keyring(archive_id: str, keyfile_path: Path) -> MasterKeys:
        return KeyFile.create(keyfile_path, archive_id, passphrase, kdf_n=kdf_n, now=when)[1]

    return Archive.create(Path(root), new_keyring=new_keyring, timezone_name=timezone_name,
                          chunk_seconds=chunk_seconds, actor=actor, custody=custody, now=when)


def unlock_archive(archive: Archive, passphrase: str, *, actor: str = "", purpose: str = "") -> MasterKeys:
    """Unlock the archive's master keys; every unlock is audited, allowed or refused.

    ``purpose`` says which command or function unlocks (``investigator request
    approve``, ``open_case`` ...): the audit entry ``unlock`` records who and
    why, so an auditor sees every use of the passphrase. A wrong passphrase
    raises WrongPassphrase; a key file of another archive (its id or signing
    key differ from ``archive.toml``'s) raises IntegrityError.
    """
    why = purpose or "unspecified"
    try:
        keys = KeyFile.load(archive.keyfile_path).unlock(passphrase)
    except WrongPassphrase:
        archive.audit.append(actor or "unknown", "unlock", archive.archive_id,
                             {"reason": "wrong passphrase", "purpose": why}, outcome="denied")
        raise
    if keys.archive_id != archive.archive_id or keys.signing.public.raw != archive.signing_keys().current.raw:
        raise IntegrityError("key file belongs to another archive", path=str(archive.keyfile_path))
    archive.audit.append(actor or "unknown", "unlock", archive.archive_id,
                         {"purpose": why, "custody": "file", "versions": sorted(keys.versions())}, outcome="ok")
    return keys
