"""Writer for DiscordChatExporter JSON (one file per channel).

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.sampleset import write_sample_set
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["discord"])
    >>> sorted(json.loads(files["discord"][0].read_text(encoding="utf-8")))[:3]
    ['channel', 'dateRange', 'exportedAt']

Each file is ``{"guild", "channel", "dateRange", "exportedAt", "messages",
"messageCount"}`` as DiscordChatExporter writes it. Group chats are text
channels of one server (guild); direct chats are DMs (guild "Direct
Messages", id "0"). Message ids are snowflakes derived from the time;
``timestamp`` carries the exporter's UTC offset (``+08:00``); replies are
``type: "Reply"`` with a ``reference``; joins are ``GuildMemberJoin`` and
renames ``ChannelNameChange``. Deleted (recalled) messages are not exported.
"""

from __future__ import annotations

import json

from investigator.demo.samples import directory
from investigator.demo.samples.registry import SampleContext, WriterResult, epoch_ms, local_rows, register, stable_number

GUILD = {"id": "1180000000000000001", "name": "Sample Co 示例公司", "iconUrl": "https://cdn.discordapp.com/embed/avatars/1.png"}
DM_GUILD = {"id": "0", "name": "Direct Messages", "iconUrl": "https://cdn.discordapp.com/embed/avatars/0.png"}
_EPOCH_MS = 1420070400000  # Discord epoch, 2015-01-01
_CATEGORY = {"courier": "客服", "team": "客服", "patrol": "安保", "project": "项目"}


def _stamp(dt) -> str:
    # DiscordChatExporter writes the exporting machine's offset, with milliseconds.
    return dt.isoformat(timespec="milliseconds")


def _snowflake(ts, salt: str) -> str:
    ms = epoch_ms(ts)
    return str(((ms - _EPOCH_MS) << 22) | (stable_number(salt, 6) % (1 << 22)))


def _author(p: directory.Person) -> dict:
    return {"id": p.discord_snowflake, "name": p.discord_name, "discriminator": f"{p.discord_no:04d}", "nickname": p.name,
            "color": None, "isBot": False, "roles": [], "avatarUrl": "https://cdn.discordapp.com/embed/avatars/2.png"}


@register("discord")
def write_discord(ctx: SampleContext) -> WriterResult:
    """Write one JSON per channel under ``discord/``; ids are ``<channel id>:<snowflake>``."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    rows = [r for r in local_rows(ctx.subset, ctx.tz) if r["msg_type"] != "recall"]
    by_conv: dict[str, list[dict]] = {}
    for row in rows:
        by_conv.setdefault(row["conversation_id"], []).append(row)
    ids: dict[str, str] = {}
    paths = []
    folder = ctx.out_dir / "discord"
    folder.mkdir(parents=True, exist_ok=True)
    exported = max(r["local"] for r in rows) if rows else None
    for cid in sorted(by_conv, key=list(convs).index):
        conv = convs[cid]
        group = conv.type == "group"
        channel_id = str(1180000000000000100 + stable_number(conv.id, 6))
        guild = GUILD if group else DM_GUILD
        channel = {"id": channel_id, "type": "GuildTextChat" if group else "DirectTextChat",
                   "categoryId": str(1180000000000000010 + stable_number(_CATEGORY.get(conv.kind, "其他"), 2)) if group else "0",
                   "category": _CATEGORY.get(conv.kind, "其他") if group else "Private",
                   "name": conv.slug if group else directory.person(conv.members[-1]).discord_name,
                   "topic": conv.name if group else None}
        messages = []
        for row in by_conv[cid]:
            p = directory.person(row["sender_id"])
            snowflake = _snowflake(row["ts"], row["message_id"])
            ids[row["message_id"]] = f"{channel_id}:{snowflake}"
            mtype, content = "Default", row["text"] or ""
            if row["msg_type"] == "system":
                mtype = "ChannelNameChange" if "修改群名" in content else "GuildMemberJoin"
                content = conv.slug if mtype == "ChannelNameChange" else "Joined the server."
            reference = None
            if row["reply_to"] and row["reply_to"] in ids:
                mtype = "Reply"
                reference = {"messageId": ids[row["reply_to"]].rpartition(":")[2], "channelId": channel_id, "guildId": guild["id"]}
            attachments = []
            if row["attachment_name"]:
                att_id = _snowflake(row["ts"], row["message_id"] + "att")
                attachments.append({"id": att_id, "url": f"https://cdn.discordapp.com/attachments/{channel_id}/{att_id}/{row['attachment_name']}",
                                    "fileName": row["attachment_name"], "fileSizeBytes": row["attachment_size"]})
            msg = {"id": snowflake, "type": mtype, "timestamp": _stamp(row["local"]), "timestampEdited": None,
                   "callEndedTimestamp": None, "isPinned": False, "content": content, "author": _author(p),
                   "attachments": attachments, "embeds": [], "stickers": [], "reactions": [], "mentions": []}
            if reference:
                msg["reference"] = reference
            messages.append(msg)
        doc = {"guild": guild, "channel": channel, "dateRange": {"after": None, "before": None},
               "exportedAt": _stamp(exported), "messages": messages, "messageCount": len(messages)}
        name = f"{guild['name']} - {channel['category']} - {channel['name']} [{channel_id}].json"
        path = folder / name
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8", newline="\n")
        paths.append(path)
    return paths, ids
