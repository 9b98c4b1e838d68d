"""Shared reading of WeChat CSV exports (PyWxDump, WeChatMsg).

    >>> classify_type_name("图片")
    'image'

Both tools write one CSV per chat with local times; the CSVs are UTF-8 (often
with BOM) or GB18030 when produced by older Windows builds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from investigator.importers._container import Container
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import BadRecord, Collector
from investigator.importers._tabular import csv_header, iter_csv, row_hash

# PyWxDump's type_name values (Chinese UI labels) -> msg_type.
_TYPE_NAMES = {
    "文本": "text", "图片": "image", "语音": "voice", "视频": "video", "动画表情": "image", "表情": "image",
    "文件": "file", "分享链接": "link", "卡片式链接": "link", "链接": "link", "系统通知": "system",
    "引用回复": "text", "拍一拍": "system", "撤回消息": "recall", "位置": "other", "名片": "other",
    "语音通话": "other", "视频通话": "other", "合并转发的聊天记录": "other", "聊天记录": "other",
    "转账": "other", "红包": "other", "小程序": "link", "音乐与音频": "link", "群公告": "system",
}


def classify_type_name(name: str) -> str:
    """msg_type for a PyWxDump ``type_name`` ("other" when unknown)."""
    return _TYPE_NAMES.get(name.strip(), "other")


def is_recall_notice(text: str | None) -> bool:
    """WeChat system notices for recalled messages (``<revokemsg>...</revokemsg>`` or 撤回了一条消息)."""
    return bool(text) and ("<revokemsg>" in text or "撤回了一条消息" in text)  # type: ignore[operator]


def has_columns(head: bytes, path: Path, required: set[str]) -> bool:
    """Whether a CSV file's header contains every column in ``required``."""
    if path.suffix.lower() != ".csv":
        return False
    header = csv_header(head)
    return header is not None and required <= {c.lstrip("\ufeff") for c in header}


Convert = Callable[[dict[str, str], ImportOptions, dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]
Prepare = Callable[[str, list[dict[str, str]]], dict[str, Any]]


def parse_wechat_csv(path: Path, options: ImportOptions, *, fmt: str, required: tuple[str, ...] | list[str],
                     convert: Convert, prepare: Prepare | None = None, min_fields: int | None = None
                     ) -> ImportResult:
    """Read a WeChat CSV, converting each row with ``convert`` (which raises BadRecord).

    ``prepare(file_name, rows)`` sees every well-formed row first and returns the
    context handed to each ``convert`` call (facts of the whole file, such as the
    conversation's name). Raises ImportFormatError naming the file and the first
    missing column, undecodable text, or (strict mode) the first row that
    ``convert`` rejects. ``min_fields``: see :func:`iter_csv`.
    """
    box = Container.open(path)
    rows = Collector("messages", source=fmt, lenient=options.lenient)
    try:
        if box.kind != "file":
            raise box.error(box.name, "", f"a {fmt} CSV file")
        member = box.members()[0]
        file_name, sha = box.provenance(member)
        header, source = iter_csv(box, member, min_fields=min_fields)
        for column in required:
            if column not in header:
                raise box.error(member, f"column '{column}'", f"the {fmt} column '{column}' in the header")
        seen: set[str] = set()
        items = list(source)
        context = prepare(file_name, [row for _, row in items if "\x00bad" not in row]) if prepare else {}
        for position, row in items:
            if "\x00bad" in row:
                rows.bad(file_name, position, row["\x00bad"])
                continue
            try:
                rec, ids = convert(row, options, context)
            except BadRecord as bad:
                rows.bad(file_name, position, bad.expected)
                continue
            if rec["message_id"] in seen:
                # Server ids should be unique; where an export repeats one for different rows,
                # the local row id keeps both (deterministically, so a re-import agrees).
                rec["message_id"] = f"{rec['message_id']}:local:{row.get('id') or row.get('localId') or position}"
            seen.add(rec["message_id"])
            rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=row_hash(row), platform_ids=ids)
        return finish(box, fmt, messages=rows)
    finally:
        box.close()
