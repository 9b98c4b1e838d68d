"""System events for correlation: logins, alerts, tickets and orders.

    >>> from investigator.demo.samples.events import generate_events
    >>> frame = generate_events(seed=7)
    >>> sorted(set(frame["event_type"]))[:3]
    ['alert', 'delivery_delay_alert', 'login']

Events are few (thousands) next to messages, so they are made with a seeded
``random.Random`` rather than vectorized; the Mersenne Twister sequence of a
seed is stable across Python versions. The planted events of
:mod:`.planted` are added when the window covers them.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from investigator import schema
from investigator.demo.samples import directory, planted
from investigator.demo.samples.messages import DEFAULT_DAYS, DEFAULT_START, DEFAULT_TZ

# Which host each department logs in to, and each person's usual office IP.
HOSTS = {"客服部": "crm-01", "采购部": "erp-01", "安保部": "cctv-01", "信息技术部": "erp-01", "审计部": "erp-01",
         "法务部": "crm-01", "总经办": "erp-01"}
LINUX_HOSTS = ("erp-01", "crm-01", "cctv-01")  # these write sshd lines to auth.log


def usual_ip(person_id: str) -> str:
    """The office IP a person normally logs in from (stable per person)."""
    if person_id == "liuyang":
        return planted.USUAL_IP_LIUYANG
    index = [p.id for p in directory.PEOPLE].index(person_id)
    return f"10.20.{1 + index % 5}.{20 + index}"


def _local(day: date, minutes: float, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minutes)


def _bulk(seed: int, start: date, days: int, zone: ZoneInfo, n: int | None) -> list[dict]:
    rng = random.Random(seed * 7919 + 17)
    staff = [p for p in directory.PEOPLE if not p.external]
    rows: list[dict] = []
    quiet = {(actor, date.fromisoformat(d)) for actor, d in planted.EVENT_QUIET.items()}

    def add(ts: datetime, actor: str, etype: str, host: str, ip: str, outcome: str, details: dict) -> None:
        # Logs record whole seconds.
        rows.append({"ts": ts.replace(microsecond=0), "actor": actor, "event_type": etype, "host": host, "ip": ip, "outcome": outcome,
                     "details": json.dumps(details, ensure_ascii=False, sort_keys=True)})

    order_no = 1000
    per_day_orders = 6 if n is None else max(1, n // (3 * days))
    for d in range(days):
        day = start + timedelta(days=d)
        workday = day.weekday() < 5
        for person in staff:
            if (person.id, day) in quiet:
                continue
            # Patrol guards work shifts every day; office staff on workdays.
            if not workday and "护卫队" not in person.groups:
                continue
            host, ip = HOSTS.get(person.department, "erp-01"), usual_ip(person.id)
            login = _local(day, rng.gauss(8 * 60 + 55, 12), zone)
            if rng.random() < 0.06:  # a mistyped password before the login
                add(login - timedelta(seconds=rng.randint(20, 90)), person.id, "login_failed", host, ip, "failure",
                    {"method": "ssh", "reason": "invalid password"})
            add(login, person.id, "login", host, ip, "success", {"method": "ssh"})
            add(_local(day, rng.gauss(18 * 60 + 5, 15), zone), person.id, "logout", host, ip, "success", {"method": "ssh"})
        # Brute-force noise from outside, on the ERP host: failed logins for unknown users.
        for _ in range(rng.randint(0, 3)):
            bad_ip = f"198.51.100.{rng.randint(2, 250)}"
            add(_local(day, rng.uniform(0, 1440), zone), rng.choice(("admin", "root", "test", "oracle")), "login_failed",
                "erp-01", bad_ip, "failure", {"method": "ssh", "reason": "invalid user"})
        for _ in range(per_day_orders):
            order_no += 1
            order_id = f"DD{day:%Y%m%d}{order_no:04d}"
            created = _local(day, rng.uniform(10 * 60, 21 * 60), zone)
            courier = rng.choice(("liqiang", "sunhao", "zhoupeng"))
            add(created, "system", "order", "order-svc", "", "success", {"order_id": order_id, "status": "created", "courier": courier})
            if rng.random() < 0.12:
                delay = rng.randint(20, 45)
                add(created + timedelta(minutes=30 + delay), "system", "delivery_delay_alert", "order-svc", "", "",
                    {"order_id": order_id, "delay_minutes": delay, "courier": courier, "severity": "medium"})
            add(created + timedelta(minutes=rng.randint(25, 80)), courier, "order", "order-svc", "", "success",
                {"order_id": order_id, "status": "delivered"})
        if workday:
            for t in range(rng.randint(1, 3)):
                agent = rng.choice(directory.AGENTS)
                opened = _local(day, rng.uniform(9 * 60, 17 * 60), zone)
                ticket = f"T-{day:%Y%m%d}-{t + 1:03d}"
                add(opened, agent, "ticket", "crm-01", "", "success", {"ticket_id": ticket, "status": "opened", "type": "inquiry"})
                add(opened + timedelta(minutes=rng.randint(10, 240)), agent, "ticket", "crm-01", "", "success",
                    {"ticket_id": ticket, "status": "closed", "resolution": "answered"})
        if rng.random() < 0.3:
            add(_local(day, rng.uniform(0, 1440), zone), "system", "alert", "cctv-01", "", "",
                {"alert": "camera_offline", "camera": f"cam-{rng.randint(1, 24):02d}"})
    return rows


def generate_events(
    *, seed: int = 7, start: date = DEFAULT_START, days: int = DEFAULT_DAYS, tz: str = DEFAULT_TZ, n: int | None = None,
) -> pl.DataFrame:
    """System events in the normalized events schema, sorted by ``ts``.

    ``n`` roughly sets the number of bulk events (through the order volume);
    the default gives a few thousand for four weeks. Planted events are added
    when the window covers their day. Raises ValueError for ``days <= 0``.
    """
    if days <= 0:
        raise ValueError("days must be > 0")
    zone = ZoneInfo(tz)
    utc = ZoneInfo("UTC")
    rows = _bulk(seed, start, days, zone, n)
    rows.sort(key=lambda r: (r["ts"], r["actor"], r["event_type"]))
    for k, row in enumerate(rows):
        row["event_id"] = f"ev{seed}-{k:07d}"
    end = start + timedelta(days=days)
    for ev in planted.EVENTS:
        if start <= date.fromisoformat(ev.local[:10]) < end:
            local = datetime.strptime(ev.local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
            rows.append({"event_id": ev.id, "ts": local, "actor": ev.actor, "event_type": ev.event_type, "host": ev.host,
                         "ip": ev.ip, "outcome": ev.outcome, "details": ev.details})
    for row in rows:
        row["ts"] = row["ts"].astimezone(utc)
        row["source"] = "sample"
        for key in ("ip", "outcome"):
            row[key] = row[key] or None
    frame = pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}) if rows else schema.empty_events()
    return schema.conform(frame, "events").sort(["ts", "event_id"])
