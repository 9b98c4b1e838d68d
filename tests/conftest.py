"""Shared test factories: archives, frames, a frozen clock, the fixtures folder."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest


from support import PASSPHRASE, TEST_KDF_N, message_frame
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive

os.environ.setdefault("INVESTIGATOR_LANG", "en")
# `audit verify`, `open` and the key server record what this host verified under ~/.investigator/verified unless
# told otherwise: not in tests (session fixtures built before any test runs use this folder)
os.environ.setdefault("INVESTIGATOR_VERIFIED_DIR", tempfile.mkdtemp(prefix="investigator-verified-"))


@pytest.fixture(autouse=True)
def verified_dir(tmp_path_factory, monkeypatch) -> Path:
    """Each test is its own host: a fresh record of what it verified (subprocesses inherit it).

    The record is keyed by archive id, and tests copy one demo archive and let the copies evolve apart: to a
    shared record those copies are forks of one archive, which `open` rightly refuses.
    """
    folder = tmp_path_factory.mktemp("verified")
    monkeypatch.setenv("INVESTIGATOR_VERIFIED_DIR", str(folder))
    return folder


@pytest.fixture
def frozen_now() -> datetime:
    return datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def make_archive(tmp_path):
    """Factory: a fresh archive (low KDF cost) and its unlocked keys."""

    def make(name: str = "archive", **kwargs):
        kwargs.setdefault("kdf_n", TEST_KDF_N)
        archive = create_archive(tmp_path / name, passphrase=PASSPHRASE, actor="tester", **kwargs)
        return archive, unlock_archive(archive, PASSPHRASE)

    return make






@pytest.fixture
def messages():
    return message_frame()




@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory) -> Path:
    """The demo archive (samples, people, an approved grant, a session), built once per test worker.

    Tests that change it must copy it first (``shutil.copytree``).
    """
    from investigator.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "demo-archive"
    result = run_demo(out, kdf_n=TEST_KDF_N)
    assert result.verified, result.problems
    return out
