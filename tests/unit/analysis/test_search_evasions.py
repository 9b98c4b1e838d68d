"""Issue #16: search that cannot be dodged — a labeled set over every evasion class, per mode.

Each case is (class, text, keyword, modes where it must be found, modes where it must NOT be found).
Positives list the modes that find them; near-misses list the modes that must refuse them. The
recall and precision of each mode (and of each class) are printed and must be 1.00 / 1.00.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import polars as pl
import pytest

from investigator.analysis import add_normalized_column, find_spans, normalize_text, search
from investigator.analysis.normalize import display_normalize

ALL = ("exact", "word", "fuzzy")
EX = ("exact",)
EW = ("exact", "word")
W = ("word",)
P = "pinyin"  # a class whose cases run with pinyin=True

# (class, text, keyword, found in modes, refused in modes)
CASES: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...]]] = [
    # --- earlier classes (must keep working) ----------------------------------------------------
    ("spaces", "今天的 加 班 费 怎么算", "加班费", ALL, ()),
    ("spaces", "the p a s s w o r d is here", "password", EX + ("fuzzy",), ()),
    ("punctuation", "今天的加/班/费怎么算", "加班费", ALL, ()),
    ("punctuation", "the p.a.s.s.w.o.r.d is here", "password", EX + ("fuzzy",), ()),
    ("punctuation", "回.扣那部分", "回扣", ALL, ()),
    ("ideographic_space", "今天的加\u3000班\u3000费怎么算", "加班费", ALL, ()),
    ("zero_width", "今天的加\u200b班\u200b费怎么算", "加班费", ALL, ()),
    ("zero_width", "the pass\u200bword is here", "password", ALL, ()),
    ("zero_width", "加\u200d班\ufeff费", "加班费", ALL, ()),
    ("full_width", "请连 ＶＰＮ 再试", "vpn", ALL, ()),
    ("full_width", "the ＰＡＳＳＷＯＲＤ is here", "password", ALL, ()),
    ("case", "connect to the VPN first", "vpn", ALL, ()),
    ("case", "PassWord expires", "password", ALL, ()),
    ("traditional", "今天的加班費怎麼算", "加班费", ALL, ()),
    ("traditional", "今天的加班费怎么算", "加班費", ALL, ()),
    ("traditional", "別刪除日誌", "删除日志", EX + ("fuzzy",), ()),
    # --- 1. confusables (UTS #39 skeleton on non-ASCII letters) -----------------------------------
    ("confusables", "my p\u0430ssword is 1234", "password", ALL, ()),  # Cyrillic а
    ("confusables", "P\u0391SSWORD reset", "password", ALL, ()),  # Greek Α
    ("confusables", "the \u0440\u0430ss\u03c9ord", "password", ("fuzzy",), EW),  # ω is not a w: one edit
    ("confusables", "new p\u0430\u0455\u0455w\u043ert", "passwort", ALL, ()),  # а ѕ ѕ о
    ("confusables", "\u0420\u0410\u0405\u0405WORD", "password", ALL, ()),  # Р А Ѕ Ѕ capitals
    ("confusables", "send the kickb\u0430ck now", "kickback", ALL, ()),
    ("confusables", "connect \u03bd\u0440n first", "vpn", ALL, ()),  # Greek ν, Cyrillic р
    ("confusables", "\u0455\u0435\u0441r\u0435t file", "secret", ALL, ()),
    ("confusables", "\u0392\u0399\u0422\u0421\u041e\u0399\u039d wallet", "bitcoin", ALL, ()),  # Β Ι Т С О Ι Ν
    ("confusables", "the \u0251dmin account", "admin", ALL, ()),  # Latin alpha ɑ
    ("confusables", "Ηello team", "hello", ALL, ()),  # Greek capital Eta
    ("confusables", "pass\u0131on", "passion", ALL, ()),  # dotless ı
    ("confusables", "order ٣٤٥ shipped", "345", ALL, ()),  # Arabic-Indic digits
    ("confusables", "it is the com port", "corn", (), ALL),
    ("confusables", "corn field", "com", (), ALL),
    ("confusables", "I0 units left", "10", (), ALL),
    ("confusables", "10 units left", "I0", (), ALL),
    ("confusables", "一个囗字", "口", (), ALL),
    ("confusables", "一个口字", "囗", (), ALL),
    ("confusables", "rn is not m", "m", EX, ()),  # plain m is there
    ("confusables", "modern times", "modem", (), EW),
    # --- 2. separators and invisibles --------------------------------------------------------------
    ("emoji", "加🔥班🔥费", "加班费", ALL, ()),
    ("emoji", "pass👍word", "password", ALL, ()),
    ("emoji", "加\U0001fae8班费", "加班费", ALL, ()),  # an emoji newer than this Python's Unicode tables
    ("arrows", "加→班→费", "加班费", ALL, ()),
    ("arrows", "pass⇒word", "password", ALL, ()),
    ("symbols", "回★扣", "回扣", ALL, ()),
    ("symbols", "pass$word", "password", ALL, ()),
    ("symbols", "贿♥赂", "贿赂", ALL, ()),
    ("combining", "pa\u0336s\u0336s\u0336word", "password", ALL, ()),  # strike-through overlay
    ("combining", "p\u20dda\u20dds\u20dds\u20ddword", "password", ALL, ()),  # enclosing circles
    ("combining", "cafe\u0301 meeting", "cafe", ALL, ()),
    ("combining", "z\u0351a\u0352l\u0353go pass\u0354word", "password", ALL, ()),
    ("variation_selectors", "加\ufe0f班\ufe0e费", "加班费", ALL, ()),
    ("variation_selectors", "pass\U000e0100word", "password", ALL, ()),
    ("format", "pass\u00adword", "password", ALL, ()),  # soft hyphen
    ("format", "pass\u2060word", "password", ALL, ()),  # word joiner
    ("format", "pass\u202eword", "password", ALL, ()),  # right-to-left override
    ("format", "加\u200e班\u2066费\u2069", "加班费", ALL, ()),  # LRM, isolates
    ("format", "v\u180epn", "vpn", ALL, ()),
    ("line_breaks", "加\n班\r\n费", "加班费", ALL, ()),
    ("line_breaks", "pass\u2028word", "password", ALL, ()),
    ("line_breaks", "pass\u0085word", "password", ALL, ()),
    ("nfkc", "Ⓟⓐⓢⓢⓦⓞⓡⓓ leaked", "password", ALL, ()),  # circled letters
    ("nfkc", "🅿🅰🆂🆂 word", "pass", EX + ("fuzzy",), ()),  # negative squared letters (no NFKC form)
    ("nfkc", "⼝头约定", "口头", ALL, ()),  # Kangxi radical MOUTH
    ("nfkc", "𝐩𝐚𝐬𝐬𝐰𝐨𝐫𝐝", "password", ALL, ()),  # mathematical bold
    ("nfkc", "⑴号 vpn", "1号", EX + ("fuzzy",), ()),
    ("nfkc", "ﬁle deleted", "file", ALL, ()),
    ("nfkc", "❶❷❸", "123", ALL, ()),
    ("separators_near_miss", "pass the word", "password", (), ALL),  # "the" between: not the word
    ("separators_near_miss", "今天天气很好", "加班费", (), ALL),
    ("separators_near_miss", "the pass is valid", "password", (), ALL),
    ("separators_near_miss", "vip 客户", "vpn", (), ALL),
    ("separators_near_miss", "加班", "加班费", (), ALL),
    # --- 4. word mode: inflections, compounds, segmentation ----------------------------------------
    ("inflections", "they took kickbacks twice", "kickback", ALL, ()),
    ("inflections", "all passwords were reset", "password", ALL, ()),
    ("inflections", "he bribed the clerk", "bribe", ALL, ()),
    ("inflections", "she was bribing them", "bribe", ("word", "fuzzy"), EX),
    ("inflections", "logs deleted yesterday", "delete", ALL, ()),
    ("inflections", "we are deleting logs", "delete", ("word", "fuzzy"), EX),
    ("inflections", "she transferred funds", "transfer", ALL, ()),
    ("inflections", "who paid for it", "pay", W, ("exact", "fuzzy")),
    ("inflections", "overtime pays late", "overtime pay", ALL, ()),
    ("inflections", "denied access", "deny", W, ("exact", "fuzzy")),
    ("inflections", "he denies it", "deny", W, ("exact", "fuzzy")),
    ("inflections", "two VPNs", "vpn", ALL, ()),  # a word the lexicon does not know: regular rules
    ("inflections", "kickback received", "kickbacks", ("word", "fuzzy"), EX),  # the plural finds the singular
    ("compounds", "passwordless login", "password", EX + ("fuzzy",), W),
    ("compounds", "the kickbacker", "kickback", EX + ("fuzzy",), W),
    ("compounds", "paycheck arrived", "pay", EX, W),
    ("compounds", "deletion request", "delete", ("fuzzy",), EW),
    ("compounds", "unbribeable", "bribe", EX + ("fuzzy",), W),
    ("compounds", "passworded", "password", EX + ("fuzzy",), W),  # the lexicon knows password as a noun only
    ("segmentation", "我们去参加班会", "加班", EX + ("fuzzy",), W),
    ("segmentation", "我们学校要增加班级", "加班", EX + ("fuzzy",), W),
    ("segmentation", "今天又要加班了", "加班", ALL, ()),
    ("segmentation", "这笔回扣款", "回扣", ALL, ()),
    ("segmentation", "大家都在说", "在说", EX + ("fuzzy",), ()),
    # --- 3. pinyin mode (pinyin=True) ----------------------------------------------------------------
    (P, "加班非的事", "加班费", ALL, ()),  # homophone characters
    (P, "家班飞怎么算", "加班费", EX + ("fuzzy",), ()),  # all three homophones
    (P, "加ban费", "加班费", ALL, ()),  # characters and pinyin mixed
    (P, "jia班fei", "加班费", ALL, ()),
    (P, "jiabanfei 的事", "加班费", ALL, ()),
    (P, "jia ban fei 又拖了", "加班费", ALL, ()),
    (P, "JiaBanFei", "加班费", ALL, ()),
    (P, "jiā bān fèi", "加班费", ALL, ()),  # tone marks
    (P, "jia1 ban1 fei4", "加班费", ALL, ()),  # tone digits
    (P, "JIA-BAN-FEI", "加班费", ALL, ()),
    (P, "那笔hui扣", "回扣", ALL, ()),
    (P, "huikou 给了", "回扣", ALL, ()),
    (P, "这是绿色的", "lv色", ALL, ()),  # ü typed v
    (P, "lu色通道", "绿色", EX + ("fuzzy",), ()),  # ü typed u
    (P, "他在银行", "yinhang", ALL, ()),  # a pinyin keyword finds the characters
    (P, "他在银航", "银行", EX + ("fuzzy",), ()),  # 行 read hang in context
    (P, "加盘费", "加班费", (), ALL),  # pan is another syllable
    (P, "jia pan fei", "加班费", (), EW),
    (P, "西安站", "先", (), ALL),  # xi + an is two syllables, not xian
    (P, "先见", "西安", (), ALL),
    (P, "加班", "加班费", (), ALL),
    (P, "家伴", "加班费", (), ALL),
    (P, "jiabanfe", "加班费", (), EW),
    (P, "huiko", "回扣", (), EW),
    (P, "vpn 账号", "vpn", ALL, ()),  # not pinyin: unchanged
]


def _frame(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"message_id": [f"m{i}" for i in range(len(texts))], "text": texts})


@functools.lru_cache(maxsize=1)
def _stored() -> pl.DataFrame:
    # normalized once, as the loader does: each case then searches its own row with text_norm stored
    return add_normalized_column(_frame([text for _, text, *_ in CASES]))


def _found(text: str, keyword: str, mode: str, pinyin: bool) -> bool:
    rows = _stored().filter(pl.col("text") == text)
    if rows.height == 0:
        rows = _frame([text])
    return search(rows.head(1), keyword, mode=mode, pinyin=pinyin).height == 1


def test_labeled_set_size_and_coverage() -> None:
    assert len(CASES) >= 100
    positives = sum(len(found) for _, _, _, found, _ in CASES)
    negatives = sum(len(refused) for _, _, _, _, refused in CASES)
    assert positives >= 200 and negatives >= 50
    classes = {c for c, *_ in CASES}
    assert {"confusables", "emoji", "arrows", "combining", "variation_selectors", "format", "line_breaks", "nfkc",
            "inflections", "compounds", "segmentation", P, "spaces", "punctuation", "ideographic_space",
            "zero_width", "full_width", "case", "traditional"} <= classes


@pytest.mark.parametrize("mode", ALL)
def test_recall_and_precision_per_mode(mode: str) -> None:
    tp = fn = fp = tn = 0
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    misses: list[tuple[str, str, str]] = []
    for cls, text, keyword, found, refused in CASES:
        if mode not in found and mode not in refused:
            continue
        got = _found(text, keyword, mode, cls == P)
        if mode in found:
            tp, fn = tp + got, fn + (not got)
            per_class[cls][0 if got else 1] += 1
        else:
            fp, tn = fp + got, tn + (not got)
            per_class[cls][2] += got
        if got != (mode in found):
            misses.append((cls, text, keyword))
    recall, precision = tp / max(tp + fn, 1), tp / max(tp + fp, 1)
    print(f"\n{mode}: {tp + fn} positives, {fp + tn} near-misses: recall {recall:.2f} precision {precision:.2f}")
    for cls, (hit, miss, false) in sorted(per_class.items()):
        print(f"  {cls:22} found {hit}/{hit + miss}  false hits {false}")
    assert not misses, misses
    assert recall == 1.0 and precision == 1.0


def test_pinyin_mode_keeps_every_other_class() -> None:
    # pinyin=True adds matches by sound; it never loses what the other classes find
    for cls, text, keyword, found, _ in CASES:
        if cls != P and "exact" in found:
            assert _found(text, keyword, "exact", True), (cls, text)


def test_pinyin_hits_show_matched_variants() -> None:
    frame = _frame(["加班非的事", "jia1 ban1 fei4", "加ban费和加班费", "无关"])
    hits = search(frame, "加班费", pinyin=True)
    assert hits["matched_terms"].to_list() == [["加班费"]] * 3
    assert hits["matched_variants"].to_list() == [["加班非"], ["jia1ban1fei4"], ["加ban费", "加班费"]]  # compact forms
    assert "matched_variants" not in search(frame, "加班费").columns


@pytest.mark.parametrize("text,keyword,mode,pinyin,expected", [
    ("my p\u0430ss\u200bword!", "password", "exact", False, ["p\u0430ss\u200bword"]),
    ("加\u0336班🔥费用", "加班费", "exact", False, ["加\u0336班🔥费"]),
    ("cafe\u0301 ok", "cafe", "exact", False, ["cafe\u0301"]),  # the accent glued to the end is marked too
    ("pass\ufe0f x", "pass", "exact", False, ["pass\ufe0f"]),
    ("two kickbacks, one kickback", "kickback", "word", False, ["kickbacks", "kickback"]),
    ("passwordless, password", "password", "word", False, ["password"]),
    ("他说加ban费和jia ban fei", "加班费", "exact", True, ["加ban费", "jia ban fei"]),
    ("家班飞", "加班费", "exact", True, ["家班飞"]),
    ("Ⓟⓐⓢⓢ", "pass", "exact", False, ["Ⓟⓐⓢⓢ"]),
])
def test_highlight_marks_original_characters(text: str, keyword: str, mode: str, pinyin: bool,
                                             expected: list[str]) -> None:
    spans = find_spans(text, keyword, mode, pinyin=pinyin)
    assert [text[a:b] for a, b in spans] == expected


def test_widget_highlight_marks_sound_and_regex_matches() -> None:
    from investigator.widgets.table import highlight

    assert highlight("说加班非", ["加班费"]) == "说<mark>加班非</mark>"  # a hit by sound: marked by sound
    assert highlight("加班费和加班非", ["加班费"]) == "<mark>加班费</mark>和加班非"
    assert highlight("加班费和加班非", ["加班费"], pinyin=True) == "<mark>加班费</mark>和<mark>加班非</mark>"
    assert highlight("p\u0430ssword 1", [], mode="regex", query=r"password\s\d") == "<mark>p\u0430ssword 1</mark>"


def test_regex_mode_sees_normalized_text() -> None:
    frame = _frame(["my p\u0430ssword", "工號 A1", "plain"])
    assert search(frame, r"passw[o0]rd", mode="regex")["message_id"].to_list() == ["m0"]
    assert search(frame, r"工號\s*a\d", mode="regex")["message_id"].to_list() == ["m1"]


def test_normalization_examples_of_the_issue() -> None:
    assert normalize_text("p\u0430ssword") == normalize_text("P\u0391SSWORD") == "password"
    assert normalize_text("com") != normalize_text("corn")
    assert normalize_text("10") != normalize_text("I0")
    assert normalize_text("囗") != normalize_text("口")
    assert normalize_text("⼝") == "口"
    assert display_normalize("加 班\u200b费") == "加 班费"
