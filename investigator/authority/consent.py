"""Customer consent (客户知情同意书, 电子签名版): registered, signed, stored encrypted, checked by requests.

    >>> record = add_consent(archive, keys, Path("wangfang-consent.pdf"), case="C-2026-017",
    ...                      customer="wangfang", uploader="sunli", signing_key=sunli_key, now=now)  # doctest: +SKIP
    >>> record.id                                                                                   # doctest: +SKIP
    'CONSENT-20261128-1a2b3c4d'
    >>> check_consent(archive, record.id, case="C-2026-017", directory=directory, keys=keys).rule  # doctest: +SKIP
    'consent.verified'

A consent record (``org/consents/<CONSENT-id>.json``, format ``investigator-consent/1``)
holds a body signed by the uploader's personal Ed25519 key -- the file's SHA-256,
size, original name and guessed media type, the case, the customer, the uploader,
the time, and the SHA-256 of the stored ciphertext -- and, outside the signed
body, the file's data key wrapped by the archive's custody. The file itself is
stored beside the record (``org/consents/<CONSENT-id>.bin``), AES-256-GCM
encrypted under that fresh data key, with associated data that binds it to the
archive and the consent id. Nothing here prints or audits the file's content.

A request whose purpose needs consent (``[consent] purposes`` of the policy) --
or any request that names a consent -- must reference a registered record that
verifies: :func:`check_consent` answers with a
:class:`~investigator.authority.policy.Decision` whose rule is one of
``consent.reference`` (free text, not a ``CONSENT-...`` id), ``consent.unregistered``,
``consent.signature``, ``consent.case`` and ``consent.hash``, or
``consent.verified``. Filing a request checks everything that needs no secret
(the stored ciphertext's hash is signed, so a changed file is caught without
keys); approval checks again with the custody and decrypts the stored copy.
docs/policy.md ("Customer consent") is the contract.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from investigator import _crypto
from investigator._fs import write_new
from investigator.authority.directory import Directory
from investigator.authority.policy import Check, Decision, load_org, record_decision
from investigator.custody.base import Custody
from investigator.errors import ConfigError, IntegrityError, PolicyDenied
from investigator.schema import canonical_json, format_ts
from investigator.vault.store import Archive

CONSENT_FORMAT = "investigator-consent/1"
CONSENT_CIPHER = "AES-256-GCM"
SEAL_PURPOSE = "consent"  # custody seal purpose of a consent file's data key (the seal name is the consent id)
MAX_CONSENT_BYTES = 64 * 1024 * 1024  # a scanned or signed PDF; larger files are refused
_ID_RE = re.compile(r"^CONSENT-[0-9]{8}-[0-9a-f]{8}$")
_TEXT_MAX = 200

REGISTER_HINT = ("register the signed consent with 'investigator consent add ARCHIVE FILE --case CASE "
                 "--customer ID --as ID' (客户知情同意书) and pass the CONSENT-... id it prints as --consent")

# The rules a consent check can name (docs/policy.md, "Rules").
RULES = ("consent.reference", "consent.unregistered", "consent.signature", "consent.case", "consent.hash",
         "consent.verified", "consent.registered")


def is_consent_id(reference: str) -> bool:
    """True for a well-formed consent id (``CONSENT-YYYYMMDD-<8 hex>``), the only reference a request may carry."""
    return bool(_ID_RE.match(reference or ""))


def _file_aad(archive_id: str, consent_id: str) -> bytes:
    return canonical_json({"archive": archive_id, "consent": consent_id, "purpose": "consent-file"})


def _text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > _TEXT_MAX or any(ch in value for ch in "\x00\n\r"):
        raise ConfigError(f"{what} must be one line of 1 to {_TEXT_MAX} characters")
    return value


# --- the record ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConsentRecord:
    """One registered consent: the signed body, the uploader's signature, the wrapped data key.

    Read with :func:`load_consent`; trust a field only after :func:`check_consent`.
    """

    body: dict[str, Any]
    signature: str
    wrapped_key: dict[str, Any]
    path: Path | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return str(self.body.get("id", ""))

    @property
    def case(self) -> str:
        return str(self.body.get("case", ""))

    @property
    def customer(self) -> str:
        return str(self.body.get("customer", ""))

    @property
    def uploader(self) -> str:
        return str(self.body.get("uploader", ""))

    @property
    def key_id(self) -> str:
        return str(self.body.get("key_id", ""))

    @property
    def created(self) -> str:
        return str(self.body.get("created", ""))

    @property
    def file(self) -> dict[str, Any]:
        value = self.body.get("file")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def stored(self) -> dict[str, Any]:
        value = self.body.get("stored")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the consent file as uploaded."""
        return str(self.file.get("sha256", ""))

    @property
    def hash(self) -> str:
        """Hex SHA-256 of the signed body's RFC 8785 bytes."""
        return _crypto.sha256_hex(canonical_json(self.body))

    def summary(self) -> dict[str, Any]:
        """Metadata only (no key, no content): what ``consent list`` and ``consent show`` print."""
        f = self.file
        return {"id": self.id, "case": self.case, "customer": self.customer, "uploader": self.uploader,
                "key_id": self.key_id, "created": self.created, "name": f.get("name", ""),
                "media_type": f.get("media_type", ""), "size": f.get("size", 0), "sha256": self.sha256,
                "record_hash": self.hash}

    def to_json(self) -> dict[str, Any]:
        return {"format": CONSENT_FORMAT, "body": self.body, "signature": self.signature, "key": self.wrapped_key}

    @classmethod
    def from_json(cls, obj: Any, *, path: Path | None = None) -> "ConsentRecord":
        """Parse a record file's JSON. Raises IntegrityError when it is not a consent record."""
        if not isinstance(obj, dict) or obj.get("format") != CONSENT_FORMAT:
            raise IntegrityError("not a consent record (unknown format)", path=str(path or ""))
        body, signature, key = obj.get("body"), obj.get("signature"), obj.get("key")
        if not isinstance(body, dict) or not isinstance(signature, str) or not isinstance(key, dict):
            raise IntegrityError("malformed consent record", path=str(path or ""))
        return cls(dict(body), signature, dict(key), path)

    def verify_signature(self, directory: Directory) -> None:
        """Raise IntegrityError unless the uploader's registered, unrevoked key signed the body."""
        uploader = directory.find(self.uploader)
        if uploader is None:
            raise IntegrityError(f"the uploader {self.uploader!r} is not in the directory")
        key = uploader.key(self.key_id)
        if key is None:
            raise IntegrityError(f"signed with key {self.key_id!r}, which is not one of {self.uploader}'s")
        try:
            key.verify_key().verify(self.signature, canonical_json(self.body))
        except IntegrityError as exc:
            raise IntegrityError(f"the signature of {self.uploader} does not verify: the record was forged or "
                                 "edited after signing (hash, case, customer ...)") from exc
        if key.revoked:
            raise IntegrityError(f"{self.uploader}'s key {key.key_id} was revoked at {key.revoked}; "
                                 "register the consent again with a live key")


def load_consent(archive: "Archive", consent_id: str) -> ConsentRecord:
    """Read a consent record (no verification). ConfigError if there is none; IntegrityError if unreadable."""
    if not is_consent_id(consent_id):
        raise ConfigError(f"{consent_id!r} is not a consent id (CONSENT-YYYYMMDD-xxxxxxxx)", hint=REGISTER_HINT)
    path = archive.layout.consent(consent_id)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"consent {consent_id} is not registered in this archive", hint=REGISTER_HINT) from exc
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise IntegrityError("consent record is not readable JSON", path=archive.layout.relative(path)) from exc
    return ConsentRecord.from_json(obj, path=path)


def list_consents(archive: "Archive", *, case: str | None = None) -> list[ConsentRecord]:
    """The registered consent records (of ``case``, if given), oldest first. Unreadable records are skipped."""
    folder = archive.layout.consent_dir
    out = []
    for path in sorted(folder.glob("CONSENT-*.json")) if folder.exists() else []:
        try:
            record = load_consent(archive, path.stem)
        except (ConfigError, IntegrityError):
            continue
        if case is None or record.case == case:
            out.append(record)
    return sorted(out, key=lambda r: (r.created, r.id))


# --- registering -----------------------------------------------------------------------------

@runtime_checkable
class ConsentKeySource(Protocol):
    """Where a consent file's fresh key comes from when this process holds no custody: the key server.

    ``consent_key(consent_id)`` returns the plain key and its form sealed by the server's custody
    (purpose :data:`SEAL_PURPOSE`, name the consent id), as KMS GenerateDataKey does
    (``investigator.access.keyserver.RemoteKeyService.consent_key``).
    """

    def consent_key(self, consent_id: str) -> tuple[bytes, dict[str, Any]]: ...


def _file_key(keys: "Custody | ConsentKeySource", consent_id: str) -> tuple[bytes, dict[str, Any]]:
    if isinstance(keys, ConsentKeySource):
        return keys.consent_key(consent_id)
    dek = _crypto.new_key()
    return dek, keys.seal(dek, purpose=SEAL_PURPOSE, name=consent_id)


def _denied(archive: "Archive", decision: Decision, *, actor: str, action: str, target: str, now: datetime,
            details: dict[str, Any] | None = None) -> PolicyDenied:
    record_decision(archive, decision, actor=actor, action=action, target=target, now=now, details=details)
    return PolicyDenied(decision.reason, rule=decision.rule, decision=decision)


def add_consent(archive: "Archive", keys: "Custody | ConsentKeySource", file: Path | str, *, case: str, customer: str,
                uploader: str,
                signing_key: _crypto.SigningKey, now: datetime) -> ConsentRecord:
    """Register the signed customer consent in ``file`` for ``case``; see :func:`add_consent_bytes`.

    Raises ConfigError for a missing, empty or too large file.
    """
    path = Path(file)
    try:
        size = path.stat().st_size
        if size > MAX_CONSENT_BYTES:
            raise ConfigError(f"{path.name}: {size} bytes; a consent file may hold at most {MAX_CONSENT_BYTES}")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: a folder, not a file") from exc
    return add_consent_bytes(archive, keys, data, name=path.name, case=case, customer=customer, uploader=uploader,
                             signing_key=signing_key, now=now)


def add_consent_bytes(archive: "Archive", keys: "Custody | ConsentKeySource", data: bytes, *, name: str, case: str,
                      customer: str, uploader: str, signing_key: _crypto.SigningKey, now: datetime) -> ConsentRecord:
    """Register a signed customer consent for ``case``: encrypt and store the file, sign and write the record.

    ``keys`` is the unlocked custody (embedded mode) or the key server (a
    :class:`ConsentKeySource`), which makes the file's fresh key and seals it: a
    client that registers a consent never holds a master key, nor any other file's key.

    ``data`` is the consent file's bytes and ``name`` its original name. The
    uploader must be an active person of the directory who may file retrieval
    requests, signing with their live key. Audited as ``consent.add`` (case,
    customer, SHA-256; never the content). Raises PolicyDenied (audited) when
    the uploader may not, ConfigError for an empty or too large file, or an
    empty case, customer or name.
    """
    consent_id = f"CONSENT-{now.astimezone(archive.config.zone):%Y%m%d}-{secrets.token_hex(4)}"
    case, customer = _text(case, "the case"), _text(customer, "the customer id")
    original = _text(Path(name).name, "the file name")
    if not data:
        raise ConfigError(f"{original}: the file is empty")
    if len(data) > MAX_CONSENT_BYTES:
        raise ConfigError(f"{original}: {len(data)} bytes; a consent file may hold at most {MAX_CONSENT_BYTES}")
    directory, policy = load_org(archive, actor=uploader, action="consent.add", target=consent_id, now=now)
    details = {"case": case, "customer": customer}
    person = directory.find(uploader)
    if person is None:
        raise _denied(archive, Decision(False, "person.known", f"no person {uploader!r} in the directory"),
                      actor=uploader, action="consent.add", target=consent_id, now=now, details=details)
    if not person.active:
        raise _denied(archive, Decision(False, "person.active", f"{uploader} is not active ({person.status})"),
                      actor=uploader, action="consent.add", target=consent_id, now=now, details=details)
    live = person.current_key
    if live is None or live.key_id != signing_key.public.key_id:
        raise _denied(archive, Decision(False, "person.key", f"{uploader} signs with key {signing_key.public.key_id},"
                                                             " which is not their live key (revoked?)"),
                      actor=uploader, action="consent.add", target=consent_id, now=now, details=details)
    if not policy.rights(person).may("request"):
        raise _denied(archive, Decision(False, "role.permission",
                                        f"{uploader} may not file retrieval requests "
                                        f"({', '.join(person.roles) or 'no role'}), so may not register consents "
                                        "for them"),
                      actor=uploader, action="consent.add", target=consent_id, now=now, details=details)
    record_path, blob_path = archive.layout.consent(consent_id), archive.layout.consent_file(consent_id)
    if record_path.exists() or blob_path.exists():  # 32 random bits a day: practically never
        raise ConfigError(f"consent id {consent_id} is taken; try again")
    dek, wrapped = _file_key(keys, consent_id)
    blob = _crypto.seal(dek, data, aad=_file_aad(archive.archive_id, consent_id))
    sha256 = _crypto.sha256_hex(data)
    body = {"format": CONSENT_FORMAT, "id": consent_id, "archive_id": archive.archive_id, "case": case,
            "customer": customer, "uploader": uploader, "key_id": signing_key.public.key_id,
            "created": format_ts(now),
            "file": {"name": original, "media_type": mimetypes.guess_type(original)[0] or "application/octet-stream",
                     "size": len(data), "sha256": sha256},
            "stored": {"file": blob_path.name, "cipher": CONSENT_CIPHER, "size": len(blob),
                       "sha256": _crypto.sha256_hex(blob)}}
    record = ConsentRecord(body, signing_key.sign(canonical_json(body)), wrapped, record_path)
    # write-once (never replacing, even a racing upload's files), the blob before the record that names it: a kill
    # in between leaves an encrypted blob no record names (kept, never read), never a record without its file
    record_bytes = (json.dumps(record.to_json(), ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode()
    if not write_new(blob_path, blob, mode=0o600) or not write_new(record_path, record_bytes, mode=0o600):
        raise ConfigError(f"consent id {consent_id} is taken; try again")
    archive.audit.append(uploader, "consent.add", consent_id,
                         {**details, "sha256": sha256, "rule": "consent.registered",
                          "reason": f"consent for case {case} registered by {uploader}"},
                         outcome="allowed", now=now)
    return record


# --- checking --------------------------------------------------------------------------------

def _refuse(rule: str, reason: str) -> Decision:
    return Decision(False, rule, reason, (Check(rule, False, reason),))


def check_consent(archive: "Archive", reference: str, *, case: str, directory: Directory,
                  keys: Custody | None = None) -> Decision:
    """May a request of ``case`` rest on the consent ``reference``? Reads the archive; audits nothing.

    Checks, in order, naming the first failure: the reference is a consent id
    (``consent.reference``); its record exists in this archive and is its own
    (``consent.unregistered``); the uploader's signature verifies with their
    directory key, not revoked (``consent.signature``); it is for ``case``
    (``consent.case``); the stored ciphertext matches the signed hash, and with
    ``keys`` it decrypts to a file of the signed size and SHA-256
    (``consent.hash``). Allowed: ``consent.verified``.
    """
    reference = (reference or "").strip()
    if not is_consent_id(reference):
        # the text is not repeated: a free-text reference may name the customer, and reasons go to the audit log
        return _refuse("consent.reference",
                       f"the consent reference is free text ({len(reference)} characters), not the id of a "
                       "registered, signed consent (CONSENT-YYYYMMDD-xxxxxxxx, 客户知情同意书)")
    try:
        record = load_consent(archive, reference)
    except ConfigError:
        return _refuse("consent.unregistered", f"consent {reference} is not registered in this archive")
    except IntegrityError as exc:
        return _refuse("consent.signature", f"consent {reference}: the record was altered ({exc})")
    if record.id != reference or record.body.get("archive_id") != archive.archive_id:
        return _refuse("consent.unregistered", f"the record filed as {reference} is consent {record.id!r} of "
                                               "another archive or name (copied or renamed)")
    if record.body.get("format") != CONSENT_FORMAT:
        return _refuse("consent.signature", f"consent {reference}: unknown record format")
    try:
        record.verify_signature(directory)
    except IntegrityError as exc:
        return _refuse("consent.signature", f"consent {reference}: {exc}")
    if record.case != case:
        return _refuse("consent.case", f"consent {reference} was registered for case {record.case!r}, "
                                       f"not {case!r}")
    stored = record.stored
    blob_path = archive.layout.consent_file(reference)
    try:
        blob = blob_path.read_bytes()
    except OSError:
        return _refuse("consent.hash", f"consent {reference}: the stored file is missing")
    if stored.get("cipher") != CONSENT_CIPHER or _crypto.sha256_hex(blob) != stored.get("sha256"):
        return _refuse("consent.hash", f"consent {reference}: the stored file does not match the signed hash "
                                       "(replaced or altered after registration)")
    checked = "signature, case and stored ciphertext"
    if keys is not None:
        what = archive.layout.relative(blob_path)
        try:
            copy = archive.layout.consent_key(reference)  # sealed again by a custody migration: the one in use
            sealed = json.loads(copy.read_bytes()) if copy.exists() else record.wrapped_key
            dek = keys.unseal(sealed, what=f"{archive.layout.relative(archive.layout.consent(reference))}"
                                           " (key)")
            plain = _crypto.open_sealed(dek, blob, aad=_file_aad(archive.archive_id, reference), what=what)
        except (IntegrityError, ValueError, OSError):
            return _refuse("consent.hash", f"consent {reference}: the stored file does not decrypt (its wrapped "
                                           "key or ciphertext was altered, or its master-key version retired)")
        if len(plain) != record.file.get("size") or _crypto.sha256_hex(plain) != record.sha256:
            return _refuse("consent.hash", f"consent {reference}: the decrypted file does not match the signed "
                                           "SHA-256")
        checked = "signature, case, stored ciphertext and decrypted file"
    reason = f"consent {reference} of case {case} by {record.uploader} verified ({checked})"
    return Decision(True, "consent.verified", reason, (Check("consent.verified", True, reason),))


def consent_refusal(decision: Decision) -> PolicyDenied:
    """The PolicyDenied for a refused consent check, with a hint on registering the consent."""
    error = PolicyDenied(decision.reason, rule=decision.rule, decision=decision)
    error.hint = REGISTER_HINT
    return error


def verify_consent_file(archive: "Archive", consent_id: str, file: Path | str, *, directory: Directory,
                        actor: str, now: datetime) -> tuple[ConsentRecord, list[str], list[str]]:
    """Compare ``file`` with registered consent ``consent_id``: ``(record, passed, problems)``. Audited.

    Checks the record's signature (uploader's directory key), the stored
    ciphertext against its signed hash, and the file's size and SHA-256 against
    the signed ones. Needs no secret. Raises ConfigError for an unknown id or file.
    """
    record = load_consent(archive, consent_id)
    passed, problems = [], []
    try:
        record.verify_signature(directory)
        passed.append(f"record signed by {record.uploader} (key {record.key_id})")
    except IntegrityError as exc:
        problems.append(f"record signature: {exc}")
    blob_path = archive.layout.consent_file(consent_id)
    if blob_path.exists() and _crypto.sha256_hex(blob_path.read_bytes()) == record.stored.get("sha256"):
        passed.append("stored encrypted copy matches the signed hash")
    else:
        problems.append("stored encrypted copy is missing or does not match the signed hash")
    try:
        size, digest = Path(file).stat().st_size, _crypto.sha256_file(file)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the file to compare") from exc
    if size == record.file.get("size") and digest == record.sha256:
        passed.append(f"file matches the registered SHA-256 {record.sha256[:16]}... ({size} bytes)")
    else:
        problems.append(f"file does not match: SHA-256 {digest[:16]}... ({size} bytes), registered "
                        f"{record.sha256[:16]}... ({record.file.get('size')} bytes)")
    archive.audit.append(actor, "consent.verify", consent_id,
                         {"case": record.case, "sha256": digest,
                          "rule": "consent.verified" if not problems else
                          ("consent.signature" if any(p.startswith("record") for p in problems) else "consent.hash"),
                          "reason": "; ".join(problems) or "file, record and stored copy match"},
                         outcome="denied" if problems else "ok", now=now)
    return record, passed, problems
