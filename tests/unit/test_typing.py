"""STYLE.md: "type hints everywhere, py.typed shipped, mypy clean on the package" — kept true by a test."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


USER_SNIPPET = """
import investigator
from investigator import Archive, open_case

case = investigator.open_case("demo-archive", grant="G-1", person="sunli", totp="123456")
reveal_type(case)
reveal_type(open_case)
reveal_type(Archive.open("demo-archive"))
reveal_type(investigator.search)
"""


@pytest.mark.slow
def test_package_is_mypy_clean_and_a_users_checker_sees_the_public_api(tmp_path):
    """One mypy run (it takes minutes): the package is clean, and on a user's snippet the root facade's
    explicitly imported names have real types (``open_case(...) -> Case``), not ``Any``."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed in this environment (pip install -e '.[dev]')")
    assert (ROOT / "investigator" / "py.typed").exists(), "py.typed must ship with the package"
    snippet = tmp_path / "user_code.py"
    snippet.write_text(USER_SNIPPET, encoding="utf-8")
    # run from the repository root so [tool.mypy] in pyproject.toml applies and `investigator` resolves
    done = subprocess.run([sys.executable, "-m", "mypy", "investigator", str(snippet)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"mypy found problems:\n{out}"
    revealed = [line.split("Revealed type is ", 1)[1] for line in out.splitlines() if "Revealed type is" in line]
    assert len(revealed) == 4, out
    assert revealed[0] == '"investigator.access.case.Case"', out
    assert "-> investigator.access.case.Case" in revealed[1], out
    assert revealed[2] == '"investigator.vault.store.Archive"', out
    assert revealed[3].startswith('"def ('), out
