"""Writers for the normalized formats: messages and events as JSON Lines and CSV.

    >>> from pathlib import Path
    >>> import tempfile
    >>> from investigator.demo.samples.messages import generate_messages
    >>> out = Path(tempfile.mkdtemp()) / "messages.jsonl"
    >>> write_messages_jsonl(generate_messages(50), out).name
    'messages.jsonl'

Only content fields are written (provenance is what an importer adds when it
reads the file). Times are ISO 8601 UTC with a ``Z`` and microseconds
(``schema.format_ts``); JSON keeps ``recipients`` as an array, CSV joins it
with ``;``. Polars writes both, so a million rows take about a second.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from investigator import schema

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%6fZ"


def _content(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    fields = list(schema.content_schema(kind))
    return frame.select(fields).with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.strftime(_TS_FORMAT))


def write_messages_jsonl(frame: pl.DataFrame, path: Path) -> Path:
    """Write messages as JSON Lines (one object per line, UTF-8). Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _content(frame, "messages").write_ndjson(path)
    return path


def write_messages_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write messages as CSV with a header; ``recipients`` is ``;``-joined. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _content(frame, "messages").with_columns(pl.col("recipients").list.join(";")).write_csv(path)
    return path


def write_events_jsonl(frame: pl.DataFrame, path: Path) -> Path:
    """Write events as JSON Lines. ``details`` stays a JSON text field. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _content(frame, "events").write_ndjson(path)
    return path


def write_events_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write events as CSV with a header. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _content(frame, "events").write_csv(path)
    return path
