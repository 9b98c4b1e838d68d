"""ExportBar: export the current hits, or a tag's messages, to CSV / Excel / Timesketch JSONL — audited.

    >>> from investigator.reports.exports import export_messages
    >>> panel = SearchPanel(case, exporter=export_messages)    # doctest: +SKIP
    >>> panel.export_bar.export("xlsx", out="hits.xlsx")        # doctest: +SKIP

The export itself (permission, grant check, circuit breaker, audit with SHA-256 and row count) is
:func:`investigator.reports.exports.export_messages`; widgets may not import reports, so the
notebook passes it in as ``exporter``. Without one the bar says how to get it and exports nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import polars as pl

from investigator.errors import ConfigError, InvestigatorError
from investigator.widgets.i18n import label

FORMATS = (("Excel (.xlsx)", "xlsx"), ("CSV", "csv"), ("Timesketch JSONL", "timesketch"))
SUFFIX = {"xlsx": ".xlsx", "csv": ".csv", "timesketch": ".jsonl"}


class ExportBar(widgets.VBox):
    """What (current hits or a tag), format and file; the Export button calls ``exporter``.

    ``source`` is a SearchPanel (its ``results`` are the hits, its ``messages`` the granted frame).
    ``exporter(case, frame, *, fmt, out, what, granted)`` returns an object with ``path``, ``rows``,
    ``sha256``, ``held`` and ``reasons``.
    """

    def __init__(self, case: Any, source: Any, *, exporter: Callable[..., Any] | None = None,
                 lang: str | None = None, folder: str | Path = "exports", **kwargs: Any) -> None:
        self.case, self.source, self.exporter, self.lang = case, source, exporter, lang
        self.folder = Path(folder)
        self.last: Any = None
        L = lambda key: label(key, lang)  # noqa: E731
        self.what = widgets.Dropdown(description=L("export_what"), options=[(L("export_hits"), "hits")],
                                     value="hits", layout=widgets.Layout(width="260px"))
        self.fmt = widgets.Dropdown(description=L("export_format"), options=FORMATS, value="xlsx",
                                    layout=widgets.Layout(width="260px"))
        self.file = widgets.Text(description=L("export_file"), layout=widgets.Layout(width="360px"))
        self.button = widgets.Button(description=L("export"), icon="download", button_style="warning")
        self.status = widgets.HTML()
        self.status.add_class("investigator-export-status")
        self.button.on_click(lambda _b: self._clicked())
        self.fmt.observe(lambda _c: self._suggest(), names="value")
        self.what.observe(lambda _c: self._suggest(), names="value")
        super().__init__([widgets.HBox([self.what, self.fmt, self.file, self.button]), self.status], **kwargs)
        self.add_class("investigator-export")
        self.refresh_tags()
        self._suggest()

    def refresh_tags(self) -> None:
        """Offer the case's tags in use as export choices."""
        in_use = self.case.tags().tags_in_use()
        options = [(label("export_hits", self.lang), "hits")] + \
            [(f"{label('export_tag', self.lang)}: {t}", f"tag:{t}") for t in in_use]
        if list(self.what.options) != options:
            keep = self.what.value if self.what.value in [v for _l, v in options] else "hits"
            self.what.options = options
            self.what.value = keep

    def _suggest(self) -> None:
        case_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(self.case.grant.case))
        what = self.what.value.replace(":", "-")
        self.file.value = str(self.folder / f"{case_id}-{what}{SUFFIX[self.fmt.value]}")

    def selection(self, what: str) -> pl.DataFrame:
        """The frame ``what`` names: ``hits`` (the panel's results) or ``tag:<tag>`` (messages with that tag)."""
        if what == "hits":
            return self.source.results
        if what.startswith("tag:"):
            tagged = self.case.tags().apply(self.source.messages)
            return tagged.filter(pl.col("tags").list.contains(what[4:]))
        raise ValueError("what must be 'hits' or 'tag:<tag>'")

    def _clicked(self) -> None:
        try:
            self.export(self.fmt.value, out=self.file.value, what=self.what.value)
        except (InvestigatorError, ValueError, OSError) as exc:
            self.status.value = (f"<span style='color:#b00020'>{html.escape(label('refused', self.lang))}: "
                                 f"{html.escape(str(exc))}</span>")

    def export(self, fmt: str, *, out: str | Path, what: str = "hits") -> Any:
        """Export ``what`` as ``fmt`` to ``out`` through the exporter; shows and returns its result.

        Raises ConfigError when no exporter was given, and whatever the exporter raises
        (PolicyDenied, GrantExpired, ValueError).
        """
        if self.exporter is None:
            raise ConfigError("no exporter: pass exporter=investigator.reports.exports.export_messages",
                              hint="SearchPanel(case, exporter=export_messages)")
        frame = self.selection(what)
        result = self.exporter(self.case, frame, fmt=fmt, out=out, what=what, granted=self.source.messages)
        self.last = result
        if result.held:
            self.status.value = (f"<span style='color:#b36b00'><b>{html.escape(label('held', self.lang))}</b>: "
                                 f"{html.escape('; '.join(result.reasons))}</span>")
        else:
            self.status.value = (f"<b>{html.escape(label('exported', self.lang))}</b>: "
                                 f"<code>{html.escape(str(result.path))}</code> · {result.rows:,} · "
                                 f"SHA-256 <code title='{html.escape(result.sha256)}'>{result.sha256[:16]}…</code>")
        return result
