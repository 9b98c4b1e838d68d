"""The synthetic organisation: people, their accounts on every platform, and conversations.

    >>> from investigator.demo.samples import directory
    >>> directory.person("zhangwei").name
    '张伟'
    >>> directory.person("zhangwei").identities()[:2]
    ['slack:U0ZHANGWEI', 'wecom:zhangwei']

Everything here is fixed data (no randomness), so every writer and every test
agrees on who is who. Generated customers (for large benchmark sets) are made
from name parts by index, never at random, so they are the same for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STAFF_GROUP_CS = "客服一组"


@dataclass(frozen=True)
class Person:
    """One person of the directory and the accounts they use on each platform."""

    id: str
    name: str
    department: str
    groups: tuple[str, ...] = ()
    supervisor: str = ""
    roles: tuple[str, ...] = ()
    english: bool = False  # writes English rather than Chinese
    telegram_no: int = 0  # Telegram user number, "user<no>"
    discord_no: int = 0  # Discord discriminator

    @property
    def external(self) -> bool:
        return self.department == "external"

    @property
    def slack_id(self) -> str:
        # Slack user ids are upper-case, start with U and are mostly 9-11 chars.
        return "U0" + self.id.upper().replace("_", "")[:9]

    @property
    def wecom_id(self) -> str:
        # WeCom: employees have their userid, external contacts an opaque "wm..." id.
        if self.external:
            return "wm" + _opaque(self.id, 16)
        return self.id

    @property
    def wxid(self) -> str:
        return f"wxid_{self.id}"

    @property
    def telegram_id(self) -> str:
        return f"user{self.telegram_no}"

    @property
    def discord_name(self) -> str:
        return self.id

    @property
    def discord_tag(self) -> str:
        return f"{self.id}#{self.discord_no:04d}"

    @property
    def discord_snowflake(self) -> str:
        return str(900000000000000000 + self.telegram_no)

    def identities(self) -> list[str]:
        """``platform:account`` pairs for every platform the sample set writes."""
        return [
            f"slack:{self.slack_id}",
            f"wecom:{self.wecom_id}",
            f"wechat:{self.wxid}",
            f"whatsapp:{self.name}",
            f"telegram:{self.telegram_id}",
            f"discord:{self.discord_tag}",
        ]


def _opaque(text: str, length: int) -> str:
    """A stable opaque token (for platform ids that look random)."""
    import hashlib

    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def _p(pid: str, name: str, dept: str, groups: str = "", sup: str = "", roles: str = "", *, en: bool = False) -> Person:
    no = 1001 + len(_PEOPLE)
    person = Person(
        pid, name, dept, tuple(g for g in groups.split(";") if g), sup, tuple(r for r in roles.split(";") if r),
        en, no, no % 10000,
    )
    _PEOPLE.append(person)
    return person


_PEOPLE: list[Person] = []
# Management and control functions.
_p("zhouzong", "周总", "总经办", "管理层", "", "executive")
_p("sunli", "孙丽", "法务部", "法务部", "zhouzong", "legal;operator")
_p("wugang", "吴刚", "信息技术部", "信息技术部", "zhouzong", "admin")
_p("zhengjie", "郑洁", "审计部", "审计部", "zhouzong", "auditor")
# Customer service (the complaint and insult cases).
_p("zhaomin", "赵敏", "客服部", STAFF_GROUP_CS, "zhouzong", "team_lead")
_p("zhangwei", "张伟", "客服部", STAFF_GROUP_CS, "zhaomin", "agent")
_p("wangjing", "王静", "客服部", STAFF_GROUP_CS, "zhaomin", "agent")
_p("lina", "李娜", "客服部", STAFF_GROUP_CS, "zhaomin", "agent")
_p("huangyong", "黄勇", "客服部", STAFF_GROUP_CS, "zhaomin", "agent")
# Security: the patrol group (护卫队) and its lead, who also runs investigations.
_p("qianjin", "钱进", "安保部", "护卫队;安保部", "zhouzong", "team_lead;operator")
_p("machao", "马超", "安保部", "护卫队", "qianjin", "agent")
_p("hejun", "何军", "安保部", "护卫队", "qianjin", "agent")
_p("gaofeng", "高峰", "安保部", "护卫队", "qianjin", "agent")
_p("luobin", "罗斌", "安保部", "护卫队", "qianjin", "agent")
# Purchasing and project A (the misconduct case).
_p("xuming", "徐明", "采购部", "采购部;项目A", "zhouzong", "team_lead")
_p("liuyang", "刘洋", "采购部", "采购部;项目A", "xuming", "agent")
_p("chenlei", "陈磊", "采购部", "采购部;项目A", "xuming", "agent")
_p("emilychen", "Emily Chen", "采购部", "项目A", "xuming", "agent", en=True)
# External: couriers and customers.
_p("liqiang", "李强", "external", "骑手")
_p("sunhao", "孙浩", "external", "骑手")
_p("zhoupeng", "周鹏", "external", "骑手")
_p("wangfang", "王芳", "external", "客户")
_p("yangfan", "杨帆", "external", "客户")
_p("liumin", "刘敏", "external", "客户")
_p("chenjing", "陈静", "external", "客户")
_p("wuting", "吴婷", "external", "客户")
_p("tombaker", "Tom Baker", "external", "客户", en=True)

PEOPLE: tuple[Person, ...] = tuple(_PEOPLE)
_BY_ID = {p.id: p for p in PEOPLE}
AGENTS = ("zhangwei", "wangjing", "lina", "huangyong")

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建华宇浩凯琳晨欣怡子轩梓涵雨萱博文思远嘉怡俊杰"


def generated_customer(index: int) -> Person:
    """Customer number ``index`` of a large set: a stable name from name parts."""
    surname = _SURNAMES[index % len(_SURNAMES)]
    given = _GIVEN[(index // len(_SURNAMES)) % len(_GIVEN)] + _GIVEN[(index * 7 + 3) % len(_GIVEN)]
    pid = f"cust{index:05d}"
    no = 20000 + index
    return Person(pid, f"{surname}{given}", "external", ("客户",), "", (), False, no, no % 10000)


def person(pid: str) -> Person:
    """The person with id ``pid`` (generated customers included). Raises KeyError."""
    if pid in _BY_ID:
        return _BY_ID[pid]
    if pid.startswith("cust") and pid[4:].isdigit():
        return generated_customer(int(pid[4:]))
    raise KeyError(pid)


@dataclass(frozen=True)
class Conversation:
    """A chat: direct (two members) or group."""

    id: str
    name: str
    type: str  # "direct" or "group"
    kind: str  # vocabulary family: cs, courier, patrol, project, team, dm_work, dm_lead, en_cs, en_project
    members: tuple[str, ...]
    slug: str  # ASCII name for Slack folders, Discord channels, file names
    weight: float = 1.0  # share of bulk traffic; 0 = only planted messages
    quiet: tuple[tuple[str, str, str], ...] = field(default=())  # (date, from HH:MM, to HH:MM) local: no bulk


# The core conversations. Weights are relative shares of the bulk traffic.
# cs-wangfang and cs-yangfan carry only planted messages (weight 0) so the
# complaint timeline and the insult stay exactly as planted.
CORE_CONVERSATIONS: tuple[Conversation, ...] = (
    Conversation("cs-wangfang", "客服-王芳", "direct", "cs", ("zhangwei", "wangfang"), "cs-wangfang", 0.0),
    Conversation("cs-yangfan", "客服-杨帆", "direct", "cs", ("zhangwei", "yangfan"), "cs-yangfan", 0.0),
    Conversation("cs-liumin", "客服-刘敏", "direct", "cs", ("wangjing", "liumin"), "cs-liumin", 4.0),
    Conversation("cs-chenjing", "客服-陈静", "direct", "cs", ("lina", "chenjing"), "cs-chenjing", 4.0),
    Conversation("cs-wuting", "客服-吴婷", "direct", "cs", ("huangyong", "wuting"), "cs-wuting", 4.0),
    Conversation("cs-tombaker", "Support - Tom Baker", "direct", "en_cs", ("zhangwei", "tombaker"), "cs-tombaker", 3.0),
    Conversation(
        "g-courier", "骑手协调群", "group", "courier",
        ("zhaomin", "zhangwei", "wangjing", "lina", "huangyong", "liqiang", "sunhao", "zhoupeng"), "courier-coord", 14.0,
        (("2026-11-18", "13:30", "17:30"),),
    ),
    Conversation(
        "g-cs-team", "客服一组", "group", "team",
        ("zhaomin", "zhangwei", "wangjing", "lina", "huangyong"), "cs-team-1", 10.0,
        (("2026-11-18", "16:00", "17:00"),),
    ),
    Conversation(
        "g-patrol", "护卫队巡逻群", "group", "patrol",
        ("qianjin", "machao", "hejun", "gaofeng", "luobin"), "patrol-team", 16.0,
    ),
    Conversation(
        "g-project-a", "项目A群", "group", "project",
        ("xuming", "liuyang", "chenlei", "emilychen", "zhaomin"), "project-a", 14.0,
    ),
    Conversation(
        "dm-liuyang-chenlei", "刘洋 / 陈磊", "direct", "dm_work", ("liuyang", "chenlei"), "dm-liuyang-chenlei", 3.0,
        (("2026-11-24", "07:30", "10:00"),),
    ),
    Conversation("dm-zhaomin-zhangwei", "赵敏 / 张伟", "direct", "dm_lead", ("zhaomin", "zhangwei"), "dm-zhaomin-zhangwei", 3.0),
    Conversation("dm-qianjin-machao", "钱进 / 马超", "direct", "dm_lead", ("qianjin", "machao"), "dm-qianjin-machao", 2.0),
    Conversation("dm-xuming-emily", "徐明 / Emily Chen", "direct", "en_project", ("xuming", "emilychen"), "dm-xuming-emily", 2.0),
)


def conversations(total: int | None, n_messages: int) -> list[Conversation]:
    """The core conversations plus generated customer-service chats up to ``total``.

    ``total=None`` scales with the number of messages (one extra chat per 250).
    """
    core = list(CORE_CONVERSATIONS)
    extra = max(4, n_messages // 250) if total is None else max(0, total - len(core))
    for i in range(extra):
        cust = generated_customer(i)
        agent = AGENTS[i % len(AGENTS)]
        core.append(Conversation(f"cs-{cust.id}", f"客服-{cust.name}", "direct", "cs", (agent, cust.id), f"cs-{cust.id}", 1.0))
    return core


def people_for(convs: list[Conversation]) -> list[Person]:
    """Everyone in the directory plus the generated customers used in ``convs``."""
    out = list(PEOPLE)
    seen = {p.id for p in out}
    for conv in convs:
        for member in conv.members:
            if member not in seen:
                seen.add(member)
                out.append(person(member))
    return out


def people_csv_rows(people: list[Person]) -> list[list[str]]:
    """Rows of people.csv (with header): the org directory for the policy module."""
    rows = [["id", "name", "department", "groups", "supervisor", "roles", "identities"]]
    for p in people:
        rows.append([p.id, p.name, p.department, ";".join(p.groups), p.supervisor, ";".join(p.roles), ";".join(p.identities())])
    return rows
