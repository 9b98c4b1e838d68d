"""Shared test helpers (constants and factories); fixtures live in conftest.py.

Import as ``from support import ...``: a module of its own name, so it never
collides with the per-folder conftest modules.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from investigator import schema

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
DATA_SAMPLES = REPO / "data_samples"
PASSPHRASE = "test-passphrase-不要在生产中使用"
TEST_KDF_N = 2**14  # low scrypt cost keeps the suite fast; production default is 2**17


def message_frame(n: int = 50, *, day: int = 18, start_id: int = 0, text: str = "hello {i}") -> pl.DataFrame:
    """``n`` messages spread over the hours of 2026-11-<day> UTC."""
    rows = [{
        "message_id": f"m{i}", "source": "jsonl", "conversation_id": f"c{i % 3}", "conversation_name": f"conv {i % 3}",
        "conversation_type": "group", "ts": datetime(2026, 11, day, i % 24, (i * 7) % 60, tzinfo=timezone.utc),
        "sender_id": f"u{i % 5}", "sender_name": f"user {i % 5}", "recipients": [f"u{(i + 1) % 5}"],
        "msg_type": "text", "text": text.format(i=i), "source_file": "test.jsonl", "source_position": f"line {i + 1}",
    } for i in range(start_id, start_id + n)]
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "messages")

def event_frame(n: int = 10, *, day: int = 18) -> pl.DataFrame:
    rows = [{"event_id": f"e{i}", "source": "events-jsonl", "ts": datetime(2026, 11, day, i % 24, 30, tzinfo=timezone.utc),
             "actor": "liuyang", "event_type": "login", "host": "erp-01", "ip": "203.0.113.7", "outcome": "success",
             "details": "{}"} for i in range(n)]
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "events")

def archive_snapshot(root: Path) -> dict[str, bytes]:
    """Every file of an archive except the audit log (which records refusals too) and locks."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(("audit/", "locks/")):
            out[rel] = path.read_bytes()
    return out
