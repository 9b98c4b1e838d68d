"""Identity: personal key files, enrolment, TOTP (RFC 6238) with replay refusal and lock-out, sessions.

    >>> result = enroll(archive, keys, "zhangwei", signer=admin, passphrase="...",
    ...                 key_dir=Path("~/.investigator/keys"), now=now)          # doctest: +SKIP
    >>> print(result.totp_uri)           # shown once                         # doctest: +SKIP
    >>> verify_totp(archive, keys, "zhangwei", "123456", now=now)              # doctest: +SKIP
    >>> token = login(archive, keys, "zhangwei", totp="654321", now=now)       # doctest: +SKIP
    >>> check_identity(archive, keys, "zhangwei", session=token, now=now)      # doctest: +SKIP

* Each person's Ed25519 signing key sits in their own key file, sealed under a
  key derived (scrypt) from their passphrase; the public key is in the directory.
* TOTP secrets are sealed in ``ARCHIVE/org/totp/<id>.json`` under a random
  "totp" key wrapped by the archive master key (``ARCHIVE/keys/totp-key.json``),
  so checking a code needs a :class:`~investigator.custody.base.Custody` (the key
  service). The per-person state (last used time step, recent failures, lock-out)
  is kept in the same file under an HMAC, so an edited counter is detected.
* Sessions are short-lived tokens signed with the archive signing key, bound
  to one person, recorded in ``ARCHIVE/org/sessions/`` so they can be revoked.

Every check, passed or failed, is audited with its rule and reason.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.authority.directory import Directory, DirectoryStore, Person, PersonKey, Signer
from investigator.authority.locks import refuse_if_locked
from investigator.errors import ConfigError, IdentityCheckFailed, IntegrityError, PolicyDenied, WrongPassphrase
from investigator._fs import atomic_write
from investigator.authority.policy import Policy, load_org, parse_utc
from investigator.vault.statehead import check_files
from investigator.schema import canonical_json, format_ts
from investigator.vault.store import Archive
from investigator.custody.base import Custody
from investigator.vault.layout import Layout
from investigator._fs import exclusive_lock


PERSON_KEY_FORMAT = "investigator-person-key/1"
TOTP_STEP = 30
_EXPIRED_LOOKBACK_STEPS = 20  # codes up to 10 minutes old are reported as "expired", not "wrong"


# --- personal key files -------------------------------------------------------------

def resolve_key_dir(archive_id: str, key_dir: Path | str | None = None) -> Path:
    """Where personal key files live: ``key_dir``, else ~/.investigator/keys/<archive_id>.

    The CLI's ``--key-dir`` falls back to $INVESTIGATOR_KEY_DIR at the edge;
    nothing here reads the environment.
    """
    if key_dir:
        return Path(key_dir).expanduser()
    return Path.home() / ".investigator" / "keys" / archive_id


def _person_key_aad(archive_id: str, person_id: str) -> bytes:
    return canonical_json({"archive": archive_id, "person": person_id, "purpose": "person-signing-key"})


@dataclass(frozen=True)
class PersonKeyFile:
    """``<key_dir>/<person>.key``: a person's Ed25519 key sealed under their passphrase."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def create(cls, path: Path, *, archive_id: str, person_id: str, passphrase: str,
               kdf_n: int = _crypto.SCRYPT_N) -> tuple["PersonKeyFile", _crypto.SigningKey]:
        """Make a new key file. Raises ConfigError if one exists (keys are never overwritten)."""
        if path.exists():
            raise ConfigError(f"{path}: a key file already exists; refusing to overwrite it",
                              hint="revoke the old key first ('people revoke-key'), then move the file away")
        params = _crypto.KdfParams.new(n=kdf_n)
        file_key = _crypto.derive_passphrase_key(passphrase, params)
        signing = _crypto.SigningKey.generate()
        data = {"format": PERSON_KEY_FORMAT, "archive_id": archive_id, "person": person_id, "kdf": params.to_json(),
                "public": signing.public.b64(), "key_id": signing.public.key_id,
                "sealed": _crypto.b64(_crypto.seal(file_key, signing.raw(),
                                                   aad=_person_key_aad(archive_id, person_id)))}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)
        return cls(path, data), signing

    @classmethod
    def load(cls, path: Path) -> "PersonKeyFile":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: personal key file not found",
                              hint="enrol with 'investigator people enroll', or pass --key-dir") from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a readable personal key file") from exc
        if data.get("format") != PERSON_KEY_FORMAT:
            raise ConfigError(f"{path}: unknown key file format {data.get('format')!r}")
        return cls(Path(path), data)

    def unlock(self, passphrase: str) -> _crypto.SigningKey:
        """The signing key. Raises WrongPassphrase."""
        params = _crypto.KdfParams.from_json(self.data["kdf"])
        file_key = _crypto.derive_passphrase_key(passphrase, params)
        raw = _crypto.open_with_passphrase_key(file_key, _crypto.unb64(self.data["sealed"]), what=str(self.path),
                                               aad=_person_key_aad(self.data["archive_id"], self.data["person"]))
        key = _crypto.SigningKey.from_raw(raw)
        if key.public.b64() != self.data["public"]:
            raise WrongPassphrase(f"{self.path}: key does not match its public key")
        return key


def person_key_path(key_dir: Path, person_id: str) -> Path:
    return Path(key_dir) / f"{person_id}.key"


def unlock_person_key(archive: "Archive", person_id: str, passphrase: str, *, key_dir: Path | str | None = None,
                      directory: Directory | None = None) -> _crypto.SigningKey:
    """Unlock ``person_id``'s key file and check it is their live key in the directory.

    Raises WrongPassphrase, ConfigError (no file), or IdentityCheckFailed (the
    key is not registered for that person, or was revoked).
    """
    path = person_key_path(resolve_key_dir(archive.archive_id, key_dir), person_id)
    keyfile = PersonKeyFile.load(path)
    if keyfile.data.get("archive_id") != archive.archive_id or keyfile.data.get("person") != person_id:
        raise IdentityCheckFailed(f"{path}: key file belongs to another person or archive")
    key = keyfile.unlock(passphrase)
    directory = directory or DirectoryStore(archive).load()
    person = directory.person(person_id)
    registered = person.key(key.public.key_id)
    if registered is None:
        raise IdentityCheckFailed(f"key {key.public.key_id} is not registered for {person_id} in the directory")
    if registered.revoked:
        raise IdentityCheckFailed(f"key {key.public.key_id} of {person_id} was revoked at {registered.revoked}")
    return key


# --- TOTP store ---------------------------------------------------------------------------

def _totp_aad(archive_id: str, person_id: str) -> bytes:
    return canonical_json({"archive": archive_id, "person": person_id, "purpose": "totp-secret"})


class TotpStore:
    """Sealed TOTP secrets and per-person state (last step, failures, lock-out).

    By default in ``ARCHIVE/org/totp`` (``archive.layout.totp_dir``). When the
    archive's ``[custody]`` names a ``state_dir`` (a folder on the custodian's
    host, beside the key server), they live there instead, in the same shape
    (``<state_dir>/org/totp/``): people who share the archive folder then cannot
    restore an older counter (a used code replays) or clear a lock-out.
    """

    def __init__(self, archive: "Archive") -> None:
        self.archive = archive
        state_dir = archive.config.custody.get("state_dir")
        self._paths = Layout(Path(state_dir)) if state_dir else archive.layout
        self.folder = self._paths.totp_dir
        self.key_path = archive.layout.totp_key

    def _key(self, keys: Custody, *, create: bool = False) -> bytes:
        if not self.key_path.exists():
            if not create:
                raise IdentityCheckFailed("no TOTP key in this archive: nobody is enrolled")
            sealed = keys.seal(_crypto.new_key(), purpose="totp", name="all")
            atomic_write(self.key_path, (json.dumps(sealed, sort_keys=True) + "\n").encode())
        try:
            wrapped = json.loads(self.key_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise IntegrityError("unreadable wrapped key", path=self.archive.layout.relative(self.key_path)) from exc
        return keys.unseal(wrapped, what=self.archive.layout.relative(self.key_path))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with exclusive_lock(self._paths.totp_lock):
            yield

    def _path(self, person_id: str) -> Path:
        return self._paths.totp_state(person_id)

    def _mac(self, key: bytes, person_id: str, secret_blob: str, state: dict[str, Any]) -> str:
        data = canonical_json({"archive": self.archive.archive_id, "person": person_id, "secret": secret_blob,
                               "state": state})
        return _crypto.b64(_crypto.hmac_sha256(_crypto.hkdf(key, info=b"investigator/totp-state/v1"), data))

    def enroll(self, keys: Custody, person_id: str, secret: bytes) -> None:
        key = self._key(keys, create=True)
        blob = _crypto.b64(_crypto.seal(key, secret, aad=_totp_aad(self.archive.archive_id, person_id)))
        state = {"last_counter": -1, "failures": [], "locked_until": ""}
        with self._locked():
            self._write(person_id, key, blob, state)

    def _write(self, person_id: str, key: bytes, blob: str, state: dict[str, Any]) -> None:
        doc = {"person": person_id, "secret": blob, "state": state, "mac": self._mac(key, person_id, blob, state)}
        atomic_write(self._path(person_id), (json.dumps(doc, sort_keys=True) + "\n").encode(), mode=0o600)

    def _read(self, key: bytes, person_id: str) -> tuple[bytes, str, dict[str, Any]]:
        what = self._paths.relative(self._path(person_id))
        try:
            doc = json.loads(self._path(person_id).read_bytes())
            blob, state, mac = doc["secret"], doc["state"], doc["mac"]
        except FileNotFoundError as exc:
            raise IdentityCheckFailed(f"{person_id} has no TOTP secret enrolled") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError("unreadable TOTP record", path=what) from exc
        if not secrets.compare_digest(str(mac), self._mac(key, person_id, blob, state)):
            raise IntegrityError("TOTP state altered outside the program", path=what)
        secret = _crypto.open_sealed(key, _crypto.unb64(blob), aad=_totp_aad(self.archive.archive_id, person_id),
                                     what=what)
        return secret, blob, state

    def check(self, keys: Custody, person_id: str, code: str, *, now: datetime,
              policy: Policy) -> tuple[bool, str, str, int | None]:
        """Check ``code`` and update the state: ``(ok, rule, reason, counter)``. Never raises for a bad code.

        Raises IntegrityError when the state is below the newest signed state head (an older copy restored).
        """
        key = self._key(keys)
        with self._locked():
            if self._paths.root == self.archive.root:  # (a state_dir on the custodian's host is no archive file)
                problems = check_files(self.archive, [self._paths.relative(self._path(person_id))])
                if problems:
                    raise IntegrityError(f"TOTP state does not match its signed state head: {problems[0]}")
            secret, blob, state = self._read(key, person_id)
            unix = now.timestamp()
            locked_until = state.get("locked_until") or ""
            if locked_until and parse_utc(locked_until) > now:
                return False, "identity.lockout", f"{person_id} is locked out until {locked_until} after repeated " \
                    "failed codes", None
            code = (code or "").strip()
            counter = _crypto.totp_match(secret, code, unix, step=TOTP_STEP, skew=policy.totp_skew_steps) \
                if code.isdigit() and len(code) == 6 else None
            if counter is not None and counter <= int(state.get("last_counter", -1)):
                ok, rule, reason = False, "identity.replay", "TOTP code already used (a replayed code is refused)"
            elif counter is not None:
                state = {"last_counter": counter, "failures": [], "locked_until": ""}
                self._write(person_id, key, blob, state)
                return True, "identity.totp", "TOTP code valid", counter
            elif code.isdigit() and len(code) == 6 and _older_match(secret, code, unix, policy.totp_skew_steps):
                ok, rule, reason = False, "identity.totp_expired", "TOTP code expired (older than the allowed skew)"
            else:
                ok, rule, reason = False, "identity.totp", "wrong TOTP code"
            window = timedelta(minutes=policy.failure_window_minutes)
            failures = [f for f in state.get("failures", []) if parse_utc(f) > now - window] + [format_ts(now)]
            locked = ""
            if len(failures) >= policy.max_failures:
                locked = format_ts(now + timedelta(minutes=policy.lockout_minutes))
                reason += f"; {len(failures)} failures within {policy.failure_window_minutes} min: locked out " \
                          f"until {locked}"
            state = {"last_counter": int(state.get("last_counter", -1)), "failures": failures, "locked_until": locked}
            self._write(person_id, key, blob, state)
            return ok, rule, reason, None

    def locked_until(self, keys: Custody, person_id: str) -> str:
        _, _, state = self._read(self._key(keys), person_id)
        return str(state.get("locked_until") or "")

    def unlock_person(self, keys: Custody, person_id: str) -> None:
        """Clear a lock-out (admin action; the caller audits it)."""
        key = self._key(keys)
        with self._locked():
            _, blob, state = self._read(key, person_id)
            self._write(person_id, key, blob, {**state, "failures": [], "locked_until": ""})


def _older_match(secret: bytes, code: str, unix: float, skew: int) -> bool:
    now_counter = int(unix // TOTP_STEP)
    return any(secrets.compare_digest(_crypto.hotp(secret, c), code)
               for c in range(now_counter - _EXPIRED_LOOKBACK_STEPS, now_counter - skew))


def verify_totp(archive: "Archive", keys: Custody, person_id: str, code: str, *, now: datetime,
                policy: Policy | None = None, purpose: str = "identity") -> int:
    """Check a TOTP code for ``person_id`` and consume it. Returns the time-step counter.

    Raises IdentityCheckFailed naming the reason (wrong, expired, replayed,
    locked out, not enrolled). Both outcomes are audited (action ``totp.<purpose>``).
    """
    if policy is None:
        _, policy = load_org(archive, actor=person_id, action=f"totp.{purpose}", target=person_id, now=now)
    try:
        ok, rule, reason, counter = TotpStore(archive).check(keys, person_id, code, now=now, policy=policy)
    except (IdentityCheckFailed, IntegrityError) as exc:
        ok, rule, reason, counter = False, "identity.enrolled", str(exc), None
    details: dict[str, Any] = {"rule": rule, "reason": reason}
    if ok and counter is not None:
        details["counter"] = counter  # the step used: no TOTP state may fall below it (authority/state_head.py)
    archive.audit.append(person_id, f"totp.{purpose}", person_id, details,
                         outcome="allowed" if ok else "denied", now=now)
    if not ok or counter is None:
        raise IdentityCheckFailed(reason)
    return counter


# --- enrolment and key revocation ---------------------------------------------------------

@dataclass(frozen=True)
class Enrolment:
    """What enrolment gives the person, once: their key file, key id and TOTP secret."""

    person_id: str
    key_path: Path
    key_id: str
    totp_uri: str
    totp_secret_b32: str

    def __repr__(self) -> str:  # never the secret
        return f"Enrolment(person_id={self.person_id!r}, key_id={self.key_id!r})"


def enroll(archive: "Archive", keys: Custody, person_id: str, *, signer: Signer, passphrase: str,
           now: datetime, key_dir: Path | str | None = None, kdf_n: int = _crypto.SCRYPT_N,
           totp_secret: bytes | None = None) -> Enrolment:
    """Give ``person_id`` a signing key (in a key file under ``passphrase``) and a TOTP secret (embedded mode).

    The new public key goes into the directory (a change signed by ``signer``,
    audited). ``totp_secret`` is for demos and tests only; by default a random one.
    With a key server the same three steps run apart: :func:`create_person_key`
    and :func:`register_enrolment` on the admin's machine, :func:`enroll_totp` on
    the server. Raises ConfigError (unknown person, key file exists), PolicyDenied
    (signer not an admin, person has left; audited).
    """
    check_enrollable(archive, person_id, actor=signer.id, now=now)
    path, public = create_person_key(archive, person_id, passphrase=passphrase, key_dir=key_dir, kdf_n=kdf_n)
    try:
        register_enrolment(archive, person_id, public, signer=signer, now=now)
    except Exception:
        path.unlink(missing_ok=True)  # no orphan key file for a refused enrolment
        raise
    secret = totp_secret or _crypto.new_totp_secret()
    TotpStore(archive).enroll(keys, person_id, secret)
    return Enrolment(person_id=person_id, key_path=path, key_id=public.key_id,
                     totp_uri=_crypto.totp_uri(secret, account=f"{person_id}@{archive.archive_id[:8]}"),
                     totp_secret_b32=_crypto.b32(secret))


def check_enrollable(archive: "Archive", person_id: str, *, actor: str, now: datetime) -> None:
    """Raise ConfigError for an unknown person, PolicyDenied (audited) for one who has left."""
    person = DirectoryStore(archive).load().person(person_id)
    if not person.active:
        archive.audit.append(actor, "people.enroll", person_id,
                             {"rule": "person.active", "reason": f"{person_id} has left"}, outcome="denied", now=now)
        raise PolicyDenied(f"{person_id} has left and cannot be enrolled", rule="person.active")


def create_person_key(archive: "Archive", person_id: str, *, passphrase: str, key_dir: Path | str | None = None,
                      kdf_n: int = _crypto.SCRYPT_N) -> tuple[Path, _crypto.VerifyKey]:
    """A new personal key file for ``person_id`` (step 1 of an enrolment). Raises ConfigError if one exists."""
    path = person_key_path(resolve_key_dir(archive.archive_id, key_dir), person_id)
    _, signing = PersonKeyFile.create(path, archive_id=archive.archive_id, person_id=person_id,
                                      passphrase=passphrase, kdf_n=kdf_n)
    return path, signing.public


def register_enrolment(archive: "Archive", person_id: str, public: _crypto.VerifyKey, *, signer: Signer,
                       now: datetime) -> Directory:
    """Put ``public`` into the directory as ``person_id``'s live key, enrolled now (a signed, audited change).

    A new enrolment replaces any live key: the old one is revoked in the same
    signed change. Raises PolicyDenied (signer not an admin; audited).
    """
    store = DirectoryStore(archive)
    directory = store.load()
    person = directory.person(person_id)
    new_key = PersonKey(key_id=public.key_id, public=public.b64(), created=format_ts(now))
    old_keys = tuple(replace(k, revoked=k.revoked or format_ts(now)) for k in person.keys)
    updated = replace(person, keys=(*old_keys, new_key), totp_enrolled=format_ts(now))
    return store.commit(directory.with_person(updated), signer=signer, action="enroll", target=person_id,
                        details={"key_id": new_key.key_id, "revoked_keys": [k.key_id for k in person.keys
                                                                            if not k.revoked]}, now=now)


def require_admin(archive: "Archive", actor: str, *, action: str, target: str, now: datetime) -> None:
    """Raise PolicyDenied (audited, ``role.permission``) unless ``actor`` is an active admin in the directory."""
    directory = DirectoryStore(archive).load()
    if directory.find(actor) not in directory.admins():  # active, the admin role, a live key
        reason = f"only an active admin may do this ({action})"
        archive.audit.append(actor, action, target, {"rule": "role.permission", "reason": reason}, outcome="denied",
                             now=now)
        raise PolicyDenied(reason, rule="role.permission")


def enroll_totp(archive: "Archive", keys: Custody, person_id: str, *, admin: str, now: datetime,
                totp_secret: bytes | None = None) -> tuple[str, str]:
    """Make and seal a new TOTP secret for ``person_id`` (the key server's half of an enrolment).

    ``admin`` must be an active admin (PolicyDenied, audited). Returns the
    otpauth URI and the base32 secret — handed back once, never stored in clear.
    Raises ConfigError (unknown person), PolicyDenied (person has left).
    """
    require_admin(archive, admin, action="people.enroll_totp", target=person_id, now=now)
    check_enrollable(archive, person_id, actor=admin, now=now)
    secret = totp_secret or _crypto.new_totp_secret()
    TotpStore(archive).enroll(keys, person_id, secret)
    archive.audit.append(admin, "people.enroll_totp", person_id, {"rule": "role.permission"}, outcome="allowed",
                         now=now)
    return (_crypto.totp_uri(secret, account=f"{person_id}@{archive.archive_id[:8]}"), _crypto.b32(secret))


def clear_lockout(archive: "Archive", keys: Custody, person_id: str, *, admin: str, now: datetime) -> None:
    """Clear ``person_id``'s TOTP lock-out. ``admin`` must be an active admin (PolicyDenied, audited)."""
    if admin != "archive":  # the bootstrap signer of embedded mode (admin_signer without --as)
        require_admin(archive, admin, action="people.unlock", target=person_id, now=now)
    TotpStore(archive).unlock_person(keys, person_id)
    archive.audit.append(admin, "people.unlock", person_id, {"rule": "identity.lockout"}, now=now)


def revoke_key(archive: "Archive", person_id: str, *, signer: Signer, now: datetime, reason: str,
               key_id: str | None = None) -> Directory:
    """Mark ``person_id``'s key (or every live key) revoked in the directory (signed, audited)."""
    store = DirectoryStore(archive)
    directory = store.load()
    person = directory.person(person_id)
    stamp = format_ts(now)
    hit = [k.key_id for k in person.keys if not k.revoked and (key_id is None or k.key_id == key_id)]
    if not hit:
        raise ConfigError(f"{person_id} has no live key {key_id or ''} to revoke".replace("  ", " "))
    keys_ = tuple(replace(k, revoked=stamp) if k.key_id in hit else k for k in person.keys)
    return store.commit(directory.with_person(replace(person, keys=keys_)), signer=signer, action="revoke-key",
                        target=person_id, details={"key_ids": hit, "reason": reason}, now=now)


# --- sessions ----------------------------------------------------------------------------

def login(archive: "Archive", keys: Custody, person_id: str, *, totp: str, now: datetime,
          hours: int | None = None) -> str:
    """Check a TOTP code and issue a signed session token bound to ``person_id``.

    Lifetime: ``hours``, else the policy's ``identity.session_hours`` (8).
    Raises IdentityCheckFailed (audited).
    """
    directory, policy = load_org(archive, actor=person_id, action="login", target=person_id, now=now)
    person = _active_person(archive, directory, person_id, action="login", now=now)
    verify_totp(archive, keys, person.id, totp, now=now, policy=policy, purpose="login")
    sid = secrets.token_hex(16)
    body = {"format": "investigator-session/1", "sid": sid, "archive_id": archive.archive_id, "person": person_id,
            "issued": format_ts(now), "expires": format_ts(now + timedelta(hours=hours or policy.session_hours))}
    data = canonical_json(body)
    token = "ivs1." + _b64url(data) + "." + _b64url(_crypto.unb64(keys.signing.sign(data)))
    path = archive.layout.session(sid)
    atomic_write(path, (json.dumps({"body": body, "revoked": ""}, sort_keys=True) + "\n").encode())
    archive.audit.append(person_id, "login", person_id, {"rule": "identity.totp", "session": sid,
                                                         "expires": body["expires"]}, outcome="allowed", now=now)
    return token


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    """Strict unpadded base64url: only the one canonical spelling decodes (ValueError otherwise).

    Python's decoder ignores the spare bits of the last character, so without
    the round-trip check a token with its last character changed would still be
    accepted; a token has exactly one valid form.
    """
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url(data) != text:
        raise ValueError("not the canonical base64url form")
    return data


def session_body(archive: "Archive", token: str) -> dict[str, Any]:
    """The body of a session token after checking its signature. Raises IdentityCheckFailed."""
    try:
        prefix, body_text, sig_text = token.strip().split(".")
        if prefix != "ivs1":
            raise ValueError(prefix)
        data = _unb64url(body_text)
        archive.signing_keys().verify(_crypto.b64(_unb64url(sig_text)), data)
        body = json.loads(data)
    except (ValueError, IntegrityError) as exc:
        raise IdentityCheckFailed("session token is malformed or its signature does not verify") from exc
    if body.get("archive_id") != archive.archive_id:
        raise IdentityCheckFailed("session token belongs to another archive")
    return body


def check_session(archive: "Archive", token: str, person_id: str, *, now: datetime) -> dict[str, Any]:
    """Raise IdentityCheckFailed unless ``token`` is a live session of ``person_id``. Returns its body."""
    body = session_body(archive, token)
    if body.get("person") != person_id:
        raise IdentityCheckFailed(f"session belongs to {body.get('person')!r}, not {person_id!r}")
    if parse_utc(body["expires"]) <= now:
        raise IdentityCheckFailed(f"session expired at {body['expires']}")
    try:
        record = json.loads(archive.layout.session(str(body["sid"])).read_bytes())
    except (OSError, ValueError, ConfigError) as exc:
        raise IdentityCheckFailed("session is not recorded in the archive (revoked or forged)") from exc
    if record.get("revoked"):
        raise IdentityCheckFailed(f"session was revoked at {record['revoked']}")
    if record.get("body") != body:
        raise IdentityCheckFailed("session record does not match the token")
    return body


def revoke_session(archive: "Archive", token_or_sid: str, *, actor: str, now: datetime) -> str:
    """Revoke a session (logout, or an admin cutting one off). Audited. Returns the session id."""
    sid = session_body(archive, token_or_sid)["sid"] if token_or_sid.startswith("ivs1.") else token_or_sid
    path = archive.layout.session(sid)
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no session {sid}") from exc
    record["revoked"] = format_ts(now)
    atomic_write(path, (json.dumps(record, sort_keys=True) + "\n").encode())
    archive.audit.append(actor, "session.revoke", sid, {"person": record["body"]["person"]}, now=now)
    return sid


def _active_person(archive: "Archive", directory: Directory, person_id: str, *, action: str,
                   now: datetime) -> Person:
    person = directory.find(person_id)
    reason = ""
    if person is None:
        reason = f"no person {person_id!r} in the directory"
    elif not person.active:
        reason = f"{person_id} is not active (status {person.status})"
    elif not person.totp_enrolled:
        reason = f"{person_id} is not enrolled"
    if reason:
        archive.audit.append(person_id, action, person_id, {"rule": "person.active", "reason": reason},
                             outcome="denied", now=now)
        raise IdentityCheckFailed(reason)
    assert person is not None
    refuse_if_locked(archive, directory, person_id, action=action, target=person_id, now=now)  # e.g. a monitor
    return person


def check_identity(archive: "Archive", keys: Custody, person_id: str, *, totp: str | None = None,
                   session: str | None = None, now: datetime, directory: Directory | None = None,
                   policy: Policy | None = None) -> Person:
    """Prove that the person at the keyboard is ``person_id``: a fresh TOTP code or a live session.

    ``directory`` and ``policy``, when the caller has already loaded them for
    the same decision (:func:`~investigator.authority.policy.load_org`), are
    used instead of loading them again. Returns the directory's Person. Raises
    IdentityCheckFailed with the reason; both outcomes are audited (action
    ``identity.check``).
    """
    if directory is None or policy is None:
        directory, policy = load_org(archive, actor=person_id, action="identity.check", target=person_id, now=now)
    person = _active_person(archive, directory, person_id, action="identity.check", now=now)
    if totp:
        verify_totp(archive, keys, person_id, totp, now=now, policy=policy, purpose="identity")
        how = "totp"
    elif session:
        try:
            body = check_session(archive, session, person_id, now=now)
        except IdentityCheckFailed as exc:
            archive.audit.append(person_id, "identity.check", person_id, {"rule": "identity.session",
                                                                          "reason": str(exc)},
                                 outcome="denied", now=now)
            raise
        how = f"session {body['sid']}"
    else:
        reason = "a TOTP code or a session is required (动态身份验证)"
        archive.audit.append(person_id, "identity.check", person_id, {"rule": "identity.required",
                                                                      "reason": reason}, outcome="denied", now=now)
        raise IdentityCheckFailed(reason)
    archive.audit.append(person_id, "identity.check", person_id, {"rule": "identity.ok", "via": how},
                         outcome="allowed", now=now)
    return person
