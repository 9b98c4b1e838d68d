"""auth.log variants: rsyslog repeat lines, odd user names, old pam_unix tags, CRLF, detection by content."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator.errors import ImportFormatError
from investigator.importers import ImportOptions, detect_format, read_export

from importer_testkit import VARIANTS

UTC = timezone.utc
LOGS = VARIANTS / "authlog"


def test_repeated_lines_and_odd_user_names() -> None:
    path = LOGS / "auth.log"
    assert detect_format(path) == "authlog"
    result = read_export(path, options=ImportOptions(year=2024, tz="UTC"))
    ev = result.events
    got = [(r["event_type"], r["actor"], r["ip"], r["ts"].strftime("%H:%M:%S")) for r in ev.iter_rows(named=True)]
    failed_0101 = ("login_failed", " 0101", "203.0.113.50")
    failed_root = ("login_failed", "root", "203.0.113.51")
    assert got == [
        (*failed_0101, "10:00:01"), (*failed_0101, "10:00:03"),
        *[(*failed_0101, "10:00:09")] * 3,  # "message repeated 3 times": three events at the repeat line's time
        ("login_failed", "admin$%^", "203.0.113.51", "10:01:00"),
        (*failed_root, "10:01:02"), *[(*failed_root, "10:01:12")] * 2,
        ("login", "deploy", "10.0.0.7", "10:02:00"), ("session_open", "deploy", None, "10:02:00"),
        ("sudo", "deploy", None, "10:05:00"), ("su", "deploy", None, "10:06:00"),
        ("logout", "deploy", None, "10:09:00"),
    ]
    assert ev["ts"][0] == datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC)
    details = [json.loads(d) for d in ev["details"]]
    assert [d.get("repeated_from") for d in details[2:5]] == ["line 3"] * 3
    assert [d.get("repeat") for d in details[2:5]] == [1, 2, 3]
    assert "repeated_from" not in details[1]
    assert details[0]["reason"] == "invalid user" and details[12]["target_user"] == "root"
    assert ev["event_id"].n_unique() == ev.height
    # The repeat of a line that is no event is listed, like that line would be.
    assert [s.position for s in result.skipped] == ["line 7"]


def test_old_pam_unix_tags_crlf_and_detection_by_content() -> None:
    path = LOGS / "old-redhat.log"  # not named auth.log, first lines are syslogd / kernel
    assert detect_format(path) == "authlog"
    result = read_export(path, options=ImportOptions(year=2005, tz="America/New_York"))
    ev = result.events
    got = [(r["event_type"], r["outcome"], r["actor"], r["ip"]) for r in ev.iter_rows(named=True)]
    assert got == [
        ("login_failed", "failure", None, "198.51.100.4"),
        ("login_failed", "failure", "root", None),  # rhost is a host name: kept in details, not as ip
        ("su", "success", None, None), ("su_end", "success", "cyrus", None),
        ("session_open", "success", "test", None), ("session_open", "success", "root", None),
        ("su_failed", "failure", "root", None),
    ]
    # 15:16:01 in New York (EDT, UTC-4) in June 2005.
    assert ev["ts"][0] == datetime(2005, 6, 14, 19, 16, 1, tzinfo=UTC)
    details = [json.loads(d) for d in ev["details"]]
    assert details[1]["rhost"] == "host-7.example.net" and details[1]["program"] == "sshd(pam_unix)"
    assert details[2]["target_user"] == "cyrus" and details[6]["logname"] == "alice"
    assert set(ev["host"]) == {"combo"}
    assert [s.position for s in result.skipped] == ["line 1", "line 2", "line 3", "line 5", "line 11"]


def test_bad_repeat_count_names_the_line(write) -> None:  # type: ignore[no-untyped-def]
    path = write("auth.log", "Mar  3 10:00:01 h sshd[1]: Invalid user a from 203.0.113.5 port 1\n"
                             "Mar  3 10:00:02 h sshd[1]: message repeated 0 times: [ Invalid user a from 203.0.113.5"
                             " port 1]\n")
    with pytest.raises(ImportFormatError) as info:
        read_export(path, options=ImportOptions(year=2024))
    assert "auth.log" in str(info.value) and "line 2" in str(info.value) and "repeat count" in str(info.value)


_USER = st.text(st.characters(codec="ascii", categories=("L", "N", "P", "S", "Zs")), max_size=12).filter(
    lambda u: "\n" not in u and " from " not in u and not u.endswith(" from"))


@settings(max_examples=60, deadline=None)
@given(user=_USER, repeats=st.integers(1, 6))
def test_any_logged_user_name_is_kept_and_repeats_counted(tmp_path_factory, user: str, repeats: int) -> None:  # type: ignore[no-untyped-def]
    """Whatever sshd logged between 'invalid user ' and ' from' is the actor; N repeats give N events."""
    line = f"Failed password for invalid user {user} from 203.0.113.9 port 22 ssh2"
    text = (f"Mar  3 10:00:01 h sshd[9]: Invalid user {user} from 203.0.113.9 port 22\r\n"
            f"Mar  3 10:00:02 h sshd[9]: {line}\r\n"
            f"Mar  3 10:00:05 h sshd[9]: message repeated {repeats} times: [ {line}]\r\n")
    path = tmp_path_factory.mktemp("log") / "secure"
    path.write_bytes(text.encode())
    ev = read_export(path, options=ImportOptions(year=2024, tz="UTC")).events
    assert ev.height == 2 + repeats
    assert ev["actor"].to_list() == [user or None] * (2 + repeats)
    assert set(ev["event_type"]) == {"login_failed"}
