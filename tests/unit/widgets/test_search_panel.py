"""SearchPanel: setting control values changes the count, the table's rows and the context as analysis says."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from investigator import analysis as A
from investigator.errors import PolicyDenied
from investigator.widgets.search import SearchPanel, check_range, grant_range
from investigator.widgets.table import PagedTable, highlight


@pytest.fixture
def panel(demo_case, demo_messages):
    return SearchPanel(demo_case, messages=demo_messages, lang="en", page_size=10, distinct=False)


def _ids(frame: pl.DataFrame) -> list[str]:
    return frame["message_id"].to_list()


def test_starts_with_the_whole_grant(panel, demo_messages):
    assert panel.count_value == demo_messages.height
    assert panel.range == panel.window
    assert f">{demo_messages.height:,}<" in panel.count.value
    assert len(panel.table.page_rows()) == 10


def test_query_mode_and_pinyin_follow_search(panel, demo_messages):
    panel.query.value = "投诉"
    expected = A.search(demo_messages, "投诉", tz="Asia/Shanghai")
    assert _ids(panel.results) == _ids(expected) and panel.count_value > 0
    assert [r["message_id"] for r in panel.table.page_rows()] == _ids(expected)[:10]
    assert f">{expected.height:,}<" in panel.count.value
    panel.pinyin.value = True
    panel.query.value = "tousu"
    assert _ids(panel.results) == _ids(A.search(demo_messages, "tousu", pinyin=True))
    panel.pinyin.value = False
    panel.mode.value = "regex"
    panel.query.value = "DD\\d{6}"
    assert _ids(panel.results) == _ids(A.search(demo_messages, "DD\\d{6}", mode="regex")) and panel.count_value


def test_filters_follow_analysis(panel, demo_case, demo_messages):
    ids = demo_case.identities()
    panel.senders.value = ("zhangwei",)
    assert _ids(panel.results) == _ids(A.by_senders(demo_messages, ["zhangwei"], identities=ids))
    panel.senders.value = ()
    panel.participants.value = ("wangfang",)
    assert _ids(panel.results) == _ids(A.by_participants(demo_messages, ["wangfang"], identities=ids))
    panel.participants.value = ()
    panel.groups.value = ("客服部",)
    assert _ids(panel.results) == _ids(A.by_groups(demo_messages, ["客服部"], groups=demo_case.groups(),
                                                   identities=ids))
    panel.groups.value = ()
    panel.types.value = ("image",)
    assert set(panel.results["msg_type"]) == {"image"}
    assert panel.count_value == A.by_types(demo_messages, ["image"]).height


def test_presets_and_ranges_stay_inside_the_grant(panel, demo_messages):
    start, end = panel.window
    panel.preset.value = "last_hour"
    assert panel.range == (end - timedelta(hours=1), end)
    assert panel.count_value == A.time_window(demo_messages, end - timedelta(hours=1), end).height
    panel.preset.value = "last_week"  # clipped to the grant
    assert panel.range == (start, end)
    with pytest.raises(PolicyDenied) as refused:
        panel.set_range(start - timedelta(hours=1), end)
    assert refused.value.rule == "grant.window"
    assert panel.range == (start, end)
    with pytest.raises(PolicyDenied):
        panel.set_range(start, end + timedelta(seconds=1))
    # through the pickers: refused, shown, reverted
    before = panel.count_value
    panel.end_picker.value = panel.end_picker.value + timedelta(days=1)
    assert "refused" in panel.status.value
    assert panel.end_picker.value == end.astimezone(panel.zone).replace(tzinfo=None)
    assert panel.count_value == before
    # a valid custom range through the pickers
    panel.start_picker.value = datetime(2026, 11, 18, 14, 30)
    assert panel.preset.value == "custom"
    assert panel.count_value == A.time_window(demo_messages, "2026-11-18 14:30", end).height


def test_grant_range_helpers():
    from datetime import timezone
    window = (datetime(2026, 11, 18, 6, tzinfo=timezone.utc), datetime(2026, 11, 18, 9, tzinfo=timezone.utc))
    assert grant_range(window, "last_day") == window
    assert grant_range(window, "last_hour")[0] == datetime(2026, 11, 18, 8, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        grant_range(window, "forever")
    with pytest.raises(PolicyDenied):
        check_range(window, window[1], window[0])


def test_paging_and_context(panel, demo_messages):
    assert panel.table.pages == -(-demo_messages.height // 10)
    first = [r["message_id"] for r in panel.table.page_rows()]
    panel.table.turn(1)
    assert [r["message_id"] for r in panel.table.page_rows()] == _ids(demo_messages)[10:20] != first
    panel.table.turn(-5)
    assert panel.table.page == 0
    panel.query.value = "投诉"
    panel.table._opens[0].click()
    hit = panel.results["message_id"][0]
    assert panel.table.focused == hit
    expected = A.context(demo_messages, [hit], before=5, after=5)
    for mid in expected["message_id"]:
        assert f"data-message-id='{mid}'" in panel.context.value
    assert "<mark>投诉</mark>" in panel.context.value


def test_bad_query_shows_the_error_and_keeps_results(panel):
    panel.query.value = "投诉"
    count = panel.count_value
    panel.query.value = "(投诉"
    assert "Error" in panel.status.value and panel.count_value == count


def test_table_selection_and_highlight(demo_messages):
    table = PagedTable(demo_messages, page_size=5, lang="en")
    table._checks[1].value = True
    table.turn(1)
    table._checks[0].value = True
    assert table.selected == [demo_messages["message_id"][1], demo_messages["message_id"][5]]
    table.turn(-1)
    assert table._checks[1].value is True
    assert highlight("我要投 诉<b>", ["投诉"]) == "我要<mark>投 诉</mark>&lt;b&gt;"
    assert highlight("order DD123456", [], mode="regex", query=r"dd\d+") == "order <mark>DD123456</mark>"


def test_labels_chinese_by_default(widget_archive, demo_messages, monkeypatch):
    from investigator.demo import open_demo_case

    monkeypatch.delenv("INVESTIGATOR_LANG", raising=False)
    case = open_demo_case(widget_archive)  # the language is read at the edge, when the case opens
    assert case.lang == "zh-CN"
    panel = SearchPanel(case, messages=demo_messages)
    assert panel.query.description == "关键词" and "命中" in panel.count.value
    assert "Asia/Shanghai" in panel.range_note.value


def test_the_case_language_comes_from_the_edge_and_an_explicit_lang_wins(widget_archive, demo_messages, monkeypatch):
    from investigator.demo import open_demo_case

    monkeypatch.setenv("INVESTIGATOR_LANG", "en-US")
    case = open_demo_case(widget_archive)
    assert case.lang == "en"
    monkeypatch.delenv("INVESTIGATOR_LANG")  # widgets never read it themselves
    assert SearchPanel(case, messages=demo_messages).query.description == "Keywords"
    assert SearchPanel(case, messages=demo_messages, lang="zh-CN").query.description == "关键词"
