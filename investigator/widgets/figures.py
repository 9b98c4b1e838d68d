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
("message", "density", "hit_density", "event", "gap", "delay", "heatmap", "edge", "edge_label", "node",
"hits") so tests and callers can find traces whatever the label language; message and event points
(and density cells: their first message) carry their ``item_id`` in ``customdata`` so a widget can
open the context of a clicked point.

Cost is linear in the rows: delays and edges are points of a few traces and gaps are layout shapes set
in one update, never one ``add_vrect`` / ``add_annotation`` each (each such add copies the layout:
quadratic), times travel as strings, and
a figure holds at most ``MAX_POINTS`` message points (above that, a density). benchmarks/bench_figures.py
measures it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl

from investigator.analysis.metrics import activity_heatmap, contact_edges
from investigator.analysis.people import PERSON, PERSON_ID, People, platform_expr
from investigator.analysis.timeline import timeline
from investigator.widgets.i18n import label, weekdays, zone_note

DEFAULT_TZ = "Asia/Shanghai"
EVENT_SYMBOLS = ("diamond", "x", "triangle-up", "square", "star", "cross", "triangle-down", "hexagon")
MESSAGE_COLOR = "#1f77b4"
EVENT_COLORS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
GAP_COLOR = "rgba(128, 128, 128, 0.18)"
DELAY_COLOR = "#d62728"
SUMMARY_CHARS = 60
HIT_COLOR = "#ff7f0e"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # as plotly writes a datetime (isoformat), to the second
# a figure never holds more message points than this; above it, a density (see timeline_figure)
MAX_POINTS = 10_000
EDGE_CLASSES = 5
DENSITY_BINS = ("1m", "5m", "15m", "1h", "3h", "6h", "1d")


PeopleLike = People | Mapping[str, Iterable[str]]
KEY, LABEL = "__key", "__label"


def _as_people(people: PeopleLike | None) -> People | None:
    if people is None or isinstance(people, People):
        return people
    return People.from_identities(people)


def person_keys(frame: pl.DataFrame, people: PeopleLike | None = None, *, sender_id: str = "sender_id",
                sender_name: str = "sender_name") -> pl.DataFrame:
    """``frame`` with ``__key`` (one value per person) and ``__label`` (a distinct label per key) for its senders.

    ``people``: a :class:`~investigator.analysis.people.People` (or the case's identities mapping,
    person id -> accounts). Without it, a frame already resolved (``person_id`` / ``person`` columns,
    e.g. reports' ``distinct_messages``) is used as it is; otherwise nobody is linked. A linked
    account's key is its person id and its label the person's name; an unknown account's key is
    ``platform:account`` and its label "display name (platform)". Two keys that would show the same
    label (two strangers called 王芳 on one platform) get the person id or account id appended, so
    labels never collide. Vectorized: no per-row Python.
    """
    resolved = _as_people(people)
    if resolved is not None or not {PERSON_ID, PERSON} <= set(frame.columns):
        frame = (resolved or People()).resolve(frame, sender_id=sender_id, sender_name=sender_name)
    account = pl.coalesce(pl.col(sender_id), pl.col(sender_name)) if sender_id in frame.columns \
        else pl.col(sender_name) if sender_name in frame.columns else pl.lit(None, dtype=pl.String)
    platform = platform_expr() if "source" in frame.columns else pl.lit(None, dtype=pl.String)
    key = pl.coalesce(pl.col(PERSON_ID), pl.format("{}:{}", platform, account), account, pl.lit("?"))
    out = frame.with_columns(key.alias(KEY), pl.col(PERSON).fill_null("?").alias(LABEL))
    clash = pl.col(KEY).n_unique().over(LABEL) > 1
    suffix = pl.coalesce(pl.col(PERSON_ID), account, pl.col(KEY))
    return out.with_columns(pl.when(clash).then(pl.format("{} [{}]", pl.col(LABEL), suffix))
                            .otherwise(pl.col(LABEL)).alias(LABEL))


def conversation_names(frame: pl.DataFrame) -> pl.Expr:
    """Each row's conversation as shown: ``conversation`` (reports' resolved name), else a non-blank
    ``conversation_name``, else the id."""
    parts = [pl.col(c).cast(pl.String) for c in ("conversation", "conversation_name", "conversation_id")
             if c in frame.columns]
    if not parts:
        return pl.lit(None, dtype=pl.String)
    return pl.coalesce([pl.when(p.str.strip_chars() != "").then(p) for p in parts])


def _distinct_labels(keys: Sequence[str], labels: Mapping[str, str], *, alternatives: Mapping[str, str] | None = None,
                     first: Sequence[str] = ()) -> dict[str, str]:
    """``labels`` for ``keys`` such that no two keys show the same text.

    Keys in ``first`` (people) keep their label; another key whose label is taken uses its entry in
    ``alternatives`` (a conversation: "name (platform)"), and a label still shared gets the key appended.
    """
    shown = {k: labels.get(k, k) for k in keys}
    taken = {shown[k] for k in first if k in shown}
    seen: dict[str, int] = {}
    for text in shown.values():
        seen[text] = seen.get(text, 0) + 1
    for k in keys:
        if k not in first and (shown[k] in taken or seen[shown[k]] > 1) and alternatives and k in alternatives:
            shown[k] = alternatives[k]
    counts: dict[str, int] = {}
    for text in shown.values():
        counts[text] = counts.get(text, 0) + 1
    return {k: (f"{text} [{k}]" if counts[text] > 1 else text) for k, text in shown.items()}


def _local(series: pl.Series, tz: str) -> list[str | None]:
    """Wall-clock times in ``tz`` as ISO strings (plotly.js has no zones; the axis names it).

    Strings, not datetime objects: plotly validates and serializes a list of 80,000 datetimes in
    seconds, the same strings in a tenth of that (docs/benchmarks.md, figures).
    """
    if series.dtype == pl.Datetime and getattr(series.dtype, "time_zone", None):
        series = series.dt.convert_time_zone(tz).dt.replace_time_zone(None)
    if series.dtype == pl.Datetime:
        return series.dt.strftime(TIME_FORMAT).to_list()
    return [None if v is None else str(v) for v in series.to_list()]


def _short_expr(column: str, limit: int = SUMMARY_CHARS) -> pl.Expr:
    """``column`` on one line, cut to ``limit`` characters with an ellipsis (vectorized)."""
    value = pl.col(column).cast(pl.String).fill_null("").str.replace_all("\n", " ", literal=True)
    return pl.when(value.str.len_chars() > limit).then(value.str.slice(0, limit - 1) + "…").otherwise(value)


def _empty(fig: go.Figure, lang: str | None) -> go.Figure:
    fig.add_annotation(text=label("empty", lang), showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def timeline_figure(messages: pl.DataFrame | None = None, events: pl.DataFrame | None = None, *,
                    tz: str = DEFAULT_TZ, gaps: pl.DataFrame | None = None, delays: pl.DataFrame | None = None,
                    highlight: Sequence[str] = (), lanes: dict[str, str] | None = None, lang: str | None = None,
                    title: str | None = None, max_lanes: int = 60, max_points: int = MAX_POINTS,
                    people: PeopleLike | None = None) -> go.Figure:
    """A lane per participant (message senders, event actors), events overlaid, gaps and delays marked.

    ``gaps``: a :func:`~investigator.analysis.timeline.silences` frame (``start``, ``end``, ``minutes``),
    drawn as shaded spans — layout rectangles set in one update, and a legend trace (kind ``gap``). ``delays``: a
    :func:`~investigator.analysis.timeline.first_replies` frame (``ts``, ``sender``, ``reply_ts``,
    ``replier``, ``delay_minutes``), drawn as dashed arrows from the customer's message to the first
    reply — one trace (kind ``delay``; a dot marks the reply end). ``highlight``: item ids drawn larger (e.g. search hits).
    ``lanes`` maps a sender or actor (account id or name) to its lane, so that one person's accounts
    on several platforms share one lane (see :func:`person_lanes`). ``people`` (a ``People`` or the
    case's identities) makes it one lane per person, named as the person is: a linked account's lane
    is the person's name, an unknown account's "display name (platform)", labels never shared by two
    people (see :func:`person_keys`); event actors and delay ends take the same lanes. Without
    ``people`` and ``lanes``, a frame already resolved (``person`` column) is drawn per person too.
    Lanes beyond ``max_lanes`` (the least active) are dropped from the picture, not from the data.
    More than ``max_points`` messages are drawn as a density (kind ``density``: one marker per lane and
    time bin, sized by its count, bins of 1 minute up to 1 day as needed), with the highlighted
    messages on top as points (kind ``message``). The cost is linear in rows, gaps and delays: no
    layout shape or annotation is added per item.
    """
    fig = go.Figure()
    by_person = messages is not None and messages.height > 0 and (
        people is not None or (not lanes and PERSON in messages.columns))
    if by_person and messages is not None:
        messages, lanes = _person_lanes(messages, _as_people(people), lanes)
    has_rows = (messages is not None and messages.height > 0) or (events is not None and events.height > 0)
    frame = timeline(messages if messages is not None else None, events, tz=tz) if has_rows else None
    fig.update_layout(title=title or label("timeline", lang), template="plotly_white", height=None,
                      xaxis_title=zone_note(tz, lang), yaxis_title=label("lane", lang),
                      legend={"orientation": "h", "y": -0.15}, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    if frame is None or frame.height == 0:
        return _empty(fig, lang)
    frame = frame.with_columns(pl.col("lane").fill_null("?"))
    if lanes:  # message lanes are already per person when ``by_person``: only event actors are mapped then
        mapped = pl.col("lane").replace(lanes)
        frame = frame.with_columns((pl.when(pl.col("kind") == "event").then(mapped).otherwise(pl.col("lane"))
                                    if by_person else mapped).alias("lane"))
    busiest = frame.group_by("lane").agg(pl.len().alias("n"), pl.col("ts").min().alias("first")).sort(
        ["n", "first"], descending=[True, False]).head(max_lanes)
    order = busiest.sort("first")["lane"].to_list()
    frame = frame.filter(pl.col("lane").is_in(order))
    msgs = frame.filter(pl.col("kind") == "message")
    if msgs.height:
        fig.add_traces(_message_traces(msgs, list(highlight), tz, lang, max_points))
    evs = frame.filter(pl.col("kind") == "event")
    for index, kind in enumerate(sorted(evs["what"].fill_null("event").unique().to_list()) if evs.height else []):
        part = evs.filter(pl.col("what").fill_null("event") == kind)
        fig.add_trace(go.Scatter(
            x=_local(part["ts"], tz), y=part["lane"].to_list(), mode="markers",
            name=f"{label('events', lang)}: {kind}",
            marker={"color": EVENT_COLORS[index % len(EVENT_COLORS)], "size": 13,
                    "symbol": EVENT_SYMBOLS[index % len(EVENT_SYMBOLS)], "line": {"width": 1, "color": "black"}},
            customdata=part["item_id"].to_list(),
            text=part.select(pl.concat_str([pl.lit(kind), pl.col("host"), pl.col("ip"), pl.col("outcome")],
                                           separator=" ", ignore_nulls=True).str.strip_chars()).to_series().to_list(),
            hovertemplate="%{x|%Y-%m-%d %H:%M:%S}<br>%{y}<br>%{text}<extra></extra>",
            meta={"kind": "event", "event_type": kind}))
    if gaps is not None and gaps.height:
        shapes, legend = _gaps(gaps, tz, lang, order[0])
        fig.update_layout(shapes=shapes)  # all gaps in one layout update (one add_vrect each copied the layout)
        fig.add_trace(legend)
    if delays is not None and delays.height:
        if lanes:
            delays = delays.with_columns(pl.col("sender").replace(lanes), pl.col("replier").replace(lanes))
        shown = delays.filter(pl.col("reply_ts").is_not_null() & pl.col("sender").is_in(order)
                              & pl.col("replier").is_in(order))
        if shown.height:
            fig.add_trace(_delay_trace(shown, tz, lang))
    fig.update_layout(yaxis={"categoryorder": "array", "categoryarray": list(reversed(order)), "type": "category"},
                      height=max(320, 60 + 28 * len(order)))
    return fig


def _message_traces(msgs: pl.DataFrame, highlight: list[str], tz: str, lang: str | None,
                    max_points: int) -> list[go.Scatter]:
    """One point per message, or (above ``max_points``) a density plus the highlighted messages as points."""
    marked = pl.col("item_id").is_in(pl.Series(highlight, dtype=pl.String).implode()) if highlight else pl.lit(False)
    hover = "%{x|%Y-%m-%d %H:%M:%S}<br>%{y}<br>%{text}<extra></extra>"
    if msgs.height <= max_points:
        sizes = msgs.select(pl.when(marked).then(14).otherwise(8)).to_series().to_list()
        return [go.Scatter(
            x=_local(msgs["ts"], tz), y=msgs["lane"].to_list(), mode="markers", name=label("messages", lang),
            marker={"color": MESSAGE_COLOR, "size": sizes, "symbol": "circle", "line": {"width": 0}},
            customdata=msgs["item_id"].to_list(), text=msgs.select(_short_expr("summary")).to_series().to_list(),
            hovertemplate=hover, meta={"kind": "message"})]
    traces = [_density_trace(msgs, tz, lang, max_points, kind="density", color=MESSAGE_COLOR,
                             name=label("messages", lang))]
    hits = msgs.filter(marked)
    if hits.height > max_points:
        traces.append(_density_trace(hits, tz, lang, max_points, kind="hit_density", color=HIT_COLOR,
                                     name=label("hits", lang)))
    elif hits.height:
        traces.append(go.Scatter(
            x=_local(hits["ts"], tz), y=hits["lane"].to_list(), mode="markers", name=label("hits", lang),
            marker={"color": HIT_COLOR, "size": 12, "symbol": "circle", "line": {"width": 1, "color": "white"}},
            customdata=hits["item_id"].to_list(), text=hits.select(_short_expr("summary")).to_series().to_list(),
            hovertemplate=hover, meta={"kind": "message"}))
    return traces


def density_bins(msgs: pl.DataFrame, max_points: int) -> str:
    """The finest bin of ``DENSITY_BINS`` in which ``msgs`` (columns ts, lane) occupy at most ``max_points`` cells."""
    for every in DENSITY_BINS:
        cells = msgs.select(pl.struct(pl.col("lane"), pl.col("ts").dt.truncate(every)).n_unique()).item()
        if cells <= max_points:
            return every
    return DENSITY_BINS[-1]


def _density_trace(msgs: pl.DataFrame, tz: str, lang: str | None, max_points: int, *, kind: str, color: str,
                   name: str) -> go.Scatter:
    every = density_bins(msgs, max_points)
    # bins are cut in local time, so a day bin is a local day
    local = msgs.with_columns(pl.col("ts").dt.convert_time_zone(tz).dt.truncate(every).alias("bin"))
    cells = local.group_by("lane", "bin").agg(pl.len().alias("n"), pl.col("item_id").first().alias("first")).sort(
        "bin", "lane")
    top = max(int(cells["n"].max() or 1), 1)  # type: ignore[arg-type]
    sizes = cells.select((6 + 16 * (pl.col("n") / top).sqrt()).round(1)).to_series().to_list()
    unit = label("messages", lang)
    return go.Scatter(
        x=_local(cells["bin"], tz), y=cells["lane"].to_list(), mode="markers", name=f"{name} ({every})",
        marker={"color": color, "size": sizes, "opacity": 0.6, "symbol": "circle", "line": {"width": 0}},
        customdata=cells["first"].to_list(),
        text=cells.select(pl.format("{} " + unit, pl.col("n"))).to_series().to_list(),
        hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y}<br>%{text}<extra></extra>",
        meta={"kind": kind, "bin": every, "messages": msgs.height})


def _person_lanes(messages: pl.DataFrame, people: People | None,
                  lanes: Mapping[str, str] | None) -> tuple[pl.DataFrame, dict[str, str]]:
    """``messages`` with each sender named by its person lane, and account/name -> lane for actors and delays.

    The mapping sends every sender id and display name (as :func:`~investigator.analysis.timeline`
    and ``first_replies`` name a sender) to its person's lane, and each linked account of ``people``
    to the person's name, so an event's actor joins the lane of the person it belongs to.
    """
    keyed = person_keys(messages, people)
    out: dict[str, str] = dict(lanes or {})
    if people is not None:
        out.update({account: people.label(pid) for account, pid in people.accounts.items()})
    for col in ("sender_name", "sender_id"):  # names first: an id mapping wins over a shared display name
        if col in keyed.columns:
            out.update(dict(zip(*keyed.select(col, LABEL).drop_nulls().unique(col, keep="first").get_columns())))
    return keyed.with_columns(pl.col(LABEL).alias("sender_name")).drop(KEY, LABEL), out


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


def _interleave(*columns: list[Any], gap: Any = None) -> list[Any]:
    """[a0, b0, ..., gap, a1, b1, ..., gap, ...]: one polyline per row, separated by ``gap``."""
    out: list[Any] = []
    for values in zip(*columns):
        out.extend(values)
        out.append(gap)
    return out


def _gaps(gaps: pl.DataFrame, tz: str, lang: str | None, lane: str) -> tuple[list[dict[str, Any]], go.Scatter]:
    """Every gap as a shaded layout rectangle (full height), plus a legend trace carrying their hover text."""
    starts, ends = _local(gaps["start"], tz), _local(gaps["end"], tz)
    shapes = [{"type": "rect", "xref": "x", "yref": "paper", "x0": s, "x1": e, "y0": 0, "y1": 1,
               "fillcolor": GAP_COLOR, "line": {"width": 0}, "layer": "below"} for s, e in zip(starts, ends)]
    if "minutes" in gaps.columns:
        notes = gaps.select(pl.format(f"{label('gap', lang)} {{}} {label('minutes', lang)}",
                                      pl.col("minutes").round(0).cast(pl.Int64))).to_series().to_list()
    else:
        notes = [label("gap", lang)] * gaps.height
    legend = go.Scatter(x=starts, y=[lane] * len(starts), mode="markers", name=label("gaps", lang), text=notes,
                        hoverinfo="text", marker={"color": GAP_COLOR, "size": 12, "symbol": "square"},
                        visible="legendonly", meta={"kind": "gap", "count": gaps.height})
    return shapes, legend


def _delay_trace(delays: pl.DataFrame, tz: str, lang: str | None) -> go.Scatter:
    """Every delay as a dashed line from the message to the reply, a dot at the reply; one trace."""
    n = delays.height
    notes = delays.select(pl.format(f"{label('delay', lang)} {{}} {label('minutes', lang)}",
                                    pl.col("delay_minutes").round(0).cast(pl.Int64))).to_series().to_list()
    return go.Scatter(
        x=_interleave(_local(delays["ts"], tz), _local(delays["reply_ts"], tz)),
        y=_interleave(delays["sender"].to_list(), delays["replier"].to_list()),
        text=_interleave(notes, notes, gap=""), mode="lines+markers", hoverinfo="text", name=label("delays", lang),
        line={"color": DELAY_COLOR, "dash": "dash", "width": 2},
        marker={"symbol": "circle", "color": DELAY_COLOR, "size": _interleave([0] * n, [7] * n, gap=0)},
        meta={"kind": "delay", "count": n})


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
                         max_nodes: int = 40, title: str | None = None,
                         people: PeopleLike | None = None) -> go.Figure:
    """Who talks to whom: people (circles) and conversations without member lists (squares) on a circle.

    One node per person: senders and recipients are resolved through ``people`` (a ``People`` or the
    case's identities; see :func:`person_keys`), so one person's WeCom, WeChat and Slack accounts are
    one node labelled with the person's name; an unknown account is labelled "display name
    (platform)", a conversation by its name where one exists. No two nodes carry the same label.
    Edges come from :func:`~investigator.analysis.metrics.contact_edges` over the resolved frame;
    line width grows with the message count. ``names`` maps node ids (person ids, accounts,
    conversation ids) to display names and wins over the resolved labels. Only the ``max_nodes``
    busiest nodes are drawn; labels sit outside the circle, away from the centre.
    """
    fig = go.Figure()
    fig.update_layout(title=title or label("contacts", lang), template="plotly_white", showlegend=False,
                      height=520, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    if messages.height == 0:
        return _empty(fig, lang)
    work, labels, alternatives = _contact_frame(messages, _as_people(people))
    edges = contact_edges(work, sender=KEY)
    if edges.height == 0:
        return _empty(fig, lang)
    weight: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for source, target, kind, count in edges.iter_rows():
        weight[source] = weight.get(source, 0) + count
        weight[target] = weight.get(target, 0) + count
        kinds.setdefault(source, "person")
        kinds[target] = kind if kinds.get(target) != "person" else "person"
    nodes = sorted(weight, key=lambda n: (-weight[n], n))[:max_nodes]
    labels.update({n: names[n] for n in nodes if names and n in names})
    shown = _distinct_labels(nodes, labels, alternatives=alternatives,
                             first=[n for n in nodes if kinds.get(n) == "person"])
    angle = {n: 2 * math.pi * i / len(nodes) for i, n in enumerate(nodes)}
    position = {n: (math.cos(a), math.sin(a)) for n, a in angle.items()}
    top = max(int(edges["count"].max() or 1), 1)  # type: ignore[arg-type]
    # edges in a few width classes, one trace each (a trace per edge costs a trace per edge in the browser);
    # an invisible marker at each edge's middle carries its hover text
    classes: dict[int, list[tuple[str, str, int]]] = {}
    for source, target, _kind, count in edges.iter_rows():
        if source in position and target in position:
            classes.setdefault(min(EDGE_CLASSES - 1, int(EDGE_CLASSES * count / (top + 1))), []).append(
                (source, target, count))
    for width_class, members in sorted(classes.items()):
        xs = _interleave([position[s][0] for s, _t, _n in members], [position[t][0] for _s, t, _n in members])
        ys = _interleave([position[s][1] for s, _t, _n in members], [position[t][1] for _s, t, _n in members])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                 line={"width": 1 + 6 * (width_class + 1) / EDGE_CLASSES,
                                       "color": "rgba(31,119,180,0.45)"},
                                 meta={"kind": "edge", "edges": [[s, t, n] for s, t, n in members]}))
    drawn = [e for members in classes.values() for e in members]
    if drawn:
        fig.add_trace(go.Scatter(
            x=[(position[s][0] + position[t][0]) / 2 for s, t, _n in drawn],
            y=[(position[s][1] + position[t][1]) / 2 for s, t, _n in drawn], mode="markers",
            marker={"size": 8, "opacity": 0}, hoverinfo="text",
            text=[f"{shown[s]} → {shown[t]}: {n}" for s, t, n in drawn],
            meta={"kind": "edge_label"}))
    for kind, symbol in (("person", "circle"), ("conversation", "square")):
        chosen = [n for n in nodes if kinds.get(n) == kind]
        if not chosen:
            continue
        fig.add_trace(go.Scatter(
            x=[position[n][0] for n in chosen], y=[position[n][1] for n in chosen], mode="markers+text",
            text=[shown[n] for n in chosen], textposition=[_outward(angle[n]) for n in chosen], customdata=chosen,
            marker={"size": [10 + 20 * math.sqrt(weight[n] / max(weight.values())) for n in chosen],
                    "symbol": symbol, "color": MESSAGE_COLOR if kind == "person" else "#ff7f0e"},
            hovertemplate="%{text}: %{customdata}<extra></extra>", meta={"kind": "node", "node_kind": kind}))
    fig.update_xaxes(range=[-1.6, 1.6])  # room for the labels outside the circle
    return fig


def _outward(angle: float) -> str:
    """A label position pointing away from the circle's centre (labels of neighbours do not stack)."""
    x, y = math.cos(angle), math.sin(angle)
    vertical = "top" if y > 0.38 else "bottom" if y < -0.38 else "middle"
    horizontal = "right" if x > 0.38 else "left" if x < -0.38 else "center"
    return f"{vertical} {horizontal}"


def _contact_frame(messages: pl.DataFrame,
                   people: People | None) -> tuple[pl.DataFrame, dict[str, str], dict[str, str]]:
    """``messages`` keyed by person (``__key`` senders, recipients mapped to the same keys), key -> label,
    and conversation id -> "name (platform)" (its label where the name alone is shared).

    A recipient account is mapped to its person (``people``, else the person the frame resolves its
    sender account to), else to ``platform:account`` like an unknown sender, labelled "account (platform)".
    A conversation named (or, without a name, identified) by a person's account, a direct chat, is named
    after that person.
    """
    work = person_keys(messages, people)
    labels: dict[str, str] = dict(zip(*work.select(KEY, LABEL).unique(KEY, keep="first").get_columns()))
    owners: dict[str, str] = {}  # account -> person key
    if "sender_id" in work.columns:
        for account, key in work.select("sender_id", KEY).drop_nulls().unique("sender_id").iter_rows():
            owners[account] = key
    if people is not None:
        owners.update(people.accounts)
    if "recipients" in work.columns:
        platform = platform_expr() if "source" in work.columns else pl.lit(None, dtype=pl.String)
        rows = work.with_row_index("__row")
        flat = rows.select("__row", pl.col("recipients").alias("__r"), platform.alias("__p")).explode("__r")
        flat = flat.with_columns(pl.coalesce(
            pl.col("__r").replace_strict(list(owners), list(owners.values()), default=None, return_dtype=pl.String),
            pl.format("{}:{}", pl.col("__p"), pl.col("__r")), pl.col("__r")).alias("__k"))
        for key, account, plat in flat.select("__k", "__r", "__p").drop_nulls("__r").unique("__k").iter_rows():
            if key not in labels:
                labels[key] = people.label(key) if people is not None and key in people.names \
                    else f"{account} ({plat})" if plat else account
        mapped = flat.group_by("__row", maintain_order=True).agg(pl.col("__k").drop_nulls().alias("recipients"))
        work = rows.drop("recipients").join(mapped, on="__row", how="left", maintain_order="left").drop("__row")
    alternatives: dict[str, str] = {}
    if "conversation_id" in work.columns:
        platform = platform_expr() if "source" in work.columns else pl.lit(None, dtype=pl.String)
        conv = work.select(pl.col("conversation_id").cast(pl.String), conversation_names(work).alias("__c"),
                           platform.alias("__p"))
        for cid, name, plat in conv.drop_nulls(["conversation_id", "__c"]).unique(
                "conversation_id", keep="first").iter_rows():
            if name in owners:  # a direct chat named by the other party's account: the party's name
                owner = owners[name]
                name = labels.get(owner) or (people.label(owner) if people is not None else owner)
            labels.setdefault(cid, name)
            if plat:
                alternatives[cid] = f"{name} ({plat})"
    return work, labels, alternatives


HIT_GROUPS = {"sender": ("sender_name", "sender_id"), "conversation": ("conversation_name", "conversation_id"),
              "msg_type": ("msg_type",), "day": ("ts",), "term": ("matched_terms",)}


def hit_counts_figure(hits: pl.DataFrame, *, by: str = "sender", tz: str = DEFAULT_TZ, lang: str | None = None,
                      top: int = 20, title: str | None = None, people: PeopleLike | None = None) -> go.Figure:
    """Horizontal bars of hit counts per ``by``: sender, conversation, msg_type, day (in ``tz``) or term.

    ``sender`` counts per person: one bar for all the accounts ``people`` (a ``People`` or the case's
    identities) links to one person, labelled with the person's name; an unknown account is shown by
    display name and platform ("王芳 (wechat)"); a frame already resolved (``person_id`` / ``person``)
    is used as it is (see :func:`person_keys`). ``conversation`` counts per conversation name where
    one exists, else its id. ``term`` counts rows per matched query term (the ``matched_terms`` column
    of a search result). Raises ValueError for an unknown ``by``.
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
    if not present and not (by == "sender" and PERSON in hits.columns):
        return _empty(fig, lang)
    if by == "sender":
        frame = person_keys(hits, people).select(pl.col(LABEL).alias("key"))
    else:
        if by == "day":
            key = pl.col("ts").dt.convert_time_zone(tz).dt.date().cast(pl.String)
        elif by == "term":
            key = pl.col("matched_terms")
        elif by == "conversation":
            key = conversation_names(hits)
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
