"""Pure figure builders: Polars frames in, plotly Figures out (for widgets, notebooks and reports).

    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> from investigator.widgets.figures import activity_heatmap_figure
    >>> frame = pl.DataFrame({"ts": [datetime(2026, 11, 24, 0, 40, tzinfo=timezone.utc)]})
    >>> fig = activity_heatmap_figure(frame, tz="Asia/Shanghai", lang="en")
    >>> fig.data[0].z[1][8]   # Tuesday, 08:00 in Shanghai
    1

Nothing here reads an archive, a case or the environment (except the label language when ``lang``
is not given): every function takes frames with the columns of :mod:`investigator.schema` (or the
frames of :mod:`investigator.analysis`) and returns a ``plotly.graph_objects.Figure``. Times are shown
as wall-clock times in ``tz``, and the axis names the zone. Each trace carries ``meta={"kind": ...}``
("message", "event", "gap", "delay", "heatmap", "edge", "node", "hits") so tests and callers can find
traces whatever the label language; message and event points carry their ``item_id`` in
``customdata`` so a widget can open the context of a clicked point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl

from investigator.analysis.metrics import activity_heatmap, contact_edges
from investigator.analysis.timeline import timeline
from investigator.widgets.i18n import label, weekdays, zone_note

DEFAULT_TZ = "Asia/Shanghai"
EVENT_SYMBOLS = ("diamond", "x", "triangle-up", "square", "star", "cross", "triangle-down", "hexagon")
MESSAGE_COLOR = "#1f77b4"
EVENT_COLORS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
GAP_COLOR = "rgba(128, 128, 128, 0.18)"
DELAY_COLOR = "#d62728"
SUMMARY_CHARS = 60


def _local(series: pl.Series, tz: str) -> list[Any]:
    """Wall-clock times in ``tz`` as naive datetimes (plotly.js has no zones; the axis names it)."""
    if series.dtype == pl.Datetime and getattr(series.dtype, "time_zone", None):
        series = series.dt.convert_time_zone(tz).dt.replace_time_zone(None)
    return series.to_list()


def _short(text: Any, limit: int = SUMMARY_CHARS) -> str:
    value = "" if text is None else str(text).replace("\n", " ")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _empty(fig: go.Figure, lang: str | None) -> go.Figure:
    fig.add_annotation(text=label("empty", lang), showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def timeline_figure(messages: pl.DataFrame | None = None, events: pl.DataFrame | None = None, *,
                    tz: str = DEFAULT_TZ, gaps: pl.DataFrame | None = None, delays: pl.DataFrame | None = None,
                    highlight: Sequence[str] = (), lanes: dict[str, str] | None = None, lang: str | None = None,
                    title: str | None = None, max_lanes: int = 60) -> go.Figure:
    """A lane per participant (message senders, event actors), events overlaid, gaps and delays marked.

    ``gaps``: a :func:`~investigator.analysis.timeline.silences` frame (``start``, ``end``, ``minutes``),
    drawn as shaded spans. ``delays``: a :func:`~investigator.analysis.timeline.first_replies` frame
    (``ts``, ``sender``, ``reply_ts``, ``replier``, ``delay_minutes``), drawn as dashed arrows from the
    customer's message to the first reply. ``highlight``: item ids drawn larger (e.g. search hits).
    ``lanes`` maps a sender or actor (account id or name) to its lane, so that one person's accounts
    on several platforms share one lane (see :func:`person_lanes`).
    Lanes beyond ``max_lanes`` (the least active) are dropped from the picture, not from the data.
    """
    fig = go.Figure()
    has_rows = (messages is not None and messages.height > 0) or (events is not None and events.height > 0)
    frame = timeline(messages if messages is not None else None, events, tz=tz) if has_rows else None
    fig.update_layout(title=title or label("timeline", lang), template="plotly_white", height=None,
                      xaxis_title=zone_note(tz, lang), yaxis_title=label("lane", lang),
                      legend={"orientation": "h", "y": -0.15}, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    if frame is None or frame.height == 0:
        return _empty(fig, lang)
    frame = frame.with_columns(pl.col("lane").fill_null("?"))
    if lanes:
        frame = frame.with_columns(pl.col("lane").replace(lanes))
    busiest = frame.group_by("lane").agg(pl.len().alias("n"), pl.col("ts").min().alias("first")).sort(
        ["n", "first"], descending=[True, False]).head(max_lanes)
    order = busiest.sort("first")["lane"].to_list()
    frame = frame.filter(pl.col("lane").is_in(order))
    marked = set(highlight)
    msgs = frame.filter(pl.col("kind") == "message")
    if msgs.height:
        sizes = [14 if i in marked else 8 for i in msgs["item_id"].to_list()]
        fig.add_trace(go.Scatter(
            x=_local(msgs["ts"], tz), y=msgs["lane"].to_list(), mode="markers", name=label("messages", lang),
            marker={"color": MESSAGE_COLOR, "size": sizes, "symbol": "circle", "line": {"width": 0}},
            customdata=msgs["item_id"].to_list(), text=[_short(s) for s in msgs["summary"].to_list()],
            hovertemplate="%{x|%Y-%m-%d %H:%M:%S}<br>%{y}<br>%{text}<extra></extra>",
            meta={"kind": "message"}))
    evs = frame.filter(pl.col("kind") == "event")
    for index, kind in enumerate(sorted(evs["what"].fill_null("event").unique().to_list()) if evs.height else []):
        part = evs.filter(pl.col("what").fill_null("event") == kind)
        fig.add_trace(go.Scatter(
            x=_local(part["ts"], tz), y=part["lane"].to_list(), mode="markers",
            name=f"{label('events', lang)}: {kind}",
            marker={"color": EVENT_COLORS[index % len(EVENT_COLORS)], "size": 13,
                    "symbol": EVENT_SYMBOLS[index % len(EVENT_SYMBOLS)], "line": {"width": 1, "color": "black"}},
            customdata=part["item_id"].to_list(),
            text=[f"{kind} {h or ''} {ip or ''} {o or ''}".strip() for h, ip, o in
                  zip(part["host"].to_list(), part["ip"].to_list(), part["outcome"].to_list())],
            hovertemplate="%{x|%Y-%m-%d %H:%M:%S}<br>%{y}<br>%{text}<extra></extra>",
            meta={"kind": "event", "event_type": kind}))
    if gaps is not None and gaps.height:
        _add_gaps(fig, gaps, tz, lang)
    if delays is not None and delays.height:
        if lanes:
            delays = delays.with_columns(pl.col("sender").replace(lanes), pl.col("replier").replace(lanes))
        _add_delays(fig, delays.filter(pl.col("reply_ts").is_not_null() & pl.col("sender").is_in(order)
                                       & pl.col("replier").is_in(order)), tz, lang)
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(order)), type="category")
    fig.update_layout(height=max(320, 60 + 28 * len(order)))
    return fig


def person_lanes(identities: dict[str, list[str]], senders: pl.DataFrame | None = None) -> dict[str, str]:
    """Account id or name -> one lane per person, from the org directory's ``identities``.

    The lane is the person's display name (the first linked name, e.g. 张伟) followed by the id.
    ``senders`` (a frame with sender_id and sender_name) adds the names an export used for an account.
    """
    out: dict[str, str] = {}
    for pid, accounts in identities.items():
        linked = [a for a in accounts if a != pid]
        lane = f"{linked[0]} ({pid})" if linked else pid
        for account in [pid, *accounts]:
            out[account] = lane
    if senders is not None and {"sender_id", "sender_name"} <= set(senders.columns):
        for sid, name in senders.select("sender_id", "sender_name").unique().iter_rows():
            if sid in out and name and name not in out:
                out[name] = out[sid]
    return out


def _add_gaps(fig: go.Figure, gaps: pl.DataFrame, tz: str, lang: str | None) -> None:
    starts, ends = _local(gaps["start"], tz), _local(gaps["end"], tz)
    minutes = gaps["minutes"].to_list() if "minutes" in gaps.columns else [None] * gaps.height
    for start, end in zip(starts, ends):
        fig.add_vrect(x0=start, x1=end, fillcolor=GAP_COLOR, line_width=0, layer="below")
    # an invisible trace so gaps appear in the legend and carry hover text
    fig.add_trace(go.Scatter(
        x=[s + (e - s) / 2 for s, e in zip(starts, ends)], y=[None] * len(starts), mode="markers",
        name=label("gaps", lang), marker={"color": GAP_COLOR, "size": 12, "symbol": "square"},
        text=[f"{label('gap', lang)} {m:.0f} {label('minutes', lang)}" if m is not None else label("gap", lang)
              for m in minutes], hoverinfo="text", meta={"kind": "gap"}, visible="legendonly"))


def _add_delays(fig: go.Figure, delays: pl.DataFrame, tz: str, lang: str | None) -> None:
    if not delays.height:
        return
    xs: list[Any] = []
    ys: list[Any] = []
    texts: list[str] = []
    starts, ends = _local(delays["ts"], tz), _local(delays["reply_ts"], tz)
    for start, end, sender, replier, minutes in zip(starts, ends, delays["sender"].to_list(),
                                                    delays["replier"].to_list(), delays["delay_minutes"].to_list()):
        note = f"{label('delay', lang)} {minutes:.0f} {label('minutes', lang)}"
        xs += [start, end, None]
        ys += [sender, replier, None]
        texts += [note, note, ""]
        fig.add_annotation(x=end, y=replier, ax=start, ay=sender, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowcolor=DELAY_COLOR, opacity=0.7, text="")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=label("delays", lang), text=texts, hoverinfo="text",
                             line={"color": DELAY_COLOR, "dash": "dash", "width": 2}, meta={"kind": "delay"}))


def activity_heatmap_figure(frame: pl.DataFrame, *, tz: str = DEFAULT_TZ, lang: str | None = None,
                            column: str = "ts", title: str | None = None) -> go.Figure:
    """Counts per weekday (rows, Monday first) and hour (columns) in ``tz``; see analysis.activity_heatmap."""
    grid = activity_heatmap(frame.select(column), tz=tz, column=column) if frame.height else None
    z = [[0] * 24 for _ in range(7)]
    if grid is not None:
        for weekday, hour, count in grid.select("weekday", "hour", "count").iter_rows():
            z[int(weekday) - 1][int(hour)] = int(count)
    fig = go.Figure(go.Heatmap(z=z, x=list(range(24)), y=list(weekdays(lang)), colorscale="Blues",
                               hovertemplate="%{y} %{x}:00 — %{z}<extra></extra>", meta={"kind": "heatmap"}))
    fig.update_layout(title=title or label("heatmap", lang), template="plotly_white", height=320,
                      xaxis_title=f"{label('hour', lang)} ({tz})", yaxis_title=label("weekday", lang),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(dtick=1)
    return fig


def contact_graph_figure(messages: pl.DataFrame, *, names: dict[str, str] | None = None, lang: str | None = None,
                         max_nodes: int = 40, title: str | None = None) -> go.Figure:
    """Who talks to whom: people (circles) and conversations without member lists (squares) on a circle.

    Edges come from :func:`~investigator.analysis.metrics.contact_edges`; line width grows with the
    message count. ``names`` maps ids to display names. Only the ``max_nodes`` busiest nodes are drawn.
    """
    fig = go.Figure()
    fig.update_layout(title=title or label("contacts", lang), template="plotly_white", showlegend=False,
                      height=520, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    edges = contact_edges(messages) if messages.height else None
    if edges is None or edges.height == 0:
        return _empty(fig, lang)
    weight: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for source, target, kind, count in edges.iter_rows():
        weight[source] = weight.get(source, 0) + count
        weight[target] = weight.get(target, 0) + count
        kinds.setdefault(source, "person")
        kinds[target] = kind if kinds.get(target) != "person" else "person"
    nodes = sorted(weight, key=lambda n: (-weight[n], n))[:max_nodes]
    position = {n: (math.cos(2 * math.pi * i / len(nodes)), math.sin(2 * math.pi * i / len(nodes)))
                for i, n in enumerate(nodes)}
    top = max(edges["count"].max() or 1, 1)
    for source, target, _kind, count in edges.iter_rows():
        if source not in position or target not in position:
            continue
        (x0, y0), (x1, y1) = position[source], position[target]
        fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="text",
                                 text=f"{source} → {target}: {count}",
                                 line={"width": 1 + 6 * count / top, "color": "rgba(31,119,180,0.45)"},
                                 meta={"kind": "edge", "source": source, "target": target, "count": count}))
    names = names or {}
    for kind, symbol in (("person", "circle"), ("conversation", "square")):
        chosen = [n for n in nodes if kinds.get(n) == kind]
        if not chosen:
            continue
        fig.add_trace(go.Scatter(
            x=[position[n][0] for n in chosen], y=[position[n][1] for n in chosen], mode="markers+text",
            text=[names.get(n, n) for n in chosen], textposition="top center", customdata=chosen,
            marker={"size": [10 + 20 * math.sqrt(weight[n] / max(weight.values())) for n in chosen],
                    "symbol": symbol, "color": MESSAGE_COLOR if kind == "person" else "#ff7f0e"},
            hovertemplate="%{text}: %{customdata}<extra></extra>", meta={"kind": "node", "node_kind": kind}))
    return fig


HIT_GROUPS = {"sender": ("sender_name", "sender_id"), "conversation": ("conversation_name", "conversation_id"),
              "msg_type": ("msg_type",), "day": ("ts",), "term": ("matched_terms",)}


def hit_counts_figure(hits: pl.DataFrame, *, by: str = "sender", tz: str = DEFAULT_TZ, lang: str | None = None,
                      top: int = 20, title: str | None = None) -> go.Figure:
    """Horizontal bars of hit counts per ``by``: sender, conversation, msg_type, day (in ``tz``) or term.

    ``term`` counts rows per matched query term (the ``matched_terms`` column of a search result).
    Raises ValueError for an unknown ``by``.
    """
    if by not in HIT_GROUPS:
        raise ValueError(f"by must be one of {', '.join(HIT_GROUPS)}")
    fig = go.Figure()
    fig.update_layout(title=title or f"{label('hit_counts', lang)} — {label(by if by != 'day' else 'ts', lang)}",
                      template="plotly_white", height=max(260, 80 + 24 * min(top, max(hits.height, 1))),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, xaxis_title=label("count", lang))
    if hits.height == 0:
        return _empty(fig, lang)
    present = [c for c in HIT_GROUPS[by] if c in hits.columns]
    if not present:
        return _empty(fig, lang)
    if by == "day":
        key = pl.col("ts").dt.convert_time_zone(tz).dt.date().cast(pl.String)
    elif by == "term":
        key = pl.col("matched_terms")
    else:
        key = pl.coalesce([pl.col(c).cast(pl.String) for c in present])
    frame = hits.select(key.alias("key"))
    if by == "term":
        frame = frame.explode("key")
    counts = frame.drop_nulls().group_by("key").agg(pl.len().alias("n"))
    counts = (counts.sort("key") if by == "day" else counts.sort(["n", "key"], descending=[True, False])).head(top)
    counts = counts.reverse()  # plotly draws the first bar at the bottom
    fig.add_trace(go.Bar(x=counts["n"].to_list(), y=counts["key"].to_list(), orientation="h",
                         marker={"color": MESSAGE_COLOR}, meta={"kind": "hits", "by": by},
                         hovertemplate="%{y}: %{x}<extra></extra>"))
    fig.update_yaxes(type="category")
    return fig
