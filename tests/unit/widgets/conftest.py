"""A demo case for widget tests: the session's demo archive, copied once (opening a case appends to its audit log)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def widget_archive(demo_archive: Path, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("widgets") / "demo-archive"
    shutil.copytree(demo_archive, target)
    return target


@pytest.fixture(scope="session")
def demo_case(widget_archive: Path):
    from investigator.demo import open_demo_case

    return open_demo_case(widget_archive)


@pytest.fixture(scope="session")
def demo_messages(demo_case):
    return demo_case.messages()


@pytest.fixture
def fresh_case(demo_archive: Path, tmp_path: Path):
    """A case on a private copy of the demo archive (for tests that write tags)."""
    from investigator.demo import open_demo_case

    shutil.copytree(demo_archive, tmp_path / "demo-archive")
    return open_demo_case(tmp_path / "demo-archive")
