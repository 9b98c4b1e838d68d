"""TagPanel: tag the selected messages with a note; list and filter the case's tags. Every tag is audited.

    >>> tags = TagPanel(case, source=panel, lang="en")        # doctest: +SKIP
    >>> panel.table.select(["p-c1-complaint"]); tags.tag_selected("evidence", note="the complaint")  # doctest: +SKIP

Storage and auditing are :class:`investigator.vault.tagstore.TagStore` (``case.tags()``): tags live beside
the archive, append-only, and never touch the records. ``source`` is anything with a ``selected`` list
of message ids (a :class:`~investigator.widgets.table.PagedTable`, or a SearchPanel whose table is used).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import ipywidgets as widgets
import polars as pl

from investigator.tags import STANDARD_TAGS
from investigator.errors import InvestigatorError
from investigator.widgets.i18n import case_lang, label

LIST_ROWS = 200


class TagPanel(widgets.VBox):
    """Add or remove a tag (with a note) on selected messages; the tags in force, filterable by tag."""

    def __init__(self, case: Any, *, source: Any = None, messages: pl.DataFrame | None = None,
                 lang: str | None = None, **kwargs: Any) -> None:
        lang = case_lang(case, lang)
        self.case, self.lang, self.tz = case, lang, case.timezone
        self.store = case.tags()
        self.table = getattr(source, "table", source)
        self.messages: pl.DataFrame = messages if messages is not None else \
            getattr(source, "messages") if source is not None and hasattr(source, "messages") else case.messages()
        L = lambda key: label(key, lang)  # noqa: E731
        self.tag = widgets.Combobox(options=list(STANDARD_TAGS), value="evidence", description=L("tag"),
                                    ensure_option=False)
        self.note = widgets.Text(description=L("note"), layout=widgets.Layout(width="420px"))
        self.add_button = widgets.Button(description=L("add_tag"), icon="tag", button_style="success")
        self.remove_button = widgets.Button(description=L("remove_tag"), icon="times")
        self.selection = widgets.HTML()
        self.status = widgets.HTML()
        self.filter = widgets.Dropdown(description=L("tag_filter"), options=[(L("all"), "")], value="")
        self.listing = widgets.HTML()
        self.listing.add_class("investigator-tags")
        self.add_button.on_click(lambda _b: self._act("add"))
        self.remove_button.on_click(lambda _b: self._act("remove"))
        self.filter.observe(lambda _c: self.refresh(), names="value")
        if self.table is not None and hasattr(self.table, "observe"):
            self.table.observe(lambda _c: self._show_selection(), names="selected")
        super().__init__([widgets.HBox([self.tag, self.note]), widgets.HBox([self.add_button, self.remove_button,
                                                                              self.selection]),
                          self.status, self.filter, self.listing], **kwargs)
        self.add_class("investigator-tag-panel")
        self._show_selection()
        self.refresh()

    @property
    def selected(self) -> list[str]:
        """The message ids ticked in the source table."""
        return list(getattr(self.table, "selected", []) or [])

    def _show_selection(self) -> None:
        self.selection.value = f"{html.escape(label('selected', self.lang))}: {len(self.selected)}"

    def _act(self, op: str) -> None:
        try:
            if op == "add":
                self.tag_selected(self.tag.value, note=self.note.value)
            else:
                self.untag_selected(self.tag.value, note=self.note.value)
        except (InvestigatorError, ValueError) as exc:
            self.status.value = f"<span style='color:#b00020'>{html.escape(label('error', self.lang))}: " \
                                f"{html.escape(str(exc))}</span>"

    def tag_selected(self, tag: str, *, note: str = "", message_ids: Sequence[str] | None = None,
                     now: datetime | None = None) -> pl.DataFrame:
        """Tag ``message_ids`` (default: the selection); returns the tags in force. Raises ValueError for a bad tag."""
        ids = list(message_ids if message_ids is not None else self.selected)
        self.store.add(ids, tag.strip(), note=note, now=now)
        self.status.value = f"{html.escape(label('tagged', self.lang))}: {len(ids)} × {html.escape(tag)}"
        return self.refresh()

    def untag_selected(self, tag: str, *, note: str = "", message_ids: Sequence[str] | None = None,
                       now: datetime | None = None) -> pl.DataFrame:
        """Remove ``tag`` from ``message_ids`` (default: the selection), recorded as a removal."""
        ids = list(message_ids if message_ids is not None else self.selected)
        self.store.remove(ids, tag.strip(), note=note, now=now)
        self.status.value = f"{html.escape(label('remove_tag', self.lang))}: {len(ids)} × {html.escape(tag)}"
        return self.refresh()

    def tagged(self) -> pl.DataFrame:
        """The case's messages with tags in force (filtered by the tag chosen in the filter), plus tags/notes."""
        frame = self.store.apply(self.messages).filter(pl.col("tags").list.len() > 0)
        if self.filter.value:
            frame = frame.filter(pl.col("tags").list.contains(self.filter.value))
        return frame

    def refresh(self) -> pl.DataFrame:
        """Re-read the store; update the filter options and the listing."""
        in_use = self.store.tags_in_use()
        options = [(label("all", self.lang), "")] + [(t, t) for t in in_use]
        if list(self.filter.options) != options:
            keep = self.filter.value if self.filter.value in in_use else ""
            self.filter.options = options
            self.filter.value = keep
        frame = self.tagged()
        zone = ZoneInfo(self.tz)
        head = "".join(f"<th>{html.escape(label(k, self.lang))}</th>" for k in ("ts", "sender", "text", "tags", "note"))
        rows = []
        for row in frame.head(LIST_ROWS).iter_rows(named=True):
            when = row["ts"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if row.get("ts") else ""
            text = row.get("text") or row.get("msg_type") or ""
            rows.append(f"<tr data-message-id='{html.escape(str(row['message_id']))}'><td>{html.escape(when)}</td>"
                        f"<td>{html.escape(str(row.get('sender_name') or row.get('sender_id') or ''))}</td>"
                        f"<td>{html.escape(str(text)[:120])}</td><td>{html.escape(', '.join(row['tags']))}</td>"
                        f"<td>{html.escape('; '.join(row['notes']))}</td></tr>")
        self.listing.value = (f"<div>{html.escape(label('tagged', self.lang))}: <b>{frame.height}</b> "
                              f"({html.escape(self.tz)})</div><table><tr>{head}</tr>{''.join(rows)}</table>")
        return frame
