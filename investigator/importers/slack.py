"""Slack workspace export (zip or folder): channels / groups / dms / mpims, users, day files.

    >>> from investigator.importers import read_export
    >>> result = read_export("Acme Slack export.zip", format="slack")   # doctest: +SKIP

Layout: ``channels.json``, ``groups.json``, ``dms.json``, ``mpims.json`` describe
conversations, ``users.json`` names people, and ``<conversation>/YYYY-MM-DD.json``
holds one day's messages. A message's ``ts`` is unique only within its
conversation, so ``message_id`` is ``<conversation id>:<ts>``.

- ``thread_ts`` different from ``ts`` -> ``reply_to`` = the parent's id.
- ``edited`` -> the message is kept as exported; the edit time is in platform_ids.
- ``message_changed`` -> a text record with ``original_id``; ``message_deleted``
  and ``tombstone`` -> msg_type "recall" (``original_id`` where Slack gives it).
- joins, leaves, topic / purpose / name changes, bot_add ... -> msg_type "system".
- ``files``: the first file fills the attachment columns, each further file is its
  own row ``<id>/<n>``; files found inside the export are hashed (SHA-256).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from itertools import chain, repeat
from typing import Any

import orjson
import polars as pl

from investigator.importers._container import Container, member_names
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import (BadRecord, Collector, as_int, kind_from_mime, load_json, raw_bytes_many,
                                             raw_sha256)
from investigator.schema import sha256_hex_column

NAME = "slack"

_DAY = re.compile(r"^(?:(.+)/)?([^/]+)/(\d{4}-\d{2}-\d{2})\.json$")
_META = {"channels.json": "channel", "groups.json": "channel", "dms.json": "direct", "mpims.json": "group"}
_SYSTEM = frozenset({
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name", "channel_archive",
    "channel_unarchive", "group_join", "group_leave", "group_topic", "group_purpose", "group_name",
    "group_archive", "group_unarchive", "bot_add", "bot_remove", "pinned_item", "unpinned_item",
    "reminder_add", "channel_convert_to_private", "channel_convert_to_public", "huddle_thread",
    "channel_posting_permissions", "sh_room_created", "joiner_notification",
})
_TS = re.compile(r"^(\d{1,12})(?:\.(\d{1,6}))?$")


def _prefix(names: list[str]) -> str | None:
    """The folder holding users.json / channels.json ('' at the root), or None."""
    for name in names:
        path = PurePosixPath(name)
        if path.name in ("channels.json", "users.json") and len(path.parts) <= 2:
            return "" if len(path.parts) == 1 else path.parts[0] + "/"
    return None


def sniff(path: Path, head: bytes) -> bool:
    """A zip or folder with users.json / channels.json and ``<conversation>/YYYY-MM-DD.json`` files."""
    names = member_names(path, head)
    if not names:
        return False
    prefix = _prefix(names)
    return prefix is not None and any(_DAY.match(n) for n in names)


def _ts_us(ts: Any) -> int:
    match = _TS.match(ts) if isinstance(ts, str) else None
    if match is None:
        raise BadRecord("a Slack 'ts' such as '1452845865.000008'")
    return int(match.group(1)) * 1_000_000 + int((match.group(2) or "0").ljust(6, "0"))


def _user_name(user: dict[str, Any]) -> str | None:
    profile = user.get("profile") or {}
    for value in (user.get("real_name"), profile.get("real_name"), profile.get("display_name"), user.get("name")):
        if isinstance(value, str) and value:
            return value
    return None


class _Export:
    """What the metadata files say: people, conversations, and files shipped in the export."""

    def __init__(self, box: Container, prefix: str) -> None:
        self.users: dict[str, str] = {}
        self.conversations: dict[str, tuple[str, str | None, str, list[str]]] = {}
        if box.has(prefix + "users.json"):
            for user in _list(box, prefix + "users.json"):
                if isinstance(user, dict) and isinstance(user.get("id"), str):
                    name = _user_name(user)
                    if name:
                        self.users[user["id"]] = name
        for meta, ctype in _META.items():
            if not box.has(prefix + meta):
                continue
            for conv in _list(box, prefix + meta):
                if not isinstance(conv, dict) or not isinstance(conv.get("id"), str):
                    continue
                name = conv.get("name") if isinstance(conv.get("name"), str) else None
                members = [m for m in conv.get("members") or [] if isinstance(m, str)]
                # Day folders are named after the channel / mpim name, or the id for DMs.
                folder = name if name and ctype != "direct" else conv["id"]
                self.conversations[folder] = (conv["id"], name, ctype, members)
        # Files inside the export (slackdump: __uploads/<file id>/<name>; others: attachments/).
        self.files: dict[str, str] = {}
        for member in box.members():
            parts = PurePosixPath(member).parts
            if len(parts) >= 3 and parts[-3] in ("__uploads", "attachments"):
                self.files.setdefault(parts[-2], member)


def _list(box: Container, member: str) -> list[Any]:
    data = load_json(box.read(member), box.name, box.position(member, ""))
    if not isinstance(data, list):
        raise box.error(member, "$", "a JSON array")
    return data


def _attachment(box: Container, export: _Export, item: dict[str, Any], cache: dict[str, tuple[str, int]]
                ) -> dict[str, Any]:
    file_id = item.get("id") if isinstance(item.get("id"), str) else None
    name = item.get("name") if isinstance(item.get("name"), str) else item.get("title")
    mime = item.get("mimetype") if isinstance(item.get("mimetype"), str) else item.get("filetype")
    out: dict[str, Any] = {
        "attachment_name": name if isinstance(name, str) else None,
        "attachment_type": mime if isinstance(mime, str) and mime else None,
        "attachment_size": as_int(item.get("size")),
    }
    member = export.files.get(file_id) if file_id else None
    if member is not None:
        if member not in cache:
            data = box.read(member)
            cache[member] = (hashlib.sha256(data).hexdigest(), len(data))
        out["attachment_sha256"], size = cache[member]
        out["attachment_size"] = out["attachment_size"] or size
    return out


def _message(m: dict[str, Any], conv_id: str, export: _Export) -> tuple[dict[str, Any], dict[str, Any]]:
    ts = m.get("ts")
    us = _ts_us(ts)
    subtype = m.get("subtype")
    body = m
    rec: dict[str, Any] = {"message_id": f"{conv_id}:{ts}", "ts": us}
    ids: dict[str, Any] = {"channel": conv_id, "ts": ts}
    if subtype == "message_changed" and isinstance(m.get("message"), dict):
        body = m["message"]
        rec["original_id"] = f"{conv_id}:{body.get('ts')}" if isinstance(body.get("ts"), str) else None
        rec["msg_type"] = "text"
    elif subtype == "message_deleted":
        deleted = m.get("deleted_ts")
        rec["original_id"] = f"{conv_id}:{deleted}" if isinstance(deleted, str) else None
        rec["msg_type"] = "recall"
        previous = m.get("previous_message")
        body = previous if isinstance(previous, dict) else m
    elif subtype == "tombstone":
        rec["msg_type"] = "recall"
    elif isinstance(subtype, str) and (subtype in _SYSTEM or subtype.endswith(("_join", "_leave"))):
        rec["msg_type"] = "system"
    user = body.get("user") if isinstance(body.get("user"), str) else None
    bot = body.get("bot_id") if isinstance(body.get("bot_id"), str) else None
    rec["sender_id"] = user or bot
    name = export.users.get(user) if user else None
    if name is None:
        found = body.get("user_profile")
        profile: dict[str, Any] = found if isinstance(found, dict) else {}
        found = body.get("bot_profile")
        bot_profile: dict[str, Any] = found if isinstance(found, dict) else {}
        for value in (profile.get("real_name"), body.get("username"), bot_profile.get("name")):
            if isinstance(value, str) and value:
                name = value
                break
    rec["sender_name"] = name
    text = body.get("text")
    if not isinstance(text, str):
        text = None
    if not text and isinstance(body.get("attachments"), list):
        # Bot posts carry their content in attachments; the fallback is what Slack shows.
        fallbacks = [a.get("fallback") for a in body["attachments"] if isinstance(a, dict)]
        text = "\n".join(f for f in fallbacks if isinstance(f, str)) or text
    rec["text"] = text
    thread = body.get("thread_ts")
    if isinstance(thread, str) and thread != ts:
        rec["reply_to"] = f"{conv_id}:{thread}"
        ids["thread_ts"] = thread
    for key in ("client_msg_id", "user", "bot_id", "subtype"):
        if isinstance(body.get(key), str):
            ids[key] = body[key]
    edited = body.get("edited")
    if isinstance(edited, dict) and isinstance(edited.get("ts"), str):
        ids["edited_ts"] = edited["ts"]
    return rec, ids


# Messages the column-wise path leaves to the record-wise one (they change other records or carry files).
_SLOW_SUBTYPES = frozenset({"message_changed", "message_deleted"})
_ASCII_TS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")
# platform_ids parts built column-wise, in sorted key order (channel and ts are always there).
_ID_KEYS = ("bot_id", "channel", "client_msg_id", "edited_ts", "subtype", "thread_ts", "ts", "user")
# Columns taken from the messages in Python; message_id, sender_id, reply_to and raw_sha256 are made in polars.
_COLUMNS = ("ts", "sender_name", "text", "msg_type", "recipients",
            *(f"id_{key}" for key in _ID_KEYS if key not in ("channel", "ts")))
_JSON_ESCAPES = r'[\\"\x00-\x1f]'  # what orjson escapes in a string; nothing else is escaped
_NONE = type(None)
# Rows handed to polars at a time: bounds the Python strings held at once (a whole export's would
# be several times the size of its frame) and copies them out while they are recent in the caches.
_FLUSH_ROWS = 20_000


class _Columns:
    """Rows of plain messages, column by column, for whole day files (the fast path of :func:`parse`).

    A day file goes this way only if every message is a JSON object with an
    ASCII ``ts``, no files and no edit/delete wrapper, and none repeats an id;
    otherwise :func:`_add_records` reads it as before. Both give the same rows.

    ``check_ids=False`` leaves the id check to the caller, who must read the
    export again with ``check_ids=True`` if any id repeats in the result (see
    :func:`parse`): the Collector's duplicate rule then applies file by file.
    """

    def __init__(self, rows: Collector, *, check_ids: bool) -> None:
        self.rows = rows
        self.check_ids = check_ids
        self._clear()

    def _clear(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
        self.raw: list[bytes] = []  # the bytes raw_sha256 hashes, hashed in one compiled call at flush
        # One entry per day file; polars repeats them over the file's rows.
        self.files: dict[str, list[Any]] = {name: [] for name in (
            "conversation_id", "conversation_name", "conversation_type", "source_file", "source_sha256", "where",
            "count")}

    def add_day(self, messages: list[Any], conv: tuple[str, str | None, str, list[str]], export: _Export,
                file_name: str, sha: str, where: str) -> bool:
        """Add a day file's messages; False (nothing added) when the file needs the record-wise path."""
        conv_id, conv_name, conv_type, members = conv
        built = _plain_day(messages, members if conv_type in ("direct", "group") else [], export)
        if built is None:
            return False
        columns, keys = built
        try:
            raw = raw_bytes_many(messages, depth=2, keys=keys)
        except BadRecord:
            return False
        if self.check_ids:
            sha256 = hashlib.sha256
            prefix = conv_id + ":"
            if not self.rows.claim(list(map(prefix.__add__, columns["ts"] or ())),
                                   [sha256(piece).hexdigest() for piece in raw]):
                return False
        n = len(messages)
        for name, values in self.cols.items():
            values.extend(columns.get(name) or repeat(None, n))
        self.raw.extend(raw)
        for name, value in (("conversation_id", conv_id), ("conversation_name", conv_name),
                            ("conversation_type", conv_type), ("source_file", file_name), ("source_sha256", sha),
                            ("where", where), ("count", n)):
            self.files[name].append(value)
        if len(self.raw) >= _FLUSH_ROWS:
            self.flush()
        return True

    def flush(self) -> None:
        """Hand the collected rows to the Collector as one frame."""
        if not self.cols["ts"]:
            return
        files = pl.DataFrame(self.files, schema={**{name: pl.String() for name in self.files}, "count": pl.Int64()})
        files = files.with_columns(first=pl.col("count").cum_sum() - pl.col("count"))
        per_row = files.select(pl.exclude("count").repeat_by(pl.col("count")).explode())
        rows = pl.DataFrame(self.cols, schema={**{name: pl.String() for name in _COLUMNS},
                                               "recipients": pl.List(pl.String())})
        raw = sha256_hex_column(pl.Series("raw_sha256", self.raw, dtype=pl.Binary()))
        frame = pl.concat([rows, per_row], how="horizontal").with_columns(
            raw, index=pl.int_range(pl.len(), dtype=pl.Int64) - pl.col("first"))
        self._clear()
        seconds = pl.col("ts").str.split_exact(".", 1)
        user = pl.col("id_user")
        frame = frame.with_columns(
            platform_ids=_platform_ids(frame),
            message_id=pl.concat_str(pl.col("conversation_id"), pl.lit(":"), pl.col("ts")),
            # _message: ``user or bot_id`` (an empty user is no sender)
            sender_id=pl.when(user.is_not_null() & (user != "")).then(user).otherwise(pl.col("id_bot_id")),
            reply_to=pl.concat_str(pl.col("conversation_id"), pl.lit(":"), pl.col("id_thread_ts")),
            ts=seconds.struct.field("field_0").cast(pl.Int64) * 1_000_000
            + seconds.struct.field("field_1").str.pad_end(6, "0").cast(pl.Int64).fill_null(0),
            source=pl.lit(NAME),
            source_position=pl.concat_str(pl.col("where"), pl.lit("["), pl.col("index").cast(pl.String), pl.lit("]")),
        )
        self.rows.add_frame(frame.drop("where", "index", "first", *(c for c in frame.columns if c.startswith("id_"))))


def _platform_ids(frame: pl.DataFrame) -> pl.Series:
    """``orjson.dumps(ids, option=OPT_SORT_KEYS)`` text of each row's platform ids, built column-wise.

    Rows with a value orjson would escape are dumped by orjson itself
    (``ts`` is ASCII digits and a dot: never escaped).
    """
    names = {key: ("conversation_id" if key == "channel" else key if key == "ts" else f"id_{key}")
             for key in _ID_KEYS}
    parts: list[pl.Expr] = [pl.lit("{")]
    for key, name in names.items():
        lead = "" if key in ("bot_id", "channel") else ","
        tail = '",' if key == "bot_id" else '"'
        # null when the value is (the key is left out); concat_str below skips it
        parts.append(pl.concat_str(pl.lit(f'{lead}"{key}":"'), pl.col(name), pl.lit(tail)))
    parts.append(pl.lit("}"))
    escapes = pl.any_horizontal(pl.col(name).str.contains(_JSON_ESCAPES).fill_null(False)
                                for key, name in names.items() if key != "ts")
    out = frame.select(text=pl.concat_str(parts, ignore_nulls=True), escape=escapes)
    texts = out["text"]
    if out["escape"].any():
        rows = out["escape"].arg_true()
        fixed = []
        for row in frame.select(names.values())[rows].iter_rows():
            ids = {key: value for key, value in zip(names, row) if value is not None}
            fixed.append(orjson.dumps(ids, option=orjson.OPT_SORT_KEYS).decode())
        texts = texts.scatter(rows, pl.Series(fixed, dtype=pl.String()))
    return texts


def _strings(values: list[Any]) -> list[Any]:
    """``values`` with everything but strings replaced by None (isinstance(v, str) in _message)."""
    if set(map(type, values)) <= {str, _NONE}:
        return values
    return [v if type(v) is str else None for v in values]


def _plain_day(messages: list[Any], members: list[str], export: _Export
               ) -> tuple[dict[str, list[Any] | None], set[str]] | None:
    """The columns (as _message and _add_records give them) of a day file of plain messages, and the set
    of keys of its messages; or None. A column no message has a key for is left out (all null)."""
    if not set(map(type, messages)) <= {dict}:
        return None
    n = len(messages)
    get = dict.get
    keys = set(chain.from_iterable(messages))

    def column(key: str) -> list[Any] | None:
        return list(map(get, messages, repeat(key, n))) if key in keys else None

    for key in ("files", "file"):
        values = column(key)
        if values is not None and not set(map(type, values)) <= {_NONE}:
            return None
    ts = column("ts")
    if ts is None or not set(map(type, ts)) <= {str} or not all(map(_ASCII_TS.fullmatch, ts)):
        return None
    subtypes = column("subtype")
    if subtypes is None or set(map(type, subtypes)) <= {_NONE}:
        types = ["text"] * n
    else:
        subtypes = _strings(subtypes)
        types = []
        for subtype in subtypes:
            if subtype is None:
                types.append("text")
            elif subtype in _SLOW_SUBTYPES:
                return None
            elif subtype == "tombstone":
                types.append("recall")
            elif subtype in _SYSTEM or subtype.endswith(("_join", "_leave")):
                types.append("system")
            else:
                types.append("text")
    found = column("user")
    users = [None] * n if found is None else _strings(found)
    found = column("bot_id")
    bots = None if found is None else _strings(found)
    known = export.users
    names = list(map(known.get, users)) if "" not in known else [known.get(u) if u else None for u in users]
    if None in names:
        for i, name in enumerate(names):
            if name is None:
                m = messages[i]
                profile = m.get("user_profile") if type(m.get("user_profile")) is dict else {}
                bot_profile = m.get("bot_profile") if type(m.get("bot_profile")) is dict else {}
                for value in (profile.get("real_name"), m.get("username"), bot_profile.get("name")):
                    if type(value) is str and value:
                        names[i] = value
                        break
    found = column("text")
    texts = [None] * n if found is None else _strings(found)
    if not all(texts) and "attachments" in keys:
        for i, text in enumerate(texts):
            if not text and type(messages[i].get("attachments")) is list:
                # Bot posts carry their content in attachments; the fallback is what Slack shows.
                fallbacks = [a.get("fallback") for a in messages[i]["attachments"] if type(a) is dict]
                texts[i] = "\n".join(f for f in fallbacks if type(f) is str) or text
    threads = column("thread_ts")
    if threads is not None and not set(map(type, threads)) <= {_NONE}:
        threads = [t if type(t) is str and t != own else None for t, own in zip(threads, ts)]
    edits = column("edited")
    if edits is not None and not set(map(type, edits)) <= {_NONE}:
        edits = [e["ts"] if type(e) is dict and type(e.get("ts")) is str else None for e in edits]
    recipients: list[Any] | None = None
    if members:
        # the sender_id polars makes in _Columns.flush: ``user or bot_id``
        senders = [u or None for u in users] if bots is None else [u or b for u, b in zip(users, bots)]
        others: dict[str | None, list[str]] = {}
        for sender in set(senders):
            others[sender] = [u for u in members if u != sender]
        recipients = list(map(others.__getitem__, senders))
    found = column("client_msg_id")
    return {
        "ts": ts, "sender_name": names, "text": texts, "msg_type": types, "recipients": recipients,
        "id_bot_id": bots, "id_client_msg_id": None if found is None else _strings(found), "id_edited_ts": edits,
        "id_subtype": subtypes, "id_thread_ts": threads, "id_user": users,
    }, keys


def _add_records(rows: Collector, box: Container, export: _Export, member: str, messages: list[Any],
                 conv: tuple[str, str | None, str, list[str]], file_name: str, sha: str,
                 cache: dict[str, tuple[str, int]]) -> None:
    """Add a day file's messages one record at a time (any message shape; strict / lenient errors)."""
    conv_id, conv_name, conv_type, members = conv
    for index, m in enumerate(messages):
        position = box.position(member, f"[{index}]")
        try:
            if not isinstance(m, dict):
                raise BadRecord("a JSON object for each message")
            raw = raw_sha256(m, depth=2)
            rec, ids = _message(m, conv_id, export)
            listed = m.get("files")
            files: list[Any] = listed if isinstance(listed, list) else []
            if isinstance(m.get("file"), dict):
                files = [m["file"], *files]
            atts = [_attachment(box, export, f, cache) for f in files if isinstance(f, dict)]
        except BadRecord as bad:
            rows.bad(file_name, position, bad.expected)
            continue
        rec["conversation_id"] = conv_id
        rec["conversation_name"] = conv_name
        rec["conversation_type"] = conv_type
        if conv_type in ("direct", "group") and members:
            rec["recipients"] = [u for u in members if u != rec.get("sender_id")]
        if atts:
            rec.update(atts[0])
            rec.setdefault("msg_type", "file" if m.get("subtype") == "file_share" and
                           kind_from_mime(atts[0]["attachment_type"]) == "file"
                           else kind_from_mime(atts[0]["attachment_type"]))
            ids["files"] = [f.get("id") for f in files if isinstance(f, dict)]
        rec.setdefault("msg_type", "text")
        rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw, platform_ids=ids)
        for n, extra in enumerate(atts[1:], start=1):
            row = {key: rec.get(key) for key in ("ts", "conversation_id", "conversation_name",
                                                  "conversation_type", "sender_id", "sender_name",
                                                  "recipients", "reply_to")}
            row.update(extra)
            row["message_id"] = f"{rec['message_id']}/{n}"
            row["msg_type"] = kind_from_mime(extra["attachment_type"])
            rows.add(row, file=file_name, sha=sha, position=position, raw_sha=raw,
                     platform_ids={**ids, "file_index": n})


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read a Slack export folder or zip.

    Raises ImportFormatError for a hostile or unreadable container, invalid JSON,
    or (strict mode) a message without a valid ``ts``.
    """
    # Ids are checked once, on the result, instead of file by file: a repeated id
    # (or a duplicate the record-wise path skipped) means reading again with the
    # per-file check, which decides what the duplicate rule keeps. Up to the first
    # repeat both readings are the same, so an error raised is the same error.
    result = _parse(path, options, check_ids=False)
    ids = result.messages["message_id"]
    if ids.n_unique() == ids.len() and not any(s.reason.startswith("duplicate") for s in result.skipped):
        return result
    return _parse(path, options, check_ids=True)


def _parse(path: Path, options: ImportOptions, *, check_ids: bool) -> ImportResult:
    box = Container.open(path)
    rows = Collector("messages", source=NAME, lenient=options.lenient)
    try:
        prefix = _prefix(box.members())
        if prefix is None or box.kind == "file":
            raise box.error(box.name, "", "a Slack export with users.json or channels.json")
        export = _Export(box, prefix)
        cache: dict[str, tuple[str, int]] = {}
        columns = _Columns(rows, check_ids=check_ids)
        for member in box.members():
            match = _DAY.match(member)
            if match is None or (match.group(1) + "/" if match.group(1) else "") != prefix:
                continue
            folder = match.group(2)
            conv_id, conv_name, conv_type, members = export.conversations.get(folder, (folder, folder, "other", []))
            if conv_name is None and conv_type == "direct":
                conv_name = ", ".join(export.users.get(u, u) for u in members) or None
            conv = (conv_id, conv_name, conv_type, members)
            messages = _list(box, member)
            file_name, sha = box.provenance(member)
            if columns.add_day(messages, conv, export, file_name, sha, box.position(member, "")):
                continue
            columns.flush()
            _add_records(rows, box, export, member, messages, conv, file_name, sha, cache)
        columns.flush()
        return finish(box, NAME, messages=rows)
    finally:
        box.close()
