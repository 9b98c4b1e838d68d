"""Issue #16, item 6: the bank-card (Luhn) detector on a labeled set of chat texts and report outputs.

Every number below passes the Luhn check, so only the context can tell a card from a message id, a
WeCom msgid or a plotly float. The set is scored with the detector of before this issue (pattern and
Luhn only) for the record, and with :func:`detect`, which must reach recall 1.00 / precision 1.00.
"""

from __future__ import annotations

import json
import re

import polars as pl

from investigator.analysis.pii import _PATTERNS, _valid, detect, detect_figure, find_pii, is_id_column, luhn_valid


def luhn(prefix: str) -> str:
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


C16, C19, C13 = luhn("411111111111111"), luhn("622202123456789012"), luhn("400000000000")
MSGID = luhn("695812345678912345")  # a 19-digit numeric message id (WeChat msgsvrid style)
ID16 = luhn("517000000000123")
FLOAT = luhn("453201511283036")

# (text, number of cards in it)
CHAT = [
    (f"卡号 {C16} 谢谢", 1), (f"我的银行卡是{C19}", 1), (f"card: {C16}", 1), (f"{C19}", 1),
    (f"转到 {C19[:4]} {C19[4:8]} {C19[8:12]} {C19[12:16]} {C19[16:]}", 1), (f"账号{C13}，户名张三", 1),
    (f"尾号 {C16} 的卡", 1), (f"card{C16}", 1), (f"卡号：{C16}-请核对", 1), (f"两张卡 {C16} 和 {C19}", 2),
    (f"Please pay to {C19} today", 1), (f"信用卡({C16})", 1), (f"“{C16}”这张卡", 1),
    (f"ID卡号 {C16}", 1), (f"<td>卡号 {C16}</td>", 1),
]
REPORT = [
    (f"message_id: {MSGID}", 0), (f"msgid={MSGID}", 0), (f"消息ID：{MSGID}", 0), (f"订单号 {ID16}", 0),
    (f"{MSGID}_1603875609_external", 0),  # WeCom msgid
    (f"wx{MSGID}", 0), (f"msg_{ID16}", 0), (f"{ID16}-a3f9", 0),
    (f"0.{FLOAT}", 0), (f"-1.{FLOAT}e+18", 0), (f"{FLOAT}.25", 0),
    (json.dumps({"data": [{"y": [0.4532015112830366, float(f"0.{FLOAT}")], "customdata": [[MSGID]]}]}), 0),
    (f'Plotly.newPlot("f", [{{"x": [1.{FLOAT}], "ids": ["{MSGID}"]}}])', 0),
    (f'"customdata":[["{ID16}"]]', 0),
    ("<table><thead><tr><th>message_id</th><th>text</th></tr></thead>"
     f"<tbody><tr><td>{MSGID}</td><td>卡号 {C16}</td></tr><tr><td>{ID16}</td><td>无</td></tr></tbody></table>", 1),
    (f"message_id\tsender\ttext\n{MSGID}\tzhang\t卡号 {C19}\n{ID16}\tli\tok\n", 1),
    (str(pl.DataFrame({"msgid": [MSGID, ID16], "text": ["hi", f"card {C16}"]})), 1),
    (f"| event_id | note |\n|---|---|\n| {ID16} | 卡号 {C16} |\n", 1),
    (f"seq {MSGID}", 0), (f"ts={ID16}", 0), (f"trace_id: {MSGID}", 0),
]
LABELED = CHAT + REPORT


def _naive(text: str) -> int:
    """The detector of before issue #16: the pattern and the Luhn check, no context."""
    return sum(1 for m in _PATTERNS["bank_card"].finditer(text) if _valid("bank_card", m.group()))


def _score(count) -> tuple[float, float, int, int, int]:
    tp = fp = fn = 0
    for text, cards in LABELED:
        got = count(text)
        tp += min(got, cards)
        fp += max(got - cards, 0)
        fn += max(cards - got, 0)
    return tp / max(tp + fn, 1), tp / max(tp + fp, 1), tp, fp, fn


def test_every_labeled_number_passes_luhn() -> None:
    for number in (C16, C19, C13, MSGID, ID16, FLOAT):
        assert luhn_valid(number)
    assert len(LABELED) >= 35 and sum(c for _, c in LABELED) >= 20


def test_card_detector_precision_on_labeled_set() -> None:
    before = _score(_naive)
    after = _score(lambda t: sum(1 for f in detect(t) if f.kind == "bank_card"))
    print(f"\nbank_card, {len(LABELED)} texts: before recall {before[0]:.2f} precision {before[1]:.2f} "
          f"(false {before[3]}); after recall {after[0]:.2f} precision {after[1]:.2f} (false {after[3]})")
    assert before[1] < 0.7  # the labeled set does exercise the false positives
    assert after[0] == 1.0 and after[1] == 1.0, after


def test_column_aware() -> None:
    assert is_id_column("message_id") and is_id_column("msgid") and is_id_column("event_id")
    assert is_id_column("customdata") and is_id_column("序号")
    assert not is_id_column("sender_id") and not is_id_column("text") and not is_id_column("conversation_id")
    frame = pl.DataFrame({"message_id": [MSGID, "m2"], "text": [f"卡号 {C16}", "13812345678"]})
    assert find_pii(frame)["kind"].to_list() == ["bank_card", "phone"]
    assert find_pii(frame.with_columns(pl.col("message_id").alias("text")), column="message_id").height == 0
    assert [f.kind for f in detect(MSGID, column="message_id")] == []
    assert [f.kind for f in detect(MSGID, column="text")] == ["bank_card"]


def test_plotly_figures() -> None:
    figure = {"data": [{"x": ["2026-11-02"], "y": [3], "customdata": [[MSGID], [ID16]], "ids": [MSGID],
                        "text": [f"卡号 {C16}"], "hovertext": ["13812345678"]}],
              "layout": {"title": {"text": "每日消息"}, "template": {"data": {"scatter": [{"x": [FLOAT]}]}}}}
    assert sorted(f.kind for f in detect_figure(figure)) == ["bank_card", "phone"]


def test_decimal_context_applies_to_phones_too() -> None:
    assert detect("0.13812345678") == [] and [f.kind for f in detect("电话 13812345678")] == ["phone"]
    assert not re.search(r"\d{13}", "".join(f.value for f in detect(f"x=0.{FLOAT}")))
