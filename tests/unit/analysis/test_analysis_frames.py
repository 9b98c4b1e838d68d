"""Filters, context, timeline, metrics and tags on small hand-made frames."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator.analysis import (
    TagSet, activity_heatmap, align_messages, apply_tags, by_conversations, by_groups, by_participants,
    by_senders, by_types, contact_edges, context, filter_by_tag, first_replies, response_times, search,
    silences, time_window, timeline,
)
from investigator.errors import QueryError

T0 = datetime(2026, 11, 18, 6, 0, tzinfo=timezone.utc)  # 14:00 in Shanghai


def _msgs() -> pl.DataFrame:
    rows = [  # (id, conversation, minutes after T0, sender, recipients, type, text)
        ("m0", "c1", 0, "cust", ["agent"], "text", "你好"),
        ("m1", "c1", 2, "agent", ["cust"], "text", "您好"),
        ("m2", "c1", 35, "cust", ["agent"], "text", "我要投诉"),
        ("m3", "c1", 36, "cust", ["agent"], "image", None),
        ("m4", "c1", 155, "agent", ["cust"], "text", "抱歉久等"),
        ("m5", "c2", 10, "wx_li", [], "text", "群里说一下"),
        ("m6", "c2", 11, "agent", [], "voice", None),
        ("m7", "c1", 160, "cust", ["agent"], "text", "好吧"),
    ]
    return pl.DataFrame({
        "message_id": [r[0] for r in rows], "conversation_id": [r[1] for r in rows],
        "conversation_name": ["客户 王芳" if r[1] == "c1" else "#客服群" for r in rows],
        "ts": [T0 + timedelta(minutes=r[2]) for r in rows], "sender_id": [r[3] for r in rows],
        "sender_name": [r[3].upper() for r in rows], "recipients": [r[4] for r in rows],
        "msg_type": [r[5] for r in rows], "text": [r[6] for r in rows],
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def _events() -> pl.DataFrame:
    return pl.DataFrame({
        "event_id": ["e1", "e2"], "ts": [T0 + timedelta(minutes=40), T0 + timedelta(minutes=150)],
        "actor": ["agent", "agent"], "event_type": ["alert", "login"], "host": ["crm", "crm"],
        "ip": [None, "10.0.0.1"], "outcome": ["", "success"], "details": ["delay", ""],
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_filters_compose_with_search() -> None:
    m = _msgs()
    assert time_window(m, "2026-11-18 14:30", "2026-11-18 15:00")["message_id"].to_list() == ["m2", "m3"]
    assert time_window(m, datetime(2026, 11, 18, 8, 30, tzinfo=timezone.utc))["message_id"].to_list() == ["m4", "m7"]
    ids = {"P1": ["wx_li", "agent"]}
    assert by_senders(m, ["P1"], identities=ids)["message_id"].to_list() == ["m1", "m4", "m5", "m6"]
    assert by_participants(m, ["cust"])["message_id"].to_list() == ["m0", "m1", "m2", "m3", "m4", "m7"]
    assert by_participants(m, ["wx_li"], whole_conversations=True)["message_id"].to_list() == ["m5", "m6"]
    assert by_groups(m, ["客服部"], groups={"客服部": ["P1"]}, identities=ids).height == 4
    with pytest.raises(QueryError):
        by_groups(m, ["nope"], groups={"客服部": ["P1"]})
    assert by_conversations(m, ["客服群"])["message_id"].to_list() == ["m5", "m6"]
    assert by_types(m, ["image", "voice"])["message_id"].to_list() == ["m3", "m6"]
    assert search(by_senders(m, ["cust"]), "投诉")["message_id"].to_list() == ["m2"]
    assert by_senders(search(m, "投诉 OR 抱歉"), ["agent"])["message_id"].to_list() == ["m4"]


def test_context_by_count_and_minutes_merges_overlaps() -> None:
    m = _msgs()
    out = context(m, ["m2", "m5"], before=1, after=1)
    assert out["message_id"].to_list() == ["m1", "m2", "m3", "m5", "m6"]
    assert out["snippet"].to_list() == [0, 0, 0, 1, 1]
    assert out.filter("is_hit")["message_id"].to_list() == ["m2", "m5"]
    merged = context(m, ["m1", "m3"], before=1, after=1)
    assert merged["snippet"].unique().to_list() == [0] and merged.height == 5
    by_time = context(m, ["m4"], minutes=10)
    assert by_time["message_id"].to_list() == ["m4", "m7"]
    assert context(m, ["nope"]).height == 0


def test_timeline_orders_messages_and_events_in_lanes() -> None:
    line = timeline(_msgs(), _events())
    assert line["item_id"].to_list()[:6] == ["m0", "m1", "m5", "m6", "m2", "m3"]
    assert line.filter(pl.col("kind") == "event")["lane"].to_list() == ["agent", "agent"]
    assert str(line.schema["ts_local"]) == "Datetime(time_unit='us', time_zone='Asia/Shanghai')"
    assert line.filter(pl.col("item_id") == "m3")["summary"].to_list() == ["image"]  # no text: the type


def test_first_replies_silences_and_alignment() -> None:
    m = _msgs()
    delays = first_replies(m, agents=["agent"])
    by_id = dict(zip(delays["message_id"], delays["delay_minutes"]))
    assert by_id["m0"] == 2.0 and by_id["m2"] == 120.0 and by_id["m7"] is None
    assert first_replies(m, agents=["agent"], trigger_ids=["m3"])["delay_minutes"].to_list() == [119.0]
    gaps = silences(m, timedelta(hours=1))
    assert gaps.select("after_id", "before_id", "minutes").rows() == [("m3", "m4", 119.0)]
    near = align_messages(m.filter(pl.col("message_id") == "m2"), _events())
    assert near.select("message_id", "event_id", "delta_minutes").rows() == [("m2", "e1", 5.0)]
    only_logins = align_messages(m.filter(pl.col("message_id") == "m2"), _events(), event_types=["login"])
    assert only_logins["event_id"].to_list() == ["e2"]


def test_metrics() -> None:
    m = _msgs()
    rt = response_times(m, agents=["agent"], target=timedelta(minutes=5))
    row = rt.row(0, named=True)
    assert (row["replier"], row["replies"], row["breaches"], row["median_minutes"]) == ("AGENT", 2, 1, 61.0)
    per_conv = response_times(m, agents=["agent"], by=("conversation_id",))
    assert per_conv.filter(pl.col("conversation_id") == "c1")["unanswered"].to_list() == [1]
    heat = activity_heatmap(m)
    assert heat.height == 168 and heat["count"].sum() == m.height
    assert heat.filter((pl.col("weekday") == 3) & (pl.col("hour") == 14))["count"].to_list() == [6]  # Wednesday
    edges = contact_edges(m)
    assert ("cust", "agent", "person", 4) in edges.rows()
    assert ("wx_li", "c2", "conversation", 1) in edges.rows()


def test_tags_model() -> None:
    now = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)
    tags = TagSet().add(["m2", "m4"], "evidence", note="complaint", author="sunli", now=now)
    tags = tags.add(["m0"], "irrelevant", author="sunli", now=now)
    tags = tags.remove(["m4"], "evidence", note="wrong thread", author="sunli", now=now)
    assert tags.to_frame().select("message_id", "tag").rows() == [("m0", "irrelevant"), ("m2", "evidence")]
    assert tags.history().height == 4
    m = _msgs()
    assert filter_by_tag(m, tags, "evidence")["message_id"].to_list() == ["m2"]
    assert filter_by_tag(m, tags, ["evidence", "irrelevant"], exclude=True).height == m.height - 2
    applied = apply_tags(m, tags)
    assert applied.filter(pl.col("message_id") == "m2")["notes"].to_list() == [["complaint"]]
    entries = tags.to_jsonl_entries()
    assert set(entries[0]) == {"message_id", "tag", "note", "author", "ts"} and entries[-1]["op"] == "remove"
    assert TagSet.from_entries(entries) == tags
    for bad in ("Evidence", "", "with space"):
        with pytest.raises(ValueError):
            tags.add(["m1"], bad, author="x", now=now)
    with pytest.raises(ValueError):
        tags.add(["m1"], "key", author="x", now=now.replace(tzinfo=None))
    with pytest.raises(ValueError):
        TagSet.from_entries([{"message_id": "m1", "tag": "key", "ts": "2026-11-25T01:00:00+00:00"}])
