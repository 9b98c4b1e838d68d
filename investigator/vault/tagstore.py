"""Case tags and notes, stored beside the archive (append-only JSON lines) and audited.

    >>> store = case.tags()                                              # doctest: +SKIP
    >>> store.add(["p-c1-complaint"], "evidence", note="the complaint")  # doctest: +SKIP
    >>> store.to_frame()["message_id"].to_list()                         # doctest: +SKIP
    ['p-c1-complaint']

Layout: ``ARCHIVE/cases/<case>/tags.jsonl`` (``archive.layout.case_tags(case)``), one :class:`~investigator.tags.TagEntry` per
line (``{message_id, tag, note, author, ts}``, plus ``"op": "remove"`` for removals). Lines are only
ever appended: removing a tag appends a removal, so the history stays readable. Originals (batches,
manifests) are never touched. Every entry is first written to the audit log as action ``tag``
(target: the message id; details: case, tag, op and a SHA-256 of the note, never the note itself),
then to the tag file, so no tag exists that the audit log does not know.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import polars as pl

from investigator.tags import TagSet, apply_tags, filter_by_tag
from investigator.errors import ConfigError, IntegrityError
from investigator.vault.layout import TAGS_NAME
from investigator.vault.layout import case_folder as case_folder  # re-exported; the rule lives in the layout
from investigator.vault.statehead import check_files
from investigator._fs import exclusive_lock, make_dirs

TAGS_FILE = TAGS_NAME  # names: investigator/vault/layout.py


class TagStore:
    """The tags of one case in one archive, written and audited as ``actor``.

    Built by :meth:`investigator.access.case.Case.tags`; reading needs no keys (tags are the
    investigator's own notes, not records). Raises AuditError when the audit log cannot be written
    (nothing is then stored), IntegrityError for an unreadable tag file, ValueError for a bad tag.
    """

    def __init__(self, archive: Any, *, case: str, actor: str,
                 after_write: Callable[[datetime], Any] | None = None) -> None:
        if not actor:
            raise ConfigError("tags need an author")
        self.archive = archive
        self.case = case
        self.actor = actor
        # run after each change (a case passes its key service's checkpoint: the change is then covered by the
        # next signed state head at once, not at the next decision; issue #13, item 2)
        self._after_write = after_write
        layout = archive.layout
        self.path = layout.case_tags(case)
        self._lock_path = layout.case_lock(case)

    def __repr__(self) -> str:
        return f"TagStore(case={self.case!r}, actor={self.actor!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        make_dirs(self.path.parent)
        with exclusive_lock(self._lock_path):
            yield

    # --- reading ----------------------------------------------------------------------

    def tagset(self) -> TagSet:
        """Every stored entry, in order, as an immutable TagSet.

        Raises IntegrityError for a file below the newest signed state head (lines removed, an older copy restored).
        """
        problems = check_files(self.archive, [self.archive.layout.relative(self.path)])
        if problems:
            raise IntegrityError(f"tags do not match their signed state head: {problems[0]}",
                                 path=self.archive.layout.relative(self.path))
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return TagSet()
        objects = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                objects.append(json.loads(line))
            except ValueError as exc:
                raise IntegrityError(f"tag file line {number} is not JSON", path=str(self.path)) from exc
        try:
            return TagSet.from_entries(objects)
        except ValueError as exc:
            raise IntegrityError(f"tag file has an invalid entry ({exc})", path=str(self.path)) from exc

    def to_frame(self) -> pl.DataFrame:
        """Tags in force: message_id, tag, note, author, ts."""
        return self.tagset().to_frame()

    def history(self) -> pl.DataFrame:
        """Every add and removal, in order."""
        return self.tagset().history()

    def tags_in_use(self) -> list[str]:
        """The distinct tags in force, sorted."""
        return sorted(self.to_frame()["tag"].unique().to_list())

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` plus ``tags`` and ``notes`` list columns."""
        return apply_tags(frame, self.tagset())

    def filter(self, frame: pl.DataFrame, tag: str | Iterable[str], *, exclude: bool = False) -> pl.DataFrame:
        """Rows of ``frame`` tagged ``tag`` (or, with ``exclude``, not so tagged)."""
        return filter_by_tag(frame, self.tagset(), tag, exclude=exclude)

    # --- writing ----------------------------------------------------------------------

    def add(self, message_ids: Iterable[str], tag: str, *, note: str = "", now: datetime | None = None) -> TagSet:
        """Tag ``message_ids`` with ``tag`` and ``note``; returns the whole TagSet after the change."""
        return self._write(message_ids, tag, note, now, "add")

    def remove(self, message_ids: Iterable[str], tag: str, *, note: str = "",
               now: datetime | None = None) -> TagSet:
        """Record that ``tag`` no longer applies to ``message_ids`` (appended, nothing erased)."""
        return self._write(message_ids, tag, note, now, "remove")

    def _write(self, message_ids: Iterable[str], tag: str, note: str, now: datetime | None, op: str) -> TagSet:
        when = now or datetime.now(timezone.utc)
        ids = [str(m) for m in dict.fromkeys(message_ids)]
        if not ids:
            return self.tagset()
        change = TagSet()
        change = change.add(ids, tag, note=note, author=self.actor, now=when) if op == "add" else \
            change.remove(ids, tag, note=note, author=self.actor, now=when)  # validates tag, author, time
        note_hash = hashlib.sha256(note.encode("utf-8")).hexdigest() if note else ""
        with self._locked():
            for entry in change.entries:
                # audit first: a tag the audit log does not know must not exist
                self.archive.audit.append(self.actor, "tag", entry.message_id,
                                          {"case": self.case, "tag": entry.tag, "op": entry.op,
                                           "note_sha256": note_hash}, now=when)
                line = json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
                with open(self.path, "ab") as handle:
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
        if self._after_write is not None:
            self._after_write(when)
        return self.tagset()
