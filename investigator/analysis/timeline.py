"""Timelines: messages and events in one ordered frame, reply delays, silences, statement-to-event gaps.

    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> from investigator.analysis.timeline import first_replies
    >>> utc = lambda h, m: datetime(2026, 11, 18, h, m, tzinfo=timezone.utc)
    >>> msgs = pl.DataFrame({"message_id": ["c1", "a1"], "conversation_id": ["k", "k"],
    ...                      "ts": [utc(6, 35), utc(8, 35)], "sender_id": ["cust", "agent_a"]})
    >>> first_replies(msgs, agents=["agent_a"])["delay_minutes"].to_list()
    [120.0]

All times stay UTC in ``ts``; ``ts_local`` columns show them in the archive's zone (``tz``, Asia/Shanghai
by default). Who is an agent, and which accounts belong to one person, come in as plain arguments
(``agents``, ``identities``) from the org directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

import polars as pl

from investigator.analysis.filters import DEFAULT_TZ, expand_people, people_expr
from investigator.analysis.normalize import normalize_text

TIMELINE_COLUMNS = ("ts", "ts_local", "kind", "lane", "item_id", "conversation_id", "what", "summary",
                    "host", "ip", "outcome")


def _col(frame: pl.DataFrame, name: str, dtype: pl.DataType = pl.String()) -> pl.Expr:
    return pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype)


def timeline(messages: pl.DataFrame | None = None, events: pl.DataFrame | None = None, *,
             tz: str = DEFAULT_TZ) -> pl.DataFrame:
    """Messages and events merged into one frame ordered by time, with a ``lane`` per actor.

    A message's lane is its sender (name, else id); an event's lane is its actor. ``summary`` is the
    message text (or its type when content was not granted) or the event's details. Columns:
    ``TIMELINE_COLUMNS``.
    """
    parts = []
    if messages is not None:
        m = messages
        parts.append(m.select(
            pl.col("ts"), pl.lit("message").alias("kind"),
            pl.coalesce(_col(m, "sender_name"), _col(m, "sender_id")).alias("lane"),
            pl.col("message_id").alias("item_id"), _col(m, "conversation_id").alias("conversation_id"),
            _col(m, "msg_type").alias("what"),
            pl.coalesce(_col(m, "text"), _col(m, "attachment_name"), _col(m, "msg_type")).alias("summary"),
            pl.lit(None, pl.String).alias("host"), pl.lit(None, pl.String).alias("ip"),
            pl.lit(None, pl.String).alias("outcome")))
    if events is not None:
        e = events
        parts.append(e.select(
            pl.col("ts"), pl.lit("event").alias("kind"), _col(e, "actor").alias("lane"),
            pl.col("event_id").alias("item_id"), pl.lit(None, pl.String).alias("conversation_id"),
            _col(e, "event_type").alias("what"), _col(e, "details").alias("summary"),
            _col(e, "host").alias("host"), _col(e, "ip").alias("ip"), _col(e, "outcome").alias("outcome")))
    if not parts:
        raise ValueError("timeline needs messages, events, or both")
    out = pl.concat([p.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC"))) for p in parts], how="vertical")
    out = out.with_columns(pl.col("ts").dt.convert_time_zone(tz).alias("ts_local"))
    return out.sort(["ts", "kind", "item_id"]).select(TIMELINE_COLUMNS)


def first_replies(messages: pl.DataFrame, *, agents: Iterable[str], trigger_ids: Iterable[str] | None = None,
                  identities: Mapping[str, Iterable[str]] | None = None, tz: str = DEFAULT_TZ) -> pl.DataFrame:
    """For each customer message that opens a turn, the first later agent message in its conversation.

    ``agents`` are person ids, account ids or names (expanded through ``identities``). A customer turn
    opens at a non-agent message that follows an agent message or starts the conversation; pass
    ``trigger_ids`` (e.g. the complaint found by search) to measure from those messages instead.
    Columns: conversation_id, message_id, ts, ts_local, sender, reply_id, reply_ts, reply_ts_local,
    replier, delay, delay_minutes (null when never answered).
    """
    wanted = expand_people(agents, identities)
    m = messages.sort(["conversation_id", "ts", "message_id"]).with_columns(
        people_expr(messages, wanted).alias("__agent"),
        pl.coalesce(_col(messages, "sender_name"), _col(messages, "sender_id")).alias("__who"))
    if trigger_ids is not None:
        triggers = m.filter(pl.col("message_id").is_in(list(trigger_ids)))
    else:
        prev_agent = pl.col("__agent").shift(1).over("conversation_id")
        triggers = m.filter(~pl.col("__agent") & (prev_agent.is_null() | prev_agent))
    replies = m.filter(pl.col("__agent")).select(
        "conversation_id", pl.col("ts").alias("reply_ts"), pl.col("message_id").alias("reply_id"),
        pl.col("__who").alias("replier"))
    joined = triggers.sort("ts").join_asof(
        replies.sort("reply_ts"), left_on="ts", right_on="reply_ts", by="conversation_id",
        strategy="forward", allow_exact_matches=False, check_sortedness=False)
    return joined.select(
        "conversation_id", "message_id", "ts", pl.col("ts").dt.convert_time_zone(tz).alias("ts_local"),
        pl.col("__who").alias("sender"), "reply_id", "reply_ts",
        pl.col("reply_ts").dt.convert_time_zone(tz).alias("reply_ts_local"), "replier",
        (pl.col("reply_ts") - pl.col("ts")).alias("delay"),
        ((pl.col("reply_ts") - pl.col("ts")).dt.total_microseconds() / 60e6).alias("delay_minutes"),
    ).sort(["ts", "conversation_id"])


def silences(messages: pl.DataFrame, threshold: timedelta, *, by: str = "conversation_id",
             tz: str = DEFAULT_TZ) -> pl.DataFrame:
    """Gaps longer than ``threshold`` between consecutive messages of each ``by`` group.

    Columns: ``by``, after_id, before_id, start, end, start_local, end_local, duration, minutes.
    """
    m = messages.sort([by, "ts", "message_id"])
    gaps = m.select(
        pl.col(by), pl.col("message_id").alias("after_id"),
        pl.col("message_id").shift(-1).over(by).alias("before_id"), pl.col("ts").alias("start"),
        pl.col("ts").shift(-1).over(by).alias("end"))
    gaps = gaps.with_columns((pl.col("end") - pl.col("start")).alias("duration")).filter(
        pl.col("duration") > threshold)
    return gaps.with_columns(
        pl.col("start").dt.convert_time_zone(tz).alias("start_local"),
        pl.col("end").dt.convert_time_zone(tz).alias("end_local"),
        (pl.col("duration").dt.total_microseconds() / 60e6).alias("minutes"))


def _person_key(values: pl.Expr, identities: Mapping[str, Iterable[str]] | None) -> pl.Expr:
    # Map every account to its person so that a WeCom sender and a VPN login actor can be matched.
    lookup = {normalize_text(a): normalize_text(p) for p, accounts in (identities or {}).items() for a in accounts}
    lookup.update({normalize_text(p): normalize_text(p) for p in (identities or {})})
    normalized = values.map_elements(lambda v: lookup.get(normalize_text(v), normalize_text(v)),
                                     return_dtype=pl.String)
    return normalized


def align_events(messages: pl.DataFrame, events: pl.DataFrame, *, event_types: Iterable[str] | None = None,
                 same_actor: bool = False, identities: Mapping[str, Iterable[str]] | None = None,
                 tolerance: timedelta | None = None, tz: str = DEFAULT_TZ) -> pl.DataFrame:
    """For each event, the nearest message in time, and the difference (event minus message).

    ``event_types`` keeps only those events; ``same_actor`` pairs an event only with messages sent by
    the same person (through ``identities``); ``tolerance`` leaves farther pairs unmatched. Columns:
    event_id, event_ts, event_ts_local, event_type, actor, host, ip, message_id, message_ts,
    message_ts_local, sender, delta, delta_minutes.
    """
    return _align(events, messages, event_types, same_actor, identities, tolerance, tz, events_first=True)


def align_messages(messages: pl.DataFrame, events: pl.DataFrame, *, event_types: Iterable[str] | None = None,
                   same_actor: bool = False, identities: Mapping[str, Iterable[str]] | None = None,
                   tolerance: timedelta | None = None, tz: str = DEFAULT_TZ) -> pl.DataFrame:
    """For each message (a chat statement), the nearest matching event and the difference.

    Same arguments and columns as :func:`align_events`, one row per message.
    """
    return _align(events, messages, event_types, same_actor, identities, tolerance, tz, events_first=False)


def _align(events: pl.DataFrame, messages: pl.DataFrame, event_types: Iterable[str] | None, same_actor: bool,
           identities: Mapping[str, Iterable[str]] | None, tolerance: timedelta | None, tz: str,
           *, events_first: bool) -> pl.DataFrame:
    ev = events if event_types is None else events.filter(pl.col("event_type").is_in(list(event_types)))
    ev = ev.select(pl.col("event_id"), pl.col("ts").alias("event_ts"), _col(ev, "event_type").alias("event_type"),
                   _col(ev, "actor").alias("actor"), _col(ev, "host").alias("host"), _col(ev, "ip").alias("ip"))
    ms = messages.select(pl.col("message_id"), pl.col("ts").alias("message_ts"),
                         pl.coalesce(_col(messages, "sender_name"), _col(messages, "sender_id")).alias("sender"),
                         _col(messages, "sender_id").alias("__sid"))
    by = None
    if same_actor:
        ev = ev.with_columns(_person_key(pl.col("actor").fill_null(""), identities).alias("__who"))
        ms = ms.with_columns(_person_key(pl.col("__sid").fill_null(""), identities).alias("__who"))
        by = "__who"
    left, right, lkey, rkey = (ev, ms, "event_ts", "message_ts") if events_first else (ms, ev, "message_ts", "event_ts")
    joined = left.sort(lkey).join_asof(right.sort(rkey), left_on=lkey, right_on=rkey, by=by,
                                       strategy="nearest", tolerance=tolerance, check_sortedness=False)
    joined = joined.with_columns((pl.col("event_ts") - pl.col("message_ts")).alias("delta"))
    return joined.select(
        "event_id", "event_ts", pl.col("event_ts").dt.convert_time_zone(tz).alias("event_ts_local"),
        "event_type", "actor", "host", "ip", "message_id", "message_ts",
        pl.col("message_ts").dt.convert_time_zone(tz).alias("message_ts_local"), "sender", "delta",
        (pl.col("delta").dt.total_microseconds() / 60e6).alias("delta_minutes"))


def unusual_logins(events: pl.DataFrame, *, min_share: float = 0.2,
                   event_types: Iterable[str] = ("login",)) -> pl.DataFrame:
    """Logins of ``events`` with an ``unusual`` flag: the actor rarely uses that IP.

    An IP is unusual for an actor when it carries less than ``min_share`` of the actor's logins in
    ``events`` (pass a long enough history, e.g. the month before, for a meaningful baseline).
    Adds ``ip_share`` and ``unusual`` columns; only rows of ``event_types`` are returned.
    """
    logins = events.filter(pl.col("event_type").is_in(list(event_types)))
    share = (pl.len().over(["actor", "ip"]) / pl.len().over("actor")).alias("ip_share")
    return logins.with_columns(share).with_columns((pl.col("ip_share") < min_share).alias("unusual")).sort("ts")
