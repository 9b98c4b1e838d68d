"""PKCS#11 custody: the archive's master keys and signing key live in an HSM token and never leave it.

    >>> custody = Pkcs11Custody.provision(module, pin, "investigator", archive_id, now=now)  # doctest: +SKIP
    >>> custody = Pkcs11Custody.open(module, pin, "investigator", archive_id)                # doctest: +SKIP
    >>> dek, wrapped = custody.new_data_key("messages", "2026-11-28")                       # doctest: +SKIP
    >>> custody.unwrap(wrapped) == dek                                                       # doctest: +SKIP
    True
    >>> custody.close()                                                                      # doctest: +SKIP

The second :class:`~investigator.custody.base.Custody` backend. What the token
holds for one archive (``<id>`` is the archive id):

| object | label (CKA_LABEL, also CKA_ID) | attributes |
|---|---|---|
| master key (KEK) version N | ``investigator:<id>:kek:<N>`` | AES-256 secret key: token, private, sensitive, non-extractable, encrypt/decrypt only |
| when version N was made | ``investigator:<id>:kek:<N>:created`` | data object (a UTC timestamp, no secret) |
| archive signing key | ``investigator:<id>:signing`` | Ed25519 key pair (CKM_EC_EDWARDS_KEY_PAIR_GEN); the private half sensitive, non-extractable, sign only |

Data keys are wrapped with CKM_AES_GCM inside the token: a 12-byte random IV,
the same associated data as the key file's (archive id, kind, partition, KEK
version; see ``custody/file.py``), so a wrapped key moved to another partition
or version does not open. The stored JSON has the key file's shape plus
``"custody": "pkcs11"``; ``wrapped`` is ``base64(IV || ciphertext || tag)``.
Manifests and checkpoints are signed with CKM_EDDSA in the token. A token
without EdDSA is refused at provisioning (:class:`ArchiveError`), never
worked around.

The module path and the user PIN are values passed in. The edges (CLI, key
server) read them from these variables; nothing here reads the environment:

| variable | meaning |
|---|---|
| INVESTIGATOR_PKCS11_MODULE | path of the PKCS#11 module (e.g. ``/usr/lib/softhsm/libsofthsm2.so``) |
| INVESTIGATOR_PKCS11_PIN | the token's user PIN |

One logged-in session per token is shared by every :class:`Pkcs11Custody`
of the process (PKCS#11 logs in per application, not per session); the last
``close()`` logs out. Every python-pkcs11 exception is turned into an
``investigator.errors`` error at this module's boundary; no message carries
the PIN or key bytes.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Self, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e

from investigator import _crypto
from investigator.custody.base import RuntimePeriodScheme
from investigator.custody.file import WRAP_FORMAT, _dek_aad
from investigator.errors import (
    ArchiveError,
    ConfigError,
    IntegrityError,
    InvestigatorError,
    PeriodShredded,
    WrongPassphrase,
)
from investigator.schema import canonical_json, format_ts
from investigator.vault.destruction import PERIOD_WRAP_FORMAT, check_period, parse_period_wrapped
from investigator.vault.store import Archive

PKCS11_MODULE_ENV = "INVESTIGATOR_PKCS11_MODULE"
PKCS11_PIN_ENV = "INVESTIGATOR_PKCS11_PIN"

CUSTODY_NAME = "pkcs11"
IV_BYTES = 12
TAG_BYTES = 16
LABEL_PREFIX = "investigator"
APPLICATION = "investigator"

# Ed25519 as CKA_EC_PARAMS: the DER encoding of OID 1.3.101.112 (id-Ed25519, RFC 8410).
ED25519_EC_PARAMS = bytes.fromhex("06032b6570")

REQUIRED_MECHANISMS: dict[Mechanism, str] = {
    Mechanism.AES_KEY_GEN: "CKM_AES_KEY_GEN",
    Mechanism.AES_GCM: "CKM_AES_GCM",
}
SIGNING_MECHANISMS: dict[Mechanism, str] = {
    Mechanism.EC_EDWARDS_KEY_PAIR_GEN: "CKM_EC_EDWARDS_KEY_PAIR_GEN",
    Mechanism.EDDSA: "CKM_EDDSA",
}

_PIN_ERRORS = (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange)
_GONE_ERRORS = (p11e.DeviceRemoved, p11e.TokenNotPresent, p11e.TokenNotRecognised, p11e.SessionClosed,
                p11e.SessionHandleInvalid, p11e.UserNotLoggedIn, p11e.DeviceError, p11e.DeviceMemory)
# What a token answers when a GCM tag, IV or length does not check (SoftHSM2 says GeneralError).
_OPEN_FAILED = (p11e.EncryptedDataInvalid, p11e.EncryptedDataLenRange, p11e.GeneralError, p11e.FunctionFailed,
                p11e.DataInvalid, p11e.DataLenRange, p11e.MechanismParamInvalid, p11e.ArgumentsBad)
_KEY_GONE = (p11e.KeyHandleInvalid, p11e.ObjectHandleInvalid)

T = TypeVar("T")


def _converted(exc: p11e.PKCS11Error, doing: str) -> InvestigatorError:
    """The investigator error for a python-pkcs11 exception raised while ``doing`` (no secret in it)."""
    name = type(exc).__name__
    if isinstance(exc, _PIN_ERRORS):
        return WrongPassphrase(f"the PIN does not unlock the token ({doing})",
                               hint=f"check {PKCS11_PIN_ENV} (the token's user PIN, not the SO PIN)")
    if isinstance(exc, p11e.PinLocked):
        return WrongPassphrase(f"the token's user PIN is locked after too many wrong PINs ({doing})",
                               hint="the token's security officer must reset the user PIN")
    if isinstance(exc, p11e.PinExpired):
        return WrongPassphrase(f"the token's user PIN has expired ({doing})", hint="set a new user PIN on the token")
    if isinstance(exc, p11e.UserPinNotInitialized):
        return ArchiveError(f"the token has no user PIN yet ({doing})",
                            hint="initialise the token's user PIN with the HSM's tools first")
    if isinstance(exc, p11e.UserAlreadyLoggedIn | p11e.AnotherUserAlreadyLoggedIn):
        return ArchiveError(f"the token is already logged in by other code in this process ({doing})")
    if isinstance(exc, _GONE_ERRORS):
        return ArchiveError(f"the PKCS#11 token is not available ({doing}: {name})",
                            hint="check that the HSM is connected and the session was not closed")
    if isinstance(exc, _KEY_GONE):
        return ArchiveError(f"a key object of this archive is no longer in the token ({doing}: {name})",
                            hint="check that the HSM is connected and the token is the one the archive names "
                                 "([custody] token_label); a token restored from an older backup or whose objects "
                                 "were deleted no longer holds these keys")
    if isinstance(exc, p11e.MechanismInvalid | p11e.FunctionNotSupported | p11e.AttributeTypeInvalid
                  | p11e.AttributeValueInvalid | p11e.TemplateInconsistent | p11e.TemplateIncomplete):
        return ArchiveError(f"the token does not support what {doing} needs ({name})")
    return ArchiveError(f"PKCS#11 error while {doing} ({name})")


@contextmanager
def _token_errors(doing: str) -> Iterator[None]:
    """Turn python-pkcs11 exceptions raised inside into investigator errors."""
    try:
        yield
    except p11e.PKCS11Error as exc:
        raise _converted(exc, doing) from exc


def _load_module(module_path: str) -> Any:
    if not module_path:
        raise ConfigError("no PKCS#11 module given", hint=f"set {PKCS11_MODULE_ENV} to the HSM vendor's .so")
    try:
        return pkcs11.lib(module_path)
    except p11e.PKCS11Error as exc:
        raise ConfigError(f"{module_path}: cannot load it as a PKCS#11 module",
                          hint=f"set {PKCS11_MODULE_ENV} to the HSM vendor's .so") from exc


def _kek_label(archive_id: str, version: int) -> str:
    return f"{LABEL_PREFIX}:{archive_id}:kek:{version}"


def _period_label(archive_id: str, period: str) -> str:
    return f"{LABEL_PREFIX}:{archive_id}:period:{check_period(period)}"


def _period_dek_aad(archive_id: str, kind: str, partition: str, period: str) -> bytes:
    """The key file's associated data of a period-wrapped data key (custody/file.py), plus the backend."""
    return canonical_json({"archive": archive_id, "custody": CUSTODY_NAME, "kind": kind, "partition": partition,
                           "period": period, "purpose": "dek-period"})


def _signing_label(archive_id: str) -> str:
    return f"{LABEL_PREFIX}:{archive_id}:signing"


def _archive_prefix(archive_id: str) -> str:
    return f"{LABEL_PREFIX}:{archive_id}:"


def _check_archive_id(archive_id: str) -> str:
    if not archive_id or ":" in archive_id or not archive_id.isprintable():
        raise ArchiveError(f"{archive_id!r} is not an archive id usable in a token label")
    return archive_id


def _read_bytes(obj: Any, attribute: Attribute) -> bytes:
    return bytes(obj[attribute])


def _raw_ed25519_point(point: bytes) -> bytes:
    """The 32-byte Ed25519 public key from CKA_EC_POINT (a DER OCTET STRING, or raw on some tokens)."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    raise ArchiveError("the token's archive signing key is not an Ed25519 public key")


# --- the shared login -----------------------------------------------------------------------------

@dataclass(eq=False)
class _Login:
    """One logged-in read/write session on one token, shared by every custody on it in this process."""

    key: tuple[str, bytes]
    token_label: str
    session: Any  # pkcs11.Session
    mechanisms: frozenset[Mechanism]
    pin_salt: bytes = field(repr=False)
    pin_check: bytes = field(repr=False)
    users: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)


_LOGINS: dict[tuple[str, bytes], _Login] = {}
_LOGINS_LOCK = threading.Lock()


def _login(module_path: str, pin: str, token_label: str) -> _Login:
    """Log in to the token labelled ``token_label`` (or join this process's login to it)."""
    if not pin:
        raise WrongPassphrase("no PIN given for the PKCS#11 token", hint=f"set {PKCS11_PIN_ENV}")
    lib = _load_module(module_path)
    try:
        token = lib.get_token(token_label=token_label)
    except p11e.NoSuchToken as exc:
        raise ArchiveError(f"no PKCS#11 token labelled {token_label!r} in {module_path}",
                           hint="check the token label and that the HSM is connected") from exc
    except p11e.MultipleTokensReturned as exc:
        raise ArchiveError(f"more than one PKCS#11 token is labelled {token_label!r}",
                           hint="give each token a distinct label") from exc
    except p11e.PKCS11Error as exc:
        raise _converted(exc, f"finding token {token_label!r}") from exc
    with _LOGINS_LOCK:
        with _token_errors(f"opening token {token_label!r}"):
            key = (module_path, bytes(token.serial))
        login = _LOGINS.get(key)
        if login is not None:
            # PKCS#11 logs in per application: a second C_Login would only say "already logged in"
            # without looking at the PIN, so the PIN is compared with the one the login was made with.
            if not secrets.compare_digest(_crypto.hmac_sha256(login.pin_salt, pin.encode()), login.pin_check):
                raise WrongPassphrase(f"the PIN does not unlock token {token_label!r}",
                                      hint=f"check {PKCS11_PIN_ENV} (the token's user PIN, not the SO PIN)")
        else:
            with _token_errors(f"logging in to token {token_label!r}"):
                mechanisms = frozenset(token.slot.get_mechanisms())
                # (python-pkcs11 leaves the session it opened behind when C_Login fails; it is not logged in.)
                session = token.open(rw=True, user_pin=pin)
            salt = secrets.token_bytes(16)
            login = _Login(key, token_label, session, mechanisms, salt, _crypto.hmac_sha256(salt, pin.encode()))
            _LOGINS[key] = login
        login.users += 1
        return login


def _logout(login: _Login) -> None:
    with _LOGINS_LOCK:
        login.users -= 1
        if login.users > 0:
            return
        _LOGINS.pop(login.key, None)
        with login.lock:
            try:
                login.session.close()  # logs out
            except p11e.PKCS11Error:
                pass  # a token that is gone or a session already closed is logged out too


# --- the signer -----------------------------------------------------------------------------------

class Pkcs11Signer:
    """The archive's Ed25519 key inside the token (an :class:`~investigator.vault.format.ArchiveSigner`)."""

    def __init__(self, custody: Pkcs11Custody, private_key: Any, public: _crypto.VerifyKey) -> None:
        self._custody = custody
        self._private = private_key
        self._public = public

    @property
    def public(self) -> _crypto.VerifyKey:
        return self._public

    def sign(self, data: bytes) -> str:
        """The base64 Ed25519 signature of ``data``, made by the token (CKM_EDDSA)."""
        signature = self._custody._call("signing as the archive",
                                        lambda: self._private.sign(data, mechanism=Mechanism.EDDSA))
        return _crypto.b64(bytes(signature))

    def __repr__(self) -> str:
        return f"Pkcs11Signer(key_id={self._public.key_id!r})"


# --- the custody ----------------------------------------------------------------------------------

class Pkcs11Custody(RuntimePeriodScheme):
    """Master keys in a PKCS#11 token: the :class:`~investigator.custody.base.Custody` of an HSM. Never printed.

    Make one with :meth:`provision` (a new archive) or :meth:`open`; it keeps a
    logged-in session until :meth:`close` (or the end of a ``with`` block).
    Errors: WrongPassphrase (PIN), ArchiveError (token, objects, refusals),
    IntegrityError (a wrapped key that does not open), ConfigError (module).
    """

    def __init__(self, login: _Login, archive_id: str) -> None:
        """Internal: use :meth:`provision` or :meth:`open`."""
        self._login: _Login | None = login
        self._archive_id = archive_id
        self._keks: dict[int, Any] = {}
        self._created: dict[int, str] = {}
        self._signing: Pkcs11Signer | None = None
        self._periods: dict[str, Any] = {}  # period -> its AES key object in the token

    # --- making and opening ---------------------------------------------------------------------

    @classmethod
    def provision(cls, module_path: str, pin: str, token_label: str, archive_id: str, *,
                  now: datetime) -> Pkcs11Custody:
        """Make master-key version 1 and the archive signing key in the token for ``archive_id``.

        Raises ArchiveError if the token lacks AES-GCM or EdDSA (nothing is made
        then) or already holds objects for this archive; WrongPassphrase for a
        wrong PIN; ConfigError for a module that does not load.
        """
        _check_archive_id(archive_id)
        login = _login(module_path, pin, token_label)
        custody = cls(login, archive_id)
        try:
            custody._require_mechanisms()
            if custody._archive_objects():
                raise ArchiveError(f"token {token_label!r} already holds keys for archive {archive_id}; "
                                   "refusing to provision it again")
            try:
                custody._make_kek(1, now)
                custody._make_signing_key()
            except BaseException:
                custody._destroy_archive_objects()
                raise
        except BaseException:
            custody.close()
            raise
        return custody

    @classmethod
    def open(cls, module_path: str, pin: str, token_label: str, archive_id: str) -> Pkcs11Custody:
        """Log in and find the archive's master keys and signing key in the token.

        Raises WrongPassphrase for a wrong PIN; ArchiveError for a missing token
        or when the token holds no keys for ``archive_id``.
        """
        _check_archive_id(archive_id)
        login = _login(module_path, pin, token_label)
        custody = cls(login, archive_id)
        try:
            custody._load()
        except BaseException:
            custody.close()
            raise
        return custody

    def close(self) -> None:
        """End this custody's use of the session (the last user logs out). Idempotent."""
        login, self._login = self._login, None
        self._keks.clear()
        self._signing = None
        if login is not None:
            _logout(login)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        token = self._login.token_label if self._login is not None else "closed"
        return f"Pkcs11Custody(archive_id={self._archive_id!r}, token={token!r}, versions={sorted(self._keks)})"

    # --- the Custody protocol -------------------------------------------------------------------

    @property
    def archive_id(self) -> str:
        return self._archive_id

    @property
    def signing(self) -> Pkcs11Signer:
        if self._signing is None:
            raise ArchiveError("this PKCS#11 custody is closed")
        return self._signing

    @property
    def current_version(self) -> int:
        if not self._keks:
            raise ArchiveError("this PKCS#11 custody is closed")
        return max(self._keks)

    def new_data_key(self, kind: str, partition: str) -> tuple[bytes, dict[str, Any]]:
        """A fresh DEK for a partition and its wrapped form (a JSON object to store)."""
        dek = _crypto.new_key()
        return dek, self.wrap(dek, kind, partition)

    def wrap(self, dek: bytes, kind: str, partition: str) -> dict[str, Any]:
        """Wrap ``dek`` under the current master key, inside the token (AES-GCM); or under its period's key
        (period keys enabled, a day partition; PeriodShredded when that period was destroyed)."""
        period = self._period_for(kind, partition)
        if period is not None:
            pkey = self._period_key(period, create=True)
            iv = secrets.token_bytes(IV_BYTES)
            pparams = pkcs11.GCMParams(iv, _period_dek_aad(self._archive_id, kind, partition, period))
            psealed = self._call("wrapping a data key under a period key",
                                 lambda: pkey.encrypt(dek, mechanism=Mechanism.AES_GCM, mechanism_param=pparams))
            return {"format": PERIOD_WRAP_FORMAT, "custody": CUSTODY_NAME, "kind": kind, "partition": partition,
                    "period": period, "wrapped": _crypto.b64(iv + bytes(psealed))}
        version = self.current_version
        key = self._keks[version]
        iv = secrets.token_bytes(IV_BYTES)
        params = pkcs11.GCMParams(iv, _dek_aad(self._archive_id, kind, partition, version))
        sealed = self._call("wrapping a data key",
                            lambda: key.encrypt(dek, mechanism=Mechanism.AES_GCM, mechanism_param=params))
        return {"format": WRAP_FORMAT, "custody": CUSTODY_NAME, "kind": kind, "partition": partition,
                "kek_version": version, "wrapped": _crypto.b64(iv + bytes(sealed))}

    def unwrap(self, wrapped: dict[str, Any], *, what: str = "") -> bytes:
        """The DEK inside ``wrapped``. Raises IntegrityError if it was altered, moved or its version is gone
        (PeriodShredded when its period's key was destroyed)."""
        if isinstance(wrapped, dict) and wrapped.get("format") == PERIOD_WRAP_FORMAT:
            return self._unwrap_period(wrapped, what=what)
        try:
            if wrapped.get("format") != WRAP_FORMAT:
                raise ValueError("format")
            version = int(wrapped["kek_version"])
            kind, partition = str(wrapped["kind"]), str(wrapped["partition"])
            blob = _crypto.unb64(wrapped["wrapped"])
        except (AttributeError, KeyError, ValueError, TypeError) as exc:
            raise IntegrityError("malformed wrapped key", path=what) from exc
        if wrapped.get("custody") != CUSTODY_NAME:
            raise IntegrityError("wrapped key was not made by a PKCS#11 custody", path=what)
        if len(blob) < IV_BYTES + TAG_BYTES:
            raise IntegrityError("wrapped key too short", path=what)
        key = self._kek(version)
        if key is None:
            raise IntegrityError(f"wrapped under unknown master key version {version}", path=what)
        params = pkcs11.GCMParams(blob[:IV_BYTES], _dek_aad(self._archive_id, kind, partition, version))
        login = self._session()
        with login.lock:
            try:
                return bytes(key.decrypt(blob[IV_BYTES:], mechanism=Mechanism.AES_GCM, mechanism_param=params))
            except _OPEN_FAILED as exc:
                raise IntegrityError("authentication failed (tampered data or wrong key)", path=what) from exc
            except _KEY_GONE as exc:
                raise IntegrityError(f"master key version {version} is no longer in the token", path=what) from exc
            except p11e.PKCS11Error as exc:
                raise _converted(exc, "unwrapping a data key") from exc

    def seal(self, secret: bytes, *, purpose: str, name: str) -> dict[str, Any]:
        """Seal a small secret (the TOTP key ...) under the current master key, bound to ``purpose`` and ``name``."""
        return self.wrap(secret, purpose, name)

    def unseal(self, sealed: dict[str, Any], *, what: str = "") -> bytes:
        """The secret inside ``sealed``. Raises IntegrityError if it was altered or moved."""
        return self.unwrap(sealed, what=what)

    def versions(self) -> dict[int, str]:
        """Master-key versions in the token and when each was made (no secrets)."""
        self._session()
        return {v: self._created.get(v, "") for v in sorted(self._keks)}

    def add_version(self, *, now: datetime) -> int:
        """Make a new master key in the token (rotation); new wraps use it. Raises ArchiveError."""
        version = self.current_version + 1
        self._make_kek(version, now)
        return version

    def remove_version(self, version: int) -> None:
        """Destroy master-key ``version`` in the token (retirement). Raises ArchiveError for the current or an unknown one.

        Callers check first that no wrapped key depends on it: its wrapped copies cannot be opened afterwards.
        """
        if version not in self._keks:
            raise ArchiveError(f"master key version {version} is not in the token (versions: {sorted(self._keks)})")
        if version == self.current_version:
            raise ArchiveError(f"version {version} is the current master key; rotate first")
        label = _kek_label(self._archive_id, version)
        doomed = [obj for obj in self._archive_objects() if obj[1] in (label, f"{label}:created")]
        for obj, _label in doomed:
            self._call(f"destroying master key version {version}", obj.destroy)
        del self._keks[version]
        self._created.pop(version, None)

    # --- period keys (crypto-shredding; docs/archive-format.md, "Period keys") --------------------

    def _find_period_key(self, period: str) -> Any | None:
        label = _period_label(self._archive_id, period)
        found = [obj for obj, obj_label in self._archive_objects()
                 if obj_label == label and isinstance(obj, pkcs11.SecretKey)]
        return found[0] if found else None

    def _period_key(self, period: str, *, create: bool) -> Any:
        """``period``'s AES key object in the token, made (like a master key: sensitive, never extractable)
        when ``create`` and missing. PeriodShredded for a destroyed period, IntegrityError for an unknown one."""
        if period in self._periods:
            return self._periods[period]
        found = self._find_period_key(period)
        if found is None:
            if self._period_destroyed(period):
                raise PeriodShredded(f"the key of period {period} was destroyed (crypto-shredded)")
            if not create:
                raise PeriodShredded(f"the key of period {period} is not in the token (destroyed, or another "
                                     "token)")
            label = _period_label(self._archive_id, period)
            template = {
                Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False, Attribute.MODIFIABLE: False, Attribute.COPYABLE: False,
                Attribute.ENCRYPT: True, Attribute.DECRYPT: True, Attribute.WRAP: False, Attribute.UNWRAP: False,
                Attribute.SIGN: False, Attribute.VERIFY: False, Attribute.DERIVE: False,
            }
            session = self._session().session
            found = self._call(f"making the key of period {period}", lambda: session.generate_key(
                KeyType.AES, 256, id=label.encode(), label=label, store=True,
                capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT, template=template))
        self._periods[period] = found
        return found

    def _unwrap_period(self, wrapped: dict[str, Any], *, what: str) -> bytes:
        kind, partition, period, payload = parse_period_wrapped(wrapped, custody=CUSTODY_NAME, what=what)
        try:
            blob = _crypto.unb64(payload)
        except ValueError as exc:
            raise IntegrityError("malformed wrapped key", path=what) from exc
        if len(blob) < IV_BYTES + TAG_BYTES:
            raise IntegrityError("wrapped key too short", path=what)
        params = pkcs11.GCMParams(blob[:IV_BYTES], _period_dek_aad(self._archive_id, kind, partition, period))
        for attempt in range(2):  # a key object another process destroyed: look in the token again once
            try:
                key = self._period_key(period, create=False)
            except PeriodShredded as exc:
                raise PeriodShredded(str(exc), path=what) from None
            login = self._session()
            with login.lock:
                try:
                    return bytes(key.decrypt(blob[IV_BYTES:], mechanism=Mechanism.AES_GCM, mechanism_param=params))
                except _OPEN_FAILED as exc:
                    raise IntegrityError("authentication failed (tampered data or wrong key)", path=what) from exc
                except _KEY_GONE:
                    self._periods.pop(period, None)
                    if attempt:
                        raise PeriodShredded(f"the key of period {period} is no longer in the token",
                                             path=what) from None
                except p11e.PKCS11Error as exc:
                    raise _converted(exc, "unwrapping a data key under a period key") from exc
        raise PeriodShredded(f"the key of period {period} is no longer in the token", path=what)

    def period_keys(self) -> dict[str, str]:
        """Periods whose key is in the token (no secrets; the token keeps no creation time for them)."""
        prefix = f"{LABEL_PREFIX}:{self._archive_id}:period:"
        return {label[len(prefix):]: "" for obj, label in self._archive_objects()
                if label.startswith(prefix) and isinstance(obj, pkcs11.SecretKey)}

    def destroyed_periods(self) -> dict[str, str]:
        """Not kept in the token: the archive's signed destruction records say which periods went, and when."""
        return {}

    def destroy_period(self, period: str, *, now: datetime) -> bool:
        """Destroy ``period``'s key object in the token (C_DestroyObject). Idempotent: False when already gone."""
        del now
        label = _period_label(self._archive_id, period)
        self._periods.pop(period, None)
        doomed = [obj for obj, obj_label in self._archive_objects() if obj_label == label]
        for obj in doomed:
            self._call(f"destroying the key of period {period}", obj.destroy)
        if self._find_period_key(period) is not None:
            raise ArchiveError(f"the key of period {period} is still in the token after C_DestroyObject")
        return bool(doomed)

    # --- inside ---------------------------------------------------------------------------------

    def _session(self) -> _Login:
        if self._login is None:
            raise ArchiveError("this PKCS#11 custody is closed")
        return self._login

    def _call(self, doing: str, action: Callable[[], T]) -> T:
        """Run one token operation under the session lock, converting its errors."""
        login = self._session()
        with login.lock, _token_errors(doing):
            return action()

    def _kek(self, version: int) -> Any:
        """The key object of ``version``, looking in the token again if another process added it."""
        if version not in self._keks and self._login is not None:
            self._load()
        return self._keks.get(version)

    def _require_mechanisms(self) -> None:
        login = self._session()
        missing = [name for mech, name in REQUIRED_MECHANISMS.items() if mech not in login.mechanisms]
        if missing:
            raise ArchiveError(f"token {login.token_label!r} lacks {', '.join(missing)}; "
                               "it cannot hold the archive's master keys")
        missing = [name for mech, name in SIGNING_MECHANISMS.items() if mech not in login.mechanisms]
        if missing:
            raise ArchiveError(
                f"token {login.token_label!r} lacks Ed25519 ({', '.join(missing)}); the archive signing key "
                "cannot live in it, and it is not kept anywhere else instead",
                hint="use a token (or SoftHSM2 build) with EdDSA, or keep this archive on the key file custody "
                     "(docs/admin.md, 'Custody: PKCS#11 (HSM)')")

    def _archive_objects(self) -> list[tuple[Any, str]]:
        """Every object in the token labelled for this archive, with its label."""
        prefix = _archive_prefix(self._archive_id)

        def find() -> list[tuple[Any, str]]:
            found = []
            for obj in self._session().session.get_objects():
                try:
                    label = str(obj[Attribute.LABEL])
                except p11e.AttributeTypeInvalid:
                    continue
                if label.startswith(prefix):
                    found.append((obj, label))
            return found

        return self._call("listing the token's objects", find)

    def _load(self) -> None:
        """Find this archive's master keys, their creation times and the signing key in the token."""
        keks: dict[int, Any] = {}
        created: dict[int, str] = {}
        private = public = None
        kek_prefix = _kek_label(self._archive_id, 0)[:-1]
        signing = _signing_label(self._archive_id)
        for obj, label in self._archive_objects():
            rest = label.removeprefix(kek_prefix)
            if label == signing:
                if isinstance(obj, pkcs11.PrivateKey):
                    private = obj
                elif isinstance(obj, pkcs11.PublicKey):
                    public = obj
            elif rest.isdigit() and isinstance(obj, pkcs11.SecretKey):
                keks[int(rest)] = obj
            elif rest.endswith(":created") and rest.removesuffix(":created").isdigit():
                value = self._call("reading a version's time", partial(_read_bytes, obj, Attribute.VALUE))
                created[int(rest.removesuffix(":created"))] = value.decode("ascii", "replace")
        login = self._session()
        if not keks or private is None or public is None:
            raise ArchiveError(f"token {login.token_label!r} holds no complete key set for archive "
                               f"{self._archive_id} (master keys: {sorted(keks)}, signing key: "
                               f"{'yes' if private is not None else 'no'})",
                               hint="check the token label and archive id, or provision the archive")
        point = self._call("reading the archive's public key", partial(_read_bytes, public, Attribute.EC_POINT))
        self._keks, self._created = keks, created
        self._signing = Pkcs11Signer(self, private, _crypto.VerifyKey(_raw_ed25519_point(point)))

    def _make_kek(self, version: int, now: datetime) -> None:
        label = _kek_label(self._archive_id, version)
        template = {
            Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False, Attribute.MODIFIABLE: False, Attribute.COPYABLE: False,
            Attribute.ENCRYPT: True, Attribute.DECRYPT: True, Attribute.WRAP: False, Attribute.UNWRAP: False,
            Attribute.SIGN: False, Attribute.VERIFY: False, Attribute.DERIVE: False,
        }
        stamp = format_ts(now)
        session = self._session().session

        def make() -> Any:
            key = session.generate_key(KeyType.AES, 256, id=label.encode(), label=label, store=True,
                                       capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
                                       template=template)
            try:
                session.create_object({
                    Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.PRIVATE: True,
                    Attribute.MODIFIABLE: False, Attribute.LABEL: f"{label}:created",
                    Attribute.APPLICATION: APPLICATION, Attribute.VALUE: stamp.encode("ascii")})
            except BaseException:
                key.destroy()
                raise
            return key

        self._keks[version] = self._call(f"making master key version {version}", make)
        self._created[version] = stamp

    def _make_signing_key(self) -> None:
        label = _signing_label(self._archive_id)
        session = self._session().session
        public_template = {Attribute.EC_PARAMS: ED25519_EC_PARAMS, Attribute.TOKEN: True, Attribute.PRIVATE: False,
                           Attribute.VERIFY: True, Attribute.MODIFIABLE: False}
        private_template = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                            Attribute.EXTRACTABLE: False, Attribute.MODIFIABLE: False, Attribute.COPYABLE: False,
                            Attribute.SIGN: True, Attribute.DECRYPT: False, Attribute.UNWRAP: False,
                            Attribute.DERIVE: False}

        def make() -> tuple[Any, Any]:
            return session.generate_keypair(
                KeyType.EC_EDWARDS, id=label.encode(), label=label, store=True,
                capabilities=pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                public_template=public_template, private_template=private_template)

        public, private = self._call("making the archive signing key", make)
        point = self._call("reading the archive's public key", partial(_read_bytes, public, Attribute.EC_POINT))
        self._signing = Pkcs11Signer(self, private, _crypto.VerifyKey(_raw_ed25519_point(point)))

    def _destroy_archive_objects(self) -> None:
        """Undo a half-done provisioning (best effort; the original error is the one raised)."""
        try:
            for obj, _label in self._archive_objects():
                self._call("removing a half-made key", obj.destroy)
        except InvestigatorError:
            pass
        self._keks.clear()
        self._created.clear()
        self._signing = None


def unlock_archive(archive: Archive, module_path: str, pin: str, token_label: str, *,
                   actor: str = "", purpose: str = "unspecified") -> Pkcs11Custody:
    """Open the token's keys for ``archive``. A wrong PIN raises WrongPassphrase and is audited.

    Raises IntegrityError if the token's signing key is not the one in the
    archive's ``archive.toml`` (keys of another archive), ArchiveError for a
    missing token or keys.
    """
    try:
        custody = Pkcs11Custody.open(module_path, pin, token_label, archive.archive_id)
    except WrongPassphrase:
        archive.audit.append(actor or "unknown", "unlock", archive.archive_id,
                             {"reason": "wrong PIN", "purpose": purpose, "custody": "pkcs11"}, outcome="denied")
        raise
    if custody.signing.public.raw != archive.signing_keys().current.raw:
        custody.close()
        raise IntegrityError(f"the signing key in token {token_label!r} belongs to another archive",
                             path=str(archive.root))
    scheme = archive.config.custody.get("period_keys")
    if scheme:
        custody.use_period_keys(scheme, destroyed=lambda p: archive.layout.destruction_record(p).exists())
    return custody
