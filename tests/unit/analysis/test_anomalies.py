"""Access anomalies over audit entries (pure Polars): each kind found on its own planted case, edges, thresholds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator.analysis import anomalies
from investigator.analysis.anomalies import Thresholds, audit_frame, find_anomalies
from investigator.errors import ConfigError
from investigator.schema import format_ts

TZ = "Asia/Shanghai"
WEDNESDAY = datetime(2026, 11, 18, tzinfo=timezone.utc)  # a Wednesday; local = UTC + 8


class Log:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, actor: str, action: str, at: datetime, *, target: str = "G-1", outcome: str = "allowed",
            rule: str = "") -> None:
        self.rows.append({"seq": len(self.rows) + 1, "ts": format_ts(at), "actor": actor, "action": action,
                          "outcome": outcome, "target": target, "details": {"rule": rule} if rule else {}})

    def frame(self) -> pl.DataFrame:
        return audit_frame(self.rows)


def local(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day + timedelta(hours=hour - 8, minutes=minute)


def clean_log() -> Log:
    """Ten weekdays of ordinary work: opens and key releases in office hours, scattered refusals, varied approvers."""
    log = Log()
    for d in range(14):
        day = WEDNESDAY - timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for i, who in enumerate(("sunli", "liuyang", "wugang")):
            log.add(who, "case.open", local(day, 9 + i, 5))
            for k in range(3 + i):
                log.add(who, "key.release", local(day, 9 + i, 10 + k))
        log.add("wugang", "case.open", local(day, 19, 59), outcome="denied", rule="grant.expired")
        req = f"REQ-{d}"
        requester, approver = [("sunli", "zhouzong"), ("liuyang", "zhaomin"), ("wugang", "zhouzong")][d % 3]
        log.add(requester, "request.new", local(day, 10), target=req)
        log.add(approver, "request.approve", local(day, 11), target=req)
    return log


def kinds(frame: pl.DataFrame) -> list[str]:
    return find_anomalies(frame, tz=TZ)["kind"].to_list()


def test_a_clean_log_flags_nothing():
    frame = clean_log().frame()
    assert frame.height > 100
    assert find_anomalies(frame, tz=TZ).is_empty()
    assert anomalies.summary(find_anomalies(frame, tz=TZ))["findings"].to_list() == [0, 0, 0, 0]


@pytest.mark.parametrize("hour, minute, flagged", [(7, 59, True), (8, 0, False), (19, 59, False), (20, 0, True),
                                                   (2, 30, True)])
def test_off_hours_is_local_time(hour, minute, flagged):
    log = clean_log()
    log.add("sunli", "case.open", local(WEDNESDAY, hour, minute), target="G-night")
    found = find_anomalies(log.frame(), tz=TZ)
    assert found["kind"].to_list() == (["off_hours_open"] if flagged else [])
    if flagged:
        row = found.row(0, named=True)
        assert row["actor"] == "sunli" and "G-night" in row["detail"] and f"{hour:02d}:{minute:02d}" in row["detail"]


def test_a_weekend_open_is_off_hours_and_a_refused_open_is_not():
    log = clean_log()
    log.add("liuyang", "case.open", local(WEDNESDAY + timedelta(days=3), 11))  # Saturday 11:00
    log.add("liuyang", "case.open", local(WEDNESDAY, 3), outcome="denied", rule="grant.window")
    assert kinds(log.frame()) == ["off_hours_open"]
    # the zone matters: read in UTC, the office-hours opens of the clean log (09:05 in Shanghai) are at 01:05
    assert set(find_anomalies(clean_log().frame(), tz="UTC")["kind"].to_list()) == {"off_hours_open"}


def test_unusual_volume_one_person_one_day():
    log = clean_log()
    for k in range(60):
        log.add("liuyang", "key.release", local(WEDNESDAY, 14, k % 60))
    found = find_anomalies(log.frame(), tz=TZ)
    assert found["kind"].to_list() == ["unusual_volume"]
    row = found.row(0, named=True)
    assert row["actor"] == "liuyang" and row["count"] == 60 + 4 + 1  # the planted ones and that day's usual work
    assert "2026-11-18" in row["detail"]


def test_volume_needs_both_the_minimum_and_the_factor():
    log = clean_log()
    for k in range(30):  # many more than the median, fewer than volume_min (40)
        log.add("sunli", "key.release", local(WEDNESDAY, 15, k))
    assert kinds(log.frame()) == []
    assert find_anomalies(log.frame(), tz=TZ, thresholds=Thresholds(volume_min=20))["actor"].to_list() == ["sunli"]


def test_a_burst_of_refusals_is_one_finding():
    log = clean_log()
    for k in range(6):
        log.add("wugang", "case.open", local(WEDNESDAY, 16, k), outcome="denied", rule="grant.unknown")
    found = find_anomalies(log.frame(), tz=TZ)
    assert found["kind"].to_list() == ["refusal_burst"]
    row = found.row(0, named=True)
    assert row["actor"] == "wugang" and row["count"] == 6 and "grant.unknown" in row["detail"]
    assert len(row["seqs"]) == 6


def test_refusals_spread_out_are_no_burst():
    log = clean_log()
    for k in range(6):
        log.add("wugang", "case.open", local(WEDNESDAY, 9, 0) + timedelta(minutes=11 * k), outcome="denied")
    assert kinds(log.frame()) == []


def test_the_same_pair_again_and_again():
    log = clean_log()
    for k in range(9):
        req = f"REQ-P{k}"
        day = WEDNESDAY - timedelta(days=2 * k)
        log.add("sunli", "request.new", local(day, 10), target=req)
        log.add("zhaomin", "request.approve", local(day, 10, 30), target=req)
    found = find_anomalies(log.frame(), tz=TZ)
    assert found["kind"].to_list() == ["repeated_pair"]
    row = found.row(0, named=True)
    assert row["actor"] == "zhaomin" and row["count"] == 9 and "sunli" in row["detail"]


def test_the_period_limits_what_is_read():
    log = clean_log()
    log.add("sunli", "case.open", local(WEDNESDAY - timedelta(days=100), 2))
    assert kinds(log.frame()) == ["off_hours_open"]
    since = WEDNESDAY - timedelta(days=92)
    assert find_anomalies(log.frame(), tz=TZ, since=since).is_empty()


def test_thresholds_from_a_mapping():
    assert Thresholds.from_mapping(None) == Thresholds()
    t = Thresholds.from_mapping({"work_start": 9, "rest_days": [6], "volume_factor": 3})
    assert (t.work_start, t.rest_days, t.volume_factor) == (9, (6,), 3.0)
    assert t.to_json()["rest_days"] == [6]
    with pytest.raises(ConfigError, match="unknown anomaly threshold 'nope'"):
        Thresholds.from_mapping({"nope": 1})
    with pytest.raises(ConfigError):
        Thresholds.from_mapping({"work_start": 21})
    with pytest.raises(ConfigError):
        Thresholds.from_mapping({"pair_max": "many"})


def test_only_metadata_is_kept():
    log = Log()
    log.rows.append({"seq": 1, "ts": "2026-11-18T01:00:00.000000Z", "actor": "a", "action": "case.open",
                     "outcome": "allowed", "target": "G", "details": {"rule": "r", "reason": "SECRET-TEXT"}})
    frame = log.frame()
    assert frame.columns == list(anomalies.ENTRY_SCHEMA)
    assert "SECRET-TEXT" not in str(find_anomalies(frame, tz=TZ).to_dicts())
