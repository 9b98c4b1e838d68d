"""`investigator demo --json` names the demo's grants: the complaint grant and the month-wide review grant."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from investigator.authority.grants import Grant
from investigator.cli import main
from investigator.demo import demo_grant
from investigator.demo.cases import find_case_grant
from investigator.demo.people import REVIEW_CASE
from investigator.vault.layout import Layout

pytestmark = pytest.mark.slow


def test_demo_json_includes_the_review_grant(tmp_path):
    out = tmp_path / "demo-archive"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = CliRunner().invoke(main, ["demo", "--out", str(out), "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["verified"] and result["operator"] == "sunli"
    assert result["grant"] == demo_grant(out)
    assert result["review_case"] == REVIEW_CASE == "DEMO-2026-11-review"
    assert result["review_grant"] == find_case_grant(out, REVIEW_CASE) != result["grant"]
    review = Grant.from_file(Layout(out).grant(result["review_grant"]))
    assert review.case == REVIEW_CASE
    # where the sealed report and its reader's copy are, and whether they verified (the text output says so too)
    assert result["report_verified"] and result["report_problems"] == []
    assert result["report"].endswith("-complaint_investigation.ipynb") and Path(result["report"]).is_file()
    assert result["report_html"] == result["report"][:-len(".ipynb")] + ".html" and Path(result["report_html"]).is_file()


def test_demo_fails_when_its_report_fails(tmp_path, monkeypatch):
    # the report is the demo's main job: a failed run printed 'report: FAILED' and still exited 0
    from investigator.demo import run as demo_run
    from investigator.errors import ReportError

    def failing(*args, **kwargs):
        raise ReportError("planted report failure")

    monkeypatch.setattr(demo_run, "run_report", failing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo-archive")], catch_exceptions=False)
    assert done.exit_code == ReportError.exit_code, done.output
    assert "verification: intact" in done.output and "report: FAILED" in done.output
    assert "planted report failure" in done.output
