"""JupyterLab widgets over an opened Case: search, timeline, heatmap, contacts, tags (ipywidgets 8 + plotly).

    >>> from investigator.widgets import SearchPanel       # doctest: +SKIP
    >>> SearchPanel(case)                                    # doctest: +SKIP

Widgets are views: they take a :class:`~investigator.access.case.Case` (or frames) and call the pure
functions of :mod:`investigator.analysis`; they hold no crypto or policy logic and never open an
archive themselves (:class:`OpenCaseForm` calls ``investigator.open_case``, the public door).
:mod:`investigator.widgets.figures` is pure (frames -> plotly figures) and is what report templates
use. Labels are Chinese by default; pass ``lang="en"`` or set ``INVESTIGATOR_LANG=en``. Importing
this package has no side effects and does not import ipywidgets until a widget is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ActivityHeatmap", "ContactGraph", "OpenCaseForm", "PagedTable", "SearchPanel", "TagPanel",
           "TimelineView", "figures"]

_WHERE = {"ActivityHeatmap": "overview", "ContactGraph": "overview", "OpenCaseForm": "opencase",
          "PagedTable": "table", "SearchPanel": "search", "TagPanel": "tagging", "TimelineView": "timeline"}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "figures":
        return importlib.import_module("investigator.widgets.figures")
    if name in _WHERE:
        module = importlib.import_module(f"investigator.widgets.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'investigator.widgets' has no attribute {name!r}")
