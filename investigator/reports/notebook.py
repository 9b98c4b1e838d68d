"""Helpers that report templates call inside the kernel: open, show, redact, record provenance.

    >>> from investigator.reports import notebook as rn
    >>> rn.setup(seed=0)                                                      # doctest: +SKIP
    >>> case = rn.open_report_case(archive, grant=grant, person=person)        # doctest: +SKIP
    >>> rn.show_table(case.messages().head(5), redact=True, tz=case.timezone)  # doctest: +SKIP
    >>> rn.record_provenance(case, frames={"messages": messages})             # doctest: +SKIP

Everything shown is deterministic (sorted rows, times in the archive's zone,
fixed figure ids, no wall-clock values), so re-running a report under the same
grant gives the same content digest (docs/reviewer.md, "Reproduce"). The
identity never enters the notebook. In key-server mode ``investigator report run
--keyserver URL`` gives the kernel only ``$INVESTIGATOR_KEYSERVER`` and a process ticket
in ``$INVESTIGATOR_PROCESS_TICKET``; otherwise the session comes from
``$INVESTIGATOR_SESSION`` (set by ``investigator report run``) unless passed in,
and the archive passphrase from ``$INVESTIGATOR_PASSPHRASE``.
"""

from __future__ import annotations

import html
import json
import logging
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from investigator.access.case import open_case
from investigator.analysis.dedupe import RECORD_HASHES, SOURCES, dedupe
from investigator.analysis.filters import to_utc
from investigator.analysis.people import People, conversation_label
from investigator.analysis.normalize import normalize_text
from investigator.analysis.pii import mask_text
from investigator.authority.grants import Grant
from investigator.settings import PROCESS_TICKET_ENV, Settings
from investigator.errors import InvestigatorError, ReportError

PROVENANCE_MIME = "application/vnd.investigator.provenance+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Columns whose values are personal data in a report unless redact=False.
REDACT_TEXT_COLUMNS = ("text", "summary", "details", "context", "snippet_text")
REDACT_VALUE_COLUMNS = {"ip": "[IP]"}
TABLE_ROWS = 60
_FIGURES = {"count": 0}


def setup(*, seed: int = 0) -> None:
    """Fixed seeds, quiet libraries (jieba prints timings), wide stable tables."""
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy comes with plotly's stack
        pass
    try:
        import jieba

        jieba.setLogLevel(logging.WARNING)
    except ImportError:  # pragma: no cover
        pass
    _FIGURES["count"] = 0
    pl.Config.set_tbl_rows(TABLE_ROWS)
    pl.Config.set_tbl_cols(-1)
    pl.Config.set_fmt_str_lengths(120)
    pl.Config.set_tbl_hide_dataframe_shape(False)


def open_report_case(archive: str, *, grant: str, person: str, session: str | None = None) -> Any:
    """Open the report's case: from the kernel's process ticket, else with a session.

    This is the report kernel's edge. In key-server mode (``investigator report run
    --keyserver URL``) the kernel's environment holds a process ticket
    ($INVESTIGATOR_PROCESS_TICKET) and the key server's URL ($INVESTIGATOR_KEYSERVER): the
    case is opened from them alone, and the ticket's grant and person must be the report's
    ``grant`` and ``person`` (ReportError otherwise). Else the session (parameter, else
    $INVESTIGATOR_SESSION) opens it with the embedded key service. Secrets come in the
    environment, never as parameters (parameters are recorded in the sealed notebook).
    $INVESTIGATOR_REPORT_ARCHIVE (set by ``report run`` and ``report reproduce``) names the archive to
    open instead of the ``archive`` parameter, so reproducing a moved or copied archive reads
    the copy (the case's archive id is checked by the seal either way).
    Raises ReportError when no grant, operator or session is given; otherwise whatever
    :func:`investigator.open_case` raises.
    """
    settings = Settings.from_environ(os.environ)
    if settings.report_archive is not None:
        # the runner's --archive: where the archive is now, which may not be where the report recorded it
        archive = str(settings.report_archive)
    if not (archive and grant and person):
        raise ReportError("a report needs the parameters archive, grant and person",
                          hint="run it with 'investigator report run TEMPLATE --archive A --grant G --as ID ...'")
    if settings.process_ticket:
        case = open_case(archive, process_ticket=settings.process_ticket, keyserver=settings.keyserver)
        if case.person != person or not _same_grant(case.grant, grant):
            raise ReportError(f"the kernel's process ticket is for grant {case.grant.id} and person {case.person}, "
                              f"not the report's grant {grant} and person {person}",
                              hint=f"run the report with the grant and operator of the ticket, or unset "
                                   f"{PROCESS_TICKET_ENV}")
        return case
    token = session or settings.session
    if not token:
        raise ReportError("no session for the report's operator",
                          hint="'investigator report run' logs in for you; with plain papermill set "
                               "INVESTIGATOR_SESSION from 'investigator login'")
    return open_case(archive, grant=grant, person=person, session=token)


def _same_grant(granted: Any, grant: str) -> bool:
    """Whether the report's ``grant`` parameter (a grant id or a grant file) names the grant ``granted``."""
    if str(grant) == granted.id:
        return True
    path = Path(str(grant))
    if not path.is_file():
        return False
    try:
        other = Grant.from_file(path)
    except (InvestigatorError, OSError, ValueError):
        return False
    return bool(other.id == granted.id and other.hash == granted.hash)


def report_window(case: Any, window: Sequence[str] | None) -> tuple[datetime, datetime]:
    """The report's window: ``window`` (two local times in the archive's zone) or the grant's.

    Raises ReportError when the window is not inside the grant's window (a refusal: audited as
    ``report.window``, denied).
    """
    start, end = case.window
    if window:
        if len(window) != 2:
            raise ReportError("window must be two times: [start, end]")
        lo, hi = (to_utc(str(w), case.timezone) for w in window)
        if lo < start or hi > end or lo >= hi:
            case.archive.audit.append(case.person, "report.window", case.grant.id,
                                      {"rule": "grant.window", "reason": "the report window is not inside the grant's",
                                       "window": [str(w) for w in window]}, outcome="denied")
            raise ReportError("the report window must lie inside the grant's window",
                              hint=f"the grant covers {fmt_local(start, case.timezone)} .. "
                                   f"{fmt_local(end, case.timezone)}")
        start, end = lo, hi
    return start, end


def in_window(frame: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    return frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))


def fmt_local(value: datetime | None, tz: str) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` in ``tz`` (the archive's zone)."""
    if value is None:
        return ""
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def localize(frame: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Datetime columns as text in ``tz`` (fixed width), so tables never show UTC or offsets."""
    out = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            out.append(pl.col(name).dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M:%S").alias(name))
        elif isinstance(dtype, pl.Duration):
            out.append((pl.col(name).dt.total_seconds() / 60).round(1).alias(name))
    return frame.with_columns(out) if out else frame


def redact_frame(frame: pl.DataFrame, redact: bool = True) -> pl.DataFrame:
    """Personal data masked in text-like columns and IP addresses (a no-op when ``redact`` is False)."""
    if not redact:
        return frame
    exprs = []
    for name in frame.columns:
        if name in REDACT_TEXT_COLUMNS and frame.schema[name] == pl.String:
            exprs.append(pl.col(name).map_elements(mask_text, return_dtype=pl.String).alias(name))
        elif name in REDACT_VALUE_COLUMNS:
            exprs.append(pl.when(pl.col(name).is_null()).then(None).otherwise(pl.lit(REDACT_VALUE_COLUMNS[name]))
                         .alias(name))
    return frame.with_columns(exprs) if exprs else frame


#: Column headings of report tables (Chinese / English); other columns keep their names.
LABELS: dict[str, tuple[str, str]] = {
    "ts": ("时间", "time"), "reply_ts": ("回复时间", "reply time"), "start": ("开始", "start"), "end": ("结束", "end"),
    "event_ts": ("事件时间", "event time"), "message_ts": ("消息时间", "message time"),
    "person": ("人员", "person"), "customer": ("客户", "customer"), "replier": ("回复人", "replied by"),
    "sender": ("发送人", "sender"), "actor": ("账号", "account"), "conversation": ("会话", "conversation"),
    "text": ("内容", "text"), "summary": ("摘要", "summary"), "role": ("角色", "role"), "what": ("类型", "kind"),
    "source": ("来源", "source"), "exports": ("佐证导出数", "corroborating exports"), "copies": ("副本", "copies"),
    "sources": ("来源导出", "exports"), "delay_minutes": ("处理时长（分钟）", "delay (minutes)"),
    "keyword": ("关键词", "keyword"), "hits": ("命中", "hits"), "day": ("日期", "day"), "minutes": ("分钟", "minutes"),
    "is_hit": ("命中", "hit"), "snippet": ("片段", "fragment"), "msg_type": ("类型", "type"),
    "complaints": ("投诉数", "complaints"), "answered": ("已回复", "answered"), "unanswered": ("未回复", "unanswered"),
    "median_delay_minutes": ("处理时长中位数（分钟）", "median delay (minutes)"),
    "max_delay_minutes": ("最长处理时长（分钟）", "longest delay (minutes)"),
    "host": ("主机", "host"), "ip": ("IP", "IP"), "outcome": ("结果", "outcome"),
    "ip_share": ("该 IP 占其登录比例", "share of their logins from this IP"), "unusual": ("异常", "unusual"),
    "delta_minutes": ("相隔（分钟）", "apart (minutes)"),
}


def _zone_suffix(tz: str, frame: pl.DataFrame, column: str) -> str:
    """`` (Asia/Shanghai, UTC+08:00)``: the zone and its offset at the column's first time."""
    from zoneinfo import ZoneInfo

    first = frame[column].drop_nulls().head(1).to_list()
    offset = ""
    if first:
        delta = first[0].astimezone(ZoneInfo(tz)).utcoffset()
        if delta is not None:
            minutes = int(delta.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            offset = f", UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f" ({tz}{offset})"


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, float):
        return f"{value:.1f}" if value != int(value) else f"{int(value)}"
    if isinstance(value, dict):
        return ": ".join(str(v) for v in value.values() if v not in (None, ""))
    if isinstance(value, (list, tuple)):
        return "; ".join(_cell_text(v) for v in value)
    return str(value)


def table_html(frame: pl.DataFrame, *, tz: str, lang: str = "zh", rows: int = TABLE_ROWS) -> str:
    """``frame`` as a plain HTML table for a reader: headings by name, local times with the zone, no dtypes.

    Datetime columns show ``YYYY-MM-DD HH:MM:SS`` in ``tz`` (the heading names the zone and its
    UTC offset), durations minutes, lists joined with "; ", nulls as empty cells. Raises nothing.
    """
    zh = not lang.lower().startswith("en")
    heads = []
    for name, dtype in frame.schema.items():
        label = LABELS.get(name, (name, name))[0 if zh else 1]
        if isinstance(dtype, pl.Datetime):
            label += _zone_suffix(tz, frame, name)
        heads.append(f"<th>{html.escape(label)}</th>")
    body = []
    for row in localize(frame.head(rows), tz).iter_rows():
        body.append("<tr>" + "".join(f"<td>{html.escape(_cell_text(v))}</td>" for v in row) + "</tr>")
    return ('<table class="investigator-table" style="border-collapse:collapse;font-size:13px">'
            f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def show_table(frame: pl.DataFrame, *, redact: bool = True, tz: str = "Asia/Shanghai", title: str = "",
               sort: Sequence[str] | None = None, rows: int = TABLE_ROWS, lang: str = "zh") -> None:
    """Display ``frame`` as a formatted HTML table (sorted, local times with zone, redacted, no dtype rows).

    The plain-text form (terminals, ``report verify`` diffs) is a tab-separated copy of the same cells.
    """
    from IPython.display import display

    shown = frame
    if sort:
        shown = shown.sort(list(sort), nulls_last=True)
    shown = redact_frame(shown, redact)
    shown = shown.select([c for c in shown.columns if not c.startswith("__")])
    zh = not lang.lower().startswith("en")
    more = (f"，仅显示前 {rows} 行" if zh else f", first {rows} shown") if frame.height > rows else ""
    caption = f"{title} ({frame.height} {'行' if zh else 'rows'}{more})" if title else ""
    plain_rows = ["\t".join(shown.columns)] + ["\t".join(_cell_text(v) for v in r)
                                                for r in localize(shown.head(rows), tz).iter_rows()]
    page = (f"<p><b>{html.escape(caption)}</b></p>" if caption else "") + table_html(shown, tz=tz, lang=lang,
                                                                                     rows=rows)
    if not shown.height:
        page += f"<p><i>{'（无）' if zh else '(none)'}</i></p>"
    display({"text/html": page, "text/plain": (caption + "\n" if caption else "") + "\n".join(plain_rows)},
            raw=True)


def show_figure(fig: Any) -> None:
    """Display a plotly figure: plotly's own mime (JupyterLab) plus offline HTML (nbconvert).

    The HTML uses a fixed element id and no plotly.js: the HTML export adds
    plotly.js once (investigator.reports.html), so the report renders with no network.
    """
    from IPython.display import display

    _FIGURES["count"] += 1
    div_id = f"investigator-figure-{_FIGURES['count']}"
    fig_json = json.loads(fig.to_json())
    html_text = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                            config={"displaylogo": False, "responsive": True})
    display({PLOTLY_MIME: fig_json, "text/html": html_text,
             "text/plain": f"<figure {div_id}: {html.escape(str(fig.layout.title.text or ''))}>"}, raw=True)


def markdown(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def scope_statement(case: Any, start: datetime, end: datetime, *, redact: bool, lang: str = "zh",
                    limits: Iterable[str] = ()) -> str:
    """The report's scope and limits, as Markdown (grant, window, scope, fields, redaction)."""
    zh = not lang.lower().startswith("en")
    names = {"conversations": ("会话", "conversations"), "participants": ("参与人", "participants"),
             "groups": ("群组", "groups")}
    # the grant's scope in words: "the whole window" read as the report's window, which a report may narrow
    scope = "; ".join(f"{names.get(k, (k, k))[0 if zh else 1]} {', '.join(map(str, v))}"
                      for k, v in case.scope.items() if v) or (
        "不限会话、参与人或群组" if zh else "no restriction by conversation, participant or group")
    lines = [
        ("## 范围与限制" if zh else "## Scope and limits"),
        "",
        f"- {'授权' if zh else 'Grant'}: `{case.grant.id}` ({'案件' if zh else 'case'} `{case.grant.case}`, "
        f"{'目的' if zh else 'purpose'} `{case.grant.purpose}`)",
        f"- {'调取人' if zh else 'Operator'}: `{case.person}`",
        f"- {'报告时间窗' if zh else 'Report window'}: {fmt_local(start, case.timezone)} .. "
        f"{fmt_local(end, case.timezone)} ({case.timezone}), "
        f"{'授权时间窗' if zh else 'grant window'} {fmt_local(case.start, case.timezone)} .. "
        f"{fmt_local(case.end, case.timezone)}",
        f"- {'范围' if zh else 'Scope'}: {scope}; {'字段' if zh else 'fields'}: {', '.join(case.fields)}",
        f"- {'个人信息' if zh else 'Personal data'}: "
        + (("已脱敏（手机号、身份证号、银行卡号、邮箱、IP）" if zh else "masked (phone, ID, card, e-mail, IP numbers)")
           if redact else ("未脱敏 — 导出前须经法律顾问放行" if zh else "NOT masked — export needs a legal release")),
        f"- {'限制' if zh else 'Limits'}: " + ("; ".join(limits) or "-"),
        f"- {'本报告只读取授权时间窗内的记录；原始记录未被修改。' if zh else 'Only records inside the granted window were read; originals are unchanged.'}",
    ]
    return "\n".join(lines)


def record_provenance(case: Any, *, frames: Mapping[str, pl.DataFrame] | None = None,
                      extra: Mapping[str, Any] | None = None) -> None:
    """Display what the report read (chunks, Merkle roots, counts) for the sealer.

    Shown as a JSON output of type ``application/vnd.investigator.provenance+json``
    (the sealer copies it into the signed provenance; ``report verify --archive``
    checks the roots against the archive's signed manifests).
    """
    from IPython.display import display

    info = case.info() if case is not None else {}
    sources = case.sources() if case is not None else {"chunks": [], "merkle_roots": {}}
    record = {
        "format": "investigator-report-provenance/1",
        "archive_id": case.archive.archive_id if case is not None else "",
        "grant_id": info.get("grant_id", ""),
        "window": info.get("window", {}),
        "rows": {"messages": info.get("messages", 0), "events": info.get("events", 0),
                 **{f"shown.{k}": int(v.height) for k, v in sorted((frames or {}).items())}},
        "chunks": sources["chunks"],
        "merkle_roots": sources["merkle_roots"],
        **dict(extra or {}),
    }
    # records, not messages: the report's own counts are of distinct messages (a message in 8 exports is 8 records)
    words = {"messages": "message records (one per export's copy)", "events": "event records"}
    counts = ", ".join(f"{v} {words.get(k, k)}" for k, v in record["rows"].items() if not k.startswith("shown."))
    summary = (f"provenance: {len(record['chunks'])} chunks in {len(record['merkle_roots'])} batches; "
               f"{counts or 'no rows'} in the grant window")
    display({PROVENANCE_MIME: record, "text/plain": summary}, raw=True)


def with_person(frame: pl.DataFrame, identities: Mapping[str, Iterable[str]], *, out: str = "person",
                columns: Sequence[str] = ("sender_id", "sender_name")) -> pl.DataFrame:
    """Add ``out``: the directory person behind each row's account (sender id or name), else the raw value."""
    lookup = {normalize_text(a): p for p, accounts in identities.items() for a in [p, *accounts]}
    present = [c for c in columns if c in frame.columns]
    if not present:
        return frame.with_columns(pl.lit(None, pl.String).alias(out))

    def resolve(row: dict[str, Any]) -> str | None:
        for col in present:
            value = row.get(col)
            if value is not None and normalize_text(str(value)) in lookup:
                return lookup[normalize_text(str(value))]
        first = row.get(present[0])
        return None if first is None else str(first)

    values = [resolve(r) for r in frame.select(present).iter_rows(named=True)]
    return frame.with_columns(pl.Series(out, values, dtype=pl.String))


# --- people, distinct messages, the reviewer's summary --------------------------------------------------------


def case_people(case: Any) -> People:
    """The case's people: its directory's linked identities and names, resolved once (analysis reads no directory)."""
    directory = case.directory()
    return People.from_identities(case.identities(), names={p.id: p.name for p in directory.people})


def staff_ids(case: Any) -> set[str]:
    """Person ids of the organisation's own staff: directory people with a department other than ``external``.

    Customers and couriers are ``external`` in the directory; accounts the directory does not know
    are not staff either, so an unknown sender can be a complainant but never a responder.
    """
    return {p.id for p in case.directory().people if p.department and p.department != "external"}


def outside_ids(case: Any, customer_groups: Iterable[str]) -> set[str]:
    """Person ids of the directory's outside people (not staff) in none of ``customer_groups``: couriers, suppliers.

    A courier writing "the customer will complain" is no complainant. Senders the directory does not
    know are in no group and are not returned (an unknown sender can still be a customer); with no
    ``customer_groups`` nobody is returned (every sender who is not staff counts).
    """
    groups = set(customer_groups)
    if not groups:
        return set()
    return {p.id for p in case.directory().people
            if (not p.department or p.department == "external") and not groups & set(p.groups)}


def distinct_messages(messages: pl.DataFrame, people: People) -> pl.DataFrame:
    """Messages merged across exports (:func:`investigator.analysis.dedupe`) with people and conversation names.

    Adds ``person_id``/``person`` (the sender), ``conversation`` (its name where one exists) and
    ``exports`` (how many exports hold the message: its corroboration).
    """
    distinct = people.resolve(dedupe(messages, identities=people))
    named = _copy_conversation_names(distinct, messages)
    # a conversation without a name of its own (a WeCom direct chat) takes the name its messages' copies show
    return distinct.join(named, on="record_hash", how="left", maintain_order="left").with_columns(
        pl.coalesce(pl.col("__copy_name"), pl.col("__copy_name").drop_nulls().first().over("conversation_id"),
                    conversation_label(distinct)).alias("conversation"),
        pl.col(SOURCES).list.len().alias("exports")).drop("__copy_name")


def _copy_conversation_names(distinct: pl.DataFrame, messages: pl.DataFrame) -> pl.DataFrame:
    """Per distinct message, the conversation name of its most authoritative copy that has one.

    A WeCom archive row names no conversation for a direct chat; the same message's Slack or
    WeChat copy does, so the report shows that name instead of the WeCom id.
    """
    if "conversation_name" not in messages.columns or "record_hash" not in messages.columns:
        return pl.DataFrame(schema={"record_hash": pl.String, "__copy_name": pl.String})
    names = messages.select("record_hash", pl.col("conversation_name").alias("__copy_name")).filter(
        pl.col("__copy_name").str.strip_chars() != "")
    copies = distinct.select("record_hash", pl.col(RECORD_HASHES).alias("__copy")).explode("__copy")
    return (copies.join(names, left_on="__copy", right_on="record_hash", how="inner", maintain_order="left")
            .group_by("record_hash", maintain_order=True).agg(pl.col("__copy_name").first()))


def reviewer_summary(case: Any, start: datetime, end: datetime, *, findings: Sequence[str],
                     searched: Sequence[str], excluded: Sequence[str], lang: str = "zh") -> str:
    """The reviewer's summary at the top of a report, as Markdown: case, grant, window, findings, search, exclusions.

    ``findings`` are whole sentences; ``searched`` what was looked for; ``excluded`` what was left
    out and why. Raises nothing.
    """
    zh = not lang.lower().startswith("en")
    tz = case.timezone
    window = f"{fmt_local(start, tz)} – {fmt_local(end, tz)} ({tz})"
    lines = [
        "## 审阅摘要" if zh else "## Reviewer's summary", "",
        f"- **{'案件' if zh else 'Case'}**: {case.grant.case}",
        f"- **{'授权' if zh else 'Grant'}**: {case.grant.id} ({'目的' if zh else 'purpose'}: {case.grant.purpose}; "
        f"{'调取人' if zh else 'operator'}: {case.person})",
        f"- **{'时间窗' if zh else 'Window'}**: {window}", "",
        f"### {'结论' if zh else 'Findings'}", "",
        *[f"{i}. {line}" for i, line in enumerate(findings, 1)], "",
        f"### {'检索内容' if zh else 'What was searched'}", "",
        *[f"- {line}" for line in searched], "",
        f"### {'排除内容' if zh else 'What was excluded'}", "",
        *[f"- {line}" for line in (excluded or ["-"])],
    ]
    return "\n".join(lines)


def copies_of(distinct: pl.DataFrame, messages: pl.DataFrame) -> pl.DataFrame:
    """Every copy behind the rows of ``distinct`` (the rows of ``messages`` whose record hash it lists)."""
    wanted = distinct.select(pl.col(RECORD_HASHES).explode()).to_series().drop_nulls().to_list()
    return messages.filter(pl.col("record_hash").is_in(wanted))
