"""Contracts that keep the codebase honest: error tree, CLI help, safe reprs.

Import direction is checked in test_architecture.py.
"""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from investigator import errors
from investigator.cli import main

PACKAGE = Path(__file__).resolve().parents[2] / "investigator"

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


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _short_helps(group: click.Group, prefix: str = "investigator"):
    """Each group's and command's short help as its parent's command list shows it in an 80-column
    terminal (click: a limit of the formatter's 78 columns - 6 - the longest sibling name)."""
    limit = 78 - 6 - max(len(name) for name in group.commands)
    for name, command in group.commands.items():
        full = f"{prefix} {name}"
        yield full, command.get_short_help_str(limit)
        if isinstance(command, click.Group):
            yield from _short_helps(command, full)


@pytest.mark.parametrize("name,short_help", [
    pytest.param(name, short_help, id=name)
    for name, short_help in [("investigator", (main.help or "").strip().split("\n\n")[0]), *_short_helps(main)]])
def test_every_command_has_a_chinese_short_help(name, short_help):
    """The user interface is in Chinese and English: the line a command list shows for each command
    holds Chinese beside the English (put it within the first sentence: click cuts there)."""
    assert _CJK.search(short_help), f"'{name}' has no Chinese in its short help: {short_help!r}"


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
