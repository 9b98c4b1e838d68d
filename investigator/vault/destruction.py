"""Retention periods and signed destruction records (crypto-shredding: docs/archive-format.md, "Period keys").

    >>> period_of("2026-02-14")
    '2026Q1'
    >>> [t.isoformat() for t in period_window("2026Q1")]
    ['2026-01-01T00:00:00+00:00', '2026-04-01T00:00:00+00:00']

Data keys of day partitions written after period keys were enabled are wrapped under the key of their
retention period (one per calendar quarter, the seed's quarterly key change), not under the master key.
Destroying a period's key in the custody makes every copy of that period's chunks unreadable, on the
archive and on every backup target. What was destroyed is said by a **destruction record**
(``org/destroyed/<period>.json``), signed by the archive key: the period and its window, and per
partition its batches, chunk and row counts and the SHA-256 of every file that became unreadable —
no content. :func:`destroyed_partitions` is what ``verify`` asks so that it reports those partitions
as destroyed, not as damage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from investigator import _crypto
from investigator.errors import IntegrityError
from investigator.schema import canonical_json

if TYPE_CHECKING:
    from investigator.vault.store import Archive

PERIOD_WRAP_FORMAT = "investigator-wrapped-key/2"
DESTRUCTION_FORMAT = "investigator-destruction/1"
PERIOD_SCHEMES = ("quarter",)
# Kinds whose day partitions take period keys (the batch index and sealed secrets stay under the master key).
PERIOD_KINDS = ("messages", "events")
_DAY_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_PERIOD_RE = re.compile(r"^(\d{4})Q([1-4])$")


def period_of(partition: str, scheme: str = "quarter") -> str | None:
    """The retention period (``YYYYQn``) of a day partition ``YYYY-MM-DD``; None for any other partition."""
    match = _DAY_RE.match(partition)
    if match is None or scheme not in PERIOD_SCHEMES:
        return None
    return f"{match.group(1)}Q{(int(match.group(2)) - 1) // 3 + 1}"


def check_period(period: str) -> str:
    """``period`` if it names a quarter (``2026Q1``); IntegrityError otherwise (it names a file)."""
    if not _PERIOD_RE.match(period):
        raise IntegrityError(f"{period!r} is not a retention period (expected YYYYQn, e.g. 2026Q1)")
    return period


def period_window(period: str) -> tuple[datetime, datetime]:
    """The UTC window [start, end) of a period."""
    match = _PERIOD_RE.match(check_period(period))
    assert match is not None
    year, quarter = int(match.group(1)), int(match.group(2))
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=timezone.utc)
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc) if quarter == 4 else \
        datetime(year, 3 * quarter + 1, 1, tzinfo=timezone.utc)
    return start, end


def period_for(scheme: str | None, kind: str, partition: str) -> str | None:
    """The period whose key wraps ``kind``/``partition``'s data key under ``scheme``; None: the master key does."""
    return period_of(partition, scheme) if scheme and kind in PERIOD_KINDS else None


def parse_period_wrapped(wrapped: dict[str, Any], *, custody: str | None = None,
                         what: str = "") -> tuple[str, str, str, str]:
    """(kind, partition, period, wrapped payload) of a period-wrapped key record, as every custody reads it.

    ``custody``: the custody that must have made it (the record's ``custody`` field). Raises IntegrityError
    for a malformed record, a period that is no quarter, or another custody's record.
    """
    try:
        kind, partition, payload = str(wrapped["kind"]), str(wrapped["partition"]), str(wrapped["wrapped"])
        period = check_period(str(wrapped["period"]))
    except (KeyError, TypeError) as exc:
        raise IntegrityError("malformed wrapped key", path=what) from exc
    except IntegrityError as exc:
        raise IntegrityError(str(exc), path=what) from None
    if custody is not None and wrapped.get("custody") != custody:
        raise IntegrityError(f"wrapped key was not made by the {custody} custody", path=what)
    return kind, partition, period, payload


def is_period_wrapped(wrapped: dict[str, Any]) -> bool:
    """True for a data key wrapped under a period key (not under a master-key version)."""
    return wrapped.get("format") == PERIOD_WRAP_FORMAT


@dataclass(frozen=True)
class DestructionRecord:
    """A signed record of one destroyed period (see the module docstring)."""

    body: dict[str, Any]
    key_id: str
    signature: str

    @property
    def period(self) -> str:
        return str(self.body["period"])

    @property
    def partitions(self) -> set[tuple[str, str]]:
        return {(str(p["kind"]), str(p["partition"])) for p in self.body.get("partitions", [])}

    @property
    def digest(self) -> str:
        return _crypto.sha256_hex(canonical_json(self.body))

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body, "key_id": self.key_id, "signature": self.signature}

    @classmethod
    def build(cls, body: dict[str, Any], signer: Any) -> "DestructionRecord":
        """Sign ``body`` with ``signer`` (the archive's :class:`~investigator.vault.format.ArchiveSigner`)."""
        return cls(dict(body), signer.public.key_id, signer.sign(canonical_json(body)))

    @classmethod
    def load(cls, archive: "Archive", period: str) -> "DestructionRecord | None":
        """The record of ``period``, verified against the archive's signing keys; None when there is none.

        Raises IntegrityError for a record that does not parse, names another period or archive, or
        whose signature fails.
        """
        path = archive.layout.destruction_record(check_period(period))
        if not path.exists():
            return None
        what = archive.layout.relative(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            record = cls(dict(obj["body"]), str(obj["key_id"]), str(obj["signature"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError("destruction record does not parse", path=what) from exc
        if record.body.get("format") != DESTRUCTION_FORMAT or record.period != period \
                or record.body.get("archive_id") != archive.archive_id:
            raise IntegrityError(f"destruction record is not {DESTRUCTION_FORMAT} of period {period} of this archive",
                                 path=what)
        chain = archive.signing_keys()
        if not chain.accepts(record.key_id):
            raise IntegrityError("destruction record signed by a key that is not the archive's", path=what)
        chain.verify(record.signature, canonical_json(record.body), what=what, key_id=record.key_id)
        return record


def destruction_records(archive: "Archive") -> tuple[list[DestructionRecord], list[str]]:
    """Every verified destruction record, and a problem sentence for each one that does not verify."""
    folder = archive.layout.destroyed_dir
    records, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = DestructionRecord.load(archive, path.stem)
        except IntegrityError as exc:
            problems.append(str(exc))
            continue
        if record is not None:
            records.append(record)
    return records, problems


def destroyed_partitions(archive: "Archive") -> tuple[dict[tuple[str, str], str], list[str]]:
    """(kind, partition) -> period of every partition a verified destruction record names, and the problems."""
    records, problems = destruction_records(archive)
    return {part: r.period for r in records for part in r.partitions}, problems
