"""`report verify` given an HTML copy without its notebook says what to pass (no traceback)."""

from __future__ import annotations

from click.testing import CliRunner

from investigator.cli import main
from investigator.errors import ReportError


def test_verify_on_the_html_copy_names_the_sealed_notebook(tmp_path) -> None:
    copy = tmp_path / "20261118T061500Z-complaint_investigation.html"
    copy.write_text("<html><body>report</body></html>", encoding="utf-8")
    result = CliRunner().invoke(main, ["report", "verify", str(copy)])
    assert result.exit_code == ReportError.exit_code
    assert "Traceback" not in result.output and "is the HTML copy of a report" in result.output
    assert "20261118T061500Z-complaint_investigation.ipynb" in result.output and "--notebook" in result.output
