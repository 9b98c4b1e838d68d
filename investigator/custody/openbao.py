"""OpenBao (or Vault) transit custody: the master keys live in the key server's transit engine, never here.

    >>> custody = OpenBaoCustody.provision(addr, token, archive_id, now=now)    # doctest: +SKIP
    >>> custody = OpenBaoCustody.open(addr, token, archive_id)                  # doctest: +SKIP
    >>> dek, wrapped = custody.new_data_key("messages", "2026-11-18")           # doctest: +SKIP
    >>> wrapped["wrapped"][:9], wrapped["custody"]                              # doctest: +SKIP
    ('vault:v1:', 'openbao')
    >>> custody.unwrap(wrapped) == dek                                          # doctest: +SKIP
    True

Two transit keys per archive, both created non-exportable (no plaintext backup,
no key derivation):

* ``investigator-<archive_id>-kek`` (``aes256-gcm96``): the key-encryption key.
  Its transit versions ARE the master-key versions: :meth:`~OpenBaoCustody.add_version`
  rotates it, :meth:`~OpenBaoCustody.remove_version` raises its
  ``min_decryption_version`` and trims the versions below.
* ``investigator-<archive_id>-signing`` (``ed25519``): the archive signing key
  (manifests, audit checkpoints, grants); only its version 1 is ever used,
  because ``archive.toml`` pins the archive's public key.

Data keys are made by the server (``datakey/plaintext``, as a KMS's
GenerateDataKey): one round trip returns the plaintext key and its wrapped form.
Wrapping, unwrapping and data-key generation pass ``associated_data`` (AES-GCM
AAD; OpenBao 2.x transit accepts it for ``aes256-gcm96``) binding the archive id,
the key kind and the partition, so a wrapped key moved to another partition or
archive does not open. The master-key version is bound by the server itself:
``vault:vN:`` names the key version that authenticates the ciphertext, and
:meth:`~OpenBaoCustody.unwrap` refuses a blob whose ``kek_version`` differs from it.

A wrapped key keeps the vault's shape, plus the backend's name::

    {"format": "investigator-wrapped-key/1", "custody": "openbao", "kind": "messages",
     "partition": "2026-11-18", "kek_version": 1, "wrapped": "vault:v1:..."}

Address and token are values: the edge (the key server, the CLI) reads them from
``BAO_ADDR`` and ``BAO_TOKEN`` (and a CA file from ``BAO_CACERT``) and passes
them in; this module reads no environment variable. Errors: every hvac/requests
exception is converted at this boundary, without the token or any key bytes in
the message and without the original exception attached (it holds the request,
whose headers carry the token):

* a token the server does not know (mistyped, expired, revoked) -> WrongPassphrase;
* a valid token whose policy lacks a path, a sealed or unreachable server, or an
  answer out of protocol -> KeyServiceError;
* keys that do not exist (an unprovisioned archive), keys that exist already at
  provisioning, keys not made as provisioned (exportable, wrong type) -> ArchiveError;
* a wrapped key or sealed secret that was altered, moved, or made under a removed
  or unknown version -> IntegrityError.

Setup, the key server's HCL policy (:func:`key_server_policy`) and the threats:
docs/admin.md, "Custody: OpenBao transit". ``bao server -dev`` is for tests only.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, NoReturn

import hvac
import hvac.exceptions
import requests

from investigator import _crypto
from investigator.custody.base import RuntimePeriodScheme
from investigator.custody.file import WRAP_FORMAT
from investigator.errors import (ArchiveError, ConfigError, IntegrityError, InvestigatorError, KeyServiceError,
                                 PeriodShredded, WrongPassphrase)
from investigator.vault.destruction import PERIOD_WRAP_FORMAT, check_period, parse_period_wrapped
from investigator.schema import canonical_json, format_ts
from investigator.vault.store import Archive

CUSTODY_NAME = "openbao"
KEK_TYPE = "aes256-gcm96"
SIGNING_TYPE = "ed25519"
SIGNING_VERSION = 1  # archive.toml pins the archive's public key: the signing key is never rotated
DEFAULT_TIMEOUT = 10.0  # seconds per request to the key server

_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")
_MOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_-]*)*")
_CIPHERTEXT = re.compile(r"vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/=]+")
_POLICY_HINT = "see docs/admin.md, 'Custody: OpenBao transit', for the token's policy"


def kek_name(archive_id: str) -> str:
    """The transit key that holds the archive's master-key versions."""
    return f"investigator-{archive_id}-kek"


def signing_key_name(archive_id: str) -> str:
    """The transit key that signs as the archive."""
    return f"investigator-{archive_id}-signing"


def period_key_name(archive_id: str, period: str) -> str:
    """The transit key of one retention period (crypto-shredding: deleted when the period is destroyed)."""
    return f"investigator-{archive_id}-period-{check_period(period)}"


def key_server_policy(archive_id: str, *, mount: str = "transit") -> str:
    """The smallest HCL policy the key server's token needs for one archive (no export, no delete, no mounts).

    ``config`` is limited to the two version floors, so the token cannot make
    a key exportable or deletable.

    Read both keys' metadata, make / wrap / unwrap data keys, rotate and retire
    master-key versions, sign as the archive. Provisioning needs more (an admin
    token: enable the mount, create keys); see docs/admin.md.
    """
    mount, archive_id = _check_mount(mount), _check_archive_id(archive_id)
    kek, signing = kek_name(archive_id), signing_key_name(archive_id)
    lines = [f'# investigator key server, archive {archive_id}',
             f'path "{mount}/keys/{kek}" {{ capabilities = ["read"] }}']
    lines += [f'path "{mount}/{p}" {{ capabilities = ["update"] }}'
              for p in (f"encrypt/{kek}", f"decrypt/{kek}", f"datakey/plaintext/{kek}", f"keys/{kek}/rotate",
                        f"keys/{kek}/trim")]
    lines += [f'path "{mount}/keys/{kek}/config" {{',  # retirement only: never exportable, never deletable
              '  capabilities = ["update"]',
              '  allowed_parameters = { "min_decryption_version" = [], "min_encryption_version" = [] }',
              '}']
    lines += [f'path "{mount}/keys/{signing}" {{ capabilities = ["read"] }}',
              f'path "{mount}/sign/{signing}" {{ capabilities = ["update"] }}']
    # period keys (crypto-shredding): made with the defaults (aes256-gcm96, not exportable), and deletable,
    # since destroying one is the point; no other parameter may be set on them (never exportable)
    period = f"investigator-{archive_id}-period-"
    lines += [f'path "{mount}/keys/{period}*" {{',
              '  capabilities = ["create", "read", "update", "delete"]',
              '  allowed_parameters = { "deletion_allowed" = [] }',
              '}']
    lines += [f'path "{mount}/{p}{period}*" {{ capabilities = ["update"] }}'
              for p in ("encrypt/", "decrypt/", "datakey/plaintext/")]
    lines += [f'path "{mount}/keys" {{ capabilities = ["list"] }}']
    return "\n".join(lines) + "\n"


def provisioning_policy(*, mount: str = "transit") -> str:
    """The HCL policy of the admin token that provisions archives (:meth:`OpenBaoCustody.provision`).

    Enable the transit engine at ``mount`` (if missing) and create any
    archive's keys. The glob also covers every archive key's ``config``: an
    admin-grade token, to be issued short-lived for provisioning only.
    """
    mount = _check_mount(mount)
    return (f'# investigator: provisioning archives in {mount}/ (admin, short-lived)\n'
            'path "sys/mounts" { capabilities = ["read"] }\n'
            f'path "sys/mounts/{mount}" {{ capabilities = ["create", "update"] }}\n'
            f'path "{mount}/keys/investigator-*" {{ capabilities = ["read", "update"] }}\n')


def _check_archive_id(archive_id: str) -> str:
    if not isinstance(archive_id, str) or not _NAME_PART.fullmatch(archive_id):
        raise ArchiveError(f"archive id {archive_id!r} cannot name a transit key (letters, digits, '-', '_', '.')")
    return archive_id


def _check_mount(mount: str) -> str:
    if not isinstance(mount, str) or not _MOUNT.fullmatch(mount.strip("/")):
        raise ConfigError(f"transit mount {mount!r} is not a valid mount path")
    return mount.strip("/")


def _check_addr(addr: str) -> str:
    if not isinstance(addr, str) or not re.fullmatch(r"https?://[^\s/@]+(/[^\s@]*)?", addr):
        raise ConfigError("the OpenBao address must be an http(s):// URL without credentials "
                          "(e.g. https://bao.example.internal:8200)", hint="set BAO_ADDR")
    return addr.rstrip("/")


def _wrap_aad(archive_id: str, kind: str, partition: str) -> str:
    """Base64 associated data of a wrapped key: archive, kind and partition (the version is the server's)."""
    return _crypto.b64(canonical_json({"archive": archive_id, "custody": CUSTODY_NAME, "kind": kind,
                                       "partition": partition, "purpose": "dek"}))


def _period_aad(archive_id: str, kind: str, partition: str, period: str) -> str:
    """Base64 associated data of a data key wrapped under a period key."""
    return _crypto.b64(canonical_json({"archive": archive_id, "custody": CUSTODY_NAME, "kind": kind,
                                       "partition": partition, "period": period, "purpose": "dek-period"}))


def _reason(exc: hvac.exceptions.VaultError) -> str:
    """The server's own words (never the request): short, for the message."""
    errors = [" ".join(str(e).split()) for e in (exc.errors or [])]
    text = "; ".join(e for e in errors if e) or "no reason given"
    return text if len(text) <= 200 else text[:197] + "..."


def _out_of_protocol(doing: str) -> NoReturn:
    raise KeyServiceError(f"OpenBao answered {doing} out of protocol")


class _Server:
    """One key server connection (an hvac client); converts every hvac/requests failure to our errors."""

    def __init__(self, addr: str, token: str, *, ca_cert: str | None, timeout: float) -> None:
        self.addr = _check_addr(addr)
        if not isinstance(token, str) or not token.strip():
            raise WrongPassphrase("no OpenBao token given", hint="set BAO_TOKEN")
        # url, token and verify are always given, so hvac consults no VAULT_* variable for them.
        self._client = hvac.Client(url=self.addr, token=token.strip(), verify=ca_cert or True, timeout=timeout)

    def __repr__(self) -> str:
        return f"_Server(addr={self.addr!r})"

    def send(self, method: str, path: str, payload: dict[str, Any] | None = None, *,
             doing: str) -> dict[str, Any] | hvac.exceptions.VaultError:
        """``method`` ``/v1/<path>``: the answer's ``data`` (``{}`` for an empty one), or the server's refusal.

        Transport failures and answers that are not JSON raise KeyServiceError.
        """
        error: InvestigatorError
        try:
            if method == "GET":
                answer = self._client.adapter.get(f"/v1/{path}")
            elif method == "LIST":
                answer = self._client.adapter.list(f"/v1/{path}")
            elif method == "DELETE":
                answer = self._client.adapter.delete(f"/v1/{path}")
            else:
                answer = self._client.adapter.post(f"/v1/{path}", json=payload or {})
        except hvac.exceptions.VaultError as exc:
            return exc.with_traceback(None)  # its traceback frames hold the request (token, plaintext): drop them
        except requests.exceptions.RequestException as exc:
            error = KeyServiceError(f"cannot reach OpenBao at {self.addr} for {doing} "
                                    f"({type(exc).__name__})", hint="is BAO_ADDR right and the server up?")
        except ValueError:  # a body that is not JSON
            error = KeyServiceError(f"OpenBao at {self.addr} answered {doing} out of protocol")
        else:
            if not isinstance(answer, dict):  # 204 No Content: hvac hands back the response
                return {}
            data = answer.get("data")
            return data if isinstance(data, dict) else {}
        # Raised outside the except clause on purpose: the requests exception (and the request it holds,
        # whose headers carry the token) is not chained to ours.
        raise error

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None, *, doing: str,
             opening: str | None = None) -> dict[str, Any]:
        """Like :meth:`send`, raising our error for a refusal.

        ``opening`` (the name of what is being unwrapped) turns a refusal of the
        ciphertext (HTTP 400) into IntegrityError.
        """
        answer = self.send(method, path, payload, doing=doing)
        if isinstance(answer, hvac.exceptions.VaultError):
            raise self.convert(answer, doing=doing, opening=opening)
        return answer

    def read(self, path: str, *, doing: str) -> dict[str, Any] | None:
        """GET ``/v1/<path>``'s data, None if the server has nothing there (404)."""
        answer = self.send("GET", path, doing=doing)
        if isinstance(answer, hvac.exceptions.InvalidPath):
            return None
        if isinstance(answer, hvac.exceptions.VaultError):
            raise self.convert(answer, doing=doing)
        return answer

    def convert(self, exc: hvac.exceptions.VaultError, *, doing: str, opening: str | None = None) -> InvestigatorError:
        """Our error for the server's refusal ``exc`` of ``doing``."""
        reason = _reason(exc)
        if isinstance(exc, hvac.exceptions.InvalidRequest) and opening is not None:
            return IntegrityError(f"OpenBao cannot open it ({reason}): altered, moved, or made under a "
                                  "removed or unknown master-key version", path=opening)
        if isinstance(exc, (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)):
            if not self.token_is_valid():
                return WrongPassphrase(f"OpenBao at {self.addr} does not accept this token "
                                       "(mistyped, expired or revoked)", hint="check BAO_TOKEN")
            return KeyServiceError(f"OpenBao at {self.addr} refused {doing}: the token's policy does not "
                                   f"allow it ({reason})", hint=_POLICY_HINT)
        if isinstance(exc, hvac.exceptions.InvalidPath):
            return ArchiveError(f"{doing}: not found on OpenBao at {self.addr}")
        if isinstance(exc, hvac.exceptions.VaultDown):
            return KeyServiceError(f"OpenBao at {self.addr} is sealed or unavailable ({reason})")
        return KeyServiceError(f"OpenBao at {self.addr} failed {doing}: {reason}")

    def close(self) -> None:
        """Close the HTTP connections (the client cannot be used afterwards)."""
        self._client.adapter.close()

    def token_is_valid(self) -> bool:
        """Whether the server knows the token (``auth/token/lookup-self``, which the default policy allows)."""
        answer = self.send("GET", "auth/token/lookup-self", doing="a token lookup")
        if isinstance(answer, (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)):
            return False
        if isinstance(answer, hvac.exceptions.VaultError):
            raise self.convert(answer, doing="a token lookup")
        return True


class TransitSigner:
    """Signs as the archive with the transit ``ed25519`` key (an :class:`~investigator.vault.format.ArchiveSigner`)."""

    def __init__(self, server: _Server, path: str, public: _crypto.VerifyKey) -> None:
        self._server = server
        self._path = path  # "<mount>/sign/<name>"
        self._public = public

    def __repr__(self) -> str:
        return f"TransitSigner(key_id={self._public.key_id!r})"

    @property
    def public(self) -> _crypto.VerifyKey:
        return self._public

    def sign(self, data: bytes) -> str:
        """The base64 raw 64-byte Ed25519 signature of ``data`` (from transit's ``vault:v1:...``), checked here."""
        answer = self._server.call("POST", self._path, {"input": _crypto.b64(data), "key_version": SIGNING_VERSION},
                                   doing="signing")
        text = answer.get("signature")
        prefix = f"vault:v{SIGNING_VERSION}:"
        if not isinstance(text, str) or not text.startswith(prefix):
            _out_of_protocol("signing")
        try:
            raw = _crypto.unb64(text[len(prefix):])
        except ValueError:
            _out_of_protocol("signing")
        signature = _crypto.b64(raw)
        if len(raw) != 64 or not self._public.is_valid(signature, data):
            raise KeyServiceError("OpenBao's signature does not verify under the archive's public key")
        return signature


class OpenBaoCustody(RuntimePeriodScheme):
    """The archive's master keys in an OpenBao transit engine (see the module docstring). Never shows the token.

    Make with :meth:`provision` (new archive) or :meth:`open` / :meth:`for_archive`.
    """

    def __init__(self, server: _Server, archive_id: str, mount: str, signer: TransitSigner) -> None:
        self._server = server
        self._archive_id = archive_id
        self._mount = mount
        self._signer = signer
        self._kek = kek_name(archive_id)
        self._periods_seen: set[str] = set()

    def __repr__(self) -> str:
        return (f"OpenBaoCustody(archive_id={self._archive_id!r}, addr={self._server.addr!r}, "
                f"mount={self._mount!r})")

    def close(self) -> None:
        """Close the connections to the key server; the keys stay on it."""
        self._server.close()

    def __enter__(self) -> "OpenBaoCustody":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- making and opening ---------------------------------------------------------

    @classmethod
    def provision(cls, addr: str, token: str, archive_id: str, *, mount: str = "transit",
                  now: datetime | None = None, ca_cert: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> "OpenBaoCustody":
        """Create the archive's two transit keys (non-exportable) and return them unlocked.

        Enables the transit engine at ``mount`` if it is missing (that needs an
        admin token; the key server's own token needs only :func:`key_server_policy`).
        Raises ArchiveError if either key exists (keys are never reused or
        overwritten; transit's create would silently keep an existing key) or
        ``mount`` holds another engine; WrongPassphrase for a token the server
        does not know; KeyServiceError otherwise. ``now`` is accepted for
        symmetry with the key file: the server stamps its own creation times
        (:meth:`versions`).
        """
        del now
        archive_id, mount = _check_archive_id(archive_id), _check_mount(mount)
        server = _Server(addr, token, ca_cert=ca_cert, timeout=timeout)
        if not server.token_is_valid():
            raise WrongPassphrase(f"OpenBao at {server.addr} does not accept this token "
                                  "(mistyped, expired or revoked)", hint="check BAO_TOKEN")
        cls._ensure_mount(server, mount)
        for name in (kek_name(archive_id), signing_key_name(archive_id)):
            if cls._read_key(server, mount, name) is not None:
                raise ArchiveError(f"transit key {mount}/{name} already exists on {server.addr}; refusing to reuse "
                                   "or overwrite an archive's keys")
        for name, key_type in ((kek_name(archive_id), KEK_TYPE), (signing_key_name(archive_id), SIGNING_TYPE)):
            server.call("POST", f"{mount}/keys/{name}",
                        {"type": key_type, "exportable": False, "allow_plaintext_backup": False, "derived": False},
                        doing=f"creating transit key {mount}/{name}")
        return cls._open(server, archive_id, mount)

    @classmethod
    def open(cls, addr: str, token: str, archive_id: str, *, mount: str = "transit", ca_cert: str | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> "OpenBaoCustody":
        """The archive's provisioned keys on the server at ``addr``, checked (types, not exportable).

        Raises WrongPassphrase for a token the server does not know, ArchiveError
        when the keys are missing (not provisioned, wrong mount or archive id) or
        not as provisioned, KeyServiceError for an unreachable or sealed server or
        a token whose policy does not allow reading the keys.
        """
        archive_id, mount = _check_archive_id(archive_id), _check_mount(mount)
        return cls._open(_Server(addr, token, ca_cert=ca_cert, timeout=timeout), archive_id, mount)

    @classmethod
    def for_archive(cls, archive: Archive, addr: str, token: str, *, mount: str = "transit",
                    ca_cert: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> "OpenBaoCustody":
        """:meth:`open` for ``archive``; raises IntegrityError if the signing key is not the one in archive.toml."""
        custody = cls.open(addr, token, archive.archive_id, mount=mount, ca_cert=ca_cert, timeout=timeout)
        if custody.signing.public.raw != archive.signing_keys().current.raw:
            raise IntegrityError("the transit signing key is not the archive's (archive.toml or its last key "
                                 "transition names another public key)", path="archive.toml")
        scheme = archive.config.custody.get("period_keys")
        if scheme:
            custody.use_period_keys(scheme, destroyed=lambda p: archive.layout.destruction_record(p).exists())
        return custody

    @staticmethod
    def _ensure_mount(server: _Server, mount: str) -> None:
        mounts = server.send("GET", "sys/mounts", doing="listing secrets engines")
        if isinstance(mounts, hvac.exceptions.Forbidden):
            return  # a token that may not list mounts: the mount must exist already (creating the keys tells)
        if isinstance(mounts, hvac.exceptions.VaultError):
            raise server.convert(mounts, doing="listing secrets engines")
        found = mounts.get(f"{mount}/")
        if isinstance(found, dict):
            if found.get("type") != "transit":
                raise ArchiveError(f"{server.addr}: mount {mount}/ holds a {found.get('type')!r} engine, not transit")
            return
        server.call("POST", f"sys/mounts/{mount}", {"type": "transit", "description": "investigator custody"},
                    doing=f"enabling the transit engine at {mount}/")

    @staticmethod
    def _read_key(server: _Server, mount: str, name: str) -> dict[str, Any] | None:
        """The key's metadata, None if it does not exist."""
        return server.read(f"{mount}/keys/{name}", doing=f"reading transit key {mount}/{name}")

    @classmethod
    def _open(cls, server: _Server, archive_id: str, mount: str) -> "OpenBaoCustody":
        keys: dict[str, dict[str, Any]] = {}
        for name, key_type in ((kek_name(archive_id), KEK_TYPE), (signing_key_name(archive_id), SIGNING_TYPE)):
            info = cls._read_key(server, mount, name)
            if info is None:
                raise ArchiveError(f"transit key {mount}/{name} not found on {server.addr} (archive not provisioned "
                                   "there, or another mount)", hint="provision the archive first (docs/admin.md)")
            problems = [p for p, bad in (
                (f"type {info.get('type')!r}, expected {key_type!r}", info.get("type") != key_type),
                ("exportable (master keys must never leave the server)", info.get("exportable") is not False),
                ("plaintext backup allowed", bool(info.get("allow_plaintext_backup"))),
                ("key derivation enabled", bool(info.get("derived")))) if bad]
            if problems:
                raise ArchiveError(f"transit key {mount}/{name} is not as provisioned: {'; '.join(problems)}")
            keys[name] = info
        try:
            entry = keys[signing_key_name(archive_id)]["keys"][str(SIGNING_VERSION)]
            public = _crypto.VerifyKey.from_b64(entry["public_key"])
        except (KeyError, TypeError, IntegrityError):
            _out_of_protocol("the signing key's public key")
        signer = TransitSigner(server, f"{mount}/sign/{signing_key_name(archive_id)}", public)
        return cls(server, archive_id, mount, signer)

    # --- Keyring ----------------------------------------------------------------------

    @property
    def archive_id(self) -> str:
        return self._archive_id

    @property
    def signing(self) -> TransitSigner:
        return self._signer

    def new_data_key(self, kind: str, partition: str) -> tuple[bytes, dict[str, Any]]:
        """A fresh 256-bit DEK made by the server (``datakey/plaintext``) and its wrapped form."""
        period = self._period_for(kind, partition)
        if period is not None:
            dek = _crypto.new_key()
            return dek, self.wrap(dek, kind, partition)
        answer = self._server.call("POST", f"{self._mount}/datakey/plaintext/{self._kek}",
                                   {"bits": 256, "associated_data": _wrap_aad(self._archive_id, kind, partition)},
                                   doing="making a data key")
        try:
            dek = _crypto.unb64(answer["plaintext"])
        except (KeyError, TypeError, ValueError):
            _out_of_protocol("making a data key")
        if len(dek) != _crypto.KEY_BYTES:
            _out_of_protocol("making a data key")
        return dek, self._wrapped(answer, kind, partition, doing="making a data key")

    def wrap(self, dek: bytes, kind: str, partition: str) -> dict[str, Any]:
        """Wrap ``dek`` under the current master-key version (transit encrypt, AAD = archive/kind/partition),
        or under its period's key (period keys enabled, a day partition; PeriodShredded when destroyed)."""
        period = self._period_for(kind, partition)
        if period is not None:
            name = self._period_key(period)
            answer = self._server.call("POST", f"{self._mount}/encrypt/{name}",
                                       {"plaintext": _crypto.b64(dek),
                                        "associated_data": _period_aad(self._archive_id, kind, partition, period)},
                                       doing="wrapping a key under a period key")
            ciphertext = answer.get("ciphertext")
            if not isinstance(ciphertext, str) or _CIPHERTEXT.fullmatch(ciphertext) is None:
                _out_of_protocol("wrapping a key under a period key")
            return {"format": PERIOD_WRAP_FORMAT, "custody": CUSTODY_NAME, "kind": kind, "partition": partition,
                    "period": period, "wrapped": ciphertext}
        answer = self._server.call("POST", f"{self._mount}/encrypt/{self._kek}",
                                   {"plaintext": _crypto.b64(dek),
                                    "associated_data": _wrap_aad(self._archive_id, kind, partition)},
                                   doing="wrapping a key")
        return self._wrapped(answer, kind, partition, doing="wrapping a key")

    def _wrapped(self, answer: dict[str, Any], kind: str, partition: str, *, doing: str) -> dict[str, Any]:
        ciphertext, version = answer.get("ciphertext"), answer.get("key_version")
        match = _CIPHERTEXT.fullmatch(ciphertext) if isinstance(ciphertext, str) else None
        if match is None or (version is not None and version != int(match.group(1))):
            _out_of_protocol(doing)
        return {"format": WRAP_FORMAT, "custody": CUSTODY_NAME, "kind": kind, "partition": partition,
                "kek_version": int(match.group(1)), "wrapped": ciphertext}

    def unwrap(self, wrapped: dict[str, Any], *, what: str = "") -> bytes:
        """The key inside ``wrapped`` (transit decrypt). IntegrityError if altered, moved or of an unknown version;
        PeriodShredded when its period key was destroyed."""
        if isinstance(wrapped, dict) and wrapped.get("format") == PERIOD_WRAP_FORMAT:
            return self._unwrap_period(wrapped, what=what)
        try:
            if wrapped.get("format") != WRAP_FORMAT or wrapped.get("custody") != CUSTODY_NAME:
                raise IntegrityError("not a key wrapped by OpenBao custody", path=what)
            version = wrapped["kek_version"]
            kind, partition, ciphertext = wrapped["kind"], wrapped["partition"], wrapped["wrapped"]
        except (AttributeError, KeyError) as exc:
            raise IntegrityError("malformed wrapped key", path=what) from exc
        if not (isinstance(kind, str) and isinstance(partition, str) and isinstance(ciphertext, str)
                and type(version) is int):
            raise IntegrityError("malformed wrapped key", path=what)
        match = _CIPHERTEXT.fullmatch(ciphertext)
        if match is None or int(match.group(1)) != version:
            raise IntegrityError(f"wrapped key does not name master key version {version} (altered)", path=what)
        answer = self._server.call("POST", f"{self._mount}/decrypt/{self._kek}",
                                   {"ciphertext": ciphertext,
                                    "associated_data": _wrap_aad(self._archive_id, kind, partition)},
                                   doing="unwrapping a key", opening=what or f"wrapped key {kind}/{partition}")
        try:
            return _crypto.unb64(answer["plaintext"])
        except (KeyError, TypeError, ValueError):
            _out_of_protocol("unwrapping a key")

    # --- period keys (crypto-shredding; docs/archive-format.md, "Period keys") ------------------

    def _period_key(self, period: str) -> str:
        """The name of ``period``'s transit key, made (with the defaults: aes256-gcm96, not exportable) if missing."""
        name = period_key_name(self._archive_id, period)
        if period in self._periods_seen:
            return name
        if self._period_destroyed(period):
            raise PeriodShredded(f"the key of period {period} was destroyed (crypto-shredded)")
        info = self._read_key(self._server, self._mount, name)
        if info is None:  # transit's create keeps an existing key, so two makers cannot clash
            self._server.call("POST", f"{self._mount}/keys/{name}", {}, doing=f"creating period key {period}")
            info = self._read_key(self._server, self._mount, name)
        if info is None or info.get("type") != KEK_TYPE or info.get("exportable") is not False:
            raise ArchiveError(f"transit key {self._mount}/{name} is not as provisioned (aes256-gcm96, not exportable)")
        self._periods_seen.add(period)
        return name

    def _unwrap_period(self, wrapped: dict[str, Any], *, what: str) -> bytes:
        kind, partition, period, ciphertext = parse_period_wrapped(wrapped, custody=CUSTODY_NAME, what=what)
        name = period_key_name(self._archive_id, period)
        answer = self._server.send("POST", f"{self._mount}/decrypt/{name}",
                                   {"ciphertext": ciphertext,
                                    "associated_data": _period_aad(self._archive_id, kind, partition, period)},
                                   doing="unwrapping a key under a period key")
        if isinstance(answer, hvac.exceptions.VaultError):
            if self._read_key(self._server, self._mount, name) is None:
                raise PeriodShredded(f"the key of period {period} was destroyed (crypto-shredded)", path=what)
            raise self._server.convert(answer, doing="unwrapping a key under a period key", opening=what)
        try:
            return _crypto.unb64(answer["plaintext"])
        except (KeyError, TypeError, ValueError):
            _out_of_protocol("unwrapping a key under a period key")

    def period_keys(self) -> dict[str, str]:
        """Period keys on the server (LIST of the mount's keys) and when each was made (no secrets)."""
        answer = self._server.call("LIST", f"{self._mount}/keys", doing="listing transit keys")
        prefix = f"investigator-{self._archive_id}-period-"
        out: dict[str, str] = {}
        for name in answer.get("keys", []) if isinstance(answer.get("keys"), list) else []:
            if isinstance(name, str) and name.startswith(prefix):
                info = self._read_key(self._server, self._mount, name) or {}
                made = (info.get("keys") or {}).get("1")
                out[name[len(prefix):]] = (format_ts(datetime.fromtimestamp(int(made), timezone.utc))
                                           if isinstance(made, int) else "")
        return out

    def destroyed_periods(self) -> dict[str, str]:
        """Not kept by the server: the archive's signed destruction records say which periods went, and when."""
        return {}

    def destroy_period(self, period: str, *, now: datetime) -> bool:
        """Delete ``period``'s transit key (``deletion_allowed`` first). Idempotent: False when already gone."""
        del now
        name = period_key_name(self._archive_id, period)
        self._periods_seen.discard(period)
        if self._read_key(self._server, self._mount, name) is None:
            return False
        self._server.call("POST", f"{self._mount}/keys/{name}/config", {"deletion_allowed": True},
                          doing=f"allowing deletion of period key {period}")
        self._server.call("DELETE", f"{self._mount}/keys/{name}", doing=f"deleting period key {period}")
        if self._read_key(self._server, self._mount, name) is not None:
            raise ArchiveError(f"transit key {self._mount}/{name} is still on {self._server.addr} after deletion")
        return True

    # --- Custody ------------------------------------------------------------------------

    def seal(self, secret: bytes, *, purpose: str, name: str) -> dict[str, Any]:
        """Seal a small secret (the TOTP key ...) bound to ``purpose`` and ``name``: a wrapped key's JSON object."""
        return self.wrap(secret, purpose, name)

    def unseal(self, sealed: dict[str, Any], *, what: str = "") -> bytes:
        """The secret inside ``sealed``. Raises IntegrityError if it was altered or moved."""
        return self.unwrap(sealed, what=what)

    def _kek_info(self) -> dict[str, Any]:
        info = self._read_key(self._server, self._mount, self._kek)
        if info is None:
            raise ArchiveError(f"transit key {self._mount}/{self._kek} has gone from {self._server.addr}")
        return info

    @property
    def current_version(self) -> int:
        """The transit key's latest version (new wraps use it)."""
        try:
            return int(self._kek_info()["latest_version"])
        except (KeyError, TypeError, ValueError):
            _out_of_protocol("reading the master key")

    def versions(self) -> dict[int, str]:
        """Master-key versions that still decrypt, and when the server made each (no secrets)."""
        info = self._kek_info()
        try:
            floor = int(info.get("min_decryption_version") or 1)
            made = {int(v): int(t) for v, t in info["keys"].items()}
        except (AttributeError, KeyError, TypeError, ValueError):
            _out_of_protocol("reading the master key")
        return {v: format_ts(datetime.fromtimestamp(t, timezone.utc)) for v, t in sorted(made.items()) if v >= floor}

    def add_version(self, *, now: datetime) -> int:
        """Rotate the transit key: a new master-key version that new wraps use. ``now`` is the server's to stamp."""
        del now
        answer = self._server.call("POST", f"{self._mount}/keys/{self._kek}/rotate", doing="rotating the master key")
        try:
            return int(answer["latest_version"]) if "latest_version" in answer else self.current_version
        except (TypeError, ValueError):
            _out_of_protocol("rotating the master key")

    def remove_version(self, version: int) -> None:
        """Retire master-key ``version``: raise ``min_decryption_version`` above it, then trim it away for good.

        Only the oldest remaining version can go, and never the current one
        (ArchiveError otherwise). Transit keeps one contiguous range of versions,
        ``min_decryption_version`` .. latest: removing a version means raising
        that floor above it, which would remove every older version with it, so
        removing a middle one is refused rather than silently taking its elders
        along. Callers check first that nothing is wrapped under it
        (:func:`investigator.custody.rotation.retire`).
        """
        versions = sorted(self.versions())
        info = self._kek_info()
        if version not in versions:
            raise ArchiveError(f"master key version {version} is not in OpenBao (versions: {versions})")
        if version == max(versions):
            raise ArchiveError(f"version {version} is the current master key; rotate first")
        if version != versions[0]:
            raise ArchiveError(f"only the oldest master key version ({versions[0]}) can be removed: transit keeps "
                               f"versions {versions[0]}..{versions[-1]} as one range, so removing {version} would "
                               f"remove every older version too; retire {versions[0]} first")
        floor = version + 1
        min_encryption = max(int(info.get("min_encryption_version") or 0), floor)  # trim needs it set, >= floor
        self._server.call("POST", f"{self._mount}/keys/{self._kek}/config",
                          {"min_decryption_version": floor, "min_encryption_version": min_encryption},
                          doing="retiring a master key version")
        self._server.call("POST", f"{self._mount}/keys/{self._kek}/trim", {"min_available_version": floor},
                          doing="trimming a retired master key version")
