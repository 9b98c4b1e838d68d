"""Writer for Linux ``/var/log/auth.log`` sshd lines (the ssh logins of the events).

    >>> import tempfile
    >>> from pathlib import Path
    >>> from investigator.demo.samples.events import generate_events
    >>> path = write_authlog(generate_events(seed=7, days=2), Path(tempfile.mkdtemp()) / "auth.log")
    >>> "sshd[" in path.read_text()
    True

Syslog lines carry no year and no zone: the time is the host's local time.
The sample hosts run on UTC (``HOST_TZ``, stated in planted.json), as servers
usually do, so an importer must be told the zone and the year (2026).
Lines look like rsyslog's traditional format::

    Nov 24 00:41:07 erp-01 sshd[23456]: Accepted password for liuyang from 203.0.113.7 port 52311 ssh2
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from investigator.demo.samples.events import LINUX_HOSTS

HOST_TZ = "UTC"
_UID = 1000


def _num(text: str, lo: int, hi: int) -> int:
    """A stable number in [lo, hi) derived from ``text`` (pids and ports look random)."""
    return lo + int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % (hi - lo)


def _stamp(ts) -> str:
    # Syslog pads a one-digit day with a space: "Nov  4 09:01:02".
    return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S}"


def authlog_lines(events: pl.DataFrame) -> list[str]:
    """The auth.log lines for the ssh login, logout and login_failed events of ``events``."""
    ssh = events.filter(
        pl.col("event_type").is_in(["login", "logout", "login_failed"])
        & pl.col("host").is_in(list(LINUX_HOSTS))
        & pl.col("details").str.contains('"method": "ssh"', literal=True)
    ).with_columns(local=pl.col("ts").dt.convert_time_zone(HOST_TZ)).sort(["ts", "event_id"])
    lines: list[str] = []
    open_sessions: dict[tuple[str, str], tuple[int, int]] = {}
    uids: dict[str, int] = {}
    for ev in ssh.iter_rows(named=True):
        actor, host, ip, eid = ev["actor"], ev["host"], ev["ip"] or "127.0.0.1", ev["event_id"]
        stamp = f"{_stamp(ev['local'])} {host}"
        pid, port = _num(eid + "pid", 2000, 60000), _num(eid + "port", 32768, 61000)
        uid = uids.setdefault(actor, _UID + len(uids))
        if ev["event_type"] == "login_failed":
            reason = json.loads(ev["details"] or "{}").get("reason", "")
            who = f"invalid user {actor}" if reason == "invalid user" else actor
            if reason == "invalid user":
                lines.append(f"{stamp} sshd[{pid}]: Invalid user {actor} from {ip} port {port}")
            lines.append(f"{stamp} sshd[{pid}]: Failed password for {who} from {ip} port {port} ssh2")
        elif ev["event_type"] == "login":
            open_sessions[(actor, host)] = (pid, port)
            lines.append(f"{stamp} sshd[{pid}]: Accepted password for {actor} from {ip} port {port} ssh2")
            lines.append(f"{stamp} sshd[{pid}]: pam_unix(sshd:session): session opened for user {actor}(uid={uid}) by (uid=0)")
        else:  # logout closes the session its login opened (same pid and port)
            pid, port = open_sessions.pop((actor, host), (pid, port))
            lines.append(f"{stamp} sshd[{pid}]: Received disconnect from {ip} port {port}:11: disconnected by user")
            lines.append(f"{stamp} sshd[{pid}]: Disconnected from user {actor} {ip} port {port}")
            lines.append(f"{stamp} sshd[{pid}]: pam_unix(sshd:session): session closed for user {actor}")
    return lines


def write_authlog(events: pl.DataFrame, path: Path) -> Path:
    """Write ``auth.log`` for the ssh events of ``events``. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(authlog_lines(events)) + "\n", encoding="utf-8", newline="\n")
    return path
