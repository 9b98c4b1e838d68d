"""Search normalization, as the analysis layer sees it (implemented in :mod:`investigator.textnorm`).

    >>> from investigator.analysis.normalize import normalize_text
    >>> normalize_text("加 班 費！"), normalize_text("P\u0391SSW\u041eRD")
    ('加班费', 'password')
"""

from investigator.errors import ContentNotGranted
from investigator.textnorm import (
    NORM_COLUMN, NORM_VERSION_COLUMN, add_normalized_column, compact_with_offsets, display_column_expr,
    display_normalize, ensure_normalized, is_ignorable, norm_info, norm_version, normalize_column_expr,
    normalize_series, normalize_text, require_text, stored_norm_current, tables,
)

__all__ = ["NORM_COLUMN", "NORM_VERSION_COLUMN", "ContentNotGranted", "add_normalized_column", "compact_with_offsets",
           "display_column_expr", "display_normalize", "ensure_normalized", "is_ignorable", "norm_info",
           "norm_version", "normalize_column_expr", "normalize_series", "normalize_text", "require_text",
           "stored_norm_current", "tables"]
