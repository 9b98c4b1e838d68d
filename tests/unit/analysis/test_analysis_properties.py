"""Property tests: search never raises on arbitrary text, normalization is idempotent, parser is total."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator.analysis import add_normalized_column, normalize_text, parse, search
from investigator.analysis.normalize import display_normalize
from investigator.errors import QueryError

SETTINGS = settings(max_examples=100, deadline=None)
# Text that exercises the interesting parts: CJK, full width, zero width, combining marks, punctuation.
ALPHABET = st.characters(codec="utf-8") | st.sampled_from(list("加班费費 　\u200b\u200dＶｖＰpassword-/.\"()ORANDNOT:from"))
texts = st.text(alphabet=ALPHABET, max_size=40)


@SETTINGS
@given(texts)
def test_normalization_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert display_normalize(display_normalize(text)) == display_normalize(text)
    assert normalize_text(display_normalize(text)) == once


@SETTINGS
@given(st.lists(st.one_of(st.none(), texts), min_size=1, max_size=5))
def test_polars_and_python_normalization_agree(values: list[str | None]) -> None:
    frame = add_normalized_column(pl.DataFrame({"text": values}, schema={"text": pl.String}))
    assert frame["text_norm"].to_list() == [None if v is None else normalize_text(v) for v in values]


@SETTINGS
@given(texts)
def test_parser_parses_or_names_a_position(query: str) -> None:
    try:
        parse(query)
    except QueryError as err:
        assert err.position is not None and 0 <= err.position <= len(query)


@SETTINGS
@given(st.lists(texts, min_size=1, max_size=4), texts, st.sampled_from(["exact", "word", "fuzzy", "regex"]),
       st.booleans())
def test_search_never_raises_except_query_errors(values: list[str], query: str, mode: str, pinyin: bool) -> None:
    frame = pl.DataFrame({"message_id": [str(i) for i in range(len(values))], "text": values})
    try:
        hits = search(frame, query, mode=mode, pinyin=pinyin)
    except QueryError:
        return
    assert hits.height <= frame.height
    assert "matched_terms" in hits.columns
