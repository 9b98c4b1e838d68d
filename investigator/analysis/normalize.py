"""Search normalization, as the analysis layer sees it (implemented in :mod:`investigator.textnorm`).

    >>> from investigator.analysis.normalize import normalize_text
    >>> normalize_text("加 班 費！")
    '加班费'
"""

from investigator.errors import ContentNotGranted
from investigator.textnorm import (
    NORM_COLUMN, add_normalized_column, compact_with_offsets, display_column_expr, display_normalize,
    normalize_column_expr, normalize_series, normalize_text, require_text, tables,
)

__all__ = ["NORM_COLUMN", "ContentNotGranted", "add_normalized_column", "compact_with_offsets", "display_column_expr",
           "display_normalize", "normalize_column_expr", "normalize_series", "normalize_text", "require_text",
           "tables"]
