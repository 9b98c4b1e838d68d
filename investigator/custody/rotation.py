"""Master-key rotation (定期更新加密密钥, quarterly by the seed): add a KEK version, rewrap, retire.

    >>> custody = unlock_archive(archive, passphrase, actor="wugang")   # doctest: +SKIP
    >>> rotate(archive, custody, actor="wugang")                        # doctest: +SKIP
    RotationResult(version=2, rewrapped=58)
    >>> retire(archive, custody, version=1, actor="wugang")             # doctest: +SKIP

Rotation and retirement work on any :class:`~investigator.custody.base.Custody`
backend; only :func:`status` reads the key file itself (its version list needs
no secret).

Rotation wraps every data key (each batch's, per partition and for its index),
the archive-wide index key and the TOTP key again under a new master-key version;
new batches get keys under it too. The rewrapped copies of batch keys live in
``keys/rewrapped/`` because the originals sit inside committed, immutable batches
(``<kind>/<day>.json`` for a partition's first key, ``<kind>/<day>.<NNNNNNNN>.json``
for the key a later batch made for it). Retiring a version removes it
from the key file once nothing depends on it, so its wrapped copies become
dead bytes. As with any rewrap-only rotation, data keys themselves do not
change: rotation protects against a master key that leaks *after* it was
retired, not before (docs/threat-model.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from investigator.vault.store import Archive
from investigator.errors import ArchiveError, InvestigatorError
from investigator._fs import atomic_write
from investigator.custody.file import KeyFile
from investigator.schema import format_ts
from investigator.custody.base import Custody
from investigator.vault.destruction import is_period_wrapped

ROTATE_AFTER = timedelta(days=92)  # the seed: every quarter


@dataclass(frozen=True)
class RotationResult:
    version: int
    rewrapped: int


def _write_wrapped(path: Path, wrapped: dict[str, Any]) -> None:
    atomic_write(path, (json.dumps(wrapped, sort_keys=True) + "\n").encode(), mode=0o600)


def rotate(archive: Archive, custody: Custody, *, actor: str, now: datetime | None = None) -> RotationResult:
    """Add a master-key version and rewrap every key under it. Audited.

    Raises IntegrityError (a wrapped key that does not open) or whatever the
    custody backend raises when it cannot add a version.
    """
    when = now or datetime.now(timezone.utc)
    with archive.write_lock():
        version: int | None = None
        try:
            version = custody.add_version(now=when)
            count = rewrap_data_keys(archive, custody, custody, into=archive)
            for path in archive.layout.fixed_wrapped_keys:  # the index and TOTP keys, rewrapped in place
                if path.exists():
                    wrapped = json.loads(path.read_text(encoding="utf-8"))
                    plain = custody.unwrap(wrapped, what=archive.layout.relative(path))
                    _write_wrapped(path, custody.wrap(plain, wrapped["kind"], wrapped["partition"]))
                    count += 1
            count += _reseal_consent_keys(archive, custody)
        except (InvestigatorError, OSError) as err:
            # a custody that went away mid-way (server stopped, token pulled, disk full): the new version may
            # exist and some keys be wrapped under it already (each key file is replaced whole, so every key
            # still opens under one version or the other); the audit log says so and why
            archive.audit.append(actor, "keys.rotate", archive.archive_id, {
                "version": version, "rewrapped": _wrapped_under(archive, version), "unfinished": True,
                "reason": str(err) or type(err).__name__}, outcome="error", now=when)
            raise
        assert version is not None
        archive.audit.append(actor, "keys.rotate", archive.archive_id, {"version": version, "rewrapped": count},
                             now=when)
        archive.audit.checkpoint(custody.signing, archive_id=archive.archive_id, now=when)
    return RotationResult(version, count)


def _wrapped_under(archive: Archive, version: int | None) -> int | None:
    """How many keys are wrapped under ``version`` now (None when that cannot be told)."""
    if version is None:
        return 0
    try:
        return sum(1 for v in wrapped_versions(archive).values() if v == version)
    except (OSError, ValueError, KeyError):
        return None


def _reseal_consent_keys(archive: Archive, custody: Custody) -> int:
    """Seal each consent file's key again under the current master-key version; returns how many."""
    count = 0
    for path in consent_records(archive):  # each consent file's key, kept in its record (unsigned part)
        copy = archive.layout.consent_key(path.stem)
        if copy.exists():  # sealed again by a custody migration: that copy is the one in use
            sealed = json.loads(copy.read_text(encoding="utf-8"))
            plain = custody.unseal(sealed, what=archive.layout.relative(copy))
            _write_wrapped(copy, custody.seal(plain, purpose=sealed["kind"], name=sealed["partition"]))
            count += 1
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        sealed = record["key"]
        plain = custody.unseal(sealed, what=archive.layout.relative(path))
        record["key"] = custody.seal(plain, purpose=sealed["kind"], name=sealed["partition"])
        atomic_write(path, (json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode(),
                     mode=0o600)
        count += 1
    return count


def rewrap_data_keys(archive: Archive, read: Custody, write: Custody, *, into: Archive) -> int:
    """Unwrap every batch data key with ``read`` and wrap it with ``write`` into ``into``'s rewrapped copies.

    ``into`` is ``archive`` itself for a rotation, or the same archive seen with the next custody
    generation's layout for a migration (``custody/migration.py``). Returns how many keys.
    Raises IntegrityError for a wrapped key that does not open.
    """
    count = 0
    for seq, kind, partition, _path in archive.data_key_files():  # every batch's own keys (format change 2)
        if is_period_wrapped(_current_wrapped(archive, kind, partition, seq)):
            continue  # under its period's key, which no master-key version outlives (never rewrapped: shredding)
        dek = archive.data_key(read, kind, partition, seq)
        _write_wrapped(into.rewrapped_data_key_path(kind, partition, seq), write.wrap(dek, kind, partition))
        count += 1
    return count


def _current_wrapped(archive: Archive, kind: str, partition: str, seq: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(archive.current_data_key_path(kind, partition, seq).read_text(encoding="utf-8"))
    return data


def wrapped_versions(archive: Archive) -> dict[str, int]:
    """Each key the archive needs (by name) and the master-key version it is wrapped under now."""
    out: dict[str, int] = {}
    first: set[tuple[str, str]] = set()
    for seq, kind, partition, _path in archive.data_key_files():
        wrapped = _current_wrapped(archive, kind, partition, seq)
        name = f"{kind}/{partition}" if (kind, partition) not in first else f"{kind}/{partition}@{seq}"
        first.add((kind, partition))
        if is_period_wrapped(wrapped):
            continue  # depends on its period key, not on a master-key version
        out[name] = int(wrapped["kek_version"])
    for path in archive.layout.fixed_wrapped_keys:
        if path.exists():
            out[path.name] = int(json.loads(path.read_text(encoding="utf-8"))["kek_version"])
    for path in consent_records(archive):
        copy = archive.layout.consent_key(path.stem)
        sealed = json.loads(copy.read_text(encoding="utf-8")) if copy.exists() else \
            json.loads(path.read_text(encoding="utf-8"))["key"]
        out[f"consent {path.stem}"] = int(sealed["kek_version"])
    return out


def consent_records(archive: Archive) -> list[Path]:
    """Consent records (org/consents/*.json): each holds its encrypted file's key, sealed by the custody."""
    folder = archive.layout.consent_dir
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def retire(archive: Archive, custody: Custody, *, version: int, actor: str, now: datetime | None = None) -> None:
    """Remove master-key ``version`` from the custody. Audited.

    Raises ArchiveError when it is the current version, not a version, or a
    key still depends on it; each refusal is audited as ``keys.retire`` / denied with its reason.
    """
    when = now or datetime.now(timezone.utc)
    with archive.write_lock():
        try:
            versions = sorted(custody.versions())
        except (InvestigatorError, OSError) as err:  # the custody went away before anything changed
            archive.audit.append(actor, "keys.retire", archive.archive_id, {
                "version": version, "reason": str(err) or type(err).__name__}, outcome="error", now=when)
            raise
        users = sorted(name for name, v in wrapped_versions(archive).items() if v == version)
        refusal = (f"master key version {version} is not in the custody (versions: {versions})"
                   if version not in versions else
                   f"version {version} is the current master key; rotate first" if version == max(versions) else
                   f"{len(users)} keys are still wrapped only under version {version} (e.g. {users[0]}); "
                   "run 'investigator keys rotate' first" if users else None)
        if refusal:
            archive.audit.append(actor, "keys.retire", archive.archive_id, {"version": version, "reason": refusal},
                                 outcome="denied", now=when)
            raise ArchiveError(refusal)
        try:
            custody.remove_version(version)
        except (InvestigatorError, OSError) as err:
            # ArchiveError: the custody refused before changing anything (OpenBao: not the oldest version);
            # anything else: it went away mid-way, and the version may be half removed
            refused = isinstance(err, ArchiveError)
            archive.audit.append(actor, "keys.retire", archive.archive_id, {
                "version": version, **({} if refused else {"unfinished": True}),
                "reason": str(err) or type(err).__name__}, outcome="denied" if refused else "error", now=when)
            raise
        archive.audit.append(actor, "keys.retire", archive.archive_id, {"version": version}, now=when)


def status(archive: Archive, *, custody: Custody | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Master-key versions (no secrets), how many keys each wraps, and whether rotation is due.

    The key file's versions are read without the passphrase; any other backend
    is asked through an opened ``custody`` (ArchiveError without one).
    """
    when = now or datetime.now(timezone.utc)
    if custody is not None:
        versions = custody.versions()
    elif archive.config.custody.get("backend", "file") == "file":
        versions = KeyFile.load(archive.layout.key_file).versions()
    else:
        raise ArchiveError(f"the master keys of this archive live in its {archive.config.custody['backend']} "
                           "custody; open it to read their versions")
    usage: dict[int, int] = {v: 0 for v in versions}
    for v in wrapped_versions(archive).values():
        usage[v] = usage.get(v, 0) + 1
    current = max(versions)
    # to the second: the key file writes microseconds, OpenBao nanoseconds, a token whatever it keeps
    created = datetime.strptime(versions[current][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return {"current_version": current, "current_created": versions[current],
            "rotation_due": when - created > ROTATE_AFTER, "rotate_after_days": ROTATE_AFTER.days,
            "versions": [{"version": v, "created": versions[v], "keys_wrapped": usage.get(v, 0)}
                         for v in sorted(versions)], "checked": format_ts(when)}
