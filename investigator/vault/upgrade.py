"""``investigator upgrade``: switch a format-1 archive to writing format-2 batches, verified and audited.

    >>> result = upgrade_archive(archive, keys, actor="wugang")    # doctest: +SKIP
    >>> result.from_version, result.to_version, result.batches_verified
    (1, 2, 12)

A format-1 archive keeps getting format-1 batches until this runs (archive-format.md,
"Versions"). Nothing of the batches is rewritten, moved or deleted, now or later: every
format-1 file stays where it is and stays readable, forever. Committed batches cannot be
rewritten anyway (their manifests are signed and chained, audit entries and evidence bundles
pin their digests). What changes is one setting, ``archive.toml``'s ``format_version``, which
:meth:`~investigator.vault.store.Archive.write_format` reads for every new batch.

The steps, under the archive's write lock (so no batch is committed half-way):

1. a full verification with the keys (:func:`investigator.vault.verify.verify_archive`: every
   manifest signature and chain link, every file's SHA-256, every chunk decrypted and every
   record rehashed against the signed manifests, the audit log). If anything is wrong the
   upgrade is refused (audited, outcome ``error``) and nothing changes;
2. the audit entry ``archive.upgrade`` (``from``, ``to``, ``batches``, ``verified``): the decision;
3. ``archive.toml`` rewritten atomically with the new ``format_version`` (every other setting,
   and the ``[custody]`` table as the file had it, unchanged), then a signed checkpoint.

Crash safety: killed before step 2, nothing happened. Killed between 2 and 3, the audit log says
format 2 and ``archive.toml`` still 1: ``investigator verify`` warns of an interrupted upgrade
(:mod:`investigator.vault.audited_format`), ingests go on in format 1 (``commit_batch`` takes
only batches in the file's format), and the next ``upgrade`` verifies again, writes the file and
audits ``archive.upgrade`` with ``"completed": true``. Killed after 3, the upgrade is done
(the next checkpoint covers its entry).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from investigator._fs import atomic_write
from investigator.errors import AuditError, IntegrityError, InvestigatorError
from investigator.vault.audited_format import UPGRADE_ACTION, audited_format, format_findings
from investigator.vault.config import ArchiveConfig
from investigator.vault.format import FORMAT_VERSION, Keyring
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive

# Fault injection for the crash-safety tests only: a child process they start sets this to a step
# name ("after-audit": the entry written, archive.toml not yet; "after-write": archive.toml
# written, no checkpoint yet) and is killed with SIGKILL there. None (never set) in normal use.
CRASH_AT: str | None = None
_SHOWN_PROBLEMS = 10  # how many of the verification's problems the refusal names


def _crash_point(name: str) -> None:
    if CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class UpgradeResult:
    """What an upgrade did.

    ``already_current``: the archive already wrote ``to_version`` (nothing changed but the audit
    entry). ``completed``: this run finished an upgrade that an earlier, interrupted run had
    already recorded. ``batches_verified``: committed batches checked before the switch.
    """

    from_version: int
    to_version: int
    batches_verified: int
    already_current: bool
    completed: bool = False

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def upgrade_archive(archive: Archive, keys: Keyring, *, actor: str, now: datetime | None = None,
                    progress: bool = False) -> UpgradeResult:
    """Switch ``archive`` to writing the newest chunk format, after a full verification (module docstring).

    Old batches are kept as they are, all of them, forever. With ``progress`` a bar shows the
    steps on stderr. Raises IntegrityError, changing nothing (only the verification and the
    refusal are audited), when the archive does not verify (the message names the problems) or
    when ``archive.toml`` is already ahead of the audit log (switched without an audited
    upgrade); AuditError when an entry or the checkpoint cannot be written; ArchiveError for
    unreadable settings.
    """
    when = now or datetime.now(timezone.utc)
    target = FORMAT_VERSION
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=3, desc="upgrade: verifying", unit="step")
    try:
        with archive.write_lock():
            # archive.toml as the file has it: its [custody] is the genesis one, which Archive.open
            # overlays with the last key transition's in memory; that overlay must not be written.
            config = ArchiveConfig.load(archive.root)
            current, audited = config.format_version, audited_format(archive)
            if current > audited:
                problems, _ = format_findings(archive)
                _refuse(archive, actor, current, target, problems, now=when)
            if current >= target:
                archive.audit.append(actor, UPGRADE_ACTION, archive.archive_id,
                                     {"from": current, "to": current, "already_current": True}, now=when)
                archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id, now=when)
                return UpgradeResult(current, current, 0, already_current=True)
            try:
                report = verify_archive(archive, keys=keys, actor=actor)
            except InvestigatorError as err:  # the custody went away (server stopped, token pulled): not damage
                _audit_unfinished(archive, actor, current, target, err, now=when)
                raise
            if not report.ok:
                _refuse(archive, actor, current, target, report.problems, now=when)
            batches = report.counts.get("manifests", 0)
            if bar is not None:
                bar.set_description("upgrade: recording")
                bar.update(1)
            settings = _new_settings(archive, config, target)  # checked before anything is written
            details = {"from": current, "to": target, "batches": batches, "verified": True}
            completing = audited >= target  # an earlier run recorded the switch, then died before the file
            if not completing:
                archive.audit.append(actor, UPGRADE_ACTION, archive.archive_id, details, now=when)
            _crash_point("after-audit")
            if bar is not None:
                bar.set_description("upgrade: switching")
                bar.update(1)
            atomic_write(archive.layout.config, settings)
            archive.config = replace(archive.config, format_version=target)  # keeps the in-memory custody overlay
            _crash_point("after-write")
            if completing:
                archive.audit.append(actor, UPGRADE_ACTION, archive.archive_id, {**details, "completed": True},
                                     now=when)
            archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id, now=when)
            if bar is not None:
                bar.update(1)
            return UpgradeResult(current, target, batches, already_current=False, completed=completing)
    finally:
        if bar is not None:
            bar.close()


def _new_settings(archive: Archive, config: ArchiveConfig, version: int) -> bytes:
    """archive.toml's bytes with ``format_version = version``; IntegrityError unless they differ in nothing else."""
    updated = replace(config, format_version=version)
    text = updated.to_toml().encode()
    if ArchiveConfig.parse(text, archive.layout.config) != updated:  # to_toml must round-trip every setting
        raise IntegrityError("the new settings would not read back as written; archive.toml left unchanged",
                             path="archive.toml")
    return text


def _audit_unfinished(archive: Archive, actor: str, current: int, target: int, err: InvestigatorError, *,
                      now: datetime) -> None:
    """Audit an upgrade whose verification could not finish (outcome ``error``); nothing was changed."""
    try:
        archive.audit.append(actor, UPGRADE_ACTION, archive.archive_id,
                             {"from": current, "to": target, "verified": False,
                              "reason": f"the verification could not finish: {err}"[:2000]}, outcome="error", now=now)
    except AuditError:
        pass  # the error being raised says what went wrong; a log that cannot take the entry is verify's to report


def _refuse(archive: Archive, actor: str, current: int, target: int, problems: list[str], *,
            now: datetime) -> None:
    """Audit the refusal (outcome ``error``) and raise IntegrityError naming the problems."""
    shown = "; ".join(problems[:_SHOWN_PROBLEMS])
    more = f" (and {len(problems) - _SHOWN_PROBLEMS} more)" if len(problems) > _SHOWN_PROBLEMS else ""
    reason = f"the archive does not verify: {shown}{more}"
    hint = "run 'investigator verify' for the full list; nothing was changed"
    try:
        archive.audit.append(actor, UPGRADE_ACTION, archive.archive_id,
                             {"from": current, "to": target, "verified": False, "problems": len(problems),
                              "reason": reason[:2000]}, outcome="error", now=now)
    except AuditError as err:
        raise IntegrityError(f"upgrade refused, {reason}; the refusal could not be audited ({err})",
                             hint=hint) from err
    raise IntegrityError(f"upgrade refused, {reason}", hint=hint)


__all__ = ["CRASH_AT", "UpgradeResult", "format_findings", "upgrade_archive"]
