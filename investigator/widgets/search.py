"""SearchPanel: keywords, mode, pinyin, a time range inside the grant, people, groups, types -> paged hits + context.

    >>> panel = SearchPanel(case, lang="en")                 # doctest: +SKIP
    >>> panel.query.value = "投诉"; panel.count_value         # doctest: +SKIP
    3

Every change of a control re-runs the pipeline of :mod:`investigator.analysis` functions on the
case's messages (loaded once): ``time_window`` -> ``by_types`` -> ``by_senders`` ->
``by_participants`` -> ``by_groups`` -> ``search``. The result frame is :attr:`SearchPanel.results`;
callbacks registered with :meth:`SearchPanel.on_results` see every new result (a timeline, a tag
panel). A time range outside the grant's window is refused with the policy's reason
(:meth:`set_range` raises PolicyDenied, the pickers revert and say so).

Distinct messages by default: the case's rows go through :func:`investigator.analysis.dedupe`
(copies of one message from several exports merged; ``copies`` and ``sources`` say how many
exports corroborate it), so counts, the table, tags, exports and linked figures see each message
once. Untick "distinct" to see every copy; "Show copies" lists the copies of the focused message.
The ▸ button shows a few messages around a hit; "Open thread" pages through the whole
conversation. Saved searches (parameters only) and the export bar (with ``exporter=``) sit below.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ipywidgets as widgets
import polars as pl

from investigator import analysis as A
from investigator.errors import InvestigatorError, PolicyDenied
from investigator.widgets.conversation import ThreadView, context_html
from investigator.widgets.export import ExportBar
from investigator.widgets.i18n import case_lang, label
from investigator.widgets.saved import SavedSearches
from investigator.widgets.table import PagedTable, cut

PRESETS = {"grant": None, "last_week": timedelta(days=7), "last_day": timedelta(days=1),
           "last_hour": timedelta(hours=1)}
MODES = ("exact", "word", "fuzzy", "regex")


def grant_range(window: tuple[datetime, datetime], preset: str) -> tuple[datetime, datetime]:
    """The [start, end) of a preset, relative to the grant window's end and never before its start.

    ``preset`` is one of ``PRESETS`` (grant, last_week, last_day, last_hour). Raises ValueError otherwise.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}")
    start, end = window
    span = PRESETS[preset]
    return (start if span is None else max(start, end - span)), end


def check_range(window: tuple[datetime, datetime], start: datetime, end: datetime) -> None:
    """Raise PolicyDenied (rule ``grant.window``) unless ``window[0] <= start < end <= window[1]``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("range bounds must be aware datetimes")
    if start >= end:
        raise PolicyDenied("the range is empty (start is not before end)", rule="grant.window")
    if start < window[0] or end > window[1]:
        raise PolicyDenied("the range reaches outside the grant's window; only the granted window can be searched",
                           rule="grant.window")


def people_options(messages: pl.DataFrame, identities: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(label, value) per sender in ``messages``: linked accounts collapse to their person id."""
    if messages.height == 0:
        return []
    owner = {account: pid for pid, accounts in identities.items() for account in [pid, *accounts]}
    cols = [c for c in ("sender_id", "sender_name") if c in messages.columns]
    seen: dict[str, str] = {}
    for row in messages.select(cols).unique().iter_rows(named=True):
        sid, name = row.get("sender_id"), row.get("sender_name")
        pid = owner.get(sid or "") or owner.get(name or "")
        if pid:
            linked = [a for a in identities.get(pid, []) if a != pid]
            seen[pid] = f"{linked[0] if linked else pid} ({pid})"
        elif sid:
            seen.setdefault(sid, f"{name} ({sid})" if name and name != sid else sid)
    return sorted(((text, value) for value, text in seen.items()), key=lambda o: o[0])


class SearchPanel(widgets.VBox):
    """Search a case's messages without writing Polars. See the module docstring for the pipeline."""

    def __init__(self, case: Any, *, lang: str | None = None, page_size: int = 25, messages: pl.DataFrame | None = None,
                 before: int = 5, after: int = 5, distinct: bool = True, exporter: Callable[..., Any] | None = None,
                 **kwargs: Any) -> None:
        lang = case_lang(case, lang)
        self.case, self.lang, self.before, self.after = case, lang, before, after
        self.tz = case.timezone
        self.zone = ZoneInfo(self.tz)
        self.window: tuple[datetime, datetime] = tuple(case.window)
        self.identities = case.identities()
        # every copy (as loaded) and one row per distinct message (analysis.dedupe); ``messages`` is the one in use
        self.all_copies: pl.DataFrame = messages if messages is not None else case.messages()
        self.distinct_messages: pl.DataFrame = A.dedupe(self.all_copies, identities=self.identities)
        self.messages: pl.DataFrame = self.distinct_messages if distinct else self.all_copies
        self.group_map = case.groups()
        self.results = self.messages.head(0)
        self.range: tuple[datetime, datetime] = self.window
        self._callbacks: list[Callable[[pl.DataFrame], None]] = []
        self._busy = False
        L = lambda key: label(key, lang)  # noqa: E731 - short label lookups below

        self.query = widgets.Text(placeholder=L("query_placeholder"), description=L("query"),
                                  continuous_update=False, layout=widgets.Layout(width="420px"))
        self.query.add_class("investigator-query")
        self.mode = widgets.Dropdown(options=[(L(f"mode_{m}"), m) for m in MODES], value="exact",
                                     description=L("mode"), layout=widgets.Layout(width="200px"))
        self.mode.add_class("investigator-mode")
        self.pinyin = widgets.Checkbox(value=False, description=L("pinyin"), indent=False,
                                       layout=widgets.Layout(width="90px"))
        self.search_button = widgets.Button(description=L("search"), icon="search", button_style="primary")
        self.preset = widgets.Dropdown(options=[(L(f"preset_{p}"), p) for p in PRESETS] + [(L("preset_custom"),
                                                                                               "custom")],
                                       value="grant", description=L("preset"), layout=widgets.Layout(width="240px"))
        self.preset.add_class("investigator-preset")
        self.start_picker = widgets.NaiveDatetimePicker(description=L("from"), value=self._local(self.window[0]))
        self.end_picker = widgets.NaiveDatetimePicker(description=L("to"), value=self._local(self.window[1]))
        self.range_note = widgets.HTML(self._window_text())
        options = people_options(self.messages, self.identities)
        self.senders = widgets.SelectMultiple(options=options, description=L("senders"), rows=6)
        self.participants = widgets.SelectMultiple(options=options, description=L("participants"), rows=6)
        self.groups = widgets.SelectMultiple(options=sorted(self.group_map), description=L("groups"), rows=6)
        types = sorted(self.messages["msg_type"].drop_nulls().unique().to_list()) if self.messages.height else []
        self.types = widgets.SelectMultiple(options=types, description=L("types"), rows=6)
        self.count = widgets.HTML()
        self.count.add_class("investigator-count")
        self.status = widgets.HTML()
        self.progress = widgets.IntProgress(value=0, min=0, max=6, description=L("working"),
                                            layout=widgets.Layout(visibility="hidden"))
        self.distinct = widgets.Checkbox(value=distinct, description=L("distinct"), indent=False,
                                         layout=widgets.Layout(width="190px"))
        self.distinct.add_class("investigator-distinct")
        self.table = PagedTable(page_size=page_size, tz=self.tz, lang=lang)
        self.context = widgets.HTML(context_html(self.messages.head(0), tz=self.tz, lang=lang))
        self.context.add_class("investigator-context-pane")
        self.thread_button = widgets.Button(description=L("open_thread"), icon="comments", disabled=True)
        self.thread_button.add_class("investigator-open-thread")
        self.copies_button = widgets.Button(description=L("show_copies"), icon="clone", disabled=True)
        self.copies = widgets.HTML()
        self.copies.add_class("investigator-copies-pane")
        self.thread = ThreadView(self.messages, tz=self.tz, lang=lang)
        self.saved = SavedSearches(case)
        self.saved_name = widgets.Text(description=L("search_name"), layout=widgets.Layout(width="260px"))
        self.save_button = widgets.Button(description=L("save_search"), icon="save")
        self.saved_list = widgets.Dropdown(description=L("saved_searches"), options=[],
                                           layout=widgets.Layout(width="320px"))
        self.run_saved_button = widgets.Button(description=L("run_search"), icon="play")
        self.saved_list.add_class("investigator-saved-list")
        self.export_bar = ExportBar(case, self, exporter=exporter, lang=lang)

        for control in (self.query, self.mode, self.pinyin, self.senders, self.participants, self.groups, self.types):
            control.observe(lambda _c: None if self._busy else self.refresh(), names="value")
        self.distinct.observe(lambda change: None if self._busy else self.set_distinct(change["new"]), names="value")
        self.thread_button.on_click(lambda _b: self.show_thread(self.table.focused))
        self.copies_button.on_click(lambda _b: self.show_copies(self.table.focused))
        self.save_button.on_click(lambda _b: self._save_clicked())
        self.run_saved_button.on_click(lambda _b: self._run_clicked())
        self.search_button.on_click(lambda _b: self.refresh())
        self.preset.observe(self._on_preset, names="value")
        self.start_picker.observe(self._on_picker, names="value")
        self.end_picker.observe(self._on_picker, names="value")
        self.table.observe(lambda change: self.show_context(change["new"]), names="focused")

        rows = [
            widgets.HBox([self.query, self.mode, self.pinyin, self.search_button]),
            widgets.HBox([self.preset, self.start_picker, self.end_picker]),
            self.range_note,
            widgets.HBox([self.senders, self.participants, self.groups, self.types]),
            widgets.HBox([self.count, self.distinct, self.progress]),
            self.status,
            widgets.HBox([widgets.Box([self.table], layout=widgets.Layout(width="68%", overflow="auto")),
                          widgets.VBox([self.context, widgets.HBox([self.thread_button, self.copies_button]),
                                        self.copies], layout=widgets.Layout(width="32%", padding="0 0 0 8px"))]),
            self.thread,
            widgets.HBox([self.saved_name, self.save_button, self.saved_list, self.run_saved_button]),
            self.export_bar,
        ]
        super().__init__(rows, **kwargs)
        self.add_class("investigator-search-panel")
        self._refresh_saved()
        self.refresh()

    # --- times ----------------------------------------------------------------------------

    def _local(self, value: datetime) -> datetime:
        return value.astimezone(self.zone).replace(tzinfo=None)

    def _aware(self, value: datetime) -> datetime:
        return value.replace(tzinfo=self.zone) if value.tzinfo is None else value

    def _fmt(self, value: datetime) -> str:
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def _window_text(self) -> str:
        start, end = self.window
        return (f"<span style='color:#555'>{html.escape(label('window', self.lang))}: {self._fmt(start)} – "
                f"{self._fmt(end)} ({html.escape(self.tz)})</span>")

    def set_range(self, start: datetime, end: datetime) -> None:
        """Search only ``[start, end)`` (aware, or naive in the archive's zone).

        Raises PolicyDenied (rule ``grant.window``) when the range leaves the grant's window or is
        empty; the previous range then stays in force.
        """
        start, end = self._aware(start), self._aware(end)
        check_range(self.window, start, end)
        self.range = (start, end)
        self._sync_pickers()
        self.refresh()

    def _sync_pickers(self) -> None:
        self._busy = True
        try:
            self.start_picker.value = self._local(self.range[0])
            self.end_picker.value = self._local(self.range[1])
        finally:
            self._busy = False

    def _on_preset(self, change: dict[str, Any]) -> None:
        if change["new"] == "custom" or self._busy:
            return
        self.set_range(*grant_range(self.window, change["new"]))

    def _on_picker(self, _change: dict[str, Any]) -> None:
        if self._busy or self.start_picker.value is None or self.end_picker.value is None:
            return
        try:
            self.set_range(self.start_picker.value, self.end_picker.value)
        except PolicyDenied as exc:
            self.status.value = (f"<span style='color:#b00020'>{html.escape(label('outside_grant', self.lang))}: "
                                 f"{html.escape(exc.reason)}</span>")
            self._sync_pickers()
            return
        if self.preset.value != "custom" and self.range != grant_range(self.window, self.preset.value):
            self._busy = True
            try:
                self.preset.value = "custom"
            finally:
                self._busy = False

    # --- the pipeline -------------------------------------------------------------------------

    def on_results(self, callback: Callable[[pl.DataFrame], None]) -> None:
        """Call ``callback(results)`` now and after every refresh."""
        self._callbacks.append(callback)
        callback(self.results)

    @property
    def count_value(self) -> int:
        return self.results.height

    def filtered(self) -> pl.DataFrame:
        """The messages after range, type, people and group filters (before the keyword search)."""
        steps = self._filter_steps()
        frame = self.messages
        for step in steps:
            frame = step(frame)
        return frame

    def _filter_steps(self) -> list[Callable[[pl.DataFrame], pl.DataFrame]]:
        start, end = self.range
        steps: list[Callable[[pl.DataFrame], pl.DataFrame]] = [lambda f: A.time_window(f, start, end, tz=self.tz)]
        if self.types.value:
            steps.append(lambda f: A.by_types(f, list(self.types.value)))
        if self.senders.value:
            steps.append(lambda f: A.by_senders(f, list(self.senders.value), identities=self.identities))
        if self.participants.value:
            steps.append(lambda f: A.by_participants(f, list(self.participants.value), identities=self.identities))
        if self.groups.value:
            steps.append(lambda f: A.by_groups(f, list(self.groups.value), groups=self.group_map,
                                               identities=self.identities))
        return steps

    def refresh(self) -> pl.DataFrame:
        """Run the pipeline with the current control values; update count, table and callbacks."""
        steps = self._filter_steps()
        query = self.query.value.strip()
        self.progress.max = len(steps) + 1
        self.progress.value = 0
        self.progress.layout.visibility = "visible"
        try:
            frame = self.messages
            for step in steps:
                frame = step(frame)
                self.progress.value += 1
            base = frame.height
            if query:
                frame = A.search(frame, query, mode=self.mode.value, pinyin=self.pinyin.value, tz=self.tz,
                                 identities=self.identities)
                if hasattr(self.case, "record_search"):
                    self.case.record_search(query, mode=self.mode.value, hits=frame.height, searched=base)
            else:
                frame = frame.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("matched_terms"))
            self.progress.value += 1
        except InvestigatorError as exc:
            self.status.value = f"<span style='color:#b00020'>{html.escape(label('error', self.lang))}: " \
                                f"{html.escape(str(exc))}</span>"
            return self.results
        finally:
            self.progress.layout.visibility = "hidden"
        self.status.value = ""
        self.results = frame
        self.count.value = html.escape(label("count_text", self.lang)).format(
            hits=f"<b class='investigator-hits'>{frame.height:,}</b>", base=f"{base:,}",
            total=f"{self.messages.height:,}")
        if "copies" in frame.columns and self.distinct.value:
            copies = int(frame["copies"].sum() or 0)
            self.count.value += " · " + html.escape(label("copies_total", self.lang).format(n=f"{copies:,}"))
        self.table.set_frame(frame, mode=self.mode.value, query=query, pinyin=bool(self.pinyin.value))
        for callback in self._callbacks:
            callback(frame)
        return frame

    # --- distinct messages, copies, thread -------------------------------------------------------------

    def set_distinct(self, distinct: bool) -> pl.DataFrame:
        """Search distinct messages (one row per message, corroboration counted) or every copy; re-runs."""
        self.messages = self.distinct_messages if distinct else self.all_copies
        self.thread.messages = self.messages
        if self.distinct.value != distinct:
            self._busy = True
            try:
                self.distinct.value = distinct
            finally:
                self._busy = False
        return self.refresh()

    def copies_of(self, message_id: str) -> pl.DataFrame:
        """Every loaded copy of the distinct message ``message_id`` (by its copies' record hashes)."""
        row = self.distinct_messages.filter(pl.col("message_id") == message_id)
        if row.height == 0:
            return self.all_copies.filter(pl.col("message_id") == message_id)
        hashes = [h for h in (row["record_hashes"][0].to_list() if "record_hashes" in row.columns else []) if h]
        if not hashes or "record_hash" not in self.all_copies.columns:
            return self.all_copies.filter(pl.col("message_id") == message_id)
        return self.all_copies.filter(pl.col("record_hash").is_in(hashes))

    def show_copies(self, message_id: str) -> pl.DataFrame:
        """List the copies of ``message_id`` (source, export file, time, record hash) in the copies pane."""
        copies = self.copies_of(message_id) if message_id else self.all_copies.head(0)
        rows = []
        for row in copies.iter_rows(named=True):
            ts = row.get("ts")
            when = ts.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S") if ts is not None else ""
            rows.append(f"<tr><td>{html.escape(str(row.get('source') or ''))}</td>"
                        f"<td>{cut(row.get('source_file') or '', limit=28)}</td><td>{html.escape(when)}</td>"
                        f"<td>{cut(row.get('record_hash') or '', limit=12)}</td></tr>")
        self.copies.value = (f"<b>{html.escape(label('copies_of', self.lang))}</b>: {copies.height} "
                             f"<table>{''.join(rows)}</table>") if message_id else ""
        return copies

    def show_thread(self, message_id: str) -> pl.DataFrame:
        """Open the whole conversation of ``message_id`` below the table, at its page."""
        return self.thread.show(message_id) if message_id else self.thread.messages.head(0)

    # --- saved searches -------------------------------------------------------------------------

    def search_parameters(self) -> dict[str, Any]:
        """The current query, mode, filters and range, as a saved search stores them."""
        return {"query": self.query.value.strip(), "mode": self.mode.value, "pinyin": bool(self.pinyin.value),
                "preset": self.preset.value, "start": self.range[0].isoformat(), "end": self.range[1].isoformat(),
                "senders": list(self.senders.value), "participants": list(self.participants.value),
                "groups": list(self.groups.value), "types": list(self.types.value),
                "distinct": bool(self.distinct.value)}

    def save_search(self, name: str) -> dict[str, Any]:
        """Save the current parameters as ``name`` (audited ``search.save``; no results are stored)."""
        params = self.saved.save(name, self.search_parameters())
        self._refresh_saved()
        return params

    def run_saved(self, name: str) -> pl.DataFrame:
        """Set the controls from the saved search ``name`` and run it once (audited ``search.run``).

        Raises KeyError for an unknown name and PolicyDenied (audited) when its range leaves this grant's window.
        """
        params = self.saved.get(name)
        start, end = self.saved.admit(name, params)  # a range outside the grant: refused and audited
        self.saved.record_run(name)
        self._busy = True
        try:
            self.query.value = params.get("query", "")
            self.mode.value = params.get("mode", "exact")
            self.pinyin.value = bool(params.get("pinyin", False))
            for control, key in ((self.senders, "senders"), (self.participants, "participants"),
                                 (self.groups, "groups"), (self.types, "types")):
                known = {value for _label, value in control.options} if control.options and \
                    isinstance(control.options[0], tuple) else set(control.options)
                control.value = tuple(v for v in params.get(key, []) if v in known)
            self.distinct.value = bool(params.get("distinct", True))
            self.messages = self.distinct_messages if self.distinct.value else self.all_copies
            self.thread.messages = self.messages
            self.range = (start, end)
            self._sync_pickers()
            self.preset.value = params.get("preset", "custom") if params.get("preset") in PRESETS else "custom"
        finally:
            self._busy = False
        return self.refresh()

    def _refresh_saved(self) -> None:
        names = list(self.saved.searches())
        self.saved_list.options = names
        self.saved_list.value = names[0] if names else None

    def _save_clicked(self) -> None:
        try:
            self.save_search(self.saved_name.value)
            self.saved_list.value = self.saved_name.value.strip()
            self.status.value = f"{html.escape(label('saved', self.lang))}: {html.escape(self.saved_name.value)}"
        except (InvestigatorError, ValueError) as exc:
            self.status.value = f"<span style='color:#b00020'>{html.escape(label('error', self.lang))}: " \
                                f"{html.escape(str(exc))}</span>"

    def _run_clicked(self) -> None:
        if not self.saved_list.value:
            return
        try:
            self.run_saved(self.saved_list.value)
        except (InvestigatorError, KeyError) as exc:
            self.status.value = f"<span style='color:#b00020'>{html.escape(label('error', self.lang))}: " \
                                f"{html.escape(str(exc))}</span>"

    # --- context ------------------------------------------------------------------------------

    def show_context(self, message_id: str) -> pl.DataFrame:
        """Show the conversation around ``message_id`` (from the whole granted window) in the context pane."""
        self.thread_button.disabled = self.copies_button.disabled = not message_id
        self.copies.value = ""
        if not message_id:
            self.context.value = context_html(self.messages.head(0), tz=self.tz, lang=self.lang)
            return self.messages.head(0)
        snippet = A.context(self.messages, [message_id], before=self.before, after=self.after)
        hit = self.results.filter(pl.col("message_id") == message_id)
        terms: Sequence[str] = hit["matched_terms"][0].to_list() if hit.height and "matched_terms" in hit.columns \
            else []
        self.context.value = context_html(snippet, tz=self.tz, lang=self.lang, terms=terms, mode=self.mode.value,
                                          query=self.query.value.strip())
        return snippet
