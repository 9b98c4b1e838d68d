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
from binascii import hexlify
import re
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import polars as pl

from investigator.errors import ImportFormatError

from investigator.importers._container import Container, member_names
from investigator.importers._model import DATE_ORDERS, ImportOptions, ImportResult, finish
from investigator.importers._records import BadRecord, Collector, decode_text, derived_id, kind_from_name, zone

NAME = "whatsapp"

_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)

_SP = r"[ \u00a0\u202f]"
_AMPM = r"(?P<ampm>[aApP]\.?" + _SP + r"?[mM]\.?|上午|下午)"
_DATE = r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})"
_TIME = r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
# Finnish phones write "klo" ("o'clock") between date and time: 13.6.2018 klo 21.25.15 - Name: text
_KLO = r"(?:klo" + _SP + r")?"
_ANDROID = re.compile(_DATE + r",?" + _SP + _KLO + r"(?:" + _AMPM.replace("ampm", "pre") + _SP + r"?)?" + _TIME
                      + r"(?:" + _SP + r"?" + _AMPM + r")?" + _SP + r"-" + _SP + r"(?P<rest>.*)$")
_IOS = re.compile(r"\[" + _DATE + r",?" + _SP + _KLO + _TIME + r"(?:" + _SP + r"?" + _AMPM + r")?\]" + _SP
                  + r"(?P<rest>.*)$")
# 13.06.18 21.25.15: Name: text (a colon instead of " - "); only with seconds, so that a continuation line
# such as "12.05.2020 10.00: meeting" is not mistaken for a header.
_COLON = re.compile(_DATE + _SP + r"(?P<time>\d{1,2}[:.]\d{2}[:.]\d{2}):" + _SP + r"(?P<rest>.*)$")
# Group order of the two header patterns, as unpacked from match.groups() in parse().
assert tuple(_ANDROID.groupindex) == ("date", "pre", "time", "ampm", "rest")
assert tuple(_IOS.groupindex) == ("date", "time", "ampm", "rest")
assert tuple(_COLON.groupindex) == ("date", "time", "rest")
_MARKS = "\u200e\u200f\ufeff"
# Android's localized "media omitted" markers (docs/formats.md lists them with their source).
MEDIA_OMITTED = (
    "<Media omitted>", "<Medien ausgeschlossen>", "<Medien weggelassen>", "<Multimedia omitido>", "<Archivo omitido>",
    "<Médias omis>", "<Fichier omis>", "<Media omessi>", "<Media omesso>", "<Mídia omitida>",
    "<ficheiro não revelado>", "<Media weggelaten>", "<без медиафайлов>", "<Файл пропущен>", "<медіа пропущено>",
    "<Media jätetty pois>", "<media jätettiin pois>", "<Media har utelämnats>", "<media utelämnat>",
    "<pominięto multimedia>", "<pliki pominięto>", "<Medya atlanmış>", "<medya dahil edilmedi>",
    "<تم استبعاد الوسائط>", "<मीडिया के बिना>", "<media tidak disertakan>", "<bỏ qua tệp phương tiện>",
    "<メディアなし>", "<メディアは含まれていません>", "<미디어 파일 제외됨>", "<미디어 파일을 생략한 대화내용>",
    "<省略多媒体文件>", "<多媒体文件已忽略>", "<媒體已略去>", "<忽略多媒體檔>",
)
_OMITTED = re.compile("^(?:" + "|".join(re.escape(m) for m in MEDIA_OMITTED) + ")$", re.IGNORECASE)
_IOS_KINDS = ("image", "video", "audio", "sticker", "GIF", "document", "Contact card")
_IOS_OMITTED = re.compile(r"^(" + "|".join(_IOS_KINDS) + ") omitted$", re.IGNORECASE)
# Lengths of the lines _IOS_OMITTED can match (it has no newline; case-insensitive matching is char by char).
_IOS_OMITTED_LENGTHS = frozenset(len(kind) + len(" omitted") for kind in _IOS_KINDS)
_ATTACHED = re.compile(r"^(?:<attached: (?P<ios>[^<>]+)>|(?P<android>[^\n]+?) \((?:file attached|Datei angehängt"
                       r"|archivo adjunto|fichier joint|文件已附上)\))", re.IGNORECASE)
_DELETED = ("This message was deleted", "You deleted this message", "此消息已删除", "你删除了此消息")
_NAME_PREFIXES = ("WhatsApp Chat with ", "WhatsApp Chat - ", "WhatsApp-Chat mit ", "Chat de WhatsApp con ",
                  "Conversa do WhatsApp com ", "Discussion WhatsApp avec ", "WhatsApp 聊天：", "与")


def _header(line: str) -> re.Match[str] | None:
    line = line.lstrip(_MARKS)
    return _IOS.match(line) if line.startswith("[") else (_ANDROID.match(line) or _COLON.match(line))


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


class _Times:
    """Local date and time strings -> microseconds, caching each date, each time and each pair.

    Gives what ``local_to_us(_to_datetime(date, time, ampm, order), tz)`` gives,
    or raises the same BadRecord.
    """

    def __init__(self, order: str, tz: str) -> None:
        self.order = order
        self.tz = tz
        self.pairs: dict[tuple[str, str, str | None], int | str] = {}
        self.dates: dict[str, tuple[int, int, int]] = {}
        self.times: dict[tuple[str, str | None], tuple[int, int, int] | str] = {}
        self._zone: ZoneInfo | None = None  # looked up at the first valid time, as local_to_us does

    def us(self, date: str, time: str, ampm: str | None) -> int:
        key = (date, time, ampm)
        found = self.pairs.get(key)
        if found is None:
            found = self.pairs[key] = self._convert(date, time, ampm)
        if type(found) is str:
            raise BadRecord(found)
        return found  # type: ignore[return-value]

    def _convert(self, date: str, time: str, ampm: str | None) -> int | str:
        ymd = self.dates.get(date)
        if ymd is None:
            a, b, c = _split_date(date)
            year, month, day = {"dmy": (c, b, a), "mdy": (c, a, b), "ymd": (a, b, c)}[self.order]
            ymd = self.dates[date] = (year + 2000 if year < 100 else year, month, day)
        hms = self.times.get((time, ampm))
        if hms is None:
            pieces = [int(p) for p in re.split(r"[:.]", time)]
            hour, minute, second = pieces[0], pieces[1], pieces[2] if len(pieces) > 2 else 0
            if ampm and hour > 12:
                hms = "a 12-hour time with AM/PM"
            else:
                if ampm:
                    pm = ampm.lower().startswith("p") or ampm == "下午"
                    hour = hour % 12 + (12 if pm else 0)
                hms = (hour, minute, second)
            self.times[(time, ampm)] = hms
        if isinstance(hms, str):
            return hms
        if self._zone is None:  # an impossible date is reported before an unknown zone
            try:
                datetime(*ymd, *hms)
            except ValueError:
                return f"a valid date in {self.order} order"
            self._zone = zone(self.tz)
        try:
            naive = datetime(*ymd, *hms)
        except ValueError:
            return f"a valid date in {self.order} order"
        # = local_to_us(naive, tz), i.e. (aware - epoch) with the zone's offset for fold=0 (the
        # earlier of an ambiguous pair), without building the aware datetime and the timedelta.
        offset = self._zone.utcoffset(naive)
        assert offset is not None  # a ZoneInfo always has an offset
        local = (naive.toordinal() - _EPOCH_ORDINAL) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
        return local * 1_000_000 - offset // _MICROSECOND


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
        data = box.read(member)
        _, encoding = decode_text(data, file_name)
        # Pass 1: split into messages (header line + continuation lines). Decoding the
        # whole text at once equals decoding line by line: b"\n" never occurs inside
        # a UTF-8 or GB18030 multi-byte sequence.
        raw_lines, too_long = box.split_lines(data, member)
        text = data.decode(encoding)
        text_lines = text.split("\n")[:len(raw_lines)]
        if "\r" in text:
            text_lines = [line.rstrip("\r") for line in text_lines]
        if text_lines:
            text_lines[0] = text_lines[0].lstrip("\ufeff")
        heads: list[int] = []  # line index of each message's header
        # (date, time, am/pm, rest of the line) of each header; tuples of strings, which the garbage
        # collector stops tracking, unlike match objects
        fields: list[tuple[str, str, str | None, str]] = []
        more: dict[int, list[int]] = {}  # message -> line indexes of its continuation lines
        ios, android, colon = _IOS.match, _ANDROID.match, _COLON.match
        # Lines up to the first one over the line cap, which then raises (as iter_lines does).
        for index, line in enumerate(text_lines if too_long is None else text_lines[:too_long - 1]):
            head = line.lstrip(_MARKS)  # = _header(line)
            match = ios(head) if head.startswith("[") else (android(head) or colon(head))
            if match is not None:
                heads.append(index)
                if match.re is _ANDROID:
                    date, pre, time, ampm, rest = match.groups()
                    fields.append((date, time, ampm or pre, rest))
                elif match.re is _COLON:
                    date, time, rest = match.groups()
                    fields.append((date, time, None, rest))
                else:
                    fields.append(match.groups())  # type: ignore[arg-type]
            elif fields:
                more.setdefault(len(fields) - 1, []).append(index)
            elif line.strip():
                rows.bad(file_name, box.position(member, f"line {index + 1}"),
                         "a line starting with a WhatsApp date and time")
        if too_long is not None:
            raise box.long_line(member, too_long)
        # Blank lines at the end of the file close the export; they are not part of the last message.
        last = more.get(len(fields) - 1)
        while last and not text_lines[last[-1]].strip():
            last.pop()
        ordered = [f[0] for f in fields]
        try:
            order = options.date_order or detect_order(set(ordered), ordered)
        except BadRecord as bad:
            raise box.error(member, "", bad.expected) from None
        conv_name = conversation_name(box.name if box.kind == "zip" else file_name)
        conv_id = "whatsapp:" + derived_id("whatsapp", conv_name)[:24]
        # Pass 2: times, senders, types, ids; one tuple per message, turned into columns below.
        times = _Times(order, options.tz)
        known_us = times.pairs
        ordinals: dict[bytes, int] = {}
        senders: set[str] = set()
        group_hint = False
        sha256 = hashlib.sha256
        id_prefix = b"[" + orjson.dumps(conv_id) + b","
        json_names: dict[str | None, bytes] = {}
        pid_texts: dict[tuple[tuple[str, Any], ...], str] = {(): orjson.dumps({"date_order": order}).decode()}
        plain_pid = pid_texts[()]
        names = ("message_id", "ts", "sender_id", "msg_type", "text", "source_position", "raw_sha256", "platform_ids")
        cols: dict[str, list[Any]] = {name: [] for name in names}
        ids_col, ts_col, sender_col, type_col, text_col, pos_col, raw_col, pid_col = cols.values()
        atts: list[tuple[int, dict[str, Any]]] = []
        ios_omitted = _IOS_OMITTED.match
        for n, (first, (date, time, ampm, rest)) in enumerate(zip(heads, fields)):
            us = known_us.get((date, time, ampm))
            if type(us) is not int:
                try:
                    us = times.us(date, time, ampm)
                except BadRecord as bad:
                    rows.bad(file_name, box.position(member, f"line {first + 1}"), bad.expected)
                    continue
            extra = more.get(n)
            if extra is None:
                raw = raw_lines[first]
            else:
                rest = "\n".join([rest, *(text_lines[i] for i in extra)])
                raw = b"\n".join([raw_lines[first], *(raw_lines[i] for i in extra)])
            sender, sep, text = rest.partition(": ")
            if not sep or "\n" in sender:
                # "[13/11/2025, 12:25:55 PM] Name:" with an empty body, or its body on the next line
                head_line, _, tail = rest.partition("\n")
                if (head_line.endswith(":") and ": " not in head_line and head_line[:-1].strip(_MARKS)
                        and not head_line.startswith(tuple(_MARKS))):
                    sender, sep, text = head_line[:-1], ":", tail
            pid = plain_pid
            if not sep or '"' in sender or "\n" in sender:
                sender_name, text, msg_type = None, rest, "system"
                group_hint = group_hint or "group" in rest.lower()
            else:
                sender_name = sender.strip(_MARKS)
                stripped = text.lstrip(_MARKS)
                first_line = stripped.partition("\n")[0]
                # _classify's patterns all need one of these: a leading "<", " (" or an "omitted" line.
                if (first_line[:1] != "<" and " (" not in first_line
                        and (len(first_line) not in _IOS_OMITTED_LENGTHS or ios_omitted(first_line) is None)):
                    msg_type = "recall" if stripped.strip() in _DELETED else "text"
                else:
                    msg_type, att, ids = _classify(text, box, folder)
                    if att:
                        atts.append((len(ts_col), att))
                    if ids:
                        pid_key = tuple(ids.items())
                        pid = pid_texts.get(pid_key)  # type: ignore[assignment]
                        if pid is None:
                            pid = pid_texts[pid_key] = orjson.dumps({"date_order": order, **ids},
                                                                    option=orjson.OPT_SORT_KEYS).decode()
                if msg_type == "text" and text.startswith("\u200e"):
                    msg_type = "system"  # iOS prefixes system notices in groups with U+200E
                senders.add(sender_name)
            # derived_id(conv_id, us, sender_name, text_hash, ordinal), with the orjson list written out;
            # the bytes before the ordinal are also the key for counting identical messages.
            name_json = json_names.get(sender_name)
            if name_json is None:
                name_json = json_names[sender_name] = orjson.dumps(sender_name)
            okey = b'%s%d,%s,"%s",' % (id_prefix, us, name_json, hexlify(sha256(text.encode("utf-8")).digest()))
            ordinal = ordinals[okey] = ordinals.get(okey, 0) + 1
            ids_col.append(sha256(b"%s%d]" % (okey, ordinal)).hexdigest()[:32])
            ts_col.append(us)
            sender_col.append(sender_name)
            type_col.append(msg_type)
            text_col.append(text)
            pos_col.append(first + 1)
            raw_col.append(sha256(raw).hexdigest())
            pid_col.append(pid)
        conv_type = "group" if group_hint or len(senders) > 2 else "direct"
        for key in ("attachment_name", "attachment_type", "attachment_size", "attachment_sha256"):
            column = cols[key] = [None] * len(ts_col)
            for row, att in atts:
                column[row] = att.get(key)
        where = box.position(member, "line ")
        if rows.claim(ids_col, raw_col):
            frame = pl.DataFrame(cols, schema={**{k: pl.String() for k in cols}, "ts": pl.Int64(),
                                               "attachment_size": pl.Int64(), "source_position": pl.Int64()})
            rows.add_frame(frame.with_columns(
                source_position=pl.lit(where) + pl.col("source_position").cast(pl.String),
                sender_name=pl.col("sender_id"), source=pl.lit(NAME), conversation_id=pl.lit(conv_id),
                conversation_name=pl.lit(conv_name), conversation_type=pl.lit(conv_type),
                source_file=pl.lit(file_name), source_sha256=pl.lit(sha)))
        else:  # repeated ids: impossible by construction (ordinals), but keep the Collector's rule
            cols["source_position"] = [where + str(number) for number in pos_col]
            for record in pl.DataFrame(cols, schema_overrides={"ts": pl.Int64()}).iter_rows(named=True):
                ids = orjson.loads(record.pop("platform_ids"))
                rec = {key: value for key, value in record.items() if not key.startswith(("source", "raw"))}
                rec.update(sender_name=rec["sender_id"], conversation_id=conv_id, conversation_name=conv_name,
                           conversation_type=conv_type)
                rows.add(rec, file=file_name, sha=sha, position=record["source_position"], raw_sha=record["raw_sha256"],
                         platform_ids=ids)
        return finish(box, NAME, messages=rows)
    finally:
        box.close()
