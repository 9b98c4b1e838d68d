"""The chunk format the audit log says is in force, and whether ``archive.toml`` agrees with it.

    >>> audited_format(archive)        # doctest: +SKIP
    2
    >>> format_findings(archive)       # doctest: +SKIP
    ([], [])

``archive.toml``'s ``format_version`` decides what new batches are written in
(:meth:`investigator.vault.store.Archive.write_format`); the audit log records every
switch of it. The audited format is the ``init`` entry's ``format_version`` (absent in
archives made before format 2: format 1), overridden by the latest successful
``archive.upgrade`` entry's ``to`` (:mod:`investigator.vault.upgrade` writes them).
The two disagree in two ways:

- ``archive.toml`` below the audit log: an upgrade was recorded, then interrupted before it
  rewrote the file (it writes the entry first). A warning: the archive is intact and keeps
  writing the file's format until ``investigator upgrade`` is run again, which finishes it.
- ``archive.toml`` above the audit log: the file was switched without an audited upgrade
  (edited by hand, or copied from another archive). A problem.

Kept apart from :mod:`investigator.vault.upgrade` because verification calls it and the
upgrade calls verification (no import cycle).
"""

from __future__ import annotations

from investigator.errors import ArchiveError, AuditError
from investigator.vault.format import FORMAT_V1
from investigator.vault.store import Archive

UPGRADE_ACTION = "archive.upgrade"


def audited_format(archive: Archive) -> int:
    """The chunk format the audit log says is in force (see the module docstring).

    Raises AuditError for an entry that does not parse, or an ``init`` / ``archive.upgrade``
    entry whose format is not a whole number.
    """
    version = FORMAT_V1
    for entry in archive.audit.entries():
        if entry.outcome != "ok" or entry.action not in ("init", UPGRADE_ACTION):
            continue
        value = entry.details.get("format_version", FORMAT_V1) if entry.action == "init" else entry.details.get("to")
        if not isinstance(value, int) or isinstance(value, bool):
            raise AuditError(f"audit entry {entry.seq} ({entry.action}): its chunk format is not a number")
        version = value
    return version


def format_findings(archive: Archive) -> tuple[list[str], list[str]]:
    """(problems, warnings) of ``archive.toml``'s ``format_version`` against the audited one. Never raises."""
    try:
        written, audited = archive.write_format(), audited_format(archive)
    except (ArchiveError, AuditError) as err:
        return [f"the chunk format in force cannot be checked ({err})"], []
    if written < audited:
        return [], [f"archive.toml says format {written}, the audit log format {audited} "
                    "(an interrupted upgrade: run investigator upgrade)"]
    if written > audited:
        return [f"archive.toml says format {written}, the audit log format {audited}: switched without an audited "
                f"upgrade (put format_version = {audited} back and run investigator upgrade)"], []
    return [], []


__all__ = ["UPGRADE_ACTION", "audited_format", "format_findings"]
