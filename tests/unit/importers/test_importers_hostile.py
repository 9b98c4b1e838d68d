"""Hostile inputs are refused with ImportFormatError: traversal, symlinks, bombs, huge lines, deep JSON, bad UTF-8."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from investigator.errors import ImportFormatError
from investigator.importers import ImportOptions, read_export
from investigator.importers._container import MAX_LINE_BYTES

SLACK_DAY = json.dumps([{"type": "message", "user": "U1", "text": "hi", "ts": "1452845865.000008"}])


def _slack_zip(path: Path, extra: zipfile.ZipInfo | None = None, data: bytes = b"x") -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channels.json", json.dumps([{"id": "C1", "name": "general"}]))
        zf.writestr("users.json", "[]")
        zf.writestr("general/2016-01-15.json", SLACK_DAY)
        if extra is not None:
            zf.writestr(extra, data)
    return path


def _listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_plain_slack_zip_parses(tmp_path: Path) -> None:
    frame = read_export(_slack_zip(tmp_path / "ok.zip")).messages
    assert frame["message_id"].to_list() == ["C1:1452845865.000008"]


@pytest.mark.parametrize("name", ["../evil.json", "general/../../evil.json", "/etc/evil.json", "C:/evil.json",
                                  "..\\evil.json"])
@pytest.mark.parametrize("fmt", ["auto", "slack", "whatsapp", "telegram"])
def test_traversal_entries_refused(tmp_path: Path, name: str, fmt: str) -> None:
    path = _slack_zip(tmp_path / "bad.zip", zipfile.ZipInfo(name))
    before = _listing(tmp_path)
    with pytest.raises(ImportFormatError) as err:
        read_export(path, format=fmt)
    assert err.value.file == "bad.zip"
    assert _listing(tmp_path) == before  # nothing extracted anywhere


def test_zip_symlink_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("general/2016-01-16.json")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _slack_zip(tmp_path / "link.zip", info, b"/etc/passwd")
    with pytest.raises(ImportFormatError, match="symlink"):
        read_export(path)


def test_zip_bomb_ratio_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("general/2016-01-16.json")
    info.compress_type = zipfile.ZIP_DEFLATED
    path = _slack_zip(tmp_path / "bomb.zip", info, b"\x00" * (8 * 1024 * 1024))
    with pytest.raises(ImportFormatError, match="compression ratio"):
        read_export(path, format="slack")


def test_zip_declared_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from investigator.importers import _container

    monkeypatch.setattr(_container, "MAX_MEMBER_BYTES", 1000)
    path = _slack_zip(tmp_path / "big.zip", zipfile.ZipInfo("general/2016-01-16.json"), b"[" + b" " * 5000 + b"]")
    with pytest.raises(ImportFormatError, match="at most 1000 bytes"):
        read_export(path, format="slack")


def test_folder_symlink_refused(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "general").mkdir(parents=True)
    (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    (root / "general" / "2016-01-15.json").write_text(SLACK_DAY)
    assert read_export(root).messages.height == 1
    secret = tmp_path / "secret.json"
    secret.write_text(SLACK_DAY)
    os.symlink(secret, root / "general" / "2016-01-16.json")
    with pytest.raises(ImportFormatError, match="symlink"):
        read_export(root, format="slack")


def test_folder_export_provenance(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "general").mkdir(parents=True)
    (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    (root / "general" / "2016-01-15.json").write_text(SLACK_DAY)
    result = read_export(root)
    row = result.messages.row(0, named=True)
    assert row["source_file"] == "2016-01-15.json" and row["source_position"] == "general/2016-01-15.json[0]"
    assert {s.name for s in result.source_files} == {"channels.json", "2016-01-15.json"}


def test_huge_line_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"message_id": "1", "ts": 1, "text": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}\n')
    with pytest.raises(ImportFormatError, match="lines of at most"):
        read_export(path, format="jsonl", options=ImportOptions(lenient=True))


@pytest.mark.parametrize("depth", [100, 5000, 200_000])
def test_deep_json_refused(tmp_path: Path, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    line = '{"message_id": "1", "ts": "2024-01-01T00:00:00Z", "x": ' + nested + "}\n"
    path = tmp_path / "deep.jsonl"
    path.write_text(line)
    with pytest.raises(ImportFormatError, match="nested|JSON"):
        read_export(path, format="jsonl")
    assert read_export(path, format="jsonl", options=ImportOptions(lenient=True)).messages.height == 0
    doc = '{"name": "x", "id": 1, "messages": [{"id": 1, "date_unixtime": "1544006350", "text": ' + nested + "}]}"
    tg = tmp_path / "result.json"
    tg.write_text(doc)
    with pytest.raises(ImportFormatError):
        read_export(tg, format="telegram")


@pytest.mark.parametrize("fmt", ["telegram", "discord", "wecom", "jsonl", "events-jsonl"])
def test_invalid_utf8_in_json_formats(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"messages": [], "guild": {}, "channel": {"id": "\xc3\x28"}, "msgid": "\xff"}\n')
    with pytest.raises(ImportFormatError, match="UTF-8|JSON"):
        read_export(path, format=fmt)


def test_duplicate_zip_members_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("_chat.txt", "1/1/21, 12:00 - A: Hi\n")
        with pytest.warns(UserWarning):
            zf.writestr("_chat.txt", "1/1/21, 12:00 - A: Other\n")
    with pytest.raises(ImportFormatError, match="unique"):
        read_export(path, format="whatsapp")


def test_not_a_zip_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(ImportFormatError, match="zip"):
        read_export(path, format="slack")
