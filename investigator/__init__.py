"""investigator: policy-checked, encrypted, auditable investigation of chat records.

    >>> import investigator
    >>> investigator.__version__
    '0.1.0'
    >>> case = investigator.open_case("demo-archive", grant="G-...", person="sunli", totp="123456")  # doctest: +SKIP
    >>> hits = investigator.search(case.messages(), '加班费 OR "overtime pay"', mode="word")        # doctest: +SKIP

The public API is small on purpose and imported explicitly, so a type checker
sees ``open_case(...) -> Case``; everything else is reachable through its
package (``investigator.vault``, ``investigator.access``, ``investigator.analysis``
...; docs/architecture.md has the map). Importing the package has no side
effects: it loads Polars (about 0.5 s) but not jieba, which the first
word-mode search loads.
"""

from __future__ import annotations

from investigator._version import __version__
from investigator.access.case import Case, open_case
from investigator.analysis import search
from investigator.errors import InvestigatorError
from investigator.vault.store import Archive

__all__ = ["Archive", "Case", "InvestigatorError", "__version__", "open_case", "search"]
