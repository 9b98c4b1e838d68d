"""Normalized record schemas, canonical record bytes and record hashes.

Every importer produces frames with these columns; every loader returns them.

    >>> import polars as pl
    >>> from investigator import schema
    >>> frame = schema.empty_messages()
    >>> sorted(schema.MESSAGE_CONTENT_FIELDS)[:3]
    ['attachment_md5', 'attachment_name', 'attachment_sha256']

Times are UTC with microsecond precision (``ts``). A record's *canonical bytes*
are the RFC 8785 (JSON Canonicalization Scheme) serialization of its content
fields only, so the same message seen in two overlapping exports hashes the
same; provenance columns (file, position, raw hash, batch) are kept beside the
record and are not part of its hash (docs/archive-format.md, "Records").
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import polars as pl
import rfc8785

SCHEMA_VERSION = 1

MSG_TYPES = ("text", "image", "voice", "video", "file", "link", "system", "recall", "other")
CONVERSATION_TYPES = ("direct", "group", "channel", "other")

UTC_US = pl.Datetime("us", "UTC")

# Content fields: what a message *says*. These and only these are hashed.
MESSAGE_CONTENT_SCHEMA: dict[str, pl.DataType] = {
    "message_id": pl.String(),
    "source": pl.String(),  # platform or format, e.g. "slack", "wecom", "jsonl"
    "conversation_id": pl.String(),
    "conversation_name": pl.String(),
    "conversation_type": pl.String(),  # one of CONVERSATION_TYPES
    "ts": UTC_US,
    "sender_id": pl.String(),
    "sender_name": pl.String(),
    "recipients": pl.List(pl.String()),
    "msg_type": pl.String(),  # one of MSG_TYPES
    "text": pl.String(),
    "attachment_name": pl.String(),
    "attachment_type": pl.String(),
    "attachment_size": pl.Int64(),
    "attachment_sha256": pl.String(),
    "attachment_md5": pl.String(),
    "reply_to": pl.String(),
    "original_id": pl.String(),  # for edits and recalls: the message they change
}

# Provenance fields: where a record came from. Kept, not hashed.
PROVENANCE_SCHEMA: dict[str, pl.DataType] = {
    "source_file": pl.String(),  # file name as given (no directories)
    "source_sha256": pl.String(),  # SHA-256 of the whole source file
    "source_position": pl.String(),  # "line 12", "row 3", "$.messages[4]", "zip:general/2016-01-01.json[2]"
    "raw_sha256": pl.String(),  # SHA-256 of the raw line / canonical raw object
    "platform_ids": pl.String(),  # JSON object of the platform's own ids
}

# Added by the archive at ingest; returned by the loader.
STORAGE_SCHEMA: dict[str, pl.DataType] = {
    "record_hash": pl.String(),  # hex SHA-256 of canonical bytes
    "version": pl.Int32(),  # 1 for the first content seen for an id, then 2, 3 ...
    "batch_seq": pl.Int64(),  # ingest batch (manifest sequence number)
    "leaf_index": pl.Int64(),  # position of record_hash among the batch's Merkle leaves
}

EVENT_CONTENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "source": pl.String(),
    "ts": UTC_US,
    "actor": pl.String(),  # user or account the event is about
    "event_type": pl.String(),  # login, logout, login_failed, alert, order, ticket ...
    "host": pl.String(),
    "ip": pl.String(),
    "outcome": pl.String(),  # success, failure, or empty
    "details": pl.String(),  # free text or a JSON object as text
}

MESSAGE_CONTENT_FIELDS = tuple(MESSAGE_CONTENT_SCHEMA)
EVENT_CONTENT_FIELDS = tuple(EVENT_CONTENT_SCHEMA)
MESSAGE_SCHEMA = {**MESSAGE_CONTENT_SCHEMA, **PROVENANCE_SCHEMA}
EVENT_SCHEMA = {**EVENT_CONTENT_SCHEMA, **PROVENANCE_SCHEMA}
REQUIRED_MESSAGE_FIELDS = ("message_id", "ts")
REQUIRED_EVENT_FIELDS = ("event_id", "ts", "event_type")

# Columns that carry content (what "metadata only" grants leave out).
CONTENT_COLUMNS = ("text", "attachment_name", "attachment_type", "attachment_size", "attachment_sha256", "attachment_md5")

KINDS = ("messages", "events")

# Each time chunk is stored as separately keyed parts, so a metadata-only grant
# never receives a key that opens message text (archive-format.md, "Parts").
PARTS = ("meta", "content", "attachments")
PART_COLUMNS: dict[str, tuple[str, ...]] = {
    "content": ("text", "text_norm"),  # text_norm: written by format-1 archives of before 2026-11-28 only
    "attachments": ("attachment_name", "attachment_type", "attachment_size", "attachment_sha256", "attachment_md5"),
}
# Grant fields (policy vocabulary) -> the parts they open; "meta" is always needed.
FIELD_PARTS: dict[str, tuple[str, ...]] = {"metadata": ("meta",), "content": ("meta", "content"),
                                           "attachments": ("meta", "attachments")}


def kind_parts(kind: str) -> tuple[str, ...]:
    """The parts a chunk of ``kind`` is stored in (events carry no content part)."""
    return PARTS if kind == "messages" else ("meta",)


def parts_for_fields(fields: Iterable[str], kind: str = "messages") -> tuple[str, ...]:
    """The parts that grant ``fields`` open for ``kind``. Unknown fields open nothing (deny by default)."""
    wanted = {"meta"}
    for name in fields:
        wanted.update(FIELD_PARTS.get(name, ()))
    return tuple(p for p in kind_parts(kind) if p in wanted)


def split_parts(frame: pl.DataFrame, kind: str) -> dict[str, pl.DataFrame]:
    """Split a stored chunk frame into its parts; non-meta parts keep ``leaf_index`` to re-align."""
    parts: dict[str, pl.DataFrame] = {}
    taken: set[str] = set()
    for part in kind_parts(kind):
        if part == "meta":
            continue
        cols = [c for c in PART_COLUMNS[part] if c in frame.columns]
        taken.update(cols)
        parts[part] = frame.select("leaf_index", *cols)
    parts["meta"] = frame.select([c for c in frame.columns if c not in taken])
    return {p: parts[p] for p in kind_parts(kind)}


def content_schema(kind: str) -> dict[str, pl.DataType]:
    """The hashed fields of ``kind`` ("messages" or "events").

    Raises ValueError for an unknown kind.
    """
    if kind == "messages":
        return MESSAGE_CONTENT_SCHEMA
    if kind == "events":
        return EVENT_CONTENT_SCHEMA
    raise ValueError(f"unknown record kind {kind!r}")


def full_schema(kind: str) -> dict[str, pl.DataType]:
    """Content plus provenance fields of ``kind``: what importers produce."""
    return {**content_schema(kind), **PROVENANCE_SCHEMA}


def id_field(kind: str) -> str:
    """The identifying column of ``kind``."""
    return "message_id" if kind == "messages" else "event_id"


def empty_messages() -> pl.DataFrame:
    """An empty frame with the importer-side message schema."""
    return pl.DataFrame(schema=MESSAGE_SCHEMA)


def empty_events() -> pl.DataFrame:
    """An empty frame with the importer-side event schema."""
    return pl.DataFrame(schema=EVENT_SCHEMA)


def conform(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Return ``frame`` with exactly the importer-side columns of ``kind``, in order.

    Missing optional columns are added as nulls; extra columns are dropped;
    types are cast strictly (a failed cast raises polars' error, which callers
    turn into an ImportFormatError naming the column).
    """
    target = full_schema(kind)
    exprs = []
    for name, dtype in target.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype, strict=True))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)


def format_ts(value: datetime) -> str:
    """A UTC timestamp as the fixed-width text used in canonical bytes.

    ``2026-11-28T14:20:00.000000Z``. Naive datetimes are taken as UTC.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    return value


def canonical_record(record: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The JSON object that is canonicalized for ``record``: content fields only.

    Null fields are left out, so adding an optional column later does not
    change the hash of old records. ``kind`` and the schema version are included
    so that a message and an event can never share a hash.
    """
    obj: dict[str, Any] = {"_kind": kind, "_v": SCHEMA_VERSION}
    for name in content_schema(kind):
        value = record.get(name)
        if value is None:
            continue
        obj[name] = _canonical_value(value)
    return obj


def canonical_bytes(record: Mapping[str, Any], kind: str) -> bytes:
    """RFC 8785 canonical bytes of ``record`` (see :func:`canonical_record`)."""
    return rfc8785.dumps(canonical_record(record, kind))


def record_hash(record: Mapping[str, Any], kind: str) -> str:
    """Hex SHA-256 of the canonical bytes of ``record``."""
    return hashlib.sha256(canonical_bytes(record, kind)).hexdigest()


# The JSON text of one member, '"name":value', from Polars' JSON encoder, whose string escapes are
# RFC 8785's (3.2.2.2: '"', '\' and U+0000-U+001F escaped, the five with short forms short, the
# others as lowercase \u00xx; nothing else, not '/', U+007F, U+2028 or non-ASCII; checked for every
# code point in tests/unit/core/test_ingest_columnwise.py) and whose lists hold null as null, as
# rfc8785 writes None. Null where the field is null (it is then left out, as canonical_record leaves it).
def _json_member(col: pl.Expr) -> pl.Expr:
    encoded = pl.struct(col).struct.json_encode()  # '{"name":value}'
    return pl.when(col.is_not_null()).then(encoded.str.head(-1).str.slice(1))


_ESCAPABLE = r'[\\"\x00-\x1f]'
_MAX_SAFE_INT = 2**53 - 1


def canonical_strings(frame: pl.DataFrame, kind: str) -> pl.Series:
    """RFC 8785 canonical text of every row, computed column-wise.

    Equal, byte for byte, to :func:`canonical_bytes` of each row (property tests hold the two
    together, tests/unit/core/test_hash_columns.py and test_ingest_columnwise.py): one member per
    present field in sorted key order, nulls left out. Strings that need no escaping are quoted as
    they are; columns holding any character JSON escapes, and lists, take Polars' JSON encoder.
    About a third of the CPU of escaping with replace passes, and two orders of magnitude faster
    than a per-row loop.

    Raises ValueError when an integer is outside the range JSON numbers carry
    exactly (|n| > 2**53 - 1), or for a column type canonical text is not defined for here.
    """
    if not _columnwise_matches_reference(kind):  # a Polars whose encoder or formats changed: row by row, slowly
        return _canonical_strings_per_row(frame, kind)
    return _canonical_strings_columnwise(frame, kind)


def _canonical_strings_per_row(frame: pl.DataFrame, kind: str) -> pl.Series:
    return pl.Series("canonical", [canonical_bytes(row, kind).decode("utf-8") for row in frame.iter_rows(named=True)],
                     dtype=pl.String())


# Every character RFC 8785 escapes, the ones it must not ('/', DEL, U+2028/9), non-ASCII and astral text.
_PROBE_TEXT = "".join(map(chr, range(0x20))) + '"\\/\x7f\u2028\u2029é加\U0001F600 plain'


def _probe_frame(kind: str) -> pl.DataFrame:
    """Two rows of ``kind``'s content columns: every column set to values that exercise the encoder, then nulls."""
    values: dict[str, list[Any]] = {}
    for name, dtype in content_schema(kind).items():
        if dtype == pl.String():
            value: Any = _PROBE_TEXT
        elif isinstance(dtype, pl.Datetime):
            value = datetime(2026, 11, 30, 6, 7, 8, 90, tzinfo=timezone.utc)
        elif dtype == pl.List(pl.String()):
            value = [_PROBE_TEXT, None, "x"]
        elif dtype.is_integer():
            value = 123456789 if dtype.is_unsigned_integer() else -_MAX_SAFE_INT
        else:
            value = None
        values[name] = [value, None]
    return pl.DataFrame(values, schema=content_schema(kind))


@functools.lru_cache(maxsize=None)
def _columnwise_matches_reference(kind: str) -> bool:
    """Whether the column-wise canonical text equals :func:`canonical_bytes` on a probe of every escape (once per
    process and kind). The column-wise path leans on Polars' JSON encoder and datetime formatting, which a Polars
    release could change: record hashes are evidence, so a difference means the per-row path, with a warning."""
    probe = _probe_frame(kind)
    try:
        same = _canonical_strings_columnwise(probe, kind).to_list() == _canonical_strings_per_row(probe, kind).to_list()
    except Exception:  # noqa: BLE001 - any failure of the fast path on the probe: use the reference path
        same = False
    if not same:
        warnings.warn(f"column-wise canonical text of {kind} differs from RFC 8785 with this Polars "
                      f"({pl.__version__}); record hashes are computed row by row (slower)", RuntimeWarning,
                      stacklevel=3)
    return same


def _canonical_strings_columnwise(frame: pl.DataFrame, kind: str) -> pl.Series:
    schema = content_schema(kind)
    fields = [c for c in sorted(schema) if c in frame.columns]
    # One pass over the frame answers, per column, whether any string needs escaping, any integer
    # is beyond JSON's exact range, and whether the column has nulls at all.
    checks = [pl.col(name).null_count().alias(f"nulls {name}") for name in fields]
    for name in fields:
        dtype, col = schema[name], pl.col(name)
        if dtype == pl.String():
            checks.append(col.str.contains(_ESCAPABLE).any().alias(name))
        elif dtype.is_integer():
            checks.append((col.abs() > _MAX_SAFE_INT).any().alias(name))
    flags = frame.select(checks).row(0, named=True)
    # The text is one concat_str over literal and column pieces that skips nulls. A member is
    # ',"name":value' (every member follows "_v"); in a column with nulls its pieces are first
    # joined by their own concat_str, which is null where the field is, so the member is left out
    # (as canonical_record leaves it out). Columns without nulls give their pieces directly.
    pieces: list[pl.Expr] = [pl.lit('{"_kind":"%s","_v":%d' % (kind, SCHEMA_VERSION))]
    for name in fields:
        dtype, col = schema[name], pl.col(name)
        if dtype == pl.String():
            member = [pl.lit(","), _json_member(col)] if flags[name] else [pl.lit(f',"{name}":"'), col, pl.lit('"')]
        elif isinstance(dtype, pl.Datetime):
            member = [pl.lit(f',"{name}":"'), col.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ"),
                      pl.lit('"')]
        elif dtype == pl.List(pl.String()):
            member = [pl.lit(","), _json_member(col)]
        elif dtype.is_integer():
            if flags[name]:
                raise ValueError(f"column {name!r} holds an integer JSON cannot carry exactly")
            member = [pl.lit(f',"{name}":'), col.cast(pl.String())]
        else:
            raise ValueError(f"no column-wise canonical text for column {name!r} of type {dtype}")
        if flags[f"nulls {name}"]:
            pieces.append(pl.concat_str(member))
        else:
            pieces.extend(member)
    pieces.append(pl.lit("}"))
    text = pl.concat_str(pieces, ignore_nulls=True)
    return frame.select(text.alias("canonical"))["canonical"]


def sha256_hex_column(values: pl.Series) -> pl.Series:
    """Hex SHA-256 of each value (String: its UTF-8 bytes; Binary: the bytes), null for null.

    One call into compiled code for the whole column (polars-hash's ``sha2_256``, Rust's sha2):
    the same digests as ``hashlib.sha256(value).hexdigest()``, without a Python call per value
    (hashlib holds the GIL and costs ~1 µs of overhead per short value).
    """
    import polars_hash  # local import: registers its ``chash`` namespace only when hashing

    name = values.name
    return values.to_frame("v").select(polars_hash.col("v").chash.sha2_256())["v"].alias(name)


def utf8_bytes(strings: pl.Series) -> memoryview:
    """The UTF-8 bytes of every value of a String Series without nulls, end to end, read from its Arrow data
    buffer (no copy per value): what one compiled call (``binascii.unhexlify``) then takes whole."""
    import pyarrow as pa

    array = strings.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string: int64 offsets, one data buffer
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = memoryview(array.buffers()[1]).cast("q")
    return memoryview(array.buffers()[2])[offsets[array.offset]:offsets[array.offset + len(array)]]


def digest_bytes_column(hex_digests: pl.Series) -> pl.Series:
    """Hex SHA-256 digests as a Binary Series of their 32 bytes each (what chunks store), null for null.

    Equal to ``str.decode("hex")``; a column of 64-hex-digit values without nulls (record hashes) is
    decoded in one ``binascii`` call over its Arrow data buffer (0.25 -> 0.11 CPU s a million).
    """
    name = hex_digests.name
    if hex_digests.len() and not hex_digests.null_count() and (hex_digests.str.len_bytes() == 64).all():
        import binascii

        import pyarrow as pa

        try:
            raw = binascii.unhexlify(utf8_bytes(hex_digests))
        except ValueError:  # not hex: the Polars decoder below says so in its own words
            raw = b""
        if len(raw) == 32 * hex_digests.len():  # 64 hex digits each: each value's 32 bytes in turn
            binary = pl.from_arrow(pa.Array.from_buffers(pa.binary(32), hex_digests.len(), [None, pa.py_buffer(raw)]))
            assert isinstance(binary, pl.Series)
            return binary.cast(pl.Binary).alias(name)
    return hex_digests.str.decode("hex")


def record_hash_column(frame: pl.DataFrame, kind: str) -> pl.Series:
    """Hex record hashes of every row of ``frame`` as a String Series named ``record_hash``.

    Canonical text column-wise (:func:`canonical_strings`), then SHA-256 of its UTF-8 bytes in one
    compiled call: equal to :func:`record_hash` of each row (property-tested, also on Chinese,
    emoji, empty strings, nulls and control characters).
    """
    if frame.height == 0:
        return pl.Series("record_hash", [], dtype=pl.String)
    if frame.height < _SPLIT_ROWS or pl.thread_pool_size() < 2:
        return sha256_hex_column(canonical_strings(frame, kind)).alias("record_hash")
    # Polars builds a concatenated string column on one thread: two halves on two threads keep
    # both cores busy (1.5 -> 1.2 s wall at 1M rows on 2 cores, the same CPU). Each half is exact
    # on its own, so the halves' hashes end to end are the whole frame's.
    from concurrent.futures import ThreadPoolExecutor

    half = frame.height // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        halves = list(pool.map(lambda rows: sha256_hex_column(canonical_strings(rows, kind)),
                               [frame.slice(0, half), frame.slice(half)]))
    return pl.concat(halves, rechunk=True).alias("record_hash")


_SPLIT_ROWS = 200_000


def record_hashes(frame: pl.DataFrame, kind: str) -> list[str]:
    """Hex record hashes of every row of ``frame``, in order (see :func:`record_hash_column`)."""
    return record_hash_column(frame, kind).to_list()


def _plain(obj: Any) -> bool:
    """Whether ``json.dumps(sort_keys=True)`` gives the RFC 8785 bytes of ``obj``.

    It does for dicts (str keys within the Basic Multilingual Plane: Python sorts
    by code point, RFC 8785 by UTF-16 unit, which agree there), lists, str, bool,
    None and integers within the safe range; both escape the same characters the
    same way. Floats and anything else go to the RFC 8785 implementation.
    """
    stack = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:  # RFC 8785 numbers are IEEE doubles
                continue
            return False
        if kind is dict:
            for key in item:
                if type(key) is not str or (not key.isascii() and max(key) > "\uffff"):
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            return False
    return True


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 bytes of any JSON-compatible object (manifests, grants, audit entries, signed org/ files).

    The C JSON encoder where its output is the same (:func:`_plain`; tests/unit/authority/test_open_caches.py
    compares both on tricky strings, keys and numbers), else the ``rfc8785`` implementation, which also
    refuses what RFC 8785 cannot carry (integers beyond 2^53, lone surrogates) with its own errors. The
    pure-Python encoder cost ~18 ms per open for a directory of 11 versions.
    """
    if _plain(obj):
        try:
            return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 refuses it the way it always has
    return rfc8785.dumps(obj)


def json_text(obj: Any) -> str:
    """Readable, stable JSON for files people open (sorted keys, UTF-8)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def iter_records(frame: pl.DataFrame) -> Iterable[dict[str, Any]]:
    """Rows of ``frame`` as dicts (a thin alias kept for readability)."""
    return frame.iter_rows(named=True)
