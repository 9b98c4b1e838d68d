"""Sealing records (存储介质密封记录) of emergency snapshots on removable media: signed, on the media, audited.

    >>> record = seal_media(archive, target, snapshot, keys=custody, sealed_by="admin",
    ...                     media_id="USB-2026-017", photo=Path("seal.jpg"))           # doctest: +SKIP
    >>> verify_seal(target, record_key, {snapshot.id: snapshot})                        # doctest: +SKIP
    []

The record says who sealed which media when, which snapshot it holds (its id and the SHA-256 of
its manifest, which lists every object's hash), the case, and the SHA-256 of a photo of the sealed
media when one is given (the seed's 附照片; the photo itself stays with the paper record). The
archive key signs its RFC 8785 body through the custody; the record goes onto the media beside the
snapshot (``seals/<snapshot id>.json``) and into the audit log (``backup.seal``, with its hash).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.backup.snapshot import Snapshot, snapshot_chain
from investigator.backup.target import SEALS, Target, TargetError
from investigator.errors import IntegrityError
from investigator.schema import canonical_json, format_ts
from investigator.vault.format import ArchiveSigner
from investigator.vault.store import Archive

SEAL_FORMAT = "investigator-media-seal/1"
SEALS_PREFIX = SEALS


def seal_key(snapshot_id: str) -> str:
    """The object key of a snapshot's sealing record."""
    return f"{SEALS}/{snapshot_id}.json"


def seal_media(archive: Archive, target: Target, snapshot: Snapshot, *, signer: ArchiveSigner, sealed_by: str,
               media_id: str, photo: Path | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Write and audit the sealing record of ``snapshot`` on ``target``; return the record.

    Raises IntegrityError / TargetError when the record cannot be written or
    read back; AuditError when the audit entry cannot be appended.
    """
    when = now or datetime.now(timezone.utc)
    photo_sha = None
    if photo is not None:
        try:
            photo_sha = _crypto.sha256_file(photo)
        except OSError as exc:
            raise IntegrityError(f"photo unreadable ({exc.strerror})", path=str(photo)) from exc
    body = {"format": SEAL_FORMAT, "archive_id": archive.archive_id, "snapshot": snapshot.id,
            "snapshot_sha256": snapshot.digest, "case": snapshot.body.get("case"), "tier": snapshot.tier,
            "media_id": media_id, "target": target.url, "sealed_by": sealed_by, "sealed_at": format_ts(when),
            "photo_sha256": photo_sha, "retain_until": snapshot.body.get("retain_until")}
    signed = canonical_json(body)
    record = {"body": body, "key_id": signer.public.key_id, "signature": signer.sign(signed)}
    data = canonical_json(record)
    key = seal_key(snapshot.id)
    target.put(key, data, retain_until=None)
    if target.get(key) != data:
        raise TargetError("sealing record did not read back as written", path=f"{target.url}/{key}")
    archive.audit.append(sealed_by, "backup.seal", media_id,
                         {"snapshot": snapshot.id, "snapshot_sha256": snapshot.digest, "case": body["case"],
                          "target": target.url, "record_sha256": _crypto.sha256_hex(data),
                          "photo_sha256": photo_sha}, now=when)
    return record


def verify_seal(target: Target, key: str, snapshots: dict[str, Snapshot]) -> list[str]:
    """Problems of the sealing record at ``key`` (empty: it verifies): form, snapshot, manifest hash, signature."""
    try:
        data = target.get(key)
        record = json.loads(data)
        body, key_id, signature = record["body"], str(record["key_id"]), str(record["signature"])
        if body.get("format") != SEAL_FORMAT or canonical_json(record) != data:
            return [f"{key}: not a sealing record in canonical form"]
    except (TargetError, ValueError, KeyError, TypeError) as exc:
        return [f"{key}: unreadable sealing record ({type(exc).__name__})"]
    snap = snapshots.get(str(body.get("snapshot")))
    if snap is None:
        return [f"{key}: seals snapshot {body.get('snapshot')!r}, which the target does not hold"]
    problems = []
    if body.get("snapshot_sha256") != snap.digest:
        problems.append(f"{key}: the snapshot manifest's SHA-256 is not the sealed one (manifest replaced)")
    try:
        snapshot_chain(target, snap).verify(signature, canonical_json(body), what=key, key_id=key_id)
    except IntegrityError as exc:
        problems.append(f"{key}: signature does not verify ({exc})")
    return problems
