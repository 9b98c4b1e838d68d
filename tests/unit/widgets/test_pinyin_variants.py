"""Pinyin mode in the results: the hit shows the spellings that matched (匹配变体) and the text marks them.

Issue #16 item 3: a pinyin search for 加班费 finds 加班非 (a homophone) and 加ban费 (a mixture); the table's
variants column names what matched and the highlight covers those characters. Without pinyin, neither is
a hit and no variants column is shown.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator.widgets.search import SearchPanel
from investigator.widgets.table import PagedTable, highlight

HOMOPHONE = "老板说加班非下周发"
MIXED = "加ban费呢?"


def _visible(widget) -> bool:
    return widget.layout.display != "none"


@pytest.fixture
def panel(demo_case, demo_messages):
    plain = demo_messages.filter(~pl.col("text").fill_null("").str.contains("(?i)加班|jia ?ban|加ban"))
    template = plain.filter(pl.col("msg_type") == "text").head(1)
    planted = pl.concat([
        template.with_columns(pl.lit("homophone-1").alias("message_id"), pl.lit(HOMOPHONE).alias("text")),
        template.with_columns(pl.lit("mixed-1").alias("message_id"), pl.lit(MIXED).alias("text")),
    ])
    # the stored normalization (text_norm and its version) belongs to the old texts: search recomputes it
    derived = [c for c in plain.columns if c.startswith("text_norm")]
    frame = pl.concat([plain.head(30), planted], how="vertical_relaxed").drop(derived)
    return SearchPanel(demo_case, messages=frame, lang="en", page_size=50, distinct=False)


def test_pinyin_search_shows_the_variant_and_highlights_it(panel):
    panel.query.value = "加班费"
    assert panel.results.height == 0  # exact mode: a homophone is not the keyword
    assert not _visible(panel.table._headers["variants"])

    panel.pinyin.value = True  # re-runs the search with pinyin
    rows = {r["message_id"]: r for r in panel.table.page_rows()}
    assert set(rows) == {"homophone-1", "mixed-1"}
    assert rows["homophone-1"]["matched_variants"] == ["加班非"]
    header = panel.table._headers["variants"]
    assert _visible(header) and header.description == "Variants"
    cells = {r["message_id"]: panel.table._cells[i] for i, r in enumerate(panel.table.page_rows())}
    homophone = cells["homophone-1"]
    assert _visible(homophone[6]) and "加班非" in homophone[6].value
    assert "<mark>加班非</mark>" in homophone[5].value  # the text marks the homophone itself
    assert "加ban费" in cells["mixed-1"][6].value and "<mark>加ban费</mark>" in cells["mixed-1"][5].value

    panel.pinyin.value = False  # back to exact: no hits, the column goes away
    assert panel.results.height == 0 and not _visible(panel.table._headers["variants"])


def test_the_column_is_chinese_by_default_and_sorts():
    t0 = datetime(2026, 11, 18, 6, 0, tzinfo=timezone.utc)
    frame = pl.DataFrame({"message_id": ["a", "b"], "ts": [t0, t0 + timedelta(minutes=1)], "sender_id": ["x", "y"],
                          "conversation_id": ["c", "c"], "msg_type": ["text", "text"],
                          "text": ["加ban费呢", "加班非"], "matched_terms": [["加班费"], ["加班费"]],
                          "matched_variants": [["加ban费"], ["加班非"]]})
    table = PagedTable(frame, page_size=5, lang="zh", pinyin=True)
    assert table._headers["variants"].description == "匹配变体"
    assert table.grid.layout.grid_template_columns.endswith("130px")
    table.sort_by("variants", descending=True)
    assert [r["message_id"] for r in table.page_rows()] == ["b", "a"]
    plain = PagedTable(frame.drop("matched_variants"), page_size=5, lang="zh", pinyin=False)
    assert not _visible(plain._headers["variants"]) and not _visible(plain._cells[0][6])
    assert "<mark>" not in plain._cells[0][5].value  # pinyin off: a match by sound is not marked


def test_highlight_follows_the_pinyin_toggle():
    assert highlight(HOMOPHONE, ["加班费"], pinyin=True) == "老板说<mark>加班非</mark>下周发"
    assert highlight(HOMOPHONE, ["加班费"], pinyin=False) == HOMOPHONE
