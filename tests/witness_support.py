"""Helpers of the witness tests (issue #13 item 3, issue #14 item 8): a small archive whose signed policy lists
witnesses, a few batches ingested, and the attacks an attacker with write access to the archive (no key) makes."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner

from support import PASSPHRASE, TEST_KDF_N, message_frame
from investigator.authority.directory import DirectoryStore, Signer
from investigator.authority.policy import PolicyStore, default_policy_text
from investigator.cli import main
from investigator.custody.file import create_archive, unlock_archive
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def witnessed_archive(root: Path, witnesses: list[str], *, batches: int = 2):
    """A fresh archive at ``root`` whose signed policy lists ``witnesses``, with ``batches`` ingested."""
    archive = create_archive(root, passphrase=PASSPHRASE, actor="tester", kdf_n=TEST_KDF_N)
    keys = unlock_archive(archive, PASSPHRASE)
    text = default_policy_text() + "\n[audit]\nwitnesses = " + json.dumps(witnesses) + "\n"
    PolicyStore(archive).install(text, signer=Signer.archive(keys.signing), directory=DirectoryStore(archive).load(),
                                 now=NOW, note="witnesses")
    for i in range(batches):
        ingest(archive, keys, i)
    return archive, keys


def ingest(archive: Archive, keys, i: int) -> None:
    ingest_frames(archive, messages=message_frame(8, day=10 + i, start_id=100 * i), events=None, sources=[],
                  skipped=[], keys=keys, actor="tester")


def replace_with(root: Path, earlier: Path) -> None:
    """The attack: the archive folder (batches, org/, audit log and checkpoints alike) becomes an earlier copy."""
    shutil.rmtree(root)
    shutil.copytree(earlier, root)


def cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def sizes(root: Path) -> list[int]:
    return Archive.open(root).audit.checkpoint_sizes()
