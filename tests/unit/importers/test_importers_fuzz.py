"""Property-based fuzzing: any bytes, and mutations of valid inputs, raise only ImportFormatError."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from investigator import schema
from investigator.errors import ImportFormatError
from investigator.importers import FORMATS, ImportOptions, read_export
from investigator.importers._records import raw_sha256


def _slack_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channels.json", json.dumps([{"id": "C1", "name": "general", "members": ["U1"]}]))
        zf.writestr("users.json", json.dumps([{"id": "U1", "real_name": "Ann"}]))
        zf.writestr("general/2016-01-15.json", json.dumps([
            {"type": "message", "user": "U1", "text": "hi", "ts": "1452845865.000008", "thread_ts": "1452845865.000001",
             "files": [{"id": "F1", "name": "a.png", "mimetype": "image/png", "size": 3}]},
            {"type": "message", "subtype": "message_deleted", "deleted_ts": "1452845865.000008",
             "ts": "1452845866.000001"}]))
    return buf.getvalue()


SEEDS: dict[str, tuple[str, bytes]] = {
    "slack": ("export.zip", _slack_zip()),
    "telegram": ("result.json", json.dumps({"name": "c", "type": "personal_chat", "id": 1, "messages": [
        {"id": 1, "type": "message", "date_unixtime": "1544006350", "from": "A", "from_id": "user1",
         "text": ["x", {"type": "bold", "text": "y"}], "reply_to_message_id": 0},
        {"id": 2, "type": "service", "date": "2019-07-05T16:55:32", "actor": "B", "action": "phone_call",
         "text": ""}]}).encode()),
    "whatsapp": ("chat.txt", "12/9/20, 23:55 - A: hello\ncontinued\n12/9/20, 11:56 PM - B: <Media omitted>\n"
                             "[12/9/20, 23:57:01] C: \u200eimage omitted\n".encode()),
    "discord": ("d.json", json.dumps({"guild": {"id": "0"}, "channel": {"id": "5", "type": "DirectTextChat"},
                                      "messages": [{"id": "9", "type": "Reply", "timestamp": "2023-01-17T19:33:07+00:00",
                                                    "content": "x", "author": {"id": "1", "name": "n"},
                                                    "reference": {"messageId": "8"},
                                                    "attachments": [{"fileName": "a.png", "fileSizeBytes": 3}]}]}).encode()),
    "wecom": ("w.jsonl", (json.dumps({"msgid": "m1", "action": "send", "from": "a", "tolist": ["b"], "roomid": "",
                                      "msgtime": 1700000000123, "msgtype": "text", "text": {"content": "x"}}) + "\n" +
                          json.dumps({"msgid": "m2", "action": "recall", "from": "a", "tolist": ["b"], "roomid": "r",
                                      "msgtime": 1700000000124, "msgtype": "revoke",
                                      "revoke": {"pre_msgid": "m1"}}) + "\n").encode()),
    "wechat-pywxdump": ("p.csv", "id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime\n"
                                 "1,77,文本,0,wxid_a,wxid_a,你好,,2024/10/4 11:42\n".encode()),
    "wechat-wechatmsg": ("w.csv", "localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,"
                                  "Remark,NickName,Sender\n1,wxid_a,1,0,0,1700000000,2,hi,,,,\n".encode()),
    "csv": ("m.csv", "message_id,ts,text,recipients\n1,2024-01-01T00:00:00Z,hi,a;b\n".encode("gb18030")),
    "jsonl": ("m.jsonl", b'{"message_id": "1", "ts": 1700000000, "text": "hi", "recipients": ["a"]}\n'),
    "events-csv": ("e.csv", b"event_id,ts,event_type,actor\ne1,2024-01-01T00:00:00Z,login,a\n"),
    "events-jsonl": ("e.jsonl", b'{"ts": "2024-01-01T00:00:00+08:00", "event_type": "alert"}\n'),
    "authlog": ("auth.log", b"Jan  1 00:00:01 h sshd[1]: Failed password for bob from 1.2.3.4 port 1 ssh2\n"),
}
assert set(SEEDS) == set(FORMATS)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(fmt: str, name: str, data: bytes, lenient: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        for chosen in (fmt, "auto"):
            try:
                result = read_export(path, format=chosen, options=ImportOptions(lenient=lenient, year=2024))
            except ImportFormatError:
                continue
            assert result.messages.columns == list(schema.full_schema("messages"))
            assert result.events.columns == list(schema.full_schema("events"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_seeds_parse(fmt: str) -> None:
    name, data = SEEDS[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        result = read_export(path, format=fmt)
        assert result.messages.height + result.events.height > 0


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.binary(max_size=2048), lenient=st.booleans())
def test_arbitrary_bytes_only_raise_import_format_error(fmt: str, data: bytes, lenient: bool) -> None:
    _run(fmt, SEEDS[fmt][0], data, lenient)


_mutation = st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]), st.integers(0, 10**6),
                      st.binary(min_size=1, max_size=8))


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(mutations=st.lists(_mutation, min_size=1, max_size=4), lenient=st.booleans())
def test_mutated_valid_inputs_only_raise_import_format_error(fmt: str, mutations: list, lenient: bool) -> None:
    name, data = SEEDS[fmt]
    buf = bytearray(data)
    for op, at, blob in mutations:
        at = at % (len(buf) + 1)
        if op == "flip" and at < len(buf):
            buf[at] ^= blob[0] or 1
        elif op == "insert":
            buf[at:at] = blob
        elif op == "delete":
            del buf[at:at + len(blob)]
        else:
            del buf[at:]
    _run(fmt, name, bytes(buf), lenient)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(obj=_json)
def test_raw_hash_fast_path_equals_rfc8785(obj: object) -> None:
    import hashlib

    try:
        expected = hashlib.sha256(schema.canonical_json(obj)).hexdigest()
    except Exception:
        return  # outside the RFC 8785 domain (e.g. integers beyond 2**53): any stable hash will do
    assert raw_sha256(obj) == expected
