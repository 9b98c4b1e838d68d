"""A paged results table: only the current page crosses to the browser, hits highlighted, rows selectable.

    >>> table = PagedTable(hits, page_size=25, lang="en")   # doctest: +SKIP
    >>> table.page = 3; table.selected                       # doctest: +SKIP

Why our own table rather than itables or ipydatagrid: both send the whole frame to the browser
(100k chat messages are tens of MB of JSON, and itables also fetches its JavaScript from a CDN unless
it embeds ~1 MB per notebook), neither highlights a matched term inside a cell, and neither needs to
exist offline in an evidence room. Here a page is a CSS grid of ordinary ipywidgets that are created
once and refilled on every page turn: the frame stays in the kernel, 100k or 10M rows alike.

Traits: ``page`` (0-based), ``selected`` (message ids ticked, kept across pages) and ``focused`` (the
message id whose context to show, set by the row's ▸ button).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import polars as pl
import traitlets

from investigator.analysis.matchers import find_spans, regex_spans
from investigator.widgets.i18n import label



def highlight(text: str | None, terms: Sequence[str], *, mode: str = "exact", query: str = "",
              pinyin: bool | None = None) -> str:
    """``text`` as escaped HTML with every match of ``terms`` in ``<mark>`` (regex: the ``query``).

    A mark covers the original characters of the match, whatever search ignored inside it (spaces,
    punctuation, zero-width characters, combining marks) and the invisibles glued to its end.
    ``pinyin``: also mark the pinyin-mode matches (homophones, pinyin, mixtures); None (default)
    does so for a term that has no literal match in ``text`` (the row was a hit by sound).
    """
    value = "" if text is None else str(text)
    spans: list[tuple[int, int]] = []
    if mode == "regex" and query:
        spans = regex_spans(value, query)  # on the text search saw, mapped back to the original
    else:
        kind = "word" if mode == "word" else "exact"
        for term in terms:
            found = find_spans(value, term, kind, pinyin=bool(pinyin))
            if not found and pinyin is None:
                found = find_spans(value, term, kind, pinyin=True)
            spans += found
    out, last = [], 0
    for start, end in sorted(set(spans)):
        if start < last:
            continue
        out.append(html.escape(value[last:start]))
        out.append(f"<mark>{html.escape(value[start:end])}</mark>")
        last = end
    out.append(html.escape(value[last:]))
    return "".join(out)


ID_CHARS = 16
TEXT_MAX_HEIGHT = "9em"
SORT_KEYS: dict[str, tuple[str, ...]] = {"ts": ("ts",), "sender": ("sender_name", "sender_id"),
                                         "conversation": ("conversation_name", "conversation_id"),
                                         "msg_type": ("msg_type",), "copies": ("copies",), "text": ("text",),
                                         "variants": ("matched_variants",)}


def cut(value: Any, full: str | None = None, limit: int = ID_CHARS) -> str:
    """``value`` as escaped HTML, cut to ``limit`` characters with an ellipsis; ``full`` (or the value) on hover."""
    text = "" if value is None else str(value)
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    title = full if full is not None else text
    return f"<span title='{html.escape(title, quote=True)}'>{html.escape(shown)}</span>"


def _who(name: Any, ident: Any) -> str:
    """A name or id cell: the name (or id), cut, with the full name and id on hover."""
    name, ident = (None if v is None else str(v) for v in (name, ident))
    full = f"{name} ({ident})" if name and ident and name != ident else (name or ident or "")
    return cut(name or ident or "", full)


COLUMNS = ("ts", "sender", "conversation", "msg_type", "copies", "text", "variants")
# the variants column (pinyin mode: the spellings that matched) takes a track only when the frame has it
# Fixed columns shrink to their minimum before the text does: at 150/120/150 px they took ~650 px of a
# table that is 68% of the panel, and beside JupyterLab's file browser (a ~1,000 px output area) the text,
# the column an investigator reads, was cut to a few characters with nothing saying so. The table's box
# scrolls sideways rather than clipping when even the minimums do not fit.
_WIDTHS = "26px 30px minmax(118px, 150px) minmax(64px, 120px) minmax(72px, 150px) 48px 44px minmax(220px, 1fr)"
_WIDTHS_VARIANTS = _WIDTHS + " 130px"
VARIANTS = "matched_variants"


class PagedTable(widgets.VBox):
    """Results, ``page_size`` rows at a time, with a tick box per row and a ▸ button opening its context.

    Column headers sort (click again to reverse); the text wraps in full, up to a few lines, then
    scrolls; long names and ids are cut with the full value on hover. Select the page, everything,
    or nothing; jump to a page by number. With a deduplicated frame (analysis.dedupe), the copies
    column says how many exports hold each message. With a ``matched_variants`` column (a pinyin-mode
    search), the variants column shows the spellings that matched (a homophone, pinyin, a mixture)
    and the text marks them; ``pinyin`` (the panel's toggle) says whether matches by sound are marked
    (None: for a term with no literal match in the row).
    """

    page = traitlets.Int(0)
    selected = traitlets.List(traitlets.Unicode())
    focused = traitlets.Unicode("")

    def __init__(self, frame: pl.DataFrame | None = None, *, page_size: int = 25, tz: str = "Asia/Shanghai",
                 lang: str | None = None, mode: str = "exact", query: str = "", pinyin: bool | None = None,
                 **kwargs: Any) -> None:
        self.lang, self.tz, self.page_size = lang, tz, page_size
        self.mode, self.query, self.pinyin = mode, query, pinyin
        self.frame = pl.DataFrame()
        self.sort: tuple[str, bool] | None = None  # (column, descending)
        self._rows: list[dict[str, Any]] = []
        self._headers = {c: widgets.Button(description=label(c, lang), tooltip=label("sort", lang),
                                           layout=widgets.Layout(width="auto", padding="0px 2px"))
                         for c in COLUMNS}
        for column, button in self._headers.items():
            button.add_class(f"investigator-sort-{column}")
            button.on_click(lambda _b, c=column: self.sort_by(c))
        header: list[widgets.Widget] = [widgets.HTML(""), widgets.HTML(""), *self._headers.values()]
        self._checks = [widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="24px"))
                        for _ in range(page_size)]
        self._opens = [widgets.Button(description="▸", tooltip=label("context", lang),
                                      layout=widgets.Layout(width="28px", padding="0px")) for _ in range(page_size)]
        self._cells = [[widgets.HTML() for _ in COLUMNS] for _ in range(page_size)]
        for row_cells in self._cells:
            for column, cell in zip(COLUMNS, row_cells):
                cell.add_class(f"investigator-cell-{column}")
        self._syncing = False
        for index, (check, button) in enumerate(zip(self._checks, self._opens)):
            check.observe(lambda change, i=index: self._on_check(i, change["new"]), names="value")
            button.on_click(lambda _b, i=index: self._on_open(i))
        children: list[widgets.Widget] = list(header)
        for index in range(page_size):
            children += [self._checks[index], self._opens[index], *self._cells[index]]
        self.grid = widgets.GridBox(children, layout=widgets.Layout(
            grid_template_columns=_WIDTHS, grid_gap="2px 8px", align_items="flex-start", width="100%"))
        self.grid.add_class("investigator-results")
        self.prev_button = widgets.Button(description=label("prev", lang), icon="arrow-left")
        self.next_button = widgets.Button(description=label("next", lang), icon="arrow-right")
        self.position = widgets.HTML()
        self.position.add_class("investigator-position")
        self.jump = widgets.BoundedIntText(value=1, min=1, max=1, description=label("go_to_page", lang),
                                           layout=widgets.Layout(width="170px"))
        self.jump.add_class("investigator-jump")
        self.select_page_button = widgets.Button(description=label("select_page", lang), icon="check-square")
        self.select_all_button = widgets.Button(description=label("select_all", lang), icon="check-double")
        self.clear_button = widgets.Button(description=label("select_none", lang), icon="square")
        self.select_all_button.add_class("investigator-select-all")
        self.prev_button.on_click(lambda _b: self.turn(-1))
        self.next_button.on_click(lambda _b: self.turn(1))
        self.jump.observe(lambda change: self.go_to(change["new"]), names="value")
        self.select_page_button.on_click(lambda _b: self.select_page())
        self.select_all_button.on_click(lambda _b: self.select_all())
        self.clear_button.on_click(lambda _b: self.select([]))
        super().__init__([self.grid,
                          widgets.HBox([self.prev_button, self.position, self.next_button, self.jump]),
                          widgets.HBox([self.select_page_button, self.select_all_button, self.clear_button])],
                         **kwargs)
        self.observe(lambda _c: self._render(), names="page")
        self.set_frame(frame if frame is not None else pl.DataFrame())

    # --- data ---------------------------------------------------------------------------

    @property
    def pages(self) -> int:
        return max(1, -(-self.frame.height // self.page_size))

    def set_frame(self, frame: pl.DataFrame, *, mode: str | None = None, query: str | None = None,
                  pinyin: bool | None = None) -> None:
        """Show ``frame`` (in the current sort order) from its first page; ticks on rows no longer present drop.

        ``mode``, ``query`` and ``pinyin`` (the search that made ``frame``) steer the highlighting; None keeps
        the current value.
        """
        self.frame = self._sorted(frame)
        self.mode = mode if mode is not None else self.mode
        self.query = query if query is not None else self.query
        self.pinyin = pinyin if pinyin is not None else self.pinyin
        ids = set(frame["message_id"].to_list()) if "message_id" in frame.columns else set()
        self.selected = [m for m in self.selected if m in ids]
        if self.focused and self.focused not in ids:
            self.focused = ""
        if self.page != 0:
            self.page = 0  # renders through the observer
        else:
            self._render()

    def _sorted(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.sort is None or frame.height == 0:
            return frame
        column, descending = self.sort
        present = [c for c in SORT_KEYS[column] if c in frame.columns]
        if not present:
            return frame
        key = pl.coalesce([pl.col(c).list.join(", ") if column == "variants"
                           else pl.col(c).cast(pl.String) if column != "ts" and column != "copies" else pl.col(c)
                           for c in present])
        tie = [pl.col("ts")] if "ts" in frame.columns and column != "ts" else []
        return frame.sort([key, *tie], descending=[descending] + [False] * len(tie), nulls_last=True,
                          maintain_order=True)

    def sort_by(self, column: str, descending: bool | None = None) -> None:
        """Sort by ``column`` (one of ``COLUMNS``); by default ascending, or reversed when already sorted by it.

        Raises ValueError for an unknown column.
        """
        if column not in SORT_KEYS:
            raise ValueError(f"column must be one of {', '.join(SORT_KEYS)}")
        if descending is None:
            descending = bool(self.sort and self.sort[0] == column and not self.sort[1])
        self.sort = (column, descending)
        for name, button in self._headers.items():
            mark = (" ▼" if descending else " ▲") if name == column else ""
            button.description = label(name, self.lang) + mark
        self.frame = self._sorted(self.frame)
        if self.page != 0:
            self.page = 0
        else:
            self._render()

    def turn(self, step: int) -> None:
        """Go ``step`` pages forward (or back), staying within the pages."""
        self.page = min(max(self.page + step, 0), self.pages - 1)

    def go_to(self, number: int) -> None:
        """Show page ``number`` (1-based, clamped to the pages)."""
        self.page = min(max(int(number) - 1, 0), self.pages - 1)

    def page_rows(self) -> list[dict[str, Any]]:
        """The rows on the current page, as dicts (for tests and callers)."""
        return list(self._rows)

    def _render(self) -> None:
        first = self.page * self.page_size
        part = self.frame.slice(first, self.page_size) if self.frame.height else self.frame
        self._rows = part.to_dicts() if part.height else []
        chosen = set(self.selected)
        variants = VARIANTS in self.frame.columns
        self.grid.layout.grid_template_columns = _WIDTHS_VARIANTS if variants else _WIDTHS
        self._headers["variants"].layout.display = "flex" if variants else "none"
        self._syncing = True
        try:
            for index in range(self.page_size):
                row = self._rows[index] if index < len(self._rows) else None
                shown = "flex" if row is not None else "none"
                for w in (self._checks[index], self._opens[index], *self._cells[index][:-1]):
                    w.layout.display = shown
                self._cells[index][-1].layout.display = shown if variants else "none"
                if row is None:
                    self._checks[index].value = False
                    continue
                self._checks[index].value = row.get("message_id") in chosen
                for cell, value in zip(self._cells[index], self._cell_values(row)):
                    cell.value = value
        finally:
            self._syncing = False
        total = self.frame.height
        if total:
            self.position.value = (f"{first + 1}–{first + len(self._rows)} {label('of', self.lang)} {total:,} · "
                                   f"{label('page', self.lang)} {self.page + 1}/{self.pages}")
        else:
            self.position.value = label("no_results", self.lang)
        self.prev_button.disabled = self.page <= 0
        self.next_button.disabled = self.page >= self.pages - 1
        self.jump.max = self.pages
        if self.jump.value != self.page + 1:
            self.jump.value = self.page + 1

    def _cell_values(self, row: dict[str, Any]) -> list[str]:
        ts = row.get("ts")
        when = ts.astimezone(_zone(self.tz)).strftime("%Y-%m-%d %H:%M:%S") if ts is not None else ""
        terms = row.get("matched_terms") or []
        text = row.get("text")
        body = highlight(text, terms, mode=self.mode, query=self.query, pinyin=self.pinyin) if text is not None else \
            f"<i>{html.escape(str(row.get('attachment_name') or row.get('msg_type') or ''))}</i>"
        copies = row.get("copies")
        sources = row.get("sources") or []
        corroboration = ""
        if copies is not None:
            names = ", ".join(str((s or {}).get("source") or "") for s in sources)
            note = label("corroborated", self.lang).format(n=len(sources) or 1)
            corroboration = (f"<span class='investigator-copies' title='{html.escape(f'{note}: {names}', quote=True)}'>"
                             f"×{int(copies)}</span>")
        return [html.escape(when), _who(row.get("sender_name"), row.get("sender_id")),
                _who(row.get("conversation_name"), row.get("conversation_id")),
                html.escape(str(row.get("msg_type") or "")), corroboration,
                f"<div class='investigator-text' style='white-space:pre-wrap; word-break:break-word; "
                f"max-height:{TEXT_MAX_HEIGHT}; overflow-y:auto; line-height:1.35'>{body}</div>",
                variants_html(row.get(VARIANTS))]

    # --- selection ----------------------------------------------------------------------

    def _on_check(self, index: int, value: bool) -> None:
        if self._syncing or index >= len(self._rows):
            return
        mid = self._rows[index].get("message_id")
        if mid is None:
            return
        current = [m for m in self.selected if m != mid]
        self.selected = current + [mid] if value else current

    def _on_open(self, index: int) -> None:
        if index < len(self._rows):
            self.focused = str(self._rows[index].get("message_id") or "")

    def select(self, message_ids: Sequence[str]) -> None:
        """Tick ``message_ids`` (replacing the current ticks) and show it on the page."""
        self.selected = list(dict.fromkeys(message_ids))
        self._render()

    def select_page(self) -> None:
        """Add the rows of the current page to the ticks."""
        self.select([*self.selected, *(str(r["message_id"]) for r in self._rows if r.get("message_id"))])

    def select_all(self) -> None:
        """Tick every row of the frame (all pages)."""
        if "message_id" in self.frame.columns:
            self.select([str(m) for m in self.frame["message_id"].drop_nulls().to_list()])


def variants_html(variants: Sequence[str] | None) -> str:
    """The spellings a pinyin-mode hit matched (``matched_variants``), escaped, one per line."""
    values = [str(v) for v in (variants or []) if v]
    return "<br>".join(f"<span class='investigator-variant'>{html.escape(v)}</span>" for v in values)


def _zone(tz: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)
