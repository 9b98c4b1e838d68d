"""One message, many exports: merge the copies of a message that several exports hold.

    >>> from investigator import analysis
    >>> distinct = analysis.dedupe(case.messages(), identities=case.identities())   # doctest: +SKIP
    >>> distinct.select("text", "copies", "sources").head(1)                         # doctest: +SKIP

The same complaint exported by WeCom 会话存档, two WeChat tools, WhatsApp and Slack is one
message seen five times: counted once, it is *corroborated* by five exports. Two rows are copies
when all of these hold:

- they come from **different exports** (export file: its SHA-256, else source + file name) —
  two identical texts in one export are two messages;
- they have the same **resolved sender** (the person the directory links the account to, see
  :mod:`investigator.analysis.people`; an unknown account is its display name on its platform);
- they have the same **display-normalized text** (NFKC, case folded, whitespace collapsed) — not
  the search skeleton, so a homoglyph or pinyin spelling stays a different message; rows without
  text (images, metadata-only grants) are never merged;
- their times agree **within the coarser source's precision** (:data:`PRECISION`: a WhatsApp .txt
  and a PyWxDump CSV have minutes, the others seconds), i.e. the finer time truncated to the coarser grid is
  the coarser time.

Conversation ids are not compared (each platform numbers them its own way). The kept row is the
copy from the most authoritative source (:data:`AUTHORITY`, WeCom 会话存档 first), so its ids,
conversation and time are that export's. Everything is column-wise Polars (sorts, window ranks,
one group-by); no Python runs per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from investigator.analysis.people import People

#: Sources by authority, most authoritative first: the canonical copy of a merged message is
#: taken from the first of these that holds it. The WeCom archive API (会话存档) is the
#: platform's own server-side record; then platform exports with server ids and exact times;
#: then phone-side tools; a WhatsApp .txt (minutes, display names) and plain tables last.
AUTHORITY: tuple[str, ...] = ("wecom", "slack", "discord", "telegram", "wechat-pywxdump", "wechat-wechatmsg",
                              "whatsapp", "normalized-jsonl", "normalized-csv", "jsonl", "csv", "sample")

#: Time precision of each source's export, in seconds (sources not listed: 1 s).
PRECISION: dict[str, int] = {"whatsapp": 60, "wechat-pywxdump": 60}

COPIES, SOURCES, RECORD_HASHES = "copies", "sources", "record_hashes"
_US = 1_000_000


def display_key(column: str = "text") -> pl.Expr:
    """The display-normalized form dedupe compares: NFKC, lower case, whitespace runs as one space, trimmed.

    Empty text is null (no text to compare).
    """
    key = pl.col(column).str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(key != "").then(key)


def _with(frame: pl.DataFrame, columns: Iterable[str]) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    return frame.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing) if missing else frame


def _empty_result(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit(1, dtype=pl.UInt32).alias(COPIES),
                              pl.lit([], dtype=pl.List(pl.Struct({"source": pl.String, "source_file": pl.String})))
                              .alias(SOURCES),
                              pl.lit([], dtype=pl.List(pl.String)).alias(RECORD_HASHES)).clear()


def dedupe(frame: pl.DataFrame, *, identities: Mapping[str, Iterable[str]] | People | None = None,
           authority: Sequence[str] = AUTHORITY, precision: Mapping[str, int] | None = None) -> pl.DataFrame:
    """One row per distinct message of ``frame``, with its corroboration.

    ``frame`` has message-schema columns (``ts`` is required; ``source``, ``source_file``,
    ``source_sha256``, ``sender_id``, ``sender_name``, ``text`` and ``record_hash`` are used when
    present). ``identities`` maps person ids to their accounts and names (``case.identities()``,
    or a :class:`~investigator.analysis.people.People`); without it only identical sender labels
    match. The result keeps ``frame``'s columns — each row is the canonical copy, chosen by
    ``authority`` (a list of sources, most authoritative first) — in ``frame``'s order, plus:

    - ``copies`` (UInt32): how many rows were merged into this one, itself included;
    - ``sources`` (list of struct ``{source, source_file}``): the distinct exports holding it,
      canonical first — ``sources.list.len()`` is "corroborated by N exports";
    - ``record_hashes`` (list of str): every copy's record hash, canonical first, so each copy
      stays provable with an inclusion proof (null entries when ``frame`` has no ``record_hash``).

    ``precision`` overrides :data:`PRECISION` (source -> seconds). The grid of the coarsest
    precision present groups times; finer rows pair up by their second (the k-th repeat in one
    export with the k-th in another), and coarse rows join the k-th fine copy of their minute.
    Raises ColumnNotFoundError (polars) when ``ts`` is missing.
    """
    if frame.height == 0:
        return _empty_result(frame)
    people = identities if isinstance(identities, People) else People.from_identities(identities)
    prec = {**PRECISION, **(precision or {})}
    work = _with(frame, ("source", "source_file", "source_sha256", "sender_id", "sender_name", "text",
                         "record_hash")).with_row_index("__row")
    work = people.resolve(work, prefix="__")
    unit = pl.col("source").replace_strict(list(prec), [v * _US for v in prec.values()], default=_US,
                                           return_dtype=pl.Int64)
    ranks = {s: i for i, s in enumerate(authority)}
    work = work.with_columns(
        pl.coalesce(pl.col("source_sha256"), pl.format("{}\x1f{}", pl.col("source").fill_null(""),
                                                       pl.col("source_file").fill_null(""))).alias("__export"),
        # a known person by id; an unknown account by its label, which names its platform
        pl.coalesce(pl.col("__person_id"), pl.format("\x1e{}", pl.col("__person"))).alias("__sender"),
        # rows without text never merge: their key is unique
        pl.coalesce(display_key(), pl.format("\x1d{}", pl.col("__row"))).alias("__text"),
        pl.col("ts").dt.epoch("us").alias("__us"),
        unit.alias("__unit"),
        pl.col("source").replace_strict(list(ranks), list(ranks.values()), default=len(ranks),
                                        return_dtype=pl.Int64).alias("__rank"),
    )
    coarse_unit = int(work["__unit"].max())  # type: ignore[arg-type]
    fine = work.filter(pl.col("__unit") < coarse_unit)["__unit"]
    fine_unit = int(fine.max()) if fine.len() else coarse_unit  # type: ignore[arg-type]
    work = work.with_columns((pl.col("__us") // coarse_unit).alias("__bucket"),
                             (pl.col("__us") // fine_unit).alias("__sub"),
                             (pl.col("__unit") < coarse_unit).alias("__fine")).sort("__us", "__row")
    group = ["__sender", "__text", "__bucket"]
    # the occurrence of a row among the rows of its own export with the same sender, text and time slot
    # (a fine row's slot is its second, a coarse row's its minute): repeats within an export stay apart
    work = work.with_columns(
        pl.when(pl.col("__fine")).then(pl.int_range(pl.len()).over([*group, "__sub", "__export", "__fine"]))
        .otherwise(pl.int_range(pl.len()).over([*group, "__export", "__fine"])).alias("__occ"))
    # fine copies pair up by (second, occurrence); the k-th coarse row of a minute joins the k-th of them
    offset = pl.col("__sub") - pl.col("__bucket") * (coarse_unit // fine_unit)
    work = work.with_columns(pl.when(pl.col("__fine")).then(offset * 1_000_000 + pl.col("__occ")).alias("__fkey"))
    work = work.with_columns(
        pl.when(pl.col("__fine")).then(pl.col("__fkey").rank("dense").over(group).cast(pl.Int64) - 1)
        .otherwise(pl.col("__occ")).cast(pl.Int64).alias("__idx"))
    cluster = [*group, "__idx"]
    return _merged(frame, work.sort("__rank", "__unit", "__us", "__row"), cluster)


def _merged(frame: pl.DataFrame, ordered: pl.DataFrame, cluster: list[str]) -> pl.DataFrame:
    """``frame``'s first row of each ``cluster`` group of ``ordered`` (sorted canonical first), with the copies.

    ``ordered`` is ``frame``'s rows with ``__row`` (their index in ``frame``), ``source``,
    ``source_file`` and ``record_hash``; adds ``copies``, ``sources`` and ``record_hashes``.
    """
    merged = ordered.group_by(cluster, maintain_order=True).agg(
        pl.col("__row").first(),
        pl.len().alias(COPIES),
        pl.struct(pl.col("source"), pl.col("source_file")).unique(maintain_order=True).alias(SOURCES),
        pl.col("record_hash").alias(RECORD_HASHES),
    ).select("__row", COPIES, SOURCES, RECORD_HASHES)
    return (frame.with_row_index("__row").join(merged, on="__row", how="inner")
            .sort("__row").drop("__row"))


#: Event sources by authority, most authoritative first: a system's own log before a table of events.
EVENT_AUTHORITY: tuple[str, ...] = ("authlog", "syslog", "jsonl", "csv", "sample")

#: The fields two copies of one event agree on, whatever else their exports add (``details`` differ:
#: auth.log says ``{"program": "sshd"}`` where an events table says ``{"reason": "invalid password"}``).
EVENT_KEY: tuple[str, ...] = ("ts", "actor", "event_type", "host", "ip", "outcome")


def dedupe_events(frame: pl.DataFrame, *, authority: Sequence[str] = EVENT_AUTHORITY) -> pl.DataFrame:
    """One row per distinct event of ``frame``, with its corroboration, like :func:`dedupe` for messages.

    A login that auth.log and an events table both record is one event seen twice. Two rows are
    copies when they come from **different exports** (export file: its SHA-256, else source + file
    name) and agree exactly on :data:`EVENT_KEY` (a missing value matches only a missing value); two
    rows of one export are never merged (auth.log writes two lines for some failures: both stay).
    The k-th such row of one export pairs with the k-th of another. The kept row is the copy from
    the most authoritative source (``authority``), in ``frame``'s order, plus ``copies``,
    ``sources`` and ``record_hashes`` as :func:`dedupe` adds them. Raises ColumnNotFoundError
    (polars) when ``ts`` is missing.
    """
    if frame.height == 0:
        return _empty_result(frame)
    key = [c for c in EVENT_KEY if c in frame.columns]
    if "ts" not in key:
        frame.select("ts")  # raises ColumnNotFoundError, as documented
    ranks = {s: i for i, s in enumerate(authority)}
    work = _with(frame, ("source", "source_file", "source_sha256", "record_hash")).with_row_index("__row")
    work = work.with_columns(
        pl.coalesce(pl.col("source_sha256"), pl.format("{}\x1f{}", pl.col("source").fill_null(""),
                                                       pl.col("source_file").fill_null(""))).alias("__export"),
        pl.col("source").replace_strict(list(ranks), list(ranks.values()), default=len(ranks),
                                        return_dtype=pl.Int64).alias("__rank"))
    # the occurrence of a row among its own export's rows with the same key: repeats within an export stay apart
    work = work.with_columns(pl.int_range(pl.len()).over([*key, "__export"], order_by="__row").alias("__occ"))
    return _merged(frame, work.sort("__rank", "__row"), [*key, "__occ"])
