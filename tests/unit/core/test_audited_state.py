"""What `open` checks before any key is released (issue #13, item 5), without a demo: the audit log and its
checkpoints, the batches against their ingest entries, the host record per place, further state checks."""

from __future__ import annotations

import shutil

import pytest

from support import message_frame
from investigator.errors import ConfigError
from investigator.vault.audited_state import HostRecord, check_audited_state
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive


@pytest.fixture
def ingested(make_archive):
    archive, keys = make_archive()
    for start in (0, 100):
        ingest_frames(archive, messages=message_frame(30, start_id=start), events=None, keys=keys, actor="t",
                      sources=[], skipped=[])
    return Archive.open(archive.root)


def test_an_intact_archive_checks_out_and_resumes(ingested):
    report, head = check_audited_state(ingested)
    assert report.ok and head is not None and report.counts["batches"] == 2, report.problems
    again, _ = check_audited_state(ingested, since=head)
    assert again.ok and again.facts["incremental_from_checkpoint"] == head.checkpoints


def test_a_batch_deleted_or_planted_fails_naming_it(ingested, tmp_path):
    last = sorted(ingested.batches_dir.iterdir())[-1]
    kept = tmp_path / last.name
    shutil.move(last, kept)
    report, head = check_audited_state(Archive.open(ingested.root))
    assert head is None and any(p.startswith(f"batches/{last.name}: recorded by the ingest entry at audit/log.jsonl "
                                             "line") for p in report.problems), report.problems
    shutil.move(kept, last)
    log = ingested.audit.log_path
    lines = log.read_bytes().splitlines(keepends=True)
    ingest = max(i for i, line in enumerate(lines) if b'"action": "ingest"' in line)
    log.write_bytes(b"".join(lines[:ingest]))  # the batch stays, its ingest entry (and all after) is cut
    report, _ = check_audited_state(Archive.open(ingested.root))
    assert any(p.startswith(f"batches/{last.name}: committed, but no ingest entry") for p in report.problems), \
        report.problems


def test_further_state_checks_plug_in(ingested):
    def heads(archive, report):  # the shape item 2's signed state heads will have
        report.problem("org/heads.jsonl, line 1: the directory is not the version the head names")

    report, head = check_audited_state(ingested, checks=[heads])
    assert head is None and report.problems == ["org/heads.jsonl, line 1: the directory is not the version the "
                                                "head names"]


def test_the_host_record_is_per_place_and_outside_the_archive(ingested, tmp_path):
    record = HostRecord(tmp_path / "verified")
    copy = Archive.open(shutil.copytree(ingested.root, tmp_path / "copy"))
    assert record.path(ingested) != record.path(copy)  # another folder: another place
    assert record.path(ingested) == record.path(Archive.open(ingested.root))
    assert record.path(ingested).name.startswith(ingested.archive_id + ".")
    with pytest.raises(ConfigError, match="inside the archive"):
        HostRecord(ingested.root / "verified").path(ingested)
