"""Sensitive information: checksums (GB 11643, Luhn), spans, masking leaves nothing behind, pseudonyms."""

from __future__ import annotations

import polars as pl
import pytest

from investigator.analysis.pii import (
    detect, find_pii, luhn_valid, mask_text, pseudonymize_text, redact_frame, resident_id_check_char,
    resident_id_valid,
)

# 11010519491231002X is the GB 11643 standard's own example; the others are computed here.
VALID_IDS = ["11010519491231002X", "440308199901011234"[:17] + resident_id_check_char("44030819990101123"),
             "510104198803150018"[:17] + resident_id_check_char("51010419880315001")]
VALID_CARDS = ["6222021234567890128"[:18] + "X", "4111111111111111", "6212 2640 0000 0000 006"]


def _luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError


VALID_CARDS = ["4111111111111111", _luhn_complete("622202123456789012"), _luhn_complete("621226400000000000")]


def test_resident_id_checksum() -> None:
    for rid in VALID_IDS:
        assert resident_id_valid(rid), rid
        wrong = rid[:17] + ("0" if rid[17] != "0" else "1")
        assert not resident_id_valid(wrong)
    assert not resident_id_valid("110105194913310021")  # month 13
    assert [f.kind for f in detect(f"身份证号{VALID_IDS[0]}。")] == ["resident_id"]
    bad = VALID_IDS[1][:17] + ("0" if VALID_IDS[1][17] != "0" else "1")
    assert "resident_id" not in {f.kind for f in detect(f"身份证 {bad}")}


def test_luhn_cards() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    for card in VALID_CARDS:
        assert [f.kind for f in detect(f"卡号 {card} 谢谢")] == ["bank_card"], card
    spaced = " ".join(VALID_CARDS[1][i:i + 4] for i in range(0, len(VALID_CARDS[1]), 4))
    assert [f.kind for f in detect(f"卡号:{spaced}")] == ["bank_card"]
    assert detect("卡号 4111111111111112") == []


@pytest.mark.parametrize("text,kind,value", [
    ("电话13812345678", "phone", "13812345678"),
    ("call +86 138 1234 5678 now", "phone", "+86 138 1234 5678"),
    ("手机:139-0000-1111。", "phone", "139-0000-1111"),
    ("mail zhang.wei@example.com.", "email", "zhang.wei@example.com"),
    ("from 203.0.113.7 again", "ipv4", "203.0.113.7"),
    ("v6 2001:db8::1 ok", "ipv6", "2001:db8::1"),
])
def test_detectors_with_spans(text: str, kind: str, value: str) -> None:
    (found,) = detect(text)
    assert (found.kind, text[found.start:found.end]) == (kind, value)
    assert value not in repr(found)


@pytest.mark.parametrize("text", ["订单12812345678901", "ver 1.2.3.4.5", "ip 999.1.1.1", "12345678", "10:30 开会",
                                  "价格12.5元", "电话1381234567"])
def test_not_detected(text: str) -> None:
    assert detect(text) == []


def test_masking_leaves_no_detected_value_behind() -> None:
    values = [VALID_IDS[0], VALID_CARDS[1], "13812345678", "a.b@example.cn", "10.20.3.15", "2001:db8::1"]
    text = "；".join(f"值{v}" for v in values)
    masked = mask_text(text)
    assert masked is not None and detect(masked) == []
    for v in values:
        assert v not in masked
    assert "[ID]" in masked and "[CARD]" in masked and "[PHONE]" in masked


def test_pseudonyms_stable_within_a_case_and_not_across() -> None:
    key_a, key_b = b"case-A-0123456789abcdef", b"case-B-0123456789abcdef"
    one = pseudonymize_text("电话 138 1234 5678", key=key_a)
    two = pseudonymize_text("手机+8613812345678", key=key_a)
    other = pseudonymize_text("电话 138 1234 5678", key=key_b)
    tag = lambda s: s[s.index("[PHONE:"):]  # noqa: E731
    assert tag(one) == tag(two) != tag(other)
    assert "13812345678" not in one
    with pytest.raises(ValueError):
        pseudonymize_text("x", key=b"short")


def test_frames() -> None:
    frame = pl.DataFrame({"message_id": ["1", "2", "3"], "text": ["电话13812345678", None, "无"]})
    found = find_pii(frame)
    assert found.rows() == [("1", "phone", 2, 13)] and "value" not in found.columns
    assert redact_frame(frame)["text"].to_list() == ["电话[PHONE]", None, "无"]
    pseudo = redact_frame(frame, mode="pseudonymize", key=b"0123456789abcdef")
    assert pseudo["text"][0].startswith("电话[PHONE:")
    with pytest.raises(ValueError):
        redact_frame(frame, mode="pseudonymize")
