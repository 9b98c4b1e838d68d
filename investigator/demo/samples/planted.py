"""The planted cases: exact messages and events that analysis, reports and tests look for.

    >>> from investigator.demo.samples import planted
    >>> len([m for m in planted.MESSAGES if m.case == "misconduct" and m.key.startswith("c2.key")])
    23

Times are local (Asia/Shanghai by default) wall-clock times. Ids are stable
(``p-...``) whatever the size of the bulk set, so tests can name them.
planted.json (written by :mod:`investigator.demo.samples.sampleset`) describes all of
this, with each format's own id for every planted message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPLAINT_ORDER = "DD202611180457"
UNUSUAL_IP = "203.0.113.7"  # TEST-NET-3: never a real address
USUAL_IP_LIUYANG = "10.20.3.15"
ERP_HOST = "erp-01"


@dataclass(frozen=True)
class PlantedMessage:
    """One planted message. ``labels``: (keyword, evasion class) pairs it contains."""

    key: str
    case: str
    conversation_id: str
    local: str  # "YYYY-MM-DD HH:MM:SS" local time
    sender: str
    text: str | None
    msg_type: str = "text"
    attachment: tuple[str, str, int] | None = None  # (name, mime type, size)
    reply_to: str = ""  # key of the message replied to
    labels: tuple[tuple[str, str], ...] = field(default=())
    near_miss: tuple[str, ...] = ()  # keywords this text must NOT match in whole-word mode

    @property
    def id(self) -> str:
        return "p-" + self.key.replace(".", "-")


@dataclass(frozen=True)
class PlantedEvent:
    key: str
    case: str
    local: str
    actor: str
    event_type: str
    host: str
    ip: str
    outcome: str
    details: str  # JSON text

    @property
    def id(self) -> str:
        return "p-" + self.key.replace(".", "-")


M = PlantedMessage
_C1 = "complaint"
_C2 = "misconduct"
_KW = "keywords"
_C4 = "insult"

# Case 1, 案例1 客户投诉处理: Wednesday 2026-11-18.
CASE1 = [
    M("c1.ask", _C1, "cs-wangfang", "2026-11-18 13:48:10", "wangfang", f"你好,我的外卖订单{COMPLAINT_ORDER}已经超时40分钟了,还没送到"),
    M("c1.ack", _C1, "cs-wangfang", "2026-11-18 13:52:30", "zhangwei", "您好,我马上帮您联系骑手,请稍等"),
    M("c1.agent_to_courier", _C1, "g-courier", "2026-11-18 14:20:00", "zhangwei",
      f"@李强 订单{COMPLAINT_ORDER}客户在催,已经超时40分钟了,你现在到哪了?"),
    M("c1.courier_reply", _C1, "g-courier", "2026-11-18 14:26:40", "liqiang", "路上堵车,预计还要20分钟", reply_to="c1.agent_to_courier"),
    M("c1.complaint", _C1, "cs-wangfang", "2026-11-18 14:35:00", "wangfang",
      f"我要投诉!订单{COMPLAINT_ORDER}超时快一个小时了,客服也不回消息,太过分了", labels=(("投诉", "natural"),)),
    M("c1.screenshot", _C1, "cs-wangfang", "2026-11-18 14:36:12", "wangfang", None, "image",
      ("Screenshot_20261118_143610.jpg", "image/jpeg", 284113)),
    M("c1.followup", _C1, "cs-wangfang", "2026-11-18 15:20:05", "wangfang", "还有人吗?到底什么时候处理?"),
    M("c1.lead_nudge", _C1, "g-cs-team", "2026-11-18 16:28:00", "zhaomin", "@张伟 王芳的投诉还没回复,马上处理", labels=(("投诉", "natural"),)),
    M("c1.first_reply", _C1, "cs-wangfang", "2026-11-18 16:35:00", "zhangwei",
      f"王女士您好,非常抱歉让您久等了。订单{COMPLAINT_ORDER}的配送延误是我们的责任,我们正在处理", reply_to="c1.complaint"),
    M("c1.unhappy", _C1, "cs-wangfang", "2026-11-18 16:41:20", "wangfang", "两个小时才回复,我很不满意"),
    M("c1.offer", _C1, "cs-wangfang", "2026-11-18 16:50:00", "zhangwei", "为表歉意,给您补偿一张30元无门槛优惠券,并全额退还配送费,您看可以吗?"),
    M("c1.accept", _C1, "cs-wangfang", "2026-11-18 17:02:30", "wangfang", "好吧,那就这样吧,我接受和解"),
    M("c1.close", _C1, "cs-wangfang", "2026-11-18 17:05:00", "zhangwei", "感谢您的理解,优惠券已发放到您的账户,祝您生活愉快"),
]

# Case 2, 案例2 内部调查: Tuesday 2026-11-24, exactly 23 key messages 08:30-09:15 in the DM.
_C2_LINES = [
    ("08:30:12", "liuyang", "在吗?供应商那边的回扣到账了"),
    ("08:31:05", "chenlei", "在。多少?"),
    ("08:31:48", "liuyang", "按上次说的,百分之八"),
    ("08:33:20", "chenlei", "别在项目A群里说这个"),
    ("08:34:02", "liuyang", "知道,就咱俩"),
    ("08:36:45", "chenlei", "那批物料的入库记录要改一下,数量对不上"),
    ("08:38:10", "liuyang", "我来改,ERP我有权限"),
    ("08:39:33", "chenlei", "公司电脑别用,用外面的网"),
    ("08:40:15", "liuyang", "我在家,用自己的电脑连"),
    ("08:44:51", "liuyang", "进去了,正在改入库数量"),
    ("08:46:30", "chenlei", "单价也改成供应商报的那个"),
    ("08:48:02", "liuyang", "改好了,你看一下"),
    ("08:50:17", "chenlei", "huikou的事财务会不会查?"),
    ("08:51:40", "liuyang", "只要账对得上就没事"),
    ("08:54:55", "liuyang", "操作日志要不要删?"),
    ("08:56:21", "chenlei", "删掉,系统日志和登录记录都删干净"),
    ("08:58:03", "liuyang", "我再登一次把日志清了"),
    ("09:01:44", "chenlei", "回.扣那部分下周给你转一半"),
    ("09:03:29", "liuyang", "好,现金,别走银行"),
    ("09:05:10", "chenlei", "这个表你也存一份"),
    ("09:06:02", "chenlei", None),  # the file, see below
    ("09:10:36", "liuyang", "日志清完了,最后再确认一遍"),
    ("09:14:58", "chenlei", "聊天记录也删了吧"),
]
_C2_LABELS = {0: (("回扣", "natural"),), 12: (("回扣", "pinyin"),), 17: (("回扣", "punctuation"),)}
CASE2 = [
    M(f"c2.key{i + 1:02d}", _C2, "dm-liuyang-chenlei", f"2026-11-24 {t}", who, text,
      "file" if text is None else "text", ("采购入库台账_修改版.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 48213)
      if text is None else None, labels=_C2_LABELS.get(i, ()))
    for i, (t, who, text) in enumerate(_C2_LINES)
] + [
    # Before and after the window in the same DM: context, not key messages.
    M("c2.before", _C2, "dm-liuyang-chenlei", "2026-11-23 18:40:00", "chenlei", "明天早上早点上线,有事跟你说"),
    M("c2.after", _C2, "dm-liuyang-chenlei", "2026-11-24 10:05:00", "liuyang", "上午项目例会,我先过去了"),
]

# Case 4: agent 张伟 insults a customer (the seed's 小张), Friday 2026-11-13.
CASE4 = [
    M("c4.ask", _C4, "cs-yangfan", "2026-11-13 10:02:00", "yangfan", "我上周申请的退款为什么还没到?已经问了三次了"),
    M("c4.agent", _C4, "cs-yangfan", "2026-11-13 10:04:30", "zhangwei", "跟你说了多少遍了还问"),
    M("c4.customer", _C4, "cs-yangfan", "2026-11-13 10:06:10", "yangfan", "你这是什么态度?"),
    M("c4.insult", _C4, "cs-yangfan", "2026-11-13 10:07:45", "zhangwei", "你是不是脑子有病?看不懂规则就别来烦我,蠢货"),
    M("c4.reaction", _C4, "cs-yangfan", "2026-11-13 10:09:20", "yangfan", "你怎么能辱骂客户?我要投诉你!",
      labels=(("辱骂", "natural"), ("投诉", "natural"))),
]

# Case 3: keywords in natural and evasive spellings (English inflections included), and near misses
# (substrings and compounds whole-word mode refuses: password123, passport, openvpn, 增加班级 ...).
_K = [
    ("k.ot_natural", "g-patrol", "2026-11-03 19:20:00", "machao", "这个月的加班费什么时候发?", (("加班费", "natural"),)),
    ("k.ot_spaces", "g-patrol", "2026-11-05 21:05:00", "hejun", "加 班 费还没到账,谁问一下", (("加班费", "spaces"),)),
    ("k.ot_ideographic", "g-patrol", "2026-11-09 20:15:00", "gaofeng", "上个月的加　班　费少算了两天", (("加班费", "ideographic_space"),)),
    ("k.ot_slash", "g-patrol", "2026-11-10 22:40:00", "luobin", "夜班的加/班/费标准是多少", (("加班费", "punctuation"),)),
    ("k.ot_dots", "g-project-a", "2026-11-11 18:30:00", "chenlei", "周末赶工,加.班.费怎么算?", (("加班费", "punctuation"),)),
    ("k.ot_zwsp", "g-patrol", "2026-11-12 23:10:00", "machao", "加\u200b班\u200b费再不发我就不干了", (("加班费", "zero_width"),)),
    ("k.ot_trad", "g-cs-team", "2026-11-16 18:45:00", "lina", "加班費是按小時算嗎?", (("加班费", "traditional"),)),
    ("k.ot_pinyin", "g-patrol", "2026-11-19 21:30:00", "hejun", "jiabanfei 的事队长有消息吗", (("加班费", "pinyin"),)),
    ("k.ot_pinyin_spaced", "g-patrol", "2026-11-26 20:50:00", "gaofeng", "jia ban fei 又拖了", (("加班费", "pinyin"),)),
    ("k.complain_spaces", "g-courier", "2026-11-06 12:40:00", "sunhao", "又被客户投 诉了,明明是商家出餐慢", (("投诉", "spaces"),)),
    ("k.complain_trad", "cs-chenjing", "2026-11-20 11:15:00", "chenjing", "我要投訴你們的配送服務", (("投诉", "traditional"),)),
    ("k.complain_zwsp", "g-courier", "2026-11-25 13:05:00", "zhoupeng", "这单要是超时肯定投\u200b诉", (("投诉", "zero_width"),)),
    ("k.insult_trad", "g-cs-team", "2026-11-17 09:40:00", "wangjing", "昨天那個客戶一直辱罵我", (("辱骂", "traditional"),)),
    ("k.insult_punct", "g-cs-team", "2026-11-23 15:10:00", "huangyong", "被客户辱-骂了怎么处理?", (("辱骂", "punctuation"),)),
    ("k.kickback_spaces", "g-project-a", "2026-11-27 16:20:00", "chenlei", "有人在传回 扣的事,大家注意", (("回扣", "spaces"),)),
    ("k.pw_natural", "g-project-a", "2026-11-04 10:12:00", "emilychen", "Please do not share the ERP password in this group", (("password", "natural"),)),
    ("k.pw_mixed", "dm-xuming-emily", "2026-11-09 09:25:00", "emilychen", "The supplier portal PassWord expires Friday", (("password", "mixed_case"),)),
    ("k.pw_fullwidth", "g-project-a", "2026-11-20 14:05:00", "liuyang", "ｐａｓｓｗｏｒｄ 发我私信", (("password", "full_width"),)),
    ("k.vpn_natural", "g-cs-team", "2026-11-05 08:55:00", "zhangwei", "在家办公要先连vpn", (("vpn", "natural"),)),
    ("k.vpn_upper", "dm-xuming-emily", "2026-11-12 19:30:00", "xuming", "VPN is down again, use the office network", (("vpn", "mixed_case"),)),
    ("k.vpn_fullwidth", "g-project-a", "2026-11-17 20:10:00", "liuyang", "用ｖｐｎ连ERP就行", (("vpn", "full_width"),)),
    ("k.vpn_fullwidth_upper", "g-patrol", "2026-11-25 22:00:00", "qianjin", "监控室的ＶＰＮ账号已经重置", (("vpn", "full_width"),)),
    ("k.vpn_password", "cs-tombaker", "2026-11-26 10:30:00", "tombaker", "Why would support need my VPN password?",
     (("vpn", "mixed_case"), ("password", "natural"))),
    # an English plural is the word (issue #16: word mode stems inflections), so a hit in every mode
    ("k.pw_plural", "g-project-a", "2026-11-13 11:00:00", "emilychen", "IT says passwords must be rotated every 90 days",
     (("password", "inflection"),)),
]
_NEAR = [
    ("n.class", "g-project-a", "2026-11-06 15:00:00", "xuming", "下学期增加班级数量的方案已经通过", ("加班费",)),
    ("n.overtime_only", "g-patrol", "2026-11-14 18:00:00", "qianjin", "今晚要加班,大家辛苦", ("加班费",)),
    ("n.password123", "g-cs-team", "2026-11-19 09:10:00", "zhaomin",
     "Test account hint: password123 is not allowed", ("password",)),
    ("n.passport", "cs-tombaker", "2026-11-10 16:40:00", "tombaker", "Do you need my passport number for the refund?", ("password",)),
    ("n.openvpn", "g-project-a", "2026-11-18 10:20:00", "emilychen", "The openvpn client config is on the wiki", ("vpn",)),
    ("n.return", "cs-liumin", "2026-11-21 14:00:00", "liumin", "我回头扣一下积分再下单", ("回扣",)),
]
KEYWORD_MESSAGES = [M(k, _KW, c, t, s, x, labels=lab) for k, c, t, s, x, lab in _K]
NEAR_MISS_MESSAGES = [M(k, _KW, c, t, s, x, near_miss=nm) for k, c, t, s, x, nm in _NEAR]

MESSAGES: list[PlantedMessage] = CASE1 + CASE2 + CASE4 + KEYWORD_MESSAGES + NEAR_MISS_MESSAGES
KEYWORDS = ("加班费", "投诉", "辱骂", "回扣", "password", "vpn")

_ANOM = '{"anomaly": "new_ip_off_hours", "method": "ssh"}'
EVENTS: list[PlantedEvent] = [
    PlantedEvent("c1.order", _C1, "2026-11-18 12:55:00", "wangfang", "order", "order-svc", "", "success",
                 f'{{"order_id": "{COMPLAINT_ORDER}", "status": "created", "courier": "liqiang"}}'),
    PlantedEvent("c1.ticket_open", _C1, "2026-11-18 14:36:30", "zhangwei", "ticket", "crm-01", "", "success",
                 f'{{"ticket_id": "T-20261118-031", "status": "opened", "type": "complaint", "order_id": "{COMPLAINT_ORDER}", "customer": "wangfang"}}'),
    PlantedEvent("c1.alert", _C1, "2026-11-18 14:40:00", "system", "delivery_delay_alert", "order-svc", "", "",
                 f'{{"order_id": "{COMPLAINT_ORDER}", "delay_minutes": 52, "courier": "liqiang", "severity": "high"}}'),
    PlantedEvent("c1.delivered", _C1, "2026-11-18 15:05:00", "liqiang", "order", "order-svc", "", "success",
                 f'{{"order_id": "{COMPLAINT_ORDER}", "status": "delivered"}}'),
    PlantedEvent("c1.ticket_close", _C1, "2026-11-18 17:06:00", "zhangwei", "ticket", "crm-01", "", "success",
                 '{"ticket_id": "T-20261118-031", "status": "closed", "resolution": "settled", "compensation": "coupon_30"}'),
    PlantedEvent("c2.login1", _C2, "2026-11-24 08:41:07", "liuyang", "login", ERP_HOST, UNUSUAL_IP, "success", _ANOM),
    PlantedEvent("c2.logout1", _C2, "2026-11-24 08:47:30", "liuyang", "logout", ERP_HOST, UNUSUAL_IP, "success", "{}"),
    PlantedEvent("c2.login2", _C2, "2026-11-24 08:52:19", "liuyang", "login", ERP_HOST, UNUSUAL_IP, "success", _ANOM),
    PlantedEvent("c2.logout2", _C2, "2026-11-24 08:58:45", "liuyang", "logout", ERP_HOST, UNUSUAL_IP, "success", "{}"),
    PlantedEvent("c2.login3", _C2, "2026-11-24 09:07:52", "liuyang", "login", ERP_HOST, UNUSUAL_IP, "success", _ANOM),
    PlantedEvent("c2.logout3", _C2, "2026-11-24 09:13:04", "liuyang", "logout", ERP_HOST, UNUSUAL_IP, "success", "{}"),
    PlantedEvent("c2.normal_login", _C2, "2026-11-24 09:31:26", "liuyang", "login", ERP_HOST, USUAL_IP_LIUYANG, "success", '{"method": "ssh"}'),
    PlantedEvent("c2.normal_logout", _C2, "2026-11-24 18:02:11", "liuyang", "logout", ERP_HOST, USUAL_IP_LIUYANG, "success", "{}"),
]
ABNORMAL_LOGIN_KEYS = ("c2.login1", "c2.login2", "c2.login3")

# Windows (local) in which the bulk generators must not put traffic for these actors.
EVENT_QUIET = {"liuyang": "2026-11-24"}


def by_key(key: str) -> PlantedMessage:
    """The planted message with ``key``. Raises KeyError."""
    for m in MESSAGES:
        if m.key == key:
            return m
    raise KeyError(key)
