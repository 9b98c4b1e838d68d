"""WeChat chats exported by PyWxDump as CSV.

    >>> from investigator.importers import read_export
    >>> read_export("wxid_abc123.csv", format="wechat-pywxdump")   # doctest: +SKIP

Columns: ``id, MsgSvrID, type_name, is_sender, talker, room_name, msg, src, CreateTime``.

- ``room_name`` is the conversation (``...@chatroom`` = group), ``talker`` the sender's
  wxid, ``is_sender`` = 1 when the exporting account sent it.
- ``CreateTime`` is local time (``2024/10/4 11:42``) read in ``options.tz``, or epoch seconds.
- ``type_name`` (文本, 图片, 语音, 动画表情, 系统通知 ...) -> msg_type; a 系统通知 with
  ``<revokemsg>`` -> "recall". ``src`` (a path inside the WeChat folder or a CDN URL) is
  kept as the attachment name: the file is not in the export, so it is not hashed.
- ``message_id`` = ``<room_name>:<MsgSvrID>`` (the server id), or ``<room_name>:local:<id>``
  when MsgSvrID is empty or 0.
"""

from __future__ import annotations

from pathlib import Path, PureWindowsPath
from typing import Any

from investigator.importers._model import ImportOptions, ImportResult
from investigator.importers._records import BadRecord, any_ts_to_us
from investigator.importers._wechat import classify_type_name, has_columns, is_recall_notice, parse_wechat_csv

NAME = "wechat-pywxdump"
COLUMNS = ("id", "MsgSvrID", "type_name", "is_sender", "talker", "room_name", "msg", "src", "CreateTime")


def sniff(path: Path, head: bytes) -> bool:
    """A CSV whose header has PyWxDump's columns."""
    return has_columns(head, path, {"MsgSvrID", "type_name", "is_sender", "talker", "msg", "CreateTime"})


def _convert(row: dict[str, str], options: ImportOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    room = row["room_name"].strip()
    if not room:
        raise BadRecord("a value in column 'room_name'")
    server_id = row["MsgSvrID"].strip()
    local_id = row["id"].strip()
    if server_id and server_id != "0":
        message_id = f"{room}:{server_id}"
    elif local_id:
        message_id = f"{room}:local:{local_id}"
    else:
        raise BadRecord("a value in column 'MsgSvrID' or 'id'")
    try:
        us = any_ts_to_us(row["CreateTime"].strip(), options.tz)
    except BadRecord:
        raise BadRecord("a local time such as '2024/10/4 11:42' in column 'CreateTime'") from None
    if row["is_sender"].strip() not in ("0", "1"):
        raise BadRecord("0 or 1 in column 'is_sender'")
    msg_type = classify_type_name(row["type_name"])
    text = row["msg"]
    if msg_type == "system" and is_recall_notice(text):
        msg_type = "recall"
    src = row["src"].strip()
    rec: dict[str, Any] = {
        "message_id": message_id,
        "ts": us,
        "conversation_id": room,
        "conversation_name": room,
        "conversation_type": "group" if room.endswith("@chatroom") else "direct",
        "sender_id": row["talker"].strip() or None,
        "sender_name": row["talker"].strip() or None,
        "msg_type": msg_type,
        "text": text,
    }
    if src and msg_type in ("image", "voice", "video", "file"):
        rec["attachment_name"] = PureWindowsPath(src).name if "://" not in src else src
        rec["attachment_type"] = msg_type
    ids = {"MsgSvrID": server_id or None, "id": local_id or None, "is_sender": row["is_sender"].strip(),
           "type_name": row["type_name"], "src": src or None}
    return rec, ids


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read a PyWxDump CSV. Raises ImportFormatError (missing column, bad time, bad is_sender ...)."""
    return parse_wechat_csv(path, options, fmt=NAME, required=COLUMNS, convert=_convert)
