"""The lazy path's pieces hold no view of the group they were cut from (issue #18, item 4).

Polars' string columns are views into shared buffers, so a few rows filtered out of a decrypted group
kept the whole group's text alive, and a lazy query's memory grew with the window, not its result.
``scan.detached`` copies a piece into buffers of its own; the peak-RSS figures are in
benchmarks/bench_loader.py (docs/benchmarks.md), not in a timed test.
"""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from investigator.access.scan import detached


def _buffer_bytes(series: pl.Series) -> int:
    # the buffers as Polars holds them (string views and the data buffers they point into)
    return sum(b.size for b in series.to_arrow(compat_level=pl.CompatLevel.newest()).buffers() if b is not None)


def test_a_filtered_piece_no_longer_holds_the_group_text():
    group = pl.DataFrame({"text": ["加班费 " * 30 + str(i) for i in range(50_000)]})
    piece = group.filter(pl.col("text").str.ends_with(" 4242"))
    assert piece.height == 1
    assert _buffer_bytes(piece["text"]) > 1_000_000  # a view into the whole group's text
    assert _buffer_bytes(detached(piece)["text"]) < 10_000


def test_detached_keeps_values_types_and_order():
    frame = pl.DataFrame({
        "ts": [datetime(2026, 3, 1, 8, tzinfo=timezone.utc), None, datetime(2026, 3, 2, tzinfo=timezone.utc)],
        "text": ["加班费", None, "🔥 emoji"], "recipients": [["a", "张三"], [], None],
        "size": [1, None, 2**40], "flag": [True, False, None], "blob": [b"\x00\x01", None, b""],
    }, schema_overrides={"ts": pl.Datetime("us", "UTC")})
    out = detached(frame)
    assert out.schema == frame.schema
    assert out.equals(frame)
    assert detached(frame.head(0)).schema == frame.schema
    assert detached(pl.DataFrame()).shape == (0, 0)
