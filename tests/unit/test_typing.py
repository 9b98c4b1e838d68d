"""STYLE.md: "type hints everywhere, py.typed shipped, mypy clean on the package" — kept true by a test."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_package_is_mypy_clean():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed in this environment (pip install -e '.[dev]')")
    assert (ROOT / "investigator" / "py.typed").exists(), "py.typed must ship with the package"
    # run from the repository root so [tool.mypy] in pyproject.toml applies
    done = subprocess.run([sys.executable, "-m", "mypy", "investigator"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"mypy found problems:\n{done.stdout}{done.stderr}"
