"""Canonical notebook form: stable across what legitimately changes, sensitive to everything else."""

from __future__ import annotations

import copy

import pytest

from investigator.reports.canonical import (CANONICAL_FORMAT, CANONICAL_FORMAT_V1, cell_digests, content_digest,
                                            diff_cells, sealed_canonical_format)


def notebook() -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "papermill": {"start_time": "2026-11-18T06:00:00", "duration": 3.2},
                         "language_info": {"name": "python", "version": "3.12.1"}},
            "cells": [
                {"cell_type": "code", "id": "a1", "metadata": {"tags": ["parameters"]}, "source": "x = 1",
                 "execution_count": 1, "outputs": []},
                {"cell_type": "code", "id": "b2", "metadata": {"execution": {"iopub.status.busy": "t"},
                                                               "papermill": {"duration": 0.5}},
                 "source": "print(x)", "execution_count": 2,
                 "outputs": [{"output_type": "stream", "name": "stderr",
                              "text": "Building prefix dict from the default dictionary ...\n"
                                      "Loading model cost 0.712 seconds.\n"},
                             {"output_type": "display_data", "metadata": {}, "transient": {"display_id": "q"},
                              "data": {"text/plain": "1", "text/html": '<div id="0b6c2c9e-1f7a-4d7e-8a3b-2c1d0e9f8a7b">1</div>'}}]},
            ]}


def test_digest_ignores_timings_ids_and_library_noise():
    a, b = notebook(), notebook()
    b["metadata"]["papermill"]["duration"] = 9.9
    b["metadata"]["language_info"]["version"] = "3.12.7"
    b["cells"][1]["id"] = "zz"
    b["cells"][1]["metadata"]["execution"] = {"iopub.status.busy": "other"}
    b["cells"][1]["outputs"][0]["text"] = "Loading model cost 1.5 seconds.\n"
    b["cells"][1]["outputs"][1]["transient"] = {"display_id": "r"}
    b["metadata"]["investigator"] = {"seal": {"anything": 1}}
    assert content_digest(a) == content_digest(b)


def test_uuids_are_content_and_format_1_seals_keep_their_rules():
    """A UUID a reader sees (a record id in an HTML table) is content; format 1 renumbered them, and still does."""
    a, b = notebook(), notebook()
    b["cells"][1]["outputs"][1]["data"]["text/html"] = '<div id="11111111-2222-3333-4444-555555555555">1</div>'
    assert content_digest(a) != content_digest(b)
    assert list(diff_cells(cell_digests(a), b)) == ["cell 1 (code: 'print(x)') changed"]
    assert content_digest(a, CANONICAL_FORMAT_V1) == content_digest(b, CANONICAL_FORMAT_V1)
    assert sealed_canonical_format({}) == CANONICAL_FORMAT_V1  # seals from before the choice
    assert sealed_canonical_format({"canonical": CANONICAL_FORMAT}) == CANONICAL_FORMAT
    with pytest.raises(ValueError, match="unknown canonical format"):
        sealed_canonical_format({"canonical": "investigator-notebook-canonical/9"})


def test_widget_ids_are_renumbered():
    a = notebook()
    a["cells"][1]["outputs"].append({"output_type": "display_data", "metadata": {}, "data": {
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}}})
    a["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
        "abc": {"model_name": "X", "state": {"child": "IPY_MODEL_def"}}, "def": {"model_name": "Y", "state": {}}}}}
    b = copy.deepcopy(a)
    b["cells"][1]["outputs"][-1]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] = "zzz"
    b["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
        "qqq": {"model_name": "Y", "state": {}}, "zzz": {"model_name": "X", "state": {"child": "IPY_MODEL_qqq"}}}}}
    assert content_digest(a) == content_digest(b)


def test_any_visible_change_changes_the_digest_and_names_the_cell():
    base = notebook()
    for change in (lambda nb: nb["cells"][0].__setitem__("source", "x = 2"),
                   lambda nb: nb["cells"][1]["outputs"][1]["data"].__setitem__("text/plain", "2"),
                   lambda nb: nb["cells"][1]["metadata"].__setitem__("tags", ["hidden"]),
                   lambda nb: nb["cells"][1].__setitem__("execution_count", 7)):
        other = copy.deepcopy(base)
        change(other)
        assert content_digest(other) != content_digest(base)
        named = list(diff_cells(cell_digests(base), other))
        assert len(named) == 1 and named[0].startswith("cell ")


def test_added_and_removed_cells_are_named():
    base = notebook()
    fewer = copy.deepcopy(base)
    fewer["cells"].pop()
    assert list(diff_cells(cell_digests(base), fewer)) == ["cell 1 was removed"]
    more = copy.deepcopy(base)
    more["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "new"})
    assert list(diff_cells(cell_digests(base), more))[0].endswith("was added")
