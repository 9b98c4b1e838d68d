"""Helpers for importer tests: the real-export fixture folder and tiny inputs (imported by name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# tests/unit/importers -> repo root -> its parent holds shared/fixtures (../shared/fixtures beside a clone).
REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures"
SAMPLES = REPO / "data_samples"
# Fixtures written for this project from the exporting tools' source (tests/fixtures/importers/README.md).
VARIANTS = REPO / "tests" / "fixtures" / "importers"


def fixture(relative: str) -> Path:
    """A file under ../shared/fixtures, or skip the test with a visible reason."""
    path = FIXTURES / relative
    if not path.exists():
        pytest.skip(f"real-export fixture {relative} not found under {FIXTURES}")
    return path


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text_or_bytes) -> Path in tmp_path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return _write


def jsonl(*objects: object) -> str:
    """JSON lines text of ``objects``."""
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)
