"""The fast table build and the column paths of investigator.textnorm give exactly the reference results."""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator import textnorm
from investigator.errors import ConfigError


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


@functools.lru_cache(maxsize=1)
def built_here() -> tuple[dict[int, str], dict[int, str]]:
    return textnorm.build_tables()


def test_fast_build_equals_the_reference_build() -> None:
    display, compact = built_here()
    ref_display, ref_compact = reference_tables()
    assert display == ref_display
    assert compact == ref_compact


def test_shipped_tables_are_the_rules_built_here() -> None:
    # The file every installation searches with must be what the rules give: a rule, the confusables
    # file or OpenCC changed without `tools/normalization_table.py --write` fails here.
    display, compact, header = textnorm.read_table_file(textnorm.TABLE_FILE)
    if header["unicode"] != unicodedata.unidata_version:
        pytest.skip(f"the shipped tables were built under Unicode {header['unicode']}; this Python has "
                    f"{unicodedata.unidata_version} (CI runs Python 3.11)")
    assert header["opencc"] == textnorm._build_info()["opencc"], "OpenCC changed: rebuild the tables"
    assert (display, compact) == built_here()
    assert textnorm.tables() == (display, compact)
    assert textnorm.norm_version() == header["version"] == fingerprint(display, compact)


def test_the_shipped_version_is_pinned() -> None:
    # Known answer: a new table file is a decision (docs/analysis.md names the version in use).
    assert textnorm.norm_version() == 1710689403
    info = textnorm.norm_info()
    assert (info["unicode"], info["confusables"], info["opencc"]) == ("14.0.0", "18.0.0", "0.1.7")


class _NoUnicodeData:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"unicodedata.{name} used at search time")


def test_searching_builds_nothing_and_reads_no_unicode_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # On another Python (other Unicode tables) or with another OpenCC the searches must stay the same:
    # the tables come from the file, not from this Python's unicodedata or the installed OpenCC.
    expected = textnorm.tables()

    def refuse() -> None:
        raise AssertionError("the tables were built at search time")

    monkeypatch.setattr(textnorm, "unicodedata", _NoUnicodeData())
    monkeypatch.setattr(textnorm, "_opencc_chars", refuse)
    monkeypatch.setattr(textnorm, "build_tables", refuse)
    textnorm._shipped.cache_clear()
    try:
        assert textnorm.tables() == expected
        assert textnorm.normalize_text("加 班 費！ＶＰＮ p\u0430ss") == "加班费vpnpass"
        assert textnorm.display_normalize("Pass\u200bWord") == "password"
    finally:
        textnorm._shipped.cache_clear()


def _edited(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    path = tmp_path / "normalization.json"
    path.write_text(edit(textnorm.TABLE_FILE.read_text(encoding="ascii")), encoding="ascii")
    return path


@pytest.mark.parametrize(("edit", "says"), [
    (lambda s: s.replace('  "41": "a",', '  "41": "b",', 1), "fingerprint"),  # A would fold to b
    (lambda s: s.replace('  "200b": "",', "", 1), "fingerprint"),  # zero-width space no longer ignored
    (lambda s: s.replace('"algorithm": 2,', '"algorithm": 1,', 1), "rules 1"),
    (lambda s: s.replace('"format": "investigator-normalization-tables/1"', '"format": "x"', 1), "'format'"),
    (lambda s: s.replace('  "41": "a",', '  "zz": "a",', 1), "'display' should map hexadecimal code points"),
    (lambda s: s[: len(s) // 2], "cannot be read: JSONDecodeError"),
])
def test_an_edited_or_broken_table_file_is_refused(tmp_path: Path, edit: Callable[[str], str], says: str) -> None:
    path = _edited(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        textnorm.read_table_file(path)
    assert str(path) in str(caught.value) and says in str(caught.value)


def test_a_missing_table_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="normalization tables .*missing"):
        textnorm.read_table_file(tmp_path / "normalization.json")


def test_write_table_file_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textnorm, "build_tables", built_here)
    path = tmp_path / "normalization.json"
    header = textnorm.write_table_file(path)
    display, compact, read_header = textnorm.read_table_file(path)
    assert (display, compact) == built_here() and read_header == header
    text = path.read_bytes()
    assert text.isascii() and not list(tmp_path.glob("*.tmp"))  # every other character escaped; no scratch left
    keys = [line.split('"')[1] for line in text.decode().splitlines() if line.startswith('  "')]
    assert keys[:3] == ["41", "42", "43"]  # one entry per line, by code point


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
