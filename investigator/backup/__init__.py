"""Backups: copies of an archive on directory and S3 targets, signed snapshot manifests, checks, restores.

    >>> from investigator.backup import BackupTiers, DirectoryTarget, backup_run, check_target
    >>> result = backup_run(archive, DirectoryTarget(Path("/mnt/cold")), keys=custody,
    ...                     tier=BackupTiers.default()["weekly"], actor="admin")          # doctest: +SKIP
    >>> check_target(DirectoryTarget(Path("/mnt/cold")), read_data=1.0).ok              # doctest: +SKIP
    True

One concept per module: ``target`` (the protocol and the directory target), ``s3`` (S3 with Object
Lock), ``snapshot`` (signed, chained snapshot manifests), ``tiers`` (the policy's backup table and
schedule lines), ``run`` (the incremental backup), ``check`` (``backup verify``), ``restore`` and
``seal`` (sealing records of emergency media). docs/admin.md, "Backups"; docs/archive-format.md,
"Snapshot manifests".
"""

from pathlib import Path

from investigator.backup.check import check_target
from investigator.backup.restore import RestoreResult, restore_snapshot
from investigator.backup.run import RunResult, backup_run, find_snapshot, is_custody_material, load_snapshots
from investigator.backup.s3 import S3Config, S3Target
from investigator.backup.seal import seal_media, verify_seal
from investigator.backup.snapshot import FileEntry, Snapshot
from investigator.backup.target import DirectoryTarget, Target, TargetError
from investigator.backup.tiers import BackupTiers, Tier, schedule_lines
from investigator.backup.witness import S3WitnessStore, s3_witness  # registers s3:// witnesses (vault/witness.py)

__all__ = ["BackupTiers", "DirectoryTarget", "FileEntry", "RestoreResult", "RunResult", "S3Config", "S3Target",
           "S3WitnessStore", "Snapshot", "Target", "TargetError", "Tier", "backup_run", "check_target", "find_snapshot",
           "is_custody_material", "load_snapshots", "open_target", "restore_snapshot", "s3_witness",
           "schedule_lines", "seal_media", "verify_seal"]


def open_target(spec: str, s3: S3Config | None = None) -> Target:
    """A target from its spec: ``s3://bucket/prefix`` (with ``s3``: endpoint and credentials) or a folder path,
    made absolute (the audit log and snapshot lists name it; a relative path says nothing where it is read)."""
    if spec.startswith("s3://"):
        return S3Target.from_url(spec, s3 or S3Config())
    return DirectoryTarget(Path(spec).expanduser().absolute())
