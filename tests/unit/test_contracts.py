"""Contracts that keep the codebase honest: error tree, CLI help, import direction, safe reprs."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import click
import pytest

from investigator import errors
from investigator.cli import main

PACKAGE = Path(__file__).resolve().parents[2] / "investigator"

# STYLE.md import direction: a module may import only from its own layer or lower ones.
LAYERS = {
    "errors": 0, "schema": 0, "config": 0, "fsutil": 0, "textnorm": 0,
    "_crypto": 1, "merkle": 1,
    "keys": 2, "audit": 2, "importers": 2, "manifest": 2, "samples": 2,
    "policy": 3, "directory": 3, "identity": 3, "grants": 3, "archive": 3, "ingest": 3, "verify": 3, "rotation": 3, "proofs": 3,
    "keyservice": 4, "loader": 4, "analysis": 4, "tagstore": 4, "keyserver": 4,
    "widgets": 5, "reports": 5, "bundles": 5, "backup": 5, "demo": 5, "demo_cases": 5,
    "cli": 6, "__main__": 6, "__init__": 6,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # imports for type hints only (under `if TYPE_CHECKING:`) do not run: leave them out
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    package_parts = list(path.relative_to(PACKAGE).parts[:-1])  # e.g. ["analysis"] for analysis/search.py
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[:len(package_parts) - (node.level - 1)]
                full = base + (node.module.split(".") if node.module else [])
                if full:
                    found.add(full[0])
                else:  # "from . import x" at the top of the package
                    found.update(alias.name for alias in node.names)
            elif (node.module or "").startswith("investigator."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("investigator."):
                    found.add(alias.name.split(".")[1])
    return {m for m in found if m}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path):
    name = _module_name(path)
    if name not in LAYERS:
        pytest.fail(f"{name}: add the module to LAYERS in this test (and to STYLE.md's map)")
    for imported in _imported_modules(path):
        if imported not in LAYERS or imported == name:
            continue
        assert LAYERS[imported] <= LAYERS[name], f"{name} (layer {LAYERS[name]}) imports {imported} (layer {LAYERS[imported]})"


def test_analysis_and_widgets_hold_no_crypto():
    for folder in ("analysis", "widgets"):
        for path in (PACKAGE / folder).rglob("*.py") if (PACKAGE / folder).exists() else []:
            text = path.read_text(encoding="utf-8")
            for forbidden in ("_crypto", "cryptography", "keys import", "Archive.open", "unlock("):
                assert forbidden not in text, f"{path.relative_to(PACKAGE)} mentions {forbidden}"


def test_every_exception_subclasses_the_base():
    for name, obj in vars(errors).items():
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, errors.InvestigatorError), name


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        full = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            yield from _commands(command, full)
        else:
            yield full, command


@pytest.mark.parametrize("name,command", list(_commands(main)), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_has_help_with_an_example(name, command):
    text = command.help or ""
    assert text.strip(), f"{name} has no help"
    assert "Example" in text, f"'{name} --help' has no example"


def test_importing_the_package_has_no_side_effects():
    code = ("import sys, investigator; import investigator.cli; "
            "assert 'jieba' not in sys.modules, 'jieba loaded at import'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_key_objects_never_show_secrets(tmp_path):
    from investigator import _crypto
    from investigator.custody.file import MasterKeys

    signing = _crypto.SigningKey.generate()
    kek = b"\x01" * 32
    keys = MasterKeys("a", {1: kek}, signing)
    for text in (repr(keys), str(keys), repr(signing)):
        assert kek.hex() not in text and _crypto.b64(kek) not in text and _crypto.b64(signing.raw()) not in text
