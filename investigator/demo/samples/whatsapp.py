"""Writer for WhatsApp "Export chat" text files (without media), Android and iOS styles.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.sampleset import write_sample_set
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["whatsapp"])
    >>> any(p.name.startswith("WhatsApp Chat with") for p in files["whatsapp"])
    True

One file per chat, named as the phone names it (``WhatsApp Chat with <contact
or group>.txt``). Android style (day-first locale, 24 h, minute precision)::

    24/11/2026, 08:31 - 刘洋: text
    continuation lines of a multi-line message have no prefix

iOS style (used for the patrol group) has seconds, brackets and a two-digit
year: ``[24/11/26, 08:31:05] 刘洋: text``; iOS marks media and deleted lines
with a left-to-right mark (U+200E). Times are the phone's local time.
Media reads ``<Media omitted>``; recalls read ``This message was deleted``.
"""

from __future__ import annotations

from collections import defaultdict

from investigator.demo.samples import directory
from investigator.demo.samples.registry import SampleContext, WriterResult, local_rows, register

IOS_CHATS = ("g-patrol",)
_E2E = ("Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or "
        "listen to them. Tap to learn more.")
_LRM = "\u200e"


def file_title(conv: directory.Conversation) -> str:
    """The chat title WhatsApp uses in the file name: the group, or the other person in a DM."""
    return conv.name if conv.type == "group" else directory.person(conv.members[-1]).name


def _body(row: dict, conv: directory.Conversation, ios: bool) -> tuple[str | None, str]:
    """(sender name or None for a system line, text) of one row."""
    name = row["sender_name"]
    kind = row["msg_type"]
    if kind == "system":
        text = row["text"] or ""
        if "修改群名" in text:
            return None, f'{name} changed the group name to "{conv.name}"'
        return None, f"{name} joined using this group's invite link"
    if kind == "recall":
        return name, (_LRM + "This message was deleted." if ios else "This message was deleted")
    if row["attachment_name"]:
        if ios:
            label = {"image": "image", "voice": "audio", "video": "video"}.get(kind, "document")
            return name, f"{_LRM}{label} omitted" if label != "document" else f"{_LRM}{row['attachment_name']} • {_LRM}document omitted"
        return name, "<Media omitted>"
    return name, row["text"] or ""


@register("whatsapp")
def write_whatsapp(ctx: SampleContext) -> WriterResult:
    """Write one ``.txt`` per chat under ``whatsapp/``; ids are ``<file name>:<line>``."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    by_conv: dict[str, list[dict]] = defaultdict(list)
    for row in local_rows(ctx.subset, ctx.tz):
        by_conv[row["conversation_id"]].append(row)
    paths, ids = [], {}
    folder = ctx.out_dir / "whatsapp"
    folder.mkdir(parents=True, exist_ok=True)
    for cid in sorted(by_conv, key=list(convs).index):
        conv, rows = convs[cid], by_conv[cid]
        ios = cid in IOS_CHATS
        first = rows[0]["local"]
        lines: list[str] = []
        owner = directory.person(conv.members[0]).name
        if ios:
            lines.append(f"[{first:%d/%m/%y, %H:%M:%S}] {conv.name}: {_LRM}{_E2E}")
        else:
            lines.append(f"{first:%d/%m/%Y, %H:%M} - {_E2E}")
            if conv.type == "group":
                lines.append(f'{first:%d/%m/%Y, %H:%M} - {owner} created group "{conv.name}"')
        for row in rows:
            who, text = _body(row, conv, ios)
            stamp = f"[{row['local']:%d/%m/%y, %H:%M:%S}] " if ios else f"{row['local']:%d/%m/%Y, %H:%M} - "
            if who is None:
                line = f"{stamp}{conv.name}: {_LRM}{text}" if ios else f"{stamp}{text}"
            else:
                line = f"{stamp}{who}: {text}"
            physical = sum(item.count("\n") + 1 for item in lines)
            ids[row["message_id"]] = f"WhatsApp Chat with {file_title(conv)}.txt:{physical + 1}"
            lines.append(line)  # a multi-line text stays multi-line: continuation lines
        path = folder / f"WhatsApp Chat with {file_title(conv)}.txt"
        # Android writes LF; iOS also LF in the .txt inside the shared zip.
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
        paths.append(path)
    return paths, ids
