"""Search normalization: one character table, used the same way for texts and query terms.

Lives below the archive (pure Polars, no package imports but errors) because
the loader adds the normalized text to every granted load; the analysis
layer re-exports it as ``investigator.analysis.normalize``.

    >>> from investigator.textnorm import normalize_text, display_normalize
    >>> normalize_text("加 班 費！") == normalize_text("加/班/费") == "加班费"
    True
    >>> normalize_text("ＶＰＮ") , display_normalize("Pass\u200bWord 2")
    ('vpn', 'password 2')
    >>> normalize_text("p\u0430ssword"), normalize_text("P\u0391SSWORD"), normalize_text("corn") == normalize_text("com")
    ('password', 'password', False)

Rules (docs/analysis.md, "Normalization"), applied character by character:

1. NFKC (full-width letters and digits, circled and parenthesized letters, Kangxi radicals, ligatures ...),
   plus the enclosed Latin letters NFKC leaves alone (``🅿`` NEGATIVE SQUARED LATIN CAPITAL LETTER P -> ``p``,
   read from the character's Unicode name) and digits of every script (``٣`` -> ``3``);
2. the confusables skeleton of Unicode TS #39 (``data/confusables.txt``, its version in
   :func:`norm_info`), applied only to non-ASCII letters and digits outside the East Asian scripts,
   and only where the prototype is a Latin letter or an ASCII digit: Cyrillic ``а`` and Greek ``Α``
   become ``a``. ASCII is never remapped (``corn`` stays apart from ``com``, ``I0`` from ``10``) nor
   are Han characters (``囗`` stays apart from ``口``);
3. case folding (``str.casefold``);
4. diacritics dropped (``é`` -> ``e``, pinyin ``jiā`` -> ``jia``), so composed and decomposed input agree;
5. traditional -> simplified Chinese, character level (OpenCC's ``TSCharacters`` table);
6. invisible characters removed in every form: format characters (zero-width space/joiner, soft
   hyphen, word joiner, BOM, bidi controls, tags), variation selectors, combining marks (except the
   vowel signs of the Indic and Southeast Asian scripts and the kana voicing marks, which spell);
7. in the *compact* form only: separators removed — spaces of every kind (including U+3000), line
   breaks, punctuation, symbols (emoji and arrows included, also those newer than this Python's
   Unicode tables), control characters.

The *compact* form (:func:`normalize_text`, column ``text_norm``) is what exact search matches
substrings in: ``加 班 费``, ``加/班/费`` and ``加\u200b班\u200b费`` all become ``加班费``. The
*display* form (:func:`display_normalize`) keeps separators; regex mode and word-boundary checks use it.

Because every rule is a per-character mapping resolved to a fixed point when the table is built,
normalization is idempotent, and the Polars path (``str.replace_many`` with the same table, run in
Rust) gives exactly the same strings as the Python path (``str.translate``).

The tables are built from the rules by :func:`build_tables`, which depends on the Python that runs it
(its Unicode database), on the confusables file and on OpenCC's dictionary. So that a search matches
the same messages on every machine and Python version (a reviewer re-running a report gets the
investigator's hits), the package ships the tables built once (``data/normalization.json``, read by
:func:`tables` on first use, ~0.02 s, never at import) and never builds them at run time;
``tools/normalization_table.py --write`` rebuilds the file after a rule, the confusables file or
OpenCC changes, and tests/unit/test_textnorm.py fails while the shipped file differs from the rules.
:func:`norm_version` fingerprints the tables, :func:`add_normalized_column` stores the fingerprint
beside ``text_norm`` (column ``text_norm_version``), and :func:`stored_norm_current` /
:func:`ensure_normalized` refuse to reuse a ``text_norm`` made under another version or without one
(an older archive): it is recomputed from the text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import polars as pl

from investigator.errors import ConfigError, ContentNotGranted

NORM_COLUMN = "text_norm"
NORM_VERSION_COLUMN = "text_norm_version"
# Revision of the rules below; bump it when a rule changes (the fingerprint also covers the data).
# 1: rules of 2026-11 (NFKC, case, diacritics, traditional, format characters, separators);
# 2: + confusables skeleton, all combining marks, enclosed letters, digits of every script.
ALGORITHM = 2
DATA_DIR = Path(__file__).parent / "data"
CONFUSABLES_FILE = DATA_DIR / "confusables.txt"
# The tables as shipped (built by build_tables, written by write_table_file) and the layout of that file.
TABLE_FILE = DATA_DIR / "normalization.json"
TABLE_FORMAT = "investigator-normalization-tables/1"

# Unicode general categories that separate rather than spell: removed between the characters of a term.
_SEPARATOR_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
                                   "Sm", "Sc", "Sk", "So", "Cc"})
# Blocks of symbols and emoji: their code points not yet assigned in this Python's Unicode tables
# (newer emoji) are separators too.
_SYMBOL_BLOCKS = ((0x2190, 0x2BFF), (0x1F000, 0x1FBFF))
# Invisible characters used to split words without showing it: removed in every form.
_FORMAT_CATEGORIES = frozenset({"Cf"})
_MARK_CATEGORIES = frozenset({"Mn", "Me"})
_EXTRA_INVISIBLE = {0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x180B, 0x180C, 0x180D, 0x180E, 0x180F}
_VARIATION_SELECTORS = [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
# Combining marks that spell rather than decorate: kept.
_SPELLING_MARKS = ((0x0900, 0x0DFF), (0x0E00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3099, 0x309A))
# East Asian scripts (Han, kana, Hangul, bopomofo, Yi, CJK symbols and compatibility forms): never
# given a confusables skeleton.
_EAST_ASIAN = ((0x1100, 0x11FF), (0x2E80, 0xA4CF), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF),
               (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x16FE0, 0x18DFF), (0x1B000, 0x1B2FF), (0x1F200, 0x1F2FF),
               (0x20000, 0x3FFFF))
_ENCLOSED_LETTER = re.compile(r"^(?:NEGATIVE )?(?:SQUARED|CIRCLED|PARENTHESIZED) LATIN (?:CAPITAL|SMALL) LETTER ([A-Z])$")


def _in(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    for lo, hi in ranges:  # a plain loop: any() over a generator costs twice as much, ~100,000 calls a build
        if lo <= cp <= hi:
            return True
    return False


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


def confusables_version() -> str:
    """The Unicode version of the shipped confusables file (its ``# Version:`` header line)."""
    with CONFUSABLES_FILE.open(encoding="utf-8-sig") as fh:
        for line in fh:
            if line.startswith("# Version:"):
                return line.split(":", 1)[1].strip()
            if not line.startswith("#"):
                break
    raise ConfigError(f"{CONFUSABLES_FILE} has no '# Version:' header")


def read_confusables(path: Path = CONFUSABLES_FILE) -> dict[str, str]:
    """UTS #39 ``confusables.txt``: source character -> prototype string (all of it, unfiltered)."""
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        fields = [f.strip() for f in data.split(";")]
        if len(fields) < 2 or " " in fields[0]:
            continue
        table[chr(int(fields[0], 16))] = "".join(chr(int(cp, 16)) for cp in fields[1].split())
    return table


def _is_mark_dropped(c: str) -> bool:
    cp = ord(c)
    return unicodedata.category(c) in _MARK_CATEGORIES and not _in(cp, _SPELLING_MARKS)


def _is_invisible(c: str) -> bool:
    cp = ord(c)
    return (unicodedata.category(c) in _FORMAT_CATEGORIES or cp in _EXTRA_INVISIBLE or _is_mark_dropped(c)
            or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF)


def _strip_diacritics(text: str) -> str:
    # NFD, drop the combining marks that decorate (not the kana voicing marks nor Indic vowel signs),
    # recompose: "é" -> "e", "が" stays "が", Hangul syllables stay whole.
    out = []
    for ch in text:
        decomposed = unicodedata.normalize("NFD", ch)
        if len(decomposed) > 1:
            kept = "".join(c for c in decomposed if not _is_mark_dropped(c))
            out.append(unicodedata.normalize("NFC", kept) if kept else "")
        else:
            out.append(ch)
    return "".join(out)


def _is_latin_prototype(text: str) -> bool:
    return bool(text) and all(
        (c.isascii() and c.isalnum()) or (c.isalpha() and unicodedata.name(c, "").startswith("LATIN "))
        for c in text)


@functools.lru_cache(maxsize=1)
def skeleton_table() -> dict[str, str]:
    """The part of the UTS #39 skeleton search applies: character -> its Latin / ASCII look-alike.

    Only non-ASCII letters and digits outside the East Asian scripts, and only where the prototype,
    normalized like search text (case folded, diacritics dropped), is Latin letters or ASCII digits.
    """
    confusables = read_confusables()
    # UTS #39 gives capital I the prototype l (they look alike); a capital look-alike of I (Greek Ι,
    # Cyrillic І) stands for I among capitals, so it maps to i, as "I" does after case folding.
    capitals = {confusables[x]: x for x in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if x in confusables}
    table: dict[str, str] = {}
    for src, proto in confusables.items():
        cp = ord(src)
        if cp < 0x80 or _in(cp, _EAST_ASIAN) or unicodedata.category(src)[0] not in "LN":
            continue
        if unicodedata.category(src) == "Lu" and proto in capitals:
            proto = capitals[proto]
        target = unicodedata.normalize("NFKC", proto).casefold()
        target = "".join(c for c in _strip_diacritics(target) if not _is_invisible(c))
        if _is_latin_prototype(target) and target != src:
            table[src] = target
    return table


def _fold_char(c: str, skeleton: dict[str, str]) -> str:
    """Rules 1-2 for one character already NFKC-normalized."""
    cp = ord(c)
    if cp < 0x80:
        return c
    category = unicodedata.category(c)
    if category == "Nd" or (category == "No" and unicodedata.digit(c, None) is not None
                            and not _in(cp, _EAST_ASIAN)):
        return str(unicodedata.digit(c))
    if category == "So":
        enclosed = _ENCLOSED_LETTER.match(unicodedata.name(c, ""))
        if enclosed:
            return enclosed.group(1).lower()
    return skeleton.get(c, c)


def _raw_display(ch: str, t2s: dict[str, str], skeleton: dict[str, str]) -> str:
    text = unicodedata.normalize("NFKC", ch)
    text = "".join(_fold_char(c, skeleton) for c in text)
    text = unicodedata.normalize("NFKC", text.casefold())
    text = _strip_diacritics(text)
    return "".join(t2s.get(c, c) for c in text if not _is_invisible(c))


def _is_separator(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in _SEPARATOR_CATEGORIES or (category == "Cn" and _in(ord(ch), _SYMBOL_BLOCKS))


def _candidate_codepoints() -> list[int]:
    # Everything assigned in the planes people write in; the CJK extension planes only hold
    # ideographs, of which only the compatibility block (2F800-2FA1F) and OpenCC entries map.
    cps = [cp for cp in range(0x0, 0x20000) if not 0xD800 <= cp <= 0xDFFF]
    cps += list(range(0x2F800, 0x2FA20)) + _VARIATION_SELECTORS[16:] + [0xE0001, *range(0xE0020, 0xE0080)]
    return cps


# Categories in which _raw_display may change a character that NFKC, case folding and NFD leave alone
# and that has no skeleton: digits (rule 1) and invisibles (rule 6). ``So`` is checked by name (rule 1).
_NOT_PLAIN_CATEGORIES = frozenset({"Nd", "No"}) | _FORMAT_CATEGORIES | _MARK_CATEGORIES


def _is_plain(ch: str, category: str, skeleton: dict[str, str]) -> bool:
    """True when rules 1-4 and 6 leave ``ch`` alone, decided mostly by C calls; then
    ``_raw_display(ch)`` is ``t2s.get(ch, ch)`` (rule 5). ASCII goes the slow way.

    Step by step through :func:`_raw_display` for such a character: NFKC keeps it; :func:`_fold_char`
    returns it (not ASCII, not ``Nd`` / ``No``, an ``So`` that is not an enclosed letter, no skeleton);
    case folding keeps it, so NFKC after it does too; :func:`_strip_diacritics` keeps it, because NFD
    keeps it, or because NFD splits it into characters of which none is a mark (nothing dropped) and
    NFC puts it back; :func:`_is_invisible` is false (not Cf / Mn / Me, not an extra invisible, not a
    variation selector). Hangul syllables are the bulk of the second NFD case.
    """
    cp = ord(ch)
    if (cp < 0x80 or category in _NOT_PLAIN_CATEGORIES or cp in _EXTRA_INVISIBLE
            or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF or ch in skeleton
            or ch.casefold() != ch or not unicodedata.is_normalized("NFKC", ch)):
        return False
    if category == "So" and _ENCLOSED_LETTER.match(unicodedata.name(ch, "")):
        return False
    if unicodedata.is_normalized("NFD", ch):
        return True
    decomposed = unicodedata.normalize("NFD", ch)
    return (unicodedata.is_normalized("NFC", ch)
            and not any(unicodedata.category(c) in _MARK_CATEGORIES for c in decomposed))


def _resolve(text: str, table: dict[str, str]) -> str:
    for _ in range(8):  # chains are short (e.g. full-width letter -> upper -> lower)
        nxt = "".join(table.get(c, c) for c in text)
        if nxt == text:
            return text
        text = nxt
    return text


Tables = tuple[dict[int, str], dict[int, str]]


@functools.lru_cache(maxsize=1)
def tables() -> Tables:
    """The (display, compact) translation tables: codepoint -> replacement ("" deletes).

    Only characters that change are present. Both are resolved to a fixed point, so translating
    twice equals translating once.

    Read once per process from the package's ``data/normalization.json`` (:data:`TABLE_FILE`, ~0.02 s),
    the tables :func:`build_tables` made from the rules when the file was written; building them here
    would make the result depend on this Python's Unicode database and the installed OpenCC.
    The file ships inside the package, installed with its code and as trusted as it; it is not a cache
    that another process or user could write (a ``~/.cache`` file could drop a look-alike or make a
    letter ignorable, and a search would miss the messages that use it without any sign).

    Raises :class:`~investigator.errors.ConfigError` naming the file when it is missing, not the
    tables of this :data:`ALGORITHM`, or does not match the fingerprint recorded in it.
    """
    display, compact, _header = _shipped()
    return display, compact


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[dict[int, str], dict[int, str], dict[str, object]]:
    return read_table_file(TABLE_FILE)


def _fingerprint(display: dict[int, str], compact: dict[int, str]) -> int:
    digest = hashlib.sha256(f"{ALGORITHM}\n".encode())
    for table in (display, compact):
        digest.update("\n".join(f"{k:x}\t{table[k]}" for k in sorted(table)).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return int.from_bytes(digest.digest()[:4], "big")


def read_table_file(path: Path) -> tuple[dict[int, str], dict[int, str], dict[str, object]]:
    """The (display, compact) tables of a file :func:`write_table_file` wrote, and its header.

    The header holds what the tables were built from (``algorithm``, ``unicode``, ``confusables``,
    ``opencc``) and their fingerprint (``version``). Raises
    :class:`~investigator.errors.ConfigError` naming ``path`` when the file is missing or not JSON,
    is not in :data:`TABLE_FORMAT`, was built for another :data:`ALGORITHM`, has a table that is not
    hexadecimal code points to strings, or whose tables do not give the recorded fingerprint.
    """
    hint = "reinstall the package (a developer rebuilds the file with tools/normalization_table.py --write)"
    try:
        loaded = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"the search normalization tables {path} are missing", hint=hint) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the search normalization tables {path} cannot be read: {type(exc).__name__}",
                          hint=hint) from None
    if not isinstance(loaded, dict) or loaded.get("format") != TABLE_FORMAT:
        raise ConfigError(f"{path}: not a normalization table file (field 'format' should be {TABLE_FORMAT!r})",
                          hint=hint)
    if loaded.get("algorithm") != ALGORITHM:
        raise ConfigError(f"{path}: tables of normalization rules {loaded.get('algorithm')!r}; this code's rules "
                          f"are {ALGORITHM}", hint=hint)
    built: list[dict[int, str]] = []
    for name in ("display", "compact"):
        table = loaded.get(name)
        try:
            if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
                raise ValueError(name)
            built.append({int(k, 16): v for k, v in table.items()})
        except ValueError:
            raise ConfigError(f"{path}: field {name!r} should map hexadecimal code points to strings",
                              hint=hint) from None
    display, compact = built
    if _fingerprint(display, compact) != loaded.get("version"):
        raise ConfigError(f"{path}: the tables do not give the fingerprint recorded in field 'version' "
                          f"(the file was changed after it was written)", hint=hint)
    header = {k: v for k, v in loaded.items() if k not in ("display", "compact")}
    return display, compact, header


def write_table_file(path: Path = TABLE_FILE) -> dict[str, object]:
    """Build the tables from the rules (:func:`build_tables`) and write them to ``path``; returns the header.

    A maintenance step, run after a rule, the confusables file or OpenCC changes
    (``tools/normalization_table.py --write``): the file is what every installation searches with.
    One entry per line, ASCII only (every other character escaped), sorted by code point, so a change
    reads as a diff. Written to a temporary file beside ``path`` and renamed over it.
    """
    display, compact = build_tables()
    header: dict[str, object] = {"format": TABLE_FORMAT, **_build_info(), "version": _fingerprint(display, compact)}
    lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
    for name, table in (("display", display), ("compact", compact)):
        entries = ",\n".join(f"  {json.dumps(format(k, 'x'))}: {json.dumps(table[k])}" for k in sorted(table))
        lines.append(f"{json.dumps(name)}: {{\n{entries}\n}}" + ("," if name == "display" else ""))
    lines.append("}")
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text("\n".join(lines) + "\n", encoding="ascii")
    os.replace(scratch, path)
    return header


def _build_info() -> dict[str, object]:
    """What :func:`build_tables` here depends on besides the rules (recorded in the table file)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        opencc_version = version("opencc-python-reimplemented")
    except PackageNotFoundError:  # pragma: no cover - installed with the package
        opencc_version = "unknown"
    return {"algorithm": ALGORITHM, "unicode": unicodedata.unidata_version, "confusables": confusables_version(),
            "opencc": opencc_version}


def build_tables() -> Tables:
    """Build the (display, compact) tables from the rules, with this Python's Unicode data and OpenCC.

    Used to write the shipped file (:func:`write_table_file`) and by the tests that hold it to the
    rules; searches use :func:`tables`. ~0.15 s (0.30 s before the fast path; docs/benchmarks.md,
    "Normalization tables"): of the ~86,000 assigned candidate code points, the ~75,000 that
    :func:`_is_plain` clears (Han, Hangul, symbols, most letters of other scripts) take only a
    traditional -> simplified look-up; the other ~11,000 go through :func:`_raw_display`, the rules
    themselves. The result is the same as running every code point through ``_raw_display``:
    tests/unit/test_textnorm.py keeps that reference build and compares the whole tables.
    """
    t2s = _opencc_chars()
    skeleton = skeleton_table()
    category = unicodedata.category
    display: dict[str, str] = {}
    seps: set[str] = set()

    def add(ch: str, cat: str) -> None:
        mapped = t2s.get(ch) if _is_plain(ch, cat, skeleton) else _raw_display(ch, t2s, skeleton)
        if mapped is not None and mapped != ch:
            display[ch] = mapped

    for cp in _candidate_codepoints():
        ch = chr(cp)
        cat = category(ch)
        # _is_separator, with the category looked up once
        if cat in _SEPARATOR_CATEGORIES or (cat == "Cn" and _in(cp, _SYMBOL_BLOCKS)):
            seps.add(ch)
        if cat != "Cn":
            add(ch, cat)
    for ch in t2s:
        if ord(ch) >= 0x20000 and category(ch) != "Cn":
            add(ch, category(ch))

    display = {k: _resolve(v, display) for k, v in display.items()}
    display = {k: v for k, v in display.items() if v != k}
    compact: dict[str, str] = {}
    for ch in set(display) | seps:
        base = display.get(ch, ch)
        compact[ch] = "".join(c for c in base if c not in seps)
    return ({ord(k): v for k, v in display.items()}, {ord(k): v for k, v in compact.items() if v != k})


@functools.lru_cache(maxsize=1)
def norm_version() -> int:
    """Fingerprint (32 bits) of the normalization tables in use: the rules' revision and the tables.

    Computed from the tables themselves, so tables built from other Unicode data, confusables or
    OpenCC give another version even if nobody bumped :data:`ALGORITHM`. The shipped tables make
    it the same on every Python.
    """
    return _fingerprint(*tables())


def norm_info() -> dict[str, str | int]:
    """What the normalization in use was built from (for reports, provenance and docs).

    ``unicode``, ``confusables`` and ``opencc`` are the versions the shipped tables were built with
    (this Python's own Unicode version does not change a search).
    """
    header = _shipped()[2]
    return {"algorithm": ALGORITHM, "unicode": str(header.get("unicode")),
            "confusables": str(header.get("confusables")), "opencc": str(header.get("opencc")),
            "version": norm_version()}


def normalize_text(text: str) -> str:
    """The compact normalized form of ``text`` (see the module docstring). Never raises on a str."""
    return text.translate(tables()[1])


def display_normalize(text: str) -> str:
    """``text`` normalized but with separators kept (for regexes and word boundaries)."""
    return text.translate(tables()[0])


def is_ignorable(ch: str) -> bool:
    """True for a character that disappears in every form (invisible: format, mark, selector)."""
    return tables()[0].get(ord(ch), ch) == ""


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


@functools.lru_cache(maxsize=64)
def normalize_column_expr(column: str = "text") -> pl.Expr:
    """A Polars expression computing the compact normalized form of ``column`` (nulls stay null)."""
    return _expr_with(pl.col(column), tables()[1])


@functools.lru_cache(maxsize=64)
def display_column_expr(column: str = "text") -> pl.Expr:
    """A Polars expression computing the display-normalized form of ``column``."""
    return _expr_with(pl.col(column), tables()[0])


def normalize_series(values: pl.Series) -> pl.Series:
    """The compact form of each value, computed once per distinct value in Python (``str.translate``)."""
    return _per_distinct(values, values.unique(), lambda uniques: _translate_in_python(uniques, tables()[1]))


def _translate_in_python(values: pl.Series, table: dict[int, str]) -> pl.Series:
    return pl.Series([None if v is None else v.translate(table) for v in values.to_list()], dtype=pl.String)


def _per_distinct(values: pl.Series, uniques: pl.Series,
                  translate: Callable[[pl.Series], pl.Series]) -> pl.Series:
    lookup = pl.DataFrame({"__k": uniques, "__v": translate(uniques)})
    return values.to_frame("__k").join(lookup, on="__k", how="left", maintain_order="left", nulls_equal=True)["__v"].alias(values.name)


def _translate_column(values: pl.Series, table: dict[int, str]) -> pl.Series:
    """``str.translate(table)`` of every value of the String Series ``values``, in Rust (``str.replace_many``).

    A Series method, not an expression: inside ``with_columns`` Polars builds the Aho-Corasick
    automaton (~22,000 patterns, ~40 ms) once per chunk of the column, and a loaded window has
    a chunk per file (0.5-1.5 s for 30 files); the Series method builds it once. A column of
    ASCII only (byte length = character length in every row) needs only the ASCII entries of
    the table, whose automaton costs nothing to build: no other entry can match there.
    """
    if (values.str.len_bytes() == values.str.len_chars()).all():  # all() skips nulls: ASCII or null
        table = {k: v for k, v in table.items() if k < 0x80}
    return values.str.replace_many([chr(k) for k in table], list(table.values()))


# Normalize per distinct value when a column has at most a quarter as many distinct values as rows
# (the join back costs ~30 ms per 400,000 rows); the distinct values go through str.translate when
# there are few of them (~3 us each, against ~40 ms to build the automaton of the whole table).
_REPEAT_MIN_ROWS = 10_000
_REPEAT_RATIO = 4
_FEW_DISTINCT = 5_000


def _compact_column(values: pl.Series) -> pl.Series:
    """The compact form of the String Series ``values``: per distinct value when they repeat, else per row.

    Every path gives what :func:`normalize_text` gives for each value (tests/unit/test_textnorm.py).
    """
    table = tables()[1]
    # ~1,000 evenly spaced rows decide cheaply whether counting every distinct value may pay
    sample = values.gather_every(max(1, values.len() // 1000))
    if values.len() >= _REPEAT_MIN_ROWS and sample.n_unique() * 2 <= sample.len():
        uniques = values.unique()
        if uniques.len() * _REPEAT_RATIO <= values.len():
            if uniques.len() <= _FEW_DISTINCT:
                return _per_distinct(values, uniques, lambda u: _translate_in_python(u, table))
            return _per_distinct(values, uniques, lambda u: _translate_column(u, table))
    return _translate_column(values, table).alias(values.name)


def version_column(name: str = NORM_COLUMN) -> str:
    """The column holding the normalization version of the normalized column ``name``."""
    return NORM_VERSION_COLUMN if name == NORM_COLUMN else f"{name}_version"


def add_normalized_column(frame: pl.DataFrame, column: str = "text", *, name: str = NORM_COLUMN) -> pl.DataFrame:
    """``frame`` with ``name`` (default ``text_norm``) holding the compact normalized ``column``.

    Also adds ``text_norm_version`` (:func:`norm_version`, UInt32), so that a column computed under
    another normalization is recognised and recomputed, never reused. Replaces both when present.
    Raises :class:`ContentNotGranted` when ``column`` is missing.
    """
    if column not in frame.columns:
        raise ContentNotGranted("normalization")
    if frame.schema[column] == pl.String:
        normalized: pl.Expr | pl.Series = _compact_column(frame[column]).alias(name)
    else:  # not text (a column of nulls, say): whatever the expression makes of it, as before
        normalized = normalize_column_expr(column).alias(name)
    return frame.with_columns(normalized, pl.lit(norm_version(), dtype=pl.UInt32).alias(version_column(name)))


def stored_norm_current(frame: pl.DataFrame, name: str = NORM_COLUMN) -> bool:
    """True when ``frame`` has ``name`` made by this very normalization (its version column says so).

    False for a frame without the column, without its version column (an older archive or a column
    made by hand) or with any row of another version.
    """
    vcol = version_column(name)
    if name not in frame.columns or vcol not in frame.columns:
        return False
    versions = frame[vcol]
    if versions.null_count() or not versions.dtype.is_integer():
        return False
    return frame.height == 0 or bool((versions == norm_version()).all())


def ensure_normalized(frame: pl.DataFrame, column: str = "text", *, name: str = NORM_COLUMN) -> pl.DataFrame:
    """``frame`` with a current ``text_norm``: kept when :func:`stored_norm_current`, recomputed otherwise.

    Raises :class:`~investigator.errors.ConfigError` when the stored column is stale and ``column`` is
    not there to recompute it from.
    """
    if stored_norm_current(frame, name):
        return frame
    if column not in frame.columns:
        if name in frame.columns:
            raise ConfigError(f"{name!r} was made by another version of the search normalization and the "
                              f"frame has no {column!r} to recompute it from",
                              hint=f"load the {column!r} column too (the normalization is recomputed from it)")
        raise ContentNotGranted("normalization")
    return add_normalized_column(frame, column, name=name)

