"""Synthetic sample data: normalized messages and events, and exports in every supported format.

    >>> from pathlib import Path
    >>> from investigator.demo.samples import generate_messages, write_sample_set
    >>> frame = generate_messages(1000, seed=7)          # normalized schema, sorted by ts
    >>> frame.filter(frame["message_id"] == "p-c1-complaint").height
    1

``write_sample_set(Path("data_samples"))`` writes the committed default set:
normalized JSONL/CSV, events (JSONL, CSV, auth.log), Slack, Telegram,
WhatsApp, Discord, WeCom and two WeChat tool exports, plus people.csv (the org
directory) and planted.json (the planted cases with their ids in every format).
docs/samples.md describes the content and the planted cases.
"""

from __future__ import annotations

from investigator.demo.samples.events import generate_events
from investigator.demo.samples.messages import generate_messages
from investigator.demo.samples.sampleset import ALL_FORMATS, write_sample_set

__all__ = ["ALL_FORMATS", "generate_events", "generate_messages", "write_sample_set"]
