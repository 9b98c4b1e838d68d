"""scan_chunks: one per-group function for both load paths, on any executor, keys one group at a time."""

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator import errors
from investigator.access.keyservice import EmbeddedKeyService
from investigator.access.scan import LoadStats, TicketKeys, iter_groups, scan_chunks
from investigator.authority.directory import Signer
from investigator.authority.grants import revoke_grant
from investigator.schema import format_ts

from .conftest import EDGE_DAY

MESSAGE_PARTS = ("meta", "content")


class InProcess:
    """The trivial executor: the builtin map, in the calling thread."""

    def map(self, fn, *iterables):
        return map(fn, *iterables)


class MasterKeys:
    """A key source straight from the master keys (no grant), recording what it is asked for."""

    def __init__(self, world):
        self.archive, self.keys, self.asked = world.archive, world.keys, []

    def release(self, refs):
        self.asked.append(list(refs))
        return {r: self.archive.chunk_key_for(self.keys, r.kind, r.partition, r.chunk, r.part, r.batch or None)
                for r in refs}


def entries_on(world, day, hours=None):
    return [e for e in world.archive.chunk_entries("messages")
            if e.partition == day and (hours is None or e.chunk in hours)]


def window(start, end):
    return (pl.col("ts") >= start) & (pl.col("ts") < end)


def test_thread_pool_and_in_process_executor_give_the_same_frames_and_stats(world):
    entries = entries_on(world, "2026-11-18")
    assert len(entries) > 8
    day = window(datetime(2026, 11, 18, tzinfo=timezone.utc), datetime(2026, 11, 19, tzinfo=timezone.utc))
    pooled_keys, serial_keys = MasterKeys(world), MasterKeys(world)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pooled, pooled_stats = scan_chunks(world.archive, entries, pooled_keys, MESSAGE_PARTS, day, pool, group_size=4)
    serial, serial_stats = scan_chunks(world.archive, entries, serial_keys, MESSAGE_PARTS, day, InProcess(),
                                       group_size=4)
    # keys asked for one group at a time, in order, by both
    assert pooled_keys.asked == serial_keys.asked and len(serial_keys.asked) == math.ceil(len(entries) / 4)
    assert len(pooled) == len(serial) == len(serial_keys.asked)
    assert all(a.equals(b) for a, b in zip(pooled, serial))
    assert pooled_stats == serial_stats == LoadStats(
        keys_released=sum(len(refs) for refs in serial_keys.asked), chunks_decrypted=len(entries),
        rows_read=sum(e.rows for e in entries), chunk_ids=frozenset(e.chunk_id for e in entries))
    rows = pl.concat(serial)
    assert rows.height == serial_stats.rows_read  # the whole day is in the window
    # the partial frames are what the case keeps: provenance, granted parts and the search form of the text
    assert {"chunk_id", "leaf_index", "record_hash", "text", "text_norm"} <= set(rows.columns)
    assert set(rows["chunk_id"]) == {f"{e.batch_seq}/{e.chunk_id}" for e in entries}


def test_the_row_filter_drops_rows_outside_the_window(world):
    # the chunk hours before, of and after the window [10:00, 11:00) UTC, decrypted whole
    entries = entries_on(world, "2026-11-20", hours={"090000", "100000", "110000"})
    edge = pl.col("source") == "edge"
    frames, stats = scan_chunks(world.archive, entries, MasterKeys(world), MESSAGE_PARTS,
                                window(EDGE_DAY, EDGE_DAY + timedelta(hours=1)), InProcess())
    kept = pl.concat(frames)
    assert kept["ts"].min() >= EDGE_DAY and kept["ts"].max() < EDGE_DAY + timedelta(hours=1)
    assert sorted(kept.filter(edge)["message_id"].to_list()) == ["edge-inside", "edge-start"]
    everything, all_stats = scan_chunks(world.archive, entries, MasterKeys(world), MESSAGE_PARTS, pl.lit(True),
                                        InProcess())
    assert sorted(pl.concat(everything).filter(edge)["message_id"].to_list()) == [
        "edge-before", "edge-end", "edge-inside", "edge-start"]
    assert stats == all_stats and stats.rows_read == sum(f.height for f in everything) > kept.height


def test_a_metadata_scan_releases_and_returns_no_text(world):
    entries = entries_on(world, "2026-11-20", hours={"100000"})
    source = MasterKeys(world)
    frames, stats = scan_chunks(world.archive, entries, source, ("meta",), pl.lit(True), InProcess())
    assert {r.part for refs in source.asked for r in refs} == {"meta"}
    assert not {"text", "text_norm"} & set(frames[0].columns) and frames[0].height == stats.rows_read


class RevokedAfterFirstRelease(EmbeddedKeyService):
    """The embedded gate, with the grant revoked right after the first key release (recording what is asked)."""

    def __init__(self, world, grant):
        super().__init__(world.archive, world.keys)
        self.world, self.grant, self.asked = world, grant, []

    def release(self, ticket, refs, *, now=None):
        self.asked.append(list(refs))
        keys = super().release(ticket, refs, now=now)
        if len(self.asked) == 1:
            revoke_grant(self.world.archive, self.grant, signer=Signer("wugang", self.world.key("wugang")),
                         reason="revoked mid-load", now=self.world.clock)
        return keys


@pytest.mark.parametrize("path", ["scan_chunks", "case"])
def test_a_refused_group_stops_the_scan_as_the_case_is_stopped(world, path):
    start, end = EDGE_DAY - timedelta(days=2), EDGE_DAY + timedelta(hours=1)
    service = RevokedAfterFirstRelease(world, world.grant(start=start, end=end))
    case = world.open(service.grant, key_service=service)
    entries = [e for e in world.archive.chunk_entries("messages")
               if e.start < format_ts(end) and e.end > format_ts(start)]
    assert len(entries) > 8
    with pytest.raises(errors.PolicyDenied) as info:
        if path == "case":
            case.key_batch = 4
            case.messages()
        else:
            scan_chunks(world.archive, entries, TicketKeys(service, case.ticket, world.clock), MESSAGE_PARTS,
                        window(start, end), InProcess(), group_size=4)
    assert info.value.rule == "grant.revoked"
    assert len(service.asked) == 2  # the first group, then the refused one; no group after it
    assert service.released == len(service.asked[0])
    refusal = [e for e in world.audit("key.release") if e.outcome == "denied"]
    assert [(e.target, e.details["rule"]) for e in refusal] == [(service.grant, "grant.revoked")]


def test_entries_of_two_kinds_are_refused(world):
    mixed = entries_on(world, "2026-11-20", hours={"100000"})[:1] + world.archive.chunk_entries("events")[:1]
    with pytest.raises(errors.ConfigError, match="one kind at a time"):
        scan_chunks(world.archive, mixed, MasterKeys(world), MESSAGE_PARTS, pl.lit(True), InProcess())


# --- the pipelined scan of the eager load (a group parsed while the next is decrypted) ----------------------

DAY_18 = window(datetime(2026, 11, 18, tzinfo=timezone.utc), datetime(2026, 11, 19, tzinfo=timezone.utc))


def test_pipelined_groups_equal_the_sequential_scan(world):
    entries = entries_on(world, "2026-11-18")
    sequential_keys, pipelined_keys = MasterKeys(world), MasterKeys(world)
    frames, stats = scan_chunks(world.archive, entries, sequential_keys, MESSAGE_PARTS, DAY_18, InProcess(),
                                group_size=3)
    with ThreadPoolExecutor(2) as pool, ThreadPoolExecutor(1) as parser:
        pipelined = list(iter_groups(world.archive, entries, pipelined_keys, MESSAGE_PARTS, DAY_18, pool,
                                     group_size=3, parser=parser))
    assert len(pipelined) == len(frames) == math.ceil(len(entries) / 3) > 2
    assert all(a.equals(b) for a, (b, _) in zip(frames, pipelined))
    assert sum((s for _, s in pipelined), LoadStats()) == stats
    assert pipelined_keys.asked == sequential_keys.asked  # the same groups' keys, in the same order


def test_a_group_failing_its_manifest_check_stops_the_pipelined_scan(world):
    entries = entries_on(world, "2026-11-18")
    assert len(entries) >= 12
    # group 1 (entries 3-5) claims a row more than its chunks hold: its parse fails the manifest check
    tampered = [dataclasses.replace(e, rows=e.rows + 1) if 3 <= i < 6 else e for i, e in enumerate(entries)]
    keys, yielded = MasterKeys(world), []
    with ThreadPoolExecutor(2) as pool, ThreadPoolExecutor(1) as parser:
        with pytest.raises(errors.IntegrityError, match="manifests list"):
            for frame, _ in iter_groups(world.archive, tampered, keys, MESSAGE_PARTS, DAY_18, pool, group_size=3,
                                        parser=parser):
                yielded.append(frame)
    assert len(yielded) == 1  # group 0 only: nothing of the failed group or after it
    # group 2's keys were asked for while group 1 was parsed (inside the grant); none after them
    assert [len(refs) for refs in keys.asked] == [6, 6, 6]


def test_a_pipelined_scan_closed_early_asks_for_no_more_keys(world):
    entries = entries_on(world, "2026-11-18")
    keys = MasterKeys(world)
    with ThreadPoolExecutor(2) as pool, ThreadPoolExecutor(1) as parser:
        groups = iter_groups(world.archive, entries, keys, MESSAGE_PARTS, DAY_18, pool, group_size=3, parser=parser)
        next(groups)
        asked = len(keys.asked)
        groups.close()
    assert asked == 2 and len(keys.asked) == 2  # the first group yielded while the second was parsed; then nothing


def test_chunk_entries_overlapping_a_window_equal_the_filter_over_all(world):
    # the loader asks only for its window's entries, parsed alone; the answer must be the full list filtered
    from investigator.vault.store import Archive

    def stamp(day: int, hour: int) -> str:
        return format_ts(datetime(2026, 11, day, hour, tzinfo=timezone.utc))

    everything = Archive.open(world.archive.root).chunk_entries()
    windows = [(stamp(18, 10), stamp(18, 11)),  # exactly one chunk hour: its neighbours only touch it
               (stamp(18, 9), stamp(20, 13)), (stamp(1, 0), stamp(30, 0)), (stamp(25, 5), stamp(25, 5))]
    for kind in ("messages", "events", None):
        for start, end in windows:
            expected = [e for e in everything if (kind is None or e.kind == kind) and e.start < end and e.end > start]
            fresh = Archive.open(world.archive.root)  # nothing parsed yet: the raw entries are filtered
            assert fresh.chunk_entries(kind, overlapping=(start, end)) == expected
            assert fresh.chunk_entries(kind, overlapping=(start, end)) == expected  # parsed from the raw path again
            fresh.chunk_entries()  # now every entry is parsed (cached): the filter runs over those
            assert fresh.chunk_entries(kind, overlapping=(start, end)) == expected
    one_hour = [e for e in everything if e.kind == "messages" and e.start == stamp(18, 10)]
    assert one_hour and Archive.open(world.archive.root).chunk_entries(
        "messages", overlapping=(stamp(18, 10), stamp(18, 11))) == one_hour
