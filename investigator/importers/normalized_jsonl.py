"""``jsonl``: messages as JSON lines, in the normalized fields or mapped onto them.

    >>> from investigator.importers import read_export
    >>> read_export("messages.jsonl", format="jsonl")   # doctest: +SKIP

One JSON object per line, UTF-8. See ``_normalized`` for the rules.
"""

from __future__ import annotations

from pathlib import Path

from investigator.importers._model import ImportOptions, ImportResult
from investigator.importers._normalized import parse_records
from investigator.importers._records import first_line

NAME = "jsonl"


def sniff(path: Path, head: bytes) -> bool:
    """A ``*.jsonl`` / ``*.ndjson`` file, or any file whose first line is a JSON object and not more."""
    first = first_line(head)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return True
    return first.startswith(b"{") and first.endswith(b"}") and b"\n" in head.strip()


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read message objects. Raises ImportFormatError (see ``_normalized.parse_records``)."""
    return parse_records(path, options, fmt=NAME, kind="messages", reader="jsonl")
