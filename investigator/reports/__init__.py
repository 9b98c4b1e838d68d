"""Report notebooks: run a template through papermill, seal it, verify, reproduce, review and release.

    >>> from investigator.reports import run_report, verify_report
    >>> result = run_report("complaint_investigation", archive=archive, grant="G-...", person="sunli",
    ...                     signer=key, passphrase=..., totp="123456")          # doctest: +SKIP
    >>> verify_report(nbformat.read(result.notebook, 4), archive=archive).ok     # doctest: +SKIP
    True

One concept per module: :mod:`.run` (papermill execution), :mod:`.canonical`
(canonical notebook and content digest), :mod:`.seal` (provenance, signature,
verification), :mod:`.review` (review, release, export), :mod:`.breaker` (the
sensitive-information circuit breaker), :mod:`.reproduce`, :mod:`.html` (the
reviewer's offline HTML copy) and :mod:`.notebook` (helpers templates call in
the kernel). docs/reviewer.md and docs/automation.md are the user guides.
"""

from __future__ import annotations

from typing import Any

__all__ = ["content_digest", "find_template", "release_report", "reproduce_report", "review_report", "run_report",
           "seal_notebook", "status_of", "verify_report"]

_WHERE = {"content_digest": "canonical", "find_template": "run", "run_report": "run", "seal_notebook": "seal",
          "verify_report": "seal", "review_report": "review", "release_report": "review", "status_of": "review",
          "reproduce_report": "reproduce"}


def __getattr__(name: str) -> Any:
    # lazy: templates import investigator.reports.notebook without papermill or nbconvert
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
