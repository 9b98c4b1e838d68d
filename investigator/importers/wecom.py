"""WeCom 会话内容存档 (conversation archive): decrypted messages as JSON lines.

    >>> from investigator.importers import read_export, ImportOptions
    >>> read_export("wecom-2024-06.jsonl", format="wecom",
    ...             options=ImportOptions(room_names="rooms.json"))   # doctest: +SKIP

One object per line, as the finance SDK's ``DecryptData`` returns it:
``msgid``, ``action`` (send / recall / switch), ``from``, ``tolist``, ``roomid``
(empty for one-to-one chats), ``msgtime`` (UTC milliseconds), ``msgtype`` and a
body named after it.

- ``text.content`` -> text; ``markdown`` / ``mixed`` -> text of their parts.
- ``image`` / ``voice`` / ``video`` / ``file`` / ``emotion`` -> attachment with
  the platform's ``md5sum`` (attachment_md5) and size; the media itself is not in
  the archive, so no SHA-256.
- ``revoke.pre_msgid`` -> msg_type "recall" with ``original_id``.
- ``link`` -> msg_type "link" (title and URL as text); ``agree`` / ``disagree`` and
  ``switch`` -> "system"; card, location, chatrecord, meeting ... -> "other".
- Conversations: ``roomid`` (group; its name from ``options.room_names``, a JSON
  object / array or a CSV ``roomid,name``), else the sorted pair of participants.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson

from investigator.errors import ImportFormatError

from investigator.importers._container import Container
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import BadRecord, Collector, as_int, as_str, decode_text, epoch_to_us, first_json_object
from investigator.importers._tabular import iter_jsonl

NAME = "wecom"

_MEDIA = {"image": "image", "voice": "voice", "video": "video", "file": "file", "emotion": "image",
          "meeting_voice_call": "voice"}
_SYSTEM = ("agree", "disagree", "switch")
_SIZE_KEYS = ("filesize", "voice_size", "imagesize")


def sniff(path: Path, head: bytes) -> bool:
    """JSON lines whose first object has WeCom's ``msgid`` and ``msgtime`` / ``action``."""
    obj = first_json_object(head)
    return obj is not None and "msgid" in obj and ("msgtime" in obj or "action" in obj)


def load_room_names(path: str) -> dict[str, str]:
    """roomid -> name from a JSON object, a JSON array of {roomid, name}, or a CSV ``roomid,name``.

    Raises ImportFormatError naming the file when it cannot be read that way.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ImportFormatError(file.name, "", "a readable room-name mapping file") from exc
    text, _ = decode_text(data, file.name)
    if text.lstrip().startswith(("{", "[")):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ImportFormatError(file.name, "", "a JSON room-name mapping") from None
        if isinstance(doc, dict):
            return {str(k): str(v) for k, v in doc.items() if isinstance(v, (str, int))}
        if isinstance(doc, list):
            out = {}
            for item in doc:
                if isinstance(item, dict) and item.get("roomid") and item.get("name"):
                    out[str(item["roomid"])] = str(item["name"])
            return out
        raise ImportFormatError(file.name, "$", "a JSON object or array")
    out = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[0].strip().lower() != "roomid":
            out[row[0].strip()] = row[1].strip()
    return out


def _body(obj: dict[str, Any], msgtype: str) -> tuple[str, str | None, dict[str, Any], dict[str, Any]]:
    """msg_type, text, attachment columns, extra platform ids."""
    found = obj.get(msgtype)
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    if msgtype == "text":
        content = body.get("content")
        if not isinstance(content, str):
            raise BadRecord("'text.content' as a string")
        return "text", content, {}, {}
    if msgtype == "revoke":
        pre = as_str(body.get("pre_msgid"))
        return "recall", None, {}, {"pre_msgid": pre}
    if msgtype in _MEDIA:
        size = next((as_int(body.get(k)) for k in _SIZE_KEYS if body.get(k) is not None), None)
        name = body.get("filename") if isinstance(body.get("filename"), str) else None
        att = {
            "attachment_name": name,
            "attachment_type": (body.get("fileext") or msgtype) if isinstance(body.get("fileext") or msgtype, str)
            else msgtype,
            "attachment_size": size,
            "attachment_md5": as_str(body.get("md5sum")),
        }
        ids = {"sdkfileid": body["sdkfileid"]} if isinstance(body.get("sdkfileid"), str) else {}
        return _MEDIA[msgtype], None, att, ids
    if msgtype == "link":
        parts = [body.get("title"), body.get("description"), body.get("link_url")]
        return "link", "\n".join(p for p in parts if isinstance(p, str) and p) or None, {}, {}
    if msgtype == "markdown":
        found = body.get("info")
        info: dict[str, Any] = found if isinstance(found, dict) else body
        content = info.get("content")
        return "text", content if isinstance(content, str) else None, {}, {}
    if msgtype == "mixed":
        texts = []
        for item in body.get("item") or []:
            if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("content"), str):
                try:
                    inner = orjson.loads(item["content"])
                    texts.append(inner.get("content", "") if isinstance(inner, dict) else str(inner))
                except orjson.JSONDecodeError:
                    texts.append(item["content"])
        return "text", "\n".join(texts) or None, {}, {}
    if msgtype in _SYSTEM:
        return "system", None, {}, {}
    if msgtype == "location":
        parts = [body.get("title"), body.get("address")]
        return "other", "\n".join(p for p in parts if isinstance(p, str) and p) or None, {}, {}
    return "other", None, {}, {}


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read decrypted WeCom archive messages (JSON lines).

    Raises ImportFormatError for an unreadable room-name file, invalid UTF-8, or
    (strict mode) a line that is not a message object with ``msgid`` and a time.
    """
    rooms = load_room_names(options.room_names) if options.room_names else {}
    box = Container.open(path)
    rows = Collector("messages", source=NAME, lenient=options.lenient)
    try:
        if box.kind != "file":
            raise box.error(box.name, "", "a JSON-lines file of decrypted WeCom messages")
        member = box.members()[0]
        file_name, sha = box.provenance(member)
        for position, obj, raw in iter_jsonl(box, member):
            if obj is None:
                rows.bad(file_name, position, raw or "one JSON object per line")
                continue
            try:
                msgid = as_str(obj.get("msgid")) if isinstance(obj.get("msgid"), (str, int)) else None
                if not msgid:
                    raise BadRecord("a 'msgid'")
                action = obj.get("action") or "send"
                when = obj.get("msgtime") if obj.get("msgtime") is not None else obj.get("time")
                if when is None:
                    raise BadRecord("'msgtime' in milliseconds")
                us = epoch_to_us(when)
                sender = as_str(obj.get("from") if obj.get("from") is not None else obj.get("user"))
                tolist = obj.get("tolist") or []
                if not isinstance(tolist, list):
                    raise BadRecord("'tolist' as an array")
                recipients = [as_str(t) or "" for t in tolist]
                msgtype = "switch" if action == "switch" else obj.get("msgtype")
                if not isinstance(msgtype, str):
                    raise BadRecord("a 'msgtype'")
                kind, text, att, extra = _body(obj, msgtype)
            except BadRecord as bad:
                rows.bad(file_name, position, bad.expected)
                continue
            room = as_str(obj.get("roomid"))
            if room:
                conv_id, conv_type, conv_name = room, "group", rooms.get(room)
            else:
                people = sorted({p for p in [sender, *recipients] if p})
                conv_id, conv_type, conv_name = "direct:" + "|".join(people), "direct", None
            if action == "recall" and kind != "recall":
                kind = "recall"
            rec: dict[str, Any] = {
                "message_id": msgid,
                "ts": us,
                "conversation_id": conv_id,
                "conversation_name": conv_name,
                "conversation_type": conv_type,
                "sender_id": sender,
                "sender_name": sender,
                "recipients": recipients or None,
                "msg_type": kind,
                "text": text,
                "original_id": extra.pop("pre_msgid", None),
                **att,
            }
            ids = {"msgid": msgid, "action": action, "msgtype": msgtype, "roomid": room, **extra}
            rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw, platform_ids=ids)
        return finish(box, NAME, messages=rows)
    finally:
        box.close()
