"""Overlapping later exports of the same chat reproduce ids and record hashes of shared messages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from investigator import schema
from investigator.importers import read_export

from importer_testkit import SAMPLES


def _keyed(frame: pl.DataFrame) -> dict[str, str]:
    return dict(zip(frame["message_id"], schema.record_hashes(frame, "messages")))


def test_whatsapp_overlapping_export(tmp_path: Path) -> None:
    lines = [
        "1/1/21, 12:00 - A: Hi",
        "1/1/21, 12:00 - A: Hi",  # same minute, sender and text: told apart by the ordinal
        "1/1/21, 12:01 - B: Whats up?",
        "second line",
        "13/1/21, 12:02 - A: <Media omitted>",
        "14/1/21, 09:00 - B: new in the later export",
    ]
    first = tmp_path / "a" / "WhatsApp Chat with B.txt"
    later = tmp_path / "b" / "WhatsApp Chat with B (1).txt"
    first.parent.mkdir()
    later.parent.mkdir()
    first.write_text("\n".join(lines[:5]) + "\n", encoding="utf-8")
    later.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")  # later export, other line endings
    old, new = _keyed(read_export(first).messages), _keyed(read_export(later).messages)
    assert len(old) == 4 and len(new) == 5
    assert set(old) < set(new)
    assert all(new[i] == h for i, h in old.items())
    # Only the new message is new: the archive appends 1 record.
    assert len(set(new.values()) - set(old.values())) == 1


def _slack(path: Path, days: dict[str, list[dict]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("channels.json", json.dumps([{"id": "C1", "name": "general", "members": ["U1", "U2"]}]))
        zf.writestr("users.json", json.dumps([{"id": "U1", "real_name": "Ann"}, {"id": "U2", "real_name": "Bo"}]))
        for day, messages in days.items():
            zf.writestr(f"general/{day}.json", json.dumps(messages))
    return path


def test_slack_overlapping_export(tmp_path: Path) -> None:
    d1 = [{"type": "message", "user": "U1", "text": "a", "ts": "1452845865.000008"},
          {"type": "message", "user": "U2", "text": "b", "ts": "1452845866.000001", "thread_ts": "1452845865.000008"}]
    d2 = [{"type": "message", "user": "U1", "text": "c", "ts": "1452932265.000001"}]
    old = _keyed(read_export(_slack(tmp_path / "old.zip", {"2016-01-15": d1})).messages)
    new_frame = read_export(_slack(tmp_path / "new.zip", {"2016-01-15": d1, "2016-01-16": d2})).messages
    new = _keyed(new_frame)
    assert set(old) < set(new) and all(new[i] == h for i, h in old.items())
    assert set(new) - set(old) == {"C1:1452932265.000001"}


@pytest.mark.parametrize("relative,fmt,kind,options", [
    ("normalized/messages.csv", "csv", "messages", {}),
    ("normalized/messages.jsonl", "jsonl", "messages", {}),
    ("events/events.csv", "events-csv", "events", {}),
    ("events/events.jsonl", "events-jsonl", "events", {}),
    ("events/auth.log", "authlog", "events", {"year": 2026}),
])
def test_data_samples_parse(relative: str, fmt: str, kind: str, options: dict) -> None:
    from investigator.importers import ImportOptions, detect_format

    path = SAMPLES / relative
    if not path.exists():
        pytest.skip(f"sample {relative} not generated yet (investigator/samples writes data_samples/)")
    assert detect_format(path) == fmt
    result = read_export(path, options=ImportOptions(**options))
    frame = result.messages if kind == "messages" else result.events
    assert frame.height > 0
    assert frame[schema.id_field(kind)].n_unique() == frame.height
    if fmt != "authlog":
        assert result.skipped == []


def test_data_samples_csv_and_jsonl_agree() -> None:
    csv_path, jsonl_path = SAMPLES / "normalized/messages.csv", SAMPLES / "normalized/messages.jsonl"
    if not (csv_path.exists() and jsonl_path.exists()):
        pytest.skip("normalized samples not generated yet")
    a, b = read_export(csv_path).messages, read_export(jsonl_path).messages
    # Normalized files name their own source, which the importer keeps: the same
    # messages in CSV and JSONL are the same records, so an archive stores them once.
    assert a["source"].unique().to_list() == b["source"].unique().to_list() == ["sample"]
    assert schema.record_hashes(a, "messages") == schema.record_hashes(b, "messages")


def _sample_exports() -> list[str]:
    if not SAMPLES.exists():
        return []
    skip = {"README.md", "planted.json", "people.csv", "rooms.json"}
    return sorted(p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*") if p.is_file() and p.name not in skip)


@pytest.mark.parametrize("relative", _sample_exports() or ["(none)"])
def test_every_data_sample_detects_and_parses_strictly(relative: str) -> None:
    from investigator.importers import ImportOptions, detect_format

    path = SAMPLES / relative
    if not path.exists():
        pytest.skip("data_samples/ not generated yet")
    fmt = detect_format(path)
    assert relative.split("/")[0] in fmt or fmt in ("csv", "jsonl", "events-csv", "events-jsonl", "authlog")
    rooms = SAMPLES / "wecom" / "rooms.json"
    options = ImportOptions(year=2026, room_names=str(rooms) if fmt == "wecom" else None)
    result = read_export(path, options=options)
    assert result.messages.height + result.events.height > 0
    if fmt == "wecom":
        assert result.messages.filter(pl.col("conversation_type") == "group")["conversation_name"].null_count() == 0
