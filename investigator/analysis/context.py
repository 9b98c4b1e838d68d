"""The conversation around search hits, overlapping snippets merged (as eDiscovery tools show chat hits).

    >>> import polars as pl
    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2026, 11, 18, 6, 0, tzinfo=timezone.utc)
    >>> frame = pl.DataFrame({"message_id": [f"m{i}" for i in range(10)], "conversation_id": ["c"] * 10,
    ...                       "ts": [t0 + timedelta(minutes=i) for i in range(10)]})
    >>> out = context(frame, ["m3", "m5"], before=1, after=1)
    >>> out["message_id"].to_list(), out["snippet"].to_list(), out["is_hit"].to_list()
    (['m2', 'm3', 'm4', 'm5', 'm6'], [0, 0, 0, 0, 0], [False, True, False, True, False])

Snippets are cut by message count (``before``/``after``) or, with ``minutes``, by time on either side.
Snippets that overlap or touch are merged into one. The result is ordered by snippet, then time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import polars as pl


def _merge(intervals: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    merged: list[tuple[str, float, float]] = []
    for conv, lo, hi in sorted(intervals):
        if merged and merged[-1][0] == conv and lo <= merged[-1][2] + 1e-9:
            merged[-1] = (conv, merged[-1][1], max(merged[-1][2], hi))
        else:
            merged.append((conv, lo, hi))
    return merged


def context(frame: pl.DataFrame, message_ids: Iterable[str], before: int = 5, after: int = 5, *,
            minutes: float | None = None) -> pl.DataFrame:
    """The messages around each of ``message_ids`` in its conversation.

    Returns ``frame``'s columns plus ``snippet`` (0, 1, ... in order of first message) and ``is_hit``.
    By count, a snippet is the ``before`` messages before a hit, the hit and ``after`` messages after;
    with ``minutes``, every message within that many minutes of a hit. Unknown ids are ignored.
    """
    ids = list(dict.fromkeys(message_ids))
    ordered = frame.sort(["conversation_id", "ts", "message_id"], nulls_last=True).with_columns(
        pl.int_range(pl.len()).over("conversation_id").alias("__pos"),
        pl.col("message_id").is_in(ids).alias("is_hit"),
    )
    hits = ordered.filter(pl.col("is_hit"))
    if hits.height == 0:
        return ordered.head(0).drop("__pos").with_columns(pl.lit(0, pl.Int64).alias("snippet"))
    if minutes is None:
        intervals = [(c, p - before, p + after) for c, p in zip(hits["conversation_id"], hits["__pos"])]
        # touching count windows merge too: [0, 3] and [4, 6] show as one run of messages
        intervals = [(c, lo - 0.5, hi + 0.5) for c, lo, hi in intervals]
        ordered = ordered.with_columns(pl.col("__pos").cast(pl.Float64).alias("__key"))
    else:
        span = timedelta(minutes=minutes).total_seconds()
        epoch = [t.timestamp() for t in hits["ts"]]
        intervals = [(c, e - span, e + span) for c, e in zip(hits["conversation_id"], epoch)]
        ordered = ordered.with_columns((pl.col("ts").dt.epoch("us") / 1e6).alias("__key"))
    merged = _merge(intervals)
    snippets = pl.DataFrame(
        {"conversation_id": [m[0] for m in merged], "__lo": [float(m[1]) for m in merged],
         "__hi": [float(m[2]) for m in merged]},
        schema={"conversation_id": ordered.schema["conversation_id"], "__lo": pl.Float64, "__hi": pl.Float64},
    )
    joined = ordered.sort("__key").join_asof(
        snippets.sort("__lo"), left_on="__key", right_on="__lo", by="conversation_id", strategy="backward",
        check_sortedness=False,  # both sides are sorted on the key above; 'by' makes polars unable to tell
    ).filter(pl.col("__hi").is_not_null() & (pl.col("__key") <= pl.col("__hi")))
    first = joined.group_by(["conversation_id", "__lo"]).agg(pl.col("ts").min().alias("__first"))
    first = first.sort(["__first", "conversation_id"]).with_row_index("snippet").with_columns(
        pl.col("snippet").cast(pl.Int64))
    out = joined.join(first.drop("__first"), on=["conversation_id", "__lo"], how="left")
    return out.sort(["snippet", "__pos"]).drop(["__pos", "__key", "__lo", "__hi"])
