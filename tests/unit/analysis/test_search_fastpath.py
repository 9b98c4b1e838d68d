"""The fast search path (issue #18, item 3) against a straightforward per-row reference.

``search`` scans the compact text with one regex alternation, in slices on several threads for a
large frame, then checks each term on the candidates only, and in word mode caches verdicts per
distinct text and jieba's segmentation per distinct window. The reference below does none of
that: every row, every term, in Python, with jieba uncached. Both must give the same rows and the
same matched terms. The slice threshold is lowered so that hypothesis' small frames take the
sliced path.
"""

from __future__ import annotations

import importlib

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from investigator.analysis import matchers, search
from investigator.analysis.normalize import add_normalized_column, normalize_text
from investigator.analysis.query import And, Node, Not, Or, Term, parse, terms

search_mod = importlib.import_module("investigator.analysis.search")  # the module: the package exports the function

KEYWORDS = ["加班费", "加班", "投诉", "password", "vpn", "回扣", "kickback", "班级"]
PIECES = KEYWORDS + ["增", "费用", "的", "今天", "要", "reset", "passwords", "kickbacks", "my", "VPN", "ＶＰＮ",
                     "加 班 費", "加\u200b班", "p\u0430ssword", " ", "，", "/", "🔥", "\u3000", "\n", "é", "x1"]
texts = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
queries = st.one_of(
    st.lists(st.sampled_from(KEYWORDS), min_size=1, max_size=3).map(" OR ".join),
    st.lists(st.sampled_from(KEYWORDS), min_size=1, max_size=2).map(" ".join),
    st.tuples(st.sampled_from(KEYWORDS), st.sampled_from(KEYWORDS)).map(lambda t: f"{t[0]} -{t[1]}"),
    st.tuples(st.sampled_from(KEYWORDS), st.sampled_from(KEYWORDS)).map(lambda t: f'"{t[0]} {t[1]}" OR {t[1]}'),
)


def _term_hit(text: str | None, term: Term, mode: str) -> bool:
    if text is None:
        return False
    needle = normalize_text(term.text)
    if mode == "exact":
        return needle in normalize_text(text)
    variants = [needle, *matchers.inflections(term.text)]
    matchers.add_words(variants)
    return any(matchers.word_match(text, v) for v in variants)


def _evaluate(node: Node, text: str | None, mode: str) -> bool:
    if isinstance(node, Term):
        return _term_hit(text, node, mode)
    if isinstance(node, Not):
        return not _evaluate(node.item, text, mode)
    values = [_evaluate(item, text, mode) for item in node.items]
    return all(values) if isinstance(node, And) else any(values) if isinstance(node, Or) else False


def reference(values: list[str | None], query: str, mode: str) -> list[tuple[str, list[str]]]:
    """(message_id, matched terms) of every matching row, computed row by row."""
    ast = parse(query)
    positive = list(dict.fromkeys(t.text for t, neg in terms(ast) if not neg))
    out = []
    for i, text in enumerate(values):
        if _evaluate(ast, text, mode):
            hit_terms = [t for t in positive if _term_hit(text, Term(t, False, 0), mode)]
            out.append((str(i), hit_terms))
    return out


@pytest.fixture
def sliced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_mod, "SPLIT_ROWS", 2)
    monkeypatch.setattr(search_mod, "SPLIT", 3)


@pytest.fixture
def uncached_reference(monkeypatch: pytest.MonkeyPatch):
    """Run a callable with jieba's window segmentation uncached (the reference's view)."""
    def run(fn, *args):
        with monkeypatch.context() as patch:
            patch.setattr(matchers, "_window_cuts", matchers._window_cuts.__wrapped__)
            return fn(*args)
    return run


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.none(), texts), min_size=1, max_size=12), queries, st.sampled_from(["exact", "word"]),
       st.booleans())
def test_fast_path_equals_row_by_row_reference(sliced, uncached_reference, values, query, mode, stored):
    frame = pl.DataFrame({"message_id": [str(i) for i in range(len(values))], "text": values},
                         schema={"message_id": pl.String, "text": pl.String})
    if stored:
        frame = add_normalized_column(frame)
    got = search(frame, query, mode=mode)
    expected = uncached_reference(reference, values, query, mode)
    assert list(zip(got["message_id"].to_list(), got["matched_terms"].to_list())) == expected


def test_repeated_texts_share_one_verdict_and_agree(sliced):
    # the per-text verdict cache: a repeated text gives the same verdict on every row
    values = ["今天要加班吗", "增加班级", "今天要加班吗", None, "增加班级", "my password", "all passwords"] * 5
    frame = pl.DataFrame({"message_id": [str(i) for i in range(len(values))], "text": values})
    got = search(frame, "加班 OR password", mode="word")
    assert got["message_id"].to_list() == [r[0] for r in reference(values, "加班 OR password", "word")]
    assert set(got["text"].to_list()) == {"今天要加班吗", "my password", "all passwords"}


def test_slices_give_the_same_mask_as_one_scan(monkeypatch: pytest.MonkeyPatch):
    values = pl.Series([None, "加班费", "", "vpn", "x", "加班", None, "费"] * 7)
    one = values.str.contains("加班费|vpn").fill_null(False)
    for parts in (2, 3, 5):
        monkeypatch.setattr(search_mod, "SPLIT_ROWS", 1)
        monkeypatch.setattr(search_mod, "SPLIT", parts)
        assert search_mod._prefilter(values, "加班费|vpn").to_list() == one.to_list()


def test_adding_words_clears_cached_segmentation():
    matchers._window_cuts("今天要加班吗")
    assert matchers._window_cuts.cache_info().currsize >= 1
    matchers.add_words(["测试词甲乙丙"])
    assert matchers._window_cuts.cache_info().currsize == 0
