"""WeChat chats exported by PyWxDump as CSV.

    >>> from investigator.importers import read_export
    >>> read_export("wxid_abc123.csv", format="wechat-pywxdump")   # doctest: +SKIP

Two layouts, both written by PyWxDump's ``export_csv`` (docs/formats.md cites the commits):

- 3.x (2024-08 on): ``id, MsgSvrID, type_name, is_sender, talker, room_name, msg, src, CreateTime``;
- 2024-04 to 2024-08 (``dbpreprocess/export/exportCSV.py``): ``id, MsgSvrID, type_name,
  is_sender, talker, room_name, content, CreateTime`` where ``content`` is the JSON text
  of ``{"src": ..., "msg": ...}`` (``src`` a path, a URL, or an object for forwarded
  chat records, kept as JSON text in platform_ids).

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

import orjson

from investigator.importers._container import read_head
from investigator.importers._model import ImportOptions, ImportResult
from investigator.importers._records import BadRecord, any_ts_to_us
from investigator.importers._tabular import csv_header
from investigator.importers._wechat import classify_type_name, has_columns, is_recall_notice, parse_wechat_csv

NAME = "wechat-pywxdump"
COLUMNS = ("id", "MsgSvrID", "type_name", "is_sender", "talker", "room_name", "msg", "src", "CreateTime")
COLUMNS_2024 = ("id", "MsgSvrID", "type_name", "is_sender", "talker", "room_name", "content", "CreateTime")
_COMMON = {"MsgSvrID", "type_name", "is_sender", "talker", "CreateTime"}


def sniff(path: Path, head: bytes) -> bool:
    """A CSV whose header has PyWxDump's columns (either layout)."""
    return has_columns(head, path, _COMMON | {"msg"}) or has_columns(head, path, _COMMON | {"content"})


def _content(value: str) -> tuple[str, str]:
    """``(msg, src)`` of the 2024 layout's ``content`` JSON; BadRecord naming the column otherwise."""
    expected = 'a JSON object {"src": ..., "msg": ...} in column \'content\''
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise BadRecord(expected) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("msg", ""), str):
        raise BadRecord(expected)
    src = obj.get("src")
    if src is None:
        src = ""
    elif not isinstance(src, str):  # forwarded chat records: a parsed XML object
        src = orjson.dumps(src, option=orjson.OPT_SORT_KEYS).decode()
    return obj.get("msg", ""), src


def _convert(row: dict[str, str], options: ImportOptions, context: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
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
    if "msg" in row:
        text, src = row["msg"], row["src"].strip()
    else:
        text, src = _content(row["content"])
        src = src.strip()
    if msg_type == "system" and is_recall_notice(text):
        msg_type = "recall"
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
    """Read a PyWxDump CSV (either layout).

    Raises ImportFormatError (missing column, bad time, bad is_sender, a ``content``
    cell that is not the JSON object PyWxDump writes ...).
    """
    header = csv_header(read_head(path)) or []
    required = COLUMNS_2024 if "content" in header and "msg" not in header else COLUMNS
    return parse_wechat_csv(path, options, fmt=NAME, required=required, convert=_convert)
