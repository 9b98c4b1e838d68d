"""Shared reader for records already in (or mapped onto) the normalized schema: csv, jsonl, events-*.

    >>> from investigator.importers import read_export, ImportOptions
    >>> read_export("dingtalk.csv", format="csv",
    ...             options=ImportOptions(mapping={"ts": "发送时间", "sender_name": "发送人",
    ...                                            "message_id": "消息ID"}))   # doctest: +SKIP

Columns are the normalized field names unless ``options.mapping`` maps a field
to another column (``{"ts": "发送时间"}``); JSON lines may map onto dotted paths
(``{"sender_name": "from.name"}``). ``ts`` is ISO 8601 (no offset = ``options.tz``)
or epoch seconds / milliseconds. Events without an id column get a derived id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from investigator.importers._container import Container
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import BadRecord, Collector
from investigator.importers._tabular import event_id_for, iter_csv, iter_jsonl, normalize, resolve_mapping, row_hash


def parse_records(path: Path, options: ImportOptions, *, fmt: str, kind: str, reader: str) -> ImportResult:
    """Read a CSV (``reader="csv"``) or JSON-lines file of ``kind`` records.

    Raises ImportFormatError for a missing required column (naming it), undecodable
    text, or (strict mode) the first row with an invalid value (naming line and column).
    """
    box = Container.open(path)
    rows = Collector(kind, source=fmt, lenient=options.lenient)
    try:
        if box.kind != "file":
            raise box.error(box.name, "", f"a single {reader.upper()} file")
        member = box.members()[0]
        file_name, sha = box.provenance(member)
        ordinals: dict[str, int] = {}
        if reader == "csv":
            header, source = iter_csv(box, member)
            fields = resolve_mapping(header, options.mapping, kind, file_name)
            items: Any = ((pos, row, None if "\x00bad" in row else row_hash(row)) for pos, row in source)
        else:
            fields = None
            items = iter_jsonl(box, member)
        for position, row, raw in items:
            if row is None or "\x00bad" in row:
                rows.bad(file_name, position, raw if row is None else row["\x00bad"])
                continue
            if fields is None:
                # JSON lines have no header: check required fields against the first object.
                fields = resolve_mapping(list(row), options.mapping, kind, file_name)
            try:
                rec, ids = normalize(row, fields, kind, options.tz)
            except BadRecord as bad:
                rows.bad(file_name, position, bad.expected)
                continue
            if kind == "events" and not rec.get("event_id"):
                ordinals[raw] = ordinals.get(raw, 0) + 1
                rec["event_id"] = event_id_for(rec, raw, ordinals[raw])
            rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw, platform_ids=ids or None)
        if kind == "messages":
            return finish(box, fmt, messages=rows)
        return finish(box, fmt, events=rows)
    finally:
        box.close()
