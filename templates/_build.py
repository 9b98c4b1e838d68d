"""Writes the report templates (templates/*.ipynb) from the cell sources below.

    .venv/bin/python templates/_build.py

The notebooks are the artifacts (edit them in JupyterLab if you like, then port the
change here). Each has a cell tagged ``parameters`` (papermill), states its scope and
limits, redacts personal data unless ``redact=False``, and ends by recording what it
read (investigator.reports.notebook.record_provenance) for the sealer.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

COMMON_PARAMETERS = '''\
archive = "demo-archive"   # archive folder
grant = ""                 # grant id or grant file
person = ""                # the grant's operator (调取人)
session = None             # prefer the INVESTIGATOR_SESSION variable, set by investigator report run
case = ""                  # case label (default: the grant's case)
window = []                # two local times inside the grant, start and end; empty means the whole grant
redact = True              # mask personal data in every table: phone, ID, card, e-mail and IP numbers
lang = "zh"                # zh or en
seed = 0
'''

OPEN_CASE = '''\
import polars as pl
import plotly.graph_objects as go
from investigator import analysis
from investigator.reports import notebook as rn

rn.setup(seed=seed)
c = rn.open_report_case(archive, grant=grant, person=person, session=session)
tz = c.timezone
start, end = rn.report_window(c, window)
messages = rn.in_window(c.messages(progress=False), start, end)
events = rn.in_window(c.events(progress=False), start, end)
identities = c.identities()
zh = not lang.lower().startswith("en")
records = "条导出记录（同一消息在每个导出中各计一条）" if zh else "exported records (a message counts once per export)"
rn.markdown(f"**{'案件' if zh else 'Case'}: `{case or c.grant.case}`** — "
            f"{messages.height} {records}, {events.height} {'条事件记录' if zh else 'event records'}")
'''

PROVENANCE = '''\
rn.record_provenance(c, frames={"messages": messages, "events": events})
'''


def scope(limits: list[str]) -> str:
    return ("limits = " + repr(limits) + "\n"
            "rn.markdown(rn.scope_statement(c, start, end, redact=redact, lang=lang, limits=limits))\n")


TEMPLATES: dict[str, dict] = {}

TEMPLATES["complaint_investigation"] = {
    "title": "# 客户投诉处理 / Complaint investigation\n\n"
             "When a customer complained, when staff first answered in that conversation, who was involved "
             "and what happened in between. Counted on distinct messages: a message that several exports hold "
             "is one message, corroborated by each export.",
    "parameters": 'keywords = ["投诉", "complaint"]   # words that mark the complaint\n'
                  'people = ["zhangwei"]              # staff whose handling is examined (timeline lanes)\n'
                  'complainant_groups = ["客户"]      # directory groups of customers; other outside people (couriers) '
                  'are not complainants; [] counts every sender who is not staff\n',
    "cells": [
        '''\
people_map = rn.case_people(c)              # the directory's linked identities, resolved once
staff = rn.staff_ids(c)                     # the organisation's own people (not customers, not couriers)
distinct = rn.distinct_messages(messages, people_map)
query = " OR ".join(f'"{k}"' for k in keywords)
hits = analysis.search(distinct, query) if keywords else distinct.head(0)
outsiders = rn.outside_ids(c, complainant_groups)  # outside people who are not customers (couriers)
is_staff = pl.col("person_id").is_in(sorted(staff))
is_outsider = pl.col("person_id").is_in(sorted(outsiders))
internal = hits.filter(is_staff)            # staff talking about a complaint are not complainants
others = hits.filter(is_outsider).sort(["ts", "record_hash"])  # nor is a courier saying a customer complained
complaints = hits.filter(~is_staff & ~is_outsider).sort(["ts", "record_hash"])
answers = analysis.first_staff_reply(distinct, messages, triggers=complaints, responders=staff).sort(
    ["ts", "record_hash"])
answered = answers.filter(pl.col("delay_minutes").is_not_null())
unanswered = answers.filter(pl.col("delay_minutes").is_null())
customers = sorted(set(complaints["person"].to_list()))
repliers = sorted(set(answered["replier"].drop_nulls().to_list()))
''',
        '''\
def _minutes(value):
    return f"{value:.0f}"

if zh:
    findings = [f"时间窗内共有 {messages.height} 条导出记录，合并为 {distinct.height} 条不同的消息。",
                f"发现 {complaints.height} 条客户投诉（{'、'.join(customers) or '无'}）。"]
    for row in answers.iter_rows(named=True):
        when = rn.fmt_local(row["ts"], tz)
        if row["delay_minutes"] is None:
            findings.append(f"{row['person']} 于 {when} 在「{row['conversation']}」投诉，时间窗内员工未在该会话回复。")
        else:
            findings.append(f"{row['person']} 于 {when} 在「{row['conversation']}」投诉，{row['replier']} 于 "
                            f"{rn.fmt_local(row['reply_ts'], tz)} 首次回复，处理时长 {_minutes(row['delay_minutes'])} 分钟"
                            f"（该投诉有 {row['exports']} 个导出佐证）。")
    searched = [f"关键词：{'、'.join(keywords) or '（无）'}（规范化匹配，含繁简、全半角）",
                "客户与员工按组织目录区分；员工回复须在投诉所在会话中",
                (f"投诉人：组织目录中 {'、'.join(complainant_groups)} 群组的成员，及目录中没有的发送人"
                 if complainant_groups else "投诉人：员工以外的所有发送人")]
    excluded = [f"员工发送的含关键词消息 {internal.height} 条（内部讨论，不计为投诉）",
                f"其他外部人员（非客户，如骑手）发送的含关键词消息 {others.height} 条"
                + (f"（{'、'.join(sorted(set(others['person'].to_list())))}）" if others.height else ""),
                f"重复导出的副本 {messages.height - distinct.height} 条（同一消息只计一次）",
                "未使用关键词的投诉可能遗漏"]
else:
    findings = [f"The window holds {messages.height} exported records: {distinct.height} distinct messages.",
                f"{complaints.height} customer complaint(s) found ({', '.join(customers) or 'none'})."]
    for row in answers.iter_rows(named=True):
        when = rn.fmt_local(row["ts"], tz)
        if row["delay_minutes"] is None:
            findings.append(f"{row['person']} complained at {when} in “{row['conversation']}”; no staff member "
                            "replied in that conversation within the window.")
        else:
            findings.append(f"{row['person']} complained at {when} in “{row['conversation']}”; {row['replier']} "
                            f"first replied at {rn.fmt_local(row['reply_ts'], tz)}, after "
                            f"{_minutes(row['delay_minutes'])} minutes (corroborated by {row['exports']} exports).")
    searched = [f"Keywords: {', '.join(keywords) or '(none)'} (normalized: traditional/simplified, width)",
                "Customers and staff told apart by the org directory; a staff reply counts in the complaint's conversation",
                (f"Complainants: members of the directory groups {', '.join(complainant_groups)}, and senders the "
                 "directory does not know" if complainant_groups else "Complainants: every sender who is not staff")]
    excluded = [f"{internal.height} keyword message(s) sent by staff (internal discussion, not complaints)",
                f"{others.height} keyword message(s) sent by other outside people (not customers, e.g. couriers)"
                + (f" ({', '.join(sorted(set(others['person'].to_list())))})" if others.height else ""),
                f"{messages.height - distinct.height} duplicate copies from other exports (each message counted once)",
                "complaints that use none of the keywords may be missed"]
rn.markdown(rn.reviewer_summary(c, start, end, findings=findings, searched=searched, excluded=excluded, lang=lang))
''',
        scope(["投诉以关键词识别，可能漏掉未使用这些词的投诉 (complaints found by keywords only)",
               "客户与员工按组织目录判定，员工不计为投诉人 (customers and staff from the org directory)",
               "同一消息在多个导出中出现时只计一次，并注明佐证导出数 (a message held by several exports counts once)"]),
        ("md", "## 投诉消息 / Complaint messages"),
        '''\
rn.show_table(complaints.select("ts", "person", "conversation", "text", "exports", "sources"), redact=redact, tz=tz,
              lang=lang, title="投诉 / complaints")
''',
        ("md", "## 处理时长 / Handling delay"),
        '''\
rn.show_table(answers.select("ts", "person", "conversation", "reply_ts", "replier", "delay_minutes"),
              redact=redact, tz=tz, lang=lang, title="员工首次回复 / first staff reply in the complaint's conversation")
summary = pl.DataFrame({
    "complaints": [complaints.height], "answered": [answered.height], "unanswered": [unanswered.height],
    "median_delay_minutes": [answered["delay_minutes"].median() if answered.height else None],
    "max_delay_minutes": [answered["delay_minutes"].max() if answered.height else None]})
rn.show_table(summary, redact=redact, tz=tz, lang=lang, title="汇总 / summary")
if answered.height:
    labels = [f"{row['person']} {rn.fmt_local(row['ts'], tz)[5:16]}" for row in answered.iter_rows(named=True)]
    fig = go.Figure(go.Bar(x=labels, y=answered["delay_minutes"].to_list(), marker_color="#d62728",
                           text=[f"{v:.0f} min" for v in answered["delay_minutes"].to_list()], textposition="outside"))
    fig.update_layout(title="每条投诉的处理时长（分钟）/ handling delay per complaint (minutes)",
                      xaxis_title="complaint", yaxis_title="minutes", height=360)
    rn.show_figure(fig)
''',
        ("md", "## 时间线 / Timeline (staff · customer · courier · system)"),
        '''\
agents = sorted({people_map.accounts.get(p, p) for p in people})
complaint_convs = set(complaints["conversation_id"].to_list())
agent_convs = set(distinct.filter(pl.col("person_id").is_in(agents))["conversation_id"].to_list())
involved = distinct.filter(pl.col("conversation_id").is_in(sorted(complaint_convs | agent_convs)))
role = (pl.when(pl.col("person_id").is_in(sorted(staff))).then(pl.lit("staff"))
        .when(pl.col("person").is_in(customers)).then(pl.lit("customer")).otherwise(pl.lit("other / courier")))
involved = involved.with_columns(role.alias("role"))
# one row per event: a login that auth.log and an events table both hold is one login, corroborated twice
system = people_map.resolve(analysis.dedupe_events(events), sender_id="actor", sender_name="actor",
                            platform=False).with_columns(pl.lit("system").alias("role"))
lanes = pl.concat([
    involved.select("ts", "role", "person", pl.col("msg_type").alias("what"), pl.col("text").alias("summary"),
                    "exports"),
    system.select("ts", "role", "person", pl.col("event_type").alias("what"), pl.col("details").alias("summary"),
                  pl.col("sources").list.len().alias("exports")),
], how="vertical").sort(["ts", "role", "person", "what"])
rn.show_table(lanes, redact=redact, tz=tz, lang=lang, title="时间线 / timeline")
plot = rn.localize(lanes, tz)
fig = go.Figure()
colors = {"staff": "#1f77b4", "customer": "#d62728", "other / courier": "#2ca02c", "system": "#7f7f7f"}
for name in ["staff", "customer", "other / courier", "system"]:
    part = plot.filter(pl.col("role") == name)
    fig.add_trace(go.Scatter(x=part["ts"].to_list(), y=part["person"].to_list(), mode="markers", name=name,
                             marker={"size": 10, "color": colors[name]}, text=part["what"].to_list()))
fig.update_layout(title="角色时间线 / timeline by role", xaxis_title=f"time ({tz})", height=420)
rn.show_figure(fig)
''',
    ],
}

TEMPLATES["internal_investigation"] = {
    "title": "# 内部调查 / Internal investigation\n\n"
             "Lock the window, extract the key fragments between the people concerned, and line them up with "
             "abnormal logins.",
    "parameters": 'keywords = ["回扣", "删", "记录", "kickback"]   # words that mark a key fragment\n'
                  'people = ["liuyang", "chenlei"]                  # the people under investigation\n'
                  'context_messages = 3\n',
    "cells": [
        scope(["关键片段以关键词和人员识别 (fragments found by keywords and people)",
               "异常登录以时间窗内 IP 占比判定，基线较短 (unusual = rare IP within the window only)",
               "时间窗已锁定为授权范围内 (window locked inside the grant)",
               "同一事件在多个导出中出现时只计一次 (an event held by several exports counts once)"]),
        ("md", "## 关键片段 / Key fragments"),
        '''\
tagged = rn.distinct_messages(messages, rn.case_people(c))  # one row per message, people by name
own = analysis.by_participants(tagged, people, identities=identities) if people else tagged
query = " OR ".join(f'"{k}"' for k in keywords)
key_hits = analysis.search(own, query) if keywords else own.head(0)
key_hits = key_hits.sort(["ts", "source", "message_id"])
rn.show_table(key_hits.select("ts", "conversation", "person", "text", "exports", "sources"), redact=redact, tz=tz,
              lang=lang, title="关键消息 / key messages")
fragments = analysis.context(own, key_hits["message_id"].to_list(), before=context_messages, after=context_messages)
rn.show_table(fragments.select("snippet", "ts", "conversation", "person", "is_hit", "msg_type", "text"),
              redact=redact, tz=tz, lang=lang, title="上下文 / context")
''',
        ("md", "## 异常登录 / Abnormal logins"),
        '''\
# one row per login: auth.log and an events table holding the same login count it once (exports: both)
distinct_events = analysis.dedupe_events(events).with_columns(pl.col("sources").list.len().alias("exports"))
logins = analysis.unusual_logins(distinct_events).sort(["ts", "event_id"]) if events.height else events
if logins.height:
    shown = rn.case_people(c).resolve(logins, sender_id="actor", sender_name="actor", platform=False)
    shown = shown.sort(["unusual", "ts", "event_id"], descending=[True, False, False])  # flagged first: tables are cut
    rn.show_table(shown.select("ts", "person", "actor", "host", "ip", "outcome", "ip_share", "unusual", "exports"),
                  redact=redact, tz=tz, lang=lang, title="登录 / logins")
    aligned = analysis.align_events(own, logins.filter(pl.col("unusual")), same_actor=True, identities=identities,
                                    tz=tz).sort(["event_ts", "event_id"])
    rn.show_table(aligned.select("event_ts", "actor", "host", "ip", "message_ts", "sender", "delta_minutes"),
                  redact=redact, tz=tz, lang=lang, title="登录与消息对齐 / logins lined up with messages")
else:
    rn.markdown("- no login events in the window")
''',
        '''\
plot_m = rn.localize(key_hits, tz)
fig = go.Figure()
fig.add_trace(go.Scatter(x=plot_m["ts"].to_list(), y=plot_m["person"].to_list(), mode="markers",
                         name="key messages", marker={"size": 9, "color": "#1f77b4"}))
if logins.height:
    plot_l = rn.localize(logins, tz)
    fig.add_trace(go.Scatter(x=plot_l["ts"].to_list(), y=plot_l["actor"].to_list(), mode="markers", name="logins",
                             marker={"size": 12, "symbol": "x",
                                     "color": ["#d62728" if u else "#7f7f7f" for u in plot_l["unusual"].to_list()]}))
fig.update_layout(title="关键消息与登录 / key messages and logins", xaxis_title=f"time ({tz})", height=400)
rn.show_figure(fig)
''',
    ],
}

TEMPLATES["keyword_sweep"] = {
    "title": "# 关键词排查 / Keyword sweep\n\n"
             "Hit counts by person, conversation and day, with the context of each hit. With `saved_search` "
             "the hits are those of a search saved in the case (its query, mode, filters and range).",
    "parameters": 'keywords = ["投诉", "退款", "加班费", "refund"]\n'
                  'people = []          # restrict to these senders; empty means everyone\n'
                  'mode = "exact"       # exact, word or fuzzy\n'
                  'context_messages = 2\n'
                  'saved_search = ""    # name of a saved search of the case; replaces keywords, people and mode\n',
    "cells": [
        scope(["只统计关键词命中，不判断语义 (keyword hits, no semantics)",
               "命中按规范化文本判断：繁简、全半角、大小写、空格、标点与不可见字符不影响命中 (matched on normalized "
               "text: traditional/simplified, width, case, spaces, separators and invisible characters do not matter)",
               "同一消息在多个导出中出现时只计一次 (a message held by several exports counts once)"]),
        ("md", "## 命中统计 / Hit counts"),
        '''\
tagged = rn.distinct_messages(messages, rn.case_people(c))  # one row per message, people by name
rows = []
if saved_search:  # the saved parameters, run over the report's distinct messages (audited search.run)
    from investigator.widgets.saved import SavedSearches
    saved, found = SavedSearches(c).run(saved_search, tagged, tz=tz, identities=identities, groups=c.groups())
    rows.append(found.with_columns(pl.lit(saved_search).alias("keyword")))
    shown = {k: v for k, v in saved.items() if v not in ("", [], None)}
    rn.markdown((f"保存的搜索 **{saved_search}**: " if zh else f"Saved search **{saved_search}**: ")
                + "; ".join(f"{k} = `{v}`" for k, v in shown.items()))
else:
    pool = analysis.by_senders(tagged, people, identities=identities) if people else tagged
    for keyword in keywords:
        found = analysis.search(pool, f'"{keyword}"', mode=mode)
        rows.append(found.with_columns(pl.lit(keyword).alias("keyword")))
    # what was searched, a term without hits included: a reader must see what was looked for, not only what was found
    senders = ", ".join(f"`{p}`" for p in people) if people else ("全部" if zh else "everyone")
    rn.markdown(f"检索：时间窗内 {tagged.height} 条不同的消息，发送人 {senders}（{pool.height} 条），匹配方式 `{mode}`" if zh
                else f"Searched: {tagged.height} distinct messages in the window, senders {senders} ({pool.height}), "
                     f"mode `{mode}`")
    rn.show_table(pl.DataFrame({"keyword": list(keywords), "hits": [r.height for r in rows]},
                               schema={"keyword": pl.String, "hits": pl.Int64}),
                  redact=redact, tz=tz, lang=lang, title="检索词 / terms searched", rows=max(len(keywords), 1))
hits = (pl.concat(rows, how="diagonal_relaxed") if rows else pool.head(0).with_columns(pl.lit("").alias("keyword")))
hits = hits.with_columns(pl.col("ts").dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d").alias("day"))
hits = hits.sort(["ts", "source", "message_id", "keyword"])
rn.markdown((f"{hits.height} 次命中，{hits['record_hash'].n_unique()} 条不同的消息（多导出佐证已合并）" if zh else
             f"{hits.height} hits on {hits['record_hash'].n_unique()} distinct messages (copies from several "
             "exports merged)") if hits.height else ("无命中" if zh else "no hits"))
for by in (["keyword", "person"], ["keyword", "conversation"], ["keyword", "day"]):
    counts = hits.group_by(by).agg(pl.len().alias("hits"))
    # most hits first, except days, which read in date order
    counts = (counts.sort(["day", "keyword"]) if "day" in by else
              counts.sort(["hits", *by], descending=[True] + [False] * len(by)))
    rn.show_table(counts, redact=redact, tz=tz, lang=lang, title="命中 / hits by " + " × ".join(by))
''',
        '''\
if hits.height:
    per = hits.group_by(["day", "keyword"]).agg(pl.len().alias("hits")).sort(["day", "keyword"])
    fig = go.Figure()
    for keyword in sorted(set(per["keyword"].to_list())):
        part = per.filter(pl.col("keyword") == keyword)
        fig.add_trace(go.Bar(x=part["day"].to_list(), y=part["hits"].to_list(), name=keyword))
    fig.update_layout(barmode="stack", title="每日命中 / hits per day", height=360)
    rn.show_figure(fig)
''',
        ("md", "## 命中上下文 / Context of each hit"),
        '''\
ids = list(dict.fromkeys(hits["message_id"].to_list()))
ctx = analysis.context(tagged, ids, before=context_messages, after=context_messages)
rn.show_table(ctx.select("snippet", "ts", "conversation", "person", "is_hit", "msg_type", "text", "exports"),
              redact=redact, tz=tz, lang=lang, title="上下文 / context", rows=200)
''',
    ],
}

TEMPLATES["timeline_reconstruction"] = {
    "title": "# 时间线重建 / Timeline reconstruction\n\n"
             "Messages and events of the window on one time axis, by person, with activity and silences.",
    "parameters": 'keywords = []        # optional, mark messages with these words\n'
                  'people = []          # restrict to these participants; empty means everyone\n'
                  'silence_minutes = 30\n',
    "cells": [
        scope(["时间以归档时区显示 (times in the archive's zone)",
               "事件来自导入的系统日志 (events as imported from system logs)",
               "同一消息或事件在多个导出中出现时只计一次 (a message or event held by several exports counts once)"]),
        ("md", "## 合并时间线 / Merged timeline"),
        '''\
tagged = rn.distinct_messages(messages, rn.case_people(c))  # one row per message, people by name
pool = analysis.by_participants(tagged, people, identities=identities) if people else tagged
distinct_events = analysis.dedupe_events(events)  # an event several exports hold is one event
ev = distinct_events.filter(pl.col("actor").is_in(sorted(analysis.filters.expand_people(people, identities)))) \\
    if people else distinct_events
people_map = rn.case_people(c)
# people and conversations by name: lanes are people, not accounts
named_m = pool.with_columns(pl.col("person").alias("sender_name"), pl.col("conversation").alias("conversation_id"))
named_e = people_map.resolve(ev, sender_id="actor", sender_name="actor", platform=False).with_columns(
    pl.col("person").alias("actor"))
line = analysis.timeline(named_m, named_e, tz=tz).drop("ts_local").rename(
    {"lane": "person", "conversation_id": "conversation"})
if keywords:
    marked = analysis.search(pool, " OR ".join(f'"{k}"' for k in keywords))["message_id"].to_list()
    line = line.with_columns(pl.col("item_id").is_in(marked).alias("keyword_hit"))
line = line.sort(["ts", "kind", "item_id", "person"])
rn.show_table(line.drop("item_id"), redact=redact, tz=tz, lang=lang, title="时间线 / timeline", rows=200)
''',
        '''\
per_hour = (line.with_columns(pl.col("ts").dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:00").alias("hour"))
            .group_by(["hour", "kind"]).agg(pl.len().alias("count")).sort(["hour", "kind"]))
fig = go.Figure()
for kind in ["message", "event"]:
    part = per_hour.filter(pl.col("kind") == kind)
    fig.add_trace(go.Bar(x=part["hour"].to_list(), y=part["count"].to_list(), name=kind))
fig.update_layout(barmode="stack", title="每小时活动 / activity per hour", height=360)
rn.show_figure(fig)
''',
        ("md", "## 沉默时段 / Silences"),
        '''\
from datetime import timedelta
gaps = analysis.silences(pool, timedelta(minutes=silence_minutes), tz=tz).sort(["start", "conversation_id"])
names = pool.group_by("conversation_id").agg(pl.col("conversation").first())
gaps = gaps.join(names, on="conversation_id", how="left", maintain_order="left")
rn.show_table(gaps.select("conversation", "start", "end", "minutes"), redact=redact, tz=tz, lang=lang,
              title=f"超过 {silence_minutes} 分钟的沉默 / silences over {silence_minutes} minutes")
''',
    ],
}

TEMPLATES["audit_review"] = {
    "title": "# 审计复核 / Audit review\n\n"
             "What was done under the grant: case openings, key releases, refusals, reports and exports, "
             "and whether the audit chain is intact. Reads the audit log only (no message content).",
    "parameters": 'keywords = []        # unused, kept for a uniform command line\n'
                  'people = []          # restrict to these actors; empty means everyone\n'
                  'until = 0            # last audit entry read; 0 means the head now; report run fixes it\n',
    "cells": [
        '''\
from investigator.reports import audit_view
r = audit_view.case_audit(archive, grant=grant, people=people, until=until)
tz = r.timezone
limits = ["只读取审计日志，不含消息内容 (audit log only, no content)",
          "审计链校验到最后一个签名检查点 (chain verified up to the last signed checkpoint)"]
rn.markdown(audit_view.scope_statement(r, lang=lang, limits=limits))
''',
        ("md", "## 审计链 / Audit chain"),
        '''\
rn.show_table(r.chain, redact=redact, tz=tz, lang=lang, title="校验 / verification")
''',
        ("md", "## 操作汇总 / Actions"),
        '''\
rn.show_table(r.by_action, redact=redact, tz=tz, lang=lang, title="按操作 / by action and outcome")
rn.show_table(r.entries.filter(pl.col("outcome") == "denied").select("seq", "ts", "actor", "action", "rule", "reason"),
              redact=redact, tz=tz, lang=lang, title="拒绝 / refusals")
rn.show_table(r.other_refusals.select("seq", "ts", "actor", "action", "target", "rule", "reason"), redact=redact, tz=tz,
              lang=lang, title="本授权人员的其他拒绝（未知授权）/ other refusals of this grant's people (unknown grants)")
rn.show_table(r.entries.select("seq", "ts", "actor", "action", "outcome", "rule"), redact=redact, tz=tz, lang=lang,
              title="条目 / entries", rows=200)
''',
        '''\
if r.entries.height:
    per = r.by_action
    fig = go.Figure()
    for outcome in sorted(set(per["outcome"].to_list())):
        part = per.filter(pl.col("outcome") == outcome)
        fig.add_trace(go.Bar(x=part["action"].to_list(), y=part["entries"].to_list(), name=outcome))
    fig.update_layout(barmode="stack", title="审计条目 / audit entries", height=360)
    rn.show_figure(fig)
''',
    ],
    "open": '''\
import polars as pl
import plotly.graph_objects as go
from investigator.reports import notebook as rn

rn.setup(seed=seed)
zh = not lang.lower().startswith("en")
''',
    "provenance": '''\
rn.record_provenance(None, extra=r.provenance())
''',
}


TEMPLATES["doctor"] = {
    "title": "# 季度安全检测 / Quarterly security check\n\n"
             "每季度开展系统安全检测: the archive and its backup targets verified, key ages and the rotation due "
             "date, retention and legal holds, backup freshness per tier, and access anomalies in the audit log. "
             "Run by an auditor without a grant: metadata and counts only, no message content.",
    "parameters": 'targets = []         # backup targets to check: folders or s3:// URLs (investigator doctor --target)\n'
                  'sample = 100.0       # percent of the objects of each target read and hashed; 100 means all\n'
                  'at = ""              # time of the check (UTC); empty means now; the run fixes it\n'
                  'until = 0            # last audit entry read; 0 means the head now; the run fixes it\n'
                  'period_days = 92     # how far back the access checks look (a quarter)\n'
                  'thresholds = {}      # anomaly thresholds overriding the defaults (analysis.anomalies.Thresholds)\n',
    "cells": [
        '''\
from investigator.analysis import anomalies
from investigator.backup import doctor
d = doctor.examine(archive, targets=targets, sample=sample, at=at, until=until, period_days=period_days)
tz = d.timezone
limits = anomalies.Thresholds.from_mapping(thresholds)
found = anomalies.find_anomalies(anomalies.audit_frame(d.audit_entries), tz=tz, thresholds=limits, since=d.since,
                                 until=d.at)
d.add_anomalies(found, anomalies.summary(found), limits.to_json())
rn.markdown(d.scope_statement(lang=lang))
''',
        ("md", "## 发现 / Findings"),
        '''\
if d.findings.height:
    rn.show_table(d.findings, redact=False, tz=tz, lang=lang, title="需要处理 / to act on", rows=200)
else:
    rn.markdown("**未发现问题 / No findings.**")
for note in d.notes:
    rn.markdown(f"- {note}")
''',
        ("md", "## 完整性 / Integrity"),
        '''\
rn.show_table(d.integrity, redact=False, tz=tz, lang=lang, title="归档与备份校验 / archive and backup verification")
''',
        ("md", "## 密钥 / Keys"),
        '''\
rn.show_table(d.key_summary, redact=False, tz=tz, lang=lang, title="主密钥轮换 / master-key rotation")
rn.show_table(d.keys, redact=False, tz=tz, lang=lang, title="主密钥版本 / master-key versions")
''',
        ("md", "## 保留与保全 / Retention and legal holds"),
        '''\
rn.show_table(d.retention, redact=False, tz=tz, lang=lang, title="保留与法律保全 / retention and legal holds")
''',
        ("md", "## 备份 / Backups"),
        '''\
rn.show_table(d.backups, redact=False, tz=tz, lang=lang, title="各级备份的最新快照 / newest snapshot per tier")
''',
        ("md", "## 访问异常 / Access anomalies"),
        '''\
rn.show_table(d.anomaly_summary, redact=False, tz=tz, lang=lang, title="按类型 / by kind")
rn.show_table(d.anomalies.select("kind", "actor", "first", "last", "count", "detail"), redact=False, tz=tz,
              lang=lang, title="异常 / anomalies", rows=200)
''',
    ],
    "open": '''\
from investigator.reports import notebook as rn

rn.setup(seed=seed)
''',
    "provenance": '''\
rn.record_provenance(None, extra=d.provenance())
''',
}

def build(name: str, spec: dict) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["investigator"] = {"template": name}
    cells = [new_markdown_cell(spec["title"])]
    params = new_code_cell(COMMON_PARAMETERS + spec["parameters"])
    params.metadata["tags"] = ["parameters"]
    cells.append(params)
    cells.append(new_code_cell(spec.get("open", OPEN_CASE)))
    for item in spec["cells"]:
        if isinstance(item, tuple):
            cells.append(new_markdown_cell(item[1]))
        else:
            cells.append(new_code_cell(item))
    cells.append(new_markdown_cell("## 数据来源 / Provenance\n\nThe chunks and Merkle roots this report read "
                                   "(the seal copies them into the signed provenance)."))
    cells.append(new_code_cell(spec.get("provenance", PROVENANCE)))
    # stable cell ids: a template's hash must not change when it is rebuilt
    for i, cell in enumerate(cells):
        cell["id"] = f"{name[:20]}-{i:02d}"
    nb.cells = cells
    return nb


def main() -> None:
    for name, spec in TEMPLATES.items():
        nbformat.write(build(name, spec), HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
