"""Fixtures of the vault-level tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def synced_dirs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders fsynced by the crash-safe writers and the witness folders, in order (the real fsync still runs)."""
    from investigator import _fs
    from investigator.vault import witness

    calls: list[Path] = []
    real = _fs.fsync_dir

    def record(path: Path) -> None:
        calls.append(Path(path))
        real(path)

    monkeypatch.setattr(_fs, "fsync_dir", record)
    monkeypatch.setattr(witness, "fsync_dir", record)
    return calls
