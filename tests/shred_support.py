"""Helpers of the retention, hold and shredding tests: one small archive with period keys, built once per worker.

Two periods of messages: 2026Q1 (2026-02-11, ended more than 180 days before NOW) and 2026Q4 (2026-11-18, young),
each carrying MARKER; the demo people (lixia: legal, wugang: admin, zhangwei: agent) with their DEMO-ONLY
TOTP secrets and personal keys under ``archive/demo-keys``.
"""

from __future__ import annotations

import shutil
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from backup_support import MARKER, NOW
from support import PASSPHRASE, TEST_KDF_N, message_frame
from investigator import _crypto
from investigator.authority.identity import unlock_person_key
from investigator.custody.file import create_archive, unlock_archive
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS, demo_authority
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive

OLD_SHIFT = timedelta(days=280)  # 2026-11-18 -> 2026-02-11 (2026Q1)
OLD_DAY = "2026-02-11"
NEW_DAY = "2026-11-18"


def build_shred_template(root: Path) -> Path:
    archive = create_archive(root / "archive", passphrase=PASSPHRASE, kdf_n=TEST_KDF_N, now=NOW - timedelta(days=300),
                             period_keys="quarter")
    keys = unlock_archive(archive, PASSPHRASE)
    old = message_frame(12, text="old {i} " + MARKER).with_columns(pl.col("ts") - OLD_SHIFT)
    ingest_frames(archive, messages=old, events=None, sources=[], skipped=[], keys=keys, actor="test",
                  now=NOW - timedelta(days=270))
    ingest_frames(archive, messages=message_frame(12, start_id=100, text="new {i} " + MARKER), events=None,
                  sources=[], skipped=[], keys=keys, actor="test", now=NOW - timedelta(days=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo_authority(archive, keys, now=NOW - timedelta(minutes=30), key_dir=root / "archive" / "demo-keys",
                       kdf_n=TEST_KDF_N)
    return root


@pytest.fixture(scope="session", name="shred_template")
def shred_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test worker; import ``shred_template_fixture`` and copy with :func:`copy_shred`."""
    return build_shred_template(tmp_path_factory.mktemp("shred-template"))


def copy_shred(template: Path, dest: Path) -> Archive:
    shutil.copytree(template / "archive", dest)
    return Archive.open(dest)


def person(archive: Archive, person_id: str) -> tuple[str, object]:
    """(id, unlocked DEMO-ONLY personal key) for the hold and release signatures."""
    return person_id, unlock_person_key(archive, person_id, DEMO_ONLY_PASSPHRASE.format(person=person_id),
                                        key_dir=archive.root / "demo-keys")


def code(person_id: str, when: datetime) -> str:
    return _crypto.totp(DEMO_ONLY_TOTP_SECRETS[person_id], when.timestamp())


def read_partition(archive: Archive, keys: object, day: str) -> int:
    """Rows decrypted from every chunk of ``day``; raises IntegrityError (PeriodShredded) when it cannot."""
    rows = 0
    for entry in archive.chunk_entries("messages"):
        if entry.partition == day:
            rows += archive.read_chunk(entry, keys).height  # type: ignore[arg-type]
    return rows
