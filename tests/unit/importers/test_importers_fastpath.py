"""The column-wise fast paths give exactly what the record-wise reference paths give."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator.importers import ImportOptions, read_export, slack
from investigator.importers._records import _SPLIT, BadRecord, raw_sha256, raw_sha256_many

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.just(_SPLIT),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
_flat = st.dictionaries(st.text(max_size=6), st.none() | st.booleans() | st.text(max_size=8) | st.just(_SPLIT),
                        max_size=6)


@settings(max_examples=300, deadline=None)
@given(objs=st.lists(st.dictionaries(st.text(max_size=6), _json, max_size=4) | _flat, max_size=6),
       depth=st.integers(0, 3))
def test_raw_sha256_many_equals_one_by_one(objs: list, depth: int) -> None:
    assert raw_sha256_many(objs, depth=depth) == [raw_sha256(o, depth=depth) for o in objs]


def test_raw_sha256_many_separator_inside_data_and_deep_objects() -> None:
    objs = [{"a": ["x", _SPLIT, "y"]}, {"b": 1}, {"c": [_SPLIT, _SPLIT]}]
    assert raw_sha256_many(objs) == [raw_sha256(o) for o in objs]
    deep: object = "x"
    for _ in range(70):
        deep = [deep]
    with pytest.raises(BadRecord):
        raw_sha256_many([{"a": 1}, {"d": deep}], depth=2)
    assert raw_sha256_many([{"a": "b"}, {}], depth=63) == [raw_sha256({"a": "b"}, depth=63), raw_sha256({}, depth=63)]
    with pytest.raises(BadRecord):
        raw_sha256_many([{}, {"a": "b"}], depth=64)


def _slack_export(root: Path) -> Path:
    (root / "general").mkdir(parents=True)
    (root / "D1").mkdir()
    (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general", "members": ["U1", "U2"]}]))
    (root / "dms.json").write_text(json.dumps([{"id": "D1", "members": ["U1", "U2"]}]))
    (root / "users.json").write_text(json.dumps([{"id": "U1", "real_name": "Ann"}]))
    plain = [
        {"type": "message", "user": "U1", "text": "hi \"there\"\n", "ts": "1452845865.000008", "client_msg_id": "c1"},
        {"type": "message", "user": "U2", "user_profile": {"real_name": "Bo"}, "text": "x", "ts": "1452845866.1",
         "thread_ts": "1452845865.000008", "edited": {"ts": "1452845867.0"}, "reply_count": 2},
        {"type": "message", "subtype": "channel_join", "user": "U2", "ts": "1452845868"},
        {"type": "message", "subtype": "bot_message", "bot_id": "B1", "username": "bot", "text": "",
         "attachments": [{"fallback": "fb"}], "ts": "1452845869.5", "score": 0.5},
        {"type": "message", "subtype": "tombstone", "ts": "1452845870.000001", "\ue000": 1, "\U0001f600": 2},
        {"type": "message", "user": "", "bot_id": "B2", "text": "合同 👍", "ts": "1452845871.25", "subtype": [1]},
    ]
    (root / "general" / "2016-01-15.json").write_text(json.dumps(plain, ensure_ascii=False))
    mixed = [*plain[:2], {"type": "message", "user": "U1", "ts": "1452845872.0", "text": "f",
                          "files": [{"id": "F1", "name": "a.png", "mimetype": "image/png"}, {"id": "F2"}]}]
    (root / "general" / "2016-01-16.json").write_text(json.dumps(mixed))
    (root / "D1" / "2016-01-15.json").write_text(json.dumps([*plain, {"user": "U1", "ts": "1452845873.0"}]))
    (root / "D1" / "2016-01-16.json").write_text(json.dumps(plain[2:4]))  # repeats ids: duplicate rule applies
    return root


@pytest.mark.parametrize("lenient", [False, True])
def test_slack_column_path_equals_record_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lenient: bool) -> None:
    root = _slack_export(tmp_path / "export")
    options = ImportOptions(lenient=lenient)
    taken: list[bool] = []
    add_day = slack._Columns.add_day
    monkeypatch.setattr(slack._Columns, "add_day", lambda self, *args: taken.append(add_day(self, *args)) or taken[-1])
    fast = read_export(root, format="slack", options=options)
    # Read once with the ids checked on the result; they repeat, so read again checking file by file:
    # then files, and repeated ids, take the record path.
    assert taken == [True, True, True, False, True, False, True, False]
    monkeypatch.setattr(slack._Columns, "add_day", lambda self, *args: False)
    slow = read_export(root, format="slack", options=options)
    assert fast.messages.equals(slow.messages, null_equal=True)
    assert fast.skipped == slow.skipped and fast.source_files == slow.source_files
    assert fast.messages.height == 15 and len(fast.skipped) == 4  # two ids repeated in two files
    row = fast.messages.row(5, named=True)
    # Documented fix: a non-string subtype is ignored (it used to escape as TypeError).
    assert row["msg_type"] == "text" and row["sender_id"] == "B2"
    assert orjson.loads(row["platform_ids"]) == {"channel": "D1", "ts": "1452845871.25", "user": "", "bot_id": "B2"}


def test_whatsapp_ids_equal_derived_id_for_any_sender(write) -> None:
    import hashlib

    from investigator.importers._records import derived_id
    from investigator.importers.whatsapp import conversation_name

    senders = ['Al "x" (a quote: a system line)', 'back \\ slash', "张伟 👍", "tab\there", "e\u0301", "<b>"]
    lines = [f"12/9/20, 23:5{i} - {name}: hi {i}" for i, name in enumerate(senders)]
    lines += ["12/9/20, 23:59 - Messages are end-to-end encrypted", "12/9/20, 23:59 - Messages are end-to-end encrypted"]
    path = write("WhatsApp Chat with Odd.txt", "\n".join(lines) + "\n")
    frame = read_export(path, format="whatsapp", options=ImportOptions(tz="UTC")).messages
    conv_id = "whatsapp:" + derived_id("whatsapp", conversation_name(path.name))[:24]
    ordinals: dict[tuple, int] = {}
    for row in frame.iter_rows(named=True):
        us = int(row["ts"].timestamp()) * 1_000_000
        text_hash = hashlib.sha256(row["text"].encode()).hexdigest()
        key = (us, row["sender_name"], text_hash)
        ordinals[key] = ordinals.get(key, 0) + 1
        assert row["message_id"] == derived_id(conv_id, us, row["sender_name"], text_hash, ordinals[key])
    assert frame["sender_name"].to_list()[:6] == [None, *senders[1:]] and frame["msg_type"].to_list()[-1] == "system"


def test_whatsapp_line_cap_and_line_order_of_errors(write, monkeypatch: pytest.MonkeyPatch) -> None:
    from investigator.errors import ImportFormatError
    from investigator.importers import _container

    monkeypatch.setattr(_container, "MAX_LINE_BYTES", 40)
    good = "12/9/20, 23:55 - A: hello"
    long = "12/9/20, 23:56 - B: " + "x" * 40
    for lenient in (False, True):
        with pytest.raises(ImportFormatError, match="line 2: expected lines of at most 40 bytes"):
            read_export(write("a.txt", f"{good}\n{long}\n"), format="whatsapp", options=ImportOptions(lenient=lenient))
    with pytest.raises(ImportFormatError, match="line 1: expected a line starting with a WhatsApp date"):
        read_export(write("b.txt", f"junk\n{good}\n{long}\n"), format="whatsapp")
    with pytest.raises(ImportFormatError, match="line 2: expected a line starting with a WhatsApp date"):
        read_export(write("d.txt", f"\r\n\u200e\n{good}\n"), format="whatsapp")  # a mark alone is not blank
    result = read_export(write("c.txt", f"\ufeff{good}\r\ncontinued\r\n\r\n{good}"), format="whatsapp")
    assert result.messages["text"].to_list() == ["hello\ncontinued\n", "hello"]
    import hashlib

    assert result.messages["raw_sha256"][0] == hashlib.sha256(f"\ufeff{good}\r\ncontinued\r\n\r".encode()).hexdigest()


def test_slack_platform_ids_with_escapes_equal_record_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "export"
    (root / "q").mkdir(parents=True)
    (root / "channels.json").write_text(json.dumps([{"id": 'C"\\1', "name": "q", "members": ["U1"]}]))
    (root / "q" / "2020-01-01.json").write_text(json.dumps([
        {"user": 'U"1', "client_msg_id": "a\\b\n\x01", "text": "t", "ts": "1577836800.5", "subtype": "x\ty"},
        {"user": "U2", "text": "plain", "ts": "1577836801", "edited": {"ts": "e\u2028"}},
    ]))
    fast = read_export(root, format="slack")
    monkeypatch.setattr(slack._Columns, "add_day", lambda self, *args: False)
    slow = read_export(root, format="slack")
    assert fast.messages.equals(slow.messages, null_equal=True)
    assert orjson.loads(fast.messages["platform_ids"][0])["client_msg_id"] == "a\\b\n\x01"


def test_whatsapp_record_fallback_equals_column_path(monkeypatch: pytest.MonkeyPatch, write) -> None:
    from investigator.importers._records import Collector

    path = write("WhatsApp Chat with Two.txt", "12/9/20, 23:55 - A: hi\nmore\n12/9/20, 23:55 - A: hi\n"
                                               "12/9/20, 23:56 - B: x (file attached)\n"
                                               "12/9/20, 23:57 - B: <Media omitted>\n12/9/20, 23:58 - B joined\n")
    fast = read_export(path, format="whatsapp")
    monkeypatch.setattr(Collector, "claim", lambda self, ids, raws: False)
    slow = read_export(path, format="whatsapp")
    assert fast.messages.equals(slow.messages, null_equal=True) and fast.messages.height == 5


def test_whatsapp_omitted_media_in_any_case(write) -> None:
    lines = ["[12/9/20, 23:55:01] A: \u200eımage omitted", "[12/9/20, 23:55:02] A: STICKER OMITTED",
             "[12/9/20, 23:55:03] A: ſticker omitted", "[12/9/20, 23:55:04] A: image omitted later",
             "[12/9/20, 23:55:05] A: This message was deleted"]
    frame = read_export(write("chat.txt", "\n".join(lines)), format="whatsapp").messages
    # (the kind is looked up by the lower-cased word, so the dotless and long-s spellings give "file")
    assert frame["msg_type"].to_list() == ["file", "image", "file", "text", "recall"]
    assert frame["platform_ids"][0] == '{"date_order":"dmy","media_omitted":true}'


_value = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "U1", "U2", "B1", "x\"y", "a\nb"]) \
    | st.floats(allow_nan=False, allow_infinity=False) | st.lists(st.sampled_from(["a", 1]), max_size=2)
_message = st.fixed_dictionaries({}, optional={
    "ts": st.sampled_from(["1452845865.000008", "1452845866", "1452845867.5", "14528.1234567", "١٢", "1\n", 5]),
    "user": _value, "bot_id": _value, "text": _value, "thread_ts": st.sampled_from(["1452845865.000008", "1", 3]),
    "subtype": st.sampled_from(["channel_join", "tombstone", "bot_message", "x_leave", "message_changed", 7, None]),
    "client_msg_id": _value, "edited": st.sampled_from([{"ts": "1"}, {"ts": 2}, "e", None]),
    "attachments": st.sampled_from([[{"fallback": "f"}], [1], "no"]), "username": _value,
    "user_profile": st.sampled_from([{"real_name": "R"}, {"real_name": 1}, []]), "files": st.sampled_from([[], None]),
    "\ue000": _value, "k": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**60), 2**60),
})


@settings(max_examples=150, deadline=None)
@given(days=st.lists(st.lists(_message | st.sampled_from([None, "m", [1]]), max_size=5), min_size=1, max_size=3),
       lenient=st.booleans())
def test_slack_column_path_equals_record_path_fuzzed(days: list, lenient: bool) -> None:
    import tempfile

    from investigator.errors import ImportFormatError

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general", "members": ["U1", "U2"]}]))
        (root / "dms.json").write_text(json.dumps([{"id": "D1", "members": ["U1", "U2"]}]))
        (root / "users.json").write_text(json.dumps([{"id": "U1", "real_name": "Ann"}]))
        for folder in ("general", "D1"):
            (root / folder).mkdir()
            for n, day in enumerate(days):
                (root / folder / f"2016-01-{n + 10}.json").write_text(json.dumps(day))
        outcomes = []
        for fast in (True, False):
            original = slack._Columns.add_day
            if not fast:
                slack._Columns.add_day = lambda self, *args: False  # type: ignore[method-assign]
            try:
                result = read_export(root, format="slack", options=ImportOptions(lenient=lenient))
                outcomes.append((result.messages, result.skipped))
            except ImportFormatError as exc:
                outcomes.append((None, str(exc)))
            finally:
                slack._Columns.add_day = original  # type: ignore[method-assign]
        (fast_frame, fast_rest), (slow_frame, slow_rest) = outcomes
        assert fast_rest == slow_rest
        assert (fast_frame is None) == (slow_frame is None)
        if fast_frame is not None:
            assert fast_frame.equals(slow_frame, null_equal=True)
