"""Held evidence bundles (熔断): kept encrypted inside the archive until a legal reviewer releases them.

    >>> key, sealed = new_held_key(custody, bundle_id)      # on the key service's side   # doctest: +SKIP
    >>> write_held(archive, bundle_id, zip_bytes, operator="sunli", created=ts, key=key, sealed_key=sealed)  # doctest: +SKIP
    >>> held = read_held(archive, bundle_id)                # metadata: operator, manifest hash   # doctest: +SKIP
    >>> files = held.open(release_key(custody, held))       # after the release decision          # doctest: +SKIP

When the circuit breaker holds a bundle, its zip is sealed with AES-256-GCM under a fresh key that only
the key service can release: the key is kept beside the ciphertext sealed by the archive's custody
(``purpose="held-bundle"``, name = the bundle id), and the operator's process forgets it once the file is
written. The envelope (``exports/held/<B-id>.held``, docs/archive-format.md "Held bundles") is JSON::

    {"format": "investigator-held-bundle/1", "archive_id", "bundle_id", "operator", "manifest_sha256",
     "created", "key": <sealed key>, "ciphertext": <base64 of nonce + AES-GCM ciphertext>}

The ciphertext's associated data is the RFC 8785 form of every other field but ``key``, so the operator
and manifest hash the release decision reads cannot be changed without the decryption failing; the
key service decrypts (and so authenticates) the envelope before it decides. Bundles held before this
format (plain ``<B-id>.zip``) are still read, and say so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.errors import BundleError, ConfigError, IntegrityError
from investigator.schema import canonical_json
from investigator.vault.store import Archive

HELD_FORMAT = "investigator-held-bundle/1"
SEAL_PURPOSE = "held-bundle"
_FIELDS = ("format", "archive_id", "bundle_id", "operator", "manifest_sha256", "created")


@dataclass(frozen=True)
class HeldBundle:
    """One held bundle as stored: its metadata, and (until opened) its sealed content."""

    bundle_id: str
    operator: str
    manifest_sha256: str
    sealed_key: dict[str, Any] | None = field(repr=False)  # None: a plain zip from before encryption
    _ciphertext: bytes = field(repr=False)
    _aad: bytes = field(repr=False)
    path: str = ""

    @property
    def encrypted(self) -> bool:
        return self.sealed_key is not None

    def open(self, key: bytes | None) -> dict[str, bytes]:
        """The bundle's members. ``key``: the released key (None only for a legacy plain zip).

        Raises IntegrityError when the key does not open it or the envelope was altered, BundleError
        when the content is not the bundle the envelope names.
        """
        if self.encrypted:
            if key is None:
                raise BundleError(f"held bundle {self.bundle_id} is encrypted; its key comes with the release")
            data = _crypto.open_sealed(key, self._ciphertext, aad=self._aad, what=self.path)
        else:
            data = self._ciphertext
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                files = {name: zf.read(name) for name in zf.namelist()}
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise BundleError(f"held bundle {self.bundle_id}: not a bundle zip ({type(exc).__name__})") from None
        manifest = files.get("manifest.json", b"")
        if self.encrypted and hashlib.sha256(manifest).hexdigest() != self.manifest_sha256:
            raise BundleError(f"held bundle {self.bundle_id}: its manifest is not the one its envelope names")
        return files


def _paths(archive: Archive, bundle_id: str) -> tuple[Path, Path]:
    """(the envelope, the legacy plain zip) of ``bundle_id``. Raises BundleError for an id that is not a name."""
    try:
        return archive.layout.held_bundle(bundle_id), archive.layout.legacy_held_bundle(bundle_id)
    except ConfigError as exc:
        raise BundleError(f"no held bundle {bundle_id}") from exc


def write_held(archive: Archive, bundle_id: str, data: bytes, *, operator: str, created: str, key: bytes,
               sealed_key: dict[str, Any]) -> str:
    """Seal the bundle zip ``data`` under ``key`` into its envelope, written atomically; returns its relative path.

    ``sealed_key`` is ``key`` sealed by the custody (the key service made both). Raises BundleError when a held
    bundle of that id exists (held bundles are written once).
    """
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = zf.read("manifest.json")
    meta = {"format": HELD_FORMAT, "archive_id": archive.archive_id, "bundle_id": bundle_id, "operator": operator,
            "manifest_sha256": hashlib.sha256(manifest).hexdigest(), "created": created}
    blob = _crypto.seal(key, data, aad=canonical_json(meta))
    target, legacy = _paths(archive, bundle_id)
    if target.exists() or legacy.exists():
        raise BundleError(f"held bundle {bundle_id} exists already")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps({**meta, "key": sealed_key, "ciphertext": _crypto.b64(blob)}, sort_keys=True),
                       encoding="utf-8")
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return archive.layout.relative(target)


def read_held(archive: Archive, bundle_id: str) -> HeldBundle:
    """The held bundle ``bundle_id`` (encrypted envelope, or a legacy plain zip).

    Raises BundleError when there is none, IntegrityError when the envelope is malformed or names another
    archive or bundle.
    """
    target, legacy = _paths(archive, bundle_id)
    what = archive.layout.relative(target)
    if not target.exists():
        if not legacy.exists():
            raise BundleError(f"no held bundle {bundle_id}")
        data = legacy.read_bytes()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                manifest_bytes = zf.read("manifest.json")
            operator = str(json.loads(manifest_bytes).get("operator") or "")
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise IntegrityError(f"not a bundle zip ({type(exc).__name__})",
                                 path=archive.layout.relative(legacy)) from None
        return HeldBundle(bundle_id, operator, hashlib.sha256(manifest_bytes).hexdigest(), None, data, b"",
                          archive.layout.relative(legacy))
    try:
        envelope = json.loads(target.read_bytes())
        meta = {name: envelope[name] for name in _FIELDS}
        blob = _crypto.unb64(envelope["ciphertext"])
        sealed = envelope["key"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"malformed held-bundle envelope ({type(exc).__name__})", path=what) from None
    if meta["format"] != HELD_FORMAT or not isinstance(sealed, dict) \
            or not all(isinstance(meta[name], str) for name in _FIELDS):
        raise IntegrityError(f"not a {HELD_FORMAT} envelope", path=what)
    if meta["archive_id"] != archive.archive_id or meta["bundle_id"] != bundle_id:
        raise IntegrityError("the envelope names another archive or bundle", path=what)
    return HeldBundle(bundle_id, meta["operator"], meta["manifest_sha256"], sealed, blob, canonical_json(meta), what)


def new_held_key(keys: Any, bundle_id: str) -> tuple[bytes, dict[str, Any]]:
    """A fresh key for held bundle ``bundle_id``: plain, and sealed by the custody ``keys`` (the key service's)."""
    key = _crypto.new_key()
    return key, keys.seal(key, purpose=SEAL_PURPOSE, name=bundle_id)


def release_key(keys: Any, held: HeldBundle) -> bytes | None:
    """The plain key of ``held``, unsealed by the custody ``keys`` and checked against the envelope.

    Raises IntegrityError when the sealed key or the envelope was altered. None for a legacy plain zip.
    """
    if held.sealed_key is None:
        return None
    key = keys.unseal(held.sealed_key, what=held.path)
    held.open(key)  # authenticates operator and manifest hash before anyone decides on them
    return bytes(key)


__all__ = ["HELD_FORMAT", "HeldBundle", "SEAL_PURPOSE", "new_held_key", "read_held", "release_key", "write_held"]
