"""Writer for WeChat chats as exported by PyWxDump to CSV (one file per chat).

    >>> import tempfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.sampleset import write_sample_set
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["wechat-pywxdump"])
    >>> files["wechat-pywxdump"][0].read_text(encoding="utf-8").splitlines()[0]
    'id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime'

Columns as PyWxDump writes them: a local row ``id``, the server message id
``MsgSvrID``, a Chinese ``type_name`` (文本, 图片, 语音, 视频, 文件, 卡片式链接,
系统通知), ``is_sender`` (1 for the account that exported), ``talker`` (the
sender's wxid), ``room_name`` (the chat: the other person's wxid, or
``<digits>@chatroom``), ``msg``, ``src`` (the media path under FileStorage)
and ``CreateTime`` in local time as ``2026/11/24 8:31`` (no zero padding, no
seconds). UTF-8, ``\\n`` line ends. The exporting account is the chat's first member.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from investigator.demo.samples import directory
from investigator.demo.samples.registry import SampleContext, WriterResult, local_rows, register, stable_number

TYPE_NAMES = {"text": "文本", "image": "图片", "voice": "语音", "video": "视频", "file": "文件", "link": "卡片式链接",
              "system": "系统通知", "recall": "系统通知"}
HEADER = ["id", "MsgSvrID", "type_name", "is_sender", "talker", "room_name", "msg", "src", "CreateTime"]


def chat_name(conv: directory.Conversation) -> str:
    """The chat id: a chatroom id for groups, the other person's wxid for DMs."""
    if conv.type == "group":
        return f"{stable_number(conv.id, 11)}@chatroom"
    return directory.person(conv.members[-1]).wxid


def create_time(local) -> str:
    return f"{local.year}/{local.month}/{local.day} {local.hour}:{local.minute:02d}"


def message_text(row: dict) -> str:
    """The ``msg`` column (shared with the WeChatMsg writer)."""
    kind = row["msg_type"]
    if kind == "recall":
        return f"\"{row['sender_name']}\" 撤回了一条消息"
    if kind in ("image", "voice", "video"):
        return TYPE_NAMES[kind]
    if kind == "file":
        return row["attachment_name"] or ""
    return row["text"] or ""


def _src(row: dict, owner: directory.Person) -> str:
    folder = f"FileStorage\\MsgAttach\\{directory._opaque(owner.wxid, 32).lower()}"
    month = f"{row['local']:%Y-%m}"
    kind = row["msg_type"]
    if kind == "image":
        return f"{folder}\\Image\\{month}\\{row['attachment_md5']}.dat"
    if kind == "video":
        return f"{folder}\\Video\\{month}\\{row['attachment_md5']}.mp4"
    if kind == "voice":
        return f"{folder}\\Voice\\{month}\\{row['attachment_md5']}.silk"
    if kind == "file":
        return f"FileStorage\\File\\{month}\\{row['attachment_name']}"
    return ""


@register("wechat-pywxdump")
def write_pywxdump(ctx: SampleContext) -> WriterResult:
    """Write ``wechat/pywxdump/<chat>.csv`` files; ids are ``<room_name>:<MsgSvrID>``."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    by_conv: dict[str, list[dict]] = defaultdict(list)
    for row in local_rows(ctx.subset, ctx.tz):
        by_conv[row["conversation_id"]].append(row)
    folder = ctx.out_dir / "wechat" / "pywxdump"
    folder.mkdir(parents=True, exist_ok=True)
    paths, ids = [], {}
    for cid in sorted(by_conv, key=list(convs).index):
        conv = convs[cid]
        owner = directory.person(conv.members[0])
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(HEADER)
        for n, row in enumerate(by_conv[cid], start=1):
            sender = directory.person(row["sender_id"])
            svr = str(stable_number(row["message_id"] + "svr", 19))
            ids[row["message_id"]] = f"{chat_name(conv)}:{svr}"
            out.writerow([n, svr, TYPE_NAMES[row["msg_type"]], int(sender.id == owner.id), sender.wxid, chat_name(conv),
                          message_text(row), _src(row, owner), create_time(row["local"])])
        path = folder / f"{conv.name.replace(' / ', '_')}.csv"
        path.write_text(buf.getvalue(), encoding="utf-8", newline="")
        paths.append(path)
    return paths, ids
