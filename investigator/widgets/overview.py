"""ActivityHeatmap (hour x weekday) and ContactGraph (who talks to whom) over a case or a frame.

    >>> ActivityHeatmap(case)          # doctest: +SKIP
    >>> ContactGraph(case, lang="en")  # doctest: +SKIP  (one node per person, not per account)

Thin widgets over :mod:`investigator.widgets.figures`; :meth:`update` redraws with another frame
(for instance a SearchPanel's results: ``panel.on_results(heatmap.update)``).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl

from investigator.analysis import People, dedupe
from investigator.widgets.i18n import case_lang
from investigator.widgets.figures import activity_heatmap_figure, contact_graph_figure
from investigator.widgets._live import LiveFigure


def case_people(case: Any) -> People:
    """The case's people, resolved once: the directory's linked identities, named as the directory names them.

    A case without a directory of names (or a stand-in with ``identities()`` only) labels each person
    from their identities (see :meth:`People.from_identities`).
    """
    names: dict[str, str] = {}
    directory = getattr(case, "directory", None)
    if callable(directory):
        names = {p.id: p.name for p in getattr(directory(), "people", ()) if getattr(p, "name", None)}
    return People.from_identities(case.identities(), names=names)


class _FigureBox(widgets.VBox):
    def __init__(self, case: Any, messages: pl.DataFrame | None, lang: str | None, **kwargs: Any) -> None:
        lang = case_lang(case, lang)
        self.case, self.lang, self.tz = case, lang, case.timezone
        # distinct messages by default (analysis.dedupe): a message held by three exports counts once
        self.messages: pl.DataFrame = dedupe(case.messages(), identities=case.identities()) \
            if messages is None else messages
        self.figure: go.Figure = go.Figure()
        self.live = LiveFigure()
        self._drawn: pl.DataFrame | None = None
        super().__init__(**kwargs)
        self.update(self.messages)

    def _build(self, messages: pl.DataFrame) -> go.Figure:
        raise NotImplementedError

    def update(self, messages: pl.DataFrame) -> go.Figure:
        """Redraw for ``messages``, in place; nothing happens when it is the frame already shown."""
        if messages is self._drawn:
            return self.figure
        self.messages = messages
        builds = self.live.builds
        self.figure = self.live.show(self._build(messages))
        if self.live.widget is not None and self.live.builds != builds:
            self.children = [self.live.widget]
        self._drawn = messages
        return self.figure


class ActivityHeatmap(_FigureBox):
    """Message counts per hour and weekday in the archive's zone."""

    def __init__(self, case: Any, *, messages: pl.DataFrame | None = None, lang: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(case, messages, lang, **kwargs)

    def _build(self, messages: pl.DataFrame) -> go.Figure:
        return activity_heatmap_figure(messages, tz=self.tz, lang=self.lang)


class ContactGraph(_FigureBox):
    """Who talks to whom, one node per person: the case's linked accounts resolved once (:func:`case_people`)."""

    def __init__(self, case: Any, *, messages: pl.DataFrame | None = None, lang: str | None = None,
                 max_nodes: int = 40, **kwargs: Any) -> None:
        self.max_nodes = max_nodes
        self.people = case_people(case)
        super().__init__(case, messages, lang, **kwargs)

    def _build(self, messages: pl.DataFrame) -> go.Figure:
        return contact_graph_figure(messages, people=self.people, lang=self.lang, max_nodes=self.max_nodes)
