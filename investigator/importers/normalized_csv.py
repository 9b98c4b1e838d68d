"""``csv``: messages as CSV, in the normalized columns or mapped onto them.

    >>> from investigator.importers import read_export, ImportOptions
    >>> read_export("export.csv", format="csv",
    ...             options=ImportOptions(mapping={"ts": "发送时间"}))   # doctest: +SKIP

See ``_normalized`` for the rules; ``recipients`` may be a JSON array or a
``;``- / ``,``-separated list. Text may be UTF-8 (with or without BOM) or GB18030.
"""

from __future__ import annotations

from pathlib import Path

from investigator.importers._model import ImportOptions, ImportResult
from investigator.importers._normalized import parse_records
from investigator.importers._tabular import csv_header

NAME = "csv"


def sniff(path: Path, head: bytes) -> bool:
    """Any file named ``*.csv`` / ``*.tsv`` with a header row (the catch-all for tables)."""
    return path.suffix.lower() in (".csv", ".tsv") and csv_header(head) is not None


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read message rows. Raises ImportFormatError (see ``_normalized.parse_records``)."""
    return parse_records(path, options, fmt=NAME, kind="messages", reader="csv")
