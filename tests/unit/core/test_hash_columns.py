"""Column-wise record hashes (issue #18, item 2) against the per-record reference.

``schema.record_hash_column`` computes canonical text in Polars and SHA-256 in one compiled call
(polars-hash); ``schema.record_hash`` is the reference (rfc8785 + hashlib, one record at a time).
They must agree byte for byte, or stored record hashes and Merkle roots would change.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator import schema
from investigator.vault import merkle

TS = datetime(2026, 11, 28, 14, 20, 0, 123456, tzinfo=timezone.utc)
TRICKY = [
    "加班费怎么算？", "加 班 費", "", " ", "🔥🎉 emoji 👨‍👩‍👧 family", "𠀀𪚥 astral Han", "\u200b zero width",
    'quote " backslash \\ slash /', "tab\tnewline\nreturn\r", "bell\x07 nul\x00 esc\x1b", "\x7f del",
    "\u2028 line separator \u2029", "é vs e\u0301", "\ufeffBOM", "Ω≈ç√∫", "a" * 3000, None,
]


def _frame(rows: list[dict]) -> pl.DataFrame:
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US, "recipients": pl.List(pl.String)}),
                          "messages")


def _reference(frame: pl.DataFrame) -> list[str]:
    return [schema.record_hash(r, "messages") for r in frame.iter_rows(named=True)]


def test_tricky_texts_hash_like_the_reference():
    rows = [{"message_id": f"m{i}", "ts": TS, "text": text, "sender_name": text, "recipients": [text or "", "张三"],
             "attachment_size": i if i % 2 else None} for i, text in enumerate(TRICKY)]
    rows.append({"message_id": "nulls", "ts": TS, "text": None, "sender_name": None, "recipients": None,
                 "attachment_size": None})
    rows.append({"message_id": "empty list", "ts": TS, "text": "", "sender_name": "", "recipients": [],
                 "attachment_size": 0})
    frame = _frame(rows)
    column = schema.record_hash_column(frame, "messages")
    assert column.name == "record_hash" and column.dtype == pl.String
    assert column.to_list() == _reference(frame) == schema.record_hashes(frame, "messages")


def test_sha256_column_equals_hashlib_on_strings_and_bytes():
    texts = [t for t in TRICKY if t is not None]
    assert schema.sha256_hex_column(pl.Series(texts)).to_list() == [
        hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    blobs = [b"", b"\x00", bytes(range(256)), "加班".encode("gb18030")]
    assert schema.sha256_hex_column(pl.Series(blobs, dtype=pl.Binary)).to_list() == [
        hashlib.sha256(b).hexdigest() for b in blobs]
    assert schema.sha256_hex_column(pl.Series([None, "x"], dtype=pl.String)).to_list()[0] is None


def test_lone_surrogates_never_reach_a_hash():
    # A lone surrogate is not Unicode text: Polars refuses to hold it and the reference refuses to
    # canonicalize it, so neither path can give such a record a hash.
    with pytest.raises(UnicodeEncodeError):
        pl.Series(["a\ud800b"])
    with pytest.raises(Exception):
        schema.record_hash({"message_id": "x", "ts": TS, "text": "a\ud800b"}, "messages")
    # a surrogate *pair* written as two escapes is one astral character once decoded
    pair = "\ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16")
    frame = _frame([{"message_id": "p", "ts": TS, "text": pair, "sender_name": None, "recipients": None,
                     "attachment_size": None}])
    assert schema.record_hash_column(frame, "messages").to_list() == _reference(frame)


def test_empty_frame_has_an_empty_hash_column():
    assert schema.record_hash_column(schema.empty_messages(), "messages").to_list() == []


texts = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(TRICKY))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "message_id": st.text(min_size=1, max_size=10), "text": texts, "sender_name": texts,
    "recipients": st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=3)),
    "attachment_size": st.one_of(st.none(), st.integers(-(2**53) + 1, 2**53 - 1)),
    "ts": st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(timezone.utc)),
}), min_size=1, max_size=8))
def test_columnwise_record_hashes_equal_reference(rows):
    frame = _frame(rows)
    hashes = schema.record_hash_column(frame, "messages").to_list()
    assert hashes == _reference(frame)
    # and the batch's Merkle root over them is the one the per-record hashes give
    assert merkle.root_of_record_hashes(hashes) == merkle.root_of_record_hashes(_reference(frame))


def test_an_integer_beyond_json_precision_is_refused_column_wise():
    frame = _frame([{"message_id": "big", "ts": TS, "text": "x", "sender_name": None, "recipients": None,
                     "attachment_size": 2**60}])
    with pytest.raises(ValueError, match="JSON cannot carry"):
        schema.record_hash_column(frame, "messages")
