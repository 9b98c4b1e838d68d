"""dedupe: one row per distinct message, copies from different exports merged, with corroboration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator import analysis
from investigator.analysis import People, dedupe
from investigator.schema import UTC_US, conform

T0 = datetime(2026, 11, 18, 6, 35, tzinfo=timezone.utc)
IDENTITIES = {"wangfang": ["wangfang", "王芳", "U0WANGFANG", "wmgcCs42YaNEANiWge", "wxid_wangfang"],
              "zhangwei": ["zhangwei", "张伟", "U0ZHANGWEI", "wxid_zhangwei"]}


def _row(source: str, file: str, sender_id: str, text: str | None, at: datetime, *, name: str | None = None,
         n: int = 0) -> dict:
    return {"message_id": f"{source}-{file}-{n}-{at.isoformat()}", "source": source, "source_file": file,
            "source_sha256": f"sha-{source}-{file}", "conversation_id": f"{source}-conv", "ts": at,
            "sender_id": sender_id, "sender_name": name if name is not None else sender_id, "msg_type": "text",
            "text": text, "record_hash": f"h-{source}-{file}-{n}"}


def _frame(rows: list[dict]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows, schema_overrides={"ts": UTC_US}), "messages").with_columns(
        pl.Series("record_hash", [r["record_hash"] for r in rows]))


COMPLAINT = "我要投诉! 订单DD202611180457超时快一个小时了"


def test_copies_across_exports_merge_into_one_row_with_sources_and_hashes() -> None:
    frame = _frame([
        _row("slack", "slack_export.zip", "U0WANGFANG", COMPLAINT, T0 + timedelta(seconds=12, microseconds=5)),
        _row("wecom", "chatdata.jsonl", "wmgcCs42YaNEANiWge", COMPLAINT, T0 + timedelta(seconds=12, milliseconds=300)),
        _row("whatsapp", "WhatsApp Chat with 王芳.txt", "王芳", "我要投诉！ 订单DD202611180457超时快一个小时了", T0),
        # NFKC (full-width "！"), case and whitespace differences are the same displayed text
        _row("telegram", "result.json", "user1022", "我要投诉!\t 订单dd202611180457超时快一个小时了 ", T0 +
             timedelta(seconds=12), name="王芳"),
    ])
    out = dedupe(frame, identities=IDENTITIES)
    assert out.height == 1
    [row] = out.to_dicts()
    assert row["source"] == "wecom"  # the most authoritative copy is kept (会话存档 first)
    assert row["copies"] == 4
    assert [s["source"] for s in row["sources"]] == ["wecom", "slack", "telegram", "whatsapp"]
    assert {s["source_file"] for s in row["sources"]} == {"slack_export.zip", "chatdata.jsonl", "result.json",
                                                         "WhatsApp Chat with 王芳.txt"}
    assert sorted(row["record_hashes"]) == sorted(frame["record_hash"].to_list())
    assert row["record_hashes"][0] == row["record_hash"]
    assert set(out.columns) == set(frame.columns) | {"copies", "sources", "record_hashes"}


def test_repeats_within_one_export_stay_separate_messages() -> None:
    frame = _frame([
        _row("wecom", "chatdata.jsonl", "zhangwei", "收到", T0, n=0),
        _row("wecom", "chatdata.jsonl", "zhangwei", "收到", T0 + timedelta(milliseconds=400), n=1),
        _row("slack", "slack_export.zip", "U0ZHANGWEI", "收到", T0 + timedelta(milliseconds=100), n=0),
    ])
    out = dedupe(frame, identities=IDENTITIES)
    assert out.height == 2  # two messages said in the same second; slack holds one of them
    assert sorted(out["copies"].to_list()) == [1, 2]
    assert out["source"].to_list() == ["wecom", "wecom"]


def test_two_exports_each_with_two_repeats_pair_up() -> None:
    frame = _frame([
        _row("wecom", "a.jsonl", "zhangwei", "好的", T0 + timedelta(seconds=s), n=i)
        for i, s in enumerate((1, 1))] + [
        _row("slack", "b.zip", "zhangwei", "好的", T0 + timedelta(seconds=s), n=i) for i, s in enumerate((1, 1))] + [
        _row("whatsapp", "c.txt", "张伟", "好的", T0, n=i) for i in range(2)])
    out = dedupe(frame, identities=IDENTITIES)
    assert out["copies"].to_list() == [3, 3]


def test_times_at_the_precision_edge() -> None:
    whatsapp = _row("whatsapp", "w.txt", "王芳", "还有人吗", T0)  # 06:35 (minutes only)
    inside = _row("slack", "s.zip", "U0WANGFANG", "还有人吗", T0 + timedelta(seconds=59, microseconds=999_999))
    outside = _row("telegram", "t.json", "wangfang", "还有人吗", T0 + timedelta(minutes=1))
    before = _row("discord", "d.json", "wangfang", "还有人吗", T0 - timedelta(microseconds=1))
    out = dedupe(_frame([whatsapp, inside, outside, before]), identities=IDENTITIES)
    assert sorted(out["copies"].to_list()) == [1, 1, 2]
    merged = out.filter(pl.col("copies") == 2)
    assert {s["source"] for s in merged["sources"][0]} == {"slack", "whatsapp"}
    # between two second-precise exports a second apart is no longer the same time
    fine = dedupe(_frame([_row("wecom", "a", "wangfang", "x", T0 + timedelta(seconds=1, microseconds=999_999)),
                          _row("slack", "b", "wangfang", "x", T0 + timedelta(seconds=2))]), identities=IDENTITIES)
    assert fine.height == 2
    same_second = dedupe(_frame([_row("wecom", "a", "wangfang", "x", T0 + timedelta(seconds=2, milliseconds=999)),
                                 _row("slack", "b", "wangfang", "x", T0 + timedelta(seconds=2))]),
                         identities=IDENTITIES)
    assert same_second.height == 1


def test_an_account_linked_to_a_person_merges_and_unlinked_accounts_do_not() -> None:
    frame = _frame([_row("wecom", "a", "wmgcCs42YaNEANiWge", COMPLAINT, T0),
                    _row("wechat-wechatmsg", "b.csv", "self", COMPLAINT, T0, name="wxid_wangfang")])
    assert dedupe(frame, identities=IDENTITIES).height == 1  # id unknown, name linked: resolved by name
    assert dedupe(frame).height == 2  # without the directory's links they are two senders
    assert dedupe(frame, identities={"wangfang": ["wmgcCs42YaNEANiWge"]}).height == 2


def test_different_text_or_sender_or_homoglyph_stays_apart() -> None:
    frame = _frame([_row("wecom", "a", "wangfang", "加班费", T0),
                    _row("slack", "b", "U0WANGFANG", "加班费用", T0),
                    _row("telegram", "c", "U0ZHANGWEI", "加班费", T0),
                    _row("discord", "d", "wangfang", "加班費", T0)])  # traditional: the search skeleton's business
    assert dedupe(frame, identities=IDENTITIES).height == 4


def test_rows_without_text_never_merge_and_empty_frames_keep_their_schema() -> None:
    frame = _frame([_row("wecom", "a", "wangfang", None, T0), _row("slack", "b", "wangfang", "", T0)])
    out = dedupe(frame, identities=IDENTITIES)
    assert out["copies"].to_list() == [1, 1]
    empty = dedupe(frame.clear())
    assert empty.height == 0 and {"copies", "sources", "record_hashes"} <= set(empty.columns)
    no_text = dedupe(frame.drop("text"))  # a metadata-only grant
    assert no_text.height == 2


def test_unknown_senders_are_labelled_with_their_platform_and_merge_only_on_one_platform() -> None:
    people = People.from_identities(IDENTITIES)
    frame = _frame([_row("wechat-pywxdump", "a.csv", "wxid_tom", "hi", T0, name="Tom"),
                    _row("wechat-wechatmsg", "b.csv", "wxid_tom", "hi", T0 + timedelta(seconds=30), name="Tom"),
                    _row("whatsapp", "c.txt", "Tom", "hi", T0, name="Tom")])
    assert people.resolve(frame)["person"].to_list() == ["Tom (wechat)", "Tom (wechat)", "Tom (whatsapp)"]
    out = dedupe(frame, identities=people)
    assert sorted(out["copies"].to_list()) == [1, 2]


def test_input_order_is_kept_and_the_function_is_exported() -> None:
    rows = [_row("wecom", "a", "wangfang", f"m{i}", T0 + timedelta(minutes=i)) for i in range(5)]
    frame = _frame(rows)
    out = analysis.dedupe(frame, identities=IDENTITIES)
    assert out["message_id"].to_list() == frame["message_id"].to_list()
    assert out["copies"].to_list() == [1] * 5


@pytest.mark.parametrize("copies", [1, 3])
def test_many_messages_merge_column_wise(copies: int) -> None:
    n = 3000
    rows = [_row(src, f"{src}.f", "zhangwei", f"message {i}", T0 + timedelta(seconds=i), n=i)
            for src in ("wecom", "slack", "telegram")[:copies] for i in range(n)]
    out = dedupe(_frame(rows), identities=IDENTITIES)
    assert out.height == n
    assert set(out["copies"].to_list()) == {copies}


def test_a_complaint_is_answered_when_staff_replies_in_a_conversation_one_of_its_copies_sits_in() -> None:
    people = People.from_identities(IDENTITIES, names={"wangfang": "王芳", "zhangwei": "张伟"})
    rows = [
        _row("wecom", "a.jsonl", "wmgcCs42YaNEANiWge", COMPLAINT, T0, n=0),
        _row("slack", "b.zip", "U0WANGFANG", COMPLAINT, T0, n=0),
        # staff talk about it elsewhere first (not a reply in the complaint's conversation) ...
        _row("slack", "b.zip", "U0ZHANGWEI", "王芳的投诉", T0 + timedelta(minutes=5), n=1),
        # ... and answer in the slack copy's conversation two hours later
        _row("slack", "b.zip", "U0ZHANGWEI", "您好,抱歉久等", T0 + timedelta(minutes=120), n=2),
    ]
    rows[2]["conversation_id"] = "staff-room"
    frame = _frame(rows)
    distinct = people.resolve(dedupe(frame, identities=people))
    complaints = distinct.filter(pl.col("text") == COMPLAINT)
    out = analysis.first_staff_reply(distinct, frame, triggers=complaints, responders={"zhangwei"})
    assert out.height == 1
    assert out["delay_minutes"].to_list() == [120.0] and out["replier"].to_list() == ["张伟"]
    nobody = analysis.first_staff_reply(distinct, frame, triggers=complaints, responders={"zhaomin"})
    assert nobody["delay_minutes"].to_list() == [None]


def test_resolving_twice_replaces_the_person_columns() -> None:
    people = People.from_identities(IDENTITIES, names={"wangfang": "王芳"})
    frame = _frame([_row("wecom", "a", "wmgcCs42YaNEANiWge", "x", T0)])
    once = people.resolve(frame)
    twice = people.resolve(once)
    assert twice.columns == once.columns and twice["person"].to_list() == ["王芳"]
    assert dedupe(once, identities=people)["person"].to_list() == ["王芳"]


def _event(source: str, file: str, event_type: str, at: datetime, *, actor: str = "liuyang", ip: str | None = "203.0.113.7",
           details: str = "{}", n: int = 0) -> dict:
    return {"event_id": f"{source}-{n}", "source": source, "source_file": file, "source_sha256": f"sha-{file}",
            "ts": at, "actor": actor, "event_type": event_type, "host": "erp-01", "ip": ip, "outcome": "success",
            "details": details, "record_hash": f"h-{source}-{n}"}


def test_an_event_two_exports_hold_is_one_event_corroborated_twice() -> None:
    # the demo's auth.log and events.csv both record each login: a report listed every login twice
    frame = conform(pl.DataFrame([
        _event("sample", "events.csv", "login", T0, details='{"method": "ssh"}', n=0),
        _event("authlog", "auth.log", "login", T0, details='{"program": "sshd"}', n=1),
        _event("authlog", "auth.log", "session_open", T0, ip=None, n=2),           # another event type: kept
        _event("authlog", "auth.log", "login_failed", T0 + timedelta(minutes=1), n=3),
        _event("authlog", "auth.log", "login_failed", T0 + timedelta(minutes=1), n=4),  # two lines of one export
        _event("sample", "events.csv", "login_failed", T0 + timedelta(minutes=1), n=5),
        _event("sample", "events.csv", "login", T0, actor="chenlei", n=6),          # another actor: kept
    ], schema_overrides={"ts": UTC_US}), "events").with_columns(
        pl.Series("record_hash", [f"h-{i}" for i in range(7)]))
    out = analysis.dedupe_events(frame)
    assert out.height == 5
    rows = out.to_dicts()
    login = next(r for r in rows if r["event_type"] == "login" and r["actor"] == "liuyang")
    assert login["source"] == "authlog" and login["copies"] == 2  # the system's own log is the kept copy
    assert [s["source"] for s in login["sources"]] == ["authlog", "sample"]
    assert sorted(login["record_hashes"]) == ["h-0", "h-1"]
    failed = [r["copies"] for r in rows if r["event_type"] == "login_failed"]
    assert sorted(failed) == [1, 2]  # one auth.log line pairs with events.csv; its repeat stays its own event
    kept = out["event_id"].to_list()
    assert kept == [e for e in frame["event_id"].to_list() if e in kept]  # in the frame's order
    assert set(out.columns) == set(frame.columns) | {"copies", "sources", "record_hashes"}
    assert analysis.dedupe_events(frame.head(0)).height == 0
