"""Issue #16: properties of the normalization and search, and the versioned ``text_norm`` column."""

from __future__ import annotations

import functools

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator import textnorm
from investigator.access.scan import searchable
from investigator.analysis import add_normalized_column, find_spans, normalize_text, search
from investigator.analysis.normalize import display_normalize, tables
from investigator.errors import ContentNotGranted, QueryError

SETTINGS = settings(max_examples=100, deadline=None)
# The characters the issue names, besides arbitrary code points: look-alikes, marks, selectors,
# format characters, emoji, arrows, enclosed letters, line breaks, Chinese, pinyin with tones.
TRICKY = list("аАоОрсеΑΟΡΗΙιІ\u0251\u0131٣০❶Ⓟ🅿⼝囗口ﬁ"
              "\u0301\u0336\u20dd\u3099\ufe0f\ufe0e\u00ad\u2060\u202e\u200b\u200d\u2028\n\r"
              "🔥👍→⇒★$ 　加班费費非盘jiābānfèi123passwordkickbacks-/.\"()ORANDNOT:")
ALPHABET = st.characters(codec="utf-8") | st.sampled_from(TRICKY)
texts = st.text(alphabet=ALPHABET, max_size=40)


@functools.lru_cache(maxsize=1)
def ignorable() -> list[str]:
    """Every character the compact form deletes (separators and invisibles), from the table itself."""
    return sorted(chr(cp) for cp, value in tables()[1].items() if value == "")


@SETTINGS
@given(texts)
def test_normalization_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert display_normalize(display_normalize(text)) == display_normalize(text)
    assert normalize_text(display_normalize(text)) == once


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.none(), texts), min_size=1, max_size=5))
def test_polars_and_python_normalization_agree(values: list[str | None]) -> None:
    frame = add_normalized_column(pl.DataFrame({"text": values}, schema={"text": pl.String}))
    assert frame["text_norm"].to_list() == [None if v is None else normalize_text(v) for v in values]


@SETTINGS
@given(st.lists(texts, min_size=1, max_size=4), texts, st.sampled_from(["exact", "word", "fuzzy", "regex"]),
       st.booleans())
def test_search_never_raises(values: list[str], query: str, mode: str, pinyin: bool) -> None:
    frame = pl.DataFrame({"message_id": [str(i) for i in range(len(values))], "text": values})
    try:
        hits = search(frame, query, mode=mode, pinyin=pinyin)
    except QueryError:
        return
    assert hits.height <= frame.height
    assert "matched_terms" in hits.columns
    for text in hits["text"].to_list():
        for term in query.split():
            find_spans(text, term, mode if mode != "regex" else "exact", pinyin=pinyin)  # never raises either


@st.composite
def wrapped(draw: st.DrawFn) -> tuple[str, str]:
    keyword = draw(st.sampled_from(["password", "加班费", "vpn", "kickback", "回扣", "删除日志"]))
    junk = st.text(alphabet=st.sampled_from(ignorable()), max_size=4)
    parts = [draw(junk)]
    for ch in keyword:
        parts += [ch, draw(junk)]
    return keyword, "".join(parts)


@settings(max_examples=60, deadline=None)
@given(wrapped(), st.sampled_from(["", "说 ", "x "]), st.sampled_from(["", " 吧", " ok"]))
def test_keyword_wrapped_in_ignorables_is_found(case: tuple[str, str], before: str, after: str) -> None:
    keyword, text = case
    full = before + text + after
    frame = pl.DataFrame({"message_id": ["m"], "text": [full]})
    assert search(frame, keyword).height == 1, ascii(full)
    (span,) = find_spans(full, keyword)
    marked = full[span[0]:span[1]]
    assert normalize_text(marked) == keyword and marked[0] == keyword[0]


def test_ignorable_pool_covers_the_issue_classes() -> None:
    pool = set(ignorable())
    for ch in ("!", "，", "→", "🔥", "★", "\u0301", "\u20dd", "\ufe0f", "\U000e0100", "\u00ad", "\u2060", "\u202e",
               "\u200b", "\n", "\u2028", "\u3000", " "):
        assert ch in pool, ascii(ch)
    for ch in ("a", "加", "1", "\u3099"):
        assert ch not in pool


# --- the normalization version --------------------------------------------------------------------

def test_add_normalized_column_records_the_version() -> None:
    frame = add_normalized_column(pl.DataFrame({"text": ["加 班 费", None]}))
    assert frame[textnorm.NORM_VERSION_COLUMN].dtype == pl.UInt32
    assert frame[textnorm.NORM_VERSION_COLUMN].to_list() == [textnorm.norm_version()] * 2
    assert textnorm.stored_norm_current(frame)
    info = textnorm.norm_info()
    assert info["confusables"] == "18.0.0" and info["version"] == textnorm.norm_version()
    assert info["algorithm"] == textnorm.ALGORITHM >= 2


def _stale_frames() -> dict[str, pl.DataFrame]:
    fresh = add_normalized_column(pl.DataFrame({"message_id": ["a", "b"], "text": ["p\u0430ssword", "加 班 費"]}))
    # what an older archive or an older normalization stored: no confusables, other version
    old_norm = pl.Series("text_norm", ["pаssword", "加班费"])
    return {
        "older archive (no version column)": fresh.drop(textnorm.NORM_VERSION_COLUMN).with_columns(old_norm),
        "other version": fresh.with_columns(old_norm, pl.lit(1, dtype=pl.UInt32).alias(textnorm.NORM_VERSION_COLUMN)),
        "mixed versions": fresh.with_columns(
            pl.Series(textnorm.NORM_VERSION_COLUMN, [textnorm.norm_version(), 7], dtype=pl.UInt32)),
        "null version": fresh.with_columns(pl.lit(None, dtype=pl.UInt32).alias(textnorm.NORM_VERSION_COLUMN)),
    }


@pytest.mark.parametrize("name", list(_stale_frames()))
def test_a_stale_text_norm_is_recomputed_never_reused(name: str) -> None:
    frame = _stale_frames()[name]
    assert not textnorm.stored_norm_current(frame)
    assert search(frame, "password")["message_id"].to_list() == ["a"]  # the stale column would miss it
    refreshed = textnorm.ensure_normalized(frame)
    assert textnorm.stored_norm_current(refreshed)
    assert refreshed["text_norm"].to_list() == ["password", "加班费"]
    assert searchable(frame)["text_norm"].to_list() == ["password", "加班费"]  # the loader's path


def test_a_stale_text_norm_without_text_is_refused() -> None:
    frame = _stale_frames()["other version"].drop("text")
    with pytest.raises(ContentNotGranted):
        search(frame, "password")
    current = add_normalized_column(pl.DataFrame({"message_id": ["a"], "text": ["p\u0430ssword"]})).drop("text")
    assert search(current, "password").height == 1  # a current column alone is enough for exact search


def test_the_version_follows_the_rules_and_data(monkeypatch: pytest.MonkeyPatch) -> None:
    before = textnorm.norm_version()
    textnorm.norm_version.cache_clear()
    monkeypatch.setattr(textnorm, "ALGORITHM", textnorm.ALGORITHM + 1)
    try:
        assert textnorm.norm_version() != before
    finally:
        textnorm.norm_version.cache_clear()
    monkeypatch.undo()
    assert textnorm.norm_version() == before
