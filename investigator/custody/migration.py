"""Moving an archive's master keys to another custody backend (``investigator keys migrate``).

    >>> secrets = Settings.from_environ(os.environ)                           # doctest: +SKIP
    >>> migrate(Archive.open("a"), to="pkcs11", secrets=secrets, actor="wugang")  # doctest: +SKIP
    MigrationResult(from_backend='file', to_backend='pkcs11', generation='2', rewrapped=58, ...)

Master keys never leave their custody, and neither does the archive's Ed25519
signing key inside a PKCS#11 token or an OpenBao transit engine. So a migration
makes new master keys *and a new signing key* in the target custody, wraps
every key the archive needs again under the new master key, and records a signed
key transition (``vault/keychain.py``) so that everything the old key signed
still verifies.

Steps, each safe to be killed at (``CRASH_AT`` names them for the tests):

1. ``keys/migration.json`` (the journal) names the source and target custody
   tables and the new custody generation N.
2. The target custody is opened, or provisioned when it holds no keys for the
   archive yet (a rerun reuses what an earlier attempt made).
3. Every data key (per partition), the index key, the TOTP key and each consent
   file's key is unwrapped by the source and wrapped by the target into
   ``keys/custody/N/`` -- beside, never over, the keys in use.
4. The transition record (old key, new key, backends, the new ``[custody]``
   table, time, reason), signed by both keys, goes into the journal.
5. **The switch**: ``keys/transitions.jsonl`` is replaced by its old lines plus
   that record (one atomic rename). From then on the archive opens with the new
   custody (``Archive.open`` takes the last record's table) and signs with the
   new key.
6. ``keys.migrate`` is audited, an audit checkpoint is signed with the new key,
   the old key file is removed (file backend), the journal deleted.

Killed before step 5, the archive opens with its old custody and the staged
keys are unused; killed after, it opens with the new one. ``migrate`` run again
finishes the job (redoing steps 2-5 before the switch, so keys that arrived in
between are not left behind, or only step 6 after it); :func:`abort` rolls an
unfinished migration back (before the switch only).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator._fs import atomic_write
from investigator.custody.base import Custody
from investigator.custody.file import KeyFile, check_passphrase
from investigator.custody.openbao import OpenBaoCustody
from investigator.custody.pkcs11 import Pkcs11Custody
from investigator.custody.registry import (BACKENDS, DEFAULT_MOUNT, DEFAULT_TOKEN_LABEL, _close, _need,
                                           backend_of)
from investigator.custody.rotation import consent_records, rewrap_data_keys
from investigator.errors import ArchiveError, ConfigError, IntegrityError, InvestigatorError
from investigator.schema import canonical_json, format_ts
from investigator.settings import BAO_ADDR_ENV, BAO_TOKEN_ENV, PKCS11_MODULE_ENV, PKCS11_PIN_ENV, Settings
from investigator.vault.keychain import KeyChain, record_line, transition_body
from investigator.vault.store import Archive
from investigator.vault.verify import check_archive

JOURNAL_FORMAT = "investigator-custody-migration/1"

# Fault injection for the crash-safety tests only: a child process they start sets this to a step
# name (see STEPS) and is killed with SIGKILL there. None (never set) in normal use.
CRASH_AT: str | None = None
STEPS = ("after-journal", "after-target", "mid-rewrap", "before-switch", "after-switch", "before-retire")


def _crash_point(name: str) -> None:
    if CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class MigrationResult:
    """What a finished migration did (no secrets)."""

    from_backend: str
    to_backend: str
    generation: str
    rewrapped: int
    old_key_id: str
    new_key_id: str
    resumed: bool


def _generation_number(table: dict[str, str]) -> int:
    return int(table.get("generation") or 1)


def target_table(archive: Archive, to: str, *, token_label: str = DEFAULT_TOKEN_LABEL,
                 mount: str = DEFAULT_MOUNT) -> dict[str, str]:
    """The ``[custody]`` table the archive will have after moving to backend ``to`` (the next generation).

    Raises ConfigError for an unknown backend or the backend already in use
    (``keys rotate`` renews master keys within one custody).
    """
    if to not in BACKENDS:
        raise ConfigError(f"unknown custody backend {to!r}", hint=f"one of {', '.join(BACKENDS)}")
    current = archive.config.custody
    if to == backend_of(archive):
        raise ConfigError(f"the archive's master keys are already in its {to} custody",
                          hint="'investigator keys rotate' makes a new master-key version within a custody")
    table = {"backend": to, "generation": str(_generation_number(current) + 1)}
    if to == "pkcs11":
        table["token_label"] = token_label
    elif to == "openbao":
        table["mount"] = mount
    if current.get("state_dir"):
        table["state_dir"] = current["state_dir"]  # TOTP state stays where the custodian keeps it
    return table


# --- the journal ----------------------------------------------------------------------------------

def read_journal(archive: Archive) -> dict[str, Any] | None:
    """The journal of an unfinished migration, None when none is under way. IntegrityError if unreadable."""
    path = archive.layout.migration_journal
    try:
        journal = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IntegrityError("unreadable custody migration journal", path=archive.layout.relative(path)) from exc
    if not isinstance(journal, dict) or journal.get("format") != JOURNAL_FORMAT \
            or journal.get("archive_id") != archive.archive_id:
        raise IntegrityError("not this archive's custody migration journal", path=archive.layout.relative(path))
    return journal


def _write_journal(archive: Archive, journal: dict[str, Any]) -> None:
    atomic_write(archive.layout.migration_journal, (json.dumps(journal, sort_keys=True, indent=1) + "\n").encode(),
                 mode=0o600)


def _switched(chain: KeyChain, journal: dict[str, Any]) -> bool:
    """Did the journal's transition reach the chain (the switch happened)?"""
    record = journal.get("record")
    return bool(record) and bool(chain.records) and chain.records[-1] == record


# --- opening and making custodies -----------------------------------------------------------------

def _open_table(archive: Archive, table: dict[str, str], secrets: Settings, *, create: bool,
                kdf_n: int, now: datetime, actor: str) -> Custody:
    """The custody ``table`` names for this archive: opened, or (``create``) provisioned when it holds no keys.

    Every open is audited (``unlock``, purpose ``keys migrate``), refused ones too. Raises what the
    backend raises (WrongPassphrase, ConfigError, ArchiveError, KeyServiceError).
    """
    details = {"purpose": "keys migrate", "custody": table["backend"], "generation": table.get("generation", "1")}
    try:
        custody = _open_backend(archive, table, secrets, create=create, kdf_n=kdf_n, now=now)
    except InvestigatorError as err:
        archive.audit.append(actor, "unlock", archive.archive_id, {**details, "reason": str(err)}, outcome="denied",
                             now=now)
        raise
    archive.audit.append(actor, "unlock", archive.archive_id, {**details, "versions": sorted(custody.versions())},
                         outcome="ok", now=now)
    return custody


def _open_backend(archive: Archive, table: dict[str, str], secrets: Settings, *, create: bool,
                  kdf_n: int, now: datetime) -> Custody:
    backend = table["backend"]
    layout = archive.layout.with_generation(table.get("generation", ""))
    if backend == "file":
        passphrase = check_passphrase(secrets.passphrase)
        if create and not layout.key_file.exists():
            return KeyFile.create(layout.key_file, archive.archive_id, passphrase, kdf_n=kdf_n, now=now)[1]
        keys = KeyFile.load(layout.key_file).unlock(passphrase)
        if keys.archive_id != archive.archive_id:
            raise IntegrityError("key file belongs to another archive", path=archive.layout.relative(layout.key_file))
        return keys
    if backend == "pkcs11":
        module = _need(secrets.pkcs11_module, PKCS11_MODULE_ENV, backend)
        pin = _need(secrets.pkcs11_pin, PKCS11_PIN_ENV, backend)
        label = table.get("token_label", DEFAULT_TOKEN_LABEL)
        try:
            return Pkcs11Custody.open(module, pin, label, archive.archive_id)
        except ArchiveError:
            if not create:
                raise
        return Pkcs11Custody.provision(module, pin, label, archive.archive_id, now=now)
    addr = _need(secrets.bao_addr, BAO_ADDR_ENV, backend)
    token = _need(secrets.bao_token, BAO_TOKEN_ENV, backend)
    mount = table.get("mount", DEFAULT_MOUNT)
    try:
        return OpenBaoCustody.open(addr, token, archive.archive_id, mount=mount, ca_cert=secrets.bao_cacert)
    except ArchiveError:
        if not create:
            raise
    return OpenBaoCustody.provision(addr, token, archive.archive_id, mount=mount, ca_cert=secrets.bao_cacert)


# --- rewrapping -----------------------------------------------------------------------------------

def _write_wrapped(path: Path, wrapped: dict[str, Any]) -> None:
    atomic_write(path, (json.dumps(wrapped, sort_keys=True) + "\n").encode(), mode=0o600)


def _stage(archive: Archive, source: Custody, target: Custody, staged: Archive) -> int:
    """Wrap every key the archive needs again, by ``target``, into the ``staged`` generation's folder.

    Returns the count. The index, TOTP and consent keys are unwrapped again by
    the target before they count; the data keys are checked by :func:`_check_staged`.
    """
    count = 0

    def put(path: Path, plain: bytes, wrapped: dict[str, Any]) -> None:
        nonlocal count
        if target.unwrap(wrapped, what=archive.layout.relative(path)) != plain:
            raise IntegrityError("the target custody does not give back the key it wrapped",
                                 path=archive.layout.relative(path))
        _write_wrapped(path, wrapped)
        count += 1

    count += rewrap_data_keys(archive, source, target, into=staged)  # checked by _check_staged (every chunk)
    _crash_point("mid-rewrap")
    for path, new_path in zip(archive.layout.fixed_wrapped_keys, staged.layout.fixed_wrapped_keys):
        if path.exists():
            wrapped = json.loads(path.read_text(encoding="utf-8"))
            plain = source.unwrap(wrapped, what=archive.layout.relative(path))
            put(new_path, plain, target.wrap(plain, wrapped["kind"], wrapped["partition"]))
    for record_path in consent_records(archive):
        name = record_path.stem
        copy = archive.layout.consent_key(name)
        sealed = (json.loads(copy.read_text(encoding="utf-8")) if copy.exists()
                  else json.loads(record_path.read_text(encoding="utf-8"))["key"])
        plain = source.unseal(sealed, what=archive.layout.relative(copy if copy.exists() else record_path))
        put(staged.layout.consent_key(name), plain,
            target.seal(plain, purpose=sealed["kind"], name=sealed["partition"]))
    return count


def _check_staged(staged: Archive, target: Custody) -> None:
    """Before the switch: the archive as it will be (new generation, new custody) decrypts every chunk.

    A full check, through the same key look-ups every reader uses, so a key the
    staging missed stops the migration here. Raises ArchiveError naming the first problems.
    """
    report = check_archive(staged, keys=target)
    if not report.ok:
        raise ArchiveError(f"the staged keys do not open the archive ({len(report.problems)} problems, e.g. "
                           f"{report.problems[0]}); nothing was switched", hint="investigator keys migrate --abort")


# --- the migration --------------------------------------------------------------------------------

def migrate(archive: Archive, *, to: str, secrets: Settings, actor: str, reason: str = "",
            token_label: str = DEFAULT_TOKEN_LABEL, mount: str = DEFAULT_MOUNT, kdf_n: int = _crypto.SCRYPT_N,
            now: datetime | None = None) -> MigrationResult:
    """Move ``archive``'s master keys and signing key to backend ``to`` (or finish an interrupted move there).

    ``secrets`` carries what both custodies need (passphrase, PIN, token).
    Audited as ``keys.migrate``: allowed with the backends and counts, or denied
    with the reason. Raises ConfigError (unknown or same backend, a needed
    secret missing, another migration under way), WrongPassphrase (a custody
    refused its secret), ArchiveError / KeyServiceError (a device or server
    refused, a target that already holds a key this archive used),
    IntegrityError (a key that does not unwrap).
    """
    when = now or datetime.now(timezone.utc)
    with archive.write_lock():
        try:
            return _migrate(archive, to=to, secrets=secrets, actor=actor, reason=reason, token_label=token_label,
                            mount=mount, kdf_n=kdf_n, now=when)
        except InvestigatorError as err:
            archive.audit.append(actor, "keys.migrate", archive.archive_id,
                                 {"from": backend_of(archive), "to": to, "reason": str(err)}, outcome="denied",
                                 now=when)
            raise


def _migrate(archive: Archive, *, to: str, secrets: Settings, actor: str, reason: str, token_label: str,
             mount: str, kdf_n: int, now: datetime) -> MigrationResult:
    key_file = archive.layout.key_file
    if archive.config.custody.get("period_keys") or (
            key_file.exists() and json.loads(key_file.read_text(encoding="utf-8")).get("period_keys")):
        raise ConfigError("this archive's data keys are wrapped under period keys (crypto-shredding), which a "
                          "custody migration does not move yet; it would leave them behind",
                          hint="docs/admin.md, section 12 (period keys, by custody)")
    journal = read_journal(archive)
    chain = archive.signing_keys()
    if journal is not None and _switched(chain, journal):  # killed after the switch: only the clean-up is left
        if journal["to"]["backend"] != to:
            raise ConfigError(f"a migration to {journal['to']['backend']} already switched; finish it first",
                              hint=f"investigator keys migrate ARCHIVE --to {journal['to']['backend']}")
        return _finish(archive, journal, secrets, actor=actor, now=now, resumed=True)
    if journal is not None:
        if journal["to"]["backend"] != to:
            raise ConfigError(f"a migration to {journal['to']['backend']} is under way (keys/migration.json)",
                              hint=f"finish it (--to {journal['to']['backend']}) or roll it back (--abort)")
        table, resumed = dict(journal["to"]), True
    else:
        table, resumed = target_table(archive, to, token_label=token_label, mount=mount), False
        journal = {"format": JOURNAL_FORMAT, "archive_id": archive.archive_id, "from": dict(archive.config.custody),
                   "to": table, "started": format_ts(now), "actor": actor, "reason": reason}
        _write_journal(archive, journal)
    _crash_point("after-journal")
    source = _open_table(archive, archive.config.custody, secrets, create=False, kdf_n=kdf_n, now=now,
                         actor=actor)
    target: Custody | None = None
    try:
        if source.signing.public.raw != chain.current.raw:
            raise IntegrityError("the archive's custody signs with a key that is not the archive's current key",
                                 path="keys/transitions.jsonl")
        target = _open_table(archive, table, secrets, create=True, kdf_n=kdf_n, now=now, actor=actor)
        new_key = target.signing.public
        if chain.accepts(new_key.key_id):
            raise ArchiveError(f"the {to} custody signs with key {new_key.key_id}, which this archive used before; "
                               "its old keys there must be destroyed first (docs/admin.md, Migrating custody)")
        _crash_point("after-target")
        staged = Archive(archive.root, replace(archive.config, custody=table))  # the archive as it will be
        count = _stage(archive, source, target, staged)
        _check_staged(staged, target)
        body = transition_body(archive_id=archive.archive_id, seq=len(chain.records) + 1, prev=chain.next_prev,
                               old=chain.current, new=new_key, old_backend=backend_of(archive), new_backend=to,
                               custody=table, time=format_ts(now), reason=reason or "custody migration")
        signed = canonical_json(body)
        record = {"body": body, "signatures": {"old": source.signing.sign(signed), "new": target.signing.sign(signed)}}
        journal = {**journal, "record": record, "rewrapped": count}
        _write_journal(archive, journal)
        _crash_point("before-switch")
        # the switch: one atomic replace of the chain file with one more line (archive-format.md, key transitions)
        previous = archive.layout.transitions.read_bytes() if archive.layout.transitions.exists() else b""
        KeyChain.parse(previous + record_line(record), genesis=chain.genesis, archive_id=archive.archive_id)
        atomic_write(archive.layout.transitions, previous + record_line(record))
        _crash_point("after-switch")
    finally:
        _close(source)
        if target is not None:
            _close(target)
    return _finish(Archive.open(archive.root), journal, secrets, actor=actor, now=now, resumed=resumed)


def _finish(archive: Archive, journal: dict[str, Any], secrets: Settings, *, actor: str, now: datetime,
            resumed: bool) -> MigrationResult:
    """After the switch: audit, sign a checkpoint with the new key, retire the old key file, drop the journal."""
    record = journal["record"]["body"]
    custody = _open_table(archive, archive.config.custody, secrets, create=False, kdf_n=_crypto.SCRYPT_N,
                          now=now, actor=actor)
    try:
        if custody.signing.public.key_id != record["new"]["key_id"]:
            raise IntegrityError("the new custody does not sign with the key its transition names",
                                 path="keys/transitions.jsonl")
        audited = any(e.action == "keys.migrate" and e.outcome == "ok" and e.details.get("transition") == record["seq"]
                      for e in archive.audit.entries())  # killed after the audit, before the clean-up
        if not audited:
            archive.audit.append(actor, "keys.migrate", archive.archive_id, {
                "from": record["old"]["backend"], "to": record["new"]["backend"],
                "generation": journal["to"]["generation"], "rewrapped": journal.get("rewrapped", 0),
                "old_key_id": record["old"]["key_id"], "new_key_id": record["new"]["key_id"],
                "transition": record["seq"], "resumed": resumed}, now=now)
            archive.audit.checkpoint(custody.signing, archive_id=archive.archive_id, now=now)
    finally:
        _close(custody)
    _crash_point("before-retire")
    old = journal["from"]
    if old.get("backend") == "file":  # the old master keys die with their file, now that the switch is durable
        old_file = archive.layout.with_generation(old.get("generation", "")).key_file
        old_file.unlink(missing_ok=True)
    archive.layout.migration_journal.unlink(missing_ok=True)
    return MigrationResult(record["old"]["backend"], record["new"]["backend"], journal["to"]["generation"],
                           int(journal.get("rewrapped", 0)), record["old"]["key_id"], record["new"]["key_id"],
                           resumed)


def abort(archive: Archive, *, actor: str, now: datetime | None = None) -> str:
    """Roll back an unfinished migration (before its switch): remove the staged keys and the journal.

    Returns the backend it was moving to. Keys the target custody made for it
    stay there (a later ``migrate`` to the same custody reuses them; the
    custodian may destroy them). Raises ArchiveError when no migration is under
    way or it already switched (run ``migrate`` to finish it). Audited.
    """
    when = now or datetime.now(timezone.utc)
    with archive.write_lock():
        journal = read_journal(archive)
        if journal is None:
            raise ArchiveError("no custody migration is under way (no keys/migration.json)")
        to = str(journal["to"]["backend"])
        if _switched(archive.signing_keys(), journal):
            raise ArchiveError(f"the migration to {to} already switched; it can only be finished",
                               hint=f"investigator keys migrate ARCHIVE --to {to}")
        staged = archive.layout.with_generation(journal["to"]["generation"]).wrapped_keys_dir
        if staged != archive.layout.keys_dir and staged.is_dir():
            shutil.rmtree(staged)
            if not any(staged.parent.iterdir()):
                staged.parent.rmdir()  # keys/custody/ itself, made for this migration
        archive.layout.migration_journal.unlink()
        archive.audit.append(actor, "keys.migrate", archive.archive_id,
                             {"from": journal["from"].get("backend"), "to": to, "rolled_back": True},
                             outcome="denied", now=when)
    return to
