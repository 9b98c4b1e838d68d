"""TimelineView: a lane per participant, events overlaid, gaps and reply delays marked; click a point for context.

    >>> view = TimelineView(case, agents=["zhangwei"], lang="en")   # doctest: +SKIP
    >>> view.select("p-c1-complaint")                                # doctest: +SKIP

The figure is :func:`investigator.widgets.figures.timeline_figure` (pure) shown as a plotly
``FigureWidget`` so that a click on a message opens its conversation and a click on an event shows the
event, in the pane beside it. :meth:`TimelineView.update` redraws with other messages (e.g. the hits of a
:class:`~investigator.widgets.search.SearchPanel`, via ``panel.on_results(view.show_hits)``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl

from investigator import analysis as A
from investigator.widgets.conversation import context_html
from investigator.widgets._live import LiveFigure
from investigator.widgets.figures import MAX_POINTS, timeline_figure
from investigator.widgets.i18n import case_lang, label
from investigator.widgets.overview import case_people


class TimelineView(widgets.VBox):
    """Messages and events of a case on one time axis (the case's messages and events unless given)."""

    def __init__(self, case: Any, *, messages: pl.DataFrame | None = None, events: pl.DataFrame | None = None,
                 agents: Iterable[str] = (), gap: timedelta | None = timedelta(minutes=30),
                 highlight: Sequence[str] = (), lang: str | None = None, max_lanes: int = 40,
                 max_points: int = MAX_POINTS, **kwargs: Any) -> None:
        lang = case_lang(case, lang)
        self.case, self.lang, self.max_lanes, self.max_points = case, lang, max_lanes, max_points
        self.tz = case.timezone
        self.identities = case.identities()
        # distinct messages by default: one point per message however many exports hold it
        self.all_messages: pl.DataFrame = A.dedupe(case.messages(), identities=self.identities) \
            if messages is None else messages
        self.events: pl.DataFrame = case.events() if events is None else events
        self.agents, self.gap = list(agents), gap
        self.messages = self.all_messages
        self.highlight = list(highlight)
        # one lane per person: the case's linked accounts resolved once (unknown accounts: "name (platform)")
        self.people = case_people(case)
        self._derived: tuple[pl.DataFrame | None, pl.DataFrame | None] | None = None
        self._drawn: tuple[int, tuple[str, ...]] | None = None
        self.live = LiveFigure(on_click=self.select)
        self.figure: go.Figure = go.Figure()
        self.detail = widgets.HTML(f"<i>{html.escape(label('no_selection', lang))}</i>")
        self.detail.add_class("investigator-timeline-detail")
        self.holder = widgets.Box(layout=widgets.Layout(width="100%"))
        super().__init__([self.holder, self.detail], **kwargs)
        self.add_class("investigator-timeline")
        self.update()

    def gaps(self) -> pl.DataFrame | None:
        """Quiet periods longer than ``gap`` in which nobody wrote (analysis.silences over all messages)."""
        if self.gap is None or self.messages.height == 0:
            return None
        return A.silences(self.messages.with_columns(pl.lit("all").alias("__all")), self.gap, by="__all",
                          tz=self.tz)

    def delays(self) -> pl.DataFrame | None:
        """First-reply delays of the ``agents`` (analysis.first_replies), answered turns only."""
        if not self.agents or self.messages.height == 0:
            return None
        replies = A.first_replies(self.messages, agents=self.agents, identities=self.identities, tz=self.tz)
        return replies.filter(pl.col("reply_id").is_not_null())

    def update(self, messages: pl.DataFrame | None = None, *, highlight: Sequence[str] | None = None) -> go.Figure:
        """Redraw with ``messages`` (default: the current ones) and ``highlight``ed message ids.

        Nothing is drawn when neither changed (the same frame object and the same ids); otherwise the
        figure on screen is updated in place (one batched message to the browser). Gaps and delays are
        recomputed only when the messages change.
        """
        if messages is not None and messages is not self.messages:
            self.messages = messages
            self._derived = None
        if highlight is not None:
            self.highlight = list(highlight)
        key = (id(self.messages), tuple(self.highlight))
        if key == self._drawn:
            return self.figure
        if self._derived is None:
            self._derived = (self.gaps(), self.delays())
        gaps, delays = self._derived
        figure = timeline_figure(self.messages, self.events, tz=self.tz, gaps=gaps, delays=delays,
                                 highlight=self.highlight, lang=self.lang, max_lanes=self.max_lanes,
                                 people=self.people, max_points=self.max_points)
        builds = self.live.builds
        self.figure = self.live.show(figure)
        if self.live.widget is not None and self.live.builds != builds:
            self.holder.children = [self.live.widget]
        self._drawn = key
        return self.figure

    def show_hits(self, hits: pl.DataFrame) -> None:
        """Keep all messages on the timeline and enlarge ``hits`` (a search result)."""
        self.update(self.all_messages, highlight=hits["message_id"].to_list() if hits.height else [])

    def select(self, item_id: str) -> pl.DataFrame:
        """Show the context of a message, or the details of an event, in the pane below the figure."""
        if self.all_messages.height and item_id in set(self.all_messages["message_id"].to_list()):
            snippet = A.context(self.all_messages, [item_id], before=5, after=5)
            self.detail.value = context_html(snippet, tz=self.tz, lang=self.lang)
            return snippet
        event = self.events.filter(pl.col("event_id") == item_id) if self.events.height else self.events
        if event.height:
            row = event.row(0, named=True)
            when = row["ts"].astimezone(ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M:%S")
            fields = ("event_type", "actor", "host", "ip", "outcome", "details")
            self.detail.value = (f"<b>{html.escape(label('events', self.lang))}</b> {html.escape(when)} "
                                 f"({html.escape(self.tz)})<br>" + "<br>".join(
                                     f"{f}: {html.escape(str(row.get(f) or ''))}" for f in fields))
            return event
        self.detail.value = f"<i>{html.escape(label('no_selection', self.lang))}</i>"
        return self.all_messages.head(0)
