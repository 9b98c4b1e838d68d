"""Per-text matchers behind search's word, fuzzy and pinyin modes, and highlighting spans.

    >>> from investigator.analysis.matchers import word_match, fuzzy_match, pinyin_variants, find_spans
    >>> word_match("今天要加班吗", "加班"), word_match("增加班级", "加班")
    (True, False)
    >>> word_match("reset my password now", "password"), word_match("all passwords", "password")
    (True, False)
    >>> fuzzy_match("my pasword is", "password", 1), pinyin_variants("加班费")
    (True, ['jiabanfei'])
    >>> find_spans("加 班 費 and more", "加班费")
    [(0, 5)]

These run in Python, so search calls them only on candidate rows: rows whose compact normalized text
already contains the term (word mode) or one of its pigeonhole pieces (fuzzy mode). Everything here
takes and compares *compact normalized* strings (normalize.py), so the evasions that normalization
removes are handled once, there.
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any

from investigator.analysis import pinyin as pinyin_mode
from investigator.analysis.normalize import compact_with_offsets, display_normalize, normalize_text, tables
from investigator.analysis.pinyin import is_han

_JIEBA_LOCK = threading.Lock()
_WINDOW = 10  # compact characters segmented on each side of a Chinese occurrence


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    # A private jieba tokenizer, created on first use: importing investigator.analysis stays free of
    # side effects, and the words we add for queries never leak into the caller's jieba.
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    tok.initialize()
    return tok


_ADDED: set[str] = set()


def add_words(words: list[str]) -> None:
    """Add query terms (compact normalized, containing Chinese) to the segmentation dictionary.

    jieba then cuts them out as words where the context allows (see ``word_match``).
    """
    new = [w for w in words if w not in _ADDED and any(is_han(c) for c in w)]
    if not new:
        return
    tok = _tokenizer()
    with _JIEBA_LOCK:
        for w in new:
            tok.add_word(w)
            _ADDED.add(w)
        _window_cuts.cache_clear()  # segmentation depends on the dictionary: verdicts made before are stale


def _occurrences(text: str, term: str) -> Iterator[int]:
    start = text.find(term)
    while start >= 0:
        yield start
        start = text.find(term, start + 1)


@functools.lru_cache(maxsize=1 << 16)
def _window_cuts(window: str) -> frozenset[int]:
    """Word boundaries jieba puts in ``window`` (offsets into it, 0 included).

    Cached per distinct window: chats repeat phrases, so the same ten characters around a term
    come back on many rows, and segmenting them is the costly part of a word-mode check
    (~40 µs). :func:`add_words` clears the cache, since new words change the segmentation.
    """
    cuts = {0}
    pos = 0
    with _JIEBA_LOCK:
        tokens = list(_tokenizer().cut(window, HMM=False))
    for token in tokens:
        pos += len(token)
        cuts.add(pos)
    return frozenset(cuts)


def _han_boundaries(compact: str, start: int, end: int) -> set[int]:
    lo, hi = max(0, start - _WINDOW), min(len(compact), end + _WINDOW)
    return {lo + c for c in _window_cuts(compact[lo:hi])}


@functools.lru_cache(maxsize=1)
def _reshaping() -> re.Pattern[str]:
    """Characters whose compact form may not be exactly one character: the BMP ones that are deleted or
    expanded, as one class (a bitmap in ``re``), and every astral character (checked one by one)."""
    ranges: list[list[int]] = []
    for cp in sorted(k for k, v in tables()[1].items() if len(v) != 1 and k < 0x10000):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    bmp = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return re.compile(f"[{bmp}]|[\\U00010000-\\U0010ffff]")


class _Shifts:
    """The compact-to-original offset map of a text, kept as its deleted and expanded characters only.

    ``shifts[p]`` is ``compact_with_offsets(original)[1][p]``: most characters map to exactly one, so
    between two reshaped characters compact positions follow the original ones at a fixed shift.
    """

    def __init__(self, starts: list[int], origins: list[int], lengths: list[int]) -> None:
        self._starts, self._origins, self._lengths = starts, origins, lengths  # per reshaped character

    def __getitem__(self, pos: int) -> int:
        k = bisect.bisect_right(self._starts, pos) - 1
        if k < 0:
            return pos
        start, origin, length = self._starts[k], self._origins[k], self._lengths[k]
        return origin if pos < start + length else origin + 1 + pos - start - length


def _offset_map(original: str) -> tuple[str, _Shifts]:
    """``compact_with_offsets(original)``, with the offsets as :class:`_Shifts`, without a Python step per character.

    Only the deleted and expanded characters (found by one regex, in C) shift the map. Word mode needs
    it for each Latin candidate whose boundary falls between two letters.
    """
    table = tables()[1]
    starts: list[int] = []
    origins: list[int] = []
    lengths: list[int] = []
    shift = 0  # compact position minus original position, after the characters seen so far
    for found in _reshaping().finditer(original):
        i = found.start()
        mapped = table.get(ord(original[i]))
        if mapped is None or len(mapped) == 1:
            continue
        starts.append(i + shift)
        origins.append(i)
        lengths.append(len(mapped))
        shift += len(mapped) - 1
    return original.translate(table), _Shifts(starts, origins, lengths)


class _Text:
    """A text prepared for boundary checks: compact form plus (lazily) the offset map.

    ``mapped`` is a one-slot cache of ``_offset_map(original)`` that texts built from the same
    original share (one map for all the variants of a term, :func:`word_match_any`); each text still
    makes its own stale check against it, as if it had computed the map itself.
    """

    def __init__(self, original: str, compact: str | None = None,
                 mapped: list[tuple[str, _Shifts]] | None = None) -> None:
        self.original = original
        self.compact = compact if compact is not None else normalize_text(original)
        self._offsets: list[int] | _Shifts | None = None
        self._mapped = mapped if mapped is not None else []

    def separated(self, left: int, right: int) -> bool:
        """True when the original text has a separator between compact positions left and right."""
        if self._offsets is None:
            if not self._mapped:
                self._mapped.append(_offset_map(self.original))
            compact, self._offsets = self._mapped[0]
            if compact != self.compact:  # a stale stored text_norm: trust the original
                self.compact = compact
        a, b = self._offsets[left], self._offsets[right]
        display = tables()[0]
        return any(display.get(ord(c), c) != "" for c in self.original[a + 1 : b])


def _boundary(text: _Text, pos: int, han_cuts: set[int] | None) -> bool:
    compact = text.compact
    if pos <= 0 or pos >= len(compact):
        return True
    left, right = compact[pos - 1], compact[pos]
    if is_han(left) and is_han(right):
        return han_cuts is not None and pos in han_cuts
    if is_han(left) != is_han(right):
        return True  # a change of script is a word boundary
    if not (_is_word_char(left) and _is_word_char(right)):
        return True
    return text.separated(pos - 1, pos)


def _whole_word(text: _Text, start: int, end: int) -> bool:
    compact = text.compact
    needs_han = (start > 0 and is_han(compact[start - 1]) and is_han(compact[start])) or (
        end < len(compact) and is_han(compact[end - 1]) and is_han(compact[end]))
    cuts = _han_boundaries(compact, start, end) if needs_han else None
    return _boundary(text, start, cuts) and _boundary(text, end, cuts)


def word_match(original: str, term: str, compact: str | None = None) -> bool:
    """True when ``term`` (compact normalized) occurs in ``original`` as whole word(s).

    Chinese boundaries come from jieba segmentation of the compact text around the occurrence (with
    the query terms in the dictionary, see :func:`add_words`); Latin, digit and other boundaries from
    separators in the original text or a change of script.
    """
    return _word_match(_Text(original, compact), term)


def _word_match(text: _Text, term: str) -> bool:
    if not term:
        return False
    return any(_whole_word(text, start, start + len(term)) for start in _occurrences(text.compact, term))


def word_match_pinyin(original: str, term: pinyin_mode.PinyinTerm, compact: str | None = None) -> bool:
    """True when a pinyin-mode match of ``term`` in ``original`` is whole word(s) (see :func:`word_match`)."""
    return _word_match_pinyin(_Text(original, compact), term)


def _word_match_pinyin(text: _Text, term: pinyin_mode.PinyinTerm) -> bool:
    for start, end in pinyin_mode.spans(text.compact, term):
        add_words([text.compact[start:end]])
        if _whole_word(text, start, end):
            return True
    return False


def word_match_any(original: str, terms: list[str], compact: str | None = None,
                   pinyin: pinyin_mode.PinyinTerm | None = None) -> bool:
    """``any(word_match(original, t, compact) for t in terms)``, or else ``word_match_pinyin`` of ``pinyin``.

    The same verdict, with the original's offset map (the costly part of a Latin boundary check)
    computed at most once for all of them.
    """
    mapped: list[tuple[str, _Shifts]] = []
    if any(_word_match(_Text(original, compact, mapped), t) for t in terms):
        return True
    return pinyin is not None and _word_match_pinyin(_Text(original, compact, mapped), pinyin)


def edits_for(term: str, thresholds: tuple[tuple[int, int], ...]) -> int:
    """Allowed edits for a compact term: the largest ``edits`` whose ``min_length`` it reaches.

    Chinese terms are matched exactly (edits make little sense on two or three ideographs).
    """
    if any(is_han(c) for c in term):
        return 0
    allowed = 0
    for min_length, edits in sorted(thresholds):
        if len(term) >= min_length:
            allowed = edits
    return allowed


def pieces(term: str, edits: int) -> list[str]:
    """Disjoint pieces of ``term`` one of which any match with at most ``edits`` edits contains exactly.

    An edit spoils at most one piece, a transposition at most two: ``2 * edits + 1`` pieces.
    """
    if edits <= 0:
        return [term]
    n = min(2 * edits + 1, len(term))
    size = len(term) // n
    out = [term[i * size : (i + 1) * size] for i in range(n - 1)]
    out.append(term[(n - 1) * size :])
    return [p for p in out if p]


def fuzzy_match(compact: str, term: str, edits: int) -> bool:
    """True when some substring of ``compact`` is within ``edits`` edits of ``term``.

    Edits are insertions, deletions, substitutions and transpositions of neighbours (optimal string
    alignment), with a free start and end in the text (Sellers' algorithm), O(len(term) * len(text)).
    """
    if edits <= 0:
        return term in compact
    if term in compact:
        return True
    m = len(term)
    before: list[int] | None = None
    prev = list(range(m + 1))
    prev_ch = ""
    for ch in compact:
        cur = [0] * (m + 1)
        for j in range(1, m + 1):
            cost = 0 if term[j - 1] == ch else 1
            best = min(prev[j - 1] + cost, prev[j] + 1, cur[j - 1] + 1)
            if before is not None and j > 1 and term[j - 1] == prev_ch and term[j - 2] == ch:
                best = min(best, before[j - 2] + 1)
            cur[j] = best
        if cur[m] <= edits:
            return True
        before, prev, prev_ch = prev, cur, ch
    return False


def pinyin_variants(term: str) -> list[str]:
    """Pinyin spellings (compact, tone-less) of a compact term that contains Chinese; [] otherwise.

    ``ü`` is spelled both ``v`` and ``u`` (people type either).
    """
    if not any(is_han(c) for c in term):
        return []
    from pypinyin import lazy_pinyin  # local import: loading its dictionaries takes a moment

    spelled = normalize_text("".join(lazy_pinyin(term)))
    variants = [spelled]
    if "v" in spelled:
        variants.append(spelled.replace("v", "u"))
    return [v for v in dict.fromkeys(variants) if v and v != term]


@functools.lru_cache(maxsize=4096)
def inflections(term: str) -> tuple[str, ...]:
    """Compact normalized English inflections of ``term``'s last word (word mode), the term excluded.

    Plural, third person, past, participles and -ing, from lemminflect's lexicon (its rules for words
    it does not know): ``kickback`` -> ``kickbacks``; ``bribe`` -> ``bribed``, ``bribing``;
    ``paid`` -> ``pay``, ``pays``, ``paying``. Derived words and compounds are not inflections
    (``passwordless`` is not a form of ``password``). Terms whose last word is not Latin letters
    give nothing.
    """
    words = [w for w in re.split(r"[^0-9a-z]+", display_normalize(term)) if w]
    if not words or not words[-1].isascii() or not words[-1].isalpha() or len(words[-1]) < 2:
        return ()
    from lemminflect import getAllInflections, getAllInflectionsOOV, getAllLemmas  # local: loads its lexicon

    last = words[-1]
    forms: set[str] = set()
    lemmas = getAllLemmas(last)
    known = {pos: ls for pos, ls in lemmas.items() if pos in ("NOUN", "VERB")}
    if known:
        for pos, ls in known.items():
            for lemma in {last, *ls}:
                for values in getAllInflections(lemma, upos=pos).values():
                    forms.update(values)
    elif not lemmas:  # not in the lexicon: regular inflection rules
        for pos in ("NOUN", "VERB"):
            for values in getAllInflectionsOOV(last, pos).values():
                forms.update(values)
    head = normalize_text(term)[: -len(last)] if normalize_text(term).endswith(last) else None
    if head is None:
        return ()
    out = {head + normalize_text(f) for f in forms if f.isascii() and f.isalpha()}
    out.discard(normalize_text(term))
    return tuple(sorted(out))


def _trailing_ignorables(original: str, end: int) -> int:
    # extend a span over the invisible characters glued to its last character (combining marks,
    # variation selectors, zero-width joiners): they belong to what was matched
    display = tables()[0]
    while end < len(original) and display.get(ord(original[end]), original[end]) == "":
        end += 1
    return end


def find_spans(original: str, term: str, mode: str = "exact", *, pinyin: bool = False) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the original text where ``term`` matches, for highlighting.

    ``term`` is normalized here. ``mode`` "word" keeps only whole-word occurrences (of the term or,
    for an English word, of its inflections); ``pinyin`` adds the pinyin-mode matches (homophones,
    pinyin, mixtures). A span runs from the first to the last original character of the match,
    covering whatever was ignored inside it (spaces, punctuation, zero-width characters, marks) and
    the invisible characters glued to its end. Spans index ``original`` (Python string indices,
    end exclusive), sorted, without overlaps.
    """
    needle = normalize_text(term)
    if not needle or not original:
        return []
    compact, offsets = compact_with_offsets(original)
    text = _Text(original, compact)
    text._offsets = offsets
    variants = [needle, *(inflections(term) if mode == "word" else ())]
    found: list[tuple[int, int]] = []
    for variant in variants:
        found += [(s, s + len(variant)) for s in _occurrences(compact, variant)]
    if pinyin:
        compiled = pinyin_mode.compile_term(needle)
        if compiled is not None:
            found += pinyin_mode.spans(compact, compiled)
    spans_out: list[tuple[int, int]] = []
    for start, end in sorted(set(found)):
        if mode == "word":
            han = any(is_han(c) for c in compact[start:end])
            if han:
                add_words([compact[start:end]])
            cuts = _han_boundaries(compact, start, end) if han else None
            if not (_boundary(text, start, cuts) and _boundary(text, end, cuts)):
                continue
        spans_out.append((offsets[start], _trailing_ignorables(original, offsets[end - 1] + 1)))
    merged: list[tuple[int, int]] = []
    for start, end in spans_out:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def fold_pattern(pattern: str) -> str:
    """A regex folded like display-normalized text: its non-ASCII literals mapped when they map to one
    character (traditional -> simplified, look-alikes, full width); ASCII (the regex syntax) as written."""
    display = tables()[0]
    return "".join(display.get(ord(c), c) if not c.isascii() and len(display.get(ord(c), c)) == 1 else c
                   for c in pattern)


def regex_spans(original: str, pattern: str) -> list[tuple[int, int]]:
    """Spans of ``original`` where ``pattern`` (regex mode) matches its display-normalized form.

    The match runs on the text search saw (case folded, look-alikes and invisibles resolved) and is
    mapped back to the original characters. Python's ``re`` stands in for the Rust engine: a pattern
    it cannot compile gives no spans.
    """
    display = tables()[0]
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(original):
        mapped = display.get(ord(ch), ch)
        chars.append(mapped)
        offsets.extend([i] * len(mapped))
    shown = "".join(chars)
    try:
        matches = [m.span() for m in re.finditer(fold_pattern(pattern), shown, flags=re.IGNORECASE)]
    except re.error:
        return []
    return [(offsets[a], _trailing_ignorables(original, offsets[b - 1] + 1)) for a, b in matches if b > a]
