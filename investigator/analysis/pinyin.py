"""Pinyin mode: homophones, pinyin with or without tones, and mixtures of characters and pinyin.

    >>> from investigator.analysis.normalize import normalize_text
    >>> from investigator.analysis.pinyin import compile_term, spans
    >>> term = compile_term("加班费")
    >>> texts = ("加班费", "加班非", "加ban费", "jia1 ban1 fei4", "JiāBānFèi", "加盘费", "西安", "先")
    >>> [t for t in texts if spans(normalize_text(t), term)]
    ['加班费', '加班非', '加ban费', 'jia1 ban1 fei4', 'JiāBānFèi']
    >>> [t for t in texts if spans(normalize_text(t), compile_term("先"))]
    ['先']

How it works (docs/analysis.md, "Pinyin mode"). A query term becomes one regular expression over the
compact normalized text, run column-wise in Polars (Rust): each of its characters (read in context by
pypinyin: ``银行`` -> yin hang) and each pinyin syllable it spells in Latin letters becomes either one
character that has that reading among its readings (a character class of the homophones, from
pypinyin's dictionary: ``[加家佳嘉…]``) or the syllable typed in letters with an optional tone digit.
So ``加班费`` matches ``加班非`` (same sounds), ``jiabanfei``, ``jia1ban1fei4`` and ``加ban费``, but not
``加盘费`` (pan is another syllable), and ``先`` (xian, one character) does not match ``西安`` (xi + an,
two characters).

Trade-off: homophones raise recall (a word written with other characters of the same sound) and can
lower precision (unrelated words that sound alike); a Latin keyword that spells pinyin syllables
(``men``) also finds the characters with those sounds. That is why this mode is opt-in.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from investigator.analysis.normalize import tables

_TONE_DIGITS = "[1-5]?"
_MAX_SEGMENTATIONS = 16
# Readings that are interjections, not syllables one would type inside a word.
_NOT_TYPED = frozenset({"m", "n", "ng", "hm", "hng"})


def is_han(ch: str) -> bool:
    """True for CJK ideographs."""
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x3FFFF
            or 0xF900 <= cp <= 0xFAFF)


def toneless(reading: str) -> str:
    """A pinyin reading without tone: ``lǜ`` -> ``lv``, ``jiā`` -> ``jia``, ``ńg`` -> ``ng``."""
    decomposed = unicodedata.normalize("NFD", reading.lower()).replace("u\u0308", "v").replace("ü", "v")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=1)
def readings() -> dict[str, tuple[str, ...]]:
    """Every Chinese character pypinyin knows -> its toneless readings (sorted)."""
    from pypinyin.pinyin_dict import pinyin_dict  # local import: a 40k-entry table

    compact = tables()[1]
    out: dict[str, tuple[str, ...]] = {}
    for cp, value in pinyin_dict.items():
        ch = chr(cp)
        if not is_han(ch) or compact.get(cp, ch) != ch:  # traditional forms never reach a compact text
            continue
        out[ch] = tuple(sorted({toneless(r) for r in value.split(",")}))
    return out


@functools.lru_cache(maxsize=1)
def homophones() -> dict[str, frozenset[str]]:
    """Toneless syllable -> the characters that have it among their readings."""
    index: dict[str, set[str]] = {}
    for ch, rs in readings().items():
        for r in rs:
            index.setdefault(r, set()).add(ch)
    return {k: frozenset(v) for k, v in index.items()}


@functools.lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """Syllables a Latin run of a keyword may be split into (typed pinyin)."""
    return frozenset(s for s in homophones() if s.isascii() and s.isalpha() and s not in _NOT_TYPED)


def _typed(syllable: str) -> str:
    # typed: letters (ü typed v or u), then an optional tone digit
    return "".join("(?:v|u)" if c == "v" else re.escape(c) for c in syllable) + _TONE_DIGITS


def _han(syllable: str) -> str:
    # one character with this reading (compact text holds simplified characters only)
    return "[" + "".join(sorted(homophones()[syllable])) + "]"


def _syllable(syllable: str) -> str:
    return f"(?:{_han(syllable)}|{_typed(syllable)})"


def segmentations(run: str, limit: int = _MAX_SEGMENTATIONS) -> list[list[str]]:
    """Ways to split a Latin run (tone digits allowed after syllables) into pinyin syllables, up to ``limit``."""
    inventory = syllables()
    found: list[list[str]] = []

    def walk(i: int, acc: list[str]) -> None:
        if len(found) >= limit:
            return
        if i == len(run):
            found.append(list(acc))
            return
        for j in range(min(len(run), i + 6), i, -1):
            piece = run[i:j]
            if piece in inventory:
                nxt = j + 1 if j < len(run) and run[j] in "12345" else j
                walk(nxt, [*acc, piece])

    walk(0, [])
    return found


@dataclass(frozen=True)
class PinyinTerm:
    """A keyword compiled for pinyin mode: its regex over compact text and literal needles a match contains."""

    term: str
    regex: str
    needles: frozenset[str]
    pattern: re.Pattern[str]


def _units(term: str) -> list[tuple[str, str]]:
    """``term`` cut into ("han", chars) runs, ("latin", letters+tone digits) runs and ("lit", other) runs."""
    units: list[tuple[str, str]] = []
    for ch in term:
        kind = "han" if is_han(ch) and ch in readings() else "latin" if ch.isascii() and (
            ch.isalpha() or (ch in "12345" and units and units[-1][0] == "latin")) else "lit"
        if units and units[-1][0] == kind:
            units[-1] = (kind, units[-1][1] + ch)
        else:
            units.append((kind, ch))
    return units


@functools.lru_cache(maxsize=1024)
def compile_term(term: str) -> PinyinTerm | None:
    """The pinyin-mode form of a compact normalized keyword, or None when pinyin adds nothing to it.

    Needles are a necessary condition in the compact text (one of them is in every match): the typed
    syllable and every character with that reading, for the keyword's rarest sound.
    """
    if not term:
        return None
    from pypinyin import Style, lazy_pinyin  # local import: loads its phrase dictionary

    parts: list[str] = []
    options: list[set[str]] = []  # needles, one set per unit
    sounds = False
    for kind, text in _units(term):
        if kind == "han":
            spelled = [toneless(s) for s in lazy_pinyin(text, style=Style.NORMAL, v_to_u=False, neutral_tone_with_five=False)]
            for ch, syl in zip(text, spelled):
                if syl and syl in homophones():
                    parts.append(_syllable(syl))
                    options.append(set(homophones()[syl]) | _typed_needles(syl))
                    sounds = True
                else:
                    parts.append(re.escape(ch))
                    options.append({ch})
        elif kind == "latin":
            segs = segmentations(text)
            literal = re.escape(text)
            if segs:
                sounds = True
                alternatives = ["".join(_syllable(s) for s in seg) for seg in segs] + [literal]
                parts.append("(?:" + "|".join(dict.fromkeys(alternatives)) + ")")
                first: set[str] = {text}
                for seg in segs:
                    first |= set(homophones().get(seg[0], ())) | _typed_needles(seg[0])
                options.append(first)
            else:
                parts.append(literal)
                options.append({text})
        else:
            parts.append(re.escape(text))
            options.append({text})
    if not sounds:
        return None
    regex = "".join(parts)
    needles = min(options, key=_needle_cost)
    return PinyinTerm(term, regex, frozenset(needles), re.compile(regex))


def _needle_cost(needles: set[str]) -> int:
    # fewer needles pre-filter better; a short Latin needle (a typed "an") matches many texts
    return len(needles) + sum(20 for n in needles if n.isascii() and len(n) <= 2)


def _typed_needles(syllable: str) -> set[str]:
    return {syllable, syllable.replace("v", "u")}


def spans(compact: str, term: PinyinTerm | str) -> list[tuple[int, int]]:
    """``(start, end)`` spans of ``compact`` (a compact normalized text) matching ``term`` in pinyin mode."""
    compiled = compile_term(term) if isinstance(term, str) else term
    if compiled is None or not compact:
        return []
    return [m.span() for m in compiled.pattern.finditer(compact) if m.end() > m.start()]
