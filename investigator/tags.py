"""Tags and notes on messages, instead of deletions (seed: "use marking, not deleting"); ground floor:
the vault's tag store keeps them, analysis and widgets filter by them.

    >>> from datetime import datetime, timezone
    >>> import polars as pl
    >>> from investigator.tags import TagSet, apply_tags, filter_by_tag
    >>> now = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
    >>> tags = TagSet().add(["m1", "m2"], "evidence", note="complaint thread", author="li.si", now=now)
    >>> tags = tags.remove(["m2"], "evidence", author="li.si", now=now)
    >>> frame = pl.DataFrame({"message_id": ["m1", "m2", "m3"]})
    >>> filter_by_tag(frame, tags, "evidence")["message_id"].to_list()
    ['m1']
    >>> apply_tags(frame, tags)["tags"].to_list()
    [['evidence'], [], []]

A :class:`TagSet` is an immutable, append-only list of :class:`TagEntry` values. Removing a tag appends
a "remove" entry; nothing is ever erased, so the history stays auditable. The entries serialize as JSON
lines ``{message_id, tag, note, author, ts}`` (plus ``"op": "remove"`` for removals) — the case layer
stores and audits them beside the archive; this module only models them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

STANDARD_TAGS = ("evidence", "irrelevant", "privileged", "needs-review", "key", "follow-up", "pii")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def _check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise ValueError("a tag is 1-48 characters of a-z, 0-9, '-' and '_', starting with a letter or digit")
    return tag


@dataclass(frozen=True)
class TagEntry:
    """One tagging action. ``ts`` is aware UTC; ``op`` is "add" or "remove"."""

    message_id: str
    tag: str
    note: str
    author: str
    ts: datetime
    op: str = "add"

    def to_json(self) -> dict[str, Any]:
        """The JSONL object a store persists (``op`` only for removals, to keep the common case minimal)."""
        obj: dict[str, Any] = {"message_id": self.message_id, "tag": self.tag, "note": self.note,
                               "author": self.author, "ts": self.ts.astimezone(timezone.utc).isoformat()}
        if self.op != "add":
            obj["op"] = self.op
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "TagEntry":
        """Read one stored entry. Raises ValueError for a missing field, a bad tag, op or time."""
        try:
            ts = obj["ts"]
            ts = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
            if ts.tzinfo is None:
                raise ValueError("tag entry time must carry a zone")
            op = obj.get("op", "add")
            if op not in ("add", "remove"):
                raise ValueError("tag entry op must be 'add' or 'remove'")
            return cls(str(obj["message_id"]), _check_tag(obj["tag"]), str(obj.get("note", "")),
                       str(obj["author"]), ts.astimezone(timezone.utc), op)
        except KeyError as exc:
            raise ValueError(f"tag entry lacks field {exc.args[0]!r}") from None


@dataclass(frozen=True)
class TagSet:
    """Append-only tag history; the current state is the last entry per (message, tag)."""

    entries: tuple[TagEntry, ...] = field(default=())

    def _append(self, message_ids: Iterable[str], tag: str, note: str, author: str, now: datetime,
                op: str) -> "TagSet":
        _check_tag(tag)
        if not author:
            raise ValueError("a tag needs an author")
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        new = tuple(TagEntry(str(m), tag, note, author, now.astimezone(timezone.utc), op)
                    for m in dict.fromkeys(message_ids))
        return TagSet(self.entries + new)

    def add(self, message_ids: Iterable[str], tag: str, *, note: str = "", author: str,
            now: datetime) -> "TagSet":
        """A new TagSet with ``tag`` (and ``note``) added to ``message_ids``. Raises ValueError for a bad tag."""
        return self._append(message_ids, tag, note, author, now, "add")

    def remove(self, message_ids: Iterable[str], tag: str, *, note: str = "", author: str,
               now: datetime) -> "TagSet":
        """A new TagSet in which ``tag`` no longer applies to ``message_ids`` (recorded, not erased)."""
        return self._append(message_ids, tag, note, author, now, "remove")

    def to_jsonl_entries(self) -> list[dict[str, Any]]:
        """All entries as JSON objects, in order, for a store to append."""
        return [e.to_json() for e in self.entries]

    @classmethod
    def from_entries(cls, objects: Iterable[Mapping[str, Any]]) -> "TagSet":
        """Rebuild from stored JSON objects (see :meth:`TagEntry.from_json` for what is raised)."""
        return cls(tuple(TagEntry.from_json(o) for o in objects))

    def history(self) -> pl.DataFrame:
        """Every entry as a frame: message_id, tag, note, author, ts, op."""
        return pl.DataFrame([{**e.__dict__} for e in self.entries], schema=_HISTORY_SCHEMA)

    def to_frame(self) -> pl.DataFrame:
        """Tags in force: one row per (message_id, tag) whose last entry is an add, with its note."""
        hist = self.history().with_row_index("__seq")
        last = hist.sort("__seq").group_by(["message_id", "tag"], maintain_order=True).last()
        return last.filter(pl.col("op") == "add").drop(["op", "__seq"]).sort(["message_id", "tag"])


_HISTORY_SCHEMA: dict[str, pl.DataType] = {"message_id": pl.String(), "tag": pl.String(), "note": pl.String(),
                                           "author": pl.String(), "ts": pl.Datetime("us", "UTC"),
                                           "op": pl.String()}


def apply_tags(frame: pl.DataFrame, tags: TagSet) -> pl.DataFrame:
    """``frame`` with ``tags`` (list of tags in force) and ``notes`` (their non-empty notes) columns."""
    current = tags.to_frame().group_by("message_id").agg(
        pl.col("tag").sort().alias("tags"),
        pl.col("note").filter(pl.col("note") != "").alias("notes"))
    out = frame.join(current, on="message_id", how="left", maintain_order="left")
    return out.with_columns(pl.col("tags").fill_null([]), pl.col("notes").fill_null([]))


def filter_by_tag(frame: pl.DataFrame, tags: TagSet, tag: str | Iterable[str], *,
                  exclude: bool = False) -> pl.DataFrame:
    """Rows tagged with ``tag`` (any of several), or with ``exclude`` the rows not tagged so."""
    wanted = [tag] if isinstance(tag, str) else list(tag)
    ids = tags.to_frame().filter(pl.col("tag").is_in(wanted))["message_id"].unique()
    mask = pl.col("message_id").is_in(ids.implode())
    return frame.filter(~mask if exclude else mask)
