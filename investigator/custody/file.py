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

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator._fs import atomic_write
from investigator.errors import ArchiveError, IntegrityError, PeriodShredded, WrongPassphrase
from investigator.vault.format import FORMAT_VERSION
from investigator.vault.destruction import (PERIOD_SCHEMES, PERIOD_WRAP_FORMAT, check_period, parse_period_wrapped,
                                            period_for)
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


def _period_key_aad(archive_id: str, period: str) -> bytes:
    return canonical_json({"archive": archive_id, "period": period, "purpose": "period-key"})


def _period_dek_aad(archive_id: str, kind: str, partition: str, period: str) -> bytes:
    return canonical_json({"archive": archive_id, "kind": kind, "partition": partition, "period": period,
                           "purpose": "dek-period"})


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
        self._periods: dict[str, bytes] = {}  # unsealed period keys, loaded when first needed
        self._period_stamp: tuple[int, int] | None = None  # (inode, mtime) of the key file they were read from

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
        """Wrap ``dek`` under its period's key (period keys enabled, a day partition), else under the current KEK.

        Raises PeriodShredded for a partition of a period whose key was destroyed.
        """
        period = self._period_for(kind, partition)
        if period is not None:
            key = self._period_key(period, create=True, what=f"{kind}/{partition}")
            blob = _crypto.seal(key, dek, aad=_period_dek_aad(self.archive_id, kind, partition, period))
            return {"format": PERIOD_WRAP_FORMAT, "kind": kind, "partition": partition, "period": period,
                    "wrapped": _crypto.b64(blob)}
        version = self.current_version
        blob = _crypto.seal(self._keks[version], dek, aad=_dek_aad(self.archive_id, kind, partition, version))
        return {"format": WRAP_FORMAT, "kind": kind, "partition": partition, "kek_version": version,
                "wrapped": _crypto.b64(blob)}

    def unwrap(self, wrapped: dict[str, Any], *, what: str = "") -> bytes:
        """The DEK inside ``wrapped``. Raises IntegrityError if it was altered or moved (PeriodShredded when
        its period's key was destroyed)."""
        if wrapped.get("format") == PERIOD_WRAP_FORMAT:
            return self._unwrap_period(wrapped, what=what)
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


    # --- period keys (crypto-shredding; docs/archive-format.md, "Period keys") -------------------

    @property
    def period_scheme(self) -> str | None:
        """``"quarter"`` when period keys are enabled in the key file, else None (every data key under the KEK)."""
        if self._keyfile is None:
            return None
        scheme = self._keyfile.data.get("period_keys", {}).get("scheme")
        return str(scheme) if scheme in PERIOD_SCHEMES else None

    def _period_for(self, kind: str, partition: str) -> str | None:
        return period_for(self.period_scheme, kind, partition)

    def _unwrap_period(self, wrapped: dict[str, Any], *, what: str) -> bytes:
        kind, partition, period, payload = parse_period_wrapped(wrapped, what=what)
        try:
            blob = _crypto.unb64(payload)
        except ValueError as exc:
            raise IntegrityError("malformed wrapped key", path=what) from exc
        key = self._period_key(period, create=False, what=what)
        return _crypto.open_sealed(key, blob, aad=_period_dek_aad(self.archive_id, kind, partition, period), what=what)

    def _sync_periods(self) -> None:
        """Re-read the key file when it changed (another process made or destroyed a period key): a destroyed
        key is forgotten here too, so a running key server stops using it at once."""
        if self._keyfile is None or self._file_key is None:
            return
        try:
            st = os.stat(self._keyfile.path)
        except OSError:
            return
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp == self._period_stamp:
            return
        current = KeyFile.load(self._keyfile.path)
        sealed = {str(e["period"]): e for e in current.data.get("periods", [])}
        self._periods = {p: k for p, k in self._periods.items() if p in sealed}
        for period, entry in sealed.items():
            if period not in self._periods:
                self._periods[period] = _crypto.open_with_passphrase_key(
                    self._file_key, _crypto.unb64(entry["sealed"]), aad=_period_key_aad(self.archive_id, period),
                    what=str(self._keyfile.path))
        self._keyfile = current
        self._period_stamp = stamp

    def _period_key(self, period: str, *, create: bool, what: str) -> bytes:
        self._sync_periods()
        if period in self._periods:
            return self._periods[period]
        if self._keyfile is not None and period in self.destroyed_periods():
            raise PeriodShredded(f"the key of period {period} was destroyed (crypto-shredded)", path=what)
        if not create:
            raise IntegrityError(f"wrapped under unknown period key {period}", path=what)
        assert self._keyfile is not None and self._file_key is not None
        with self._keyfile.locked() as current:
            if period not in {str(e["period"]) for e in current.data.get("periods", [])}:
                if period in {str(e["period"]) for e in current.data.get("destroyed_periods", [])}:
                    raise PeriodShredded(f"the key of period {period} was destroyed (crypto-shredded)", path=what)
                key = _crypto.new_key()
                current.data.setdefault("periods", []).append({
                    "period": period, "created": format_ts(datetime.now(timezone.utc)),
                    "sealed": _crypto.b64(_crypto.seal(self._file_key, key, aad=_period_key_aad(self.archive_id,
                                                                                              period)))})
                current._write()
        self._period_stamp = None
        self._sync_periods()
        return self._periods[period]

    def period_keys(self) -> dict[str, str]:
        """Period keys the key file holds and when each was made (no secrets)."""
        self._sync_periods()
        if self._keyfile is None:
            return {}
        return {str(e["period"]): str(e["created"]) for e in self._keyfile.data.get("periods", [])}

    def destroyed_periods(self) -> dict[str, str]:
        """Periods whose key was destroyed, and when."""
        if self._keyfile is None:
            return {}
        return {str(e["period"]): str(e["destroyed"]) for e in self._keyfile.data.get("destroyed_periods", [])}

    def enable_period_keys(self, scheme: str = "quarter") -> None:
        """From now on wrap data keys of day partitions under their period's key. Raises ArchiveError."""
        if scheme not in PERIOD_SCHEMES:
            raise ArchiveError(f"unknown period scheme {scheme!r} (known: {', '.join(PERIOD_SCHEMES)})")
        if self._keyfile is None:
            raise ArchiveError("these master keys were not unlocked from a key file; cannot enable period keys")
        with self._keyfile.locked() as current:
            current.data["period_keys"] = {"scheme": scheme}
            current._write()
        self._period_stamp = None
        self._sync_periods()

    def destroy_period(self, period: str, *, now: datetime) -> bool:
        """Destroy the key of ``period`` in the key file (an atomic rewrite without it). Idempotent: returns
        False when it was already gone. Callers check holds and retention first and write the record."""
        check_period(period)
        if self._keyfile is None:
            raise ArchiveError("these master keys were not unlocked from a key file; cannot destroy a period key")
        with self._keyfile.locked() as current:
            before = current.data.get("periods", [])
            kept = [e for e in before if str(e["period"]) != period]
            destroyed = current.data.setdefault("destroyed_periods", [])
            if period not in {str(e["period"]) for e in destroyed}:
                destroyed.append({"period": period, "destroyed": format_ts(now)})
            current.data["periods"] = kept
            current._write()
        self._periods.pop(period, None)
        self._period_stamp = None
        self._sync_periods()
        return len(kept) != len(before)

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
        with self._keyfile.locked() as current:  # re-read: period keys may have changed since this unlock
            current.data["keks"].append({
                "version": version, "created": format_ts(now),
                "sealed": _crypto.b64(_crypto.seal(self._file_key, kek, aad=_kek_aad(self.archive_id, version)))})
            current._write()
        self._keyfile = KeyFile.load(self._keyfile.path)
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
        self._keyfile = KeyFile.load(self._keyfile.path)
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
        with self.locked() as current:  # re-read: period keys may have changed since this file was loaded
            current.data["keks"] = [e for e in current.data["keks"] if int(e["version"]) != version]
            current._write()

    @property
    def signing_public(self) -> _crypto.VerifyKey:
        return _crypto.VerifyKey.from_b64(self.data["signing_key"]["public"])

    @contextmanager
    def locked(self) -> Iterator["KeyFile"]:
        """The key file as on disk now, under an exclusive flock (``keys/master.lock``): read, change, ``_write``.

        Period keys are made by the ingesting process (or the key server) and destroyed by the shredding
        one; each re-reads the file under the lock so that neither brings back what the other removed.
        """
        lock_path = self.path.with_name("master.lock")
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield KeyFile.load(self.path)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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
                   custody: dict[str, str] | None = None, now: datetime | None = None,
                   period_keys: str | None = None, format_version: int = FORMAT_VERSION) -> Archive:
    """Create a new archive at ``root`` whose master keys live in a passphrase-protected key file.

    ``custody`` is the ``[custody]`` table to record (default ``backend = "file"``). ``period_keys``
    (``"quarter"``) wraps data keys of day partitions under one key per retention period, so that a
    period can be crypto-shredded (backup/shred.py); without it every data key is under the master key.
    ``format_version`` is the chunk format its batches are written in (default the newest; 1 only to
    make format-1 archives for compatibility tests, archive-format.md "Versions").

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
        keys = KeyFile.create(keyfile_path, archive_id, passphrase, kdf_n=kdf_n, now=when)[1]
        if period_keys:
            keys.enable_period_keys(period_keys)
        return keys

    return Archive.create(Path(root), new_keyring=new_keyring, timezone_name=timezone_name,
                          chunk_seconds=chunk_seconds, actor=actor, custody=custody, now=when,
                          format_version=format_version)


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
