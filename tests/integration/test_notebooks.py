"""The investigator notebooks run top to bottom on the demo archive, unedited (papermill)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]

NOTEBOOKS = REPO / "notebooks"
NAMES = ["01_open_case", "02_keyword_investigation", "03_timeline_reconstruction", "04_audit_review"]


@pytest.fixture(scope="module")
def notebook_archive(demo_archive: Path, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("notebooks") / "demo-archive"
    shutil.copytree(demo_archive, target)
    return target


def _text(book) -> str:
    out = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            out.append(output.get("text", ""))
            out.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_clean(name: str, notebook_archive: Path, tmp_path: Path, monkeypatch):
    import papermill

    monkeypatch.setenv("INVESTIGATOR_LANG", "en")
    out = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), cwd=str(NOTEBOOKS), kernel_name="python3",
                               parameters={"ARCHIVE": str(notebook_archive)}, progress_bar=False)
    book = nbformat.read(out, as_version=4)
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = _text(book)
    if name == "03_timeline_reconstruction":
        assert "abnormal logins on erp-01: ['08:41', '08:52', '09:07']" in text
    if name == "04_audit_review":
        assert "INTACT" in text


def test_notebooks_have_a_parameters_cell_and_no_outputs():
    for name in NAMES:
        book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "INVESTIGATOR_ARCHIVE" in tagged[0].source
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code")
        assert "DEMO ONLY" in book.cells[0].source
