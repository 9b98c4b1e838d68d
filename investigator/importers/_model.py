"""The importer data model: options in, result out (re-exported by ``investigator.importers``).

    >>> ImportOptions(tz="Europe/Berlin", lenient=True).lenient
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from investigator import schema

from investigator.importers._container import Container
from investigator.importers._records import Collector

DATE_ORDERS = ("dmy", "mdy", "ymd")


@dataclass(frozen=True)
class ImportOptions:
    """How to read an export.

    ``tz`` is the zone for local times without an offset (WhatsApp, CSVs, WeChat
    time strings, auth.log). ``lenient`` skips malformed records instead of
    raising. ``date_order`` overrides WhatsApp date-order detection. ``mapping``
    maps normalized field -> source column (csv / jsonl / events-*).
    ``room_names`` is a JSON/CSV file mapping WeCom room ids to names. ``year``
    is the year of auth.log lines (default: the file's modification year).
    """

    tz: str = "Asia/Shanghai"
    lenient: bool = False
    date_order: str | None = None
    mapping: dict[str, str] | None = None
    room_names: str | None = None
    year: int | None = None


@dataclass(frozen=True)
class Skipped:
    """A record left out in lenient mode: where it was and what was expected (never its text)."""

    position: str
    reason: str


@dataclass(frozen=True)
class SourceFile:
    """A file that was read: its base name, SHA-256, size in bytes and format."""

    name: str
    sha256: str
    size: int
    format: str


@dataclass
class ImportResult:
    """Normalized frames (exactly the schema.full_schema columns), skipped records and files read."""

    messages: pl.DataFrame
    events: pl.DataFrame
    skipped: list[Skipped] = field(default_factory=list)
    source_files: list[SourceFile] = field(default_factory=list)


def finish(box: Container, fmt: str, messages: Collector | None = None,
           events: Collector | None = None) -> ImportResult:
    """Turn collectors into an ImportResult and close the container."""
    try:
        skipped: list[Skipped] = []
        for rows in (messages, events):
            if rows is not None:
                skipped.extend(Skipped(s.position, s.reason) for s in rows.skipped)
        return ImportResult(
            messages=messages.frame() if messages is not None else schema.empty_messages(),
            events=events.frame() if events is not None else schema.empty_events(),
            skipped=skipped,
            source_files=[SourceFile(*entry) for entry in box.source_files(fmt)],
        )
    finally:
        box.close()
