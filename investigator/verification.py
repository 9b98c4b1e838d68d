"""One result type for every check: archive, audit log, report and bundle verification.

    >>> result = Verification("bundle")
    >>> result.check("manifest signature")
    >>> result.count("items", 3)
    >>> result.ok, result.counts["items"], result.checked
    (True, 3, ['manifest signature'])
    >>> result.problem("item 2: hash mismatch")
    >>> result.ok
    False

A verifier never raises for what it finds: it records each problem and goes on,
so a reader sees everything that is wrong at once. ``counts`` hold how much was
looked at (manifests, chunks, records, entries, items); ``facts`` hold what the
check established (a report's digest and signer, whether a bundle was
released). ``to_json`` flattens both beside ``ok``, ``problems``, ``warnings``
and ``checked``, which is the shape the CLI's ``--json`` prints.

Nothing here may hold message text or secrets: problems name files, fields and
record ids, never content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verification:
    """What one verification found. ``ok`` when there are no problems."""

    subject: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        """Record something wrong (the check goes on)."""
        self.problems.append(text)

    def warn(self, text: str) -> None:
        """Record something a reader should know that does not make the result fail."""
        self.warnings.append(text)

    def check(self, text: str) -> None:
        """Record a check that was made and passed."""
        self.checked.append(text)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the count ``name`` (created at zero)."""
        self.counts[name] = self.counts.get(name, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.counts, **self.facts, "problems": list(self.problems),
                "warnings": list(self.warnings), "checked": list(self.checked)}
