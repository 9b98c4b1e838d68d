"""The Slack importer's column-wise path (ids checked once on the result) gives exactly what the
record-wise reference path gives: frames, skipped records, source files and errors.

The reference is the same importer with every day file sent through ``_add_records``
(``_Columns.add_day`` answering False), one message at a time as it was first written.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from investigator.errors import ImportFormatError
from investigator.importers import ImportOptions, read_export, slack

from importer_testkit import fixture


def _read(root: Path, lenient: bool) -> Any:
    try:
        return read_export(root, format="slack", options=ImportOptions(lenient=lenient))
    except ImportFormatError as exc:
        return ("error", str(exc))


def _assert_same(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for lenient in (False, True):
        fast = _read(root, lenient)
        with monkeypatch.context() as patch:
            patch.setattr(slack._Columns, "add_day", lambda self, *args: False)
            slow = _read(root, lenient)
        if isinstance(slow, tuple) or isinstance(fast, tuple):
            assert fast == slow
            continue
        assert fast.messages.schema == slow.messages.schema
        assert fast.messages.equals(slow.messages, null_equal=True)
        assert fast.skipped == slow.skipped
        assert fast.source_files == slow.source_files


_TS = st.one_of(
    st.builds(lambda s, f: f"{s}.{f:06d}", st.integers(1_400_000_000, 1_400_000_050), st.integers(0, 3)),
    st.builds(str, st.integers(1_400_000_000, 1_400_000_050)),
    st.sampled_from(["1400000001.5", "abc", "1.2.3", "", "１４００", "1400000001.1234567"]),
    st.integers(0, 5), st.none(),
)
_TEXT = st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["合同 👍", 'q"\\\n\x01', "\u2028", ""]),
                  st.integers(0, 3), st.booleans())
_ID = st.one_of(st.none(), st.sampled_from(["U1", "U2", "U3", "", 'U"q', "U\t", "B1", "é"]), st.integers(0, 2))
_SUBTYPE = st.one_of(st.none(), st.sampled_from([
    "channel_join", "group_leave", "foo_join", "tombstone", "bot_message", "file_share", "me_message",
    "message_changed", "message_deleted", "pinned_item", "x\ty"]), st.just([1]))


@st.composite
def _message(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from(["not an object", 5, None, []]))
    m: dict[str, Any] = {"type": "message"}
    optional = {
        "ts": _TS, "user": _ID, "bot_id": _ID, "text": _TEXT, "subtype": _SUBTYPE,
        "client_msg_id": st.one_of(_ID, st.text(max_size=4)),
        "thread_ts": st.one_of(_TS, st.just("1400000000.000000")),
        "edited": st.one_of(st.none(), st.builds(lambda t: {"user": "U1", "ts": t}, _TS), st.just("x")),
        "username": _TEXT,
        "user_profile": st.one_of(st.builds(lambda n: {"real_name": n}, _TEXT), st.just([])),
        "bot_profile": st.builds(lambda n: {"name": n}, _TEXT),
        "attachments": st.one_of(st.lists(st.one_of(st.builds(lambda f: {"fallback": f}, _TEXT), st.just(3)),
                                          max_size=2), st.just("x")),
        "files": st.one_of(st.just([{"id": "F1", "name": "a.png", "mimetype": "image/png", "size": 3},
                                    {"id": "F2", "title": "b", "filetype": "pdf"}]), st.just([]), st.none()),
        "file": st.one_of(st.just({"id": "F1", "name": "a.png"}), st.none()),
        "message": st.builds(lambda t, x: {"ts": t, "text": x, "user": "U2"}, _TS, _TEXT),
        "deleted_ts": _TS,
        "previous_message": st.builds(lambda x: {"text": x, "user": "U1"}, _TEXT),
        "reactions": st.just([{"name": "+1", "count": 2, "users": ["U1", "U2"]}]),
        "score": st.floats(allow_nan=False, allow_infinity=False),
        "big": st.just(2**60),
        "\ue000": st.just(1),
    }
    keys = draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=7))
    if "ts" not in keys and draw(st.integers(0, 9)) > 0:
        keys.append("ts")
    for key in keys:
        m[key] = draw(optional[key])
    return m


@st.composite
def _export(draw: st.DrawFn) -> dict[str, Any]:
    days = {}
    for folder in draw(st.lists(st.sampled_from(["general", "D1", "G1", "random", "odd"]), min_size=1, max_size=3,
                                unique=True)):
        for day in draw(st.lists(st.sampled_from(["2014-05-13", "2014-05-14"]), min_size=1, max_size=2,
                                 unique=True)):
            messages = draw(st.lists(_message(), max_size=6))
            if messages and draw(st.booleans()):
                messages.append(draw(st.sampled_from(messages)))  # an exact repeat
            days[f"{folder}/{day}.json"] = messages
    return days


def _write_export(root: Path, days: dict[str, Any]) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "users.json").write_text(json.dumps([
        {"id": "U1", "real_name": "Ann"}, {"id": "U2", "profile": {"display_name": "比尔"}}, {"id": "U9"}]))
    (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general", "members": ["U1", "U2"]},
                                                    {"id": "C2", "name": "random"}]))
    (root / "dms.json").write_text(json.dumps([{"id": "D1", "members": ["U1", "U2", ""]}]))
    (root / "mpims.json").write_text(json.dumps([{"id": "G1", "name": "G1", "members": ["U1", "U2", "U3"]}]))
    (root / "__uploads" / "F1").mkdir(parents=True)
    (root / "__uploads" / "F1" / "a.png").write_bytes(b"\x89PNG")
    for name, messages in days.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(json.dumps(messages, ensure_ascii=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=_export())
def test_generated_exports_equal_the_record_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 days: dict[str, Any]) -> None:
    root = tmp_path / "export"
    _write_export(root, days)
    _assert_same(root, monkeypatch)


def test_plain_export_with_every_column_equals_the_record_path(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Plain day files only (the column-wise path takes them all), every field the path reads, enough
    # rows to be handed over in several frames.
    monkeypatch.setattr(slack, "_FLUSH_ROWS", 7)
    day = [{"type": "message", "user": f"U{i % 3}", "text": f"合同 {i} \"q\" 👍", "ts": f"1400000{i:03d}.{i:06d}",
            "client_msg_id": f"c{i}", **({"thread_ts": "1400000000.000000"} if i % 4 == 1 else {}),
            **({"edited": {"ts": "1400000999.0"}} if i % 5 == 2 else {}),
            **({"subtype": "bot_message", "bot_id": "B1", "user": ""} if i % 6 == 3 else {}),
            **({"subtype": "channel_join"} if i % 7 == 4 else {})} for i in range(30)]
    days = {"general/2014-05-13.json": day, "D1/2014-05-13.json": day[:12], "G1/2014-05-14.json": day[5:20],
            "random/2014-05-13.json": [], "odd/2014-05-13.json": day[::3]}
    root = tmp_path / "export"
    _write_export(root, days)
    taken: list[bool] = []
    add_day = slack._Columns.add_day
    monkeypatch.setattr(slack._Columns, "add_day", lambda self, *args: taken.append(add_day(self, *args)) or taken[-1])
    result = read_export(root, format="slack")
    assert taken == [True, True, True, True, False] and result.messages.height == 30 + 12 + 15 + 10
    monkeypatch.setattr(slack._Columns, "add_day", add_day)
    _assert_same(root, monkeypatch)


@pytest.mark.fixtures
@pytest.mark.parametrize("name", ["slack/slack-export-viewer_testarchive.zip", "slack/slackdump_source_export.zip"])
def test_real_exports_equal_the_record_path(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fixture(name)
    _assert_same(path, monkeypatch)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    _assert_same(folder, monkeypatch)
