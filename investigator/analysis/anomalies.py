"""Access anomalies in the audit log: off-hours opens, unusual volumes, bursts of refusals, repeated approval pairs.

    >>> from datetime import datetime, timezone
    >>> rows = [{"seq": 1, "ts": "2026-11-18T18:30:00.000000Z", "actor": "sunli", "action": "case.open",
    ...          "outcome": "allowed", "target": "G-1", "details": {"rule": "case.opened"}}]
    >>> frame = audit_frame(rows)
    >>> find_anomalies(frame, tz="Asia/Shanghai")["kind"].to_list()    # 02:30 in Shanghai
    ['off_hours_open']

Pure Polars over audit entries given as plain mappings (``AuditEntry.to_json()``): no archive, no
keys, and only metadata (who, what, when, outcome, rule) is read, never a detail's free text. Local
times are in the archive's time zone (``tz``). Every threshold is a field of :class:`Thresholds`,
whose defaults are documented there and in docs/auditor.md ("The quarterly check").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from investigator.errors import ConfigError

#: actions that read or release content (or prepare to): what "volume" counts
ACCESS_ACTIONS = ("case.open", "key.release", "load", "search", "search.run", "hits.export", "bundle.export",
                  "report.run", "report.export", "proof.release")
OPEN_ACTIONS = ("case.open",)
GRANTED = ("allowed", "ok")
KINDS = ("off_hours_open", "unusual_volume", "refusal_burst", "repeated_pair")

ENTRY_SCHEMA: dict[str, Any] = {"seq": pl.Int64, "ts": pl.Datetime("us", "UTC"), "actor": pl.String,
                                "action": pl.String, "outcome": pl.String, "target": pl.String, "rule": pl.String}
_FINDING_TYPES: dict[str, Any] = {"kind": pl.String, "actor": pl.String, "first": pl.Datetime("us", "UTC"),
                                  "last": pl.Datetime("us", "UTC"), "count": pl.Int64, "detail": pl.String,
                                  "seqs": pl.List(pl.Int64)}
FINDING_SCHEMA = pl.Schema(_FINDING_TYPES)


@dataclass(frozen=True)
class Thresholds:
    """When an access pattern is a finding. The defaults are the quarterly check's.

    - ``work_start`` / ``work_end``: working hours in the archive's time zone (08:00-20:00); an
      allowed case opening outside them, or on a ``rest_days`` weekday (0 = Monday; default
      Saturday and Sunday), is an off-hours open.
    - ``volume_min`` / ``volume_factor``: a person's content accesses (:data:`ACCESS_ACTIONS`,
      allowed) on one local day are unusual when there are at least ``volume_min`` (40) of them and
      more than ``volume_factor`` (4) times the median of all person-days in the period.
    - ``refusal_burst`` / ``refusal_minutes``: at least 5 refusals of one person within 10 minutes.
    - ``pair_max`` / ``pair_days``: at least 8 approvals by one approver of one requester's requests
      within 30 days (a supervisor approving by habit rather than by reading).
    """

    work_start: int = 8
    work_end: int = 20
    rest_days: tuple[int, ...] = (5, 6)
    volume_min: int = 40
    volume_factor: float = 4.0
    refusal_burst: int = 5
    refusal_minutes: int = 10
    pair_max: int = 8
    pair_days: int = 30

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "Thresholds":
        """Defaults overridden by ``values`` (e.g. a template parameter). Raises ConfigError for an unknown or bad key."""
        if not values:
            return cls()
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown anomaly threshold {unknown[0]!r}", hint=f"known: {', '.join(sorted(known))}")
        out = cls()
        for name, value in values.items():
            default = getattr(out, name)
            try:
                cast: Any = tuple(int(v) for v in value) if isinstance(default, tuple) else type(default)(value)
            except (TypeError, ValueError):
                raise ConfigError(f"anomaly threshold {name!r}: expected {type(default).__name__}") from None
            out = replace(out, **{name: cast})
        if not (0 <= out.work_start < out.work_end <= 24):
            raise ConfigError("anomaly thresholds: expected 0 <= work_start < work_end <= 24")
        return out

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def audit_frame(entries: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Audit entries (``AuditEntry.to_json()`` mappings) as a frame of :data:`ENTRY_SCHEMA`, by seq.

    Only metadata is kept: seq, time, actor, action, outcome, target and the deciding rule.
    """
    rows = [{"seq": int(e["seq"]), "ts": str(e["ts"]), "actor": str(e.get("actor", "")),
             "action": str(e.get("action", "")), "outcome": str(e.get("outcome", "")),
             "target": str(e.get("target", "")), "rule": str((e.get("details") or {}).get("rule", ""))}
            for e in entries]
    frame = pl.DataFrame(rows, schema={**ENTRY_SCHEMA, "ts": pl.String})
    return frame.with_columns(pl.col("ts").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.fZ")).sort("seq")


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDING_SCHEMA)


def off_hours_opens(frame: pl.DataFrame, *, tz: str, thresholds: Thresholds = Thresholds()) -> pl.DataFrame:
    """One finding per allowed case opening outside working hours or on a rest day (local time in ``tz``)."""
    local = pl.col("ts").dt.convert_time_zone(tz)
    opens = frame.filter(pl.col("action").is_in(OPEN_ACTIONS) & pl.col("outcome").is_in(GRANTED)).with_columns(
        hour=local.dt.hour(), weekday=local.dt.weekday() - 1, local=local.dt.strftime("%Y-%m-%d %H:%M %a"))
    late = opens.filter((pl.col("hour") < thresholds.work_start) | (pl.col("hour") >= thresholds.work_end)
                        | pl.col("weekday").is_in(list(thresholds.rest_days)))
    if late.is_empty():
        return _empty()
    hours = f"{thresholds.work_start:02d}:00-{thresholds.work_end:02d}:00"
    return late.select(
        kind=pl.lit("off_hours_open"), actor="actor", first="ts", last="ts", count=pl.lit(1, pl.Int64),
        detail=pl.format("opened {} at {} local ({}; working hours {})", "target", "local", pl.lit(tz), pl.lit(hours)),
        seqs=pl.concat_list("seq")).cast(FINDING_SCHEMA)


def unusual_volumes(frame: pl.DataFrame, *, tz: str, thresholds: Thresholds = Thresholds()) -> pl.DataFrame:
    """One finding per person and local day whose content accesses stand out (see :class:`Thresholds`)."""
    access = frame.filter(pl.col("action").is_in(ACCESS_ACTIONS) & pl.col("outcome").is_in(GRANTED))
    if access.is_empty():
        return _empty()
    days = (access.with_columns(day=pl.col("ts").dt.convert_time_zone(tz).dt.date())
            .group_by("actor", "day").agg(count=pl.len(), first=pl.col("ts").min(), last=pl.col("ts").max(),
                                          seqs=pl.col("seq").sort()))
    median = float(days.select(pl.col("count").median()).item() or 1.0)
    bar = max(float(thresholds.volume_min), thresholds.volume_factor * median)
    high = days.filter(pl.col("count") >= bar).sort("first", "actor")
    if high.is_empty():
        return _empty()
    return high.select(
        kind=pl.lit("unusual_volume"), actor="actor", first="first", last="last",
        count=pl.col("count").cast(pl.Int64),
        detail=pl.format("{} content accesses on {} (median person-day {}; threshold {})", "count",
                         pl.col("day").cast(pl.String), pl.lit(f"{median:g}"), pl.lit(f"{bar:g}")),
        seqs="seqs").cast(FINDING_SCHEMA)


def _clusters(rows: pl.DataFrame, keys: list[str], period: timedelta, minimum: int) -> list[dict[str, Any]]:
    """Windows of ``period`` holding at least ``minimum`` rows of the same ``keys``, overlapping ones merged."""
    out: list[dict[str, Any]] = []
    for key, group in rows.sort("ts").group_by(keys, maintain_order=True):
        times: list[datetime] = group["ts"].to_list()
        seqs: list[int] = group["seq"].to_list()
        spans: list[list[int]] = []  # [first index, last index, peak count]
        start = 0
        for end in range(len(times)):
            while times[end] - times[start] > period:
                start += 1
            if end - start + 1 < minimum:
                continue
            if spans and start <= spans[-1][1]:  # overlaps the open cluster: extend it
                spans[-1][1] = end
                spans[-1][2] = max(spans[-1][2], end - start + 1)
            else:
                spans.append([start, end, end - start + 1])
        out += [{"key": key, "first": times[a], "last": times[b], "peak": peak, "seqs": seqs[a:b + 1]}
                for a, b, peak in spans]
    return out


def refusal_bursts(frame: pl.DataFrame, *, thresholds: Thresholds = Thresholds()) -> pl.DataFrame:
    """One finding per burst: at least ``refusal_burst`` refusals of one person within ``refusal_minutes``."""
    denied = frame.filter(pl.col("outcome") == "denied")
    rows = []
    for c in _clusters(denied, ["actor"], timedelta(minutes=thresholds.refusal_minutes), thresholds.refusal_burst):
        part = denied.filter(pl.col("seq").is_in(c["seqs"]))
        rules = ", ".join(sorted(set(part["rule"].to_list()) - {""})) or "-"
        rows.append({"kind": "refusal_burst", "actor": c["key"][0], "first": c["first"], "last": c["last"],
                     "count": len(c["seqs"]),
                     "detail": f"{len(c['seqs'])} refusals (up to {c['peak']} within {thresholds.refusal_minutes} "
                               f"minutes); rules {rules}", "seqs": c["seqs"]})
    return pl.DataFrame(rows, schema=FINDING_SCHEMA) if rows else _empty()


def approval_pairs(frame: pl.DataFrame) -> pl.DataFrame:
    """Allowed approvals with their requester: seq, ts, approver, requester, request (target of request.new)."""
    requests = (frame.filter(pl.col("action") == "request.new").group_by("target")
                .agg(requester=pl.col("actor").first()))
    approvals = frame.filter((pl.col("action") == "request.approve") & pl.col("outcome").is_in(GRANTED))
    return (approvals.join(requests, on="target", how="left")
            .select("seq", "ts", pl.col("actor").alias("approver"),
                    pl.col("requester").fill_null("(unknown)"), pl.col("target").alias("request")))


def repeated_pairs(frame: pl.DataFrame, *, thresholds: Thresholds = Thresholds()) -> pl.DataFrame:
    """One finding per approver and requester with at least ``pair_max`` approvals within ``pair_days``."""
    pairs = approval_pairs(frame)
    rows = []
    for c in _clusters(pairs, ["approver", "requester"], timedelta(days=thresholds.pair_days), thresholds.pair_max):
        approver, requester = c["key"]
        rows.append({"kind": "repeated_pair", "actor": approver, "first": c["first"], "last": c["last"],
                     "count": len(c["seqs"]),
                     "detail": f"{approver} approved {len(c['seqs'])} requests of {requester} (up to {c['peak']} "
                               f"within {thresholds.pair_days} days)", "seqs": c["seqs"]})
    return pl.DataFrame(rows, schema=FINDING_SCHEMA) if rows else _empty()


def find_anomalies(frame: pl.DataFrame, *, tz: str, thresholds: Thresholds = Thresholds(),
                   since: datetime | None = None, until: datetime | None = None) -> pl.DataFrame:
    """Every finding of the four kinds over the entries between ``since`` and ``until`` (UTC), by kind and time."""
    if since is not None:
        frame = frame.filter(pl.col("ts") >= since)
    if until is not None:
        frame = frame.filter(pl.col("ts") <= until)
    parts = [off_hours_opens(frame, tz=tz, thresholds=thresholds),
             unusual_volumes(frame, tz=tz, thresholds=thresholds),
             refusal_bursts(frame, thresholds=thresholds),
             repeated_pairs(frame, thresholds=thresholds)]
    out = pl.concat(parts, how="vertical")
    order = {kind: i for i, kind in enumerate(KINDS)}
    return (out.with_columns(_order=pl.col("kind").replace_strict(order, return_dtype=pl.Int64))
            .sort("_order", "first", "actor").drop("_order"))


def summary(findings: pl.DataFrame) -> pl.DataFrame:
    """Findings per kind (every kind listed, zero included)."""
    counts = dict(findings.group_by("kind").agg(pl.len()).iter_rows()) if findings.height else {}
    return pl.DataFrame({"kind": list(KINDS), "findings": [int(counts.get(k, 0)) for k in KINDS]})
