"""A version-1 archive made once and committed: every later version must read and verify it unchanged."""

import json
import shutil
from pathlib import Path

import pytest

from investigator import schema
from investigator.vault.store import Archive
from investigator.custody.file import unlock_archive
from investigator.vault.verify import verify_archive

HERE = Path(__file__).resolve().parent
PASSPHRASE = "known-answer-v1"
EXPECTED = json.loads((HERE / "v1-expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def archive(tmp_path) -> Archive:
    # work on a copy: verify() appends an audit entry
    shutil.copytree(HERE / "v1-archive", tmp_path / "v1")
    return Archive.open(tmp_path / "v1")


def test_v1_archive_verifies_fully_and_offline(archive):
    keys = unlock_archive(archive, PASSPHRASE)
    full = verify_archive(archive, keys=keys)
    assert full.ok and full.counts["records"] == 4, full.problems
    assert verify_archive(Archive.open(archive.root), keys=None).ok


def test_v1_answers_are_unchanged(archive):
    manifest = archive.manifests()[0]
    assert manifest.body["merkle"]["root"] == EXPECTED["merkle_root"]
    assert manifest.digest == EXPECTED["manifest_sha256"]
    assert {k: v for k, v in archive.info().items() if k != "archive_id"} == EXPECTED["info"]
    keys = unlock_archive(archive, PASSPHRASE)
    stored = {row["message_id"]: row for entry in archive.chunk_entries("messages")
              for row in archive.read_chunk(entry, keys).iter_rows(named=True)}
    for message_id, digest in EXPECTED["record_hashes"].items():
        assert stored[message_id]["record_hash"] == digest
        assert schema.record_hash(stored[message_id], "messages") == digest
