"""WhatsApp "Export chat": the ``.txt`` file, or the ``.zip`` WhatsApp shares (``_chat.txt`` + media).

    >>> from investigator.importers import read_export, ImportOptions
    >>> read_export("WhatsApp Chat with Alice.txt",
    ...             options=ImportOptions(tz="Europe/Berlin", date_order="dmy"))   # doctest: +SKIP

Line shapes (the separator before AM/PM may be a normal, no-break or narrow space):

- Android: ``12/9/20, 23:55 - Alice: text`` (also ``11:25 a. m.``, ``2019/01/01, 11:25``)
- iOS: ``[12/9/20, 23:55:01] Alice: text`` (system lines and media start with U+200E)

A line without such a header continues the previous message. Lines without
``Name: `` are system messages. Times are local, read in ``options.tz``. The
day/month order is detected from the whole file (a first field above 12 means
day first, a second field above 12 month first, four digits first year first);
when nothing decides, the order that keeps the file most chronological wins, and
"dmy" on a tie. ``options.date_order`` overrides detection.

WhatsApp has no message ids: ``message_id`` is derived from the conversation
(file name without WhatsApp's prefixes), the timestamp, the sender, a hash of the
text and the ordinal among identical (timestamp, sender, text) messages, so an
overlapping later export of the same chat reproduces the ids of the messages
both contain.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from investigator.errors import ImportFormatError

from ._container import Container, member_names
from ._model import DATE_ORDERS, ImportOptions, ImportResult, finish
from ._records import BadRecord, Collector, decode_text, derived_id, kind_from_name, local_to_us

NAME = "whatsapp"

_SP = r"[ \u00a0\u202f]"
_AMPM = r"(?P<ampm>[aApP]\.?" + _SP + r"?[mM]\.?|上午|下午)"
_DATE = r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})"
_TIME = r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
_ANDROID = re.compile(_DATE + r",?" + _SP + r"(?:" + _AMPM.replace("ampm", "pre") + _SP + r"?)?" + _TIME
                      + r"(?:" + _SP + r"?" + _AMPM + r")?" + _SP + r"-" + _SP + r"(?P<rest>.*)$")
_IOS = re.compile(r"\[" + _DATE + r",?" + _SP + _TIME + r"(?:" + _SP + r"?" + _AMPM + r")?\]" + _SP
                  + r"(?P<rest>.*)$")
_MARKS = "\u200e\u200f\ufeff"
_OMITTED = re.compile(r"^(?:<Media omitted>|<Medien ausgeschlossen>|<Multimedia omitido>|<Médias omis>"
                      r"|<省略多媒体文件>|<多媒体文件已忽略>|<媒體已略去>)$", re.IGNORECASE)
_IOS_OMITTED = re.compile(r"^(image|video|audio|sticker|GIF|document|Contact card) omitted$", re.IGNORECASE)
_ATTACHED = re.compile(r"^(?:<attached: (?P<ios>[^<>]+)>|(?P<android>[^\n]+?) \((?:file attached|Datei angehängt"
                       r"|archivo adjunto|fichier joint|文件已附上)\))", re.IGNORECASE)
_DELETED = ("This message was deleted", "You deleted this message", "此消息已删除", "你删除了此消息")
_NAME_PREFIXES = ("WhatsApp Chat with ", "WhatsApp Chat - ", "WhatsApp-Chat mit ", "Chat de WhatsApp con ",
                  "Conversa do WhatsApp com ", "Discussion WhatsApp avec ", "WhatsApp 聊天：", "与")


def _header(line: str) -> re.Match[str] | None:
    line = line.lstrip(_MARKS)
    return _IOS.match(line) if line.startswith("[") else _ANDROID.match(line)


def _chat_member(names: list[str]) -> str | None:
    texts = [n for n in names if n.lower().endswith(".txt") and "/" not in n]
    for name in texts:
        if name == "_chat.txt" or name.startswith("WhatsApp"):
            return name
    return texts[0] if len(texts) == 1 else None


def sniff(path: Path, head: bytes) -> bool:
    """A text file (or a zip with one) whose first non-empty line has a WhatsApp date-time header."""
    names = member_names(path, head)
    if names is not None:
        if path.is_dir() or _chat_member(names) is None:
            return False
        box = Container.open(path)
        try:
            head = box.read(_chat_member(names) or "", limit=64 * 1024 * 1024)[:4096]
        finally:
            box.close()
    for raw in head.splitlines()[:5]:
        line = raw.decode("utf-8", "ignore").strip()
        if line:
            return _header(line) is not None
    return False


def conversation_name(file_name: str) -> str:
    """The chat's name from an export file name, without WhatsApp's prefixes and copy suffixes."""
    stem = re.sub(r"\.(txt|zip)$", "", file_name, flags=re.IGNORECASE)
    stem = re.sub(r"\s*\(\d+\)$", "", stem)
    for prefix in _NAME_PREFIXES:
        if stem.startswith(prefix):
            return stem[len(prefix):].strip() or stem
    return stem


def _split_date(text: str) -> tuple[int, int, int]:
    a, b, c = re.split(r"[./-]", text)
    return int(a), int(b), int(c)


def detect_order(dates: set[str], ordered: list[str]) -> str:
    """"dmy", "mdy" or "ymd" for the date strings of one file (see the module doc)."""
    parts = [_split_date(d) for d in dates]
    if parts and all(a > 31 for a, _, _ in parts):
        return "ymd"
    day_first = any(a > 12 for a, _, _ in parts)
    month_first = any(b > 12 for _, b, _ in parts)
    if day_first and month_first:
        raise BadRecord("one consistent day/month order in all dates (set date_order)")
    if day_first or month_first:
        return "dmy" if day_first else "mdy"
    # Undecided: count how often each reading goes back in time; exports are chronological.
    backwards = {}
    for order in ("dmy", "mdy"):
        previous, count = None, 0
        for date in ordered:
            a, b, c = _split_date(date)
            key = (c, b, a) if order == "dmy" else (c, a, b)
            if previous is not None and key < previous:
                count += 1
            previous = key
        backwards[order] = count
    return "mdy" if backwards["mdy"] < backwards["dmy"] else "dmy"


def _to_datetime(date: str, time: str, ampm: str | None, order: str) -> datetime:
    a, b, c = _split_date(date)
    year, month, day = {"dmy": (c, b, a), "mdy": (c, a, b), "ymd": (a, b, c)}[order]
    if year < 100:
        year += 2000
    pieces = [int(p) for p in re.split(r"[:.]", time)]
    hour, minute, second = pieces[0], pieces[1], pieces[2] if len(pieces) > 2 else 0
    if ampm:
        pm = ampm.lower().startswith("p") or ampm == "下午"
        if hour > 12:
            raise BadRecord("a 12-hour time with AM/PM")
        hour = hour % 12 + (12 if pm else 0)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise BadRecord(f"a valid date in {order} order") from None


def _classify(text: str, box: Container, folder: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """msg_type, attachment columns and platform id hints of a message text."""
    stripped = text.lstrip(_MARKS)
    first = stripped.split("\n", 1)[0]
    if _OMITTED.match(first):
        return "other", {}, {"media_omitted": True}
    match = _IOS_OMITTED.match(first)
    if match:
        kind = {"image": "image", "video": "video", "audio": "voice", "sticker": "image", "gif": "video"}.get(
            match.group(1).lower(), "file")
        return kind, {"attachment_type": kind}, {"media_omitted": True}
    match = _ATTACHED.match(first)
    if match:
        name = (match.group("ios") or match.group("android")).strip()
        kind = kind_from_name(name)
        att: dict[str, Any] = {"attachment_name": name, "attachment_type": kind}
        ids: dict[str, Any] = {}
        member = folder + name
        if box.kind == "zip" and box.has(member):
            data = box.read(member)
            att["attachment_sha256"] = hashlib.sha256(data).hexdigest()
            att["attachment_size"] = len(data)
        else:
            ids["file_missing"] = True
        return kind, att, ids
    if stripped.strip() in _DELETED:
        return "recall", {}, {}
    return "text", {}, {}


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read a WhatsApp chat export (.txt, or the .zip WhatsApp shares).

    Raises ImportFormatError for undecodable text, contradictory date orders, an
    invalid ``date_order`` or (strict mode) a first line that is not a message
    header, or an impossible date / time.
    """
    if options.date_order is not None and options.date_order not in DATE_ORDERS:
        raise ImportFormatError("options", "date_order", "one of " + ", ".join(DATE_ORDERS))
    box = Container.open(path)
    rows = Collector("messages", source=NAME, lenient=options.lenient)
    try:
        if box.kind == "dir":
            raise box.error(box.name, "", "a WhatsApp .txt or .zip export")
        member = box.members()[0] if box.kind == "file" else _chat_member(box.members())
        if member is None:
            raise box.error(box.name, "", "a zip holding one WhatsApp chat .txt")
        folder = str(PurePosixPath(member).parent) + "/" if "/" in member else ""
        file_name, sha = box.provenance(member)
        _, encoding = decode_text(box.read(member), file_name)
        # Pass 1: split into messages (header line + continuation lines).
        messages: list[list[Any]] = []  # [line_no, match, [raw lines], [text lines]]
        for number, raw in box.iter_lines(member):
            line = raw.decode(encoding).rstrip("\r")
            if number == 1:
                line = line.lstrip("\ufeff")
            match = _header(line)
            if match is not None:
                messages.append([number, match, [raw], [match.group("rest")]])
            elif messages:
                messages[-1][2].append(raw)
                messages[-1][3].append(line)
            elif line.strip():
                rows.bad(file_name, box.position(member, f"line {number}"), "a line starting with a WhatsApp date and time")
        ordered = [m[1].group("date") for m in messages]
        try:
            order = options.date_order or detect_order(set(ordered), ordered)
        except BadRecord as bad:
            raise box.error(member, "", bad.expected) from None
        conv_name = conversation_name(box.name if box.kind == "zip" else file_name)
        conv_id = "whatsapp:" + derived_id("whatsapp", conv_name)[:24]
        # Pass 2: times, senders, types, ids.
        times: dict[tuple[str, str, str | None], int] = {}
        ordinals: dict[tuple[int, str | None, str], int] = {}
        senders: set[str] = set()
        built: list[tuple[dict[str, Any], str, str, dict[str, Any]]] = []
        group_hint = False
        for number, match, raw_lines, text_lines in messages:
            position = box.position(member, f"line {number}")
            groups = match.groupdict()
            ampm = groups.get("ampm") or groups.get("pre")
            key = (groups["date"], groups["time"], ampm)
            try:
                us = times.get(key)
                if us is None:
                    us = times[key] = local_to_us(_to_datetime(groups["date"], groups["time"], ampm, order), options.tz)
            except BadRecord as bad:
                rows.bad(file_name, position, bad.expected)
                continue
            rest = "\n".join(text_lines)
            sender, sep, body = rest.partition(": ")
            if not sep or '"' in sender or "\n" in sender:
                sender_name, text, msg_type, att, ids = None, rest, "system", {}, {}
                group_hint = group_hint or "group" in rest.lower()
            else:
                sender_name, text = sender.strip(_MARKS), body
                msg_type, att, ids = _classify(text, box, folder)
                if msg_type == "text" and text.startswith("\u200e"):
                    msg_type = "system"  # iOS prefixes system notices in groups with U+200E
                senders.add(sender_name)
            text_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
            okey = (us, sender_name, text_hash)
            ordinals[okey] = ordinals.get(okey, 0) + 1
            rec = {
                "message_id": derived_id(conv_id, us, sender_name, text_hash, ordinals[okey]),
                "ts": us,
                "sender_id": sender_name,
                "sender_name": sender_name,
                "msg_type": msg_type,
                "text": text,
                **att,
            }
            raw = hashlib.sha256(b"\n".join(raw_lines)).hexdigest()
            built.append((rec, position, raw, {"date_order": order, **ids}))
        conv_type = "group" if group_hint or len(senders) > 2 else "direct"
        for rec, position, raw, ids in built:
            rec.update(conversation_id=conv_id, conversation_name=conv_name, conversation_type=conv_type)
            rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw, platform_ids=ids)
        return finish(box, NAME, messages=rows)
    finally:
        box.close()
