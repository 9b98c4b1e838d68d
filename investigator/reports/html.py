"""The reviewer's HTML copy of a report: nbconvert, with plotly.js inlined once (no network needed).

    >>> page = render_page(nb)                       # doctest: +SKIP  (before sealing: the content)
    >>> page_digest(page)                            # doctest: +SKIP  (goes into the seal body)
    'sha256:...'
    >>> write_html(notebook_path, page=page)         # doctest: +SKIP  (after sealing: content + banner)
    >>> check_html_copy(html_text, nb, result)       # doctest: +SKIP  ('report verify copy.html')

Figures are displayed by :func:`investigator.reports.notebook.show_figure` as
plotly's mime bundle (for JupyterLab) plus an HTML fragment that calls
``Plotly.newPlot``; nbconvert keeps the fragment, and this module puts
plotly.js itself into the page's ``<head>`` before any other script (before
require.js, which would otherwise capture plotly as an AMD module).

The copy is covered by the seal: the seal body records the SHA-256 of the page
with its seal banner left out (``html.sha256``), because the banner shows the
report's review status, which changes after sealing. The banner sits between
two marker comments and is itself checked against the notebook it describes,
so neither part of the page can change unnoticed.
"""

from __future__ import annotations

import hashlib
import html as html_text
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from investigator.errors import ReportError
from investigator.reports.signature import status_of

if TYPE_CHECKING:
    from investigator.verification import Verification

_EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', re.IGNORECASE)
BANNER_START = "<!-- investigator:seal-banner -->"
BANNER_END = "<!-- /investigator:seal-banner -->"
HTML_COVERS = "the HTML copy with the text between its seal-banner markers left out"


def _banner(nb: Any) -> str:
    meta = (nb.get("metadata") or {}).get("investigator") or {}
    seal = meta.get("seal")
    if not seal:
        return ('<div style="padding:8px;border:2px solid #d62728;font-family:sans-serif">'
                'Unsealed report: not verifiable. 未封存的报告：无法验证。</div>')
    body = seal.get("body", {})
    status = seal_status(meta)
    grant = body.get("grant") or {"id": "none (metadata only)"}
    return ('<div style="padding:8px;border:2px solid #1f77b4;font-family:sans-serif;font-size:13px">'
            f"<b>Sealed report 已封存报告</b> — template <code>{html_text.escape(str(body.get('template', {}).get('name')))}</code>, "
            f"grant <code>{html_text.escape(str(grant.get('id')))}</code>, operator "
            f"<code>{html_text.escape(str(seal.get('signer')))}</code>, status <b>{html_text.escape(status)}</b><br>"
            f"content digest <code>{html_text.escape(str(body.get('digest')))}</code><br>"
            "Check this copy with <code>investigator report verify THIS-FILE.html</code> (it is checked against the "
            "sealed notebook beside it; the notebook is the record). 用 <code>investigator report verify</code> "
            "核对本副本与封存的笔记本。</div>")


def seal_status(meta: dict[str, Any]) -> str:
    return status_of(meta)


def render_page(nb: Any) -> str:
    """The notebook as a standalone HTML page, outputs only, with an empty seal-banner slot after ``<body>``.

    What the seal covers (:func:`page_digest`). Raises ReportError when nbconvert's page has no head or body.
    """
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
    # the markers are ours alone: a notebook output that printed them must not move the banner's slot
    body = body.replace(BANNER_START, "&lt;!-- investigator:seal-banner --&gt;").replace(
        BANNER_END, "&lt;!-- /investigator:seal-banner --&gt;")
    script = '<script type="text/javascript">' + get_plotlyjs() + "</script>"
    head_at = body.find("<head>")
    marker = body.find("<body")
    if head_at < 0 or marker < 0:
        raise ReportError("nbconvert produced HTML without a <head> or <body>")
    at = head_at + len("<head>")
    body = body[:at] + "\n<meta charset=\"utf-8\">\n" + script + "\n" + body[at:]
    marker = body.find("<body")
    close = body.find(">", marker) + 1
    return body[:close] + BANNER_START + BANNER_END + body[close:]


def _split(page: str) -> tuple[str, str, str] | None:
    """(before, banner, after) around the one banner slot; None unless both markers occur exactly once, in order."""
    if page.count(BANNER_START) != 1 or page.count(BANNER_END) != 1:
        return None
    start = page.index(BANNER_START) + len(BANNER_START)
    end = page.index(BANNER_END)
    if end < start:
        return None
    return page[:start], page[start:end], page[end:]


def page_digest(page: str) -> str:
    """``sha256:<hex>`` of ``page`` with its banner left out. Raises ReportError when the markers are not as written."""
    parts = _split(page)
    if parts is None:
        raise ReportError("the HTML page has no single seal-banner slot")
    before, _, after = parts
    return "sha256:" + hashlib.sha256((before + after).encode("utf-8")).hexdigest()


def with_banner(page: str, nb: Any) -> str:
    """``page`` with the banner for ``nb`` (its seal and current review status) in its slot."""
    parts = _split(page)
    if parts is None:
        raise ReportError("the HTML page has no single seal-banner slot")
    before, _, after = parts
    return before + _banner(nb) + after


def render_html(nb: Any) -> str:
    """The reader's page for ``nb``: :func:`render_page` with the banner filled in."""
    return with_banner(render_page(nb), nb)


def _write_atomically(target: Path, text: str) -> None:
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


def write_html(notebook: Path, target: Path | None = None, *, page: str | None = None) -> Path:
    """Write the HTML copy of ``notebook`` beside it (or to ``target``); return its path.

    ``page``: the content page :func:`seal_notebook` rendered and sealed (saves a second render).
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    target = target or Path(notebook).with_suffix(".html")
    _write_atomically(target, with_banner(page, nb) if page is not None else render_html(nb))
    return target


def refresh_banner(notebook: Path, nb: Any) -> Path | None:
    """After a review or release: the HTML copy beside ``notebook`` gets the new status (content untouched).

    Returns the copy's path, or None when there is none. A copy whose banner slot is damaged is rendered anew.
    """
    target = Path(notebook).with_suffix(".html")
    if not target.exists():
        return None
    try:
        page = target.read_text(encoding="utf-8")
        _write_atomically(target, with_banner(page, nb))
    except (ReportError, UnicodeDecodeError):
        _write_atomically(target, render_html(nb))
    return target


def check_html_copy(data: bytes, nb: Any, result: "Verification") -> None:
    """Check an HTML copy against its (separately verified) notebook ``nb``; findings go into ``result``.

    Never raises: the content must match the SHA-256 in the seal body, the banner must be the one the
    notebook's seal and reviews give.
    """
    seal = ((nb.get("metadata") or {}).get("investigator") or {}).get("seal") if isinstance(nb, dict) else None
    body = seal.get("body") if isinstance(seal, dict) else None
    sealed = (body.get("html") or {}) if isinstance(body, dict) else {}
    if not isinstance(sealed, dict) or not sealed.get("sha256"):
        result.problem("HTML copy: the report's seal does not cover an HTML copy (sealed before copies were "
                       "sealed); read and verify the notebook itself")
        return
    try:
        page = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        result.problem(f"HTML copy: not UTF-8 at byte {exc.start}")
        return
    parts = _split(page)
    if parts is None:
        result.problem("HTML copy: the seal-banner markers are missing, repeated or out of order (not a copy "
                       "investigator wrote, or edited)")
        return
    actual = page_digest(page)
    if actual != sealed["sha256"]:
        result.problem(f"HTML copy: its content differs from the sealed copy ({actual}, sealed {sealed['sha256']})")
    else:
        result.check(f"HTML copy: content {actual} matches the seal")
    try:
        expected = _banner(nb)
    except Exception:  # noqa: BLE001 - hostile metadata: the notebook's own check reports it
        expected = None
    if parts[1] != expected:
        result.problem("HTML copy: its seal banner differs from the notebook's (the status or seal it shows is "
                       "not the notebook's)")
    else:
        result.check(f"HTML copy: the banner matches the notebook (status {result.facts.get('status')})")
