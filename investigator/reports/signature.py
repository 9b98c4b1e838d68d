"""Signed records over a report's digest: the seal's signature, review and release records, and their trust.

    >>> record = sign_body({"kind": "review", "report_digest": digest}, signer, "zhouzong")   # doctest: +SKIP
    >>> problems: list[str] = []
    >>> check_signature(record, what="review 1", archive=None, pubkeys=[signer.public],
    ...                 problems=problems)                                                     # doctest: +SKIP
    >>> problems                                                                               # doctest: +SKIP
    []

A signed record is ``{"body", "signer", "key_id", "public", "signature"}``, the
signature being Ed25519 over JCS(body). A key is trusted when it is one of the
keys passed in (``--pubkey``) or the signer's key in the archive's signed
directory, not revoked before it signed. The seal (:mod:`.seal`) and the
reviews and releases (:mod:`.review`) both use these helpers; the review
records live in ``metadata.investigator.reviews`` and give the report its
status (:func:`status_of`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from investigator import _crypto
from investigator.errors import ConfigError
from investigator.schema import canonical_json
from investigator.verification import Verification

if TYPE_CHECKING:
    from investigator.vault.store import Archive


def signature_hash(signature: str) -> str:
    return hashlib.sha256(signature.encode("ascii")).hexdigest()


def sign_body(body: dict[str, Any], signer: _crypto.SigningKey, person: str) -> dict[str, Any]:
    return {"body": body, "signer": person, "key_id": signer.public.key_id, "public": signer.public.b64(),
            "signature": signer.sign(canonical_json(body))}


def load_pubkey(path: Path) -> _crypto.VerifyKey:
    """A public key file: base64 Ed25519 on one line, or a JSON file with ``public`` (a person key file)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the key file") from exc
    if text.startswith("{"):
        try:
            text = str(json.loads(text)["public"])
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: no 'public' key in this JSON file") from exc
    try:
        return _crypto.VerifyKey.from_b64(text.split()[0])
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad key file
        raise ConfigError(f"{path}: not an Ed25519 public key") from exc


def check_signature(signed: dict[str, Any], *, what: str, archive: "Archive | None",
                    pubkeys: list[_crypto.VerifyKey], problems: list[str], directory: Any = None) -> None:
    """Verify a ``sign_body`` record and that its key is anchored (directory or a trusted key)."""
    try:
        key = _crypto.VerifyKey.from_b64(str(signed.get("public")))
    except Exception:  # noqa: BLE001
        problems.append(f"{what}: the public key is malformed")
        return
    if key.key_id != signed.get("key_id"):
        problems.append(f"{what}: key id does not match the public key")
        return
    if not key.is_valid(str(signed.get("signature")), canonical_json(signed.get("body"))):
        problems.append(f"{what}: the signature does not verify (the signed record was changed)")
        return
    if any(k.key_id == key.key_id for k in pubkeys):
        return
    if archive is not None and directory is not None:
        person = directory.find(str(signed.get("signer")))
        registered = person.key(key.key_id) if person is not None else None
        if registered is None:
            problems.append(f"{what}: key {key.key_id} is not {signed.get('signer')}'s in the archive's directory")
        elif registered.public != key.b64():
            problems.append(f"{what}: key {key.key_id} differs from the directory's")
        elif registered.revoked and registered.revoked <= str((signed.get("body") or {}).get("ts")
                                                                or (signed.get("body") or {}).get("sealed_at")):
            problems.append(f"{what}: key {key.key_id} was revoked at {registered.revoked}, before it signed")
        return
    problems.append(f"{what}: the signing key {key.key_id} is not anchored; pass --archive or --pubkey")


def status_of(meta: dict[str, Any]) -> str:
    """draft / reviewed / rejected / released (from the records, signatures not checked here)."""
    if not meta.get("seal"):
        return "unsealed"
    status = "draft"
    for record in meta.get("reviews") or []:
        body = record.get("body") or {}
        if body.get("kind") == "review":
            status = "reviewed" if body.get("decision") == "approve" else "rejected"
        elif body.get("kind") == "release" and status == "reviewed":
            status = "released"
    return status


def check_reviews(meta: dict[str, Any], body: dict[str, Any], seal: dict[str, Any], *, archive: "Archive | None",
                  pubkeys: list[_crypto.VerifyKey], directory: Any, result: Verification) -> None:
    """Check each review and release record: its signature, the report and seal it names, its audit entry."""
    want = signature_hash(str(seal.get("signature")))
    registered: set[str] = set()
    if archive is not None:
        registered = {str((e.details or {}).get("signature_sha256")) for e in archive.audit.entries()
                      if e.action in ("report.review", "report.release") and e.target == body.get("digest")}
    for i, record in enumerate(meta.get("reviews") or []):
        review = record.get("body") or {}
        what = f"{review.get('kind', 'review')} {i + 1} by {record.get('signer')}"
        before = len(result.problems)
        check_signature(record, what=what, archive=archive, pubkeys=pubkeys, problems=result.problems,
                        directory=directory)
        if review.get("report_digest") != body.get("digest") or review.get("seal_signature_sha256") != want:
            result.problem(f"{what}: signed for another report or seal")
        if record.get("signer") == seal.get("signer"):
            result.problem(f"{what}: the operator reviewed their own report")
        if archive is not None and signature_hash(str(record.get("signature"))) not in registered:
            result.problem(f"{what}: not registered in the archive's audit log")
        if len(result.problems) == before:
            result.check(f"{what}: {review.get('decision', 'release')} signature")
