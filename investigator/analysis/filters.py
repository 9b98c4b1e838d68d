"""Filters for message frames: time window, people (through linked identities), groups, conversations, types.

    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> from investigator.analysis.filters import time_window, by_senders
    >>> frame = pl.DataFrame({"message_id": ["1", "2"], "sender_id": ["wx_zhang", "u9"],
    ...     "ts": [datetime(2026, 11, 24, 0, 40, tzinfo=timezone.utc), datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)]})
    >>> time_window(frame, "2026-11-24 08:30", "2026-11-24 09:15").height  # Asia/Shanghai by default
    1
    >>> by_senders(frame, ["P001"], identities={"P001": ["wx_zhang", "slack_U1"]})["message_id"].to_list()
    ['1']

Every function returns a frame of the same columns, so filters chain with each other and with
``search`` in either order. People and groups arrive as plain mappings (person -> account ids or names;
group or department -> person ids) supplied by the org directory; this module does not import it.
Name matching is normalized (case, width, spaces), as in search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

import polars as pl

from investigator.analysis.normalize import normalize_text
from investigator.analysis.query import parse_date
from investigator.errors import QueryError

DEFAULT_TZ = "Asia/Shanghai"

TimeLike = datetime | date | str


def to_utc(value: TimeLike, tz: str = DEFAULT_TZ) -> datetime:
    """``value`` as an aware UTC datetime; naive datetimes, dates and strings are read in ``tz``.

    Raises QueryError for a string that is not a date or date-time.
    """
    if isinstance(value, str):
        value = parse_date(value)[0]
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(ZoneInfo("UTC"))


def time_window(frame: pl.DataFrame, start: TimeLike | None = None, end: TimeLike | None = None, *,
                tz: str = DEFAULT_TZ, column: str = "ts") -> pl.DataFrame:
    """Rows with ``start <= ts < end`` (either bound optional), bounds read in ``tz`` when naive."""
    expr = pl.lit(True)
    if start is not None:
        expr = expr & (pl.col(column) >= to_utc(start, tz))
    if end is not None:
        expr = expr & (pl.col(column) < to_utc(end, tz))
    return frame.filter(expr)


def expand_people(people: Iterable[str], identities: Mapping[str, Iterable[str]] | None = None) -> set[str]:
    """Normalized names/ids for ``people``, with every account linked to each person in ``identities``."""
    wanted = {normalize_text(p) for p in people}
    for person, accounts in (identities or {}).items():
        if normalize_text(person) in wanted:
            wanted |= {normalize_text(a) for a in accounts}
    wanted.discard("")
    return wanted


def _values_matching(series: pl.Series, wanted: set[str]) -> list[str]:
    if series.dtype == pl.List(pl.String()):
        series = series.explode()
    return [v for v in series.drop_nulls().unique().to_list() if normalize_text(str(v)) in wanted]


def people_expr(frame: pl.DataFrame, wanted: set[str], *, participants: bool = False) -> pl.Expr:
    """Expression: the sender (or, with ``participants``, also a recipient) is one of ``wanted``."""
    expr = pl.lit(False)
    for col in ("sender_id", "sender_name"):
        if col in frame.columns:
            expr = expr | pl.col(col).is_in(_values_matching(frame[col], wanted)).fill_null(False)
    if participants and "recipients" in frame.columns:
        hits = _values_matching(frame["recipients"], wanted)
        expr = expr | pl.col("recipients").list.eval(pl.element().is_in(hits)).list.any().fill_null(False)
    return expr


def by_senders(frame: pl.DataFrame, people: Iterable[str], *,
               identities: Mapping[str, Iterable[str]] | None = None) -> pl.DataFrame:
    """Messages sent by any of ``people`` (person ids, account ids or names)."""
    return frame.filter(people_expr(frame, expand_people(people, identities)))


def by_participants(frame: pl.DataFrame, people: Iterable[str], *,
                    identities: Mapping[str, Iterable[str]] | None = None,
                    whole_conversations: bool = False) -> pl.DataFrame:
    """Messages sent or received by any of ``people``.

    With ``whole_conversations``, every message of each conversation one of them took part in.
    """
    mask = people_expr(frame, expand_people(people, identities), participants=True)
    if not whole_conversations:
        return frame.filter(mask)
    convs = frame.filter(mask)["conversation_id"].unique()
    return frame.filter(pl.col("conversation_id").is_in(convs.implode()))


def group_members(names: Iterable[str], groups: Mapping[str, Iterable[str]]) -> set[str]:
    """Person ids of the groups or departments ``names`` (normalized lookup).

    Raises QueryError when a name is not in ``groups`` (a typo must not silently select nobody).
    """
    index = {normalize_text(k): k for k in groups}
    members: set[str] = set()
    for name in names:
        key = index.get(normalize_text(name))
        if key is None:
            raise QueryError("unknown group or department (not in the org directory mapping)")
        members |= set(groups[key])
    return members


def by_groups(frame: pl.DataFrame, names: Iterable[str], *, groups: Mapping[str, Iterable[str]],
              identities: Mapping[str, Iterable[str]] | None = None, participants: bool = False) -> pl.DataFrame:
    """Messages sent (or with ``participants``, also received) by members of groups/departments ``names``."""
    people = group_members(names, groups)
    if participants:
        return by_participants(frame, people, identities=identities)
    return by_senders(frame, people, identities=identities)


def by_conversations(frame: pl.DataFrame, conversations: Iterable[str]) -> pl.DataFrame:
    """Messages of the conversations given by id or name (``#general`` and ``general`` both work)."""
    wanted = {normalize_text(c) for c in conversations} - {""}
    expr = pl.lit(False)
    for col in ("conversation_id", "conversation_name"):
        if col in frame.columns:
            expr = expr | pl.col(col).is_in(_values_matching(frame[col], wanted)).fill_null(False)
    return frame.filter(expr)


def by_types(frame: pl.DataFrame, types: Iterable[str]) -> pl.DataFrame:
    """Messages whose ``msg_type`` is one of ``types`` (text, image, voice, video, file, link ...)."""
    return frame.filter(pl.col("msg_type").is_in([t.lower() for t in types]))
