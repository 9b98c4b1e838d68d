"""WeChat chats exported by WeChatMsg (留痕) as CSV.

    >>> from investigator.importers import read_export
    >>> read_export("张三.csv", format="wechat-wechatmsg")   # doctest: +SKIP

Columns: ``localId, TalkerId, Type, SubType, IsSender, CreateTime, Status,
StrContent, StrTime, Remark, NickName, Sender``.

- ``TalkerId`` is the conversation (``...@chatroom`` = group). ``Sender`` names the
  sender in groups; otherwise the sender is the contact (``IsSender`` = 0) or the
  exporting account (``IsSender`` = 1, sender_id "self").
- ``CreateTime`` is epoch seconds (UTC); ``StrTime`` (local) is used when it is empty.
- ``Type`` / ``SubType``: 1 text, 3 image, 34 voice, 43 video, 47 sticker, 49 app
  messages (SubType 6 file, 5/33/36 link, 57 quote), 10000 system, 10002 recall
  notice, others "other".
- ``message_id`` = ``<TalkerId>:<localId>:<CreateTime>`` (localId is per database).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from investigator.importers._model import ImportOptions, ImportResult
from investigator.importers._records import BadRecord, any_ts_to_us, epoch_to_us
from investigator.importers._wechat import has_columns, is_recall_notice, parse_wechat_csv

NAME = "wechat-wechatmsg"
COLUMNS = ("localId", "TalkerId", "Type", "SubType", "IsSender", "CreateTime", "StrContent")
_TYPES = {"1": "text", "3": "image", "34": "voice", "43": "video", "47": "image", "10000": "system",
          "10002": "system", "42": "other", "48": "other", "50": "other"}
_APP_SUBTYPES = {"6": "file", "5": "link", "33": "link", "36": "link", "57": "text", "19": "other"}


def sniff(path: Path, head: bytes) -> bool:
    """A CSV whose header has WeChatMsg's columns."""
    return has_columns(head, path, {"localId", "TalkerId", "Type", "IsSender", "CreateTime", "StrContent"})


def _convert(row: dict[str, str], options: ImportOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    talker = row["TalkerId"].strip()
    local_id = row["localId"].strip()
    if not talker or not local_id:
        raise BadRecord("values in columns 'TalkerId' and 'localId'")
    created = row["CreateTime"].strip()
    try:
        us = epoch_to_us(created) if created else any_ts_to_us(row.get("StrTime", "").strip(), options.tz)
    except BadRecord:
        raise BadRecord("epoch seconds in column 'CreateTime'") from None
    is_sender = row["IsSender"].strip()
    if is_sender not in ("0", "1"):
        raise BadRecord("0 or 1 in column 'IsSender'")
    kind = row["Type"].strip()
    msg_type = _APP_SUBTYPES.get(row["SubType"].strip(), "other") if kind == "49" else _TYPES.get(kind, "other")
    text = row["StrContent"]
    if kind in ("10000", "10002") and is_recall_notice(text):
        msg_type = "recall"
    contact = (row.get("Remark") or "").strip() or (row.get("NickName") or "").strip() or None
    group = talker.endswith("@chatroom")
    sender = (row.get("Sender") or "").strip() or None
    sender_id: str | None
    if is_sender == "1":
        sender_id, sender_name = "self", sender
    elif group:
        sender_id, sender_name = sender, sender
    else:
        sender_id, sender_name = talker, sender or contact
    rec: dict[str, Any] = {
        "message_id": f"{talker}:{local_id}:{created}",
        "ts": us,
        "conversation_id": talker,
        "conversation_name": contact or talker,
        "conversation_type": "group" if group else "direct",
        "sender_id": sender_id,
        "sender_name": sender_name,
        "msg_type": msg_type,
        "text": text,
    }
    ids = {"localId": local_id, "TalkerId": talker, "Type": kind, "SubType": row["SubType"].strip(),
           "IsSender": is_sender, "Status": (row.get("Status") or "").strip() or None}
    return rec, ids


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read a WeChatMsg CSV. Raises ImportFormatError (missing column, bad time, bad IsSender ...)."""
    return parse_wechat_csv(path, options, fmt=NAME, required=COLUMNS, convert=_convert)
