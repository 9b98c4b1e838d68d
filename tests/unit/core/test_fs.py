"""investigator._fs: folders made by the crash-safe writers are durable too (each new folder's entry fsynced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from investigator import _fs


def test_make_dirs_fsyncs_each_new_folder_in_its_parent(tmp_path: Path, synced_dirs: list[Path]) -> None:
    (tmp_path / "org").mkdir()
    _fs.make_dirs(tmp_path / "org" / "requests" / "REQ-1" / "approvals")
    assert (tmp_path / "org" / "requests" / "REQ-1" / "approvals").is_dir()
    # top-down: a folder's entry is made durable before anything inside it
    assert synced_dirs == [tmp_path / "org", tmp_path / "org" / "requests", tmp_path / "org" / "requests" / "REQ-1"]
    synced_dirs.clear()
    _fs.make_dirs(tmp_path / "org" / "requests")  # exists: nothing to make, nothing to sync
    assert synced_dirs == []


def test_make_dirs_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "grant").write_text("x")
    with pytest.raises(FileExistsError):
        _fs.make_dirs(tmp_path / "grant")
    with pytest.raises((FileExistsError, NotADirectoryError)):
        _fs.make_dirs(tmp_path / "grant" / "inner")


@pytest.mark.parametrize("writer", ["atomic_write", "write_new", "append_line"])
def test_the_writers_make_their_folders_durably(tmp_path: Path, synced_dirs: list[Path], writer: str) -> None:
    target = tmp_path / "org" / "requests" / "REQ-1" / "approvals" / "01-zhou.json"
    {"atomic_write": _fs.atomic_write, "write_new": _fs.write_new,
     "append_line": _fs.append_line}[writer](target, b"{}\n")
    assert target.read_bytes() == b"{}\n"
    requests = tmp_path / "org" / "requests"
    # each new folder's entry in its parent, top-down, then the file's own entry in its folder
    assert synced_dirs == [tmp_path, tmp_path / "org", requests, requests / "REQ-1", target.parent]
