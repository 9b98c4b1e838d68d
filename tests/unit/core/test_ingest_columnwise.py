"""Ingest's column-wise steps (issue #18, item 2) against their per-record references.

Canonical text: ``schema.canonical_strings`` takes Polars' JSON encoder for strings that need
escaping and for lists; RFC 8785's bytes (``rfc8785.dumps`` through ``schema.canonical_bytes``) are
the reference, on every code point and on adversarial records. Versions and chunk keys:
``ingest._prepare`` against the window and string formulas it replaced.
"""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator import schema
from investigator.vault import ingest

TS = datetime(2026, 11, 28, 14, 20, 0, 123456, tzinfo=timezone.utc)
# everything JSON escapes, and what it must not: '/', DEL, the line separators, non-ASCII, astral
ESCAPABLE = [chr(c) for c in range(0x20)] + ['"', "\\"]
NOT_ESCAPED = ["/", "\x7f", "\u2028", "\u2029", "é", "加", "\ufeff", "\uffff", "😀", "𠀀", "a", " "]
adversarial = st.text(alphabet=st.sampled_from(ESCAPABLE + NOT_ESCAPED), max_size=12)
texts = st.one_of(st.none(), adversarial, st.text(max_size=20))


def test_json_members_escape_every_code_point_as_rfc8785_does():
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    members = pl.DataFrame({"s": points}).select(schema._json_member(pl.col("s")))["s"].to_list()
    wrong = [p for p, m in zip(points, members) if m.encode("utf-8") != b'"s":' + rfc8785.dumps(p)]
    assert wrong == []


def test_json_members_of_lists_and_nulls():
    frame = pl.DataFrame({"r": [["a", None, '"\n'], [], None, [None]]}, schema={"r": pl.List(pl.String)})
    members = frame.select(schema._json_member(pl.col("r")))["r"].to_list()
    assert members == ['"r":' + rfc8785.dumps(["a", None, '"\n']).decode(), '"r":[]', None, '"r":[null]']


def _reference(frame: pl.DataFrame, kind: str) -> list[str]:
    return [schema.canonical_bytes(r, kind).decode("utf-8") for r in frame.iter_rows(named=True)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "message_id": st.one_of(adversarial.filter(bool), st.text(min_size=1, max_size=8)),
    "text": texts, "sender_name": texts, "conversation_name": texts, "attachment_name": texts,
    "recipients": st.one_of(st.none(), st.lists(st.one_of(st.none(), adversarial), max_size=3)),
    "attachment_size": st.one_of(st.none(), st.integers(-(2**53) + 1, 2**53 - 1)),
    "ts": st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(timezone.utc)),
}), min_size=1, max_size=8))
def test_canonical_text_of_adversarial_messages_is_rfc8785(rows):
    frame = schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US,
                                                                "recipients": pl.List(pl.String)}), "messages")
    assert schema.canonical_strings(frame, "messages").to_list() == _reference(frame, "messages")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "event_id": st.text(min_size=1, max_size=8), "event_type": adversarial, "details": texts, "actor": texts,
    "ts": st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(timezone.utc)),
}), min_size=1, max_size=6))
def test_canonical_text_of_adversarial_events_is_rfc8785(rows):
    frame = schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "events")
    assert schema.canonical_strings(frame, "events").to_list() == _reference(frame, "events")


def test_a_column_of_only_nulls_leaves_every_member_out():
    frame = schema.conform(pl.DataFrame({"message_id": ["m"], "ts": [TS]}, schema_overrides={"ts": schema.UTC_US}),
                           "messages")
    assert schema.canonical_strings(frame, "messages").to_list() == _reference(frame, "messages")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.fixed_dictionaries({"message_id": st.text(min_size=1, max_size=6), "text": texts,
                                       "recipients": st.one_of(st.none(), st.lists(adversarial, max_size=2))}),
                min_size=2, max_size=9))
def test_record_hashes_in_two_halves_equal_the_reference(rows):
    # a large frame is hashed as two halves on two threads; force that on small ones
    frame = schema.conform(pl.DataFrame([{**r, "ts": TS} for r in rows],
                                        schema_overrides={"ts": schema.UTC_US, "recipients": pl.List(pl.String)}),
                           "messages")
    original = schema._SPLIT_ROWS
    schema._SPLIT_ROWS = 2
    try:
        hashes = schema.record_hash_column(frame, "messages")
    finally:
        schema._SPLIT_ROWS = original
    assert hashes.name == "record_hash"
    assert hashes.to_list() == [schema.record_hash(r, "messages") for r in frame.iter_rows(named=True)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(min_size=32, max_size=32)), max_size=20), st.integers(0, 3))
def test_digest_bytes_column_equals_polars_hex_decoding(digests, cut):
    hexes = pl.Series("record_hash", [None] * cut + [d.hex() if d is not None else None for d in digests],
                      dtype=pl.String)[cut:]  # sliced: its Arrow buffers start at an offset
    decoded = schema.digest_bytes_column(hexes)
    assert decoded.name == "record_hash" and decoded.dtype == pl.Binary
    assert decoded.to_list() == digests == hexes.str.decode("hex").to_list()


class _Answers:
    """A key service that has ``latest`` stored for some (source, id) and none of the asked records."""

    def __init__(self, latest: dict[tuple[str, str], int]) -> None:
        self.latest = latest

    def lookup_frame(self, kind: str, asked: pl.DataFrame) -> pl.DataFrame:
        latest = [self.latest.get((s, i), 0) for s, i in asked.select("source", "id").iter_rows()]
        return pl.DataFrame({"_present": [False] * asked.height, "_latest": latest},
                            schema={"_present": pl.Boolean, "_latest": pl.Int64})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["x", "y", "", None]),
                          st.integers(0, 3), st.datetimes(min_value=datetime(1990, 1, 1),
                                                              max_value=datetime(2099, 1, 1),
                                                              timezones=st.just(timezone.utc))),
                min_size=1, max_size=30),
       st.dictionaries(st.tuples(st.sampled_from(["x", ""]), st.sampled_from(["a", "b"])), st.integers(1, 5)),
       st.sampled_from([60, 900, 3600, 86400]))
def test_dedup_versions_and_chunk_keys_equal_the_replaced_formulas(rows, stored, chunk_seconds):
    # repeats of a record (same id, source and text; a null and an empty source differ) are dropped
    # as unique() on (source, id, record_hash) dropped them; versions and chunk names as before
    frame = schema.conform(pl.DataFrame(
        {"message_id": [r[0] for r in rows], "source": [r[1] for r in rows], "text": [str(r[2]) for r in rows],
         "ts": [r[3] for r in rows]}, schema_overrides={"ts": schema.UTC_US}), "messages")
    prepared, duplicates, new_versions = ingest._prepare(frame, "messages", _Answers(stored), chunk_seconds)  # type: ignore[arg-type]
    # the reference: the window over every row, then names from the timestamps as strings
    hashed = frame.with_columns(schema.record_hash_column(frame, "messages"), pl.col("source").fill_null(""))
    hashed = hashed.unique(subset=["source", "message_id", "record_hash"], keep="first", maintain_order=True)
    prev = [stored.get((s, i), 0) for s, i in hashed.select("source", "message_id").iter_rows()]
    expected = hashed.with_columns(
        (pl.Series(prev, dtype=pl.Int64) + pl.int_range(1, pl.len() + 1).over("source", "message_id"))
        .cast(pl.Int32).alias("version"))
    seconds = (pl.col("ts").dt.hour().cast(pl.Int64) * 3600 + pl.col("ts").dt.minute().cast(pl.Int64) * 60
               + pl.col("ts").dt.second().cast(pl.Int64))
    start = seconds // chunk_seconds * chunk_seconds
    expected = expected.with_columns(
        pl.col("ts").dt.to_string("%Y-%m-%d").alias("_partition"),
        pl.format("{}{}{}", (start // 3600).cast(pl.String).str.zfill(2), (start % 3600 // 60).cast(pl.String).str.zfill(2),
                  (start % 60).cast(pl.String).str.zfill(2)).alias("_chunk"),
    ).sort(["_partition", "_chunk", "ts", "message_id"], maintain_order=True)
    names = [ingest._chunk_names(d, s, chunk_seconds) for d, s in prepared.select("_day", "_slot").iter_rows()]
    assert names == list(expected.select("_partition", "_chunk").iter_rows())
    assert prepared.select("message_id", "source", "record_hash", "version").equals(
        expected.select("message_id", "source", "record_hash", "version"))
    assert new_versions == expected.filter(pl.col("version") > 1).height
    assert duplicates == frame.height - hashed.height


def test_this_polars_passes_the_probe_so_the_columnwise_path_is_used():
    schema._columnwise_matches_reference.cache_clear()
    assert schema._columnwise_matches_reference("messages") and schema._columnwise_matches_reference("events")


def test_an_encoder_that_drifts_from_rfc8785_is_caught_by_the_probe_and_hashes_stay_right(monkeypatch):
    """A Polars whose JSON encoder escaped '/' (as many encoders do) would change every record hash that holds one:
    the probe notices once per process, warns, and canonical text is then made row by row."""
    frame = schema.conform(pl.DataFrame({"message_id": ["m/1"], "text": ["a/b \x01"], "ts": [datetime(2026, 11, 30,
                                         tzinfo=timezone.utc)]}, schema_overrides={"ts": schema.UTC_US}), "messages")
    reference = _reference(frame, "messages")
    drifted = schema._json_member

    def escapes_slash(col):
        return drifted(col).str.replace_all("/", "\\/", literal=True)

    monkeypatch.setattr(schema, "_json_member", escapes_slash)
    schema._columnwise_matches_reference.cache_clear()
    try:
        assert schema._canonical_strings_columnwise(frame, "messages").to_list() != reference  # the drift is real
        with pytest.warns(RuntimeWarning, match="differs from RFC 8785"):
            assert schema.canonical_strings(frame, "messages").to_list() == reference
    finally:
        monkeypatch.undo()
        schema._columnwise_matches_reference.cache_clear()
    assert schema.canonical_strings(frame, "messages").to_list() == reference
