"""Building normalized frames: rows, times, raw hashes, text decoding and JSON loading.

Every parser collects rows into a :class:`Collector` and turns it into frames once
(columns as Python lists, one ``pl.DataFrame`` at the end, which is what keeps the
parsers fast):

    >>> rows = Collector("messages", source="jsonl", lenient=False)
    >>> rows.add({"message_id": "1", "ts": 0, "text": "hi"},
    ...          file="a.jsonl", sha="00", position="line 1", raw_sha="00")
    >>> rows.frame().height
    1

Malformed records go through :meth:`Collector.bad`, which raises
ImportFormatError in strict mode and records a Skipped in lenient mode.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import polars as pl

from investigator import schema
from investigator.errors import ImportFormatError

MAX_JSON_DEPTH = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The time range ingest accepts (vault/ingest.py EARLIEST <= ts < LATEST): importers refuse the same range, so
# that the error names the file and position, and the error text names the range.
_MIN_US = int((datetime(1990, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()) * 1_000_000
_MAX_US = int((datetime(2100, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()) * 1_000_000 - 1
TS_RANGE = "from 1990-01-01T00:00:00Z to before 2100-01-01T00:00:00Z (the range ingest accepts)"


class BadRecord(Exception):
    """Internal: a record does not have the expected shape. Carries only ``expected``."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


@dataclass(frozen=True)
class Skip:
    position: str
    reason: str


class Collector:
    """Column lists for one record kind, plus the skipped records."""

    def __init__(self, kind: str, *, source: str, lenient: bool) -> None:
        self.kind = kind
        self.source = source
        self.lenient = lenient
        self.fields = tuple(schema.full_schema(kind))
        # Whole records; polars builds the columns in Rust at the end (faster than per-field appends).
        self.records: list[dict[str, Any]] = []
        # Earlier rows, in order: finished record lists and ready-made frames (add_frame).
        self._segments: list[list[dict[str, Any]] | pl.DataFrame] = []
        self._done = 0
        self.skipped: list[Skip] = []
        self._id_field = schema.id_field(kind)
        self._seen: dict[str, str] = {}

    def __len__(self) -> int:
        return self._done + len(self.records)

    def claim(self, ids: list[str], raw_shas: list[str]) -> bool:
        """Register a batch of new, distinct ids with their raw hashes, as :meth:`add` would.

        Returns False, registering nothing, when an id repeats within the batch or
        was seen before: the caller then adds those records one by one, so the
        duplicate rule of :meth:`add` applies.
        """
        seen = self._seen
        if len(set(ids)) != len(ids) or not seen.keys().isdisjoint(ids):
            return False
        seen.update(zip(ids, raw_shas))
        return True

    def add_frame(self, frame: pl.DataFrame) -> None:
        """Append rows built column-wise: provenance filled in, ``ts`` as Int64 microseconds.

        The ids must have been registered with :meth:`claim`, or the caller checks
        them on the result (slack.parse). Columns not in the frame are null; row
        order with :meth:`add` is kept.
        """
        if frame.height == 0:
            return
        if self.records:
            self._segments.append(self.records)
            self._done += len(self.records)
            self.records = []
        self._segments.append(frame)
        self._done += frame.height

    def add(self, record: dict[str, Any], *, file: str, sha: str, position: str, raw_sha: str,
            platform_ids: dict[str, Any] | None = None) -> None:
        """Append one record. ``ts`` is integer microseconds since the epoch (UTC).

        A record whose id and raw hash repeat an earlier one (an export listing a
        message twice) is noted in ``skipped`` instead of being added again.
        """
        record_id = record.get(self._id_field)
        if record_id is not None:
            if self._seen.get(record_id) == raw_sha:
                self.note(position, "duplicate of an identical earlier record with the same id")
                return
            self._seen[record_id] = raw_sha
        # Normalized inputs (csv, jsonl) may name their own source platform; keep
        # it, so one message in two normalized files hashes the same.
        if not record.get("source"):
            record["source"] = self.source
        record["source_file"] = file
        record["source_sha256"] = sha
        record["source_position"] = position
        record["raw_sha256"] = raw_sha
        if platform_ids is not None:
            record["platform_ids"] = orjson.dumps(platform_ids, option=orjson.OPT_SORT_KEYS).decode()
        self.records.append(record)

    def bad(self, file: str, position: str, expected: str) -> None:
        """A malformed record: raise (strict) or remember it (lenient)."""
        if not self.lenient:
            raise ImportFormatError(file, position, expected)
        self.skipped.append(Skip(position, f"expected {expected}"))

    def note(self, position: str, reason: str) -> None:
        """Record a deliberately skipped (not malformed) input, in both modes."""
        self.skipped.append(Skip(position, reason))

    def frame(self) -> pl.DataFrame:
        """The collected rows as a frame with exactly the importer-side schema."""
        target = schema.full_schema(self.kind)
        frame_schema = {name: (pl.Int64() if name == "ts" else dtype) for name, dtype in target.items()}
        segments = [s for s in (*self._segments, self.records) if len(s)]
        if not segments:
            frame = pl.DataFrame(self.records, schema=frame_schema, orient="row")
        else:
            parts = []
            for segment in segments:
                if isinstance(segment, list):
                    parts.append(pl.DataFrame(segment, schema=frame_schema))
                else:
                    parts.append(segment.select(
                        pl.col(name).cast(dtype, strict=True) if name in segment.columns
                        else pl.lit(None, dtype=dtype).alias(name)
                        for name, dtype in frame_schema.items()))
            frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")
        frame = frame.with_columns(pl.col("ts").cast(schema.UTC_US))
        return schema.conform(frame, self.kind)


# -- raw hashes --------------------------------------------------------------------------------


def _check(obj: Any, depth: int) -> bool:
    """Raise BadRecord past MAX_JSON_DEPTH; return True if orjson's sorted output is RFC 8785."""
    if depth > MAX_JSON_DEPTH:
        raise BadRecord(f"JSON nested at most {MAX_JSON_DEPTH} levels deep")
    kind = type(obj)
    if kind is str or obj is None or kind is bool:
        return True
    if kind is int:
        return -(2**53) <= obj <= 2**53
    if kind is dict:
        ok = True
        for key, value in obj.items():
            # RFC 8785 sorts keys by UTF-16 units; that differs from code-point order
            # only at and above U+E000.
            if key and not key.isascii() and max(key) >= "\ue000":
                ok = False
            if not _check(value, depth + 1):
                ok = False
        return ok
    if kind is list:
        ok = True
        for value in obj:
            if not _check(value, depth + 1):
                ok = False
        return ok
    return False  # floats: ECMAScript number formatting differs from orjson's


def raw_sha256(obj: Any, *, depth: int = 0) -> str:
    """Hex SHA-256 of the RFC 8785 canonical form of a raw JSON object.

    Fast path: orjson with sorted keys, which is byte-identical to RFC 8785 for
    objects without floats, unsafe integers or keys at/above U+E000 (checked
    first). Otherwise schema.canonical_json; integers outside the RFC 8785 domain
    fall back to orjson's sorted form. Raises BadRecord when nested too deeply.
    """
    return hashlib.sha256(raw_bytes(obj, depth=depth)).hexdigest()


def raw_bytes(obj: Any, *, depth: int = 0) -> bytes:
    """The bytes :func:`raw_sha256` hashes. Raises BadRecord when nested too deeply."""
    if _check(obj, depth):
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    try:
        return schema.canonical_json(obj)
    except Exception:  # rfc8785 refuses integers beyond 2**53: keep a stable hash anyway
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


_SAFE_LEAVES = frozenset({str, bool, type(None)})
# A list element that separates the objects in one orjson dump of a whole batch.
_SPLIT = "\x00\uffff\x00"
_SPLIT_BYTES = b',"\\u0000\xef\xbf\xbf\\u0000",'


def _flat_and_plain(objs: list[dict[str, Any]], keys: set[str] | None = None) -> bool:
    """True if no object holds containers, numbers or keys at/above U+E000 (then _check is True for all)."""
    leaves = set(map(type, chain.from_iterable(map(dict.values, objs))))
    if not leaves <= _SAFE_LEAVES:
        return False
    text = "".join(chain.from_iterable(objs) if keys is None else keys)
    return text.isascii() or max(text) < "\ue000"


def _sorted_dumps(objs: list[dict[str, Any]]) -> list[bytes]:
    """``orjson.dumps(obj, option=OPT_SORT_KEYS)`` of each object, from one dump of the whole batch.

    The objects are dumped as one list with a separator string between them and
    the output is split there. An occurrence of the separator is a list element
    equal to _SPLIT (an unescaped quote after a comma opens a string; a list
    element is the only string followed by a comma there), so the split is exact
    whenever it yields one piece per object; otherwise each object is dumped alone.
    """
    if len(objs) < 2:
        return [orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) for obj in objs]
    spaced: list[Any] = [_SPLIT] * (2 * len(objs) - 1)
    spaced[::2] = objs
    pieces = orjson.dumps(spaced, option=orjson.OPT_SORT_KEYS)[1:-1].split(_SPLIT_BYTES)
    if len(pieces) != len(objs):  # some object holds the separator itself
        return [orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) for obj in objs]
    return pieces


def raw_sha256_many(objs: list[dict[str, Any]], *, depth: int = 0) -> list[str]:
    """``[raw_sha256(obj, depth=depth) for obj in objs]`` for JSON objects, computed batch-wise.

    Same bytes are hashed as by :func:`raw_sha256` (see :func:`raw_bytes_many`).
    Raises BadRecord when an object is nested too deeply.
    """
    sha256 = hashlib.sha256
    return [sha256(piece).hexdigest() for piece in raw_bytes_many(objs, depth=depth)]


def raw_bytes_many(objs: list[dict[str, Any]], *, depth: int = 0, keys: set[str] | None = None) -> list[bytes]:
    """``[raw_bytes(obj, depth=depth) for obj in objs]`` for JSON objects, computed batch-wise.

    What is saved is the per-object type walk (one pass over all values when
    every object is flat) and the per-object orjson call. ``keys``, if given, is
    the set of every key of every object (the caller has it already). Raises
    BadRecord when an object is nested too deeply.
    """
    if depth < MAX_JSON_DEPTH and _flat_and_plain(objs, keys):
        plain = None
    else:
        plain = [_check(obj, depth) for obj in objs]
    try:
        pieces = _sorted_dumps(objs)
    except orjson.JSONEncodeError:  # nothing orjson.loads returns, but keep the reference path for it
        return [raw_bytes(obj, depth=depth) for obj in objs]
    if plain is None:
        return pieces
    return [piece if ok else raw_bytes(obj, depth=depth) for obj, piece, ok in zip(objs, pieces, plain)]


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


# -- decoding ----------------------------------------------------------------------------------


def decode_text(data: bytes, file: str, *, utf8_only: bool = False) -> tuple[str, str]:
    """Decode ``data`` as UTF-8 (with or without BOM), else GB18030; return ``(text, encoding)``.

    Raises ImportFormatError naming the encodings tried.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        if utf8_only:
            raise ImportFormatError(file, f"byte {exc.start}", "UTF-8 text") from None
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise ImportFormatError(file, f"byte {exc.start}", "text in UTF-8 or GB18030") from None


def first_line(head: bytes) -> bytes:
    """The first non-blank line of a file's head (BOM and leading blanks skipped), for sniffing."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0].strip()


def first_json_object(head: bytes) -> dict[str, Any] | None:
    """The JSON object on the first line of a file's head, or None (for sniffing JSON-lines formats)."""
    first = first_line(head)
    if not first.startswith(b"{"):
        return None
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def load_json(data: bytes, file: str, position: str = "") -> Any:
    """Parse a whole JSON document (UTF-8, BOM tolerated) with orjson.

    Raises ImportFormatError for invalid JSON (naming the line, column and character
    offset of the syntax error) or invalid UTF-8. orjson has its own
    recursion limit, so deep nesting cannot crash the interpreter; record depth is
    capped again at MAX_JSON_DEPTH by :func:`raw_sha256`.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "utf-8" in message.lower() or "surrogate" in message.lower():
            raise ImportFormatError(file, position, "UTF-8 encoded JSON") from None
        if "recursion" in message.lower():
            raise ImportFormatError(file, position, f"JSON nested at most {MAX_JSON_DEPTH} levels deep") from None
        # orjson (like json) reports where the syntax broke; the character offset counts after a BOM.
        where = f"line {exc.lineno}, column {exc.colno} (character {exc.pos})"
        raise ImportFormatError(file, f"{position} {where}" if position else where, "valid JSON") from None


# -- times -------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for ``name``. Raises ImportFormatError for an unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImportFormatError("options", "tz", "an IANA time zone name such as 'Asia/Shanghai'") from exc


def dt_to_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def local_to_us(value: datetime, tz: str) -> int:
    """Microseconds since the epoch of a naive local time in ``tz`` (earliest of an ambiguous pair)."""
    return dt_to_us(value.replace(tzinfo=zone(tz)))


def checked_us(us: int) -> int:
    """``us`` if it lies in TS_RANGE (1990-01-01 to before 2100-01-01 UTC); else BadRecord naming that range."""
    if not _MIN_US <= us <= _MAX_US:
        raise BadRecord(f"a timestamp {TS_RANGE}")
    return us


def epoch_to_us(value: Any) -> int:
    """Epoch seconds, milliseconds or microseconds (number or numeric string) to microseconds.

    The unit is inferred from the magnitude (seconds up to 1e11, ms up to 1e14).
    Raises BadRecord for anything else.
    """
    if isinstance(value, bool):
        raise BadRecord("an epoch timestamp")
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            raise BadRecord("an epoch timestamp") from None
    elif isinstance(value, (int, float)):
        number = value
    else:
        raise BadRecord("an epoch timestamp")
    if number != number or number in (float("inf"), float("-inf")):
        raise BadRecord("an epoch timestamp")
    magnitude = abs(number)
    if magnitude < 1e11:
        us = round(number * 1_000_000)
    elif magnitude < 1e14:
        us = round(number * 1_000)
    else:
        us = round(number)
    return checked_us(int(us))


_ISO_FIX = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                      r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$")


def iso_to_us(value: Any, tz: str) -> int:
    """ISO 8601 (or ``YYYY/MM/DD HH:MM[:SS]``) text to microseconds; no offset means ``tz``.

    Raises BadRecord when the text is not such a timestamp.
    """
    if not isinstance(value, str):
        raise BadRecord("an ISO 8601 timestamp")
    match = _ISO_FIX.match(value.strip())
    if match is None:
        raise BadRecord("an ISO 8601 timestamp")
    year, month, day, hour, minute, second, frac, offset = match.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    except ValueError:
        raise BadRecord("a valid calendar date and time") from None
    if offset is None:
        return checked_us(local_to_us(naive, tz))
    if offset in ("Z", "z"):
        return checked_us(dt_to_us(naive.replace(tzinfo=timezone.utc)))
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise BadRecord("a UTC offset such as +08:00")
    shift = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return checked_us(dt_to_us(naive.replace(tzinfo=shift)))


def any_ts_to_us(value: Any, tz: str) -> int:
    """An ISO 8601 string or epoch seconds / ms (number or digits) to microseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return epoch_to_us(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        return epoch_to_us(value)
    return iso_to_us(value, tz)


def derived_id(*parts: Any) -> str:
    """A deterministic id for platforms without one: hex SHA-256 of the parts, 32 chars."""
    data = orjson.dumps([p if isinstance(p, (str, int)) or p is None else str(p) for p in parts])
    return hashlib.sha256(data).hexdigest()[:32]


def as_str(value: Any) -> str | None:
    """``value`` as text (ints and floats included), or None for null / empty."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise BadRecord("a string or number")


def as_int(value: Any) -> int | None:
    """``value`` as an integer, or None for null / empty. Raises BadRecord otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRecord("an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise BadRecord("an integer")


_EXT_KIND = {
    "image": ("jpg", "jpeg", "png", "gif", "webp", "heic", "bmp", "tif", "tiff"),
    "video": ("mp4", "mov", "avi", "mkv", "3gp", "webm"),
    "voice": ("opus", "ogg", "m4a", "mp3", "aac", "amr", "wav", "silk"),
}


def kind_from_name(name: str) -> str:
    """msg_type for an attachment file name, by extension ("file" when unknown)."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for kind, exts in _EXT_KIND.items():
        if ext in exts:
            return kind
    return "file"


def kind_from_mime(mime: str | None) -> str:
    """msg_type for a MIME type ("file" when unknown)."""
    if not mime:
        return "file"
    major = mime.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "voice"}.get(major, "file")
