"""The search speed-ups of issue #18's search aims (session 4) against the code they replace.

Each faster path is compared with the straightforward one it stands in for, on hypothesis-generated
texts that mix Chinese (simplified and traditional), full-width and look-alike letters, marks and
invisible characters, characters that expand (``⑩`` -> ``10``), astral symbols, regex metacharacters
and separators:

* ``matchers._offset_map`` (one regex finds the characters that do not map to exactly one; the map kept
  as their shifts) against ``compact_with_offsets`` (a Python step per character);
* ``matchers.word_match_any`` (one offset map shared by a term's variants) against ``word_match`` per
  variant and ``word_match_pinyin``, also with a stale compact form;
* ``search._matched_terms`` (flags packed into bit codes, one list per distinct combination) against
  the per-row ``concat_list`` expression it replaced, across the 63-terms-per-code boundary;
* word-mode ``search`` against a row-by-row evaluation with ``word_match``, many terms at once.
* and, unchanged but pinned here, the pre-filter's regex alternation (escaped needles with regex
  metacharacters, Chinese, full-width and astral characters, in slices) against plain substring search.
"""

from __future__ import annotations

import importlib

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator.analysis import matchers, search
from investigator.analysis import pinyin as pinyin_mode
from investigator.analysis.normalize import add_normalized_column, compact_with_offsets, normalize_text, tables

search_mod = importlib.import_module("investigator.analysis.search")  # the module: the package exports the function

PIECES = ["加班费", "加班", "加 班 費", "增加班级", "投诉", "password", "PassWord", "passwords", "p\u0430ssword",
          "ＶＰＮ", "vpn", "vpns", "kickback", "kickbacks", "⑩", "ﬀ", "ᾧ", "㏭", "é", "e\u0301", "\u200b", "\u00ad",
          "\u3000", " ", "\n", "，", ".", "/", "-", "🔥", "\U00020000", "(", ")", "*", "+", "?", "[", "]", "\\", "|",
          "^", "$", "{", "}", "a.b", "x1", "jia ban fei", "加ban费", "今天要", "的", "reset", "my", "all"]
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=10).map("".join)


def _same_map(text: str) -> bool:
    compact, shifts = matchers._offset_map(text)
    return (compact, [shifts[p] for p in range(len(compact))]) == compact_with_offsets(text)


def test_offset_map_over_every_character_the_table_changes():
    compact = tables()[1]
    every = "".join(chr(k) for k in compact)
    for text in (every, every[::-1], "ab" + every + "x y🔥" + every, "", "a", "ＡＢ 加\u200b班", "⑩⑩ab⑩", " a"):
        assert _same_map(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(texts, st.text()))
def test_offset_map_equals_compact_with_offsets(text):
    assert _same_map(text)


def _reference_verdict(original, variants, compact, term):
    return any(matchers.word_match(original, v, compact) for v in variants) or (
        term is not None and matchers.word_match_pinyin(original, term, compact))


@settings(max_examples=200, deadline=None)
@given(texts, st.sampled_from(["加班费", "加班", "password", "vpn", "kickback", "班级", "10", "ff"]),
       st.booleans(), st.sampled_from(["given", "none", "stale"]))
def test_word_match_any_equals_word_match_per_variant(original, keyword, by_sound, compact_kind):
    norm = normalize_text(keyword)
    variants = list(dict.fromkeys([norm, *matchers.inflections(keyword)]))
    matchers.add_words(variants)
    term = pinyin_mode.compile_term(norm) if by_sound else None
    compact = {"given": normalize_text(original), "none": None,
               "stale": normalize_text(original[1:] + "x")}[compact_kind]
    assert matchers.word_match_any(original, variants, compact, term) == _reference_verdict(
        original, variants, compact, term)


def _old_matched(hits: pl.DataFrame, positive) -> list:
    expr = pl.concat_list([pl.when(pl.col(c.column)).then(pl.lit(c.term.text)).otherwise(None)
                           for c in positive]).list.drop_nulls()
    return hits.select(expr)[:, 0].to_list()


class _Fake:
    def __init__(self, index: int, text: str) -> None:
        self.column = f"__t{index}"
        self.term = type("T", (), {"text": text})()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 140), st.integers(0, 30), st.data())
def test_matched_terms_equals_the_per_row_lists(n_terms, n_rows, data):
    names = [data.draw(st.sampled_from(["加班费", "vpn", "password", "a|b", "(x)", "投诉"])) for _ in range(n_terms)]
    positive = [_Fake(i, name) for i, name in enumerate(names)]  # repeated texts on purpose (phrase and word)
    flags = {c.column: data.draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n_rows, max_size=n_rows))
             for c in positive}
    hits = pl.DataFrame({"message_id": [str(i) for i in range(n_rows)], **flags},
                        schema={"message_id": pl.String, **{k: pl.Boolean for k in flags}})
    got = search_mod._matched_terms(hits, positive)
    assert got.name == "matched_terms" and got.dtype == pl.List(pl.String)
    assert got.to_list() == _old_matched(hits, positive)


WORDS = ["加班费", "加班", "投诉", "password", "vpn", "回扣", "kickback", "班级", "泄密", "密码", "报销", "离职"]


@pytest.mark.parametrize("count", [1, 12, 70])
def test_word_search_with_many_terms_equals_row_by_row(count):
    keywords = [WORDS[i % len(WORDS)] + ("" if i < len(WORDS) else str(i)) for i in range(count)]
    values = ["今天要加班吗", "增加班级", "reset my password now", "all passwords", "ＶＰＮ账号", "加 班 費按小時",
              "kickbacks paid", "加班费10", None, "vpn3 ok", "投诉了密码泄密", "p\u0430ssword", "离职报销"] * 3
    frame = add_normalized_column(pl.DataFrame({"message_id": [str(i) for i in range(len(values))], "text": values},
                                               schema={"message_id": pl.String, "text": pl.String}))
    query = " OR ".join(keywords)
    got = search(frame, query, mode="word")
    expected = []
    for i, text in enumerate(values):
        hit = []
        for k in dict.fromkeys(keywords):
            variants = list(dict.fromkeys([normalize_text(k), *matchers.inflections(k)]))
            matchers.add_words(variants)
            if text is not None and any(matchers.word_match(text, v) for v in variants):
                hit.append(k)
        if hit:
            expected.append((str(i), hit))
    assert list(zip(got["message_id"].to_list(), got["matched_terms"].to_list())) == expected


NEEDLE_PIECES = ["加班费", "费", "ＶＰＮ", "vpn", "p\u0430ss", ".", "(", ")", "*", "+", "?", "[", "]", "\\", "|", "^", "$",
                 "{2}", "a.b", "c++", "\\d", "🔥", "é", "e\u0301"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), texts, st.lists(st.sampled_from(NEEDLE_PIECES), max_size=6).map("".join)),
                min_size=1, max_size=15),
       st.lists(st.lists(st.sampled_from(NEEDLE_PIECES), min_size=1, max_size=3).map("".join), min_size=1, max_size=20),
       st.integers(1, 5))
def test_prefilter_alternation_equals_substring_of_any_needle(values, needles, parts):
    # the pre-filter's one regex alternation (needles escaped), scanned in slices, is plain substring search
    series = pl.Series(values, dtype=pl.String)
    expected = [v is not None and any(n in v for n in needles) for v in values]
    old_rows, old_split = search_mod.SPLIT_ROWS, search_mod.SPLIT
    try:
        search_mod.SPLIT_ROWS, search_mod.SPLIT = 1, parts
        assert search_mod._prefilter(series, search_mod._alternation(needles)).to_list() == expected
    finally:
        search_mod.SPLIT_ROWS, search_mod.SPLIT = old_rows, old_split
