"""Telegram Desktop result.json variants: unsupported messages, anonymised dates, evidence fields."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from investigator.errors import ImportFormatError
from investigator.importers import ImportOptions, detect_format, read_export

from importer_testkit import VARIANTS

UTC = timezone.utc
TG = VARIANTS / "telegram"


def _ids(value: str) -> dict:  # type: ignore[type-arg]
    return json.loads(value)


def test_telegram_group_keeps_evidence_and_skips_unsupported() -> None:
    path = TG / "result.json"
    assert detect_format(path) == "telegram"
    result = read_export(path)  # strict
    frame = result.messages
    assert [s.position for s in result.skipped] == ["$.messages[3]"]
    assert "unsupported" in result.skipped[0].reason
    rows = list(frame.iter_rows(named=True))
    assert [r["message_id"].split(":")[1] for r in rows] == ["1", "2", "3", "5", "6", "7", "8", "9", "10", "11"]
    assert [r["sender_name"] for r in rows] == ["Alice", "Bob", "Alice", "Carol", "Alice", "Bob", "Carol", "Alice",
                                                "Alice", "Bob"]
    assert [r["msg_type"] for r in rows] == ["system", "text", "text", "other", "other", "other", "other", "other",
                                             "system", "text"]
    assert [r["text"] for r in rows] == [
        'create_group "Project X": Bob, Carol', "the invoice is fake", "ok",
        "contact: Eve Ng, +86 138 0000 0000", "poll: Report it?\n- Yes\n- No", "location: 31.2304, 121.4737",
        "venue: Peace Hotel, 20 Nanjing Rd E (31.2401, 121.4903)",
        "to-do list: Before audit\n- Collect receipts\n- Call bank", "Alice changed the chat theme", "keep this"]
    # date_unixtime is UTC: 1704420000 = 2024-01-05 02:00 UTC (10:00 on the exporting machine in Shanghai).
    assert rows[0]["ts"] == datetime(2024, 1, 5, 2, 0, tzinfo=UTC) and rows[-1]["ts"] == datetime(2024, 1, 5, 2, 11,
                                                                                                   tzinfo=UTC)
    assert all("ts_source" not in _ids(r["platform_ids"]) for r in rows)
    ids = [_ids(r["platform_ids"]) for r in rows]
    assert ids[0]["action"] == "create_group" and ids[0]["title"] == "Project X" and ids[0]["members"] == ["Bob", "Carol"]
    assert ids[1]["forwarded_from"] == "Dave"
    assert ids[2]["via_bot"] == "@gif" and ids[2]["reply_to_message_id"] == 2
    assert ids[2]["edited"] == "2024-01-05T10:03:00" and ids[2]["edited_unixtime"] == "1704420180"
    assert rows[2]["reply_to"] == "1234567890:2"
    assert ids[3]["contact"]["phone_number"] == "+86 138 0000 0000"
    assert ids[4]["poll"]["answers"] == [{"text": "Yes", "voters": 2, "chosen": True},
                                         {"text": "No", "voters": 0, "chosen": False}]
    assert ids[5]["location"] == {"latitude": 31.2304, "longitude": 121.4737}
    assert ids[6]["venue"] == {"place_name": "Peace Hotel", "address": "20 Nanjing Rd E"}
    assert [i["text"] for i in ids[7]["todo_list"]["items"]] == ["Collect receipts", "Call bank"]
    assert ids[8]["information_text"] == "Alice changed the chat theme"
    assert ids[9]["saved_from"] == "Project X"
    assert set(frame["conversation_type"]) == {"group"} and set(frame["conversation_name"]) == {"Project X"}


def test_telegram_anonymised_dates_fall_back_to_local_date() -> None:
    path = TG / "result_anonymised.json"
    assert detect_format(path) == "telegram"
    frame = read_export(path, options=ImportOptions(tz="Europe/Helsinki")).messages
    assert frame["text"].to_list() == ["hello", "hi", "no unixtime"]
    assert frame["sender_name"].to_list() == ["Alice", "Bob", "Alice"]
    # "date" is the exporting machine's local time: 09:00 in Helsinki (UTC+2 in March) is 07:00 UTC.
    assert frame["ts"].to_list() == [datetime(2024, 3, 1, 7, 0, tzinfo=UTC), datetime(2024, 3, 1, 7, 1, 30, tzinfo=UTC),
                                     datetime(2024, 3, 1, 7, 2, tzinfo=UTC)]
    for value in frame["platform_ids"]:
        assert {k: v for k, v in _ids(value).items() if k.startswith("ts_")} == {"ts_source": "date",
                                                                                   "ts_zone": "Europe/Helsinki"}


@pytest.mark.parametrize("unix", ["0000000000", "0", "99999999999", "315532800", None])
def test_telegram_bad_unixtime_without_date_names_the_range(write, unix) -> None:  # type: ignore[no-untyped-def]
    message = {"id": 7, "type": "message", "from": "A", "from_id": "user1", "text": "x"}
    if unix is not None:
        message["date_unixtime"] = unix
    path = write("result.json", json.dumps({"name": "c", "type": "personal_chat", "id": 1,
                                            "messages": [message]}))
    with pytest.raises(ImportFormatError) as info:
        read_export(path, format="auto")
    text = str(info.value)
    assert "result.json" in text and "$.messages[0]" in text
    # The range ingest accepts (vault/ingest.py): 315532800 (1980) is a valid epoch, but not one ingest takes.
    assert "1990-01-01T00:00:00Z" in text and "2100-01-01T00:00:00Z" in text


def test_telegram_unsupported_is_listed_in_lenient_mode_too(write) -> None:  # type: ignore[no-untyped-def]
    path = write("result.json", json.dumps({"name": "c", "type": "personal_chat", "id": 1, "messages": [
        {"id": 1, "type": "unsupported"},
        {"id": 2, "type": "message", "date": "2024-01-01T00:00:00", "date_unixtime": "1704067200", "text": "a"}]}))
    for lenient in (False, True):
        result = read_export(path, options=ImportOptions(lenient=lenient))
        assert result.messages["text"].to_list() == ["a"]
        assert [s.position for s in result.skipped] == ["$.messages[0]"]
