"""The fast table build and the column paths of investigator.textnorm give exactly the reference results."""

from __future__ import annotations

import functools
import hashlib
import unicodedata

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator import textnorm


@functools.lru_cache(maxsize=1)
def reference_tables() -> tuple[dict[int, str], dict[int, str]]:
    """The tables as built before the fast path: every candidate code point through ``_raw_display``."""
    t2s = textnorm._opencc_chars()
    skeleton = textnorm.skeleton_table()
    display: dict[str, str] = {}
    extra = [ord(c) for c in t2s if ord(c) >= 0x20000]
    for cp in textnorm._candidate_codepoints() + extra:
        ch = chr(cp)
        if unicodedata.category(ch) == "Cn":
            continue
        mapped = textnorm._raw_display(ch, t2s, skeleton)
        if mapped != ch:
            display[ch] = mapped

    def resolve(text: str, table: dict[str, str]) -> str:
        for _ in range(8):
            nxt = "".join(table.get(c, c) for c in text)
            if nxt == text:
                return text
            text = nxt
        return text

    display = {k: resolve(v, display) for k, v in display.items()}
    display = {k: v for k, v in display.items() if v != k}
    compact: dict[str, str] = {}
    seps = {chr(cp) for cp in textnorm._candidate_codepoints() if textnorm._is_separator(chr(cp))}
    for ch in set(display) | seps:
        base = display.get(ch, ch)
        compact[ch] = "".join(c for c in base if c not in seps)
    return ({ord(k): v for k, v in display.items()}, {ord(k): v for k, v in compact.items() if v != k})


def fingerprint(display: dict[int, str], compact: dict[int, str]) -> int:
    digest = hashlib.sha256(f"{textnorm.ALGORITHM}\n".encode())
    for table in (display, compact):
        digest.update("\n".join(f"{k:x}\t{table[k]}" for k in sorted(table)).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return int.from_bytes(digest.digest()[:4], "big")


def test_fast_build_equals_the_reference_build() -> None:
    display, compact = textnorm.tables()
    ref_display, ref_compact = reference_tables()
    assert display == ref_display
    assert compact == ref_compact
    assert textnorm.norm_version() == fingerprint(ref_display, ref_compact)


def test_plain_characters_are_left_alone_but_for_t2s() -> None:
    # The fast path's claim, character by character, over every category it lets through.
    t2s = textnorm._opencc_chars()
    skeleton = textnorm.skeleton_table()
    seen: set[str] = set()
    for cp in textnorm._candidate_codepoints():
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category != "Cn" and textnorm._is_plain(ch, category, skeleton):
            seen.add(category)
            assert textnorm._raw_display(ch, t2s, skeleton) == t2s.get(ch, ch), hex(cp)
    # Han, Hangul syllables (NFD splits them, NFC rejoins), symbols, spelling marks, caseless letters
    assert {"Lo", "So", "Mc", "Sm", "Po", "Zs", "Lm", "Nl"} <= seen
    assert textnorm._is_plain("\uac00", "Lo", skeleton) and textnorm._is_plain("加", "Lo", skeleton)
    assert not textnorm._is_plain("\U0001f17f", "So", skeleton)  # enclosed letter P -> p


def test_in_is_any_over_the_ranges() -> None:
    for ranges in (textnorm._EAST_ASIAN, textnorm._SPELLING_MARKS, textnorm._SYMBOL_BLOCKS):
        edges = {x + d for lo, hi in ranges for x in (lo, hi) for d in (-1, 0, 1)}
        for cp in edges | set(range(0, 0x40000, 97)):
            assert textnorm._in(cp, ranges) == any(lo <= cp <= hi for lo, hi in ranges)


TEXTS = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("aA Zz09!?-\u200b\t加費ＶＰＮ🅿аΑé")),
                max_size=30)
ASCII_TEXTS = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=30)


def expected(values: list[str | None]) -> list[str | None]:
    return [None if v is None else v.translate(reference_tables()[1]) for v in values]


def chunked(values: list[str | None], pieces: int) -> pl.DataFrame:
    """A frame whose text column has up to ``pieces`` chunks, as a window read from several files has."""
    size = max(1, -(-len(values) // pieces))
    parts = [pl.DataFrame({"text": values[i:i + size]}, schema={"text": pl.String})
             for i in range(0, len(values), size)] or [pl.DataFrame({"text": []}, schema={"text": pl.String})]
    return pl.concat(parts, rechunk=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS), max_size=12), st.integers(1, 4), st.integers(1, 3))
def test_column_paths_equal_str_translate(values: list[str | None], pieces: int, repeat: int) -> None:
    rows = values * repeat  # repeats let the per-distinct paths run on these small columns too
    for few in (0, 10_000):  # per distinct value in Rust, then in Python
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(textnorm, "_REPEAT_MIN_ROWS", 0)
            patch.setattr(textnorm, "_FEW_DISTINCT", few)
            out = textnorm.add_normalized_column(chunked(rows, pieces))
        assert out["text_norm"].to_list() == expected(rows)
    out = textnorm.add_normalized_column(chunked(rows, pieces))  # the row-by-row path
    assert out["text_norm"].to_list() == expected(rows)
    assert out.select(textnorm.normalize_column_expr())["text"].to_list() == expected(rows)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), ASCII_TEXTS), max_size=12), st.integers(1, 3))
def test_ascii_columns_equal_str_translate(values: list[str | None], pieces: int) -> None:
    # an ASCII-only column uses the ASCII entries of the table alone
    assert textnorm.add_normalized_column(chunked(values, pieces))["text_norm"].to_list() == expected(values)


def test_large_repeated_and_distinct_columns() -> None:
    words = ["Pass\u200bWord", "加/班/費", "ＶＰＮ ok", None, "p\u0430ssword!", "plain ascii, Text."]
    repeated = words * 2_000  # 12,000 rows, 6 distinct: per distinct value
    distinct = [f"{w}{i}" if w else None for i, w in enumerate(repeated)]  # row by row
    for values in (repeated, distinct, [w for w in distinct if w is None or w.isascii()]):
        frame = chunked(values, 5)
        assert textnorm.add_normalized_column(frame)["text_norm"].to_list() == expected(values)
        assert textnorm.normalize_series(frame["text"]).to_list() == expected(values)


def test_non_string_column_behaves_as_before() -> None:
    # not a String column: the expression path, unchanged (Polars refuses a column of dtype Null)
    with pytest.raises(pl.exceptions.InvalidOperationError):
        textnorm.add_normalized_column(pl.DataFrame({"text": [None, None]}))


def test_empty_frame() -> None:
    out = textnorm.add_normalized_column(pl.DataFrame({"text": []}, schema={"text": pl.String}))
    assert out.height == 0 and out.schema["text_norm"] == pl.String
