"""Writer for WeChat chats as exported by WeChatMsg (留痕) to CSV: GB18030, CRLF.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.sampleset import write_sample_set
    >>> files = write_sample_set(Path(tempfile.mkdtemp()), messages=400, formats=["wechat-wechatmsg"])
    >>> files["wechat-wechatmsg"][0].read_bytes().split(b"\\r\\n")[0].decode("gb18030")[:20]
    'localId,TalkerId,Typ'

Columns: ``localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,
StrTime,Remark,NickName,Sender`` where ``Type``/``SubType`` are WeChat's numeric
message types (1 text, 3 image, 34 voice, 43 video, 49/6 file, 49/5 link,
10000 system), ``CreateTime`` is epoch seconds and ``StrTime`` the local time
``YYYY-MM-DD HH:MM:SS``. ``TalkerId`` is the chat (wxid or ``@chatroom``),
``Remark`` its display name, ``NickName`` the sender's name and ``Sender`` the
sender's wxid. Written the way Windows tools write it: GB18030 with CRLF line
ends and no BOM, so importers must detect the encoding.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from investigator.demo.samples import directory
from investigator.demo.samples.registry import SampleContext, WriterResult, local_rows, register
from investigator.demo.samples.wechat_pywxdump import chat_name, message_text

TYPES = {"text": (1, 0), "image": (3, 0), "voice": (34, 0), "video": (43, 0), "file": (49, 6), "link": (49, 5),
         "system": (10000, 0), "recall": (10000, 0)}
HEADER = ["localId", "TalkerId", "Type", "SubType", "IsSender", "CreateTime", "Status", "StrContent", "StrTime",
          "Remark", "NickName", "Sender"]


@register("wechat-wechatmsg")
def write_wechatmsg(ctx: SampleContext) -> WriterResult:
    """Write ``wechat/wechatmsg/<chat>.csv`` files; ids are ``<TalkerId>:<localId>:<CreateTime>``."""
    convs = {c.id: c for c in directory.CORE_CONVERSATIONS}
    by_conv: dict[str, list[dict]] = defaultdict(list)
    for row in local_rows(ctx.subset, ctx.tz):
        by_conv[row["conversation_id"]].append(row)
    folder = ctx.out_dir / "wechat" / "wechatmsg"
    folder.mkdir(parents=True, exist_ok=True)
    paths, ids = [], {}
    for cid in sorted(by_conv, key=list(convs).index):
        conv = convs[cid]
        owner = directory.person(conv.members[0])
        talker = chat_name(conv)
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\r\n")
        out.writerow(HEADER)
        for n, row in enumerate(by_conv[cid], start=1):
            sender = directory.person(row["sender_id"])
            mtype, sub = TYPES[row["msg_type"]]
            ids[row["message_id"]] = f"{talker}:{n}:{int(row['ts'].timestamp())}"
            text = message_text(row).replace("\r\n", "\n").replace("\n", "\r\n")  # Windows tools write CRLF inside fields too
            out.writerow([n, talker, mtype, sub, int(sender.id == owner.id), int(row["ts"].timestamp()), 2, text,
                          f"{row['local']:%Y-%m-%d %H:%M:%S}", conv.name, sender.name, sender.wxid])
        path = folder / f"{conv.name.replace(' / ', '_')}.csv"
        path.write_bytes(buf.getvalue().encode("gb18030"))
        paths.append(path)
    return paths, ids
