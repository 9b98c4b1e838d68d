"""The context pane (a few messages around a hit, as HTML) and the thread view (the whole conversation, paged).

    >>> pane = context_html(A.context(messages, ["p-c1-complaint"]), tz="Asia/Shanghai", lang="en")  # doctest: +SKIP
    >>> thread = ThreadView(messages, tz="Asia/Shanghai", lang="en"); thread.show("p-c1-complaint")  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import ipywidgets as widgets
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


class ThreadView(widgets.VBox):
    """The whole conversation around a message, a page at a time, the message marked.

    ``messages`` is the case's granted frame (the thread never reaches outside it). :meth:`show`
    opens the thread of a message on the page that holds it; Previous / Next page through it.
    """

    def __init__(self, messages: pl.DataFrame, *, tz: str, lang: str | None = None, page_size: int = 50,
                 **kwargs: Any) -> None:
        self.messages, self.tz, self.lang, self.page_size = messages, tz, lang, page_size
        self.thread = messages.head(0)
        self.message_id = ""
        self.page = 0
        self.title = widgets.HTML()
        self.body = widgets.HTML(layout=widgets.Layout(max_height="480px", overflow="auto"))
        self.body.add_class("investigator-thread-body")
        self.prev_button = widgets.Button(description=label("prev", lang), icon="arrow-left")
        self.next_button = widgets.Button(description=label("next", lang), icon="arrow-right")
        self.close_button = widgets.Button(description=label("close", lang), icon="times")
        self.position = widgets.HTML()
        self.prev_button.on_click(lambda _b: self.turn(-1))
        self.next_button.on_click(lambda _b: self.turn(1))
        self.close_button.on_click(lambda _b: self.close_thread())
        super().__init__([self.title, self.body, widgets.HBox([self.prev_button, self.position, self.next_button,
                                                               self.close_button])], **kwargs)
        self.add_class("investigator-thread")
        self.layout.display = "none"

    @property
    def pages(self) -> int:
        return max(1, -(-self.thread.height // self.page_size))

    def show(self, message_id: str) -> pl.DataFrame:
        """Open the thread (same conversation) of ``message_id`` at its page; returns the thread's rows.

        An id outside the frame shows nothing and returns an empty frame.
        """
        hit = self.messages.filter(pl.col("message_id") == message_id) if self.messages.height else self.messages
        if hit.height == 0:
            self.close_thread()
            return self.messages.head(0)
        conversation = hit["conversation_id"][0]
        thread = self.messages.filter(pl.col("conversation_id") == conversation) if conversation is not None \
            else hit
        self.thread = thread.sort(["ts", "message_id"], maintain_order=True).with_row_index("__pos")
        self.message_id = message_id
        position = int(self.thread.filter(pl.col("message_id") == message_id)["__pos"][0])
        self.page = position // self.page_size
        name = hit["conversation_name"][0] if "conversation_name" in hit.columns else None
        self.title.value = (f"<b>{html.escape(label('thread', self.lang))}</b>: "
                            f"{html.escape(str(name or conversation or ''))} · {self.thread.height:,} "
                            f"{html.escape(label('messages', self.lang))} ({html.escape(self.tz)})")
        self.layout.display = "flex"
        self._render()
        return self.thread.drop("__pos")

    def turn(self, step: int) -> None:
        """Go ``step`` pages through the thread, staying within it."""
        self.page = min(max(self.page + step, 0), self.pages - 1)
        self._render()

    def close_thread(self) -> None:
        """Hide the thread view."""
        self.thread = self.messages.head(0)
        self.message_id = ""
        self.layout.display = "none"

    def _render(self) -> None:
        part = self.thread.slice(self.page * self.page_size, self.page_size)
        marked = part.with_columns((pl.col("message_id") == self.message_id).alias("is_hit"),
                                   pl.lit(0).alias("snippet"))
        self.body.value = context_html(marked.drop("__pos"), tz=self.tz, lang=self.lang)
        first = self.page * self.page_size
        self.position.value = (f"{first + 1}–{first + part.height} {label('of', self.lang)} {self.thread.height:,} · "
                               f"{label('page', self.lang)} {self.page + 1}/{self.pages}")
        self.prev_button.disabled = self.page <= 0
        self.next_button.disabled = self.page >= self.pages - 1
