"""Search normalization: one character table, used the same way for texts and query terms.

Lives below the archive (pure Polars, no package imports but errors) because
ingest stores the normalized text once, encrypted beside the text; the analysis
layer re-exports it as ``investigator.analysis.normalize``.

    >>> from investigator.textnorm import normalize_text, display_normalize
    >>> normalize_text("加 班 費！") == normalize_text("加/班/费") == "加班费"
    True
    >>> normalize_text("ＶＰＮ") , display_normalize("Pass\u200bWord 2")
    ('vpn', 'password 2')

Rules (docs/analysis.md, "Normalization"), applied character by character:

1. NFKC (full-width letters and digits, circled numbers, ligatures ...);
2. case folding (``str.casefold``);
3. Latin diacritics dropped (``é`` -> ``e``, pinyin ``jiā`` -> ``jia``), so composed and
   decomposed input agree;
4. traditional -> simplified Chinese, character level (OpenCC's ``TSCharacters`` table);
5. format characters (zero-width space/joiner, BOM, bidi marks, variation selectors) removed;
6. in the *compact* form only: separators removed — spaces of every kind (including U+3000), punctuation,
   symbols, control characters.

The *compact* form (:func:`normalize_text`, column ``text_norm``) is what exact search matches
substrings in: ``加 班 费``, ``加/班/费`` and ``加\u200b班\u200b费`` all become ``加班费``. The
*display* form (:func:`display_normalize`) keeps separators; regex mode and word-boundary checks use it.

Because every rule is a per-character mapping resolved to a fixed point when the table is built,
normalization is idempotent, and the Polars path (``str.replace_many`` with the same table, run in
Rust) gives exactly the same strings as the Python path (``str.translate``).
The tables are built lazily on first use (about half a second), never at import.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import polars as pl

from investigator.errors import ContentNotGranted

NORM_COLUMN = "text_norm"

# Unicode general categories that separate rather than spell: removed between the characters of a term.
_SEPARATOR_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
                                   "Sm", "Sc", "Sk", "So", "Cc"})
# Invisible characters used to split words without showing it: removed in every form.
_FORMAT_CATEGORIES = frozenset({"Cf"})
_EXTRA_INVISIBLE = {0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x180B, 0x180C, 0x180D, 0x180E, 0x180F}
_VARIATION_SELECTORS = [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
# Combining diacritical marks: dropped so that "café" and "cafe\u0301" and "cafe" agree.
_COMBINING_DIACRITICS = range(0x0300, 0x0370)


def require_text(frame: pl.DataFrame | pl.LazyFrame, what: str, column: str = "text") -> None:
    """Raise :class:`ContentNotGranted` unless ``frame`` has ``column`` (or its normalized form)."""
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    if column not in names and not (column == "text" and NORM_COLUMN in names):
        raise ContentNotGranted(what)


def _opencc_chars() -> dict[str, str]:
    """Traditional -> simplified characters from the installed OpenCC dictionary (first candidate)."""
    import opencc  # local import: only when tables are built

    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and len(parts[0]) == 1:
            first = parts[1].split(" ")[0]
            if len(first) == 1 and first != parts[0]:
                table[parts[0]] = first
    return table


def _strip_diacritics(text: str) -> str:
    # NFD then drop combining diacritics, only for characters that decompose to a Latin/Greek/Cyrillic
    # base: Japanese dakuten (U+3099) and Hangul are left alone.
    out = []
    for ch in text:
        decomposed = unicodedata.normalize("NFD", ch)
        if len(decomposed) > 1 and ord(decomposed[0]) < 0x0530:
            decomposed = "".join(c for c in decomposed if ord(c) not in _COMBINING_DIACRITICS)
            out.append(unicodedata.normalize("NFC", decomposed))
        else:
            out.append(ch)
    return "".join(out)


def _raw_display(ch: str, t2s: dict[str, str]) -> str:
    text = unicodedata.normalize("NFKC", ch).casefold()
    text = unicodedata.normalize("NFKC", text)
    text = _strip_diacritics(text)
    out = []
    for c in text:
        cp = ord(c)
        if (unicodedata.category(c) in _FORMAT_CATEGORIES or cp in _EXTRA_INVISIBLE
                or cp in _COMBINING_DIACRITICS or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF):
            continue
        out.append(t2s.get(c, c))
    return "".join(out)


def _is_separator(ch: str) -> bool:
    return unicodedata.category(ch) in _SEPARATOR_CATEGORIES


def _candidate_codepoints() -> list[int]:
    # Everything assigned in the planes people write in; the CJK extension planes only hold
    # ideographs, of which only the compatibility block (2F800-2FA1F) and OpenCC entries map.
    cps = [cp for cp in range(0x0, 0x20000) if not 0xD800 <= cp <= 0xDFFF]
    cps += list(range(0x2F800, 0x2FA20)) + _VARIATION_SELECTORS[16:] + [0xE0001, *range(0xE0020, 0xE0080)]
    return cps


@functools.lru_cache(maxsize=1)
def tables() -> tuple[dict[int, str], dict[int, str]]:
    """The (display, compact) translation tables: codepoint -> replacement ("" deletes).

    Only characters that change are present. Both are resolved to a fixed point, so translating
    twice equals translating once.
    """
    t2s = _opencc_chars()
    display: dict[str, str] = {}
    extra = [ord(c) for c in t2s if ord(c) >= 0x20000]
    for cp in _candidate_codepoints() + extra:
        ch = chr(cp)
        if unicodedata.category(ch) == "Cn":
            continue
        mapped = _raw_display(ch, t2s)
        if mapped != ch:
            display[ch] = mapped

    def resolve(text: str, table: dict[str, str]) -> str:
        for _ in range(8):  # chains are short (e.g. full-width letter -> upper -> lower)
            nxt = "".join(table.get(c, c) for c in text)
            if nxt == text:
                return text
            text = nxt
        return text

    display = {k: resolve(v, display) for k, v in display.items()}
    display = {k: v for k, v in display.items() if v != k}
    compact: dict[str, str] = {}
    seps = {chr(cp) for cp in _candidate_codepoints() if _is_separator(chr(cp))}
    for ch in set(display) | seps:
        base = display.get(ch, ch)
        compact[ch] = "".join(c for c in base if c not in seps)
    return ({ord(k): v for k, v in display.items()}, {ord(k): v for k, v in compact.items() if v != k})


def normalize_text(text: str) -> str:
    """The compact normalized form of ``text`` (see the module docstring). Never raises on a str."""
    return text.translate(tables()[1])


def display_normalize(text: str) -> str:
    """``text`` normalized but with separators kept (for regexes and word boundaries)."""
    return text.translate(tables()[0])


def compact_with_offsets(text: str) -> tuple[str, list[int]]:
    """The compact form of ``text`` and, for each of its characters, the index in ``text`` it came from.

    Used to turn a match in the compact form back into a span of the original text (highlighting).
    """
    table = tables()[1]
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        mapped = table.get(ord(ch), ch)
        chars.append(mapped)
        offsets.extend([i] * len(mapped))
    return "".join(chars), offsets


def _expr_with(expr: pl.Expr, table: dict[int, str]) -> pl.Expr:
    # Aho-Corasick over single characters, leftmost-first: identical to str.translate.
    keys = [chr(k) for k in table]
    return expr.str.replace_many(keys, list(table.values()))


def normalize_column_expr(column: str = "text") -> pl.Expr:
    """A Polars expression computing the compact normalized form of ``column`` (nulls stay null)."""
    return _expr_with(pl.col(column), tables()[1])


def display_column_expr(column: str = "text") -> pl.Expr:
    """A Polars expression computing the display-normalized form of ``column``."""
    return _expr_with(pl.col(column), tables()[0])


def normalize_series(values: pl.Series) -> pl.Series:
    """The compact form of each value, computed once per distinct value in Python (``str.translate``)."""
    table = tables()[1]
    uniques = values.unique()
    mapped = pl.Series([None if v is None else v.translate(table) for v in uniques.to_list()], dtype=pl.String)
    lookup = pl.DataFrame({"__k": uniques, "__v": mapped})
    return values.to_frame("__k").join(lookup, on="__k", how="left", maintain_order="left", nulls_equal=True)["__v"].alias(values.name)


def add_normalized_column(frame: pl.DataFrame, column: str = "text", *, name: str = NORM_COLUMN) -> pl.DataFrame:
    """``frame`` with ``name`` (default ``text_norm``) holding the compact normalized ``column``.

    Meant to be computed once at ingest and stored beside the text. Raises :class:`ContentNotGranted`
    when ``column`` is missing.
    """
    if column not in frame.columns:
        raise ContentNotGranted("normalization")
    return frame.with_columns(normalize_column_expr(column).alias(name))

