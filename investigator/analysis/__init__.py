"""Pure Polars analysis of message and event frames: search, dedupe, people, filters, context, timeline, metrics,
PII, tags.

    >>> import polars as pl
    >>> from investigator import analysis
    >>> frame = pl.DataFrame({"message_id": ["m1"], "text": ["加 班 費"]})
    >>> analysis.search(frame, "加班费").height
    1

Nothing here imports the archive, keys, crypto, loader or widgets: functions take frames with the
columns of :mod:`investigator.schema` and return frames. Importing this package has no side effects
(jieba, OpenCC and pypinyin tables load on first use). docs/analysis.md is the guide.
"""

from investigator.analysis.context import context
from investigator.analysis.dedupe import AUTHORITY, PRECISION, dedupe, dedupe_events
from investigator.analysis.filters import (
    by_conversations,
    by_groups,
    by_participants,
    by_senders,
    by_types,
    time_window,
)
from investigator.analysis.matchers import find_spans
from investigator.analysis.metrics import activity_heatmap, contact_edges, response_times
from investigator.analysis.normalize import (
    NORM_COLUMN,
    ContentNotGranted,
    add_normalized_column,
    display_normalize,
    normalize_column_expr,
    normalize_text,
)
from investigator.analysis.people import People, conversation_label
from investigator.analysis.pii import detect, find_pii, mask_text, pseudonymize_text, redact_frame
from investigator.analysis.query import parse
from investigator.analysis.replies import first_staff_reply
from investigator.analysis.search import MODES, search
from investigator.tags import STANDARD_TAGS, TagEntry, TagSet, apply_tags, filter_by_tag
from investigator.analysis.timeline import (
    align_events,
    align_messages,
    first_replies,
    silences,
    timeline,
    unusual_logins,
)

__all__ = [
    "AUTHORITY",
    "PRECISION",
    "People",
    "MODES",
    "NORM_COLUMN",
    "STANDARD_TAGS",
    "ContentNotGranted",
    "TagEntry",
    "TagSet",
    "activity_heatmap",
    "add_normalized_column",
    "align_events",
    "align_messages",
    "apply_tags",
    "by_conversations",
    "by_groups",
    "by_participants",
    "by_senders",
    "by_types",
    "contact_edges",
    "context",
    "conversation_label",
    "dedupe",
    "dedupe_events",
    "detect",
    "display_normalize",
    "filter_by_tag",
    "find_pii",
    "find_spans",
    "first_replies",
    "first_staff_reply",
    "mask_text",
    "normalize_column_expr",
    "normalize_text",
    "parse",
    "pseudonymize_text",
    "redact_frame",
    "response_times",
    "search",
    "silences",
    "time_window",
    "timeline",
    "unusual_logins",
]
