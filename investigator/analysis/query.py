"""The search query language: parse a query string into a small AST.

    >>> from investigator.analysis.query import parse
    >>> parse('(加班费 OR "overtime pay") -test')
    And(items=(Or(items=(Term(text='加班费', phrase=False, pos=1), Term(text='overtime pay', phrase=True, pos=8))), Not(item=Term(text='test', phrase=False, pos=25), pos=24)))

Grammar (docs/analysis.md, "Query language")::

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*          # adjacency means AND
    unary   := "NOT" unary | "-" primary | primary
    primary := "(" or ")" | PHRASE | FIELD ":" VALUE | TERM

Operators are upper case (``and``/``or`` in lower case are ordinary words). ``OR`` binds looser
than ``AND``, as in Slack and most search engines. Phrases use ``"..."`` or Chinese quotes ``“...”``.
Fields: ``from:``, ``in:``, ``has:`` (file, image, voice, video, link), ``before:``, ``after:``,
``on:`` (dates ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM`` in the archive's zone); the colon may be full
width (``from：张三``). Any other ``word:`` is an ordinary term.

Every syntax error is a :class:`~investigator.errors.QueryError` with the 0-based character position;
the message names the token kind, never the query text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Union

from investigator.errors import QueryError

FIELDS = ("from", "in", "has", "before", "after", "on")
HAS_VALUES = ("file", "image", "voice", "video", "link")
_OPEN_QUOTES = {'"': '"', "\u201c": "\u201d", "\u300c": "\u300d"}
_CLOSERS = set(_OPEN_QUOTES.values())
_COLONS = (":", "\uff1a")
_PARENS = {"(": "(", "\uff08": "(", ")": ")", "\uff09": ")"}


@dataclass(frozen=True)
class Term:
    """A word or a quoted phrase, as written (normalization happens at search time)."""

    text: str
    phrase: bool
    pos: int


@dataclass(frozen=True)
class Field:
    """A field filter such as ``from:zhang``; dates are parsed to naive local datetimes."""

    name: str
    value: str
    pos: int


@dataclass(frozen=True)
class Not:
    item: "Node"
    pos: int


@dataclass(frozen=True)
class And:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["Node", ...]


Node = Union[Term, Field, Not, And, Or]


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD, PHRASE, FIELD, LPAREN, RPAREN, AND, OR, NOT, MINUS
    value: str
    pos: int
    field: str = ""


def _is_space(ch: str) -> bool:
    return ch.isspace() or ch == "\u200b"


def _read_quoted(query: str, i: int) -> tuple[str, int]:
    """Read a quoted string starting at ``query[i]`` (a quote); return its content and the next index."""
    close = _OPEN_QUOTES[query[i]]
    j = query.find(close, i + 1)
    if j < 0:
        raise QueryError("unterminated quoted phrase", position=i)
    return query[i + 1 : j], j + 1


def _tokenize(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if _is_space(ch):
            i += 1
            continue
        if ch in _PARENS:
            toks.append(_Tok("LPAREN" if _PARENS[ch] == "(" else "RPAREN", ch, i))
            i += 1
            continue
        if ch in _OPEN_QUOTES:
            text, j = _read_quoted(query, i)
            toks.append(_Tok("PHRASE", text, i))
            i = j
            continue
        if ch in _CLOSERS:
            raise QueryError("closing quote without an opening one", position=i)
        if ch == "-" and not toks_ends_word(query, i):
            nxt = query[i + 1] if i + 1 < n else ""
            if nxt and not _is_space(nxt) and nxt not in _PARENS.keys() - {"(", "\uff08"}:
                toks.append(_Tok("MINUS", "-", i))
                i += 1
                continue
        start = i
        while i < n and not _is_space(query[i]) and query[i] not in _PARENS and query[i] not in _OPEN_QUOTES:
            if query[i] in _COLONS:
                name = query[start:i].lower()
                if name in FIELDS:
                    i += 1
                    if i < n and query[i] in _OPEN_QUOTES:
                        value, i = _read_quoted(query, i)
                    else:
                        vstart = i
                        while i < n and not _is_space(query[i]) and query[i] not in _PARENS:
                            i += 1
                        value = query[vstart:i]
                    if not value.strip():
                        raise QueryError(f"field '{name}:' needs a value", position=start)
                    toks.append(_Tok("FIELD", value, start, field=name))
                    break
            i += 1
        else:
            word = query[start:i]
            kind = word if word in ("AND", "OR", "NOT") else "WORD"
            toks.append(_Tok(kind, word, start))
            continue
    return toks


def toks_ends_word(query: str, i: int) -> bool:
    """True when the '-' at ``i`` is inside a word (``e-mail``), not a NOT prefix."""
    return i > 0 and not _is_space(query[i - 1]) and query[i - 1] not in "(\uff08"


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _tokenize(query)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise QueryError("empty query", position=0)
        node = self.parse_or()
        tok = self.peek()
        if tok is not None:
            raise QueryError("unbalanced ')'" if tok.kind == "RPAREN" else "unexpected token", position=tok.pos)
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while (tok := self.peek()) is not None and tok.kind not in ("OR", "RPAREN"):
            if tok.kind == "AND":
                self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("query ends where a term was expected", position=len(self.query))
        if tok.kind == "NOT":
            self.take()
            return Not(self.parse_unary(), tok.pos)
        if tok.kind == "MINUS":
            self.take()
            return Not(self.parse_primary(), tok.pos)
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("query ends where a term was expected", position=len(self.query))
        if tok.kind == "LPAREN":
            self.take()
            node = self.parse_or()
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                raise QueryError("'(' is never closed", position=tok.pos)
            self.take()
            return node
        if tok.kind in ("RPAREN", "AND", "OR"):
            raise QueryError(f"unexpected {tok.kind if tok.kind != 'RPAREN' else chr(41)!s}", position=tok.pos)
        self.take()
        if tok.kind == "FIELD":
            return Field(tok.field, _check_field(tok), tok.pos)
        return Term(tok.value, tok.kind == "PHRASE", tok.pos)


def _check_field(tok: _Tok) -> str:
    value = tok.value.strip()
    if tok.field == "has" and value.lower() not in HAS_VALUES:
        raise QueryError(f"has: takes one of {', '.join(HAS_VALUES)}", position=tok.pos)
    if tok.field in ("before", "after", "on"):
        parse_date(value, tok.pos)
        return value
    return value.lower() if tok.field == "has" else value


def parse_date(value: str, pos: int = 0) -> tuple[datetime, bool]:
    """A date or date-time of a query field, and whether it was a whole day.

    Accepts ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYY-MM-DDTHH:MM[:SS]`` and ``YYYY-MM-DD HH:MM``.
    Raises QueryError naming ``pos`` otherwise.
    """
    text = value.strip().replace("/", "-")
    for fmt, whole_day in (("%Y-%m-%d", True), ("%Y-%m-%dT%H:%M", False), ("%Y-%m-%dT%H:%M:%S", False),
                           ("%Y-%m-%d %H:%M", False), ("%Y-%m-%d %H:%M:%S", False)):
        try:
            return datetime.strptime(text, fmt), whole_day
        except ValueError:
            continue
    raise QueryError("expected a date YYYY-MM-DD or YYYY-MM-DDTHH:MM", position=pos)


def parse(query: str) -> Node:
    """Parse ``query`` into an AST. Raises :class:`~investigator.errors.QueryError` with a position."""
    if not isinstance(query, str):
        raise QueryError("query must be a string", position=0)
    return _Parser(query).parse()


def terms(node: Node, *, negated: bool = False) -> list[tuple[Term, bool]]:
    """Every term of ``node`` with whether it sits under a NOT (odd number of negations)."""
    if isinstance(node, Term):
        return [(node, negated)]
    if isinstance(node, Not):
        return terms(node.item, negated=not negated)
    if isinstance(node, (And, Or)):
        return [t for item in node.items for t in terms(item, negated=negated)]
    return []
