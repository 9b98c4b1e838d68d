"""A report run interrupted (Ctrl-C) leaves no half-run notebook under a report's name (docs/automation.md)."""

from __future__ import annotations

import pytest

from investigator.reports import run


def test_an_interrupted_run_keeps_its_notebook_only_as_failed(tmp_path, monkeypatch) -> None:
    # papermill writes the output notebook cell by cell; Ctrl-C once left it, unsealed, as 'X-keyword_sweep.ipynb'
    import papermill

    def interrupted(template, output, **kwargs):
        with open(output, "w", encoding="utf-8") as handle:
            handle.write('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    output = tmp_path / "out" / "20261130T083628Z-keyword_sweep.ipynb"
    with pytest.raises(KeyboardInterrupt):
        run.execute(tmp_path / "template.ipynb", output, {}, env={})
    assert not output.exists() and (tmp_path / "out" / "20261130T083628Z-keyword_sweep.FAILED.ipynb").exists()
