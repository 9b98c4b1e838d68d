"""The circuit breaker reads a report's plotly figures by key: message ids are not bank cards, real cards are.

Issue #16 item 6: numeric message ids in ``customdata`` / ``ids`` / ``x`` of a plotly output (Luhn-valid,
so a bare digit scan takes them for cards) must not hold a report; a card number in a text output still does.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import plotly.graph_objects as go
import pytest

from investigator.analysis.pii import luhn_valid
from investigator.authority.grants import Grant, find_grant
from investigator.demo import demo_grant
from investigator.reports.breaker import assess_report, scan_report
from investigator.reports.notebook import PLOTLY_MIME
from investigator.vault.store import Archive

# Luhn-valid 16-digit numbers used as message ids (a digit scan alone reads them as cards)
IDS = ["4111111111111111", "4532015112830366", "6011111111111117"]
WECOM_MSGID = "10958372969718811103_1603875609"
CARD = "6222020200112233445"  # its last digit is replaced by the Luhn check digit below


def _luhn_complete(prefix: str) -> str:
    return next(prefix + str(d) for d in range(10) if luhn_valid(prefix + str(d)))


REAL_CARD = _luhn_complete(CARD[:-1])


def _figure_output() -> dict:
    figure = go.Figure(go.Scatter(
        x=[int(i) for i in IDS], y=[1, 2, 3], customdata=[[i, WECOM_MSGID] for i in IDS], ids=IDS,
        text=["加班费", "投诉", "回复"], mode="markers"))
    figure.update_layout(title="hits by message id")
    bundle = json.loads(figure.to_json())  # what plotly's mimetype renderer puts in the notebook
    return nbformat.v4.new_output("display_data", data={PLOTLY_MIME: bundle, "text/plain": ["<Figure>"]})


def _notebook(*outputs) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("show()", outputs=list(outputs)))
    nb.metadata["papermill"] = {"parameters": {"redact": True}}
    return nb


@pytest.fixture(scope="module")
def archive_and_grant(demo_archive: Path):
    archive = Archive.open(demo_archive)
    return archive, Grant.from_file(find_grant(archive, demo_grant(demo_archive)))


def test_the_ids_are_luhn_valid_so_the_test_means_something() -> None:
    assert all(luhn_valid(i) for i in IDS) and luhn_valid(REAL_CARD)


def test_plotly_ids_in_customdata_and_x_do_not_hold_a_report(archive_and_grant) -> None:
    archive, grant = archive_and_grant
    nb = _notebook(_figure_output())
    pii, _ = scan_report(nb)
    assert pii.get("bank_card", 0) == 0, pii
    verdict = assess_report(nb, archive=archive, grant=grant)
    assert not verdict.held, verdict.reasons
    assert verdict.pii == {}


def test_a_card_in_a_text_output_still_holds_the_report(archive_and_grant) -> None:
    archive, grant = archive_and_grant
    card = nbformat.v4.new_output("stream", name="stdout", text=f"王芳的卡号 {REAL_CARD}\n")
    verdict = assess_report(_notebook(_figure_output(), card), archive=archive, grant=grant)
    assert verdict.held and verdict.pii == {"bank_card": 1}, verdict.to_json()
    assert any("bank_card x1" in r for r in verdict.reasons)


def test_a_card_in_a_figure_hover_text_still_counts() -> None:
    figure = go.Figure(go.Bar(x=["王芳"], y=[1], customdata=[IDS[0]], hovertext=[f"卡号 {REAL_CARD}"]))
    output = nbformat.v4.new_output("display_data", data={PLOTLY_MIME: json.loads(figure.to_json())})
    pii, _ = scan_report(_notebook(output))
    assert pii == {"bank_card": 1}
