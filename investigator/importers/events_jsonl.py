"""``events-jsonl``: system events as JSON lines (one object per line, UTF-8).

    >>> from investigator.importers import read_export
    >>> read_export("alerts.jsonl", format="events-jsonl")   # doctest: +SKIP

Fields as in ``events-csv``; a ``details`` object is kept as JSON text.
"""

from __future__ import annotations

from pathlib import Path

from investigator.importers._model import ImportOptions, ImportResult
from investigator.importers._normalized import parse_records
from investigator.importers._records import first_json_object

NAME = "events-jsonl"


def sniff(path: Path, head: bytes) -> bool:
    """JSON lines whose first object has an ``event_type`` key."""
    obj = first_json_object(head)
    return obj is not None and "event_type" in obj


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read event objects. Raises ImportFormatError (see ``_normalized.parse_records``)."""
    return parse_records(path, options, fmt=NAME, kind="events", reader="jsonl")
