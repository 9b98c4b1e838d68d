"""Row sources shared by the CSV and JSON-lines importers, and the normalized-field mapping.

    >>> fields = resolve_mapping(["发送时间", "id"], {"ts": "发送时间", "message_id": "id"}, "messages", "x.csv")
    >>> fields["ts"]
    '发送时间'

CSV text is decoded as UTF-8 (BOM tolerated), else GB18030 (Chinese Windows
tools); each row's raw hash is the RFC 8785 hash of ``{column: value}``. JSON
lines must be UTF-8; each line's raw hash is the hash of its canonical object.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson

from investigator import schema
from investigator.errors import ImportFormatError

from investigator.importers._container import Container
from investigator.importers._records import (MAX_JSON_DEPTH, BadRecord, any_ts_to_us, as_int, as_str, decode_text, derived_id,
                       raw_sha256, sha256_hex)

# csv's default field cap (128 KiB) is too small for long chat messages; lines are capped separately.
csv.field_size_limit(16 * 1024 * 1024)


def csv_header(head: bytes) -> list[str] | None:
    """The header row of a CSV given its first bytes, or None if it does not look like CSV."""
    try:
        text, _ = decode_text(head, "head")
    except ImportFormatError:
        try:
            text = head.decode("gb18030", "ignore")
        except Exception:
            return None
    first = text.split("\n", 1)[0].rstrip("\r")
    if "," not in first and "\t" not in first:
        return None
    try:
        return [c.strip() for c in next(csv.reader([first], delimiter="\t" if "\t" in first and "," not in first
                                                     else ","))]
    except (csv.Error, StopIteration):
        return None


def iter_csv(box: Container, member: str, *, min_fields: int | None = None
             ) -> tuple[list[str], Iterator[tuple[str, dict[str, str]]]]:
    """``(header, rows)`` of a CSV member; rows are ``(position, {column: value})``.

    ``min_fields``: rows with at least that many fields but fewer than the header are
    padded with empty values (a writer that leaves trailing columns out); other field
    counts than the header's are malformed rows.

    Raises ImportFormatError for undecodable text, an empty file or duplicate columns.
    """
    file_name, _ = box.provenance(member)
    for number, _line in box.iter_lines(member):  # enforces the line-length cap
        pass
    text, _ = decode_text(box.read(member), file_name)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [c.strip() for c in next(reader)]
    except StopIteration:
        raise box.error(member, "line 1", "a CSV header row") from None
    except csv.Error:
        raise box.error(member, "line 1", "a well-formed CSV header row") from None
    if len(set(header)) != len(header):
        raise box.error(member, "line 1", "unique column names in the header")

    def rows() -> Iterator[tuple[str, dict[str, str]]]:
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                raise box.error(member, f"line {start}", "well-formed CSV quoting") from None
            position = box.position(member, f"line {start}")
            start = reader.line_num + 1
            if not row or row == [""]:
                continue
            if min_fields is not None and min_fields <= len(row) < len(header):
                row = row + [""] * (len(header) - len(row))
            if len(row) != len(header):
                yield position, {"\x00bad": f"{len(header)} fields as in the header, found {len(row)}"}
                continue
            yield position, dict(zip(header, row))

    return header, rows()


def iter_jsonl(box: Container, member: str) -> Iterator[tuple[str, Any, str]]:
    """``(position, object, raw_sha256)`` per non-blank line; object None + reason text when malformed."""
    for number, raw in box.iter_lines(member):
        raw = raw.rstrip(b"\r")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        position = box.position(member, f"line {number}")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reason = "UTF-8 encoded JSON" if "utf-8" in str(exc).lower() else (
                f"one JSON object per line (syntax error at column {exc.colno}, character {exc.pos} of the line)")
            if "recursion" in str(exc).lower():
                reason = f"JSON nested at most {MAX_JSON_DEPTH} levels deep"
            yield position, None, reason
            continue
        if not isinstance(obj, dict):
            yield position, None, "one JSON object per line"
            continue
        try:
            digest = raw_sha256(obj, depth=1)
        except BadRecord as bad:
            yield position, None, bad.expected
            continue
        yield position, obj, digest


def row_hash(row: dict[str, str]) -> str:
    """Raw hash of a CSV row: SHA-256 of the RFC 8785 form of ``{column: value}``."""
    return raw_sha256(row)


def resolve_mapping(columns: list[str], mapping: dict[str, str] | None, kind: str, file: str) -> dict[str, str]:
    """normalized field -> source column, for every field that the source provides.

    Unmapped fields are looked up under their own name. Raises ImportFormatError
    naming the file and column when a mapped column is absent, or when a required
    field (messages: message_id, ts; events: ts, event_type) has no column.
    """
    known = schema.content_schema(kind)
    mapping = dict(mapping or {})
    for field in mapping:
        if field not in known and field != "platform_ids":
            raise ImportFormatError(file, "mapping", f"normalized field names (got unknown field {field!r})")
    resolved: dict[str, str] = {}
    present = set(columns)
    for field in [*known, "platform_ids"]:
        column = mapping.get(field, field)
        if column in present or ("." in column and column.split(".", 1)[0] in present):
            resolved[field] = column
        elif field in mapping:
            raise ImportFormatError(file, f"column {column!r}", f"the column mapped to '{field}' in the header")
    required = ("message_id", "ts") if kind == "messages" else ("ts", "event_type")
    for field in required:
        if field not in resolved:
            column = mapping.get(field, field)
            raise ImportFormatError(file, f"column {column!r}", f"a column '{column}' holding '{field}'",
                                    hint="map it with --map FIELD=COLUMN")
    return resolved


def _lookup(row: dict[str, Any], column: str) -> Any:
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):  # dotted paths reach into JSON objects
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _recipients(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [as_str(v) or "" for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise BadRecord("recipients as a JSON array or a ';'/','-separated list") from None
            if not isinstance(parsed, list):
                raise BadRecord("recipients as a JSON array or a ';'/','-separated list")
            return [as_str(v) or "" for v in parsed]
        sep = ";" if ";" in text else ","
        return [part.strip() for part in text.split(sep) if part.strip()]
    raise BadRecord("recipients as a JSON array or a ';'/','-separated list")


def normalize(row: dict[str, Any], fields: dict[str, str], kind: str, tz: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One source row -> (normalized record, platform ids). Raises BadRecord naming the column."""
    rec: dict[str, Any] = {}
    ids: dict[str, Any] = {}
    for field, column in fields.items():
        value = _lookup(row, column)
        try:
            if field == "ts":
                if value is None or value == "":
                    raise BadRecord("a timestamp")
                rec["ts"] = any_ts_to_us(value, tz)
            elif field == "recipients":
                rec[field] = _recipients(value)
            elif field == "attachment_size":
                rec[field] = as_int(value)
            elif field == "platform_ids":
                if isinstance(value, str) and value.strip().startswith("{"):
                    ids.update(orjson.loads(value))
                elif isinstance(value, dict):
                    ids.update(value)
            elif field == "details" and isinstance(value, (dict, list)):
                rec[field] = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            elif field == "source":
                if value not in (None, ""):
                    rec["source"] = as_str(value)
            else:
                rec[field] = as_str(value)
        except BadRecord as bad:
            raise BadRecord(f"{bad.expected} in column '{column}'") from None
        except (orjson.JSONDecodeError, TypeError, ValueError):
            raise BadRecord(f"a JSON object in column '{column}'") from None
    if kind == "messages":
        if not rec.get("message_id"):
            raise BadRecord(f"a value in column '{fields['message_id']}'")
        msg_type = rec.get("msg_type") or "text"
        if msg_type not in schema.MSG_TYPES:
            raise BadRecord(f"one of {', '.join(schema.MSG_TYPES)} in column '{fields['msg_type']}'")
        rec["msg_type"] = msg_type
        ctype = rec.get("conversation_type")
        if ctype is not None and ctype not in schema.CONVERSATION_TYPES:
            raise BadRecord(f"one of {', '.join(schema.CONVERSATION_TYPES)} in column "
                            f"'{fields['conversation_type']}'")
    else:
        if not rec.get("event_type"):
            raise BadRecord(f"a value in column '{fields['event_type']}'")
    return rec, ids


def event_id_for(rec: dict[str, Any], raw: str, ordinal: int) -> str:
    """A derived event id for logs without ids: stable across re-imports of the same lines."""
    return "derived:" + derived_id(rec.get("ts"), rec.get("event_type"), rec.get("actor"), raw, ordinal)


__all__ = ["csv_header", "iter_csv", "iter_jsonl", "row_hash", "resolve_mapping", "normalize", "event_id_for",
           "sha256_hex"]
