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
| ``sshd(pam_unix)`` / ``login(pam_unix)``: ``authentication failure; ... user=U`` | login_failed | failure |
| ``sshd(pam_unix)`` / ``login(pam_unix)``: ``session opened for user U`` | session_open | success |
| ``su(pam_unix)`` / ``pam_unix(su:session)``: ``session opened for user T by U(uid=N)`` | su | success |
| ``su(pam_unix)``: ``authentication failure; ... user=T`` | su_failed | failure |
| ``su(pam_unix)``: ``session closed for user T`` | su_end | success |

User names are taken as logged between the fixed words (``Invalid user  0101 from``
gives `` 0101``): sshd writes them with ``%.100s``, spaces and odd characters included.
``message repeated N times: [ MSG ]`` (rsyslog's rate limiter) yields N events of
MSG, each at the repeat line's time with ``repeated_from`` naming that line.

Other well-formed syslog lines (old ``syslogd 1.4.1: restart.`` tags included) are
not events of interest: they are listed in ``skipped`` (in both modes) so nothing
disappears silently. CRLF line ends are read. ``event_id`` is derived from host,
time, process id, a hash of the line and an ordinal.
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
# Old sysklogd tags with a space ("syslogd 1.4.1: restart."): well-formed, never an event.
_BSD_ANY = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}) (?P<host>\S+) "
                      r"(?P<prog>[^\s\[:]+)(?P<msg>.*)$")
_RFC = re.compile(r"^(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})) (?P<host>\S+) "
                  r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$")
_IP = r"(?P<ip>[0-9A-Fa-f:.]+)"
# openssh-portable auth.c / auth2.c: "Invalid user %.100s from %.100s port %d", auth_log(): "%s %s for %s%.100s
# from %.200s port %d ssh2": the user name is whatever lies between the fixed words.
_PORT = r"(?: port \d+)?(?:\s|$)"
_RULES: list[tuple[re.Pattern[str], str, str, str]] = [
    (re.compile(r"^Accepted (?P<method>\S+) for (?P<user>.*?) from " + _IP + _PORT), "login", "success", "method"),
    (re.compile(r"^Failed (?P<method>\S+) for invalid user (?P<user>.*?) from " + _IP + _PORT), "login_failed",
     "failure", "invalid user"),
    (re.compile(r"^Failed (?P<method>\S+) for (?P<user>.*?) from " + _IP + _PORT), "login_failed", "failure",
     "method"),
    (re.compile(r"^Invalid user (?P<user>.*?) from " + _IP + _PORT), "login_failed", "failure", "invalid user"),
    (re.compile(r"^pam_unix\(sshd:session\): session closed for user (?P<user>\S+)"), "logout", "success", ""),
    (re.compile(r"^Disconnected from user (?P<user>.*?) " + _IP + _PORT), "logout", "success", ""),
]
_SUDO = re.compile(r"^\s*(?P<user>\S+) : .*?COMMAND=(?P<command>.*)$")
# rsyslog runtime/ratelimit.c: " message repeated %d times: [%.800s]" (the inner MSG keeps its leading space).
_REPEATED = re.compile(r"^\s*message repeated (?P<count>\d+) times: \[\s?(?P<inner>.*)\]\s*$")
# Linux-PAM pam_unix messages, old ("su(pam_unix)[pid]: ...") and new ("pam_unix(su:session): ...") tagging.
_PAM_PREFIX = re.compile(r"^pam_unix\((?P<service>[^:)]+):(?P<kind>[a-z]+)\): (?P<rest>.*)$")
_PAM_FAILURE = re.compile(r"^authentication failure; (?P<fields>.*)$")
_PAM_OPEN = re.compile(r"^session opened for user (?P<user>\S+?)(?:\(uid=\d+\))? by (?P<by>\S*?)\(uid=(?P<uid>\d+)\)")
_PAM_CLOSE = re.compile(r"^session closed for user (?P<user>\S+)")
_PAM_SERVICES = ("sshd", "login", "su")
# Largest repeat count turned into events (rsyslog flushes far earlier; a bigger number is garbage).
MAX_REPEAT = 100_000


_AUTH_PROGRAMS = re.compile(r" (sshd|sudo|login|su|systemd-logind|CRON)(\([^)\s]*\))?(\[\d+\])?: |pam_unix\(")


def _syslog_match(line: str) -> re.Match[str] | None:
    return _BSD.match(line) or _RFC.match(line) or _BSD_ANY.match(line)


def sniff(path: Path, head: bytes) -> bool:
    """Syslog text (first non-blank lines ``Mon DD HH:MM:SS host prog...`` or RFC 3339) named auth.log* /
    secure* / messages* / syslog*, or with sshd / sudo / su / login / pam_unix lines anywhere in its head."""
    text = head.decode("utf-8", "ignore")
    lines = [line.rstrip("\r") for line in text.split("\n")[:50] if line.strip()]
    if not lines or not all(_syslog_match(line) for line in lines[:5] if len(line) < 4096):
        return False
    if _syslog_match(lines[0]) is None:
        return False
    return path.name.startswith(("auth.log", "secure", "messages", "syslog")) or bool(_AUTH_PROGRAMS.search(text))


def _year_base(path: Path, options: ImportOptions) -> tuple[int | None, datetime | None]:
    if options.year is not None:
        return options.year, None
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).replace(tzinfo=None)
    return None, mtime


def _pam_fields(text: str) -> dict[str, str]:
    """``logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=1.2.3.4  user=root`` -> a dict (empty values kept)."""
    return dict(re.findall(r"(\w+)=(\S*)", text))


def _pam_event(service: str, text: str) -> tuple[str, str, str | None, str | None, dict[str, Any]] | None:
    """Events of pam_unix messages for sshd, login and su (cron and other services' sessions are noise)."""
    if service not in _PAM_SERVICES:
        return None
    details: dict[str, Any] = {"service": service, "module": "pam_unix"}
    match = _PAM_FAILURE.match(text)
    if match:
        fields = _pam_fields(match.group("fields"))
        details.update(reason="authentication failure", **{k: v for k, v in fields.items() if k != "user"})
        rhost = fields.get("rhost") or ""
        ip = rhost if re.fullmatch(r"[0-9A-Fa-f:.]+", rhost) else None  # a host name stays in details
        return ("su_failed" if service == "su" else "login_failed", "failure", fields.get("user") or None,
                ip, details)
    match = _PAM_OPEN.match(text)
    if match:
        details.update(by=match.group("by") or None, by_uid=match.group("uid"))
        if service == "su":
            details["target_user"] = match.group("user")
            return "su", "success", match.group("by") or None, None, details
        return "session_open", "success", match.group("user"), None, details
    match = _PAM_CLOSE.match(text)
    if match:
        if service == "su":
            details["target_user"] = match.group("user")
            return "su_end", "success", match.group("user"), None, details
        return "logout", "success", match.group("user"), None, details
    return None


def _event(prog: str, msg: str) -> tuple[str, str, str | None, str | None, dict[str, Any]] | None:
    """(event_type, outcome, actor, ip, details) for an interesting line, else None."""
    program, _, module = prog.partition("(")
    if module.rstrip(")") == "pam_unix":
        return _pam_event(program, msg)
    pam = _PAM_PREFIX.match(msg)
    if pam and program in _PAM_SERVICES and not (program == "sshd" and pam.group("rest").startswith("session closed")):
        return _pam_event(pam.group("service").removesuffix("-l"), pam.group("rest"))
    if program == "sshd":
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
    if program == "sudo":
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
            match = _syslog_match(line)
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
            message = groups["msg"]
            repeat = _REPEATED.match(message) if "message repeated" in message else None
            count = 1
            if repeat is not None:
                count = int(repeat.group("count"))
                message = repeat.group("inner")
                if not 1 <= count <= MAX_REPEAT:
                    rows.bad(file_name, position, f"a repeat count from 1 to {MAX_REPEAT}")
                    continue
            found = None if match.re is _BSD_ANY else _event(groups["prog"], message)
            if found is None:
                rows.note(position, f"syslog line of {groups['prog']!r} with no login, logout, su or sudo event")
                continue
            event_type, outcome, actor, ip, details = found
            raw_sha = sha256_hex(raw.rstrip(b"\r"))
            for index in range(count):
                ordinals[raw_sha] = ordinals.get(raw_sha, 0) + 1
                extra: dict[str, Any] = {}
                if repeat is not None:
                    extra = {"repeated_from": position, "repeat": index + 1, "repeat_count": count}
                rec = {
                    "event_id": "authlog:" + derived_id(groups["host"], us, groups.get("pid"), raw_sha,
                                                        ordinals[raw_sha]),
                    "ts": us,
                    "actor": actor,
                    "event_type": event_type,
                    "host": groups["host"],
                    "ip": ip,
                    "outcome": outcome,
                    "details": orjson.dumps({"program": groups["prog"], **details, **extra},
                                            option=orjson.OPT_SORT_KEYS).decode(),
                }
                rows.add(rec, file=file_name, sha=sha, position=position, raw_sha=raw_sha,
                         platform_ids={"pid": groups.get("pid"), "program": groups["prog"], **extra})
        return finish(box, NAME, events=rows)
    finally:
        box.close()
