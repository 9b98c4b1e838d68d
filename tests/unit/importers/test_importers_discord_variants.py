"""DiscordChatExporter variants: the folder written with --media, stickers, attachments whose file is absent."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from investigator.errors import ImportFormatError
from investigator.importers import detect_format, read_export

from importer_testkit import VARIANTS

UTC = timezone.utc
EXPORT = VARIANTS / "discord" / "media-export"
CHANNEL = "Case Server - Evidence - general [1111].json"
FILES = EXPORT / (CHANNEL + "_Files")


def _ids(value: str) -> dict:  # type: ignore[type-arg]
    return json.loads(value)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(frame, position_prefix: str, source: str = CHANNEL) -> None:  # type: ignore[no-untyped-def]
    rows = list(frame.iter_rows(named=True))
    assert [r["message_id"] for r in rows] == [f"1111:{n}" for n in range(3001, 3007)]
    assert [r["sender_name"] for r in rows] == ["Alice", "Alice", "Bob", "Bob", "Alice", "Bob"]
    assert [r["msg_type"] for r in rows] == ["text", "image", "file", "image", "image", "text"]
    assert [r["text"] for r in rows] == ["here is the receipt", "", "contract attached", "", "sticker: Wave",
                                         "got it\nsticker: Thumbs Up"]
    assert rows[0]["ts"] == datetime(2024, 2, 1, 1, 15, 0, 123000, tzinfo=UTC)  # +08:00 in the file
    ids = [_ids(r["platform_ids"]) for r in rows]
    # Downloaded into <channel>.json_Files/ (the url uses Windows separators): hashed from the export.
    assert rows[1]["attachment_sha256"] == _sha(FILES / "receipt-0a1b2c3d4e5f6a7b.png")
    assert "file_missing" not in ids[1] and "file_not_included" not in ids[1]
    assert rows[2]["attachment_name"] == "contract.pdf" and rows[2]["attachment_sha256"] is None
    assert ids[2]["file_missing"] is True  # a local path whose file is not there
    assert ids[3]["file_not_included"] is True and rows[3]["attachment_sha256"] is None  # remote URL
    assert ids[4]["stickers"] == [{"id": "749054660769218631", "name": "Wave", "format": "Apng",
                                   "sha256": _sha(FILES / "749054660769218631-1c2d3e4f5a6b7c8d.png")}]
    assert ids[5]["stickers"][0]["name"] == "Thumbs Up" and rows[5]["reply_to"] == "1111:3005"
    assert rows[0]["source_position"] == position_prefix + "$.messages[0]"
    assert set(frame["source_file"]) == {source}  # the zip for zipped exports, as for every format


def test_media_folder_is_read_as_it_is() -> None:
    assert detect_format(EXPORT) == "discord"
    result = read_export(EXPORT)
    _check(result.messages, CHANNEL)
    assert CHANNEL in [f.name for f in result.source_files]


def test_channel_json_alone_hashes_media_beside_it() -> None:
    path = EXPORT / CHANNEL
    assert detect_format(path) == "discord"
    _check(read_export(path).messages, "")


def test_zipped_media_folder(tmp_path: Path) -> None:
    packed = tmp_path / "export.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for file in sorted(EXPORT.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(EXPORT).as_posix())
    assert detect_format(packed) == "discord"
    _check(read_export(packed).messages, "zip:" + CHANNEL, "export.zip")


def test_media_deleted_from_folder_is_flagged(tmp_path: Path) -> None:
    copy = tmp_path / "export"
    shutil.copytree(EXPORT, copy)
    (copy / (CHANNEL + "_Files") / "receipt-0a1b2c3d4e5f6a7b.png").unlink()
    frame = read_export(copy).messages
    assert frame["attachment_sha256"][1] is None and _ids(frame["platform_ids"][1])["file_missing"] is True


def test_folder_without_channel_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text('{"a": 1}')
    with pytest.raises(ImportFormatError) as info:
        read_export(tmp_path, format="discord")
    assert "notes.json" in str(info.value) and "$" in str(info.value)
