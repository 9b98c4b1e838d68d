"""Metrics: response times per agent and conversation, an activity heatmap, who-talks-to-whom edges.

    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> from investigator.analysis.metrics import activity_heatmap, contact_edges
    >>> frame = pl.DataFrame({"message_id": ["1", "2"], "conversation_id": ["k", "k"], "sender_id": ["a", "b"],
    ...     "recipients": [["b"], ["a"]],
    ...     "ts": [datetime(2026, 11, 24, 0, 40, tzinfo=timezone.utc), datetime(2026, 11, 24, 0, 50, tzinfo=timezone.utc)]})
    >>> activity_heatmap(frame).filter(pl.col("count") > 0).rows()  # Tuesday 08:00 in Shanghai
    [(2, 8, 2)]
    >>> contact_edges(frame).rows()
    [('a', 'b', 'person', 1), ('b', 'a', 'person', 1)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

import polars as pl

from investigator.analysis.filters import DEFAULT_TZ
from investigator.analysis.timeline import first_replies


def response_times(messages: pl.DataFrame, *, agents: Iterable[str], target: timedelta | None = None,
                   identities: Mapping[str, Iterable[str]] | None = None,
                   by: tuple[str, ...] = ("replier", "conversation_id")) -> pl.DataFrame:
    """Reply delays (see :func:`~investigator.analysis.timeline.first_replies`) summarized per ``by``.

    Columns: the ``by`` columns, replies, median_minutes, p90_minutes, max_minutes and, with a
    ``target``, breaches (replies slower than target) and unanswered (customer turns never answered,
    counted per conversation only when ``by`` has no replier).
    """
    delays = first_replies(messages, agents=agents, identities=identities)
    answered = delays.filter(pl.col("reply_id").is_not_null())
    aggs = [
        pl.len().alias("replies"),
        pl.col("delay_minutes").median().alias("median_minutes"),
        pl.col("delay_minutes").quantile(0.9, interpolation="linear").alias("p90_minutes"),
        pl.col("delay_minutes").max().alias("max_minutes"),
    ]
    if target is not None:
        aggs.append((pl.col("delay") > target).sum().cast(pl.Int64).alias("breaches"))
    out = answered.group_by(list(by)).agg(aggs)
    if "replier" not in by:
        unanswered = delays.filter(pl.col("reply_id").is_null()).group_by(list(by)).agg(
            pl.len().alias("unanswered"))
        out = out.join(unanswered, on=list(by), how="full", coalesce=True).with_columns(
            pl.col("unanswered").fill_null(0), pl.col("replies").fill_null(0))
    return out.sort(list(by), nulls_last=True)


def activity_heatmap(frame: pl.DataFrame, *, tz: str = DEFAULT_TZ, column: str = "ts") -> pl.DataFrame:
    """Message (or event) counts per weekday (1 = Monday) and hour (0-23) in ``tz``; all 168 cells."""
    local = pl.col(column).dt.convert_time_zone(tz)
    counts = frame.group_by(local.dt.weekday().alias("weekday"), local.dt.hour().alias("hour")).agg(
        pl.len().alias("count"))
    grid = pl.DataFrame({"weekday": [d for d in range(1, 8) for _ in range(24)],
                         "hour": [h for _ in range(1, 8) for h in range(24)]},
                        schema={"weekday": counts.schema["weekday"], "hour": counts.schema["hour"]})
    return grid.join(counts, on=["weekday", "hour"], how="left").with_columns(
        pl.col("count").fill_null(0).cast(pl.Int64)).sort(["weekday", "hour"])


def contact_edges(frame: pl.DataFrame, *, sender: str = "sender_id") -> pl.DataFrame:
    """Who talks to whom: (source, target, target_kind, count) edges.

    A message with recipients gives one edge per recipient (``target_kind`` "person"); one without
    (a group post exported without member lists) gives an edge to its conversation ("conversation").
    """
    has_recipients = pl.col("recipients").list.len().fill_null(0) > 0 if "recipients" in frame.columns \
        else pl.lit(False)
    to_people = frame.filter(has_recipients).select(
        pl.col(sender).alias("source"), pl.col("recipients").alias("target")).explode("target").with_columns(
        pl.lit("person").alias("target_kind"))
    to_conv = frame.filter(~has_recipients).select(
        pl.col(sender).alias("source"), pl.col("conversation_id").cast(pl.String).alias("target"),
        pl.lit("conversation").alias("target_kind"))
    edges = pl.concat([to_people, to_conv], how="vertical").filter(
        pl.col("target").is_not_null() & (pl.col("source") != pl.col("target")))
    return edges.group_by(["source", "target", "target_kind"]).agg(pl.len().cast(pl.Int64).alias("count")).sort(
        ["count", "source", "target"], descending=[True, False, False])
