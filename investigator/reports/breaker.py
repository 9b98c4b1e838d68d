"""The sensitive-information circuit breaker (熔断机制) for reports and evidence bundles.

    >>> verdict = assess_report(nb, archive=archive, grant=grant)   # doctest: +SKIP
    >>> verdict.held, verdict.reasons                                # doctest: +SKIP
    (True, ['unmasked personal data in the outputs: phone x2'])

A report or bundle is *held* (not exportable until a legal reviewer releases
it) when it would carry:

- unmasked personal data: a phone, resident ID, bank card, e-mail or IP number
  (:mod:`investigator.analysis.pii`) in what it shows — for a report, any
  output a reader sees; for a bundle, any exported message text;
- a report run with ``redact=False``;
- a grant the policy marks sensitive (``[approval.sensitive]`` purposes or fields);
- hits of a keyword category the policy lists under ``[breaker.categories]``
  (``name = ["word", ...]``), when the policy has that table.

Holding is recorded in the signed seal / bundle manifest and as an audit
``breaker.alert`` entry; release is :mod:`investigator.reports.review`'s job.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from investigator.analysis.normalize import normalize_text
from investigator.analysis.pii import detect, detect_figure
from investigator.authority.directory import DirectoryStore
from investigator.authority.policy import PolicyStore
from investigator.reports.notebook import PLOTLY_MIME, PROVENANCE_MIME

if TYPE_CHECKING:
    from investigator.vault.store import Archive

_SCANNED_MIMES = ("text/plain", "text/html", "text/markdown")


@dataclass
class Verdict:
    held: bool = False
    reasons: list[str] = field(default_factory=list)
    pii: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"held": self.held, "reasons": list(self.reasons), "pii": dict(sorted(self.pii.items())),
                "categories": dict(sorted(self.categories.items()))}


def _policy(archive: "Archive") -> Any:
    return PolicyStore(archive).load(DirectoryStore(archive).load())


def sensitive_categories(policy: Any) -> dict[str, list[str]]:
    """``[breaker.categories]`` of the policy: category -> keywords (empty when the policy has none)."""
    table = ((getattr(policy, "raw", None) or {}).get("breaker") or {}).get("categories") or {}
    return {str(k): [str(w) for w in v] for k, v in table.items() if isinstance(v, list)}


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def _outputs_of_notebook(nb: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """What a reader of the report sees: output texts, and plotly figures kept whole (keys give context)."""
    texts: list[str] = []
    figures: list[dict[str, Any]] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") == "stream":
                text = output.get("text")
                texts.append("".join(text) if isinstance(text, list) else str(text or ""))
            data = output.get("data") or {}
            if PROVENANCE_MIME in data:
                continue
            if PLOTLY_MIME in data:
                # the figure's own data, titles and axes, not plotly's theme numbers in its HTML
                figure = data[PLOTLY_MIME]
                figure = json.loads(figure) if isinstance(figure, str) else figure
                if isinstance(figure, dict):
                    figures.append(figure)
                continue
            for mime in _SCANNED_MIMES:
                if mime in data:
                    value = data[mime]
                    texts.append("".join(value) if isinstance(value, list) else str(value))
    return texts, figures


def _figure_text(figure: dict[str, Any]) -> str:
    """A figure's strings, one a line (for the policy's keyword categories; not for personal data)."""
    layout = {k: v for k, v in (figure.get("layout") or {}).items() if k != "template"}
    return "\n".join(_strings([figure.get("data"), layout]))


def _scan(texts: Iterable[str], categories: dict[str, list[str]],
          figures: Iterable[dict[str, Any]] = ()) -> tuple[Counter[str], Counter[str]]:
    """Personal data and category hits in ``texts`` and in plotly ``figures``.

    A figure is read by :func:`investigator.analysis.pii.detect_figure`, each string with its key as its
    column: message ids in ``customdata`` / ``ids`` and numbers on the axes are not card numbers.
    """
    pii: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    normalized_words = {name: [normalize_text(w) for w in words] for name, words in categories.items()}

    def count_hits(text: str) -> None:
        norm = normalize_text(text)
        for name, words in normalized_words.items():
            hits[name] += sum(norm.count(w) for w in words if w)

    for text in texts:
        for finding in detect(text):
            pii[finding.kind] += 1
        if normalized_words:
            count_hits(text)
    for figure in figures:
        for finding in detect_figure(figure):
            pii[finding.kind] += 1
        if normalized_words:
            count_hits(_figure_text(figure))
    return pii, +hits


def scan_report(nb: Any, categories: dict[str, list[str]] | None = None) -> tuple[Counter[str], Counter[str]]:
    """Personal data and category hits in what a report shows (outputs, not its provenance record)."""
    texts, figures = _outputs_of_notebook(nb)
    return _scan(texts, categories or {}, figures)


def _verdict(pii: Counter[str], hits: Counter[str], *, sensitive_grant: bool, unredacted: bool,
             what: str) -> Verdict:
    verdict = Verdict(pii=dict(pii), categories=dict(hits))
    if unredacted:
        verdict.reasons.append("run with redact=False: personal data is not masked")
    if pii:
        verdict.reasons.append(f"unmasked personal data in {what}: "
                               + ", ".join(f"{k} x{n}" for k, n in sorted(pii.items())))
    if hits:
        verdict.reasons.append("hits in categories the policy marks sensitive: "
                               + ", ".join(f"{k} x{n}" for k, n in sorted(hits.items())))
    if sensitive_grant:
        verdict.reasons.append("the grant's purpose or fields are sensitive by policy ([approval.sensitive])")
    verdict.held = bool(verdict.reasons)
    return verdict


def assess_report(nb: Any, *, archive: "Archive", grant: Any) -> Verdict:
    """Scan what a report shows (outputs, not the provenance record) and judge it."""
    policy = _policy(archive)
    params = ((nb.get("metadata") or {}).get("papermill") or {}).get("parameters") or {}
    pii, hits = scan_report(nb, sensitive_categories(policy))
    return _verdict(pii, hits, sensitive_grant=grant is not None and policy.is_sensitive(grant.request.request),
                    unredacted=params.get("redact") is False, what="the outputs")


def assess_messages(texts: Iterable[str | None], *, archive: "Archive", grant: Any) -> Verdict:
    """Scan the message texts a bundle would carry and judge them."""
    policy = _policy(archive)
    pii, hits = _scan((t for t in texts if t), sensitive_categories(policy))
    return _verdict(pii, hits, sensitive_grant=policy.is_sensitive(grant.request.request), unredacted=False,
                    what="the exported messages")
