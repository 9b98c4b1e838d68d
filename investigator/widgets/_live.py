"""A plotly FigureWidget that is updated in place (one batched message) instead of rebuilt.

    >>> live = LiveFigure(on_click=view.select)   # doctest: +SKIP
    >>> live.show(timeline_figure(...))           # first call: builds the FigureWidget
    >>> live.show(timeline_figure(...))           # later calls: restyle + relayout in one batch

Rebuilding a FigureWidget on every search sends the whole figure to the browser again and re-creates
its JavaScript view; updating in place inside ``FigureWidget.batch_update`` sends one message with
what changed. The widget is rebuilt only when the trace structure (types and kinds, in order)
differs. Without anywidget (plotly 6 needs it for FigureWidget), the figure is shown statically in
an Output widget and clicks are not available.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

CLICKABLE = ("message", "density", "hit_density", "event", "node")


def _structure(figure: go.Figure) -> tuple[tuple[str, str, str], ...]:
    return tuple((t.type, str((t.meta or {}).get("kind", "")), str((t.meta or {}).get("event_type", "")))
                 for t in figure.data)


class LiveFigure:
    """Holds the widget showing a figure; :meth:`show` puts a new figure into it, in place when it can.

    ``on_click(item_id)`` is called with the ``customdata`` of a clicked point of a clickable trace
    (messages, density cells, events, nodes). :attr:`updates` counts in-place updates and
    :attr:`builds` counts widget builds (for tests and benchmarks).
    """

    def __init__(self, on_click: Callable[[str], Any] | None = None) -> None:
        self.on_click = on_click
        self.widget: widgets.Widget | None = None
        self.figure: go.Figure = go.Figure()
        self.builds = 0
        self.updates = 0
        self._json: list[dict[str, Any]] = []
        self._layout: dict[str, Any] = {}

    def show(self, figure: go.Figure) -> go.Figure:
        """Show ``figure``; returns the figure object on screen (a FigureWidget when available)."""
        current = self.figure
        layout_json = figure.layout.to_plotly_json()
        shown_json = [t.to_plotly_json() for t in figure.data]
        for values in shown_json:
            values.pop("uid", None)
        if isinstance(current, go.FigureWidget) and _structure(current) == _structure(figure):
            # only the properties that changed cross to the browser (a new search changes marker sizes,
            # not 5,000 times and lanes), all in one message
            with current.batch_update():
                for old, before, after in zip(current.data, self._json, shown_json):
                    changed = {k: v for k, v in after.items() if k != "type" and before.get(k) != v}
                    changed.update({k: None for k in before if k not in after})
                    if changed:
                        old.update(changed, overwrite=True)
                changed_layout = {k: v for k, v in layout_json.items() if self._layout.get(k) != v}
                if changed_layout:  # e.g. the gaps' rectangles cross again only when the messages changed
                    current.update_layout(changed_layout, overwrite=True)
            self._json, self._layout = shown_json, layout_json
            self.updates += 1
            return current
        self.builds += 1
        try:
            shown: go.Figure = go.FigureWidget(figure)
        except Exception:  # noqa: BLE001 - plotly raises ImportError/ValueError without anywidget
            shown = figure
        if isinstance(shown, go.FigureWidget) and self.on_click is not None:
            for trace in shown.data:
                if isinstance(trace.meta, dict) and trace.meta.get("kind") in CLICKABLE:
                    trace.on_click(self._clicked)
        self.figure = shown
        self._json, self._layout = shown_json, layout_json
        self.widget = shown if isinstance(shown, widgets.DOMWidget) else _static(shown)
        return shown

    def _clicked(self, trace: Any, points: Any, _selector: Any) -> None:
        for index in getattr(points, "point_inds", []) or []:
            if self.on_click is not None and trace.customdata is not None:
                self.on_click(str(trace.customdata[index]))
            return


def _static(figure: go.Figure) -> widgets.Widget:
    out = widgets.Output()
    with out:
        figure.show()
    return out
