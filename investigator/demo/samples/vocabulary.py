"""Sentences for the bulk traffic, by conversation kind and speaker side.

    >>> from investigator.demo.samples import vocabulary
    >>> texts, offsets, sizes = vocabulary.table()
    >>> sizes["patrol"] > 50
    True

Templates with ``{order}``, ``{n}``, ``{place}``, ``{time}`` are expanded with
a few fixed fillers, giving a few hundred distinct sentences per kind. Bulk
rows pick a sentence by index, so generation stays vectorized.

The planted keywords (and their evasive spellings) must never occur in bulk
traffic: :func:`is_clean` is applied to every sentence when the table is built,
and a sentence that fails it is a bug caught at import time.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Everything a keyword search for the planted cases could match, in folded form
# (see fold()). "加班" and "pass" are stricter than the keywords on purpose:
# fuzzy and substring searches must not find bulk rows either.
FORBIDDEN = (
    "加班", "加班费", "加班費", "jiabanfei", "jiaban", "投诉", "投訴", "tousu", "辱骂", "辱罵", "ruma",
    "回扣", "huikou", "password", "pass", "vpn", "密码", "删日志", "删除日志",
)

_FOLD_DROP = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff\u3000./\\\-_·,，。、|*]+")


def fold(text: str) -> str:
    """Lower-case NFKC text without spaces, zero-width characters and separators."""
    return _FOLD_DROP.sub("", unicodedata.normalize("NFKC", text).lower())


def is_clean(text: str) -> bool:
    """True when ``text`` holds no planted keyword in any spelling."""
    folded = fold(text)
    return not any(word in folded for word in FORBIDDEN)


_ORDERS = ("DD202611020113", "DD202611050871", "DD202611090342", "DD202611120968", "DD202611160027", "DD202611210554")
_PLACES = ("东门", "北区停车场", "3号楼大堂", "B2车库", "西侧围墙", "仓库A区", "南门岗亭")
_TIMES = ("10点", "下午3点", "今晚8点", "明早9点", "中午12点")
_NUMS = ("2", "3", "5", "10", "15", "20")

_KINDS: dict[str, list[str]] = {
    "cs.agent": [
        "您好,请问有什么可以帮您?", "收到,我帮您查一下订单{order}的配送进度", "订单{order}已经在配送中,预计{n}分钟送达",
        "非常抱歉给您带来不便", "已为您登记,稍后会有专人联系您", "请您提供一下下单手机号的后四位", "退款已提交,1-3个工作日到账",
        "您的订单{order}已签收,请确认", "好的,还有其他问题吗?", "感谢您的耐心等待", "我这边帮您催一下骑手",
        "这个需要和商家确认一下,请稍等", "已为您备注不要辣", "您可以在App里查看实时位置", "祝您用餐愉快!",
        "优惠券已经发放到您的账户,有效期7天", "地址已帮您修改为{place}", "餐品缺失的问题我们会补送",
    ],
    "cs.customer": [
        "你好,我的订单{order}怎么还没到?", "请问可以改一下送餐地址吗?", "好的谢谢", "骑手电话打不通", "已经等了{n}分钟了",
        "少送了一份饮料", "能不能帮我催一下", "发票怎么开?", "退款什么时候到账?", "收到了,谢谢", "汤洒了一半",
        "麻烦备注一下不要香菜", "地址写错了,应该是{place}", "嗯嗯,明白了", "App上显示已送达,但我没收到",
    ],
    "courier.staff": [
        "订单{order}客户在催,请尽快送达", "{place}那边今天路况怎么样?", "请大家送达后及时点击完成", "今天单量大,注意安全",
        "有客户反映餐品洒了,送餐时请注意放平", "午高峰大家辛苦了", "订单{order}地址有变更,请留意", "收到请回复",
    ],
    "courier.rider": [
        "收到", "马上到", "路上堵车,预计晚{n}分钟", "已送达", "客户电话没人接", "取餐还要等{n}分钟,商家出餐慢",
        "电动车没电了,换个电池", "订单{order}已取餐", "{place}进不去,保安不让进", "好的明白",
    ],
    "patrol": [
        "{time}巡逻开始,各岗位报到", "{place}巡查完毕,一切正常", "{place}有可疑车辆,已登记车牌", "收到", "已到岗",
        "监控室报告{place}摄像头画面异常", "交接班记录已填写", "今晚值班安排:{n}人一组", "{place}门禁故障,已报修",
        "巡逻路线调整,先走{place}再走东门", "消防通道有杂物,已通知物业清理", "访客已登记放行", "对讲机电量不足,请及时充电",
        "明天{time}例会,请准时参加", "夜间巡逻注意安全", "{place}灯不亮了,已报修", "今天天气冷,大家注意保暖",
    ],
    "project": [
        "项目A周报已上传,请大家查看", "供应商报价下午发我一下", "明天{time}开项目例会", "合同初稿已经发给法务了",
        "这批物料的交期是下周{n}号", "预算表更新了,请核对", "收到", "好的,我跟进一下", "采购订单已经审批通过",
        "样品已到,放在{place}", "请大家更新一下任务进度", "这个需求要重新评估", "会议纪要:\n1. 确认供应商名单\n2. 下周提交预算",
        "里程碑延期{n}天,需要通知客户", "Please review the supplier list before Friday", "Updated the timeline, see the shared sheet",
    ],
    "team": [
        "今天排班已经发群里了", "大家午饭轮流去,保证有人在线", "新的话术模板已更新", "本周满意度{n}分,继续加油",
        "系统{time}维护,请提前告知客户", "收到", "好的", "培训资料放在共享盘了", "下班前记得填工单", "今天单量比较大,辛苦大家",
        "遇到难处理的客户及时找我", "明天{time}开组会",
    ],
    "dm_work": [
        "中午一起吃饭吗?", "那份报价你看了吗?", "供应商说下周发货", "好的", "收到", "明天{time}见", "采购单我已经提交了",
        "这个月任务挺多的", "周末有空吗?", "资料发你邮箱了",
    ],
    "dm_lead": [
        "今天的工作情况怎么样?", "有问题随时找我", "这周的考核表记得交", "收到", "好的,马上处理", "辛苦了",
        "下午{time}来我办公室一趟", "排班表我调整了一下",
    ],
    "en_cs.agent": [
        "Hi, how can I help you today?", "Let me check order {order} for you", "Your order should arrive in about {n} minutes",
        "Sorry for the inconvenience", "The refund has been submitted", "Is there anything else I can help with?",
        "I have asked the rider to hurry up", "Thanks for your patience",
    ],
    "en_cs.customer": [
        "Hi, where is my order {order}?", "Can I change the delivery address?", "Thanks!", "The rider is not answering",
        "I have been waiting for {n} minutes", "Got it, thank you", "One drink is missing",
    ],
    "en_project": [
        "Can we move the sync to {time}?", "I sent the updated budget", "Supplier quote attached", "Sounds good",
        "Let's discuss tomorrow", "The contract draft is with legal", "Noted, thanks",
    ],
}

_FILLERS = {"order": _ORDERS, "n": _NUMS, "place": _PLACES, "time": _TIMES}
_TIME_EN = {"10点": "10am", "下午3点": "3pm", "今晚8点": "8pm", "明早9点": "9am tomorrow", "中午12点": "noon"}


def _expand(template: str, english: bool) -> list[str]:
    names = [k for k in _FILLERS if "{" + k + "}" in template]
    if not names:
        return [template]
    out = []
    for i in range(6):  # six fixed fillings per template
        values = {k: _FILLERS[k][(i * (j + 3)) % len(_FILLERS[k])] for j, k in enumerate(names)}
        if english and "time" in values:
            values["time"] = _TIME_EN[values["time"]]
        out.append(template.format(**values))
    return list(dict.fromkeys(out))


LINKS = (
    ("https://docs.example.com/project-a/weekly", "项目A周报"),
    ("https://wiki.example.com/cs/scripts", "客服话术模板"),
    ("https://map.example.com/route/patrol-3", "巡逻路线图"),
    ("https://shop.example.com/orders/track", "订单跟踪"),
    ("https://news.example.com/logistics-2026", "物流行业资讯"),
)

FILE_NAMES = (
    "项目A周报.pdf", "供应商报价单.xlsx", "巡逻记录表.docx", "排班表_11月.xlsx", "合同初稿.docx", "会议纪要.docx",
    "invoice_1123.pdf", "budget_q4.xlsx", "交接班记录.pdf", "客服话术v3.pptx",
)


@lru_cache(maxsize=1)
def table() -> tuple[list[str], dict[str, int], dict[str, int]]:
    """All sentences in one list, with each kind's offset and size in it."""
    texts: list[str] = []
    offsets: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for kind, templates in _KINDS.items():
        english = kind.startswith("en_")
        expanded = [s for t in templates for s in _expand(t, english)]
        bad = [s for s in expanded if not is_clean(s)]
        if bad:  # a planted keyword in the vocabulary would poison the labeled search set
            raise AssertionError(f"vocabulary kind {kind} holds a planted keyword")
        offsets[kind] = len(texts)
        sizes[kind] = len(expanded)
        texts.extend(expanded)
    return texts, offsets, sizes


def kind_for(conv_kind: str, member_is_staff: bool) -> str:
    """The vocabulary kind for a member of a conversation of ``conv_kind``."""
    if conv_kind in ("cs", "en_cs"):
        return f"{conv_kind}.{'agent' if member_is_staff else 'customer'}"
    if conv_kind == "courier":
        return "courier.staff" if member_is_staff else "courier.rider"
    return conv_kind
