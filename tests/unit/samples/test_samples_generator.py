"""The generator: determinism, schema, planted cases at exact times, clean bulk traffic."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from investigator import schema
from investigator.demo.samples import generate_events, generate_messages, write_sample_set
from investigator.demo.samples import planted
from investigator.demo.samples import vocabulary

TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return generate_messages(3000, seed=7)


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return generate_events(seed=7)


def local(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(local=pl.col("ts").dt.convert_time_zone(TZ))


def test_messages_are_deterministic_and_seed_dependent(frame: pl.DataFrame) -> None:
    assert generate_messages(3000, seed=7).equals(frame)
    other = generate_messages(3000, seed=8)
    assert not other.equals(frame)


def test_messages_conform_to_schema_and_are_sorted(frame: pl.DataFrame) -> None:
    assert frame.schema == pl.Schema(schema.full_schema("messages"))
    assert frame.height == 3000
    assert frame["ts"].is_sorted()
    assert frame["message_id"].is_unique().all()
    assert set(frame["msg_type"]) <= set(schema.MSG_TYPES)
    assert set(frame["conversation_type"]) <= set(schema.CONVERSATION_TYPES)
    assert frame["source"].null_count() == 0


def test_times_fall_in_the_default_window(frame: pl.DataFrame) -> None:
    days = local(frame)["local"].dt.date()
    assert days.min() >= date(2026, 11, 2) and days.max() <= date(2026, 11, 29)


def test_bulk_has_every_message_type_and_references_resolve(frame: pl.DataFrame) -> None:
    assert {"text", "image", "voice", "video", "file", "link", "system", "recall"} <= set(frame["msg_type"])
    ids = set(frame["message_id"])
    assert set(frame["reply_to"].drop_nulls()) <= ids
    assert set(frame["original_id"].drop_nulls()) <= ids
    files = frame.filter(pl.col("msg_type").is_in(["image", "file", "voice", "video"]))
    assert files["attachment_sha256"].str.len_chars().eq(64).all()
    assert files["attachment_size"].null_count() == 0


def test_complaint_case_times(frame: pl.DataFrame) -> None:
    rows = {r["message_id"]: r for r in local(frame).iter_rows(named=True)}
    assert rows["p-c1-agent_to_courier"]["local"].strftime("%Y-%m-%d %H:%M") == "2026-11-18 14:20"
    assert rows["p-c1-agent_to_courier"]["sender_id"] == "zhangwei"
    assert rows["p-c1-complaint"]["local"].strftime("%H:%M") == "14:35"
    assert "投诉" in rows["p-c1-complaint"]["text"]
    assert rows["p-c1-first_reply"]["local"].strftime("%H:%M") == "16:35"
    # The first agent message in the customer's conversation after the complaint is the 16:35 one.
    conv = local(frame).filter(
        (pl.col("conversation_id") == "cs-wangfang") & (pl.col("sender_id") == "zhangwei")
        & (pl.col("ts") > rows["p-c1-complaint"]["ts"])
    )
    assert conv["message_id"][0] == "p-c1-first_reply"


def test_misconduct_case_has_23_messages_in_window(frame: pl.DataFrame) -> None:
    window = local(frame).filter(
        (pl.col("conversation_id") == "dm-liuyang-chenlei")
        & pl.col("local").dt.replace_time_zone(None).is_between(
            pl.datetime(2026, 11, 24, 8, 30), pl.datetime(2026, 11, 24, 9, 15, 59))
    )
    assert window.height == 23
    assert set(window["sender_id"]) == {"liuyang", "chenlei"}


def test_three_abnormal_logins(events: pl.DataFrame) -> None:
    ev = events.with_columns(local=pl.col("ts").dt.convert_time_zone(TZ))
    logins = ev.filter((pl.col("actor") == "liuyang") & (pl.col("event_type") == "login")
                       & pl.col("details").str.contains("anomaly"))
    assert logins["local"].dt.strftime("%Y-%m-%d %H:%M").to_list() == [
        "2026-11-24 08:41", "2026-11-24 08:52", "2026-11-24 09:07"]
    assert set(logins["ip"]) == {planted.UNUSUAL_IP} and set(logins["host"]) == {"erp-01"}
    assert (logins["outcome"] == "success").all()
    normal = ev.filter((pl.col("actor") == "liuyang") & (pl.col("event_type") == "login") & ~pl.col("details").str.contains("anomaly"))
    assert normal.height > 10 and set(normal["ip"]) == {planted.USUAL_IP_LIUYANG}
    alert = ev.filter(pl.col("event_id") == "p-c1-alert")
    assert alert["local"].dt.strftime("%Y-%m-%d %H:%M").to_list() == ["2026-11-18 14:40"]
    assert alert["event_type"][0] == "delivery_delay_alert"


def test_events_conform(events: pl.DataFrame) -> None:
    assert events.schema == pl.Schema(schema.full_schema("events"))
    assert events["event_id"].is_unique().all() and events["ts"].is_sorted()
    assert generate_events(seed=7).equals(events)
    assert {"login", "logout", "login_failed", "order", "ticket", "alert", "delivery_delay_alert"} <= set(events["event_type"])


def test_bulk_traffic_never_contains_a_planted_keyword(frame: pl.DataFrame) -> None:
    bulk = frame.filter(~pl.col("message_id").str.starts_with("p-"))
    texts = bulk["text"].drop_nulls().unique().to_list() + bulk["attachment_name"].drop_nulls().unique().to_list()
    assert texts and all(vocabulary.is_clean(t) for t in texts)


def test_every_planted_keyword_message_is_unclean_and_labeled() -> None:
    for m in planted.MESSAGES:
        if m.labels:
            assert m.text and not vocabulary.is_clean(m.text), m.key


def test_planted_cases_are_left_out_when_the_window_misses_them() -> None:
    early = generate_messages(200, start=date(2026, 10, 1), days=10)
    assert not early["message_id"].str.starts_with("p-").any()


def test_other_time_zone_and_many_conversations() -> None:
    out = generate_messages(2000, seed=3, tz="Europe/Berlin", conversations=200, days=60, start=date(2026, 10, 1))
    assert out.height == 2000 and out["conversation_id"].n_unique() > 100


def test_write_sample_set_is_byte_identical(tmp_path: Path) -> None:
    fmts = ["jsonl", "csv", "events-jsonl", "events-csv", "authlog"]
    a = write_sample_set(tmp_path / "a", messages=600, formats=fmts)
    write_sample_set(tmp_path / "b", messages=600, formats=fmts)
    for paths in a.values():
        for p in paths:
            twin = tmp_path / "b" / p.relative_to(tmp_path / "a")
            assert p.read_bytes() == twin.read_bytes(), p.name


def test_planted_json_ids_exist_in_jsonl(tmp_path: Path) -> None:
    write_sample_set(tmp_path, messages=800, formats=["jsonl", "events-jsonl"])
    ids = set(pl.read_ndjson(tmp_path / "normalized" / "messages.jsonl", infer_schema_length=None)["message_id"])
    event_ids = set(pl.read_ndjson(tmp_path / "events" / "events.jsonl", infer_schema_length=None)["event_id"])
    desc = json.loads((tmp_path / "planted.json").read_text(encoding="utf-8"))
    assert {m["message_id"] for m in desc["messages"].values()} <= ids
    assert set(desc["cases"]["misconduct"]["key_message_ids"]) <= ids
    assert len(desc["cases"]["misconduct"]["key_message_ids"]) == 23
    assert set(desc["cases"]["misconduct"]["abnormal_login_event_ids"]) <= event_ids
    for kw, entry in desc["keywords"].items():
        assert entry["matches"], kw
        assert {h["message_id"] for h in entry["matches"]} <= ids
        assert set(entry["near_misses"]) <= ids


@pytest.mark.slow
def test_one_million_rows() -> None:
    big = generate_messages(1_000_000, seed=11)
    assert big.height == 1_000_000
    assert big["message_id"].is_unique().all()
