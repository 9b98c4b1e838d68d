"""investigator: policy-checked, encrypted, auditable investigation of chat records.

    >>> import investigator
    >>> investigator.__version__
    '0.1.0'
    >>> case = investigator.open_case("demo-archive", grant="G-...", person="sunli", totp="123456")  # doctest: +SKIP
    >>> hits = investigator.search(case.messages(), '加班费 OR "overtime pay"', mode="word")        # doctest: +SKIP

The public API is small on purpose; everything else is reachable through its
module (``investigator.vault.store``, ``investigator.analysis`` ...). Importing the
package has no side effects.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Archive", "Case", "InvestigatorError", "__version__", "open_case", "search"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import investigator` stays light (no Polars or jieba until used).
    if name == "open_case":
        from investigator.access.case import open_case

        return open_case
    if name == "Case":
        from investigator.access.case import Case

        return Case
    if name == "Archive":
        from investigator.vault.store import Archive

        return Archive
    if name == "search":
        from investigator.analysis import search

        return search
    if name == "InvestigatorError":
        from investigator.errors import InvestigatorError

        return InvestigatorError
    raise AttributeError(f"module 'investigator' has no attribute {name!r}")
