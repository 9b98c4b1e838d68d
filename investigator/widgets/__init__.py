"""JupyterLab widgets over an opened Case: search, timeline, heatmap, contacts, tags (ipywidgets 8 + plotly).

    >>> from investigator.widgets import SearchPanel       # doctest: +SKIP
    >>> SearchPanel(case)                                    # doctest: +SKIP

Widgets are views: they take a :class:`~investigator.access.case.Case` (or frames) and call the pure
functions of :mod:`investigator.analysis`; they hold no crypto or policy logic and never open an
archive themselves (:class:`OpenCaseForm` calls ``investigator.open_case``, the public door).
:mod:`investigator.widgets.figures` is pure (frames -> plotly figures) and is what report templates
use. Labels are Chinese by default; pass ``lang="en"`` or set ``INVESTIGATOR_LANG=en``. Importing
this package has no side effects; it loads ipywidgets and plotly (the widgets are ipywidgets classes).
"""

from __future__ import annotations

from investigator.widgets import figures
from investigator.widgets.opencase import OpenCaseForm
from investigator.widgets.overview import ActivityHeatmap, ContactGraph
from investigator.widgets.search import SearchPanel
from investigator.widgets.table import PagedTable
from investigator.widgets.tagging import TagPanel
from investigator.widgets.timeline import TimelineView

__all__ = ["ActivityHeatmap", "ContactGraph", "OpenCaseForm", "PagedTable", "SearchPanel", "TagPanel",
           "TimelineView", "figures"]
