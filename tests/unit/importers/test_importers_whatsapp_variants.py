"""WhatsApp export variants: Finnish "klo" and dotted times, the colon form, empty iOS bodies, localized
media markers, trailing blank lines."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from investigator.errors import ImportFormatError
from investigator.importers import ImportOptions, detect_format, read_export
from investigator.importers.whatsapp import MEDIA_OMITTED

from importer_testkit import VARIANTS

UTC = timezone.utc
WA = VARIANTS / "whatsapp"


def _ids(value: str) -> dict:  # type: ignore[type-arg]
    return json.loads(value)


def test_finnish_klo_with_dotted_times() -> None:
    path = WA / "finnish_klo.txt"
    assert detect_format(path) == "whatsapp"
    result = read_export(path, options=ImportOptions(tz="Europe/Helsinki"))
    frame = result.messages
    assert result.skipped == []
    rows = list(frame.iter_rows(named=True))
    assert [(r["sender_name"], r["msg_type"], r["text"]) for r in rows] == [
        (None, "system", "Viestit ja puhelut ovat päästä päähän salattuja."),
        ("Matti", "text", "Moi"),
        ("Liisa", "other", "<Media jätetty pois>"),
        ("Matti", "text", "Huomenta\ntoinen rivi"),
        ("Liisa", "text", "Selvä"),  # the blank line closing the file is not part of it
    ]
    # Helsinki is UTC+3 in June: 21.25.15 local is 18:25:15 UTC; 8.05.40 is 05:05:40 UTC.
    assert [r["ts"] for r in rows] == [datetime(2018, 6, 13, 18, 25, 15, tzinfo=UTC)] * 2 + [
        datetime(2018, 6, 13, 18, 26, 2, tzinfo=UTC), datetime(2018, 6, 14, 5, 5, 40, tzinfo=UTC),
        datetime(2018, 6, 14, 5, 6, tzinfo=UTC)]
    assert _ids(rows[2]["platform_ids"]) == {"date_order": "dmy", "media_omitted": True}
    assert rows[3]["source_position"] == "line 4"


def test_dotted_colon_form_and_localized_markers() -> None:
    path = WA / "dotted_colon.txt"
    assert detect_format(path) == "whatsapp"
    frame = read_export(path, options=ImportOptions(tz="Europe/Berlin")).messages
    rows = list(frame.iter_rows(named=True))
    assert [(r["sender_name"], r["msg_type"], r["text"]) for r in rows] == [
        ("Anna", "text", "Hallo"),
        ("Ben", "other", "<Medien ausgeschlossen>"),
        ("Anna", "other", "<Médias omis>"),
        ("Ben", "text", "Guten Morgen\n12.05.2020 10.00: wichtig"),  # no seconds: a continuation, not a header
        ("Anna", "other", "<без медиафайлов>"),
    ]
    assert rows[0]["ts"] == datetime(2018, 6, 13, 19, 25, 15, tzinfo=UTC)  # CEST = UTC+2
    assert rows[3]["ts"] == datetime(2018, 6, 14, 7, 0, 5, tzinfo=UTC)
    assert [_ids(r["platform_ids"]).get("media_omitted") for r in rows] == [None, True, True, None, True]
    assert frame["conversation_type"][0] == "direct"


def test_ios_empty_body_keeps_sender_and_attachment_on_next_line() -> None:
    path = WA / "WhatsApp Chat - Lena.zip"
    assert detect_format(path) == "whatsapp"
    frame = read_export(path, options=ImportOptions(tz="Europe/London")).messages
    rows = list(frame.iter_rows(named=True))
    assert [(r["sender_name"], r["msg_type"]) for r in rows] == [("Lena", "text"), ("Lena", "image"),
                                                                  ("Tom", "text"), ("Tom", "text")]
    assert [r["text"] for r in rows][2:] == ["", "ok"]
    photo = rows[1]
    assert photo["attachment_name"] == "00000012-PHOTO-2025-11-13-12-25-55.jpg"
    assert photo["attachment_sha256"] is not None and photo["attachment_size"] == 22
    assert "file_missing" not in _ids(photo["platform_ids"])
    assert rows[1]["ts"] == datetime(2025, 11, 13, 12, 25, 55, tzinfo=UTC)  # London is UTC in November
    assert set(frame["conversation_name"]) == {"Lena"}


def test_media_marker_table_is_documented() -> None:
    doc = (VARIANTS.parents[2] / "docs" / "formats.md").read_text(encoding="utf-8")
    for marker in MEDIA_OMITTED:
        assert f"`{marker}`" in doc, marker


@pytest.mark.parametrize("marker", MEDIA_OMITTED)
def test_each_media_marker_is_recognised(write, marker: str) -> None:  # type: ignore[no-untyped-def]
    path = write("chat.txt", f"1/2/21, 10:00 - A: hi\n1/2/21, 10:01 - B: {marker}\n")
    frame = read_export(path).messages
    assert frame["msg_type"].to_list() == ["text", "other"]
    assert _ids(frame["platform_ids"][1])["media_omitted"] is True


def test_impossible_finnish_date_names_the_line(write) -> None:  # type: ignore[no-untyped-def]
    path = write("chat.txt", "13.6.2018 klo 21.25.15 - Matti: Moi\n31.2.2018 klo 21.25.15 - Matti: x\n")
    with pytest.raises(ImportFormatError) as info:
        read_export(path)
    assert "chat.txt" in str(info.value) and "line 2" in str(info.value) and "dmy" in str(info.value)


_NAME = st.text(st.characters(categories=("L",)), min_size=1, max_size=8)
_BODY = st.text(st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=20).map(str.strip).filter(bool)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stamp=st.datetimes(min_value=datetime(2010, 1, 13), max_value=datetime(2030, 12, 31)),
       name=_NAME, body=_BODY, blanks=st.integers(0, 3), crlf=st.booleans())
def test_separator_forms_agree_and_trailing_blanks_are_dropped(tmp_path_factory, stamp, name, body, blanks,
                                                               crlf) -> None:  # type: ignore[no-untyped-def]
    """The same moment written in the Android, Finnish "klo" and colon forms reads as the same time and text."""
    stamp = stamp.replace(microsecond=0, day=13)  # day 13 decides the day-first order
    forms = [
        f"{stamp:%d/%m/%Y}, {stamp:%H:%M:%S} - {name}: {body}",
        f"{stamp.day}.{stamp.month}.{stamp.year} klo {stamp.hour}.{stamp:%M.%S} - {name}: {body}",
        f"{stamp:%d.%m.%y %H.%M.%S}: {name}: {body}",
        f"[{stamp:%d.%m.%Y} klo {stamp:%H.%M.%S}] {name}: {body}",
    ]
    end = "\r\n" if crlf else "\n"
    folder = tmp_path_factory.mktemp("forms")
    seen = set()
    for n, line in enumerate(forms):
        path = folder / f"chat{n}.txt"
        path.write_bytes((line + end + end * blanks).encode("utf-8"))
        assert detect_format(path) == "whatsapp"
        frame = read_export(path, options=ImportOptions(tz="UTC")).messages
        assert frame["text"].to_list() == [body] and frame["sender_name"].to_list() == [name]
        seen.add(frame["ts"][0])
    assert seen == {stamp.replace(tzinfo=UTC)}
