"""Chunk format 2 (issue #18) beside format 1: one input archived in both reads back the same (records, Merkle
roots and proofs, dedup index, case loads, search); format 2's one file per chunk resists a flipped byte in
any segment or its header, a truncation, swapped and moved files and transplanted segments; keys are still
released per hour and part, never for the folded index; `verify` reads both formats.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from support import DATA_SAMPLES, PASSPHRASE, TEST_KDF_N, event_frame
from unit.loader.conftest import World  # the loader tests' organisation helpers (grants, TOTP, open_case)
from investigator import _crypto, errors
from investigator.access.keyservice import ChunkRef
from investigator.analysis.search import search
from investigator.cli import main
from investigator.custody.file import create_archive, unlock_archive
from investigator.demo.people import demo_authority
from investigator.demo.samples.messages import generate_messages
from investigator.vault.format import (FORMAT_V1, FORMAT_V2, INDEX_KEY_KIND, INDEX_SEGMENT, batch_dir_name,
                                       chunk_aad, pack_chunk_file, unpack_chunk_file)
from investigator.vault.ingest import INDEX2_HASH_HEX, LocalIngest, ingest_frames
from investigator.vault.proofs import inclusion_proofs
from investigator.vault.store import Archive, index_segment_key
from investigator.vault.verify import verify_archive

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)
INGESTED = NOW - timedelta(days=2)
FORMATS = (FORMAT_V1, FORMAT_V2)
# the demo people a grant needs (requester, approver, admin, auditor, the consenting customer): fewer to enrol
PEOPLE = ("zhouzong", "sunli", "wugang", "zhengjie", "wangfang")
EDITED = "the first message, edited"


def sample_messages() -> pl.DataFrame:
    """Generated messages of one day (planted cases and attachments included): small, quick to ingest."""
    return generate_messages(120, start=date(2026, 11, 18), days=1)


def edited_messages() -> pl.DataFrame:
    """The same export again with the first message's text changed: one new version, everything else a duplicate."""
    frame = sample_messages()
    return frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(EDITED)).otherwise("text")
                              .alias("text"))


@dataclass(frozen=True)
class Built:
    root: Path
    results: tuple  # IngestResults: the first ingest, the same input again, the input with one message edited
    grant: str  # the demo's review grant: every field of the demo month, so every record of these archives


def build(root: Path, format_version: int, people_csv: Path) -> Built:
    archive = create_archive(root, passphrase=PASSPHRASE, kdf_n=TEST_KDF_N, now=INGESTED - timedelta(hours=1),
                             format_version=format_version)
    keys = unlock_archive(archive, PASSPHRASE)
    results = []
    for step, messages in enumerate((sample_messages(), sample_messages(), edited_messages())):
        results.append(ingest_frames(archive, messages=messages, events=event_frame(8), sources=[], skipped=[],
                                     keys=keys, actor="tester", now=INGESTED + timedelta(minutes=step)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DEMO ONLY people
        demo = demo_authority(archive, keys, now=NOW - timedelta(minutes=30), key_dir=root / "demo-keys",
                              people_csv=people_csv, kdf_n=TEST_KDF_N)
    return Built(root, tuple(results), demo.review_grant_id)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[int, Built]:
    """A format-1 and a format-2 archive of the same input with the same clocks, built once; copy before changing."""
    folder = tmp_path_factory.mktemp("format-v2")
    lines = (DATA_SAMPLES / "people.csv").read_text(encoding="utf-8").splitlines()
    people_csv = folder / "people.csv"
    people_csv.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0] in PEOPLE]) + "\n",
                          encoding="utf-8")
    return {fmt: build(folder / f"v{fmt}", fmt, people_csv) for fmt in FORMATS}


def world_of(built: Built, dest: Path) -> World:
    """A copy of a built archive as the loader tests' World (its clock starts after every code the build used)."""
    shutil.copytree(built.root, dest)
    archive = Archive.open(dest)
    return World(archive, unlock_archive(archive, PASSPHRASE), built.grant)


@pytest.fixture(scope="module")
def side(built, tmp_path_factory) -> dict[int, World]:
    """Both archives for reading side by side (module copies; cases opened here only append audit entries)."""
    folder = tmp_path_factory.mktemp("side")
    return {fmt: world_of(built[fmt], folder / f"v{fmt}") for fmt in FORMATS}


@pytest.fixture
def v2(built, tmp_path) -> World:
    """A private copy of the format-2 archive (for tampering and key-release tests), the demo month's grant open."""
    return world_of(built[FORMAT_V2], tmp_path / "v2")


def stored_rows(world: World) -> dict[str, pl.DataFrame]:
    """Every stored record per kind, as archive.read_chunk returns them, in (batch, leaf) order."""
    out = {}
    for kind in ("messages", "events"):
        frames = [world.archive.read_chunk(e, world.keys) for e in world.archive.chunk_entries(kind)]
        out[kind] = pl.concat(frames, how="diagonal_relaxed").sort("batch_seq", "leaf_index")
    return out


# --- 1. side by side ------------------------------------------------------------------------------------------------

def test_both_formats_are_written_as_asked(side):
    assert [m.chunk_format for m in side[FORMAT_V1].archive.manifests()] == [FORMAT_V1, FORMAT_V1]
    assert [m.chunk_format for m in side[FORMAT_V2].archive.manifests()] == [FORMAT_V2, FORMAT_V2]
    assert {e.format for e in side[FORMAT_V1].archive.chunk_entries()} == {FORMAT_V1}
    assert {e.format for e in side[FORMAT_V2].archive.chunk_entries()} == {FORMAT_V2}
    assert (side[FORMAT_V1].archive.write_format(), side[FORMAT_V2].archive.write_format()) == FORMATS


def test_the_same_input_gives_the_same_batches_hashes_and_roots(built, side):
    one, two = built[FORMAT_V1].results, built[FORMAT_V2].results
    for a, b in zip(one, two):
        assert (a.batch_seq, a.messages_added, a.events_added, a.duplicates, a.new_versions, a.chunks,
                a.merkle_root) == (b.batch_seq, b.messages_added, b.events_added, b.duplicates, b.new_versions,
                                   b.chunks, b.merkle_root)
    first, again, edited = two
    assert (first.batch_seq, first.messages_added, first.events_added) == (1, 120, 8)
    # the same export again: every record a duplicate (format 2 answers from the index segments), no batch
    assert (again.batch_seq, again.duplicates) == (None, 128)
    # one changed text: a new version of that message, the rest duplicates
    assert (edited.batch_seq, edited.messages_added, edited.new_versions, edited.duplicates) == (2, 1, 1, 127)
    roots = {fmt: [m.body["merkle"] for m in side[fmt].archive.manifests()] for fmt in FORMATS}
    assert roots[FORMAT_V1] == roots[FORMAT_V2] and len(roots[FORMAT_V2]) == 2
    chunk_ids = {fmt: [(e.batch_seq, e.chunk_id, e.rows, e.leaf_start) for e in side[fmt].archive.chunk_entries()]
                 for fmt in FORMATS}
    assert chunk_ids[FORMAT_V1] == chunk_ids[FORMAT_V2]


def test_stored_records_are_identical_in_both_formats(side):
    one, two = stored_rows(side[FORMAT_V1]), stored_rows(side[FORMAT_V2])
    for kind in ("messages", "events"):
        # the same columns (format 2 joins its parts in segment order, format 1 in part-name order)
        assert sorted(one[kind].columns) == sorted(two[kind].columns)
        assert not [c for c in two[kind].columns if "path" in c]  # nothing to leave out: no file paths in rows
        assert one[kind].equals(two[kind].select(one[kind].columns)), kind
    messages = two["messages"]
    assert messages.height == 121 and messages["record_hash"].n_unique() == 121
    versions = messages.filter(pl.col("text") == EDITED)
    assert versions["version"].to_list() == [2] and versions["batch_seq"].to_list() == [2]


def test_inclusion_proofs_are_identical_in_both_formats(side):
    for batch, leaves in ((1, [0, 1, 64, 127]), (2, [0])):
        proofs = {fmt: inclusion_proofs(side[fmt].archive, side[fmt].keys, batch, leaves) for fmt in FORMATS}
        assert proofs[FORMAT_V1] == proofs[FORMAT_V2]
        assert all(p["root"] == side[FORMAT_V2].archive.manifests()[batch - 1].body["merkle"]["root"]
                   for p in proofs[FORMAT_V2])


def _dedup_view(index: pl.DataFrame) -> pl.DataFrame:
    """What dedup compares: 8 bytes of each hash (format 1 stores 16, format 2 stores 8)."""
    return index.with_columns(pl.col("hash_prefix").str.slice(0, INDEX2_HASH_HEX))


def test_the_dedup_index_reads_the_same_from_index_files_and_folded_segments(side):
    indexes = {fmt: _dedup_view(side[fmt].archive.read_index(side[fmt].keys)).sort("kind", "source", "id", "version")
               for fmt in FORMATS}
    assert side[FORMAT_V2].archive.read_index(side[FORMAT_V2].keys)["hash_prefix"].str.len_chars().max() == 16
    assert indexes[FORMAT_V1].schema == indexes[FORMAT_V2].schema
    assert indexes[FORMAT_V1].equals(indexes[FORMAT_V2])
    assert indexes[FORMAT_V2].height == 129
    assert indexes[FORMAT_V2].filter(pl.col("version") == 2).height == 1
    later = {fmt: _dedup_view(side[fmt].archive.read_index(side[fmt].keys, after=1)).drop("kind") for fmt in FORMATS}
    assert later[FORMAT_V1].equals(later[FORMAT_V2]) and later[FORMAT_V2].height == 1


def test_a_case_loads_and_searches_the_same_in_both_formats(side):
    cases = {fmt: side[fmt].open(side[fmt].demo_grant) for fmt in FORMATS}
    messages = {fmt: case.messages().sort("batch_seq", "leaf_index") for fmt, case in cases.items()}
    events = {fmt: case.events().sort("batch_seq", "leaf_index") for fmt, case in cases.items()}
    assert messages[FORMAT_V1].height == 121 and events[FORMAT_V1].height == 8  # the review grant: the demo month
    assert messages[FORMAT_V1].equals(messages[FORMAT_V2]) and events[FORMAT_V1].equals(events[FORMAT_V2])
    for fmt in FORMATS:  # every chunk once (a format-2 chunk: one file for all its granted parts)
        assert cases[fmt].stats.chunks_decrypted == len(side[fmt].archive.chunk_entries())
    assert cases[FORMAT_V1].stats == cases[FORMAT_V2].stats
    lazy = {fmt: case.messages(lazy=True).filter(pl.col("text").str.contains("客户")).collect()
            .sort("batch_seq", "leaf_index") for fmt, case in cases.items()}
    assert lazy[FORMAT_V2].height > 0 and lazy[FORMAT_V1].equals(lazy[FORMAT_V2])
    for query in ("客户 OR 迟到", "投诉", "客户 -催"):
        hits = {fmt: search(messages[fmt], query) for fmt in FORMATS}
        assert hits[FORMAT_V2].height > 0 and hits[FORMAT_V1].equals(hits[FORMAT_V2]), query


# --- 2. files and 3. verify ------------------------------------------------------------------------------------------

def test_format_2_writes_one_file_per_chunk_and_no_index_file(side):
    for fmt, world in side.items():
        for manifest in world.archive.manifests():
            folder = world.archive.root / "batches" / batch_dir_name(manifest.seq)
            files = sorted(folder.rglob("*.chk"))
            if fmt == FORMAT_V1:  # a file per part, plus index.chk
                assert len(files) == sum(len(e.part_names) for e in manifest.chunks) + 1
                assert (folder / "index.chk").is_file() and "index" in manifest.body
            else:
                assert len(files) == len(manifest.chunks) and not (folder / "index.chk").exists()
                assert "index" not in manifest.body
                assert sorted(e.files[0][0] for e in manifest.chunks) == [
                    f.relative_to(world.archive.root).as_posix() for f in files]
                assert all(f.read_bytes().startswith(b"IVCHUNK2") for f in files)
    messages = side[FORMAT_V2].archive.chunk_entries("messages")
    assert {e.part_names for e in messages} == {("attachments", "content", "meta")}  # by name, as format 1
    assert {e.part_names for e in side[FORMAT_V2].archive.chunk_entries("events")} == {("meta",)}


def cli_verify(root: Path, *args: str):
    return CliRunner().invoke(main, ["verify", str(root), "--as", "zhengjie", *args],
                              env={"INVESTIGATOR_PASSPHRASE": PASSPHRASE, "INVESTIGATOR_KEYSERVER": ""})


@pytest.mark.parametrize("fmt", FORMATS)
def test_verify_reads_both_formats(built, tmp_path, fmt):
    world = world_of(built[fmt], tmp_path / "archive")
    report = verify_archive(world.archive, keys=world.keys)
    assert report.ok and not report.warnings, (report.problems, report.warnings)
    assert report.counts["records"] == 129 and report.counts["chunks_decrypted"] == report.counts["chunks"]
    for args in ((), ("--offline",)):
        out = cli_verify(world.archive.root, *args)
        assert out.exit_code == 0, out.output
        assert "intact" in out.output and "2 manifests" in out.output


# --- 4. tampering with a format-2 archive -----------------------------------------------------------------------------

def chunk_path(world: World, entry) -> Path:
    return world.archive.root / entry.files[0][0]


def segment_spans(data: bytes) -> dict[str, tuple[int, int]]:
    """Where each segment of a format-2 chunk file starts and ends; "header" is the header itself."""
    size = int.from_bytes(data[8:12], "big")
    spans, offset = {"header": (12, 12 + size)}, 12 + size
    for name, blob in unpack_chunk_file(data, what="x").items():
        spans[name] = (offset, offset + len(blob))
        offset += len(blob)
    return spans


def entries_of(world: World, batch: int, kind: str = "messages") -> list:
    return [e for e in world.archive.chunk_entries(kind) if e.batch_seq == batch]


def twin_entries(world: World) -> tuple:
    """(batch 1's entry, batch 2's entry) of the one hour both batches wrote (the edited message's)."""
    (later,) = entries_of(world, 2)
    (earlier,) = [e for e in entries_of(world, 1) if e.chunk_id == later.chunk_id]
    return earlier, later


def assert_detected(world: World, *paths: Path) -> None:
    """A load through a case and a verification (with keys and offline) both refuse, naming a tampered file."""
    names = [p.relative_to(world.archive.root).as_posix() for p in paths]
    case = world.open(world.demo_grant)
    with pytest.raises(errors.IntegrityError) as info:
        case.messages()
    assert any(name in str(info.value) for name in names), str(info.value)
    for keys in (world.keys, None):
        report = verify_archive(Archive.open(world.archive.root), keys=keys)
        assert not report.ok
        for name in names:
            assert any(name in problem for problem in report.problems), (name, report.problems)


@pytest.mark.parametrize("where", ["header", "meta", "content", "attachments", INDEX_SEGMENT])
def test_a_flipped_byte_in_any_segment_or_the_header_is_found_and_named(v2, where):
    path = chunk_path(v2, twin_entries(v2)[0])
    data = bytearray(path.read_bytes())
    start, end = segment_spans(bytes(data))[where]
    data[(start + end) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert_detected(v2, path)


def test_a_truncated_chunk_file_is_found_and_named(v2):
    path = chunk_path(v2, twin_entries(v2)[0])
    path.write_bytes(path.read_bytes()[:-20])
    assert_detected(v2, path)


def test_two_chunk_files_of_a_batch_swapped_are_found_and_named(v2):
    a, b = (chunk_path(v2, e) for e in entries_of(v2, 1)[3:5])
    parked = a.with_name("parked")
    a.rename(parked)
    b.rename(a)
    parked.rename(b)
    assert_detected(v2, a, b)


def test_a_chunk_file_moved_to_another_batch_is_found_and_named(v2):
    earlier, later = twin_entries(v2)  # the same hour's file of batch 2 over batch 1's
    shutil.copy(chunk_path(v2, later), chunk_path(v2, earlier))
    assert_detected(v2, chunk_path(v2, earlier))


def test_a_segment_taken_from_another_chunk_file_is_found_and_named(v2):
    a, b = (chunk_path(v2, e) for e in entries_of(v2, 1)[3:5])
    theirs = unpack_chunk_file(b.read_bytes(), what="b")
    ours = unpack_chunk_file(a.read_bytes(), what="a")
    a.write_bytes(pack_chunk_file([(name, theirs["content"] if name == "content" else blob)
                                   for name, blob in ours.items()]))
    assert_detected(v2, a)


def test_the_segment_aad_alone_refuses_a_transplanted_segment(v2):
    """Below the manifest's hash check: the right key for a segment's bytes does not open it in another place."""
    archive, keys = v2.archive, v2.keys
    a, b = entries_of(v2, 1)[3:5]
    earlier, later = twin_entries(v2)
    segments = {e: unpack_chunk_file(chunk_path(v2, e).read_bytes(), what=e.chunk_id)
                for e in (a, b, earlier, later)}

    def key(entry, part):
        return archive.chunk_key_for(keys, entry.kind, entry.partition, entry.chunk, part, entry.batch_seq)

    assert archive._open_segment(b, "content", key(b, "content"), segments[b])  # in its place it opens
    moves = [(a, "content", key(b, "content"), segments[b]["content"]),  # another chunk (hour) of the batch
             (b, "content", key(b, "meta"), segments[b]["meta"]),  # another part of the same chunk
             (earlier, "meta", key(later, "meta"), segments[later]["meta"])]  # the same hour of another batch
    for entry, part, right_key, blob in moves:
        with pytest.raises(errors.IntegrityError) as info:
            archive._open_segment(entry, part, right_key, {part: blob})
        assert entry.files[0][0] in str(info.value)
        # the same through open_part on a re-packed file (given as data: no manifest hash check)
        repacked = pack_chunk_file([(name, blob if name == part else seg)
                                    for name, seg in segments[entry].items()])
        with pytest.raises(errors.IntegrityError):
            archive.open_part(entry, part, right_key, data=repacked)
    # another format: the same segment under format 1's associated data does not open
    with pytest.raises(errors.IntegrityError):
        _crypto.open_sealed(key(b, "content"), segments[b]["content"], what="b",
                            aad=chunk_aad(archive.archive_id, 1, b.kind, b.partition, b.chunk, "content", FORMAT_V1))


@pytest.mark.parametrize("damage", ["segment twice", "one byte more", "one byte less", "negative length",
                                    "header not json", "header too long", "not a chunk file"])
def test_a_header_that_does_not_describe_the_file_is_refused(damage):
    good = pack_chunk_file([("meta", b"m" * 40), ("content", b"c" * 30), (INDEX_SEGMENT, b"i" * 20)])
    assert set(unpack_chunk_file(good, what="ok")) == {"meta", "content", INDEX_SEGMENT}

    def with_header(text: bytes, rest: bytes = b"m" * 40) -> bytes:
        return b"IVCHUNK2" + len(text).to_bytes(4, "big") + text + rest

    data = {"segment twice": pack_chunk_file([("meta", b"m" * 40), ("meta", b"c" * 30)]),
            "one byte more": good + b"\0", "one byte less": good[:-1],
            "negative length": with_header(b'{"segments":[{"length":50,"part":"meta"},{"length":-10,"part":"x"}]}'),
            "header not json": with_header(b'{"segments":[{"length":40,"part":"meta"}'),
            "header too long": with_header(b" " * 5000),
            "not a chunk file": b"IVCHUNK1" + good[8:]}[damage]
    with pytest.raises(errors.IntegrityError) as info:
        unpack_chunk_file(data, what="batches/00000001/messages/2026-11-18/100000.chk")
    assert "100000.chk" in str(info.value)


def test_shifted_segment_boundaries_that_still_add_up_do_not_open(v2):
    entry = twin_entries(v2)[0]
    data = chunk_path(v2, entry).read_bytes()
    segments = list(unpack_chunk_file(data, what="x").items())
    (m, meta), (c, content) = segments[:2]
    shifted = pack_chunk_file([(m, meta + content[:1]), (c, content[1:]), *segments[2:]])
    assert len(shifted) == len(data)
    key = v2.archive.chunk_key_for(v2.keys, entry.kind, entry.partition, entry.chunk, "meta", entry.batch_seq)
    with pytest.raises(errors.IntegrityError):
        v2.archive.open_part(entry, "meta", key, data=shifted)
    assert v2.archive.open_part(entry, "meta", key, data=data)


# --- 5. key release ---------------------------------------------------------------------------------------------------

def hour_of(entry) -> datetime:
    return datetime.strptime(entry.partition + entry.chunk, "%Y-%m-%d%H%M%S").replace(tzinfo=timezone.utc)


def releases(world: World, grant: str, outcome: str) -> list:
    return [e for e in world.audit("key.release") if e.target == grant and e.outcome == outcome]


def test_a_one_hour_grant_releases_only_that_hours_parts(v2):
    earlier, later = twin_entries(v2)  # both batches wrote this hour
    start = hour_of(earlier)
    grant = v2.grant(start=start, end=start + timedelta(hours=1))
    case = v2.open(grant)
    rows = case.messages()
    assert rows.height == earlier.rows + later.rows
    assert rows["ts"].min() >= start and rows["ts"].max() < start + timedelta(hours=1)
    assert case.stats.chunk_ids == {earlier.chunk_id} and case.stats.chunks_decrypted == 2
    assert case.stats.keys_released == 2 * 2  # meta and content (the granted fields) of each batch's chunk
    (released,) = releases(v2, grant, "allowed")
    assert released.details["chunks"] == [earlier.chunk_id]
    assert released.details["parts"] == ["content", "meta"]  # not attachments (not granted), never the index


def test_a_metadata_grant_gets_no_key_that_opens_the_content_segment(v2):
    entry = twin_entries(v2)[0]
    start = hour_of(entry)
    grant = v2.grant(start=start, end=start + timedelta(hours=1), fields=("metadata",))
    case = v2.open(grant)
    rows = case.messages()
    assert rows.height > 0 and not {"text", "text_norm", "attachment_name"} & set(rows.columns)
    assert [e.details["parts"] for e in releases(v2, grant, "allowed")] == [["meta"]]
    meta, content = (ChunkRef(entry.kind, entry.partition, entry.chunk, part, entry.batch_seq)
                     for part in ("meta", "content"))
    with pytest.raises(errors.PolicyDenied) as info:
        case.key_service.release(case.ticket, [content], now=v2.tick())
    assert info.value.rule == "fields.parts"
    assert releases(v2, grant, "denied")[-1].details["rule"] == "fields.parts"
    meta_key = case.key_service.release(case.ticket, [meta], now=v2.tick())[meta]
    assert v2.archive.open_part(entry, "meta", meta_key)
    with pytest.raises(errors.IntegrityError):  # the meta key on the content segment
        v2.archive.open_part(entry, "content", meta_key)


def test_the_index_segment_key_is_never_released(v2):
    entry = twin_entries(v2)[0]
    case = v2.open(v2.demo_grant)  # a grant of every field, the chunk inside its window
    ref = ChunkRef(entry.kind, entry.partition, entry.chunk, INDEX_SEGMENT, entry.batch_seq)
    with pytest.raises(errors.PolicyDenied) as info:
        case.key_service.release(case.ticket, [ref], now=v2.tick())
    assert info.value.rule == "fields.parts"
    refusal = releases(v2, case.ticket.grant_id, "denied")[-1]
    assert refusal.details["rule"] == "fields.parts" and "/index/" in refusal.details["chunk"] + "/"
    # the index segment opens only under the key derived from the batch's index key, not a partition key
    archive, keys = v2.archive, v2.keys
    segments = unpack_chunk_file(chunk_path(v2, entry).read_bytes(), what="x")
    partition_derived = archive.chunk_key_for(keys, entry.kind, entry.partition, entry.chunk, INDEX_SEGMENT,
                                              entry.batch_seq)
    with pytest.raises(errors.IntegrityError):
        archive._open_segment(entry, INDEX_SEGMENT, partition_derived, segments)
    index_dek = archive.data_key(keys, INDEX_KEY_KIND, batch_dir_name(entry.batch_seq), entry.batch_seq)
    own = index_segment_key(index_dek, archive.archive_id, entry.kind, entry.partition, entry.chunk)
    index_rows = pl.read_parquet(archive._open_segment(entry, INDEX_SEGMENT, own, segments))
    assert index_rows.height == entry.rows


# --- 6. a batch staged in one format is not committed into an archive of the other ------------------------------------

class SwitchBeforeCommit:
    """The embedded ingest service, with archive.toml's format switched between staging and commit."""

    def __init__(self, service, to: int):
        self.service, self.to = service, to

    def __getattr__(self, name):
        return getattr(self.service, name)

    def commit(self, archive, **kw):
        toml = archive.layout.config
        text = toml.read_text(encoding="utf-8")
        toml.write_text(text.replace(f"format_version = {archive.write_format()}", f"format_version = {self.to}"),
                        encoding="utf-8")
        assert archive.write_format() == self.to
        return self.service.commit(archive, **kw)


@pytest.mark.parametrize("fmt", FORMATS)
def test_commit_refuses_a_batch_staged_in_the_other_format(built, tmp_path, fmt):
    world = world_of(built[fmt], tmp_path / "archive")
    other = FORMAT_V1 if fmt == FORMAT_V2 else FORMAT_V2
    before = [m.digest for m in world.archive.manifests()]
    with pytest.raises(errors.IntegrityError, match=f"chunk format {fmt}; this archive takes format {other}"):
        ingest_frames(world.archive, messages=sample_messages().with_columns(pl.lit("new").alias("text")),
                      events=None, sources=[], skipped=[], actor="tester", now=NOW,
                      service=SwitchBeforeCommit(LocalIngest(world.keys), other))
    assert [m.digest for m in world.archive.manifests()] == before
    assert not list((world.archive.root / "batches").glob("00000003"))
