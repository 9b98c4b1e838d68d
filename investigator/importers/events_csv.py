"""``events-csv``: system events (logins, alerts, tickets ...) as CSV for correlation.

    >>> from investigator.importers import read_export, ImportOptions
    >>> read_export("vpn-logins.csv", format="events-csv",
    ...             options=ImportOptions(mapping={"actor": "user", "ts": "time"}))   # doctest: +SKIP

Columns: event_id (derived when absent), ts, event_type, actor, host, ip,
outcome, details — or mapped onto them with ``options.mapping``.
"""

from __future__ import annotations

from pathlib import Path

from investigator.importers._model import ImportOptions, ImportResult
from investigator.importers._normalized import parse_records
from investigator.importers._tabular import csv_header

NAME = "events-csv"


def sniff(path: Path, head: bytes) -> bool:
    """A CSV whose header has an ``event_type`` column."""
    if path.suffix.lower() not in (".csv", ".tsv"):
        return False
    header = csv_header(head)
    return header is not None and "event_type" in header


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read event rows. Raises ImportFormatError (see ``_normalized.parse_records``)."""
    return parse_records(path, options, fmt=NAME, kind="events", reader="csv")
