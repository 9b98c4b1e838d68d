"""Archive: create, ingest (idempotent, versioned), verify, tamper detection, bad input."""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from support import PASSPHRASE, archive_snapshot, event_frame, message_frame
from investigator import errors
from investigator.vault.store import Archive
from investigator.vault.ingest import ingest_frames
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive
from investigator.vault.verify import verify_archive


def ingest(archive, keys, messages=None, events=None):
    return ingest_frames(archive, messages=messages, events=events, keys=keys, actor="tester",
                         sources=[{"name": "test.jsonl", "sha256": "0" * 64, "size": 1, "format": "jsonl"}], skipped=[])


def test_create_writes_settings_keys_and_audit(make_archive):
    archive, keys = make_archive(timezone_name="UTC", chunk_seconds=1800)
    reopened = Archive.open(archive.root)
    assert reopened.config.timezone == "UTC" and reopened.config.chunk_seconds == 1800
    assert [e.action for e in reopened.audit.entries()] == ["init", "unlock"]  # make_archive unlocks: audited
    assert "master" not in repr(keys) and keys.current_version == 1
    assert reopened.info()["messages"] == 0


def test_create_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(errors.ArchiveError, match="not empty"):
        create_archive(tmp_path / "x", passphrase=PASSPHRASE, kdf_n=2**14)
    assert (tmp_path / "x" / "file").read_text() == "keep me"


def test_wrong_passphrase_is_refused_and_audited(make_archive):
    archive, _ = make_archive()
    with pytest.raises(errors.WrongPassphrase) as info:
        unlock_archive(archive, "not the passphrase", actor="mallory")
    assert "not the passphrase" not in str(info.value)
    last = list(archive.audit.entries())[-1]
    assert (last.actor, last.action, last.outcome) == ("mallory", "unlock", "denied")


def test_ingest_is_idempotent_and_versions_changed_content(make_archive):
    archive, keys = make_archive()
    first = ingest(archive, keys, message_frame(40), event_frame(5))
    assert (first.batch_seq, first.messages_added, first.events_added) == (1, 40, 5)
    again = ingest(archive, keys, message_frame(40), event_frame(5))
    assert again.batch_seq is None and again.duplicates == 45
    # an overlapping later export: 20 old + 20 new messages
    overlap = ingest(archive, keys, message_frame(40, start_id=20))
    assert (overlap.messages_added, overlap.duplicates) == (20, 20)
    # same id, different content: a new version, the first kept
    edited = message_frame(1, text="edited {i}")
    result = ingest(archive, keys, edited)
    assert (result.messages_added, result.new_versions) == (1, 1)
    rows = []
    for entry in archive.chunk_entries("messages"):
        rows.append(archive.read_chunk(entry, keys))
    stored = pl.concat(rows)
    assert stored.height == 61
    versions = stored.filter(pl.col("message_id") == "m0").sort("version")
    assert versions["version"].to_list() == [1, 2] and versions["text"].to_list() == ["hello 0", "edited 0"]
    assert verify_archive(archive, keys=keys).ok


def test_chunks_are_per_hour_and_bound_to_their_place(make_archive):
    archive, keys = make_archive()
    ingest(archive, keys, message_frame(48))
    entries = archive.chunk_entries("messages")
    assert len(entries) == 24 and {e.partition for e in entries} == {"2026-11-18"}
    a, b = entries[0], entries[1]
    key_a = archive.chunk_key_for(keys, a.kind, a.partition, a.chunk, "meta")
    # the right key on another chunk's bytes fails (AAD + key bind the place)
    with pytest.raises(errors.IntegrityError):
        archive.decrypt_part(a, "meta", key_a, data=archive.read_part_bytes(b, "meta"))
    # a part's key does not open another part of the same chunk
    with pytest.raises(errors.IntegrityError):
        archive.decrypt_part(a, "content", key_a)


@pytest.fixture(params=[1, 2], ids=["format1", "format2"])
def chunk_format(request):
    """Both chunk formats (archive-format.md, "Versions"): format 1 stays readable and verifiable forever."""
    return request.param


def _chunk_files(root: Path, chunk_format: int, part: str = "meta") -> list[Path]:
    """Batch 1's message chunk files: one part's files (format 1) or the one file per chunk (format 2)."""
    pattern = f"*.{part}.chk" if chunk_format == 1 else "*.chk"
    return sorted(root.glob(f"batches/00000001/messages/*/{pattern}"))


def _tamper_targets(root: Path, chunk_format: int):
    targets = {"chunk": _chunk_files(root, chunk_format, "content")[0],
               "manifest": root / "batches/00000001/manifest.json", "audit": root / "audit/log.jsonl",
               "dek": sorted(root.glob("batches/00000001/keys/messages/*.json"))[0]}
    if chunk_format == 1:  # format 2 folds the index into the chunk files (its segment: test_format_v2.py)
        targets["index"] = root / "batches/00000001/index.chk"
    return targets


@pytest.mark.parametrize("chunk_format,target", [(f, t) for f in (1, 2) for t in ("chunk", "manifest", "audit", "index", "dek")
                                                 if (f, t) != (2, "index")])  # format 2 has no index file
def test_one_flipped_byte_anywhere_is_found_and_named(make_archive, target, chunk_format):
    archive, keys = make_archive(format_version=chunk_format)
    ingest(archive, keys, message_frame(30))
    path = _tamper_targets(archive.root, chunk_format)[target]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    for with_keys in (keys, None):
        report = verify_archive(Archive.open(archive.root), keys=with_keys)
        assert not report.ok
        assert any(path.name in p for p in report.problems), report.problems


def test_deleted_swapped_and_added_chunk_files_are_found(make_archive, chunk_format):
    archive, keys = make_archive(format_version=chunk_format)
    ingest(archive, keys, message_frame(30))
    chunks = _chunk_files(archive.root, chunk_format)
    a, b = chunks[0].read_bytes(), chunks[1].read_bytes()
    chunks[0].write_bytes(b)
    chunks[1].write_bytes(a)
    report = verify_archive(archive, keys=None)
    assert sum(chunks[0].name in p or chunks[1].name in p for p in report.problems) >= 2
    chunks[0].write_bytes(a)
    chunks[1].write_bytes(b)
    assert verify_archive(archive, keys=keys).ok
    chunks[2].unlink()
    assert any("missing (removed)" in p and chunks[2].name in p for p in verify_archive(archive, keys=None).problems)
    added = chunks[0].with_name("999999.meta.chk" if chunk_format == 1 else "999999.chk")
    shutil.copy(chunks[0], added)
    assert any(added.name in p and "added" in p for p in verify_archive(archive, keys=None).problems)


def test_removed_last_batch_is_found_through_the_audit_log(make_archive):
    archive, keys = make_archive()
    ingest(archive, keys, message_frame(10))
    ingest(archive, keys, message_frame(10, day=19))
    shutil.rmtree(archive.root / "batches/00000002")
    report = verify_archive(archive, keys=keys)
    assert any("not in the archive" in p for p in report.problems)


def test_reordered_batches_break_the_chain(make_archive):
    archive, keys = make_archive()
    ingest(archive, keys, message_frame(10))
    ingest(archive, keys, message_frame(10, day=19))
    root = archive.root / "batches"
    (root / "00000001").rename(root / "tmp")
    (root / "00000002").rename(root / "00000001")
    (root / "tmp").rename(root / "00000002")
    assert not verify_archive(Archive.open(archive.root), keys=keys).ok


@pytest.mark.parametrize("problem,frame_change,expected", [
    ("missing id", lambda f: f.with_columns(pl.lit(None, dtype=pl.String).alias("message_id")), "message_id"),
    ("time out of range", lambda f: f.with_columns(pl.col("ts").dt.offset_by("-60y")), "between 1990 and 2100"),
])
def test_bad_records_leave_the_archive_unchanged(make_archive, problem, frame_change, expected):
    archive, keys = make_archive()
    ingest(archive, keys, message_frame(5))
    before = archive_snapshot(archive.root)
    with pytest.raises(errors.ImportFormatError, match=expected) as info:
        ingest(archive, keys, frame_change(message_frame(5, day=20)))
    assert "test.jsonl" in str(info.value) and "line 1" in str(info.value)
    assert archive_snapshot(archive.root) == before


def test_info_prints_counts_only(make_archive):
    archive, keys = make_archive()
    ingest(archive, keys, message_frame(30, text="secret text {i}"), event_frame(4))
    info = archive.info()
    assert (info["messages"], info["events"], info["partitions"]) == (30, 4, 2)
    assert "secret" not in json.dumps(info)
    assert info["first_ts"].startswith("2026-11-18T00:00")


def test_parts_separate_content_from_metadata(make_archive, chunk_format):
    archive, keys = make_archive(format_version=chunk_format)
    frame = message_frame(5, text="加 班 費 {i}").with_columns(pl.lit("a.pdf").alias("attachment_name"))
    ingest(archive, keys, frame)
    entry = archive.chunk_entries("messages")[0]
    assert sorted(entry.part_names) == ["attachments", "content", "meta"]
    meta_only = archive.read_chunk(entry, keys, parts=("meta",))
    assert not {"text", "text_norm", "attachment_name"} & set(meta_only.columns)
    full = archive.read_chunk(entry, keys)
    assert full["text"][0].startswith("加 班 費") and full["attachment_name"][0] == "a.pdf"
    # events have no content part at all
    ingest(archive, keys, events=event_frame(2))
    assert archive.chunk_entries("events")[0].part_names == ("meta",)
