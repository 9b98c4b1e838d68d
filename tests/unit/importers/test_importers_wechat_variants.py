"""WeChat export variants: WeChatMsg senders and conversation names, PyWxDump's 2024 ``content`` layout."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from investigator.errors import ImportFormatError
from investigator.importers import ImportOptions, detect_format, read_export

from importer_testkit import VARIANTS

UTC = timezone.utc


def _rows(frame):  # type: ignore[no-untyped-def]
    return frame.iter_rows(named=True)


def test_wechatmsg_direct_owner_rows_are_the_owners() -> None:
    path = VARIANTS / "wechat" / "老李_utf8.csv"
    assert detect_format(path) == "wechat-wechatmsg"
    frame = read_export(path).messages
    assert frame.height == 5
    got = [(r["sender_id"], r["sender_name"], r["msg_type"]) for r in _rows(frame)]
    assert got == [("wxid_laoli", "老李", "text"), ("wxid_owner01", "阿明", "text"), ("wxid_owner01", "阿明", "image"),
                   ("wxid_laoli", "老李", "recall"), ("wxid_laoli", "老李", "file")]
    assert set(frame["conversation_name"]) == {"老李"} and set(frame["conversation_id"]) == {"7"}
    assert set(frame["conversation_type"]) == {"direct"}
    assert frame["ts"].to_list()[:2] == [datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
                                         datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)]
    assert frame["text"].to_list()[:2] == ["你好，合同看了吗", "看了，明天签"]
    ids = [json.loads(p) for p in frame["platform_ids"]]
    assert [(i["Remark"], i["Sender"]) for i in ids[:2]] == [("老李", "wxid_laoli"), ("阿明", "wxid_owner01")]


def test_wechatmsg_group_senders_and_stable_name() -> None:
    path = VARIANTS / "wechat" / "项目群_utf8.csv"
    assert detect_format(path) == "wechat-wechatmsg"
    frame = read_export(path).messages
    got = [(r["sender_id"], r["sender_name"], r["msg_type"], r["text"]) for r in _rows(frame)]
    assert got == [("wxid_zhangsan", "张三", "text", "大家好"), ("wxid_owner01", "阿明", "text", "收到"),
                   ("wxid_lisi", "李四", "text", "报价发群里了"),
                   (None, None, "system", "\"张三\"邀请\"李四\"加入了群聊")]
    assert set(frame["conversation_type"]) == {"group"} and set(frame["conversation_name"]) == {"项目群"}


def test_wechatmsg_owner_row_never_takes_the_contacts_remark(write) -> None:
    # A row of the owner whose Remark names the contact and whose Sender is empty: no owner name is invented.
    path = write("chat.csv", "localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,"
                             "NickName,Sender\n1,wxid_li,1,0,0,1700000000,2,a,,老李,Li,\n"
                             "2,wxid_li,1,0,1,1700000060,2,b,,老李,Li,\n")
    frame = read_export(path).messages
    assert frame["sender_id"].to_list() == ["wxid_li", "self"]
    assert frame["sender_name"].to_list() == ["老李", None]
    assert frame["conversation_name"].to_list() == ["老李", "老李"]  # from the contact's rows, not the file name


def test_pywxdump_2024_content_layout() -> None:
    path = VARIANTS / "wechat" / "wxid_laoli_0_7.csv"
    assert detect_format(path) == "wechat-pywxdump"
    result = read_export(path, options=ImportOptions(tz="Asia/Shanghai"))
    frame = result.messages
    assert frame.height == 6 and result.skipped == []
    got = [(r["message_id"], r["sender_id"], r["msg_type"], r["text"]) for r in _rows(frame)]
    assert got == [
        ("wxid_laoli:6842155390123456781", "wxid_laoli", "text", "明天几点到"),
        ("wxid_laoli:6842155390123456782", "我", "text", "十点，带上合同"),
        ("wxid_laoli:6842155390123456783", "wxid_laoli", "image", "图片"),
        ("wxid_laoli:6842155390123456784", "我", "voice", "语音时长：3.20秒\n翻译结果：好的"),
        ("wxid_laoli:6842155390123456785", "wxid_laoli", "other", "群聊的聊天记录\n张三: 报价\n李四: 收到"),
        ("wxid_laoli:6842155390123456786", "wxid_laoli", "recall", '<revokemsg>"老李" 撤回了一条消息</revokemsg>'),
    ]
    # CreateTime is the exporting machine's local time: 09:00:05 in Shanghai is 01:00:05 UTC.
    assert frame["ts"][0] == datetime(2024, 4, 20, 1, 0, 5, tzinfo=UTC)
    assert frame["attachment_name"].to_list()[2:4] == ["c4ca4238.dat", "2024-04-20_09-03-00_1_6842155390123456784.wav"]
    assert set(frame["conversation_type"]) == {"direct"}
    record = json.loads(frame["platform_ids"][4])["src"]
    assert json.loads(record)["recordinfo"]["title"] == "群聊的聊天记录"


def test_pywxdump_2024_bad_content_names_row_and_column(write) -> None:
    path = write("wxid_x_0_2.csv", "id,MsgSvrID,type_name,is_sender,talker,room_name,content,CreateTime\n"
                                   '1,11,文本,0,wxid_x,wxid_x,"{""src"": """", ""msg"": ""ok""}",2024-04-20 09:00:05\n'
                                   "2,12,文本,0,wxid_x,wxid_x,not json,2024-04-20 09:00:06\n")
    with pytest.raises(ImportFormatError) as info:
        read_export(path)
    assert "wxid_x_0_2.csv" in str(info.value) and "line 3" in str(info.value) and "'content'" in str(info.value)
    lenient = read_export(path, options=ImportOptions(lenient=True))
    assert lenient.messages.height == 1 and [s.position for s in lenient.skipped] == ["line 3"]


def test_wechatmsg_before_2024_02_direct_rows_without_sender_columns() -> None:
    # exporter_csv.py @6feb0fc: a 12-column header, but direct-chat rows carry only the nine MSG columns.
    path = VARIANTS / "wechat" / "老王_utf8.csv"
    assert detect_format(path) == "wechat-wechatmsg"
    result = read_export(path)  # strict
    frame = result.messages
    assert result.skipped == [] and frame.height == 3
    got = [(r["sender_id"], r["sender_name"], r["msg_type"], r["text"]) for r in _rows(frame)]
    assert got == [("9", "老王", "text", "钱收到了吗"), ("self", None, "text", "收到了"), ("9", "老王", "voice", "")]
    assert set(frame["conversation_name"]) == {"老王"} and frame["ts"][0] == datetime(2024, 1, 23, 8, 53, 20,
                                                                                     tzinfo=UTC)


def test_wechatmsg_row_with_too_few_fields_names_the_line(write) -> None:  # type: ignore[no-untyped-def]
    path = write("x_utf8.csv", "localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,"
                               "NickName,Sender\n1,9,1,0,0,1706000000,2,a,2024-01-23 16:53:20\n1,9,1,0\n")
    with pytest.raises(ImportFormatError) as info:
        read_export(path)
    assert "x_utf8.csv, line 3" in str(info.value) and "12 fields" in str(info.value)
