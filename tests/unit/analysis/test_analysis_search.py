"""Search: every evasion class found in every mode, near-misses not found, recall and precision printed."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from investigator.analysis import ContentNotGranted, add_normalized_column, find_spans, search
from investigator.errors import InvestigatorError, QueryError

# (text, keyword, expected hit) — each evasion class for a Chinese and a Latin keyword.
EVASIONS = {
    "plain": ("今天的加班费怎么算", "加班费"),
    "spaces": ("今天的 加 班 费 怎么算", "加班费"),
    "punctuation": ("今天的加/班/费怎么算", "加班费"),
    "punctuation2": ("今天的加.班-费,怎么算", "加班费"),
    "ideographic_space": ("今天的加\u3000班\u3000费怎么算", "加班费"),
    "zero_width": ("今天的加\u200b班\u200b费怎么算", "加班费"),
    "zero_width_joiner": ("今天的加\u200d班\ufeff费怎么算", "加班费"),
    "traditional": ("今天的加班費怎麼算", "加班费"),
    "traditional_query": ("今天的加班费怎么算", "加班費"),
    "full_width": ("请连 ＶＰＮ 再试", "vpn"),
    "case": ("connect to the VPN first", "vpn"),
    "latin_spaces": ("the p a s s w o r d is here", "password"),
    "latin_punct": ("the p.a.s.s.w.o.r.d is here", "password"),
    "latin_zero_width": ("the pass\u200bword is here", "password"),
    "latin_full_width_case": ("the ＰＡＳＳＷＯＲＤ is here", "password"),
    "mixed": ("申请Ｖ Ｐ Ｎ账号", "vpn"),
}
PINYIN = {
    "pinyin_compact": ("jiabanfei zenme suan", "加班费"),
    "pinyin_spaced": ("jia ban fei zenme suan", "加班费"),
    "pinyin_tones": ("jiā bān fèi", "加班费"),
}
NEAR_MISSES = [
    ("我们学校要增加班级", "加班", ("word",)),
    ("passwordless login was enabled", "password", ("word",)),
    ("今天天气很好", "加班费", ("exact", "word", "fuzzy")),
    ("the pass is valid", "password", ("exact", "word", "fuzzy")),
    ("vip 客户", "vpn", ("exact", "word", "fuzzy")),
    ("加班", "加班费", ("exact", "word", "fuzzy")),
]
MODES = ("exact", "word", "fuzzy")


def _frame(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"message_id": [f"m{i}" for i in range(len(texts))], "text": texts})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(EVASIONS))
def test_evasion_found(name: str, mode: str) -> None:
    text, keyword = EVASIONS[name]
    hits = search(_frame([text]), keyword, mode=mode)
    assert hits.height == 1, name
    assert hits["matched_terms"].to_list() == [[keyword]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(PINYIN))
def test_pinyin_found_only_when_asked(name: str, mode: str) -> None:
    text, keyword = PINYIN[name]
    assert search(_frame([text]), keyword, mode=mode, pinyin=True).height == 1
    assert search(_frame([text]), keyword, mode=mode).height == 0


@pytest.mark.parametrize("text,keyword,modes", NEAR_MISSES)
def test_near_misses_not_found(text: str, keyword: str, modes: tuple[str, ...]) -> None:
    for mode in modes:
        assert search(_frame([text]), keyword, mode=mode).height == 0, (mode, keyword)


def test_exact_mode_finds_substrings_that_word_mode_refuses() -> None:
    frame = _frame(["我们学校要增加班级", "passwordless login was enabled"])
    assert search(frame, "加班").height == 1
    assert search(frame, "password").height == 1


def test_recall_and_precision_on_labeled_set() -> None:
    positives = [(t, k) for t, k in EVASIONS.values()]
    for mode in MODES:
        negatives = [(t, k) for t, k, modes in NEAR_MISSES if mode in modes]
        tp = sum(search(_frame([t]), k, mode=mode).height for t, k in positives)
        fp = sum(search(_frame([t]), k, mode=mode).height for t, k in negatives)
        recall, precision = tp / len(positives), tp / max(tp + fp, 1)
        print(f"{mode}: recall {recall:.3f} precision {precision:.3f}")
        assert recall == 1.0 and precision == 1.0


def test_stored_norm_column_gives_same_hits() -> None:
    texts = [t for t, _ in EVASIONS.values()] + [t for t, _, _ in NEAR_MISSES]
    frame = _frame(texts)
    stored = add_normalized_column(frame)
    for mode in MODES:
        for q in ("加班费", "vpn OR password", "加班"):
            assert search(frame, q, mode=mode).equals(search(stored, q, mode=mode).drop("text_norm", "text_norm_version"))


def test_boolean_operators_and_matched_terms() -> None:
    frame = _frame(["加班费 和 调休", "只有调休", "加班费 测试", "overtime pay please"])
    assert search(frame, "加班费 调休")["message_id"].to_list() == ["m0"]
    assert search(frame, "加班费 AND NOT 测试")["message_id"].to_list() == ["m0"]
    assert search(frame, "加班费 -测试")["message_id"].to_list() == ["m0"]
    assert search(frame, '(加班费 OR 调休) -测试')["message_id"].to_list() == ["m0", "m1"]
    assert search(frame, '"overtime pay" OR 调休')["matched_terms"].to_list() == [["调休"], ["调休"], ["overtime pay"]]
    assert search(frame, "NOT 加班费")["message_id"].to_list() == ["m1", "m3"]


def test_fuzzy_edits() -> None:
    frame = _frame(["my pasword is", "my passwrod is", "my pxsswxrd is", "connect vpm"])
    assert search(frame, "password", mode="fuzzy")["message_id"].to_list() == ["m0", "m1"]
    assert search(frame, "password", mode="fuzzy", fuzzy_edits=((5, 2),)).height == 3
    assert search(frame, "vpn", mode="fuzzy").height == 0  # short terms stay exact


def test_regex_mode() -> None:
    frame = _frame(["工号 A1234 已登录", "工號 b99", "nothing"])
    assert search(frame, r"工号\s*[a-z]\d+", mode="regex")["message_id"].to_list() == ["m0", "m1"]
    with pytest.raises(QueryError) as err:
        search(frame, "(unclosed", mode="regex")
    assert err.value.position is not None


def _messages() -> pl.DataFrame:
    ts = [datetime(2026, 11, 18, 6, 35, tzinfo=timezone.utc), datetime(2026, 11, 18, 16, 30, tzinfo=timezone.utc),
          datetime(2026, 11, 19, 1, 0, tzinfo=timezone.utc)]
    return pl.DataFrame({
        "message_id": ["a", "b", "c"], "ts": ts, "sender_id": ["u1", "u2", "wx_zhang"],
        "sender_name": ["Zhang San", "李四", "张三"], "conversation_id": ["c1", "c2", "c1"],
        "conversation_name": ["#General", "客服群", "#General"], "msg_type": ["text", "image", "file"],
        "text": ["投诉 配送 太慢", "投诉 see https://x.cn", None], "attachment_name": [None, "a.png", "r.pdf"],
        "attachment_type": [None, "image/png", "application/pdf"],
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_field_filters() -> None:
    frame = _messages()
    assert search(frame, "from:zhangsan")["message_id"].to_list() == ["a"]
    assert search(frame, "from:@u2 投诉")["message_id"].to_list() == ["b"]
    assert search(frame, "from:P001", identities={"P001": ["u1", "wx_zhang"]})["message_id"].to_list() == ["a", "c"]
    assert search(frame, "in:general")["message_id"].to_list() == ["a", "c"]
    assert search(frame, "has:image")["message_id"].to_list() == ["b"]
    assert search(frame, "has:file")["message_id"].to_list() == ["b", "c"]
    assert search(frame, "has:link")["message_id"].to_list() == ["b"]
    # 2026-11-18 06:35Z is 14:35 in Shanghai; 16:30Z is 00:30 on the 19th there.
    assert search(frame, "on:2026-11-18")["message_id"].to_list() == ["a"]
    assert search(frame, "after:2026-11-18")["message_id"].to_list() == ["b", "c"]
    assert search(frame, "before:2026-11-19")["message_id"].to_list() == ["a"]
    assert search(frame, "after:2026-11-18T14:00 before:2026-11-18T15:00")["message_id"].to_list() == ["a"]
    assert search(frame, "on:2026-11-18", tz="UTC")["message_id"].to_list() == ["a", "b"]


def test_metadata_only_frames() -> None:
    frame = _messages().drop("text")
    assert search(frame, "from:u2").height == 1
    with pytest.raises(ContentNotGranted) as err:
        search(frame, "投诉")
    assert isinstance(err.value, InvestigatorError)
    assert "not granted" in str(err.value)


@pytest.mark.parametrize("query,pos", [("(a OR b", 0), ("a OR", 4), ("a )", 2), ('x "abc', 2), ("has:foo", 0),
                                       ("after:yesterday", 0), ("！！", 0), ("", 0)])
def test_query_errors_name_position(query: str, pos: int) -> None:
    with pytest.raises(QueryError) as err:
        search(_frame(["x"]), query)
    assert err.value.position == pos
    assert f"position {pos}" in str(err.value)


def test_unknown_mode() -> None:
    with pytest.raises(QueryError):
        search(_frame(["x"]), "x", mode="semantic")


def test_find_spans_on_original_text() -> None:
    text = "今天的加\u200b班 費怎么算，加班费"
    spans = find_spans(text, "加班费")
    assert [text[a:b].replace("\u200b", "").replace(" ", "") for a, b in spans] == ["加班費", "加班费"]
    assert find_spans("all passwordless, password.", "password", mode="word") == [(18, 26)]
    # an English inflection is the word in word mode (issue #16): "passwords" is highlighted too
    assert find_spans("all passwords, password.", "password", mode="word") == [(4, 13), (15, 23)]
