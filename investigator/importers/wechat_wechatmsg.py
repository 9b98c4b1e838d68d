"""WeChat chats exported by WeChatMsg (留痕 / MemoTrace) as CSV.

    >>> from investigator.importers import read_export
    >>> read_export("老李_utf8.csv", format="wechat-wechatmsg")   # doctest: +SKIP

Columns: ``localId, TalkerId, Type, SubType, IsSender, CreateTime, Status,
StrContent, StrTime, Remark, NickName, Sender`` (docs/formats.md cites the writer,
LC044/WeChatMsg ``app/util/exporter/exporter_csv.py``).

- ``Remark, NickName, Sender`` describe the row's *sender*: the account owner's
  remark, nickname and wxid when ``IsSender`` = 1, the contact's (or in groups the
  group member's) otherwise. So an ``IsSender`` = 1 row is the owner's: sender id
  = the owner's wxid from ``Sender`` ("self" when the column is empty), name = the
  owner's NickName / Remark; never the contact's.
- The conversation is ``TalkerId``; its name is the contact's remark, which the
  tool writes into the file name (``<remark>_utf8.csv``), else the Remark of the
  contact's own rows. It does not change from row to row; each row's Remark,
  NickName and Sender are kept in platform_ids.
- Releases before 2024-02-27 (LC044/WeChatMsg @6feb0fc) wrote the same header but only
  the nine MSG columns on direct-chat rows: such rows are read with the last three empty.
- A group: ``TalkerId`` ending in ``@chatroom``, or more than one wxid among the
  ``Sender`` values of rows the owner did not send.
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
# What every row carries (exporter_csv.py writes msg[:9], then the sender's Remark, NickName, wxid).
_MSG_COLUMNS = ("localId", "TalkerId", "Type", "SubType", "IsSender", "CreateTime", "Status", "StrContent", "StrTime")
_TYPES = {"1": "text", "3": "image", "34": "voice", "43": "video", "47": "image", "10000": "system",
          "10002": "system", "42": "other", "48": "other", "50": "other"}
_APP_SUBTYPES = {"6": "file", "5": "link", "33": "link", "36": "link", "57": "text", "19": "other"}


def sniff(path: Path, head: bytes) -> bool:
    """A CSV whose header has WeChatMsg's columns."""
    return has_columns(head, path, {"localId", "TalkerId", "Type", "IsSender", "CreateTime", "StrContent"})


def _prepare(file_name: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    """The conversation's name and kind, from the file name and all rows (see the module doc)."""
    others = [row for row in rows if (row.get("IsSender") or "").strip() == "0"]
    wxids = {(row.get("Sender") or "").strip() for row in others} - {""}
    talkers = {(row.get("TalkerId") or "").strip() for row in rows}
    group = len(wxids) > 1 or any(t.endswith("@chatroom") for t in talkers)
    stem = file_name.rsplit(".", 1)[0]
    name = stem[:-len("_utf8")] if stem.endswith("_utf8") else None
    if not name and not group:
        remarks = [(row.get("Remark") or "").strip() or (row.get("NickName") or "").strip() for row in others]
        name = next((r for r in remarks if r), None)
    return {"group": group, "name": name or None}


def _convert(row: dict[str, str], options: ImportOptions, context: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
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
    remark = (row.get("Remark") or "").strip() or None
    nickname = (row.get("NickName") or "").strip() or None
    wxid = (row.get("Sender") or "").strip() or None
    group = bool(context.get("group"))
    sender_id: str | None
    if is_sender == "1":
        # exporter_csv.py writes Me().remark / nickName / wxid into these columns for the owner's rows;
        # without a Sender column the row cannot say who the owner is, and a Remark there is not trusted.
        sender_id = wxid or "self"
        sender_name = (nickname or remark) if wxid else None
    else:
        sender_id = wxid or (None if group else talker)
        sender_name = remark or nickname or wxid or (None if group else context.get("name"))
    rec: dict[str, Any] = {
        "message_id": f"{talker}:{local_id}:{created}",
        "ts": us,
        "conversation_id": talker,
        "conversation_name": context.get("name") or talker,
        "conversation_type": "group" if group else "direct",
        "sender_id": sender_id,
        "sender_name": sender_name,
        "msg_type": msg_type,
        "text": text,
    }
    ids = {"localId": local_id, "TalkerId": talker, "Type": kind, "SubType": row["SubType"].strip(),
           "IsSender": is_sender, "Status": (row.get("Status") or "").strip() or None,
           "Remark": remark, "NickName": nickname, "Sender": wxid}
    return rec, ids


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read a WeChatMsg CSV. Raises ImportFormatError (missing column, bad time, bad IsSender ...)."""
    return parse_wechat_csv(path, options, fmt=NAME, required=COLUMNS, convert=_convert,
                            prepare=_prepare, min_fields=len(_MSG_COLUMNS))
