"""Pure Polars analysis of message and event frames: search, filters, context, timeline, metrics, PII, tags.

    >>> import polars as pl
    >>> from investigator import analysis
    >>> frame = pl.DataFrame({"message_id": ["m1"], "text": ["加 班 費"]})
    >>> analysis.search(frame, "加班费").height
    1

Nothing here imports the archive, keys, crypto, loader or widgets: functions take frames with the
columns of :mod:`investigator.schema` and return frames. Importing this package has no side effects
(jieba, OpenCC and pypinyin tables load on first use).
"""

from investigator.analysis.normalize import (
    NORM_COLUMN,
    ContentNotGranted,
    add_normalized_column,
    display_normalize,
    normalize_column_expr,
    normalize_text,
)
from investigator.analysis.matchers import find_spans
from investigator.analysis.query import parse
from investigator.analysis.search import MODES, search

__all__ = [
    "MODES",
    "NORM_COLUMN",
    "ContentNotGranted",
    "add_normalized_column",
    "display_normalize",
    "find_spans",
    "normalize_column_expr",
    "normalize_text",
    "parse",
    "search",
]
