"""Report notebooks: run a template through papermill, seal it, verify, reproduce, review and release.

    >>> from investigator.reports import run_report, verify_report
    >>> result = run_report("complaint_investigation", archive=archive, grant="G-...", person="sunli",
    ...                     signer=key, passphrase=..., totp="123456")          # doctest: +SKIP
    >>> verify_report(nbformat.read(result.notebook, 4), archive=archive).ok     # doctest: +SKIP
    True

One concept per module: :mod:`.run` (papermill execution), :mod:`.canonical`
(canonical notebook and content digest), :mod:`.seal` (provenance, sealing,
verification), :mod:`.signature` (signed records over a report's digest and the
keys they are trusted by), :mod:`.review` (review, release, export),
:mod:`.breaker` (the sensitive-information circuit breaker), :mod:`.reproduce`,
:mod:`.html` (the reviewer's offline HTML copy) and :mod:`.notebook` (helpers
templates call in the kernel). docs/reviewer.md and docs/automation.md are the user guides.
"""

from __future__ import annotations

# papermill and nbconvert are imported inside the functions that run or render a notebook, so templates
# importing investigator.reports.notebook in the kernel do not load them.
from investigator.reports.canonical import content_digest
from investigator.reports.reproduce import reproduce_report
from investigator.reports.review import release_report, review_report, status_of
from investigator.reports.run import find_template, run_report
from investigator.reports.seal import seal_notebook, verify_report

__all__ = ["content_digest", "find_template", "release_report", "reproduce_report", "review_report", "run_report",
           "seal_notebook", "status_of", "verify_report"]
