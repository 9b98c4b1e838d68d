"""Write a complete sample set: every export format, people.csv and planted.json.

    >>> import tempfile
    >>> from pathlib import Path
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["jsonl"])
    >>> [p.name for p in files["jsonl"]]
    ['messages.jsonl']

Each writer is registered under its format name (:mod:`investigator.demo.samples.registry`)
and gets a :class:`~investigator.demo.samples.registry.SampleContext` (the full normalized
frame, a smaller subset for platform exports, the events). It returns the files it
wrote and, for every message it wrote, the id that message has in its format;
planted.json lists those ids for the planted messages so tests and demos can find a
case whichever format they ingest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import polars as pl

from investigator import schema
from investigator.demo.samples import authlog, directory, normalized, planted
# The platform writers register themselves with @register when imported (registry.py holds the registry,
# so they need not import this module).
from investigator.demo.samples import (  # noqa: F401
    discord, slack, telegram, wechat_pywxdump, wechat_wechatmsg, wecom, whatsapp,
)
from investigator.demo.samples.events import generate_events
from investigator.demo.samples.messages import DEFAULT_DAYS, DEFAULT_START, DEFAULT_TZ, generate_messages
from investigator.demo.samples.registry import SampleContext, Writer, WriterResult, register, registered

PLATFORM_BULK = 300  # bulk messages in each platform export, besides the planted ones


def platform_subset(frame: pl.DataFrame, size: int = PLATFORM_BULK) -> pl.DataFrame:
    """Planted messages plus about ``size`` bulk messages of the core conversations.

    Every k-th bulk row is taken (deterministic), then the messages that picked
    rows recall or reply to are added back so no reference dangles.
    """
    core = [c.id for c in directory.CORE_CONVERSATIONS]
    is_planted = pl.col("message_id").str.starts_with("p-")
    bulk = frame.filter(~is_planted & pl.col("conversation_id").is_in(core))
    step = max(1, bulk.height // max(1, size))
    picked = bulk.gather_every(step).head(size)
    keep = set(picked["message_id"]) | set(picked["original_id"].drop_nulls()) | set(picked["reply_to"].drop_nulls())
    return frame.filter(is_planted | pl.col("message_id").is_in(sorted(keep)))


@register("jsonl")
def _jsonl(ctx: SampleContext) -> WriterResult:
    path = normalized.write_messages_jsonl(ctx.messages, ctx.out_dir / "normalized" / "messages.jsonl")
    return [path], {}


@register("csv")
def _csv(ctx: SampleContext) -> WriterResult:
    path = normalized.write_messages_csv(ctx.messages, ctx.out_dir / "normalized" / "messages.csv")
    return [path], {}


@register("events-jsonl")
def _events_jsonl(ctx: SampleContext) -> WriterResult:
    return [normalized.write_events_jsonl(ctx.events, ctx.out_dir / "events" / "events.jsonl")], {}


@register("events-csv")
def _events_csv(ctx: SampleContext) -> WriterResult:
    return [normalized.write_events_csv(ctx.events, ctx.out_dir / "events" / "events.csv")], {}


@register("authlog")
def _authlog(ctx: SampleContext) -> WriterResult:
    return [authlog.write_authlog(ctx.events, ctx.out_dir / "events" / "auth.log")], {}


ALL_FORMATS = ("jsonl", "csv", "events-jsonl", "events-csv", "authlog", "slack", "telegram", "whatsapp", "discord",
               "wecom", "wechat-pywxdump", "wechat-wechatmsg")


def writers() -> dict[str, Writer]:
    """Registered writers by format name."""
    return registered()


def people_csv(people: list[directory.Person]) -> str:
    """people.csv text (UTF-8, ``\\n`` line ends)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(directory.people_csv_rows(people))
    return buf.getvalue()


def planted_description(messages: pl.DataFrame, events: pl.DataFrame, ids: dict[str, dict[str, str]], *, seed: int,
                        tz: str, start: date, days: int) -> dict:
    """The planted.json object (see docs/samples.md for the meaning of each part)."""
    present = set(messages.filter(pl.col("message_id").str.starts_with("p-"))["message_id"])
    present_events = set(events.filter(pl.col("event_id").str.starts_with("p-"))["event_id"])

    def msg(key: str) -> str:
        return planted.by_key(key).id

    def entry(m: planted.PlantedMessage) -> dict:
        return {"message_id": m.id, "case": m.case, "conversation_id": m.conversation_id, "local_time": m.local,
                "sender": m.sender, "msg_type": m.msg_type, "ids": {fmt: got[m.id] for fmt, got in sorted(ids.items()) if m.id in got}}

    c2_keys = [m.id for m in planted.CASE2 if m.key.startswith("c2.key")]
    keywords: dict[str, dict] = {}
    for kw in planted.KEYWORDS:
        hits = [{"message_id": m.id, "evasion": ev} for m in planted.MESSAGES if m.id in present for k, ev in m.labels if k == kw]
        near = [m.id for m in planted.MESSAGES if m.id in present and kw in m.near_miss]
        keywords[kw] = {"matches": hits, "near_misses": near}
    ev_ids = {e.key: e.id for e in planted.EVENTS}
    return {
        "format_version": 1,
        "seed": seed,
        "time_zone": tz,
        "authlog_host_time_zone": authlog.HOST_TZ,
        "window": {"start": start.isoformat(), "days": days},
        "note": "Local times are in time_zone; message ts in the files is UTC. ids maps each format to its own id.",
        "cases": {
            "complaint": {
                "description": "案例1 客户投诉处理: agent 张伟 contacts courier 李强 at 14:20, customer 王芳 complains at 14:35, "
                               "delivery_delay_alert at 14:40, first agent reply at 16:35 (two-hour delay), settled with a coupon.",
                "date": "2026-11-18", "order_id": planted.COMPLAINT_ORDER,
                "agent": "zhangwei", "courier": "liqiang", "customer": "wangfang",
                "conversation_ids": ["cs-wangfang", "g-courier"],
                "agent_to_courier_id": msg("c1.agent_to_courier"), "complaint_id": msg("c1.complaint"),
                "first_reply_id": msg("c1.first_reply"), "settlement_ids": [msg("c1.offer"), msg("c1.accept")],
                "alert_event_id": ev_ids["c1.alert"], "handling_delay_minutes": 120,
                "expected_local_times": {"agent_to_courier": "14:20", "complaint": "14:35", "alert": "14:40", "first_reply": "16:35"},
                "present": msg("c1.complaint") in present,
            },
            "misconduct": {
                "description": "案例2 内部调查: 刘洋 and 陈磊 exchange 23 key messages 08:30-09:15 in a DM (回扣, changing records, "
                               "deleting logs); 刘洋 logs in to erp-01 three times from an unusual IP at 08:41, 08:52, 09:07.",
                "date": "2026-11-24", "window_local": ["2026-11-24 08:30:00", "2026-11-24 09:15:00"],
                "employee": "liuyang", "accomplice": "chenlei", "conversation_id": "dm-liuyang-chenlei",
                "key_message_ids": c2_keys, "key_message_count": len(c2_keys),
                "abnormal_login_event_ids": [ev_ids[k] for k in planted.ABNORMAL_LOGIN_KEYS],
                "abnormal_login_local_times": ["08:41", "08:52", "09:07"],
                "host": planted.ERP_HOST, "unusual_ip": planted.UNUSUAL_IP, "usual_ip": planted.USUAL_IP_LIUYANG,
                "present": c2_keys[0] in present and ev_ids["c2.login1"] in present_events,
            },
            "insult": {
                "description": "Agent 张伟 insults customer 杨帆 (the seed's 小张 example); the customer names it 辱骂 and 投诉.",
                "date": "2026-11-13", "agent": "zhangwei", "customer": "yangfan", "conversation_id": "cs-yangfan",
                "insult_id": msg("c4.insult"), "reaction_id": msg("c4.reaction"), "present": msg("c4.insult") in present,
            },
        },
        "keywords": keywords,
        "evasion_classes": ["natural", "spaces", "ideographic_space", "punctuation", "zero_width", "full_width",
                            "traditional", "pinyin", "mixed_case"],
        "messages": {m.key: entry(m) for m in planted.MESSAGES if m.id in present},
    }


def write_sample_set(
    out_dir: Path, *, messages: int = 3000, seed: int = 7, formats: Iterable[str] = ALL_FORMATS,
    start: date = DEFAULT_START, days: int = DEFAULT_DAYS, tz: str = DEFAULT_TZ,
) -> dict[str, list[Path]]:
    """Write the sample set to ``out_dir``; returns format -> files written.

    Always writes people.csv and planted.json. Deterministic: the same
    arguments give byte-identical files. Raises ValueError for an unknown format.
    """
    out_dir = Path(out_dir)
    formats = list(formats)
    registry = writers()
    unknown = [f for f in formats if f not in registry]
    if unknown:
        raise ValueError(f"unknown or unavailable sample formats: {', '.join(unknown)}")
    convs = directory.conversations(None, messages)
    frame = generate_messages(messages, seed=seed, start=start, days=days, tz=tz)
    events = generate_events(seed=seed, start=start, days=days, tz=tz)
    ctx = SampleContext(out_dir, frame, platform_subset(frame), events, seed, tz, {c.id: c for c in convs})
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    ids: dict[str, dict[str, str]] = {"jsonl": {}, "csv": {}}
    for fmt in formats:
        paths, idmap = registry[fmt](ctx)
        written[fmt] = paths
        if fmt in ("jsonl", "csv"):
            idmap = {m: m for m in frame.filter(pl.col("message_id").str.starts_with("p-"))["message_id"]}
        ids[fmt] = idmap
    ids = {k: v for k, v in ids.items() if v}
    people = out_dir / "people.csv"
    people.write_text(people_csv(directory.people_for(convs)), encoding="utf-8", newline="")
    desc = planted_description(frame, events, ids, seed=seed, tz=tz, start=start, days=days)
    planted_path = out_dir / "planted.json"
    planted_path.write_text(schema.json_text(desc), encoding="utf-8", newline="\n")
    written["people"] = [people]
    written["planted"] = [planted_path]
    return written
