"""Export of search hits or a tag's messages to CSV, Excel or Timesketch JSONL: an audited export like a bundle.

    >>> from investigator.reports.exports import export_messages
    >>> result = export_messages(case, panel.results, fmt="xlsx", out="hits.xlsx")   # doctest: +SKIP
    >>> result.rows, result.sha256, result.held                                       # doctest: +SKIP
    (7, '3f1c...', False)

The process document forbids unauthorized copies, so a spreadsheet of hits is held to the same
rules as an evidence bundle (:func:`investigator.reports.bundles.export_bundle`):

1. the person needs the role's ``export`` permission (policy decision audited as ``hits.export``;
   PolicyDenied otherwise);
2. every row must be one of the case's granted messages, inside the grant's window (PolicyDenied,
   rule ``grant.window``, audited, when a row is not);
3. the sensitive-information circuit breaker (:func:`investigator.reports.breaker.assess_messages`)
   judges the texts; a held export is not written (audit ``breaker.alert`` and a denied
   ``hits.export`` with rule ``breaker.hold``) — ask a legal reviewer, or export a bundle, which a
   reviewer can release;
4. the file is written atomically and audited (``hits.export``, outcome ``ok``) with its SHA-256,
   row count, format and what was exported — never message text.

Formats: ``csv`` (UTF-8 with BOM, so Excel opens Chinese text), ``xlsx``
(``polars.DataFrame.write_excel``, xlsxwriter) and ``timesketch`` (JSON lines with ``message``,
``datetime``, ``timestamp`` and ``timestamp_desc``, the fields Timesketch's importer requires).
Times are in the archive's zone with their offset, plus UTC. The widgets' export bar
(:class:`investigator.widgets.export.ExportBar`) calls this function; widgets cannot import reports,
so notebooks hand it over: ``SearchPanel(case, exporter=export_messages)``.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from investigator._fs import atomic_write
from investigator.authority.policy import load_org, record_decision
from investigator.errors import GrantExpired, PolicyDenied
from investigator.reports.breaker import assess_messages

FORMATS = {"csv": ".csv", "xlsx": ".xlsx", "timesketch": ".jsonl"}
# what an export carries: the message, its provenance and its corroboration, never internal columns
COLUMNS = ("message_id", "ts", "source", "conversation_id", "conversation_name", "sender_id", "sender_name",
           "recipients", "msg_type", "text", "attachment_name", "attachment_sha256", "reply_to", "source_file",
           "record_hash", "copies", "sources", "record_hashes", "tags", "notes", "matched_terms")


@dataclass(frozen=True)
class ExportResult:
    """What an export did: the file (None when held), rows, SHA-256 of the bytes, and the breaker's reasons."""

    path: Path | None
    fmt: str
    rows: int
    sha256: str
    held: bool = False
    reasons: list[str] = field(default_factory=list)


def _flat(frame: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Export columns, times as local ISO text with offset (plus UTC), nested values as JSON text."""
    present = [c for c in COLUMNS if c in frame.columns]
    out = frame.select(present)
    if "ts" in out.columns:
        out = out.with_columns(
            pl.col("ts").dt.convert_time_zone(tz).dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z").alias("ts"),
            pl.col("ts").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("ts_utc"))
    nested = [c for c, t in out.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
    if nested:
        out = out.with_columns(pl.col(c).map_elements(lambda v: json.dumps(_plain(v), ensure_ascii=False),
                                                      return_dtype=pl.String) for c in nested)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, pl.Series):
        return [_plain(v) for v in value.to_list()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _timesketch(frame: pl.DataFrame, flat: pl.DataFrame) -> bytes:
    lines = []
    micros = frame["ts"].dt.epoch("us").to_list() if "ts" in frame.columns else [None] * frame.height
    for row, stamp in zip(flat.iter_rows(named=True), micros):
        sender = row.get("sender_name") or row.get("sender_id") or ""
        where = row.get("conversation_name") or row.get("conversation_id") or ""
        text = row.get("text") if row.get("text") is not None else f"[{row.get('msg_type') or ''}]"
        record = {"message": f"{sender} @ {where}: {text}", "datetime": row.get("ts"), "timestamp": stamp,
                  "timestamp_desc": "Message sent", "data_type": "chat:message"}
        record.update({k: v for k, v in row.items() if k not in record and v is not None})
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def render(frame: pl.DataFrame, fmt: str, *, tz: str) -> bytes:
    """The bytes of ``frame`` in ``fmt`` (csv, xlsx, timesketch). Raises ValueError for another format."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}")
    flat = _flat(frame, tz)
    if fmt == "csv":
        return b"\xef\xbb\xbf" + flat.write_csv().encode("utf-8")
    if fmt == "xlsx":
        buffer = io.BytesIO()
        flat.write_excel(buffer, worksheet="messages", autofit=True)
        return buffer.getvalue()
    return _timesketch(frame, flat)


def _outside_grant(case: Any, frame: pl.DataFrame, granted: pl.DataFrame | None) -> int:
    """How many rows of ``frame`` are not granted messages of ``case`` (by id, and by time in the window)."""
    if frame.height == 0:
        return 0
    if "message_id" not in frame.columns or "ts" not in frame.columns:
        return frame.height
    start, end = case.window
    outside = frame.filter(~pl.col("ts").is_between(start, end, closed="left")).height
    ids = (granted if granted is not None else case.messages(["message_id"]))["message_id"]
    return outside + frame.filter(pl.col("ts").is_between(start, end, closed="left")
                                  & ~pl.col("message_id").is_in(ids.implode())).height


def export_messages(case: Any, frame: pl.DataFrame, *, fmt: str, out: Path | str, what: str = "hits",
                    granted: pl.DataFrame | None = None, now: datetime | None = None) -> ExportResult:
    """Export ``frame`` (search hits, a tag's messages) of ``case`` to ``out`` as ``fmt``; audited.

    ``what`` names the selection in the audit entry (e.g. ``"hits"``, ``"tag:evidence"``; no message
    text). ``granted`` is the case's granted messages when the caller holds them (a SearchPanel
    does); otherwise their ids are loaded from the case. Raises PolicyDenied without the export
    permission (rule from the policy) or for rows outside the grant (rule ``grant.window``),
    GrantExpired after the grant's expiry, ValueError for an unknown ``fmt``; each refusal is
    audited. A held export returns ``held=True`` and writes nothing.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}")
    when = now or datetime.now(timezone.utc)
    archive, grant, person = case.archive, case.grant, case.person
    target = Path(out)
    base = {"format": fmt, "what": what[:80], "rows": frame.height, "file": target.name}
    directory, policy = load_org(archive, actor=person, action="hits.export", target=grant.id, now=when)
    decision = policy.decide("export", person=directory.person(person), directory=directory, now=when,
                             tz=archive.config.zone)
    record_decision(archive, decision, actor=person, action="hits.export", target=grant.id, now=when,
                    details=base)
    decision.raise_if_denied()
    expiry = getattr(grant, "expiry", None)
    if expiry is not None and expiry <= when:
        archive.audit.append(person, "hits.export", grant.id, {**base, "rule": "grant.expired"},
                             outcome="denied", now=when)
        raise GrantExpired(f"grant {grant.id} expired; nothing is exported")
    stray = _outside_grant(case, frame, granted)
    if stray:
        archive.audit.append(person, "hits.export", grant.id, {**base, "rule": "grant.window", "outside": stray},
                             outcome="denied", now=when)
        raise PolicyDenied(f"{stray} of {frame.height} rows are not messages of this grant's window and scope; "
                           "only granted messages can be exported", rule="grant.window")
    data = render(frame, fmt, tz=case.timezone)
    digest = hashlib.sha256(data).hexdigest()
    details = {**base, "sha256": digest, "bytes": len(data)}
    texts = frame["text"].to_list() if "text" in frame.columns else []
    verdict = assess_messages(texts, archive=archive, grant=grant)
    if verdict.held:
        archive.audit.append(person, "breaker.alert", grant.id,
                             {"rule": "breaker.export", "reason": "; ".join(verdict.reasons), "sha256": digest},
                             outcome="denied", now=when)
        archive.audit.append(person, "hits.export", grant.id, {**details, "rule": "breaker.hold"},
                             outcome="denied", now=when)
        return ExportResult(None, fmt, frame.height, digest, True, list(verdict.reasons))
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data)
    archive.audit.append(person, "hits.export", grant.id, details, outcome="ok", now=when)
    return ExportResult(target, fmt, frame.height, digest)
