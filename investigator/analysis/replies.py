"""Answered or not, on distinct messages: the first reply by a responder in any conversation a message sits in.

    >>> distinct = people.resolve(analysis.dedupe(messages, identities=people))              # doctest: +SKIP
    >>> analysis.first_staff_reply(distinct, messages, triggers=complaints, responders=staff)     # doctest: +SKIP

A message merged from several exports sits in one conversation per export (each platform numbers
its conversations its own way). A reply answers it when a distinct message sent by one of the
``responders`` after it has a copy in one of those conversations of the same export. Times are the
distinct (canonical) times, so a copy's coarser clock never shortens a delay.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from investigator.analysis.dedupe import RECORD_HASHES


def _copies(distinct: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """One row per copy: the distinct message's canonical record hash and the copy's export + conversation."""
    export = (pl.coalesce(pl.col("source_sha256"), pl.col("source_file"), pl.col("source"))
              if "source_sha256" in frame.columns else pl.coalesce(pl.col("source_file"), pl.col("source")))
    where = frame.select("record_hash", pl.format("{}\x1f{}", export, pl.col("conversation_id")).alias("__conv"))
    links = distinct.select(pl.col("record_hash").alias("__message"), pl.col(RECORD_HASHES).alias("record_hash"))
    return links.explode("record_hash").join(where, on="record_hash", how="inner").select("__message", "__conv")


def first_staff_reply(distinct: pl.DataFrame, frame: pl.DataFrame, *, triggers: pl.DataFrame,
                responders: Iterable[str], person_id: str = "person_id", person: str = "person") -> pl.DataFrame:
    """For each row of ``triggers`` (distinct messages, e.g. complaints), the first later responder reply.

    ``distinct`` is :func:`~investigator.analysis.dedupe` output with people resolved
    (``person_id``, ``person``); ``frame`` the rows it was made from (``record_hash``,
    ``conversation_id``, ``source_file``/``source_sha256``); ``responders`` person ids (staff).
    Returns ``triggers`` in its order with ``reply_record_hash``, ``reply_ts``, ``replier`` (the
    person label) and ``delay_minutes`` added (null when no responder replied). Column-wise: one
    join of copies on conversations, no per-row Python. Raises ColumnNotFoundError (polars) when
    a column named above is missing.
    """
    staff = sorted(set(responders))
    copies = _copies(distinct, frame)
    asked = triggers.select(pl.col("record_hash").alias("__message"), pl.col("ts").alias("__asked")).join(
        copies, on="__message", how="inner")
    answers = distinct.filter(pl.col(person_id).is_in(staff)).select(
        pl.col("record_hash").alias("__reply"), pl.col("ts").alias("reply_ts"), pl.col(person).alias("replier"))
    answers = answers.join(copies.rename({"__message": "__reply"}), on="__reply", how="inner")
    pairs = asked.join(answers, on="__conv", how="inner").filter(pl.col("reply_ts") > pl.col("__asked"))
    first = (pairs.sort("reply_ts", "__reply").group_by("__message", maintain_order=True)
             .agg(pl.col("__reply").first().alias("reply_record_hash"), pl.col("reply_ts").first(),
                  pl.col("replier").first()))
    out = triggers.join(first, left_on="record_hash", right_on="__message", how="left", maintain_order="left")
    return out.with_columns(
        ((pl.col("reply_ts") - pl.col("ts")).dt.total_microseconds() / 60e6).alias("delay_minutes"))
