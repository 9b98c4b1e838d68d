"""The context pane: the conversation around a message, as HTML (shared by the search panel and the timeline).

    >>> pane = context_html(A.context(messages, ["p-c1-complaint"]), tz="Asia/Shanghai", lang="en")  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import polars as pl

from investigator.widgets.i18n import label
from investigator.widgets.table import highlight


def context_html(snippet: pl.DataFrame, *, tz: str, lang: str | None = None, terms: Sequence[str] = (),
                 mode: str = "exact", query: str = "") -> str:
    """An HTML rendering of an :func:`~investigator.analysis.context` frame; hit rows marked, terms highlighted."""
    if snippet.height == 0:
        return f"<i>{html.escape(label('no_selection', lang))}</i>"
    zone = ZoneInfo(tz)
    parts = [f"<div class='investigator-context' style='font-size: 0.9em'><b>{html.escape(label('context', lang))}"
             f"</b> <span style='color:#666'>({html.escape(tz)})</span>"]
    current = None
    for row in snippet.iter_rows(named=True):
        conversation = row.get("conversation_name") or row.get("conversation_id") or ""
        if (row.get("snippet"), conversation) != current:
            current = (row.get("snippet"), conversation)
            parts.append(f"<div style='margin-top:6px; color:#555'>— {html.escape(str(conversation))} —</div>")
        ts = row.get("ts")
        when = ts.astimezone(zone).strftime("%m-%d %H:%M:%S") if ts is not None else ""
        sender = row.get("sender_name") or row.get("sender_id") or ""
        text = row.get("text")
        body = highlight(text, terms, mode=mode, query=query) if text is not None else \
            f"<i>{html.escape(str(row.get('attachment_name') or row.get('msg_type') or ''))}</i>"
        style = "background:#fff3c4; font-weight:600" if row.get("is_hit") else ""
        parts.append(f"<div data-message-id='{html.escape(str(row.get('message_id')))}' style='{style}'>"
                     f"<span style='color:#888'>{html.escape(when)}</span> "
                     f"<b>{html.escape(str(sender))}</b>: {body}</div>")
    parts.append("</div>")
    return "".join(parts)
