"""Writer for WeCom (企业微信) 会话内容存档: decrypted chat data as JSON Lines.

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.sampleset import write_sample_set
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["wecom"])
    >>> first = json.loads(files["wecom"][0].read_text(encoding="utf-8").splitlines()[0])
    >>> sorted(first)[:3]
    ['action', 'from', 'msgid']

What the archive SDK's ``GetChatData`` + ``DecryptData`` give, one decrypted
message per line::

    {"msgid": "...", "action": "send", "from": "zhangwei", "tolist": ["wm..."], "roomid": "",
     "msgtime": 1763446800000, "msgtype": "text", "text": {"content": "..."}}

``msgtime`` is epoch milliseconds (UTC). Employees appear by userid, external
contacts by an opaque ``wm...`` id, group chats by a ``wr...`` roomid (with a
separate ``rooms.json`` {roomid: name}, since the archive itself has no names).
Media carry ``md5sum``, ``filesize`` and an ``sdkfileid``; recalls are
``action: "recall"`` / ``msgtype: "revoke"`` with ``revoke.pre_msgid``. The
archive has no join or rename lines, so system rows are left out.
"""

from __future__ import annotations

import json

from investigator.demo.samples import directory
from investigator.demo.samples.registry import SampleContext, WriterResult, epoch_ms, local_rows, register, stable_number


def room_id(conv: directory.Conversation) -> str:
    return "wr" + directory._opaque(conv.id, 22) if conv.type == "group" else ""


def _msgid(row: dict, external: bool) -> str:
    # Real msgids look like "<19 digits>_<epoch seconds>" with "_external" for chats with external contacts.
    base = f"{stable_number(row['message_id'], 19)}_{int(row['ts'].timestamp())}"
    return base + "_external" if external else base


def _sdkfileid(row: dict) -> str:
    return "CtYBMzA2OTAyMDEwMjA0NjIzMDYwMDIwMTAw" + directory._opaque(row["message_id"] + "sdk", 40)


def _payload(row: dict) -> dict:
    kind = row["msg_type"]
    md5, size = row["attachment_md5"], row["attachment_size"]
    if kind == "text":
        return {"msgtype": "text", "text": {"content": row["text"] or ""}}
    if kind == "image":
        return {"msgtype": "image", "image": {"md5sum": md5, "filesize": size, "sdkfileid": _sdkfileid(row)}}
    if kind == "voice":
        return {"msgtype": "voice", "voice": {"md5sum": md5, "voice_size": size, "play_length": 3 + size % 57,
                                              "sdkfileid": _sdkfileid(row)}}
    if kind == "video":
        return {"msgtype": "video", "video": {"md5sum": md5, "filesize": size, "play_length": 5 + size % 115,
                                              "sdkfileid": _sdkfileid(row)}}
    if kind == "file":
        name = row["attachment_name"]
        return {"msgtype": "file", "file": {"md5sum": md5, "filename": name, "fileext": name.rsplit(".", 1)[-1],
                                            "filesize": size, "sdkfileid": _sdkfileid(row)}}
    title, _, url = (row["text"] or "").rpartition(" ")
    return {"msgtype": "link", "link": {"title": title, "description": "", "link_url": url, "image_url": ""}}


@register("wecom")
def write_wecom(ctx: SampleContext) -> WriterResult:
    """Write ``wecom/chatdata.jsonl`` and ``wecom/rooms.json``; ids are the msgids."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    rows = [r for r in local_rows(ctx.subset, ctx.tz) if r["msg_type"] != "system"]
    ids: dict[str, str] = {}
    lines, rooms = [], {}
    for row in rows:
        conv = convs[row["conversation_id"]]
        external = any(directory.person(m).external for m in conv.members)
        sender = directory.person(row["sender_id"])
        msgid = _msgid(row, external)
        ids[row["message_id"]] = msgid
        if conv.type == "group":
            rooms[room_id(conv)] = conv.name
        head = {"msgid": msgid, "action": "send", "from": sender.wecom_id,
                "tolist": [directory.person(r).wecom_id for r in row["recipients"]], "roomid": room_id(conv),
                "msgtime": epoch_ms(row["ts"])}
        if row["msg_type"] == "recall":
            head.update(action="recall", msgtype="revoke", revoke={"pre_msgid": ids.get(row["original_id"] or "", "")})
        else:
            head.update(_payload(row))
        lines.append(json.dumps(head, ensure_ascii=False))
    folder = ctx.out_dir / "wecom"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "chatdata.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    mapping = folder / "rooms.json"
    mapping.write_text(json.dumps(dict(sorted(rooms.items())), ensure_ascii=False, indent=2) + "\n", encoding="utf-8", newline="\n")
    return [data, mapping], ids
