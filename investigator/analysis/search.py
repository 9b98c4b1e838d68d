"""Keyword search over message frames: query language, four modes, normalization, matched terms.

    >>> import polars as pl
    >>> from investigator.analysis import search
    >>> frame = pl.DataFrame({"message_id": ["1", "2", "3"],
    ...                       "text": ["加 班 費怎么算", "增加班级", "reset the ＶＰＮ password"]})
    >>> search(frame, "加班费 OR vpn")["matched_terms"].to_list()
    [['加班费'], ['vpn']]
    >>> search(frame, "加班", mode="word")["message_id"].to_list()
    []

How a search runs (docs/analysis.md, "Search"): the query is parsed (query.py); every term is
normalized like the texts (normalize.py). Rows are first narrowed in Rust with a single regex
alternation of the literals that any match must contain, over the compact normalized column
(``text_norm`` when the frame has it and its ``text_norm_version`` is current; recomputed otherwise).
A large frame is scanned (and, without a current ``text_norm``, normalized) in slices on both cores.
Only those candidates go through the per-term checks: substring (exact), segmentation and word
boundaries (word, once per distinct text; an English term also as its inflections), edit distance
(fuzzy); with
``pinyin=True`` also the term's sound regex (homophone classes, typed syllables; pinyin.py). Field
filters (``from:``, ``in:``, ``has:``, ``before:``, ``after:``, ``on:``) are plain Polars expressions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from investigator.analysis import matchers
from investigator.analysis import pinyin as pinyin_mode
from investigator.analysis.normalize import (
    NORM_COLUMN, ContentNotGranted, display_column_expr, normalize_column_expr, normalize_text, stored_norm_current,
)
from investigator.analysis.query import And, Field, Node, Not, Or, Term, parse, parse_date, terms
from investigator.errors import QueryError

MODES = ("exact", "word", "fuzzy", "regex")
DEFAULT_FUZZY = ((5, 1), (9, 2))
DEFAULT_TZ = "Asia/Shanghai"
MATCHED = "matched_terms"
VARIANTS = "matched_variants"
_LINK = r"(?i)(https?://|www\.)"
# The pre-filter scans frames of SPLIT_ROWS rows or more in SPLIT slices on as many threads (both cores).
SPLIT = max(1, min(4, os.cpu_count() or 1))
SPLIT_ROWS = 200_000


class _Compiled:
    """One distinct query term: its normalized forms and the flag column it is evaluated into.

    ``variants`` are literal compact strings (the term; in word mode its English inflections; in fuzzy
    pinyin mode its full pinyin spellings); ``pinyin`` is the pinyin-mode regex over the compact text
    (pinyin.py), None without ``pinyin=True`` or when the term has no sound to match.
    """

    def __init__(self, term: Term, index: int, mode: str, pinyin: bool, fuzzy: tuple[tuple[int, int], ...]) -> None:
        self.term = term
        self.column = f"__t{index}"
        self.norm = normalize_text(term.text)
        if not self.norm:
            raise QueryError("term has no searchable characters (only spaces, punctuation or symbols)",
                             position=term.pos)
        extra: list[str] = []
        if mode == "word":
            extra += matchers.inflections(term.text)
        if mode == "fuzzy" and pinyin:
            extra += matchers.pinyin_variants(self.norm)
        self.variants = list(dict.fromkeys([self.norm, *extra]))
        self.edits = [matchers.edits_for(v, fuzzy) if mode == "fuzzy" else 0 for v in self.variants]
        self.pinyin = pinyin_mode.compile_term(self.norm) if pinyin else None

    def needles(self) -> list[str]:
        """Literal strings at least one of which a matching compact text must contain."""
        out = [p for v, k in zip(self.variants, self.edits) for p in matchers.pieces(v, k)]
        return out + sorted(self.pinyin.needles) if self.pinyin is not None else out


def _alternation(needles: Iterable[str]) -> str:
    # One regex alternation of literals: Rust's regex compiles it to Aho-Corasick / Teddy, which beat
    # contains_any and one contains() per term (measured, docs/benchmarks.md ("Search")).
    ordered = sorted(set(needles), key=lambda s: (-len(s), s))
    return "|".join(re.escape(n) for n in ordered)


def _in_slices(values: pl.Series, fn: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``fn(values)``, computed on ``SPLIT`` slices of a large column on as many threads (both cores).

    A case's rows come in partition order, so each slice holds whole days; Polars' string kernels
    release the GIL, and one column's ``str.contains`` or ``str.replace_many`` runs on one core.
    The result equals one call's (the slices are concatenated in order); ``fn`` must be row-wise.
    """
    parts = SPLIT if values.len() >= SPLIT_ROWS else 1
    if parts == 1:
        return fn(values)
    size = -(-values.len() // parts)
    slices = [values.slice(i * size, size) for i in range(parts)]
    with ThreadPoolExecutor(parts) as pool:
        outs = list(pool.map(fn, slices))
    out = outs[0]
    for more in outs[1:]:
        out = out.append(more)
    return out


def _prefilter(norm: pl.Series, alternation: str) -> pl.Series:
    """Which rows contain one of the needles: one pass of one regex alternation over the compact text."""
    return _in_slices(norm, lambda part: part.str.contains(alternation).fill_null(False))


def _required(node: Node, compiled: dict[tuple[str, bool], _Compiled]) -> set[str] | None:
    """Needles one of which every matching row contains, or None when no such set exists."""
    if isinstance(node, Term):
        return set(compiled[(node.text, node.phrase)].needles())
    if isinstance(node, And):
        sets = [s for s in (_required(i, compiled) for i in node.items) if s is not None]
        return min(sets, key=len) if sets else None
    if isinstance(node, Or):
        union: set[str] = set()
        for item in node.items:
            sub = _required(item, compiled)
            if sub is None:
                return None
            union |= sub
        return union
    return None  # NOT and field filters guarantee no term


def _local_to_utc(value: datetime, tz: str) -> datetime:
    return value.replace(tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


def _match_names(frame: pl.DataFrame, columns: Iterable[str], wanted: set[str]) -> pl.Expr:
    """Rows whose value in any of ``columns`` normalizes to one of ``wanted``.

    Normalizes each distinct value once (names repeat on millions of rows).
    """
    expr = pl.lit(False)
    for col in columns:
        if col not in frame.columns:
            continue
        dtype = frame.schema[col]
        if dtype == pl.List(pl.String()):
            values = frame[col].explode().drop_nulls().unique().to_list()
            hits = [v for v in values if normalize_text(v) in wanted]
            expr = expr | pl.col(col).list.eval(pl.element().is_in(hits)).list.any().fill_null(False)
        else:
            values = frame[col].drop_nulls().unique().to_list()
            hits = [v for v in values if normalize_text(str(v)) in wanted]
            expr = expr | pl.col(col).is_in(hits).fill_null(False)
    return expr


def _field_expr(frame: pl.DataFrame, field: Field, tz: str,
                identities: Mapping[str, Iterable[str]] | None) -> pl.Expr:
    value = field.value
    if field.name in ("from", "in"):
        wanted = {normalize_text(value)}
        if field.name == "from" and identities:
            for person, accounts in identities.items():
                if normalize_text(person) in wanted:
                    wanted |= {normalize_text(a) for a in accounts}
        wanted.discard("")
        cols = ("sender_id", "sender_name") if field.name == "from" else ("conversation_id", "conversation_name")
        return _match_names(frame, cols, wanted)
    if field.name == "has":
        return _has_expr(frame, value)
    moment, whole_day = parse_date(value, field.pos)
    if "ts" not in frame.columns:
        raise QueryError(f"{field.name}: needs a 'ts' column in the frame", position=field.pos)
    start = _local_to_utc(moment, tz)
    if field.name == "before":
        return pl.col("ts") < start
    if field.name == "after":  # Slack: after:DATE means from the next day on
        return pl.col("ts") >= (_local_to_utc(moment + timedelta(days=1), tz) if whole_day else start)
    end = _local_to_utc(moment + (timedelta(days=1) if whole_day else timedelta(minutes=1)), tz)
    return (pl.col("ts") >= start) & (pl.col("ts") < end)


def _has_expr(frame: pl.DataFrame, value: str) -> pl.Expr:
    cols = frame.columns
    msg_type = pl.col("msg_type") if "msg_type" in cols else pl.lit(None, pl.String)
    att_type = pl.col("attachment_type") if "attachment_type" in cols else pl.lit(None, pl.String)
    att_name = pl.col("attachment_name") if "attachment_name" in cols else pl.lit(None, pl.String)
    prefix = {"image": "image", "voice": "audio", "video": "video"}
    if value == "file":
        expr = (msg_type == "file") | att_name.is_not_null()
    elif value == "link":
        expr = msg_type == "link"
        if "text" in cols:
            expr = expr | pl.col("text").str.contains(_LINK)
    else:
        expr = (msg_type == value) | att_type.str.starts_with(prefix[value])
    return expr.fill_null(False)


def _to_expr(node: Node, compiled: dict[tuple[str, bool], _Compiled], fields: dict[int, pl.Expr]) -> pl.Expr:
    if isinstance(node, Term):
        return pl.col(compiled[(node.text, node.phrase)].column)
    if isinstance(node, Field):
        return fields[id(node)]
    if isinstance(node, Not):
        return ~_to_expr(node.item, compiled, fields)
    parts = [_to_expr(i, compiled, fields) for i in node.items]
    out = parts[0]
    for p in parts[1:]:
        out = (out & p) if isinstance(node, And) else (out | p)
    return out


def _fields(node: Node) -> list[Field]:
    if isinstance(node, Field):
        return [node]
    if isinstance(node, Not):
        return _fields(node.item)
    if isinstance(node, (And, Or)):
        return [f for i in node.items for f in _fields(i)]
    return []


def _norm_series(frame: pl.DataFrame, column: str) -> pl.Series:
    """The compact normalized text of ``frame`` (the stored column when current; else computed, in slices)."""
    expr = _norm_expr(frame, column)
    if column == "text" and stored_norm_current(frame):
        return frame[NORM_COLUMN].alias("__norm")
    return _in_slices(frame[column], lambda part: part.to_frame(column).select(expr)[:, 0]).alias("__norm")


def _norm_expr(frame: pl.DataFrame, column: str) -> pl.Expr:
    # a stored text_norm only when made by this normalization (its version column says so);
    # otherwise it is recomputed from the text, never reused as it is
    if column == "text" and stored_norm_current(frame):
        return pl.col(NORM_COLUMN)
    if column not in frame.columns:
        if column == "text" and NORM_COLUMN in frame.columns:
            raise ContentNotGranted("keyword search: the stored text_norm was made by another normalization "
                                    "version and the text to recompute it is not loaded")
        raise ContentNotGranted("keyword search")
    return normalize_column_expr(column)


def _exact_expr(term: _Compiled) -> pl.Expr:
    """Substring of a literal variant, or a match of the sound regex (pinyin mode), over ``__norm``."""
    literal = [pl.col("__norm").str.contains(v, literal=True) for v in term.variants]
    sounds = [pl.col("__norm").str.contains(term.pinyin.regex)] if term.pinyin is not None else []
    return pl.any_horizontal(literal + sounds).fill_null(False)


def _word_flags(cand: pl.DataFrame, compiled: list[_Compiled], column: str) -> list[pl.Series]:
    """Whether each candidate row matches each term in word mode (``__norm`` present), one flag per term.

    Only substring hits can be word hits: every term's substring flags come from one ``select`` (as in
    exact mode), the texts are read out once, and each term segments its own hit rows alone. A verdict
    depends on the text alone (its compact form is a function of it): once per distinct text and term.
    """
    if column not in cand.columns:
        raise ContentNotGranted("word search")
    exact = cand.select([_exact_expr(c).alias(c.column) for c in compiled])
    rows_of = [exact[c.column].arg_true().to_list() for c in compiled]
    # only the rows some term hits are read out (a query without a required term, "a OR NOT b", leaves every row a
    # candidate: reading them all into Python would cost seconds and gigabytes on a large frame)
    hit_rows = sorted(set().union(*rows_of))
    at = {row: k for k, row in enumerate(hit_rows)}
    originals: list[str] = cand[column].gather(hit_rows).to_list() if hit_rows else []
    compacts: list[str] = cand["__norm"].gather(hit_rows).to_list() if hit_rows else []
    out = []
    for term, rows in zip(compiled, rows_of):
        known: dict[str, bool] = {}
        true_rows = []
        for i in rows:
            original = originals[at[i]]
            verdict = known.get(original)
            if verdict is None:
                verdict = known[original] = matchers.word_match_any(original, term.variants, compacts[at[i]],
                                                                    term.pinyin)
            if verdict:
                true_rows.append(i)
        flags = pl.zeros(cand.height, dtype=pl.Boolean, eager=True).alias(term.column)
        out.append(flags.scatter(true_rows, True) if true_rows else flags)
    return out


def _flags(cand: pl.DataFrame, term: _Compiled) -> pl.Series:
    """Whether each candidate row matches ``term`` in fuzzy mode (``__norm`` present)."""
    sounds = [pl.col("__norm").str.contains(term.pinyin.regex)] if term.pinyin is not None else []
    # pigeonhole pieces first, then edit distance on the rows that have one
    pieces = pl.any_horizontal([pl.col("__norm").str.contains(p, literal=True)
                                for v, k in zip(term.variants, term.edits) for p in matchers.pieces(v, k)])
    has_piece = cand.select(pieces.fill_null(False))[:, 0].to_list()
    sound = cand.select(pl.any_horizontal(sounds).fill_null(False))[:, 0].to_list() if sounds else [False] * cand.height
    out = []
    for ok, by_sound, compact in zip(has_piece, sound, cand["__norm"].to_list()):
        out.append(bool(by_sound) or (bool(ok) and any(
            matchers.fuzzy_match(compact, v, k) for v, k in zip(term.variants, term.edits))))
    return pl.Series(out, dtype=pl.Boolean)


def _variants(compiled: list[_Compiled]) -> pl.Expr:
    """The distinct pieces of each hit's compact text that matched a term (in Rust: ``extract_all``).

    Shown in pinyin mode, where they tell which spelling matched: ``加班非``, ``jia1ban1fei4``.
    """
    parts = []
    for c in compiled:
        alternatives = [re.escape(v) for v in c.variants] + ([c.pinyin.regex] if c.pinyin is not None else [])
        found = pl.col("__norm").str.extract_all("|".join(f"(?:{a})" for a in alternatives))
        parts.append(pl.when(pl.col(c.column)).then(found).otherwise(pl.lit([], dtype=pl.List(pl.String))))
    return pl.concat_list(parts).list.unique(maintain_order=True).fill_null([]).alias(VARIANTS)


def _matched_terms(hits: pl.DataFrame, positive: list[_Compiled]) -> pl.Series:
    """Each hit's ``matched_terms``: the text of every term in ``positive`` whose flag column is true, in order.

    The flags are packed into bit codes (63 terms per UInt64 column) and each distinct combination's list
    is built once, then joined back in row order: a few distinct combinations cover all hits, and building
    a list per row from one ``when/then`` column per term cost ~15 ms per 5,000 hits with 20 terms.
    """
    groups = [positive[i : i + 63] for i in range(0, len(positive), 63)]
    keys = [f"__m{g}" for g in range(len(groups))]
    codes = hits.select([
        pl.sum_horizontal([pl.col(c.column).fill_null(False).cast(pl.UInt64) * pl.lit(1 << bit, dtype=pl.UInt64)
                           for bit, c in enumerate(group)]).alias(key)
        for key, group in zip(keys, groups)])
    distinct = codes.unique()
    lists = [[c.term.text for key, group in zip(keys, groups) for bit, c in enumerate(group) if row[key] >> bit & 1]
             for row in distinct.iter_rows(named=True)]
    table = distinct.with_columns(pl.Series(MATCHED, lists, dtype=pl.List(pl.String)))
    return codes.join(table, on=keys, how="left", maintain_order="left", nulls_equal=True)[MATCHED]


def _regex_search(frame: pl.DataFrame, pattern: str, column: str) -> pl.DataFrame:
    if column not in frame.columns:
        raise ContentNotGranted("regex search")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise QueryError("invalid regular expression", position=exc.pos) from None
    # Texts are case-folded and simplified by display normalization: fold the pattern's Chinese the
    # same way and match case-insensitively, so the regex applies "as given" to what the reader sees.
    # Non-ASCII literals of the pattern are folded like the text (traditional -> simplified, look-alikes,
    # full width) when they map to one character; ASCII (the regex syntax) is left as written.
    folded = matchers.fold_pattern(pattern)
    try:
        mask = frame.select(display_column_expr(column).str.contains(f"(?i){folded}").fill_null(False))[:, 0]
    except pl.exceptions.ComputeError:
        raise QueryError("regular expression not supported by the search engine", position=0) from None
    hits = frame.filter(mask)
    return hits.with_columns(pl.lit([pattern], dtype=pl.List(pl.String)).alias(MATCHED))


def search(frame: pl.DataFrame, query: str, *, mode: str = "exact", column: str = "text", pinyin: bool = False,
           tz: str = DEFAULT_TZ, identities: Mapping[str, Iterable[str]] | None = None,
           fuzzy_edits: tuple[tuple[int, int], ...] = DEFAULT_FUZZY) -> pl.DataFrame:
    """Rows of ``frame`` matching ``query``, in their order, with a ``matched_terms`` list column.

    ``mode`` is "exact" (substring after normalization), "word" (whole words), "fuzzy" (edits per
    ``fuzzy_edits``: (min_length, edits) pairs) or "regex" (the whole query is one regular expression,
    matched case-insensitively against the display-normalized text). ``pinyin`` lets terms match by sound:
    homophones, pinyin with or without tones, mixtures of characters and pinyin (pinyin.py); the
    result then has a ``matched_variants`` list column with the pieces of each (compact normalized)
    text that matched. Dates in ``before:``/``after:``/``on:`` are read in ``tz``. ``identities``
    (person -> account ids/names) lets ``from:PERSON`` cover every linked account.

    Raises QueryError (with the position) for a malformed query or an unknown mode, and
    ContentNotGranted when the query has terms but the frame has no text.
    """
    if mode not in MODES:
        raise QueryError(f"unknown search mode; use one of {', '.join(MODES)}", position=None)
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if mode == "regex":
        return _regex_search(frame, query, column)
    ast = parse(query)
    compiled: dict[tuple[str, bool], _Compiled] = {}
    for term, _neg in terms(ast):
        key = (term.text, term.phrase)
        if key not in compiled:
            compiled[key] = _Compiled(term, len(compiled), mode, pinyin, fuzzy_edits)
    if compiled and column not in frame.columns and not (column == "text" and NORM_COLUMN in frame.columns):
        raise ContentNotGranted("keyword search")
    field_exprs = {id(f): _field_expr(frame, f, tz, identities) for f in _fields(ast)}

    cand = frame
    if compiled:
        cand = cand.with_columns(_norm_series(frame, column))
        required = _required(ast, compiled)
        every = list(compiled.values())
        if required:
            cand = cand.filter(_prefilter(cand["__norm"], _alternation(required)))
        if mode == "exact":  # one pass, every term's flag in parallel
            cand = cand.with_columns([_exact_expr(c).alias(c.column) for c in every])
        elif mode == "word":  # every term into jieba's dictionary at once: one reset of the segmentation cache
            matchers.add_words([v for c in every for v in c.variants])
            cand = cand.with_columns(_word_flags(cand, every, column))
        else:
            cand = cand.with_columns([_flags(cand, c).alias(c.column) for c in every])
    hits = cand.filter(_to_expr(ast, compiled, field_exprs))
    positive_keys = {(t.text, t.phrase) for t, neg in terms(ast) if not neg}
    positive = [c for key, c in compiled.items() if key in positive_keys]
    hits = hits.with_columns(_matched_terms(hits, positive) if positive
                             else pl.lit([], dtype=pl.List(pl.String)).alias(MATCHED))
    if pinyin and positive:
        hits = hits.with_columns(_variants(positive))
    return hits.drop([c for c in hits.columns if c == "__norm" or c.startswith("__t")])
