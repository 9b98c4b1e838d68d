"""Writer for a Slack workspace export (the zip an admin downloads).

    >>> import tempfile, zipfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.sampleset import write_sample_set
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["slack"])
    >>> "channels.json" in zipfile.ZipFile(files["slack"][0]).namelist()
    True

Layout as Slack writes it: ``users.json``, ``channels.json`` (public
channels: our group chats), ``dms.json`` (direct messages), ``groups.json``
and ``mpims.json`` (empty), and one folder per channel (by name) or DM (by id)
holding ``YYYY-MM-DD.json`` day files (workspace-local dates). Messages have
``ts`` as ``"<epoch seconds>.<microseconds>"``; replies are threads
(``thread_ts``, ``reply_count``, ``replies``); files are shared with a
``files`` array; system lines are ``channel_join`` / ``channel_name`` subtypes;
one message carries an ``edited`` mark. Recalled (deleted) messages do not
appear in Slack exports, so recalls are left out.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict

from investigator.demo.samples import directory
from investigator.demo.samples.registry import SampleContext, WriterResult, local_rows, register, stable_number

TEAM = "T0SAMPLE01"
_ZIP_TIME = (2026, 11, 29, 12, 0, 0)  # fixed, so the zip is byte-identical on every run


def channel_id(conv: directory.Conversation) -> str:
    prefix = "C" if conv.type == "group" else "D"
    return f"{prefix}0{stable_number(conv.id, 9)}"


def _ts(row: dict) -> str:
    ts = row["ts"]
    return f"{int(ts.timestamp())}.{ts.microsecond:06d}"


def _user(p: directory.Person, tz: str) -> dict:
    return {
        "id": p.slack_id, "team_id": TEAM, "name": p.id, "deleted": False, "color": "9f69e7", "real_name": p.name,
        "tz": tz, "tz_label": "China Standard Time", "tz_offset": 28800,
        "profile": {"real_name": p.name, "real_name_normalized": p.name, "display_name": p.name,
                    "display_name_normalized": p.name, "team": TEAM, "title": p.department if not p.external else ""},
        "is_bot": False, "is_admin": "admin" in p.roles, "is_owner": False, "is_restricted": p.external,
        "is_ultra_restricted": False, "updated": 1761955200,
    }


def _message(row: dict, conv: directory.Conversation) -> dict:
    p = directory.person(row["sender_id"])
    msg: dict = {"type": "message", "user": p.slack_id, "text": row["text"] or "", "ts": _ts(row)}
    kind = row["msg_type"]
    if kind == "system":
        if "修改群名" in (row["text"] or ""):
            msg.update(subtype="channel_name", old_name=conv.slug, name=conv.slug,
                       text=f"<@{p.slack_id}> has renamed the channel from \"{conv.slug}\" to \"{conv.slug}\"")
        else:
            msg.update(subtype="channel_join", text=f"<@{p.slack_id}> has joined the channel")
        return msg
    msg["client_msg_id"] = f"{stable_number(row['message_id'] + 'a', 8):08x}-{stable_number(row['message_id'] + 'b', 4):04x}-4000-8000-{stable_number(row['message_id'] + 'c', 12):012x}"
    if kind == "link" and row["text"]:
        title, _, url = row["text"].rpartition(" ")
        msg["text"] = f"{title} <{url}>"
    if row["attachment_name"]:
        name = row["attachment_name"]
        ext = name.rsplit(".", 1)[-1].lower()
        fid = f"F0{stable_number(row['message_id'], 9)}"
        msg["files"] = [{
            "id": fid, "created": int(row["ts"].timestamp()), "timestamp": int(row["ts"].timestamp()), "name": name,
            "title": name, "mimetype": row["attachment_type"] or "application/octet-stream", "filetype": ext,
            "pretty_type": ext.upper(), "user": p.slack_id, "mode": "hosted", "editable": False, "is_external": False,
            "size": row["attachment_size"], "url_private": f"https://files.slack.com/files-pri/{TEAM}-{fid}/{name}",
            "url_private_download": f"https://files.slack.com/files-pri/{TEAM}-{fid}/download/{name}",
        }]
        msg["upload"] = True
    msg["user_profile"] = {"real_name": p.name, "display_name": p.name, "name": p.id, "team": TEAM}
    return msg


@register("slack")
def write_slack(ctx: SampleContext) -> WriterResult:
    """Write ``slack/slack_export.zip``; ids are ``<channel id>:<ts>``."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    rows = [r for r in local_rows(ctx.subset, ctx.tz) if r["msg_type"] != "recall"]
    by_id = {r["message_id"]: r for r in rows}
    used = sorted({r["conversation_id"] for r in rows}, key=list(convs).index)
    files: dict[str, list[dict]] = defaultdict(list)
    ids: dict[str, str] = {}
    threads: dict[str, list[dict]] = defaultdict(list)
    seen_ts: set[tuple[str, str]] = set()
    edited_done = False
    out_msgs: dict[str, dict] = {}
    for row in rows:
        conv = convs[row["conversation_id"]]
        msg = _message(row, conv)
        while (conv.id, msg["ts"]) in seen_ts:  # Slack ts is unique per channel
            sec, micro = msg["ts"].split(".")
            msg["ts"] = f"{sec}.{int(micro) + 1:06d}"
        seen_ts.add((conv.id, msg["ts"]))
        parent = by_id.get(row["reply_to"] or "")
        if parent is not None and parent["message_id"] in out_msgs:
            parent_msg = out_msgs[parent["message_id"]]
            msg["thread_ts"] = parent_msg.get("thread_ts", parent_msg["ts"])
            msg["parent_user_id"] = parent_msg["user"]
            threads[msg["thread_ts"]].append(msg)
        if not edited_done and conv.id == "g-project-a" and row["msg_type"] == "text" and not row["message_id"].startswith("p-"):
            sec = int(msg["ts"].split(".")[0]) + 95
            msg["edited"] = {"user": msg["user"], "ts": f"{sec}.000000"}
            edited_done = True
        out_msgs[row["message_id"]] = msg
        folder = conv.slug if conv.type == "group" else channel_id(conv)
        files[f"{folder}/{row['local']:%Y-%m-%d}.json"].append(msg)
        ids[row["message_id"]] = f"{channel_id(conv)}:{msg['ts']}"
    for msg in out_msgs.values():  # thread parents list their replies
        replies = threads.get(msg["ts"]) if "parent_user_id" not in msg else None
        if replies:
            msg["thread_ts"] = msg["ts"]
            msg.update(reply_count=len(replies), reply_users_count=len({r["user"] for r in replies}),
                       latest_reply=replies[-1]["ts"], reply_users=sorted({r["user"] for r in replies}),
                       replies=[{"user": r["user"], "ts": r["ts"]} for r in replies])
    members = sorted({m for cid in used for m in convs[cid].members}, key=lambda pid: directory.person(pid).slack_id)
    created = int(min(r["ts"] for r in rows).timestamp()) - 86400 if rows else 0
    channels, dms = [], []
    for cid in used:
        conv = convs[cid]
        ids_ = [directory.person(m).slack_id for m in conv.members]
        if conv.type == "group":
            channels.append({"id": channel_id(conv), "name": conv.slug, "created": created, "creator": ids_[0],
                             "is_archived": False, "is_general": False, "members": ids_,
                             "topic": {"value": "", "creator": "", "last_set": 0},
                             "purpose": {"value": conv.name, "creator": ids_[0], "last_set": created}})
        else:
            dms.append({"id": channel_id(conv), "created": created, "members": ids_})
    entries: dict[str, object] = {
        "users.json": [_user(directory.person(m), ctx.tz) for m in members],
        "channels.json": channels, "groups.json": [], "dms.json": dms, "mpims.json": [],
    }
    entries.update(sorted(files.items()))
    path = ctx.out_dir / "slack" / "slack_export.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        folders_done: set[str] = set()
        for name, content in entries.items():
            folder = name.rpartition("/")[0]
            if folder and folder not in folders_done:
                folders_done.add(folder)
                zf.writestr(zipfile.ZipInfo(folder + "/", _ZIP_TIME), b"")
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, json.dumps(content, ensure_ascii=False, indent=4))
    return [path], ids
