"""Bulk synthetic messages plus the planted cases, in the normalized schema.

    >>> from investigator.demo.samples.messages import generate_messages
    >>> frame = generate_messages(500, seed=7)
    >>> frame.height, frame["ts"].is_sorted()
    (500, True)

The bulk is vectorized: every random choice is a SplitMix64 draw over the row
number (:mod:`._rng`), choices are looked up with joins and ``search_sorted``,
so a million rows take seconds. Planted messages are added as written in
:mod:`.planted` when the window covers their dates, and bulk rows never fall
into the planted conversations' quiet windows.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from investigator import schema
from investigator.demo.samples import directory, planted, vocabulary
from investigator.demo.samples._rng import below, uniform

DEFAULT_START = date(2026, 11, 2)
DEFAULT_DAYS = 28
DEFAULT_TZ = "Asia/Shanghai"

# Relative traffic by local hour: busy in working hours, a tail in the evening.
HOUR_WEIGHTS = (1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 3, 8, 12, 13, 12, 9, 10, 13, 13, 12, 11, 8, 6, 5, 4, 3, 2)
WEEKEND_WEIGHT = 0.35

# (msg_type, cumulative probability). Recalls and replies are decided afterwards.
_TYPES = (("text", 0.84), ("image", 0.90), ("voice", 0.93), ("video", 0.945), ("file", 0.97), ("link", 0.985), ("system", 1.0))
_MIME = {"jpg": "image/jpeg", "amr": "audio/amr", "mp4": "video/mp4", "pdf": "application/pdf",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}


def _planted_in_window(start: date, days: int) -> list[planted.PlantedMessage]:
    """Planted messages whose case lies wholly inside the window (keywords one by one)."""
    end = start + timedelta(days=days)

    def inside(m: planted.PlantedMessage) -> bool:
        return start <= date.fromisoformat(m.local[:10]) < end

    by_case: dict[str, list[planted.PlantedMessage]] = {}
    for m in planted.MESSAGES:
        by_case.setdefault(m.case if m.case != "keywords" else m.key, []).append(m)
    return [m for group in by_case.values() if all(inside(m) for m in group) for m in group]


def planted_frame(start: date, days: int, tz: str) -> pl.DataFrame:
    """The planted messages inside the window as a normalized frame."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    rows = []
    zone = ZoneInfo(tz)
    for m in _planted_in_window(start, days):
        conv = convs[m.conversation_id]
        sender = directory.person(m.sender)
        local = datetime.strptime(m.local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
        name, mime, size = m.attachment or (None, None, None)
        digest = hashlib.sha256(f"planted|{m.key}|{name}".encode()).hexdigest() if name else None
        md5 = hashlib.md5(f"planted|{m.key}|{name}".encode()).hexdigest() if name else None
        rows.append({
            "message_id": m.id, "source": "sample", "conversation_id": conv.id, "conversation_name": conv.name,
            "conversation_type": conv.type, "ts": local.astimezone(ZoneInfo("UTC")), "sender_id": sender.id,
            "sender_name": sender.name, "recipients": [r for r in conv.members if r != sender.id],
            "msg_type": m.msg_type, "text": m.text, "attachment_name": name, "attachment_type": mime,
            "attachment_size": size, "attachment_sha256": digest, "attachment_md5": md5,
            "reply_to": planted.by_key(m.reply_to).id if m.reply_to else None, "original_id": None,
        })
    frame = pl.DataFrame(rows, schema=schema.content_schema("messages")) if rows else pl.DataFrame(schema=schema.content_schema("messages"))
    return schema.conform(frame, "messages")


def _tables(convs: list[directory.Conversation]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-conversation and per-(conversation, member) lookup tables."""
    _, offsets, sizes = vocabulary.table()
    conv_rows, member_rows = [], []
    for ci, conv in enumerate(convs):
        conv_rows.append({"conv": ci, "conversation_id": conv.id, "conversation_name": conv.name,
                          "conversation_type": conv.type, "n_members": len(conv.members), "weight": conv.weight})
        for pos, pid in enumerate(conv.members):
            who = directory.person(pid)
            vkind = vocabulary.kind_for(conv.kind, not who.external)
            member_rows.append({"conv": ci, "pos": pos, "sender_id": who.id, "sender_name": who.name,
                                "voff": offsets[vkind], "vsize": sizes[vkind],
                                "recipients": [r for r in conv.members if r != pid]})
    return pl.DataFrame(conv_rows), pl.DataFrame(member_rows, schema_overrides={"recipients": pl.List(pl.String())})


def _pick(u: pl.Expr, weights: list[float]) -> pl.Expr:
    """Index into ``weights`` for uniforms ``u`` (inverse CDF via search_sorted)."""
    total = sum(weights)
    cum = pl.Series([sum(weights[: i + 1]) / total for i in range(len(weights))], dtype=pl.Float64)
    return pl.lit(cum).search_sorted(u, side="right").cast(pl.Int64).clip(0, len(weights) - 1)


def _bulk(n: int, *, seed: int, start: date, days: int, tz: str, convs: list[directory.Conversation]) -> pl.DataFrame:
    conv_table, member_table = _tables(convs)
    day_weights = [WEEKEND_WEIGHT if (start + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(days)]
    i = pl.col("i")
    frame = pl.select(i=pl.int_range(n, dtype=pl.UInt64)).with_columns(
        conv=_pick(uniform(i, seed=seed, stream=1), [c.weight for c in convs]),
        day=_pick(uniform(i, seed=seed, stream=2), day_weights),
        hour=_pick(uniform(i, seed=seed, stream=3), list(HOUR_WEIGHTS)),
        minute=below(i, 60, seed=seed, stream=4),
        second=below(i, 60, seed=seed, stream=5),
        ms=below(i, 1000, seed=seed, stream=6),
        tu=uniform(i, seed=seed, stream=7),
    )
    # Quiet windows: move bulk rows a day away so planted timelines stay exact.
    for ci, conv in enumerate(convs):
        for qdate, qfrom, qto in conv.quiet:
            qday = (date.fromisoformat(qdate) - start).days
            if not 0 <= qday < days:
                continue
            lo, hi = int(qfrom[:2]) * 60 + int(qfrom[3:]), int(qto[:2]) * 60 + int(qto[3:])
            minute_of_day = pl.col("hour") * 60 + pl.col("minute")
            hit = (pl.col("conv") == ci) & (pl.col("day") == qday) & minute_of_day.is_between(lo, hi)
            frame = frame.with_columns(day=pl.when(hit).then(pl.lit(qday + 1 if qday + 1 < days else qday - 1)).otherwise("day"))
    frame = frame.join(conv_table, on="conv", how="left")
    frame = frame.with_columns(pos=below(i, pl.col("n_members"), seed=seed, stream=8))
    frame = frame.join(member_table, on=["conv", "pos"], how="left")
    local = pl.lit(datetime(start.year, start.month, start.day)) + pl.duration(
        days=pl.col("day"), hours=pl.col("hour"), minutes=pl.col("minute"), seconds=pl.col("second"), milliseconds=pl.col("ms"))
    msg_type = pl.lit("text")
    for name, upper in reversed(_TYPES):
        msg_type = pl.when(pl.col("tu") < upper).then(pl.lit(name)).otherwise(msg_type)
    texts, _, _ = vocabulary.table()
    frame = frame.with_columns(
        local=local,
        msg_type=pl.when((msg_type == "system") & (pl.col("conversation_type") != "group")).then(pl.lit("text")).otherwise(msg_type),
        vidx=pl.col("voff") + below(i, pl.col("vsize"), seed=seed, stream=9),
    ).filter(pl.col("local").is_not_null())
    frame = frame.with_columns(
        ts=pl.col("local").dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"),
        vtext=pl.lit(pl.Series(texts, dtype=pl.String())).gather(pl.col("vidx")),
    ).filter(pl.col("ts").is_not_null())
    return frame


def _decorate(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Ids, text by type, attachments, replies and recalls for sorted bulk rows."""
    i = pl.col("i")
    link_pick = below(i, len(vocabulary.LINKS), seed=seed, stream=10)
    link_text = pl.lit(pl.Series([f"{t} {u}" for u, t in vocabulary.LINKS])).gather(link_pick)
    file_pick = below(i, len(vocabulary.FILE_NAMES), seed=seed, stream=11)
    file_name = pl.lit(pl.Series(list(vocabulary.FILE_NAMES))).gather(file_pick)
    mt = pl.col("msg_type")
    frame = frame.with_columns(
        message_id=pl.format("msg{}-{}", pl.lit(seed), pl.int_range(pl.len()).cast(pl.String).str.zfill(8)),
        source=pl.lit("sample"),
        text=pl.when(mt == "text").then(pl.col("vtext"))
        .when(mt == "link").then(link_text)
        .when(mt == "system").then(
            pl.when(below(i, 4, seed=seed, stream=12) == 0)
            .then(pl.format("{} 修改群名为“{}”", pl.col("sender_name"), pl.col("conversation_name")))
            .otherwise(pl.format("{} 加入了群聊", pl.col("sender_name"))))
        .otherwise(None),
        attachment_name=pl.when(mt == "image").then(pl.col("local").dt.strftime("IMG_%Y%m%d_%H%M%S.jpg"))
        .when(mt == "voice").then(pl.col("local").dt.strftime("voice_%Y%m%d_%H%M%S.amr"))
        .when(mt == "video").then(pl.col("local").dt.strftime("VID_%Y%m%d_%H%M%S.mp4"))
        .when(mt == "file").then(file_name).otherwise(None),
        attachment_size=pl.when(mt == "image").then(40_000 + below(i, 3_000_000, seed=seed, stream=13))
        .when(mt == "voice").then(3_000 + below(i, 200_000, seed=seed, stream=13))
        .when(mt == "video").then(500_000 + below(i, 30_000_000, seed=seed, stream=13))
        .when(mt == "file").then(10_000 + below(i, 5_000_000, seed=seed, stream=13)).otherwise(None),
        ru=uniform(i, seed=seed, stream=14),
    )
    frame = frame.with_columns(
        attachment_type=pl.col("attachment_name").str.extract(r"\.(\w+)$").replace_strict(_MIME, default=None, return_dtype=pl.String),
        prev_in_conv=pl.col("message_id").shift(1).over("conversation_id"),
        prev_own=pl.col("message_id").shift(1).over(["conversation_id", "sender_id"]),
    )
    # About 0.3% recalls (of the sender's previous message) and 5% replies.
    recall = (pl.col("ru") < 0.003) & pl.col("prev_own").is_not_null() & (mt != "system")
    reply = (pl.col("ru") > 0.95) & pl.col("prev_in_conv").is_not_null() & (mt == "text")
    frame = frame.with_columns(
        original_id=pl.when(recall).then(pl.col("prev_own")).otherwise(None),
        reply_to=pl.when(reply).then(pl.col("prev_in_conv")).otherwise(None),
        **{c: pl.when(recall).then(None).otherwise(pl.col(c)) for c in ("text", "attachment_name", "attachment_type", "attachment_size")},
    ).with_columns(msg_type=pl.when(recall).then(pl.lit("recall")).otherwise(mt))
    return _with_digests(frame)


def _with_digests(frame: pl.DataFrame) -> pl.DataFrame:
    """Pseudo file digests: the files are not shipped, but the digests must look real and be stable."""
    has = frame.filter(pl.col("attachment_name").is_not_null()).select("message_id", "attachment_name", "attachment_size")
    keys = [f"{m}|{a}|{s}".encode() for m, a, s in has.iter_rows()]  # only ~10% of rows: fine in Python
    digests = has.select("message_id").with_columns(
        attachment_sha256=pl.Series([hashlib.sha256(k).hexdigest() for k in keys], dtype=pl.String),
        attachment_md5=pl.Series([hashlib.md5(k).hexdigest() for k in keys], dtype=pl.String),
    )
    return frame.join(digests, on="message_id", how="left", maintain_order="left")


def generate_messages(
    n: int, *, seed: int = 7, start: date = DEFAULT_START, days: int = DEFAULT_DAYS, tz: str = DEFAULT_TZ,
    conversations: int | None = None,
) -> pl.DataFrame:
    """``n`` messages (bulk plus planted) in the normalized schema, sorted by ``ts``.

    Deterministic for given arguments. Planted cases are included when the
    window ``[start, start + days)`` covers their dates. ``conversations``
    sets the total number of conversations (default: scales with ``n``).
    Raises ValueError for a negative ``n`` or a non-positive ``days``.
    """
    if n < 0 or days <= 0:
        raise ValueError("n must be >= 0 and days > 0")
    convs = directory.conversations(conversations, n)
    plant = planted_frame(start, days, tz)
    n_bulk = max(0, n - plant.height)
    bulk = _bulk(n_bulk, seed=seed, start=start, days=days, tz=tz, convs=convs).sort(["ts", "i"])
    bulk = _decorate(bulk, seed)
    out = pl.concat([schema.conform(bulk, "messages"), plant], how="vertical")
    return out.sort(["ts", "message_id"]).head(n)
