"""Tiny hand-written inputs: WeCom, WeChatMsg, auth.log, events, mapped / GB18030 CSV, strict vs lenient."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import polars as pl
import pytest

from investigator import schema
from investigator.errors import ImportFormatError
from investigator.importers import FORMATS, ImportOptions, detect_format, read_export
from importer_testkit import jsonl

WECOM = [
    {"msgid": "m1", "action": "send", "from": "zhangsan", "tolist": ["lisi"], "roomid": "", "msgtime": 1700000000123,
     "msgtype": "text", "text": {"content": "合同明天发"}},
    {"msgid": "m2", "action": "recall", "from": "zhangsan", "tolist": ["lisi"], "roomid": "", "msgtime": 1700000005000,
     "msgtype": "revoke", "revoke": {"pre_msgid": "m1"}},
    {"msgid": "m3", "action": "send", "from": "wangwu", "tolist": ["zhangsan", "lisi"], "roomid": "wr123",
     "msgtime": 1700000009000, "msgtype": "file",
     "file": {"md5sum": "0cc175b9c0f1b6a831c399e269772661", "filename": "报价.xlsx", "fileext": "xlsx",
              "filesize": 4096, "sdkfileid": "CtYBMzA2OTAyMDEwMjA0NjIzMDYwMDIwMTAwMDIwNDdmZmZmZmZm"}},
    {"msgid": "m4", "action": "switch", "time": 1700000010000, "user": "lisi"},
]


def test_wecom_recall_file_and_room_names(write) -> None:
    path = write("wecom.jsonl", jsonl(*WECOM))
    rooms = write("rooms.json", json.dumps({"wr123": "项目A群"}, ensure_ascii=False))
    assert detect_format(path) == "wecom"
    frame = read_export(path, options=ImportOptions(room_names=str(rooms))).messages
    rows = {r["message_id"]: r for r in frame.iter_rows(named=True)}
    assert rows["m1"]["text"] == "合同明天发" and rows["m1"]["conversation_type"] == "direct"
    assert rows["m1"]["ts"] == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc)
    assert rows["m2"]["msg_type"] == "recall" and rows["m2"]["original_id"] == "m1"
    assert rows["m1"]["conversation_id"] == rows["m2"]["conversation_id"] == "direct:lisi|zhangsan"
    f = rows["m3"]
    assert (f["msg_type"], f["attachment_name"], f["attachment_size"]) == ("file", "报价.xlsx", 4096)
    assert f["attachment_md5"] == "0cc175b9c0f1b6a831c399e269772661" and f["attachment_sha256"] is None
    assert (f["conversation_name"], f["conversation_type"]) == ("项目A群", "group")
    assert f["recipients"] == ["zhangsan", "lisi"]
    assert rows["m4"]["msg_type"] == "system"


def test_wecom_room_names_from_csv(write) -> None:
    path = write("wecom.jsonl", jsonl(WECOM[2]))
    rooms = write("rooms.csv", "roomid,name\nwr123,项目A群\n")
    frame = read_export(path, format="wecom", options=ImportOptions(room_names=str(rooms))).messages
    assert frame["conversation_name"][0] == "项目A群"


def test_wechatmsg_csv(write) -> None:
    text = ("localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender\n"
            "1,wxid_li,1,0,0,1700000000,2,你好,2023-11-15 06:13:20,老李,Li,\n"
            "2,wxid_li,1,0,1,1700000060,2,在的,2023-11-15 06:14:20,老李,Li,\n"
            "3,wxid_li,10000,0,0,1700000070,2,\"\"\"老李\"\" 撤回了一条消息\",2023-11-15 06:14:30,老李,Li,\n"
            "4,wxid_li,49,6,0,1700000080,2,报价.xlsx,2023-11-15 06:14:40,老李,Li,\n")
    path = write("老李.csv", text)
    assert detect_format(path) == "wechat-wechatmsg"
    frame = read_export(path).messages
    assert frame["message_id"].to_list()[0] == "wxid_li:1:1700000000"
    assert frame["sender_id"].to_list() == ["wxid_li", "self", "wxid_li", "wxid_li"]
    assert frame["msg_type"].to_list() == ["text", "text", "recall", "file"]
    assert frame["conversation_name"][0] == "老李"
    assert frame["ts"][0] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)


AUTHLOG = (
    "Dec 31 23:59:58 bastion sshd[100]: Accepted publickey for alice from 10.0.0.5 port 50000 ssh2: ED25519 SHA256:x\n"
    "Jan  1 00:00:01 bastion sshd[101]: Failed password for bob from 203.0.113.9 port 4242 ssh2\n"
    "Jan  1 00:00:02 bastion sshd[102]: Invalid user admin from 203.0.113.9 port 4243\n"
    "Jan  1 00:00:03 bastion sshd[102]: Failed password for invalid user admin from 203.0.113.9 port 4243 ssh2\n"
    "Jan  1 00:05:00 bastion sshd[100]: pam_unix(sshd:session): session closed for user alice\n"
    "Jan  1 00:06:00 bastion CRON[7]: pam_unix(cron:session): session opened for user root\n"
    "Jan  1 00:07:00 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/cat /etc/shadow\n"
)


def test_authlog_events(write) -> None:
    path = write("auth.log", AUTHLOG)
    assert detect_format(path) == "authlog"
    result = read_export(path, options=ImportOptions(year=2023, tz="UTC"))
    ev = result.events
    assert result.messages.height == 0 and ev.columns == list(schema.full_schema("events"))
    assert ev["event_type"].to_list() == ["login", "login_failed", "login_failed", "login_failed", "logout", "sudo"]
    assert ev["actor"].to_list() == ["alice", "bob", "admin", "admin", "alice", "alice"]
    assert ev["ip"].to_list()[:4] == ["10.0.0.5", "203.0.113.9", "203.0.113.9", "203.0.113.9"]
    assert ev["outcome"].to_list()[:2] == ["success", "failure"]
    assert set(ev["host"]) == {"bastion"}
    assert json.loads(ev["details"][2])["reason"] == "invalid user"
    assert ev["ts"][0].year == 2023 and ev["ts"][1].year == 2024  # crossed New Year
    assert [s.position for s in result.skipped] == ["line 6"]  # the CRON line, listed not dropped
    assert ev["event_id"].n_unique() == ev.height


def test_authlog_year_defaults_to_mtime(write) -> None:
    path = write("auth.log", AUTHLOG)
    stamp = datetime(2021, 1, 2, tzinfo=timezone.utc).timestamp()
    os.utime(path, (stamp, stamp))
    ev = read_export(path, options=ImportOptions(tz="UTC")).events
    assert ev["ts"][0].year == 2020 and ev["ts"][1].year == 2021


def test_events_csv_and_jsonl(write) -> None:
    csv_path = write("events.csv", "event_id,ts,actor,event_type,host,ip,outcome,details\n"
                                   "e1,2024-05-01T08:00:00+08:00,alice,login,vpn,10.0.0.1,success,\n"
                                   "e2,1714521660,bob,alert,siem,,,\"{\"\"rule\"\": 7}\"\n")
    assert detect_format(csv_path) == "events-csv"
    ev = read_export(csv_path).events
    assert ev["event_id"].to_list() == ["e1", "e2"]
    assert ev["ts"].to_list() == [datetime(2024, 5, 1, 0, 0, tzinfo=timezone.utc),
                                  datetime(2024, 5, 1, 0, 1, tzinfo=timezone.utc)]
    lines = write("events.jsonl", jsonl({"ts": "2024-05-01 08:00:00", "user": "alice", "event_type": "ticket",
                                         "details": {"ticket": "T-1"}}))
    assert detect_format(lines) == "events-jsonl"
    ev = read_export(lines, options=ImportOptions(mapping={"actor": "user"})).events
    assert ev["actor"][0] == "alice" and ev["ts"][0] == datetime(2024, 5, 1, 0, 0, tzinfo=timezone.utc)
    assert json.loads(ev["details"][0]) == {"ticket": "T-1"} and ev["event_id"][0].startswith("derived:")


def test_csv_mapping_gb18030(write) -> None:
    text = "消息ID,发送时间,发送人,内容,接收人\nd1,2024-03-01 09:30:00,张伟,加班费什么时候发,李娜;王静\n"
    path = write("dingtalk.csv", text.encode("gb18030"))
    assert detect_format(path) == "csv"
    mapping = {"message_id": "消息ID", "ts": "发送时间", "sender_name": "发送人", "text": "内容",
               "recipients": "接收人"}
    row = read_export(path, options=ImportOptions(mapping=mapping)).messages.row(0, named=True)
    assert (row["sender_name"], row["text"], row["recipients"]) == ("张伟", "加班费什么时候发", ["李娜", "王静"])
    assert row["ts"] == datetime(2024, 3, 1, 1, 30, tzinfo=timezone.utc)
    assert row["msg_type"] == "text" and row["source"] == "csv"


def test_csv_utf8_bom_and_json_recipients(write) -> None:
    text = 'message_id,ts,sender_name,recipients,text\nx1,1709256600000,Ann,"[""a"",""b""]",hi\n'
    path = write("m.csv", b"\xef\xbb\xbf" + text.encode())
    row = read_export(path).messages.row(0, named=True)
    assert row["message_id"] == "x1" and row["recipients"] == ["a", "b"]
    assert row["ts"] == datetime(2024, 3, 1, 1, 30, tzinfo=timezone.utc)  # epoch milliseconds


def test_missing_required_column_is_named(write) -> None:
    path = write("m.csv", "id,when,text\n1,2024-01-01,hi\n")
    with pytest.raises(ImportFormatError) as err:
        read_export(path)
    assert err.value.file == "m.csv" and "message_id" in str(err.value)
    with pytest.raises(ImportFormatError, match="'发送时间'"):
        read_export(path, options=ImportOptions(mapping={"message_id": "id", "ts": "发送时间"}))


def test_undecodable_csv_names_encodings(write) -> None:
    path = write("m.csv", b"message_id,ts\n1,\xff\xff\xff\xfe\n")
    with pytest.raises(ImportFormatError, match="UTF-8 or GB18030"):
        read_export(path, format="csv")


def test_strict_names_file_line_column_lenient_skips(write) -> None:
    text = "message_id,ts,text\n1,2024-01-01T00:00:00Z,secret one\n2,not-a-time,secret two\n3,2024-01-02,ok\n"
    path = write("m.csv", text)
    with pytest.raises(ImportFormatError) as err:
        read_export(path)
    message = str(err.value)
    assert err.value.file == "m.csv" and err.value.position == "line 3" and "'ts'" in message
    assert "secret" not in message and "not-a-time" not in message  # never the record's content
    result = read_export(path, options=ImportOptions(lenient=True))
    assert result.messages["message_id"].to_list() == ["1", "3"]
    assert [(s.position, "'ts'" in s.reason) for s in result.skipped] == [("line 3", True)]
    assert "secret" not in repr(result.skipped)


def test_strict_jsonl_bad_line_and_invalid_utf8(write) -> None:
    good = json.dumps({"message_id": "1", "ts": "2024-01-01T00:00:00Z", "text": "hello"})
    path = write("m.jsonl", (good + "\n{not json\n" + good.replace('"1"', '"2"') + "\n").encode())
    with pytest.raises(ImportFormatError, match="line 2"):
        read_export(path)
    result = read_export(path, options=ImportOptions(lenient=True))
    assert result.messages.height == 2 and result.skipped[0].position == "line 2"
    bad = write("u.jsonl", good.encode() + b"\n" + b'{"message_id": "\xff", "ts": 1}\n')
    with pytest.raises(ImportFormatError, match="UTF-8"):
        read_export(bad, format="jsonl")


def test_whatsapp_strict_impossible_date_and_override(write) -> None:
    path = write("chat.txt", "31/01/21, 10:00 - A: hi\n30/02/21, 10:01 - B: yo\n")
    with pytest.raises(ImportFormatError, match="line 2"):
        read_export(path)
    assert read_export(path, options=ImportOptions(lenient=True)).messages.height == 1
    ambiguous = write("ambiguous.txt", "01/02/21, 10:00 - A: hi\n")
    assert read_export(ambiguous, options=ImportOptions(date_order="mdy", tz="UTC")).messages["ts"][0].month == 1
    assert read_export(ambiguous, options=ImportOptions(tz="UTC")).messages["ts"][0].month == 2  # dmy on a tie


def test_whatsapp_ios_zip_with_media(tmp_path) -> None:
    import zipfile

    chat = ("[12/09/20, 23:55:01] Group: \u200eMessages and calls are end-to-end encrypted.\n"
            "[12/09/20, 23:55:09] Alice: \u200e<attached: 00000012-PHOTO-2020-09-12-23-55-09.jpg>\n"
            "[12/09/20, 23:56:00] Bob: \u200eimage omitted\n"
            "[12/09/20, 11:57:00 PM] Bob: line one\nline two\n")
    path = tmp_path / "WhatsApp Chat - Group.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("_chat.txt", chat)
        zf.writestr("00000012-PHOTO-2020-09-12-23-55-09.jpg", b"\xff\xd8jpeg")
    assert detect_format(path) == "whatsapp"
    frame = read_export(path, options=ImportOptions(tz="UTC")).messages
    assert frame["msg_type"].to_list() == ["system", "image", "image", "text"]
    photo = frame.row(1, named=True)
    import hashlib

    assert photo["attachment_sha256"] == hashlib.sha256(b"\xff\xd8jpeg").hexdigest() and photo["attachment_size"] == 6
    assert frame["text"][3] == "line one\nline two"
    assert frame["conversation_name"][0] == "Group"


def test_formats_registry_complete() -> None:
    assert set(FORMATS) == {"jsonl", "csv", "slack", "telegram", "whatsapp", "discord", "wecom", "wechat-pywxdump",
                            "wechat-wechatmsg", "events-csv", "events-jsonl", "authlog"}
    with pytest.raises(ImportFormatError, match="one of"):
        read_export(__file__, format="nope")


def test_detection_failure_names_file_and_tries(write) -> None:
    path = write("notes.md", "# nothing to see\n")
    with pytest.raises(ImportFormatError) as err:
        detect_format(path)
    assert err.value.file == "notes.md" and "slack" in str(err.value) and "authlog" in str(err.value)


def test_frames_have_exact_schema_when_empty(write) -> None:
    path = write("e.jsonl", "")
    result = read_export(path, format="jsonl")
    assert result.messages.schema == pl.Schema(schema.full_schema("messages"))
    assert result.events.schema == pl.Schema(schema.full_schema("events"))
