"""Telegram Desktop JSON export (``result.json``): one chat, or the whole account.

    >>> from investigator.importers import read_export
    >>> result = read_export("ChatExport_2024-01-01/result.json")   # doctest: +SKIP

- Single chat: ``{"name", "type", "id", "messages": [...]}``; whole account:
  ``{"chats": {"list": [chat, ...]}, "left_chats": {"list": [...]}}``.
- ``date_unixtime`` (UTC) wins over ``date`` (local time of the exporting machine:
  read in ``options.tz`` unless it carries an offset). When ``date_unixtime`` is
  missing, zero (anonymised exports write "0000000000") or out of range, ``date``
  is used and platform_ids say so (``ts_source: "date"``, ``ts_zone``).
- ``{"id": N, "type": "unsupported"}`` (content Telegram Desktop cannot export) is
  listed in ``skipped`` in both modes, not an error.
- ``text`` is a string or an array of strings and ``{"type", "text"}`` entities;
  the pieces are concatenated as Telegram displays them.
- ``type: "service"`` (joins, calls, pins ...) -> msg_type "system", sender = actor;
  ``action``, ``title``, ``members``, ``information_text`` ... kept in platform_ids and
  rendered as text when the message has none.
- Evidence kept in platform_ids: ``forwarded_from``, ``saved_from``, ``via_bot``,
  ``author``, ``reply_to_message_id``, ``edited`` / ``edited_unixtime``; contacts,
  polls, locations / venues and to-do lists as structured fields plus their text.
- Media: ``photo``, ``file``, ``media_type``; "(File not included ...)" is a
  placeholder for a file that was not exported: the reference is kept with no
  path and ``"file_not_included": true`` in platform_ids. Files present inside a
  zip / folder export are hashed.
- ``message_id`` = ``<chat id>:<id>``; ``reply_to`` from ``reply_to_message_id``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from investigator.importers._container import Container, member_names
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import (TS_RANGE, BadRecord, Collector, as_int, as_str, derived_id, epoch_to_us,
                                            iso_to_us, kind_from_name, load_json, raw_sha256)

NAME = "telegram"

_CONV_TYPES = {
    "personal_chat": "direct", "bot_chat": "direct", "saved_messages": "direct",
    "private_group": "group", "private_supergroup": "group", "public_supergroup": "group",
    "public_channel": "channel", "private_channel": "channel",
}
_MEDIA_TYPES = {
    "voice_message": "voice", "audio_file": "voice", "video_file": "video", "video_message": "video",
    "animation": "video", "sticker": "image",
}
_NOT_INCLUDED = "(File not included"


def _result_member(names: list[str]) -> str | None:
    for name in names:
        if PurePosixPath(name).name == "result.json" and len(PurePosixPath(name).parts) <= 2:
            return name
    return None


def sniff(path: Path, head: bytes) -> bool:
    """A JSON document with Telegram's ``messages`` / ``chats`` shape, or a zip/folder with result.json."""
    names = member_names(path, head)
    if names is not None:
        return _result_member(names) is not None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"{") or b'"guild"' in head:
        return False
    if b'"chats"' in head and b'"list"' in head:
        return True
    return b'"messages"' in head and (b'"date_unixtime"' in head or b'"from_id"' in head
                                      or b'"type": "message"' in head or b'"date":' in head)


def flatten_text(value: Any) -> str:
    """Telegram ``text``: a string, or an array of strings and entity objects, as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for piece in value:
            if isinstance(piece, str):
                parts.append(piece)
            elif isinstance(piece, dict) and isinstance(piece.get("text"), str):
                parts.append(piece["text"])
            else:
                raise BadRecord("'text' as a string or an array of strings and entities")
        return "".join(parts)
    if value is None:
        return ""
    raise BadRecord("'text' as a string or an array of strings and entities")


_DATE_EXPECTED = (f"'date_unixtime' as epoch seconds {TS_RANGE}, or a 'date' such as "
                  "'2024-01-05T10:00:01' (local time of the exporting machine)")


def _timestamp(m: dict[str, Any], tz: str) -> tuple[int, dict[str, Any]]:
    """Microseconds and the provenance of the time (empty when ``date_unixtime`` was used)."""
    if m.get("date_unixtime") is not None:
        try:
            return epoch_to_us(m["date_unixtime"]), {}
        except BadRecord:
            pass  # "0000000000" in anonymised exports, or garbage: the local date may still hold
    date = m.get("date")
    if date is None:
        raise BadRecord(_DATE_EXPECTED)
    try:
        us = iso_to_us(date, tz)
    except BadRecord:
        raise BadRecord(_DATE_EXPECTED) from None
    has_offset = isinstance(date, str) and (date.endswith(("Z", "z")) or "+" in date[10:] or "-" in date[10:])
    return us, {"ts_source": "date"} if has_offset else {"ts_source": "date", "ts_zone": tz}


# Keys of service messages that say what happened (export_output_json.cpp, SerializeMessage).
_SERVICE_KEYS = ("action", "title", "members", "information_text", "inviter", "message_id", "duration_seconds",
                 "discard_reason", "game_message_id", "score", "amount", "currency", "reason_domain", "emoticon")
# Evidence of where a message came from (export_output_json.cpp: pushFrom, forwarded_from, saved_from, via_bot).
_ORIGIN_KEYS = ("forwarded_from", "saved_from", "via_bot", "author", "reply_to_message_id", "reply_to_peer_id",
                "edited", "edited_unixtime")


def _names(value: Any) -> list[str]:
    return [v if isinstance(v, str) else "(deleted account)" for v in value] if isinstance(value, list) else []


def _service(m: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Text describing a service message, and its fields."""
    fields = {key: m[key] for key in _SERVICE_KEYS if key in m}
    if isinstance(m.get("information_text"), str):
        return m["information_text"], fields
    text = m["action"] if isinstance(m.get("action"), str) else "service"
    if isinstance(m.get("title"), str):
        text += f' "{m["title"]}"'
    members = _names(m.get("members"))
    if members:
        text += ": " + ", ".join(members)
    if isinstance(m.get("inviter"), str):
        text += f" (invited by {m['inviter']})"
    return text, fields


def _shared(m: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Text and structured fields of a contact, poll, location / venue or to-do list; None otherwise."""
    if isinstance(m.get("contact_information"), dict):
        info = m["contact_information"]
        name = " ".join(v for v in (info.get("first_name"), info.get("last_name")) if isinstance(v, str) and v)
        phone = info.get("phone_number") if isinstance(info.get("phone_number"), str) else ""
        return "contact: " + ", ".join(v for v in (name, phone) if v), {"contact": info}
    if isinstance(m.get("poll"), dict):
        poll = m["poll"]
        question = flatten_text(poll.get("question"))
        answers = [a for a in poll.get("answers") or [] if isinstance(a, dict)]
        options: list[dict[str, Any]] = [{"text": flatten_text(a.get("text")), "voters": a.get("voters"), "chosen": a.get("chosen")}
                                         for a in answers]
        lines = ["poll: " + question, *("- " + o["text"] for o in options)]
        return "\n".join(lines), {"poll": {"question": question, "answers": options, "closed": poll.get("closed"),
                                           "total_voters": poll.get("total_voters")}}
    if isinstance(m.get("todo_list"), dict):
        todo = m["todo_list"]
        title = flatten_text(todo.get("title"))
        items: list[dict[str, Any]] = [{"id": i.get("id"), "text": flatten_text(i.get("text"))}
                                       for i in todo.get("answers") or [] if isinstance(i, dict)]
        return "\n".join(["to-do list: " + title, *("- " + i["text"] for i in items)]), {
            "todo_list": {"title": title, "items": items}}
    if "location_information" in m or "place_name" in m:
        where = m.get("location_information") if isinstance(m.get("location_information"), dict) else {}
        fields: dict[str, Any] = {"location": where or None}
        point = f"{where.get('latitude')}, {where.get('longitude')}" if where else ""
        if "place_name" in m or "address" in m:
            fields["venue"] = {"place_name": m.get("place_name"), "address": m.get("address")}
            label = ", ".join(v for v in (m.get("place_name"), m.get("address")) if isinstance(v, str) and v)
            return "venue: " + label + (f" ({point})" if point else ""), fields
        if "live_location_period_seconds" in m:
            fields["live_location_period_seconds"] = m["live_location_period_seconds"]
        return "location: " + (point or "unknown"), fields
    return None


def _chats(doc: Any, box: Container, member: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(doc, dict):
        raise box.error(member, "$", "a JSON object")
    if isinstance(doc.get("messages"), list):
        return [("$", doc)]
    found = []
    for section in ("chats", "left_chats"):
        block = doc.get(section)
        chats = block.get("list") if isinstance(block, dict) else None
        if isinstance(chats, list):
            for index, chat in enumerate(chats):
                if isinstance(chat, dict) and isinstance(chat.get("messages"), list):
                    found.append((f"$.{section}.list[{index}]", chat))
    if not found and not isinstance(doc.get("chats"), dict):
        raise box.error(member, "$", "a Telegram export with 'messages' or 'chats.list'")
    return found


def _media(m: dict[str, Any], box: Container, base: str) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """msg_type, attachment columns and extra platform ids for a message's media, if any."""
    path_value = None
    kind = None
    if "photo" in m:
        path_value, kind = m.get("photo"), "image"
    elif "file" in m:
        path_value = m.get("file")
        kind = _MEDIA_TYPES.get(m.get("media_type") or "", None)
        if kind is None:
            kind = kind_from_name(m.get("file_name") or path_value or "") if isinstance(m.get("file_name") or path_value,
                                                                                        str) else "file"
    elif any(k in m for k in ("location_information", "place_name", "poll", "contact_information", "todo_list",
                              "game_title")):
        return "other", {}, {}
    if kind is None:
        return None, {}, {}
    att: dict[str, Any] = {"attachment_type": m.get("mime_type") if isinstance(m.get("mime_type"), str)
                           else (m.get("media_type") if isinstance(m.get("media_type"), str) else kind)}
    ids: dict[str, Any] = {}
    name = m.get("file_name") if isinstance(m.get("file_name"), str) else None
    size = as_int(m.get("file_size") if m.get("file_size") is not None else m.get("photo_file_size"))
    if isinstance(path_value, str) and path_value.startswith(_NOT_INCLUDED):
        ids["file_not_included"] = True
    elif isinstance(path_value, str) and path_value:
        name = name or PurePosixPath(path_value).name
        member = base + path_value
        if box.kind != "file" and box.has(member):
            data = box.read(member)
            att["attachment_sha256"] = hashlib.sha256(data).hexdigest()
            size = size if size is not None else len(data)
        else:
            ids["file_missing"] = True
    att["attachment_name"] = name
    att["attachment_size"] = size
    return kind, att, ids


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read a Telegram Desktop JSON export (file, or a zip / folder holding result.json).

    Raises ImportFormatError for invalid JSON / UTF-8, an unexpected document
    shape, or (strict mode) a message without a valid date.
    """
    box = Container.open(path)
    rows = Collector("messages", source=NAME, lenient=options.lenient)
    try:
        member = box.members()[0] if box.kind == "file" else _result_member(box.members())
        if member is None:
            raise box.error(box.name, "", "a Telegram export with result.json")
        base = str(PurePosixPath(member).parent) + "/" if "/" in member else ""
        doc = load_json(box.read(member), box.name, box.position(member, ""))
        file_name, sha = box.provenance(member)
        for chat_path, chat in _chats(doc, box, member):
            chat_id = as_str(chat.get("id")) if isinstance(chat.get("id"), (int, str)) else None
            chat_name = chat.get("name") if isinstance(chat.get("name"), str) else None
            conv_id = chat_id or "name:" + derived_id("telegram-chat", chat_name)
            conv_type = _CONV_TYPES.get(chat.get("type") or "", "other")
            ordinals: dict[tuple[Any, ...], int] = {}
            for index, m in enumerate(chat["messages"]):
                position = box.position(member, f"{chat_path}.messages[{index}]")
                if isinstance(m, dict) and m.get("type") == "unsupported":
                    rows.note(position, "a message Telegram Desktop could not export (type 'unsupported')")
                    continue
                try:
                    if not isinstance(m, dict):
                        raise BadRecord("a JSON object for each message")
                    raw = raw_sha256(m, depth=4)
                    us, when = _timestamp(m, options.tz)
                    text = flatten_text(m.get("text"))
                    service = m.get("type") == "service"
                    sender_id = as_str(m.get("actor_id") if service else m.get("from_id"))
                    sender = m.get("actor") if service else m.get("from")
                    kind, att, extra = _media(m, box, base)
                    msg_id = as_str(m.get("id"))
                    shared = None if service else _shared(m)
                except BadRecord as bad:
                    rows.bad(file_name, position, bad.expected)
                    continue
                ids: dict[str, Any] = {"chat_id": chat_id, **extra, **when}
                if msg_id is None:
                    # Older / trimmed exports carry no ids: derive one that a later export reproduces.
                    key = (us, sender_id or sender, text)
                    ordinals[key] = ordinals.get(key, 0) + 1
                    msg_id = "derived:" + derived_id(conv_id, us, sender_id or sender, ordinals[key], text)
                else:
                    ids["id"] = m.get("id")
                if service:
                    kind = "system"
                    described, fields = _service(m)
                    ids.update(fields)
                    ids["action"] = m.get("action") if isinstance(m.get("action"), str) else None
                    text = text or described
                elif shared is not None:
                    described, fields = shared
                    ids.update(fields)
                    text = described + ("\n" + text if text else "")
                ids.update({key: m[key] for key in _ORIGIN_KEYS if m.get(key) is not None})
                reply = as_str(m.get("reply_to_message_id")) if isinstance(m.get("reply_to_message_id"),
                                                                           (int, str)) else None
                rec: dict[str, Any] = {
                    "message_id": f"{conv_id}:{msg_id}",
                    "ts": us,
                    "conversation_id": conv_id,
                    "conversation_name": chat_name,
                    "conversation_type": conv_type,
                    "sender_id": sender_id,
                    "sender_name": sender if isinstance(sender, str) else None,
                    "msg_type": kind or "text",
                    "text": text if text != "" or kind in (None, "text") else None,
                    "reply_to": f"{conv_id}:{reply}" if reply else None,
                    **att,
                }
                rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw, platform_ids=ids)
        return finish(box, NAME, messages=rows)
    finally:
        box.close()
