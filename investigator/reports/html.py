"""The reviewer's HTML copy of a report: nbconvert, with plotly.js inlined once (no network needed).

    >>> write_html(notebook_path, html_path)   # doctest: +SKIP

Figures are displayed by :func:`investigator.reports.notebook.show_figure` as
plotly's mime bundle (for JupyterLab) plus an HTML fragment that calls
``Plotly.newPlot``; nbconvert keeps the fragment, and this module puts
plotly.js itself into the page's ``<head>`` before any other script (before
require.js, which would otherwise capture plotly as an AMD module).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from investigator.errors import ReportError
from investigator.reports.review import status_of

_EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', re.IGNORECASE)


def _banner(nb: Any) -> str:
    import html

    meta = (nb.get("metadata") or {}).get("investigator") or {}
    seal = meta.get("seal")
    if not seal:
        return ('<div style="padding:8px;border:2px solid #d62728;font-family:sans-serif">'
                'Unsealed report: not verifiable.</div>')
    body = seal.get("body", {})
    status = seal_status(meta)
    grant = body.get("grant", {})
    return ('<div style="padding:8px;border:2px solid #1f77b4;font-family:sans-serif;font-size:13px">'
            f"<b>Sealed report</b> — template <code>{html.escape(str(body.get('template', {}).get('name')))}</code>, "
            f"grant <code>{html.escape(str(grant.get('id')))}</code>, operator "
            f"<code>{html.escape(str(seal.get('signer')))}</code>, status <b>{html.escape(status)}</b><br>"
            f"content digest <code>{html.escape(str(body.get('digest')))}</code><br>"
            "Check it with <code>investigator report verify NOTEBOOK.ipynb</code> (this HTML copy is for reading; "
            "the notebook is the sealed record).</div>")


def seal_status(meta: dict[str, Any]) -> str:
    return status_of(meta)


def render_html(nb: Any) -> str:
    """The notebook as a standalone HTML page for a reader: outputs only (no code), plots that render offline."""
    # nbconvert and plotly are heavy imports: loaded here, so importing investigator.reports stays light
    try:
        import nbformat
        from nbconvert import HTMLExporter
        from plotly.offline import get_plotlyjs
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise ReportError("the HTML copy needs nbconvert and plotly") from exc
    node = nbformat.from_dict(nb) if not isinstance(nb, nbformat.NotebookNode) else nb
    # a reader's copy: outputs only (code stays in the sealed notebook, which is the record)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(node)
    # no network: drop the CDN scripts nbconvert links (require.js, MathJax); reports use neither
    body = _EXTERNAL_SCRIPT.sub("", body)
    script = '<script type="text/javascript">' + get_plotlyjs() + "</script>"
    head_at = body.find("<head>")
    if head_at < 0:
        raise ReportError("nbconvert produced HTML without a <head>")
    at = head_at + len("<head>")
    body = body[:at] + "\n<meta charset=\"utf-8\">\n" + script + "\n" + body[at:]
    marker = body.find("<body")
    if marker >= 0:
        close = body.find(">", marker) + 1
        body = body[:close] + _banner(node) + body[close:]
    return body


def write_html(notebook: Path, target: Path | None = None) -> Path:
    """Write the HTML copy of ``notebook`` beside it (or to ``target``); return its path."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    target = target or Path(notebook).with_suffix(".html")
    target.write_text(render_html(nb), encoding="utf-8")
    return target
