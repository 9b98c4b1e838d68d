"""Saved searches: a search's parameters (query, mode, filters, range) stored per case, re-runnable, audited.

    >>> store = SavedSearches(case)                                          # doctest: +SKIP
    >>> store.save("overtime", {"query": "加班费", "mode": "exact"})          # doctest: +SKIP
    >>> panel.run_saved("overtime")                                          # doctest: +SKIP

Only parameters are stored, never results or message text: re-running a saved search searches the
messages of the grant in force (a saved range outside it is refused by the panel, as any range is).
Layout: ``ARCHIVE/cases/<case>/searches.jsonl`` (``Layout.case_searches``) beside the case's tags, one JSON object per line
(``name``, ``params``, ``author``, ``ts``, ``op``: ``save`` or ``delete``); lines are only appended,
the newest line of a name wins. Each save and delete is audited first (``search.save`` /
``search.delete``, target: the grant; details: case, name, the parameters' SHA-256); each run is
audited as ``search.run`` (and the search itself as ``search``, by the case).
:func:`run_saved_search` runs saved parameters over a frame without a panel, and
:meth:`SavedSearches.run` does it by name (the keyword_sweep template's ``saved_search``): an unknown
name is a ConfigError naming the saved searches that exist, a range outside the grant is refused.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from investigator import analysis as A
from investigator._fs import append_line, exclusive_lock
from investigator.errors import ConfigError, IntegrityError, PolicyDenied
# the parameters a saved search may hold (anything else is dropped: never results, never text)
PARAMETERS = ("query", "mode", "pinyin", "preset", "start", "end", "senders", "participants", "groups", "types",
              "distinct")
NAME_CHARS = 80


def _digest(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class SavedSearches:
    """The saved searches of ``case``'s case id, written and audited as the case's person.

    Raises ValueError for an empty name or unknown parameters' types, IntegrityError for an
    unreadable file, KeyError from :meth:`get` for an unknown name.
    """

    def __init__(self, case: Any) -> None:
        self.case = case
        layout = case.archive.layout
        self.path: Path = layout.case_searches(case.grant.case)
        self._lock = layout.case_lock(case.grant.case)

    def __repr__(self) -> str:
        return f"SavedSearches(case={self.case.grant.case!r})"

    def _lines(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for number, line in enumerate(raw, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise IntegrityError(f"saved-search file line {number} is not JSON", path=str(self.path)) from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
                raise IntegrityError(f"saved-search file line {number}: expected an object with a name",
                                     path=str(self.path))
            out.append(obj)
        return out

    def searches(self) -> dict[str, dict[str, Any]]:
        """name -> parameters of every saved search in force (the newest save, unless deleted since)."""
        current: dict[str, dict[str, Any]] = {}
        for line in self._lines():
            if line.get("op") == "delete":
                current.pop(line["name"], None)
            else:
                current[line["name"]] = dict(line.get("params") or {})
        return dict(sorted(current.items()))

    def get(self, name: str) -> dict[str, Any]:
        """The parameters saved as ``name``. Raises KeyError when there is none."""
        return self.searches()[name]

    def named(self, name: str) -> dict[str, Any]:
        """The parameters saved as ``name``; ConfigError naming the saved searches that exist when there is none."""
        found = self.searches()
        if name in found:
            return found[name]
        known = ", ".join(repr(n) for n in found) or "none"
        raise ConfigError(f"case {self.case.grant.case!r} has no saved search named {name!r}; "
                          f"its saved searches: {known}",
                          hint="save one in the search panel (Save), or pass one of the names above")

    def run(self, name: str, messages: pl.DataFrame, *, tz: str, identities: dict[str, list[str]] | None = None,
            groups: dict[str, list[str]] | None = None, now: datetime | None = None
            ) -> tuple[dict[str, Any], pl.DataFrame]:
        """Run the saved search ``name`` over ``messages`` without a panel: ``(params, hits)``; audited.

        Raises ConfigError for an unknown name (naming the ones that exist) and PolicyDenied (rule
        ``grant.window``, audited as a denied ``search.run``) when its saved range leaves the grant's window.
        """
        params = self.named(name)
        self.admit(name, params, now=now)
        self.record_run(name, now=now)
        hits = run_saved_search(messages, params, tz=tz, identities=identities, groups=groups)
        return params, hits

    def admit(self, name: str, params: dict[str, Any], *, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The saved range ``(start, end)`` if it lies inside the grant's window (the window when none is saved).

        Raises ValueError for a range without offsets and PolicyDenied (rule ``grant.window``, audited as a
        denied ``search.run``) for one that leaves the window.
        """
        case = self.case
        lo, hi = case.window
        start = datetime.fromisoformat(params["start"]) if params.get("start") else lo
        end = datetime.fromisoformat(params["end"]) if params.get("end") else hi
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("a saved search's start and end must carry their offset")
        if start < lo or end > hi or start >= end:
            details = {"case": case.grant.case, "name": name, "params_sha256": _digest(params),
                       "rule": "grant.window", "reason": "the saved search's range is not inside the grant's window"}
            case.archive.audit.append(case.person, "search.run", case.grant.id, details, outcome="denied", now=now)
            raise PolicyDenied(f"the saved search {name!r} reaches outside the grant's window; only the granted "
                               "window can be searched", rule="grant.window")
        return start, end

    def _append(self, op: str, name: str, params: dict[str, Any], now: datetime | None) -> None:
        name = name.strip()
        if not name or len(name) > NAME_CHARS:
            raise ValueError(f"a saved search needs a name of 1 to {NAME_CHARS} characters")
        when = now or datetime.now(timezone.utc)
        case = self.case
        details = {"case": case.grant.case, "name": name, "params_sha256": _digest(params)}
        if case.process:
            details["process"] = case.process
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._lock):
            # audit first: no saved search exists that the audit log does not know
            case.archive.audit.append(case.person, f"search.{op}", case.grant.id, details, now=when)
            line = {"name": name, "params": params, "author": case.person, "op": op,
                    "ts": when.astimezone(timezone.utc).isoformat()}
            append_line(self.path, (json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
        changed = getattr(case, "changed", None)
        if changed is not None:  # covered by the next signed state head at once (Case.changed)
            changed(when)

    def save(self, name: str, params: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
        """Save ``params`` (only the keys of ``PARAMETERS``) as ``name``, replacing an older one; audited."""
        kept = {k: params[k] for k in PARAMETERS if k in params}
        json.dumps(kept)  # raises TypeError for values that are not plain JSON
        self._append("save", name, kept, now)
        return kept

    def delete(self, name: str, *, now: datetime | None = None) -> None:
        """Remove ``name`` from the searches in force (recorded as a deletion; the history stays)."""
        self._append("delete", name, {}, now)

    def record_run(self, name: str, *, now: datetime | None = None) -> None:
        """Audit that the saved search ``name`` was run (``search.run``)."""
        case = self.case
        details = {"case": case.grant.case, "name": name, "params_sha256": _digest(self.get(name))}
        case.archive.audit.append(case.person, "search.run", case.grant.id, details, now=now)


def run_saved_search(messages: pl.DataFrame, params: dict[str, Any], *, tz: str,
                     identities: dict[str, list[str]] | None = None,
                     groups: dict[str, list[str]] | None = None) -> pl.DataFrame:
    """The hits of saved ``params`` over ``messages`` without a panel (for templates such as keyword_sweep).

    The SearchPanel's pipeline: time window -> types -> senders -> participants -> groups -> search
    (no query: every filtered row). ``messages`` should be what the panel would search (distinct
    messages unless ``params["distinct"]`` is False — the caller decides; this function only filters).
    Raises ValueError for a naive ``start``/``end``; the caller checks them against its grant.
    """
    frame = messages
    if params.get("start") and params.get("end"):
        start, end = datetime.fromisoformat(params["start"]), datetime.fromisoformat(params["end"])
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("a saved search's start and end must carry their offset")
        frame = A.time_window(frame, start, end, tz=tz)
    if params.get("types"):
        frame = A.by_types(frame, list(params["types"]))
    if params.get("senders"):
        frame = A.by_senders(frame, list(params["senders"]), identities=identities)
    if params.get("participants"):
        frame = A.by_participants(frame, list(params["participants"]), identities=identities)
    if params.get("groups"):
        frame = A.by_groups(frame, list(params["groups"]), groups=groups or {}, identities=identities)
    query = str(params.get("query") or "").strip()
    if not query:
        return frame
    return A.search(frame, query, mode=params.get("mode", "exact"), pinyin=bool(params.get("pinyin", False)),
                    tz=tz, identities=identities)
