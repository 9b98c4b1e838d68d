"""Report tables and the reviewer's summary, as a lawyer reads them: names, local times with zone, no dtypes."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import polars as pl

from investigator.analysis import People
from investigator.reports import notebook as rn

T0 = datetime(2026, 11, 18, 6, 35, tzinfo=timezone.utc)


def test_table_html_shows_local_times_with_zone_and_no_dtype_rows() -> None:
    frame = pl.DataFrame({"ts": [T0, None], "person": ["王芳", None], "text": ["<b>投诉</b>", ""],
                          "sources": [[{"source": "wecom", "source_file": "chatdata.jsonl"}], []],
                          "delay_minutes": [120.0, None]}).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    html = rn.table_html(frame, tz="Asia/Shanghai", lang="zh")
    assert "<th>时间 (Asia/Shanghai, UTC+08:00)</th>" in html and "<th>人员</th>" in html
    assert "<td>2026-11-18 14:35:00</td>" in html and "<td>120</td>" in html
    assert "&lt;b&gt;投诉&lt;/b&gt;" in html  # escaped, never markup from a message
    assert "wecom: chatdata.jsonl" in html
    for raw in ("shape:", "str", "datetime[", "null", "f64"):
        assert raw not in html
    english = rn.table_html(frame, tz="Asia/Shanghai", lang="en")
    assert "<th>time (Asia/Shanghai, UTC+08:00)</th>" in english and "<th>delay (minutes)</th>" in english


def test_distinct_messages_name_people_and_conversations_and_count_exports() -> None:
    people = People.from_identities({"wangfang": ["wangfang", "王芳", "wmgc"]})
    base = {"msg_type": "text", "text": "我要投诉", "ts": T0}
    frame = pl.DataFrame([
        {**base, "message_id": "1", "source": "wecom", "source_file": "chat.jsonl", "conversation_id": "direct:wmgc|zw",
         "conversation_name": None, "sender_id": "wmgc", "sender_name": "wmgc", "record_hash": "h1"},
        {**base, "message_id": "2", "source": "slack", "source_file": "s.zip", "conversation_id": "D1",
         "conversation_name": "张伟, 王芳", "sender_id": "U0", "sender_name": "王芳", "record_hash": "h2"},
        {**base, "message_id": "3", "source": "wecom", "source_file": "chat.jsonl", "conversation_id": "direct:wmgc|zw",
         "conversation_name": None, "sender_id": "wmgc", "sender_name": "wmgc", "record_hash": "h3",
         "text": "还有人吗"},
    ]).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    out = rn.distinct_messages(frame, people)
    assert out["person"].to_list() == ["王芳", "王芳"]
    assert out["conversation"].to_list() == ["张伟, 王芳", "张伟, 王芳"]  # the WeCom id is never shown
    assert out["exports"].to_list() == [2, 1]
    assert rn.copies_of(out.head(1), frame)["message_id"].to_list() == ["1", "2"]


def test_reviewer_summary_names_case_grant_window_findings_search_and_exclusions() -> None:
    case = SimpleNamespace(timezone="Asia/Shanghai", person="sunli",
                           grant=SimpleNamespace(case="C-1", id="G-1", purpose="customer_complaint"))
    text = rn.reviewer_summary(case, T0, T0.replace(hour=9), findings=["发现 1 条客户投诉。"],
                               searched=["关键词：投诉"], excluded=["员工消息 1 条"], lang="zh")
    assert text.startswith("## 审阅摘要")
    for part in ("C-1", "G-1", "2026-11-18 14:35:00 – 2026-11-18 17:35:00 (Asia/Shanghai)", "1. 发现 1 条客户投诉。",
                 "- 关键词：投诉", "- 员工消息 1 条"):
        assert part in text
    assert "## Reviewer's summary" in rn.reviewer_summary(case, T0, T0, findings=[], searched=[], excluded=[],
                                                         lang="en")


def test_scope_statement_says_the_grant_scope_in_words_not_as_a_window() -> None:
    # "范围: 整个时间窗" beside a report window narrower than the grant's read as the report covering everything
    case = SimpleNamespace(timezone="Asia/Shanghai", person="sunli", start=T0, end=T0.replace(hour=10),
                           fields=("metadata", "content"), scope={"conversations": [], "participants": [], "groups": []},
                           grant=SimpleNamespace(case="C-1", id="G-1", purpose="internal_audit"))
    text = rn.scope_statement(case, T0, T0.replace(hour=9), redact=True, lang="zh")
    assert "- 范围: 不限会话、参与人或群组; 字段: metadata, content" in text and "整个时间窗" not in text
    case.scope = {"conversations": ["wrvYxrVMQQ"], "participants": [], "groups": ["客服一组", "项目A群"]}
    text = rn.scope_statement(case, T0, T0.replace(hour=9), redact=True, lang="en")
    assert "- Scope: conversations wrvYxrVMQQ; groups 客服一组, 项目A群; fields: metadata, content" in text


def test_summary_and_login_tables_have_headings_a_reader_can_read() -> None:
    # the complaint summary and the logins table showed raw column names (median_delay_minutes, ip_share)
    frame = pl.DataFrame({"complaints": [5], "answered": [4], "unanswered": [1], "median_delay_minutes": [150.7],
                          "max_delay_minutes": [454.2], "ip_share": [0.13], "unusual": [True], "delta_minutes": [0.9]})
    zh, en = rn.table_html(frame, tz="Asia/Shanghai"), rn.table_html(frame, tz="Asia/Shanghai", lang="en")
    for heading in ("投诉数", "已回复", "未回复", "处理时长中位数（分钟）", "最长处理时长（分钟）", "该 IP 占其登录比例",
                    "异常", "相隔（分钟）"):
        assert f"<th>{heading}</th>" in zh
    assert "<th>median delay (minutes)</th>" in en and "_minutes" not in zh + en and "ip_share" not in zh + en


def test_the_provenance_line_counts_records_not_messages(monkeypatch) -> None:
    # it said "5699 messages" under a report that counts 3323 distinct messages
    import IPython.display

    shown: list[dict] = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    case = SimpleNamespace(archive=SimpleNamespace(archive_id="A-1"),
                           info=lambda: {"grant_id": "G-1", "window": {}, "messages": 5699, "events": 3041},
                           sources=lambda: {"chunks": ["c1"], "merkle_roots": {"1": "r"}})
    rn.record_provenance(case)
    assert shown[0]["text/plain"] == ("provenance: 1 chunks in 1 batches; 5699 message records (one per export's "
                                      "copy), 3041 event records in the grant window")
    assert shown[0][rn.PROVENANCE_MIME]["rows"] == {"messages": 5699, "events": 3041}  # the sealed record is unchanged
