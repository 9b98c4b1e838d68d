"""The results table (wrap, ids on hover, sort, select page/all, jump) and the thread view, on small frames."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator.widgets.conversation import ThreadView
from investigator.widgets.table import PagedTable

T0 = datetime(2026, 11, 18, 6, 0, tzinfo=timezone.utc)
LONG_ID = "wxid_" + "x" * 40


def _frame(n: int = 23) -> pl.DataFrame:
    return pl.DataFrame({
        "message_id": [f"m{i:02d}" for i in range(n)],
        "ts": [T0 + timedelta(minutes=i) for i in range(n)],
        "sender_id": [LONG_ID if i % 2 else "zhangwei" for i in range(n)],
        "sender_name": [None if i % 2 else "张伟" for i in range(n)],
        "conversation_id": ["c1" if i < 15 else "c2" for i in range(n)],
        "conversation_name": ["客服群" if i < 15 else None for i in range(n)],
        "msg_type": ["text"] * n,
        "text": [("第%d条 " % i) + "很长的消息内容 " * 60 if i == 3 else f"消息 {n - i:03d}" for i in range(n)],
    })


def test_text_wraps_in_full_and_ids_are_cut_with_the_full_value_on_hover():
    table = PagedTable(_frame(), page_size=5, tz="Asia/Shanghai", lang="en")
    text = table._cells[3][5].value
    assert "很长的消息内容 " * 60 in text  # the whole text, not a clipped prefix
    assert "white-space:pre-wrap" in text and "max-height" in text and "overflow-y:auto" in text
    sender = table._cells[1][1].value
    assert f"title='{LONG_ID}'" in sender and LONG_ID not in sender.split(">", 1)[1]  # shown cut, whole on hover
    assert "…" in sender
    assert "title='张伟 (zhangwei)'" in table._cells[0][1].value


def test_sort_by_any_column_and_reverse():
    table = PagedTable(_frame(), page_size=5, lang="en")
    table.sort_by("text")
    first = [r["text"] for r in table.page_rows()]
    assert first == sorted(_frame()["text"].to_list())[:5]
    table.sort_by("text")  # again: descending
    assert table.sort == ("text", True) and table.page_rows()[0]["text"] == max(_frame()["text"].to_list())
    assert table._headers["text"].description.endswith("▼")
    table.sort_by("ts", descending=True)
    assert table.page_rows()[0]["message_id"] == "m22"
    table.set_frame(_frame().head(10))  # a new result keeps the sort
    assert table.page_rows()[0]["message_id"] == "m09"
    with pytest.raises(ValueError):
        table.sort_by("colour")


def test_select_page_select_all_none_and_jump_to_page():
    table = PagedTable(_frame(), page_size=5, lang="en")
    table.jump.value = 3
    assert table.page == 2 and [r["message_id"] for r in table.page_rows()][0] == "m10"
    table.select_page_button.click()
    assert table.selected == [f"m{i}" for i in range(10, 15)]
    assert all(c.value for c in table._checks)
    table.go_to(99)
    assert table.page == table.pages - 1 == 4 and table.jump.value == 5
    table.select_all_button.click()
    assert len(table.selected) == 23
    table.clear_button.click()
    assert table.selected == [] and not any(c.value for c in table._checks)
    # ticking one box on a page keeps the others
    table.select(["m00"])
    table.go_to(1)
    table._checks[1].value = True
    assert table.selected == ["m00", "m01"]


def test_thread_view_pages_through_the_whole_conversation():
    frame = _frame()
    thread = ThreadView(frame, tz="Asia/Shanghai", lang="en", page_size=4)
    assert thread.layout.display == "none"
    rows = thread.show("m09")
    assert rows["message_id"].to_list() == [f"m{i:02d}" for i in range(15)]  # conversation c1 only
    assert thread.page == 2 and thread.layout.display == "flex"
    assert "data-message-id='m09'" in thread.body.value and "font-weight:600" in thread.body.value
    assert "9–12 of 15" in thread.position.value and "客服群" in thread.title.value
    thread.next_button.click()
    assert "data-message-id='m12'" in thread.body.value and "m09" not in thread.body.value
    thread.turn(10)
    assert thread.page == 3 and thread.next_button.disabled
    assert thread.show("nope").height == 0 and thread.layout.display == "none"


def test_run_saved_search_filters_like_the_panel():
    from investigator.widgets.saved import run_saved_search

    frame = _frame()
    params = {"query": "消息", "mode": "exact", "start": (T0 + timedelta(minutes=5)).isoformat(),
              "end": (T0 + timedelta(minutes=10)).isoformat(), "types": ["text"]}
    hits = run_saved_search(frame, params, tz="Asia/Shanghai")
    assert hits["message_id"].to_list() == [f"m{i:02d}" for i in range(5, 10)]
    assert run_saved_search(frame, {"query": "第3条"}, tz="UTC")["message_id"].to_list() == ["m03"]
    assert run_saved_search(frame, {}, tz="UTC").height == frame.height
    with pytest.raises(ValueError):
        run_saved_search(frame, {"start": "2026-11-18T06:00:00", "end": "2026-11-18T07:00:00"}, tz="UTC")
