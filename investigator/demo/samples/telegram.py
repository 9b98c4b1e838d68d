"""Writer for a Telegram Desktop export (``result.json``, machine-readable JSON).

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.sampleset import write_sample_set
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["telegram"])
    >>> "list" in json.loads(files["telegram"][0].read_text(encoding="utf-8"))["chats"]
    True

A whole-account export: ``{"about": ..., "chats": {"about": ..., "list": [chat]}}``
with each chat ``{"name", "type", "id", "messages"}``. As Telegram Desktop
writes it, ``date`` is the exporting machine's local time without a zone and
``date_unixtime`` the epoch seconds as a string; ``text`` is a string when plain
and an array of strings and entity objects when it has links or formatting,
always with ``text_entities`` beside it. Media that was not downloaded reads
``(File not included. Change data exporting settings to download.)``. Joins and
renames are ``service`` messages. Deleted (recalled) messages are not exported.
"""

from __future__ import annotations

import json

from investigator.demo.samples import directory
from investigator.demo.samples.registry import SampleContext, WriterResult, local_rows, register, stable_number

NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"


def chat_id(conv: directory.Conversation) -> int:
    return stable_number(conv.id, 10)


def _text_fields(row: dict) -> dict:
    text = row["text"] or ""
    if row["msg_type"] == "link" and text:
        title, _, url = text.rpartition(" ")
        parts: list = [title + " ", {"type": "link", "text": url}]
        return {"text": parts, "text_entities": [{"type": "plain", "text": title + " "}, {"type": "link", "text": url}]}
    if text.startswith("@"):  # a mention: an entity array, as Telegram writes it
        name, _, rest = text.partition(" ")
        return {"text": [{"type": "mention_name", "text": name, "user_id": 0}, " " + rest],
                "text_entities": [{"type": "mention_name", "text": name, "user_id": 0}, {"type": "plain", "text": " " + rest}]}
    return {"text": text, "text_entities": [{"type": "plain", "text": text}] if text else []}


def _media(row: dict) -> dict:
    kind, name, size = row["msg_type"], row["attachment_name"], row["attachment_size"]
    if kind == "image":
        return {"photo": NOT_INCLUDED, "photo_file_size": size, "width": 1080, "height": 1920}
    fields = {"file": NOT_INCLUDED, "file_name": name, "file_size": size, "mime_type": row["attachment_type"]}
    if kind == "voice":
        fields.update(media_type="voice_message", mime_type="audio/ogg", duration_seconds=3 + size % 57)
    elif kind == "video":
        fields.update(media_type="video_file", duration_seconds=5 + size % 115, width=1280, height=720)
    return fields


@register("telegram")
def write_telegram(ctx: SampleContext) -> WriterResult:
    """Write ``telegram/result.json``; ids are ``<chat id>:<message id>``."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    rows = [r for r in local_rows(ctx.subset, ctx.tz) if r["msg_type"] != "recall"]
    chats: dict[str, dict] = {}
    ids: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for row in rows:
        conv = convs[row["conversation_id"]]
        chat = chats.get(conv.id)
        if chat is None:
            other = directory.person(conv.members[-1])
            chat = chats[conv.id] = {
                "name": conv.name if conv.type == "group" else other.name,
                "type": "private_group" if conv.type == "group" else "personal_chat",
                "id": chat_id(conv), "messages": [],
            }
        number = 1000 + len(chat["messages"]) * 3 + stable_number(row["message_id"], 1) % 3  # gaps, as deleted ids leave
        numbers[row["message_id"]] = number
        p = directory.person(row["sender_id"])
        base = {"id": number, "type": "message", "date": row["local"].strftime("%Y-%m-%dT%H:%M:%S"),
                "date_unixtime": str(int(row["ts"].timestamp()))}
        if row["msg_type"] == "system":
            rename = "修改群名" in (row["text"] or "")
            msg = {**base, "type": "service", "actor": p.name, "actor_id": p.telegram_id,
                   **({"action": "edit_group_title", "title": conv.name} if rename
                      else {"action": "invite_members", "members": [p.name]}),
                   "text": "", "text_entities": []}
        else:
            msg = {**base, "from": p.name, "from_id": p.telegram_id}
            if row["reply_to"] and row["reply_to"] in numbers:
                msg["reply_to_message_id"] = numbers[row["reply_to"]]
            if row["attachment_name"]:
                msg.update(_media(row))
            msg.update(_text_fields(row))
        chat["messages"].append(msg)
        ids[row["message_id"]] = f"{chat['id']}:{number}"
    export = {
        "about": "Here is the data you requested. Remember: Telegram is ad free, it doesn't use your data for ad "
                 "targeting and doesn't sell it to others.",
        "chats": {"about": "This page lists all chats from this export.", "list": list(chats.values())},
    }
    path = ctx.out_dir / "telegram" / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(export, ensure_ascii=False, indent=1) + "\n", encoding="utf-8", newline="\n")
    return [path], ids
