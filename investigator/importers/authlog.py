"""Linux ``auth.log`` / ``secure``: sshd logins, failures and logouts, and sudo, as events.

    >>> from investigator.importers import read_export, ImportOptions
    >>> read_export("auth.log", options=ImportOptions(tz="Asia/Shanghai", year=2024))   # doctest: +SKIP

Both syslog shapes are read: ``Jan  5 10:00:01 host sshd[123]: ...`` (local time,
no year: ``options.year`` for the first line and +1 whenever the month goes back,
else the file's modification year with lines "in the future" moved a year back)
and RFC 3339 ``2024-01-05T10:00:01.123+08:00 host sshd[123]: ...``.

| line | event_type | outcome |
|---|---|---|
| ``Accepted password/publickey/... for U from IP`` | login | success |
| ``Failed password for [invalid user] U from IP`` | login_failed | failure |
| ``Invalid user U from IP`` | login_failed (details: invalid user) | failure |
| ``session closed for user U`` / ``Disconnected from user U IP`` | logout | success |
| ``sudo: U : ... COMMAND=...`` | sudo | success |

Other well-formed syslog lines are not events of interest: they are listed in
``skipped`` (in both modes) so nothing disappears silently. ``event_id`` is
derived from host, time, process id, a hash of the line and an ordinal.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson


from investigator.importers._container import Container
from investigator.importers._model import ImportOptions, ImportResult, finish
from investigator.importers._records import BadRecord, Collector, decode_text, derived_id, iso_to_us, local_to_us, sha256_hex

NAME = "authlog"

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}
_BSD = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}) (?P<host>\S+) "
                  r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$")
_RFC = re.compile(r"^(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})) (?P<host>\S+) "
                  r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$")
_IP = r"(?P<ip>[0-9A-Fa-f:.]+)"
_RULES: list[tuple[re.Pattern[str], str, str, str]] = [
    (re.compile(r"^Accepted (?P<method>\S+) for (?P<user>\S+) from " + _IP), "login", "success", "method"),
    (re.compile(r"^Failed (?P<method>\S+) for invalid user (?P<user>\S*) from " + _IP), "login_failed", "failure",
     "invalid user"),
    (re.compile(r"^Failed (?P<method>\S+) for (?P<user>\S+) from " + _IP), "login_failed", "failure", "method"),
    (re.compile(r"^Invalid user (?P<user>\S*) from " + _IP), "login_failed", "failure", "invalid user"),
    (re.compile(r"^pam_unix\(sshd:session\): session closed for user (?P<user>\S+)"), "logout", "success", ""),
    (re.compile(r"^Disconnected from user (?P<user>\S+) " + _IP), "logout", "success", ""),
]
_SUDO = re.compile(r"^\s*(?P<user>\S+) : .*?COMMAND=(?P<command>.*)$")


def sniff(path: Path, head: bytes) -> bool:
    """A file named auth.log* / secure*, or whose first line is syslog with sshd / sudo / pam."""
    text = head.decode("utf-8", "ignore")
    first = text.split("\n", 1)[0].rstrip("\r")
    match = _BSD.match(first) or _RFC.match(first)
    if match is None:
        return False
    return path.name.startswith(("auth.log", "secure")) or bool(
        re.search(r" (sshd|sudo|login|su|systemd-logind|CRON)(\[\d+\])?: ", text))


def _year_base(path: Path, options: ImportOptions) -> tuple[int | None, datetime | None]:
    if options.year is not None:
        return options.year, None
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).replace(tzinfo=None)
    return None, mtime


def _event(prog: str, msg: str) -> tuple[str, str, str | None, str | None, dict[str, Any]] | None:
    """(event_type, outcome, actor, ip, details) for an interesting line, else None."""
    if prog == "sshd":
        for pattern, event_type, outcome, detail in _RULES:
            match = pattern.match(msg)
            if match:
                groups = match.groupdict()
                details: dict[str, Any] = {}
                if detail == "method":
                    details["method"] = groups.get("method")
                elif detail:
                    details["reason"] = detail
                    if groups.get("method"):
                        details["method"] = groups["method"]
                return event_type, outcome, groups.get("user") or None, groups.get("ip"), details
    if prog == "sudo":
        match = _SUDO.match(msg)
        if match:
            return "sudo", "success", match.group("user"), None, {"command": match.group("command")}
    return None


def parse(path: Path, options: ImportOptions) -> ImportResult:
    """Read an auth.log. Raises ImportFormatError for undecodable text or (strict mode)
    the first line that is not syslog, or has an impossible date."""
    box = Container.open(path)
    rows = Collector("events", source=NAME, lenient=options.lenient)
    try:
        if box.kind != "file":
            raise box.error(box.name, "", "a single auth.log file")
        member = box.members()[0]
        file_name, sha = box.provenance(member)
        _, encoding = decode_text(box.read(member), file_name)
        year, mtime = _year_base(path, options)
        last_month = 0
        ordinals: dict[str, int] = {}
        for number, raw in box.iter_lines(member):
            line = raw.decode(encoding).rstrip("\r")
            if not line.strip():
                continue
            position = f"line {number}"
            match = _BSD.match(line) or _RFC.match(line)
            if match is None:
                rows.bad(file_name, position, "a syslog line 'Mon DD HH:MM:SS host program[pid]: message'")
                continue
            groups = match.groupdict()
            try:
                if groups.get("iso"):
                    us = iso_to_us(groups["iso"], options.tz)
                else:
                    month = _MONTHS.get(groups["mon"])
                    if month is None:
                        raise BadRecord("an English month abbreviation")
                    hour, minute, second = (int(x) for x in groups["time"].split(":"))
                    if year is not None:
                        if month < last_month:
                            year += 1  # the log crossed New Year
                        last_month = month
                        when = datetime(year, month, int(groups["day"]), hour, minute, second)
                    else:
                        assert mtime is not None
                        when = datetime(mtime.year, month, int(groups["day"]), hour, minute, second)
                        if (when - mtime).days >= 1:  # "in the future": last year's line
                            when = when.replace(year=mtime.year - 1)
                    us = local_to_us(when, options.tz)
            except (BadRecord, ValueError):
                rows.bad(file_name, position, "a valid syslog date and time")
                continue
            found = _event(groups["prog"], groups["msg"])
            if found is None:
                rows.note(position, f"syslog line of {groups['prog']!r} with no login, logout or sudo event")
                continue
            event_type, outcome, actor, ip, details = found
            raw_sha = sha256_hex(raw.rstrip(b"\r"))
            ordinals[raw_sha] = ordinals.get(raw_sha, 0) + 1
            rec = {
                "event_id": "authlog:" + derived_id(groups["host"], us, groups.get("pid"), raw_sha, ordinals[raw_sha]),
                "ts": us,
                "actor": actor,
                "event_type": event_type,
                "host": groups["host"],
                "ip": ip,
                "outcome": outcome,
                "details": orjson.dumps({"program": groups["prog"], **details},
                                        option=orjson.OPT_SORT_KEYS).decode(),
            }
            rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw_sha,
                     platform_ids={"pid": groups.get("pid"), "program": groups["prog"]})
        return finish(box, NAME, events=rows)
    finally:
        box.close()
