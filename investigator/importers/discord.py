"""DiscordChatExporter JSON: ``{"guild", "channel", "messages": [...]}``.

    >>> from investigator.importers import read_export
    >>> result = read_export("Guild - general [123].json")   # doctest: +SKIP

- ``timestamp`` is ISO 8601 with an offset; ``timestampEdited`` goes to platform_ids.
- ``author``: ``nickname`` (what the channel showed) over ``name``.
- ``type`` "Default" and "Reply" are messages; every other type (calls, renames,
  pins, joins ...) becomes msg_type "system" with the type in platform_ids.
- ``reference.messageId`` -> ``reply_to``.
- ``attachments``: the first fills the attachment columns, each further one is its
  own row ``<id>/<n>``. Files downloaded next to the JSON (``--media``) are hashed
  when their relative path stays inside the export's folder.
- ``message_id`` = ``<channel id>:<message id>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from investigator.importers._container import MAX_MEMBER_BYTES, Container
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import BadRecord, Collector, as_int, as_str, iso_to_us, kind_from_name, load_json, raw_sha256

NAME = "discord"

_CONV_TYPES = {"DirectTextChat": "direct", "DirectGroupTextChat": "group"}
_MESSAGE_TYPES = ("Default", "Reply")


def sniff(path: Path, head: bytes) -> bool:
    """A JSON object starting with DiscordChatExporter's ``guild`` and ``channel`` blocks."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"{") and b'"guild"' in head and b'"channel"' in head


def _local_file(json_path: Path, url: str) -> Path | None:
    """A downloaded attachment beside the JSON, only if it stays inside that folder and is no symlink."""
    if "://" in url or not url:
        return None
    relative = PurePosixPath(unquote(url).replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return None
    candidate = json_path.parent / relative
    if candidate.is_symlink() or not candidate.is_file():
        return None
    return candidate


def _attachments(m: dict[str, Any], json_path: Path) -> list[dict[str, Any]]:
    out = []
    for item in m.get("attachments") or []:
        if not isinstance(item, dict):
            raise BadRecord("attachments as JSON objects")
        name = item.get("fileName") if isinstance(item.get("fileName"), str) else None
        att: dict[str, Any] = {
            "attachment_name": name,
            "attachment_type": kind_from_name(name or ""),
            "attachment_size": as_int(item.get("fileSizeBytes")),
        }
        local = _local_file(json_path, item.get("url") or "") if isinstance(item.get("url"), str) else None
        if local is not None and local.stat().st_size <= MAX_MEMBER_BYTES:
            att["attachment_sha256"] = hashlib.sha256(local.read_bytes()).hexdigest()
        out.append(att)
    return out


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read one DiscordChatExporter JSON file.

    Raises ImportFormatError for invalid JSON / UTF-8, a missing channel id, or
    (strict mode) a message without an id or a valid timestamp.
    """
    box = Container.open(path)
    rows = Collector("messages", source=NAME, lenient=options.lenient)
    try:
        if box.kind != "file":
            raise box.error(box.name, "", "a DiscordChatExporter JSON file")
        member = box.members()[0]
        doc = load_json(box.read(member), box.name)
        channel = doc.get("channel") if isinstance(doc, dict) else None
        if not isinstance(channel, dict) or not isinstance(doc.get("messages"), list):
            raise box.error(member, "$", "DiscordChatExporter JSON with 'channel' and 'messages'")
        channel_id = as_str(channel.get("id")) if isinstance(channel.get("id"), (str, int)) else None
        if channel_id is None:
            raise box.error(member, "$.channel.id", "a channel id")
        guild = doc.get("guild") if isinstance(doc.get("guild"), dict) else {}
        conv_type = _CONV_TYPES.get(channel.get("type") or "", "channel")
        conv_name = channel.get("name") if isinstance(channel.get("name"), str) else None
        file_name, sha = box.provenance(member)
        for index, m in enumerate(doc["messages"]):
            position = f"$.messages[{index}]"
            try:
                if not isinstance(m, dict):
                    raise BadRecord("a JSON object for each message")
                raw = raw_sha256(m, depth=2)
                msg_id = as_str(m.get("id")) if isinstance(m.get("id"), (str, int)) else None
                if msg_id is None:
                    raise BadRecord("a message 'id'")
                us = iso_to_us(m.get("timestamp"), options.tz)
                found = m.get("author")
                author: dict[str, Any] = found if isinstance(found, dict) else {}
                atts = _attachments(m, path)
                content = m.get("content") if isinstance(m.get("content"), str) else None
            except BadRecord as bad:
                rows.bad(file_name, position, bad.expected)
                continue
            mtype = m.get("type") if isinstance(m.get("type"), str) else "Default"
            ids: dict[str, Any] = {"channel": channel_id, "id": msg_id, "guild": as_str(guild.get("id"))}
            if mtype not in _MESSAGE_TYPES:
                ids["type"] = mtype
            if m.get("timestampEdited"):
                ids["edited"] = m["timestampEdited"]
            found = m.get("reference")
            ref: dict[str, Any] = found if isinstance(found, dict) else {}
            reply = as_str(ref.get("messageId")) if isinstance(ref.get("messageId"), (str, int)) else None
            ref_channel = as_str(ref.get("channelId")) if isinstance(ref.get("channelId"), (str, int)) else None
            name = author.get("nickname") or author.get("name")
            msg_type = "system" if mtype not in _MESSAGE_TYPES else "text"
            if atts and msg_type == "text":
                msg_type = atts[0]["attachment_type"]
            elif msg_type == "text" and m.get("stickers"):
                msg_type = "image"
            rec: dict[str, Any] = {
                "message_id": f"{channel_id}:{msg_id}",
                "ts": us,
                "conversation_id": channel_id,
                "conversation_name": conv_name,
                "conversation_type": conv_type,
                "sender_id": as_str(author.get("id")) if isinstance(author.get("id"), (str, int)) else None,
                "sender_name": name if isinstance(name, str) else None,
                "msg_type": msg_type,
                "text": content,
                "reply_to": f"{ref_channel or channel_id}:{reply}" if reply else None,
                **(atts[0] if atts else {}),
            }
            rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw, platform_ids=ids)
            for n, extra in enumerate(atts[1:], start=1):
                row = {k: rec[k] for k in ("ts", "conversation_id", "conversation_name", "conversation_type",
                                           "sender_id", "sender_name", "reply_to")}
                row.update(extra, message_id=f"{rec['message_id']}/{n}", msg_type=extra["attachment_type"])
                rows.add(row, file=file_name, sha=sha, position=position, raw_sha=raw,
                         platform_ids={**ids, "attachment_index": n})
        return finish(box, NAME, messages=rows)
    finally:
        box.close()
