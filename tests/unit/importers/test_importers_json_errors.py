"""JSON syntax errors name the file, line, column and character offset (orjson reports them, as json does)."""

from __future__ import annotations

import json

import pytest

from investigator.errors import ImportFormatError
from investigator.importers import ImportOptions, read_export


@pytest.mark.parametrize("fmt", ["telegram", "discord"])
def test_json_document_syntax_error_position(write, fmt: str) -> None:  # type: ignore[no-untyped-def]
    text = '{"name": "c", "id": 1,\n "guild": {}, "channel": {"id": "1"},\n "messages": [ {"id": 1,, } ]}'
    path = write("export.json", text)
    with pytest.raises(ImportFormatError) as info:
        read_export(path, format=fmt)
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(text)
    ref = reference.value
    message = str(info.value)
    assert message.startswith("export.json, ")
    assert f"line {ref.lineno}, column {ref.colno} (character {ref.pos})" in message, message
    assert "expected valid JSON" in message


def test_json_error_inside_a_zip_names_member_and_position(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    packed = tmp_path / "ChatExport.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("ChatExport/result.json", '{"messages": [\n  {"id": 1 "type": "message"}]}')
    with pytest.raises(ImportFormatError) as info:
        read_export(packed)
    message = str(info.value)
    assert "ChatExport.zip" in message and "zip:ChatExport/result.json" in message
    assert "line 2, column 12 (character 26)" in message, message


def test_json_lines_syntax_error_names_line_and_column(write) -> None:  # type: ignore[no-untyped-def]
    path = write("m.jsonl", '{"message_id": "1", "ts": 1700000000}\n{"message_id": "2", "ts": 17000000 00}\n')
    with pytest.raises(ImportFormatError) as info:
        read_export(path, format="jsonl")
    message = str(info.value)
    assert "m.jsonl, line 2" in message and "column 36" in message, message
    lenient = read_export(path, format="jsonl", options=ImportOptions(lenient=True))
    assert lenient.messages.height == 1 and lenient.skipped[0].position == "line 2"
