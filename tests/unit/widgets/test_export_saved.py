"""On a private copy of the demo case: distinct messages with their copies, the thread, saved searches, exports."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import polars as pl
import pytest

from investigator import analysis as A
from investigator.errors import PolicyDenied
from investigator.reports.exports import export_messages
from investigator.widgets import SearchPanel, TagPanel


def _audit(case, action):
    return [e for e in case.archive.audit.entries() if e.action == action]


@pytest.fixture(scope="module")
def fresh_case(demo_archive, tmp_path_factory):
    """One private copy of the demo archive for this module (its tests write tags, searches, exports)."""
    import shutil

    from investigator.demo import open_demo_case

    target = tmp_path_factory.mktemp("export-saved") / "demo-archive"
    shutil.copytree(demo_archive, target)
    return open_demo_case(target)


@pytest.fixture
def panel(fresh_case):
    return SearchPanel(fresh_case, lang="en", exporter=export_messages)


def test_distinct_by_default_with_corroboration_and_the_copies(panel):
    every = panel.all_copies
    distinct = A.dedupe(every, identities=panel.identities)
    assert distinct.height < every.height  # the demo's complaint is held by several exports
    assert panel.count_value == distinct.height
    panel.query.value = "投诉"
    hits = panel.results
    assert hits["message_id"].to_list() == A.search(distinct, "投诉", tz=panel.tz)["message_id"].to_list()
    assert f"{hits['copies'].sum():,} copies across the exports" in panel.count.value
    merged = hits.filter(pl.col("copies") > 1).row(0, named=True)
    panel.table.focused = merged["message_id"]
    assert not panel.copies_button.disabled
    panel.copies_button.click()
    copies = panel.copies_of(merged["message_id"])
    assert copies.height == merged["copies"] and set(copies["record_hash"]) == set(merged["record_hashes"])
    assert panel.copies.value.count("<tr>") == merged["copies"]
    # the copies column says how many exports corroborate the row, with their names on hover
    row = next(i for i, r in enumerate(panel.table.page_rows()) if r["message_id"] == merged["message_id"])
    assert f"×{merged['copies']}" in panel.table._cells[row][4].value and "corroborated by" in \
        panel.table._cells[row][4].value
    # every copy again, on request
    panel.distinct.value = False
    assert panel.count_value == A.search(every, "投诉", tz=panel.tz).height > hits.height
    # the thread of a hit: its whole conversation, paged
    panel.thread_button.click()
    conversation = every.filter(pl.col("message_id") == merged["message_id"])["conversation_id"][0]
    assert panel.thread.thread.height == every.filter(pl.col("conversation_id") == conversation).height


def test_saved_searches_store_parameters_only_rerun_and_are_audited(panel, fresh_case):
    panel.query.value = "投诉"
    panel.mode.value = "word"
    expected = panel.results["message_id"].to_list()
    panel.saved_name.value = "complaints"
    panel.save_button.click()
    assert panel.saved_list.options == ("complaints",)
    line = json.loads(panel.saved.path.read_text(encoding="utf-8").splitlines()[-1])
    assert line["params"]["query"] == "投诉" and line["params"]["mode"] == "word"
    assert set(line) == {"name", "params", "author", "op", "ts"}  # parameters, never results
    assert not any(mid in panel.saved.path.read_text(encoding="utf-8") for mid in expected)
    panel.query.value = ""
    panel.mode.value = "exact"
    assert panel.count_value != len(expected)
    panel.run_saved_button.click()
    assert panel.query.value == "投诉" and panel.mode.value == "word"
    assert panel.results["message_id"].to_list() == expected
    saved = _audit(fresh_case, "search.save")
    assert [e.details["name"] for e in saved] == ["complaints"] and saved[0].actor == "sunli"
    assert [e.details["name"] for e in _audit(fresh_case, "search.run")] == ["complaints"]
    # a second panel on the same case sees it; a deleted search is gone, its history kept
    again = SearchPanel(fresh_case, lang="en")
    assert again.saved_list.options == ("complaints",)
    again.saved.delete("complaints")
    assert again.saved.searches() == {} and len(again.saved.path.read_text().splitlines()) == 2
    with pytest.raises(KeyError):
        again.run_saved("complaints")
    # a saved range outside this grant is refused like any range
    panel.saved.save("elsewhere", {**panel.search_parameters(),
                                    "start": (panel.window[0] - timedelta(days=3)).isoformat()})
    with pytest.raises(PolicyDenied):
        panel.run_saved("elsewhere")
    refused = [e for e in _audit(fresh_case, "search.run") if e.outcome == "denied"]
    assert [(e.details["name"], e.details["rule"]) for e in refused] == [("elsewhere", "grant.window")]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "timesketch"])
def test_export_of_hits_is_written_hashed_and_audited(panel, fresh_case, tmp_path, fmt):
    panel.query.value = "投诉"
    hits = panel.results
    assert hits.height > 0
    out = tmp_path / f"hits.{fmt}"
    result = panel.export_bar.export(fmt, out=out)
    if result.held:  # the breaker judged the texts: nothing written, the alert audited
        assert not out.exists() and result.reasons
        assert _audit(fresh_case, "breaker.alert")
        return
    data = out.read_bytes()
    assert result.rows == hits.height and result.sha256 == hashlib.sha256(data).hexdigest()
    entry = [e for e in _audit(fresh_case, "hits.export") if e.outcome == "ok"][-1]
    assert entry.details["file"] == out.name
    assert entry.details["sha256"] == result.sha256 and entry.details["rows"] == hits.height
    assert entry.details["format"] == fmt and entry.actor == "sunli"
    assert not any(t and t in json.dumps(entry.details, ensure_ascii=False) for t in hits["text"].to_list())
    if fmt == "csv":
        back = pl.read_csv(out)
        assert back["message_id"].to_list() == hits["message_id"].to_list()
        assert back["ts"][0].endswith("+08:00")
    elif fmt == "xlsx":
        assert data[:2] == b"PK"
        back = pl.read_excel(out) if _has_excel_reader() else None
        if back is not None:
            assert back.height == hits.height
    else:
        lines = [json.loads(x) for x in data.decode().splitlines()]
        assert len(lines) == hits.height
        assert {"message", "datetime", "timestamp", "timestamp_desc"} <= set(lines[0])
        assert lines[0]["datetime"].endswith("+08:00")
    assert panel.export_bar.status.value.startswith("<b>Exported")


def _has_excel_reader() -> bool:
    try:
        import fastexcel  # noqa: F401
    except ImportError:
        return False
    return True


def test_export_of_a_tag_and_refusal_outside_the_grant(panel, fresh_case, tmp_path):
    tags = TagPanel(fresh_case, source=panel, lang="en")
    panel.query.value = "投诉"
    chosen = panel.results["message_id"].head(2).to_list()
    tags.tag_selected("evidence", message_ids=chosen)
    panel.export_bar.refresh_tags()
    assert ("tag: evidence", "tag:evidence") in panel.export_bar.what.options
    frame = panel.export_bar.selection("tag:evidence")
    assert sorted(frame["message_id"]) == sorted(chosen)
    result = panel.export_bar.export("csv", out=tmp_path / "tag.csv", what="tag:evidence")
    assert result.rows == 2
    # a row that is not a message of this grant (a forged frame) is refused and audited; nothing written
    forged = panel.results.head(1).with_columns(pl.lit("not-granted").alias("message_id"))
    with pytest.raises(PolicyDenied) as refused:
        export_messages(fresh_case, forged, fmt="csv", out=tmp_path / "forged.csv", granted=panel.all_copies)
    assert refused.value.rule == "grant.window" and not (tmp_path / "forged.csv").exists()
    late = panel.results.head(1).with_columns(pl.col("ts") + timedelta(days=400))
    with pytest.raises(PolicyDenied):
        export_messages(fresh_case, late, fmt="csv", out=tmp_path / "late.csv")
    denied = [e for e in _audit(fresh_case, "hits.export") if e.outcome == "denied"]
    assert [e.details["rule"] for e in denied][-2:] == ["grant.window", "grant.window"]
    with pytest.raises(ValueError):
        export_messages(fresh_case, panel.results, fmt="pdf", out=tmp_path / "x.pdf")
