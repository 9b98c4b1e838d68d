"""Widget and figure labels in Chinese (default) and English.

    >>> from investigator.widgets.i18n import label, resolve_lang
    >>> label("messages", "en"), label("messages", "zh-CN")
    ('Messages', '消息')
    >>> resolve_lang("EN")
    'en'

The language is a parameter everywhere (``lang=``). When it is not given, a widget built on a
case uses the case's language (``case.lang``: :func:`investigator.open_case` takes it from
``INVESTIGATOR_LANG`` at the edge), and everything else falls back to ``zh-CN``. Nothing here
reads the environment.
"""

from __future__ import annotations

from typing import Any

from investigator.settings import normalize_lang

LANGS = ("zh-CN", "en")

_LABELS: dict[str, tuple[str, str]] = {  # key: (zh-CN, en)
    # open-case form
    "open_case": ("打开案件", "Open case"),
    "archive": ("档案库", "Archive"),
    "grant": ("授权", "Grant"),
    "person": ("调取人", "Person"),
    "totp": ("动态验证码", "TOTP code"),
    "session": ("会话令牌", "Session token"),
    "passphrase": ("密钥口令", "Passphrase"),
    "key_passphrase": ("个人密钥口令", "Personal key passphrase"),
    "opened": ("已打开", "Opened"),
    "refused": ("拒绝", "Refused"),
    "panels_failed": ("案件已打开，但面板未能建立", "The case is open, but the panels could not be built"),
    "window": ("授权时间窗", "Grant window"),
    "scope": ("范围", "Scope"),
    "fields": ("字段", "Fields"),
    "case": ("案件", "Case"),
    "all": ("全部", "all"),
    # search panel
    "query": ("关键词", "Keywords"),
    "query_placeholder": ("例如: 加班费 OR \"overtime pay\"", "e.g. 加班费 OR \"overtime pay\""),
    "mode": ("匹配方式", "Mode"),
    "mode_exact": ("精确", "exact"),
    "mode_word": ("整词", "word"),
    "mode_fuzzy": ("模糊", "fuzzy"),
    "mode_regex": ("正则", "regex"),
    "pinyin": ("拼音", "Pinyin"),
    "range": ("时间范围", "Time range"),
    "preset": ("预设", "Preset"),
    "preset_grant": ("整个授权", "whole grant"),
    "preset_last_hour": ("最后一小时", "last hour"),
    "preset_last_day": ("最后一天", "last day"),
    "preset_last_week": ("最后一周", "last week"),
    "preset_custom": ("自定义", "custom"),
    "from": ("开始", "From"),
    "to": ("结束", "To"),
    "senders": ("发送人", "Senders"),
    "participants": ("参与人", "Participants"),
    "groups": ("部门/群组", "Groups"),
    "types": ("消息类型", "Message types"),
    "search": ("搜索", "Search"),
    "results": ("结果", "Results"),
    "count": ("条数", "Count"),
    "hits": ("命中", "hits"),
    "count_text": ("命中 {hits} 条 (筛选后 {base} 条, 授权内共 {total} 条)", "{hits} hits ({base} after filters, {total} in the grant)"),
    "of": ("共", "of"),
    "page": ("页", "Page"),
    "prev": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "context": ("上下文", "Context"),
    "no_results": ("没有结果", "No results"),
    "no_selection": ("请选择一条消息", "Select a message"),
    "outside_grant": ("超出授权时间窗, 已拒绝", "outside the grant window: refused"),
    "working": ("处理中", "Working"),
    "error": ("错误", "Error"),
    # table columns
    "ts": ("时间", "Time"),
    "sender": ("发送人", "Sender"),
    "conversation": ("会话", "Conversation"),
    "msg_type": ("类型", "Type"),
    "text": ("内容", "Text"),
    "matched": ("命中词", "Matched"),
    "variants": ("匹配变体", "Variants"),
    "tags": ("标记", "Tags"),
    "select": ("选择", "Select"),
    "copies": ("副本", "Copies"),
    "copies_total": ("各导出来源共 {n} 份副本", "{n} copies across the exports"),
    "corroborated": ("{n} 个导出来源互相印证", "corroborated by {n} exports"),
    "sort": ("点击排序, 再点反向", "click to sort, again to reverse"),
    "go_to_page": ("跳到页", "Go to page"),
    "select_page": ("选本页", "Select page"),
    "select_all": ("全选", "Select all"),
    "select_none": ("清除选择", "Select none"),
    "thread": ("整个会话", "Thread"),
    "open_thread": ("打开会话", "Open thread"),
    "close": ("关闭", "Close"),
    "distinct": ("去重 (每条消息一次)", "Distinct messages"),
    "show_copies": ("显示副本", "Show copies"),
    "copies_of": ("此消息的副本", "Copies of this message"),
    "export": ("导出", "Export"),
    "export_what": ("导出内容", "What"),
    "export_hits": ("当前命中", "current hits"),
    "export_tag": ("标记", "tag"),
    "export_format": ("格式", "Format"),
    "export_file": ("文件", "File"),
    "exported": ("已导出", "Exported"),
    "held": ("已被熔断机制拦截, 需法务审核放行", "held by the circuit breaker: a legal reviewer must release it"),
    "saved_searches": ("已保存的搜索", "Saved searches"),
    "save_search": ("保存搜索", "Save search"),
    "run_search": ("运行", "Run"),
    "search_name": ("名称", "Name"),
    "saved": ("已保存", "Saved"),
    # figures
    "timeline": ("时间线", "Timeline"),
    "messages": ("消息", "Messages"),
    "events": ("事件", "Events"),
    "gap": ("空白", "gap"),
    "gaps": ("空白期", "Gaps"),
    "delay": ("延迟", "delay"),
    "delays": ("回复延迟", "Reply delays"),
    "minutes": ("分钟", "min"),
    "lane": ("参与人", "Participant"),
    "time_axis": ("时间", "Time"),
    "heatmap": ("活跃度 (小时 x 星期)", "Activity (hour x weekday)"),
    "hour": ("小时", "Hour"),
    "weekday": ("星期", "Weekday"),
    "contacts": ("联系关系", "Who talks to whom"),
    "hit_counts": ("命中统计", "Hit counts"),
    "empty": ("无数据", "No data"),
    # tags
    "tag": ("标记", "Tag"),
    "note": ("备注", "Note"),
    "add_tag": ("添加标记", "Add tag"),
    "remove_tag": ("撤销标记", "Remove tag"),
    "tag_filter": ("按标记筛选", "Filter by tag"),
    "tagged": ("已标记", "Tagged"),
    "selected": ("已选", "Selected"),
    "author": ("标记人", "Author"),
    # audit
    "audit": ("审计日志", "Audit log"),
    "actor": ("操作人", "Actor"),
    "action": ("操作", "Action"),
    "target": ("对象", "Target"),
    "outcome": ("结果", "Outcome"),
}

WEEKDAYS: dict[str, tuple[str, ...]] = {
    "zh-CN": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def resolve_lang(lang: str | None = None) -> str:
    """``lang``, else zh-CN; ``en``/``EN``/``en_US`` give ``en``, anything else ``zh-CN``."""
    return normalize_lang(lang)


def case_lang(case: Any, lang: str | None = None) -> str | None:
    """``lang`` if given, else the case's language (``case.lang``, from the edge), else None (zh-CN)."""
    return lang if lang is not None else getattr(case, "lang", None)


def label(key: str, lang: str | None = None) -> str:
    """The label for ``key`` in ``lang`` (the key itself when unknown, so a missing label shows, not fails)."""
    pair = _LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if resolve_lang(lang) == "en" else pair[0]


def weekdays(lang: str | None = None) -> tuple[str, ...]:
    """Monday..Sunday names."""
    return WEEKDAYS[resolve_lang(lang)]


def zone_note(tz: str, lang: str | None = None) -> str:
    """'时间 (Asia/Shanghai)' — times are always shown with their zone named."""
    return f"{label('time_axis', lang)} ({tz})"
