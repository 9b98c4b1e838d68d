"""The writer registry of the sample set: what a format writer gets, returns, and how it registers.

    >>> @register("my-format")                                  # doctest: +SKIP
    ... def write_mine(ctx: SampleContext) -> WriterResult:
    ...     return [ctx.out_dir / "mine.json"], {}
    >>> epoch_ms(datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc))
    1000

A writer module (slack, telegram, wecom ...) imports this module, never
:mod:`investigator.demo.samples.sampleset`, which imports the writers to have
them register; so the registry, the context type and the small helpers writers
share (:func:`local_rows`, :func:`epoch_ms`, :func:`stable_number`) live here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from investigator.demo.samples import directory

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class SampleContext:
    """What a writer gets: frames, where to write, and the settings used."""

    out_dir: Path
    messages: pl.DataFrame  # the full normalized set
    subset: pl.DataFrame  # planted + a few hundred bulk messages, for platform exports
    events: pl.DataFrame
    seed: int
    tz: str
    conversations: dict[str, directory.Conversation] = field(default_factory=dict)


WriterResult = tuple[list[Path], dict[str, str]]  # files written, message_id -> id in the format
Writer = Callable[[SampleContext], WriterResult]
_WRITERS: dict[str, Writer] = {}


def register(name: str) -> Callable[[Writer], Writer]:
    """Register a writer for format ``name`` (used as a decorator by writer modules)."""

    def wrap(fn: Writer) -> Writer:
        _WRITERS[name] = fn
        return fn

    return wrap


def registered() -> dict[str, Writer]:
    """The writers registered so far, by format name."""
    return dict(_WRITERS)


def local_rows(frame: pl.DataFrame, tz: str) -> list[dict]:
    """Rows of ``frame`` as dicts with an aware ``local`` datetime in ``tz`` (for platform writers)."""
    return frame.with_columns(local=pl.col("ts").dt.convert_time_zone(tz)).to_dicts()


def epoch_ms(ts: datetime) -> int:
    """Epoch milliseconds of an aware datetime, in integers (float timestamps round badly)."""
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def stable_number(text: str, digits: int) -> int:
    """A stable ``digits``-digit number derived from ``text`` (platform ids that look random)."""
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return 10 ** (digits - 1) + value % (9 * 10 ** (digits - 1))
