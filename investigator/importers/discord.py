"""DiscordChatExporter JSON: ``{"guild", "channel", "messages": [...]}``, or the folder it writes with media.

    >>> from investigator.importers import read_export
    >>> result = read_export("Guild - general [123].json")   # doctest: +SKIP
    >>> result = read_export("export-folder/")                # <channel>.json + <channel>.json_Files/  # doctest: +SKIP

- ``timestamp`` is ISO 8601 with an offset; ``timestampEdited`` goes to platform_ids.
- ``author``: ``nickname`` (what the channel showed) over ``name``.
- ``type`` "Default" and "Reply" are messages; every other type (calls, renames,
  pins, joins ...) becomes msg_type "system" with the type in platform_ids.
- ``reference.messageId`` -> ``reply_to``.
- ``attachments``: the first fills the attachment columns, each further one is its
  own row ``<id>/<n>``. With ``--media`` the tool downloads files into
  ``<channel>.json_Files/`` and writes their path relative to the JSON as ``url``;
  such files are hashed when their path stays inside the export. A local path whose
  file is absent -> ``file_missing``; a remote URL (no media export, or a failed
  download) -> ``file_not_included``.
- ``stickers``: their names become the text (``sticker: NAME``) when the message has
  none (appended on a new line otherwise) and are kept, with id, format and hash of a
  downloaded file, in platform_ids ``stickers``.
- A folder (or zip) holding ``<channel>.json`` files, with or without their
  ``_Files`` folders, is read as it is: each JSON in its top level is one channel.
- ``message_id`` = ``<channel id>:<message id>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from investigator.importers._container import HEAD_BYTES, MAX_MEMBER_BYTES, Container, member_names
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import BadRecord, Collector, as_int, as_str, iso_to_us, kind_from_name, load_json, raw_sha256

NAME = "discord"

_CONV_TYPES = {"DirectTextChat": "direct", "DirectGroupTextChat": "group"}
_MESSAGE_TYPES = ("Default", "Reply")


def _is_channel_json(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"{") and b'"guild"' in head and b'"channel"' in head


def _channel_members(names: list[str]) -> list[str]:
    """Top-level ``*.json`` members of a folder / zip export."""
    return [n for n in names if "/" not in n and n.lower().endswith(".json")]


def sniff(path: Path, head: bytes) -> bool:
    """A JSON object starting with DiscordChatExporter's ``guild`` and ``channel`` blocks, or a folder / zip
    whose top-level JSON files are such objects (with or without ``<channel>.json_Files/`` beside them)."""
    names = member_names(path, head)
    if names is None:
        return _is_channel_json(head)
    candidates = _channel_members(names)
    if not candidates:
        return False
    box = Container.open(path)
    try:
        return all(_is_channel_json(box.read(member)[:HEAD_BYTES]) for member in candidates[:8])
    finally:
        box.close()


def _is_remote(url: str) -> bool:
    return "://" in url


def _local_file(json_path: Path, url: str) -> Path | None:
    """A downloaded attachment beside the JSON, only if it stays inside that folder and is no symlink."""
    if _is_remote(url) or not url:
        return None
    relative = PurePosixPath(unquote(url).replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return None
    candidate = json_path.parent / relative
    if candidate.is_symlink() or not candidate.is_file():
        return None
    return candidate


def _member_for(box: Container, member: str, url: str) -> str | None:
    """The container member a relative ``url`` of JSON ``member`` names, if it exists inside the export."""
    if _is_remote(url) or not url:
        return None
    relative = PurePosixPath(unquote(url).replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or (relative.parts and ":" in relative.parts[0]):
        return None
    parent = PurePosixPath(member).parent
    name = (parent / relative).as_posix() if str(parent) != "." else relative.as_posix()
    return name if box.has(name) else None


def _file_hash(box: Container, member: str, json_path: Path, url: str) -> tuple[str | None, int | None]:
    """SHA-256 and size of the local file ``url`` names, or (None, None) when it is not in the export."""
    if box.kind == "file":
        local = _local_file(json_path, url)
        if local is None or local.stat().st_size > MAX_MEMBER_BYTES:
            return None, None
        data = local.read_bytes()
    else:
        inside = _member_for(box, member, url)
        if inside is None:
            return None, None
        data = box.read(inside)
    return hashlib.sha256(data).hexdigest(), len(data)


def _attachments(m: dict[str, Any], box: Container, member: str, json_path: Path
                 ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
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
        flags: dict[str, Any] = {}
        url: str = item["url"] if isinstance(item.get("url"), str) else ""
        if _is_remote(url) or not url:
            flags["file_not_included"] = True
        else:
            digest, _size = _file_hash(box, member, json_path, url)
            if digest is None:
                flags["file_missing"] = True
            else:
                att["attachment_sha256"] = digest
        out.append((att, flags))
    return out


def _stickers(m: dict[str, Any], box: Container, member: str, json_path: Path) -> list[dict[str, Any]]:
    found = []
    for item in m.get("stickers") or []:
        if not isinstance(item, dict):
            raise BadRecord("stickers as JSON objects")
        sticker: dict[str, Any] = {key: item.get(key) for key in ("id", "name", "format")}
        url: str = item["sourceUrl"] if isinstance(item.get("sourceUrl"), str) else ""
        if url and not _is_remote(url):
            digest, _size = _file_hash(box, member, json_path, url)
            sticker["sha256"] = digest
            if digest is None:
                sticker["file_missing"] = True
        found.append(sticker)
    return found


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read one DiscordChatExporter JSON file, or the folder / zip of channel JSON files (and media) it wrote.

    Raises ImportFormatError for invalid JSON / UTF-8, a folder without channel JSON,
    a missing channel id, or (strict mode) a message without an id or a valid timestamp.
    """
    box = Container.open(path)
    rows = Collector("messages", source=NAME, lenient=options.lenient)
    try:
        members = box.members()[:1] if box.kind == "file" else _channel_members(box.members())
        if not members:
            raise box.error(box.name, "", "a DiscordChatExporter JSON file, or a folder with <channel>.json")
        for member in members:
            _parse_channel(box, member, path, options, rows)
        return finish(box, NAME, messages=rows)
    finally:
        box.close()


def _parse_channel(box: Container, member: str, path: Path, options: ImportOptions, rows: Collector) -> None:
    file_name, sha = box.provenance(member)
    doc = load_json(box.read(member), file_name, box.position(member, ""))
    channel = doc.get("channel") if isinstance(doc, dict) else None
    if not isinstance(channel, dict) or not isinstance(doc.get("messages"), list):
        raise box.error(member, "$", "DiscordChatExporter JSON with 'channel' and 'messages'")
    channel_id = as_str(channel.get("id")) if isinstance(channel.get("id"), (str, int)) else None
    if channel_id is None:
        raise box.error(member, "$.channel.id", "a channel id")
    guild = doc.get("guild") if isinstance(doc.get("guild"), dict) else {}
    conv_type = _CONV_TYPES.get(channel.get("type") or "", "channel")
    conv_name = channel.get("name") if isinstance(channel.get("name"), str) else None
    for index, m in enumerate(doc["messages"]):
        position = box.position(member, f"$.messages[{index}]")
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
            atts = _attachments(m, box, member, path)
            stickers = _stickers(m, box, member, path)
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
        if stickers:
            ids["stickers"] = stickers
            named = "\n".join(f"sticker: {s['name']}" for s in stickers if isinstance(s.get("name"), str))
            content = f"{content}\n{named}" if content and named else (content or named)
        found = m.get("reference")
        ref: dict[str, Any] = found if isinstance(found, dict) else {}
        reply = as_str(ref.get("messageId")) if isinstance(ref.get("messageId"), (str, int)) else None
        ref_channel = as_str(ref.get("channelId")) if isinstance(ref.get("channelId"), (str, int)) else None
        name = author.get("nickname") or author.get("name")
        msg_type = "system" if mtype not in _MESSAGE_TYPES else "text"
        if atts and msg_type == "text":
            msg_type = atts[0][0]["attachment_type"]
        elif msg_type == "text" and stickers and not (m.get("content") or "").strip():
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
            **(atts[0][0] if atts else {}),
        }
        rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw,
                 platform_ids={**ids, **(atts[0][1] if atts else {})})
        for n, (extra, flags) in enumerate(atts[1:], start=1):
            row = {k: rec[k] for k in ("ts", "conversation_id", "conversation_name", "conversation_type",
                                       "sender_id", "sender_name", "reply_to")}
            row.update(extra, message_id=f"{rec['message_id']}/{n}", msg_type=extra["attachment_type"])
            rows.add(row, file=file_name, sha=sha, position=position, raw_sha=raw,
                     platform_ids={**ids, **flags, "attachment_index": n})
