"""Real exports from ../shared/fixtures: detection, parsing, oracles and format-specific facts."""

from __future__ import annotations

import json

import polars as pl
import pytest

from investigator import schema
from investigator.importers import ImportOptions, detect_format, read_export

from importer_testkit import FIXTURES, fixture

pytestmark = pytest.mark.fixtures

EXPORTS = {
    "slack/slack-export-viewer_testarchive.zip": "slack",
    "slack/slackdump_source_export.zip": "slack",
    "telegram/chat-miner_test_batch_export.json": "telegram",
    "telegram/chat-miner_test_single_export.json": "telegram",
    "telegram/chat-analytics_DM_2A_7M.json": "telegram",
    "telegram/chat-analytics_BIG_20A_5475M.json": "telegram",
    "whatsapp/chat-miner_test_ddmmyy_24hrs.txt": "whatsapp",
    "whatsapp/chat-miner_test_mmddyy_24hrs.txt": "whatsapp",
    "whatsapp/chat-miner_test_mmddyyyy_12hrs.txt": "whatsapp",
    "whatsapp/chat-miner_test_yyyymmdd_24hrs.txt": "whatsapp",
    "whatsapp/chat-analytics_4A_11M.txt": "whatsapp",
    "whatsapp/chat-analytics_4A_11M.zip": "whatsapp",
    "whatsapp/chat-analytics_2A_5M.txt": "whatsapp",
    "discord/chat-analytics_SV_5A_5M.json": "discord",
    "discord/chat-analytics_GC_3A_5M.json": "discord",
    "discord/chat-analytics_DM_2A_2M.json": "discord",
    "wechat/weclone_pywxdump_person.csv": "wechat-pywxdump",
    "wechat/weclone_pywxdump_pii.csv": "wechat-pywxdump",
}


def _flat(text: str | None) -> str:
    # chat-miner's oracle joins lines and entity pieces with single spaces; compare modulo whitespace.
    return "".join((text or "").split())


def test_every_export_fixture_is_listed() -> None:
    if not FIXTURES.exists():
        pytest.skip(f"fixtures folder {FIXTURES} not found")
    present = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*")
               if p.is_file() and p.name != "README.md" and not p.name.endswith("target.json")}
    assert present <= set(EXPORTS), f"new fixtures without a test: {present - set(EXPORTS)}"


@pytest.mark.parametrize("relative,fmt", sorted(EXPORTS.items()))
def test_export_fixture_detected_and_parsed(relative: str, fmt: str) -> None:
    path = fixture(relative)
    assert detect_format(path) == fmt
    result = read_export(path)
    frame = result.messages
    assert frame.columns == list(schema.full_schema("messages"))
    assert frame.schema["ts"] == schema.UTC_US
    assert frame.height > 0
    assert frame["message_id"].null_count() == 0 and frame["ts"].null_count() == 0
    assert frame["message_id"].n_unique() == frame.height
    assert set(frame["msg_type"].unique()) <= set(schema.MSG_TYPES)
    assert set(frame["conversation_type"].drop_nulls().unique()) <= set(schema.CONVERSATION_TYPES)
    assert (frame["source"] == fmt).all()
    assert frame["source_sha256"].str.len_chars().eq(64).all()
    assert frame["raw_sha256"].str.len_chars().eq(64).all()
    assert frame["source_position"].null_count() == 0
    assert [s.name for s in result.source_files] == [path.name]
    assert result.source_files[0].size == path.stat().st_size


@pytest.mark.parametrize("relative", ["telegram/chat-miner_target.json", "whatsapp/chat-miner_target.json"])
def test_oracle_files_are_not_mistaken_for_exports(relative: str) -> None:
    from investigator.errors import ImportFormatError

    with pytest.raises(ImportFormatError, match="known export format"):
        detect_format(fixture(relative))


@pytest.mark.parametrize("relative", ["telegram/chat-miner_test_batch_export.json",
                                      "telegram/chat-miner_test_single_export.json"])
def test_telegram_matches_chat_miner_oracle(relative: str) -> None:
    target = json.loads(fixture("telegram/chat-miner_target.json").read_text(encoding="utf-8"))
    frame = read_export(fixture(relative)).messages
    got = sorted((r["ts"].strftime("%Y-%m-%dT%H:%M:%S"), r["sender_name"], _flat(r["text"]))
                 for r in frame.iter_rows(named=True))
    want = sorted((t["timestamp"], t["author"], _flat(t["message"])) for t in target)
    assert got == want


def test_telegram_entity_array_service_and_missing_files() -> None:
    frame = read_export(fixture("telegram/chat-analytics_DM_2A_7M.json")).messages
    rows = {r["message_id"]: r for r in frame.iter_rows(named=True)}
    assert rows["700000000:3644"]["text"] == "https://google.com 👀"  # entity array concatenated
    service = rows["700000000:3674"]
    assert service["msg_type"] == "system" and service["sender_name"] == "Alice"
    assert json.loads(service["platform_ids"])["action"] == "phone_call"
    photo = rows["700000000:3672"]
    assert photo["msg_type"] == "image"
    assert photo["attachment_name"] is None  # the placeholder is not a path
    assert json.loads(photo["platform_ids"])["file_not_included"] is True
    # "date" without an offset is local time in options.tz (Asia/Shanghai by default).
    assert rows["700000000:3645"]["ts"].isoformat() == "2022-03-08T05:07:42+00:00"
    utc = read_export(fixture("telegram/chat-analytics_DM_2A_7M.json"), options=ImportOptions(tz="UTC")).messages
    assert utc.filter(pl.col("message_id") == "700000000:3645")["ts"][0].hour == 13


WHATSAPP_LOCALES = {
    "whatsapp/chat-miner_test_ddmmyy_24hrs.txt": "dmy",
    "whatsapp/chat-miner_test_mmddyy_24hrs.txt": "mdy",
    "whatsapp/chat-miner_test_mmddyyyy_12hrs.txt": "mdy",
    "whatsapp/chat-miner_test_yyyymmdd_24hrs.txt": "ymd",
}


@pytest.mark.parametrize("relative,order", sorted(WHATSAPP_LOCALES.items()))
def test_whatsapp_locales_match_chat_miner_oracle(relative: str, order: str) -> None:
    target = json.loads(fixture("whatsapp/chat-miner_target.json").read_text(encoding="utf-8"))
    frame = read_export(fixture(relative), options=ImportOptions(tz="UTC")).messages
    assert {json.loads(p)["date_order"] for p in frame["platform_ids"]} == {order}
    said = frame.filter(pl.col("msg_type") != "system")
    got = sorted((r["ts"].strftime("%Y-%m-%dT%H:%M:%S"), r["sender_name"], _flat(r["text"]))
                 for r in said.iter_rows(named=True))
    want = sorted((t["timestamp"], t["author"], _flat(t["message"])) for t in target)
    assert got == want
    # The continuation line stays part of its message, with its line break.
    assert any("\nconsectetur" in t for t in said["text"])


def test_whatsapp_system_lines_and_zip_equal_txt() -> None:
    txt = read_export(fixture("whatsapp/chat-analytics_4A_11M.txt")).messages
    system = txt.filter(pl.col("msg_type") == "system")
    assert system.height == 3 and system["sender_name"].null_count() == 3
    assert txt["conversation_type"][0] == "group"
    packed = read_export(fixture("whatsapp/chat-analytics_4A_11M.zip"))
    assert packed.messages["source_position"][0] == "zip:_chat.txt line 1"
    assert packed.messages["text"].to_list() == txt["text"].to_list()  # CRLF in the zip, LF in the txt
    assert schema.record_hashes(packed.messages.drop("conversation_id", "conversation_name"), "messages") == \
        schema.record_hashes(txt.drop("conversation_id", "conversation_name"), "messages")


def test_whatsapp_out_of_order_and_media_omitted() -> None:
    frame = read_export(fixture("whatsapp/chat-analytics_2A_5M.txt")).messages
    assert frame.height == 5
    assert frame["ts"].is_sorted() is False  # kept in file order, not silently reordered
    media = frame.filter(pl.col("msg_type") == "other")
    assert media.height == 1 and json.loads(media["platform_ids"][0])["media_omitted"] is True
    assert frame["conversation_type"][0] == "direct"


def test_slack_threads_edits_tombstones_files() -> None:
    frame = read_export(fixture("slack/slackdump_source_export.zip")).messages
    rows = {r["message_id"]: r for r in frame.iter_rows(named=True)}
    reply = rows["CO69735E8A:1736554746.482349"]
    assert reply["reply_to"] == "CO69735E8A:1736478630.905399"
    assert rows["CO69735E8A:1736554828.343759"]["msg_type"] == "recall"  # tombstone
    edited = rows["CO69735E8A:1737160363.583369"]
    assert json.loads(edited["platform_ids"])["edited_ts"] == "1737160371.000000"
    image = rows["CO69735E8A:1736582524.607359"]
    assert (image["msg_type"], image["attachment_type"], image["attachment_size"]) == ("image", "image/jpeg", 239922)
    assert rows["CO69735E8A:1736554636.807919"]["msg_type"] == "system"  # channel_join
    assert reply["conversation_name"] == "B75B4C7" and reply["conversation_type"] == "channel"


def test_slack_names_bots_and_file_shares() -> None:
    frame = read_export(fixture("slack/slack-export-viewer_testarchive.zip")).messages
    assert "Harry Potter" in set(frame["sender_name"])
    share = frame.filter(pl.col("attachment_name") == "100_cities.js")
    assert share["msg_type"][0] == "file" and share["attachment_size"][0] == 4163
    bots = frame.filter(pl.col("sender_id") == "B0JL6RASU")
    # Bot posts have empty text; the attachment fallback is what Slack showed.
    assert bots.height > 0 and bots["text"].str.len_chars().min() > 0
    assert bots["text"].str.contains("new commit").any()
    assert set(frame["conversation_name"]) == {"enrique", "traveling-sailor"}
    assert frame["source_position"][0].startswith("zip:enrique/2016-01-14.json[")


def test_discord_reply_and_non_default_types() -> None:
    frame = read_export(fixture("discord/chat-analytics_GC_3A_5M.json")).messages
    rows = {r["message_id"]: r for r in frame.iter_rows(named=True)}
    channel = "1064990764406419508"
    assert rows[f"{channel}:530805779645595660"]["reply_to"] == f"{channel}:1064990824305274930"
    rename = rows[f"{channel}:1064990775659729017"]
    assert rename["msg_type"] == "system" and json.loads(rename["platform_ids"])["type"] == "ChannelNameChange"
    assert rows[f"{channel}:100"]["msg_type"] == "system"  # Call
    assert rows[f"{channel}:1064990824305274930"]["sender_name"] == "theplant"  # nickname over name
    assert frame["conversation_type"][0] == "group"


def test_discord_duplicate_message_is_reported_not_doubled() -> None:
    result = read_export(fixture("discord/chat-analytics_SV_5A_5M.json"))
    assert result.messages["message_id"].n_unique() == result.messages.height
    assert [s.position for s in result.skipped] == ["$.messages[1]"]


def test_pywxdump_chinese_csv() -> None:
    frame = read_export(fixture("wechat/weclone_pywxdump_person.csv")).messages
    assert frame.height == 96
    first = frame.row(0, named=True)
    assert first["message_id"] == "test_person:7437267147299592543"
    assert first["msg_type"] == "image" and first["attachment_name"] == "01c177d8ad90af8969ba048455b54eef.dat"
    assert first["ts"].isoformat() == "2024-10-04T03:42:00+00:00"  # 11:42 Asia/Shanghai
    assert "小马尔代夫" in set(frame["text"])
    assert frame.filter(pl.col("msg_type") == "recall").height == 2
    assert frame["conversation_type"].unique().to_list() == ["direct"]
