"""Issue #17 on the demo archive: distinct messages with provable copies, the complaint report a lawyer reads,
reproducing a moved archive, failed runs, audited refusals, and the demo's month-wide review grant."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import nbformat
import polars as pl
import pytest

from investigator import analysis
from investigator.access.case import open_case
from investigator.authority.identity import unlock_person_key
from investigator.demo import DEMO_OPERATOR, DEMO_PASSPHRASE, demo_grant, demo_session, open_demo_case
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, REVIEW_CASE
from investigator.demo.cases import find_case_grant, open_review_case
from investigator.errors import ConfigError, ContentNotGranted, ReportError
from investigator.reports.audit_view import case_audit
from investigator.reports.reproduce import reproduce_report
from investigator.reports.run import run_report
from investigator.vault.merkle import verify_inclusion
from investigator.vault.store import Archive

pytestmark = pytest.mark.slow

COMPLAINT = "我要投诉"


@pytest.fixture(scope="module")
def archive_copy(demo_archive, tmp_path_factory) -> Path:
    """A copy of the demo archive in another folder (the demo's sealed report recorded the original path)."""
    root = tmp_path_factory.mktemp("moved") / "elsewhere"
    shutil.copytree(demo_archive, root)
    return root


def _demo_report(root: Path) -> Path:
    [path] = sorted((root / "reports").rglob("*-complaint_investigation.ipynb"))
    return path


def _outputs(nb) -> str:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            texts.append(str(data.get("text/markdown") or data.get("text/plain") or out.get("text", "")))
    return "\n".join(texts)


def _operator_key(archive: Archive):  # type: ignore[no-untyped-def]
    return unlock_person_key(archive, DEMO_OPERATOR, DEMO_ONLY_PASSPHRASE.format(person=DEMO_OPERATOR),
                             key_dir=archive.root / "demo-keys")


def _run_text(archive_copy: Path, template: str, output: Path, *, review: bool = True, **parameters) -> str:
    """Run ``template`` as the demo operator (the month's review grant, or the demo grant); its outputs as text."""
    archive = Archive.open(archive_copy)
    grant = find_case_grant(archive_copy, REVIEW_CASE) if review else demo_grant(archive_copy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_report(template, archive=archive, grant=grant, person=DEMO_OPERATOR, signer=_operator_key(archive),
                         passphrase=DEMO_PASSPHRASE, session=demo_session(archive_copy), output=output, html=False,
                         parameters=parameters or None)
    return _outputs(nbformat.read(str(run.notebook), as_version=4))


def test_merged_complaint_copies_each_verify_with_an_inclusion_proof(demo_archive):
    case = open_demo_case(demo_archive)
    messages = case.messages(progress=False)
    distinct = analysis.dedupe(messages, identities=case.identities())
    assert distinct.height < messages.height
    [row] = distinct.filter(pl.col("text").str.contains(COMPLAINT)).to_dicts()
    assert row["source"] == "wecom" and row["copies"] == 8 == len(row["sources"]) == len(row["record_hashes"])
    where = messages.filter(pl.col("record_hash").is_in(row["record_hashes"]))
    assert where.height == 8 and where["source"].n_unique() == 8  # one copy per export format
    roots = {m.seq: m.body["merkle"]["root"] for m in case.archive.manifests()}
    for copy in where.iter_rows(named=True):
        [proof] = case.key_service.proofs(case.ticket, copy["batch_seq"], [copy["leaf_index"]])
        assert proof["record_hash"] == copy["record_hash"] and proof["root"] == roots[copy["batch_seq"]]
        assert verify_inclusion(bytes.fromhex(proof["record_hash"]), proof["leaf_index"], proof["tree_size"],
                                [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(proof["root"]))


def test_the_demo_complaint_report_says_one_complaint_answered_after_120_minutes_by_the_right_people(demo_archive):
    # the demo ran complaint_investigation with papermill and sealed it; this reads what it says
    nb = nbformat.read(str(_demo_report(demo_archive)), as_version=4)
    text = _outputs(nb)
    summary = text[text.index("审阅摘要"):text.index("范围与限制")]
    assert "发现 1 条客户投诉（王芳）" in summary
    assert re.search(r"王芳 于 2026-11-18 14:35:00 在「[^」]+」投诉，张伟 于 2026-11-18 16:35:00 首次回复，处理时长 120 分钟",
                     summary)
    assert "员工发送的含关键词消息 1 条" in summary  # 赵敏's internal "@张伟 王芳的投诉还没回复" is no complaint
    assert "DEMO-2026-11-18-complaint" in summary and "2026-11-18 14:00:00 – 2026-11-18 17:00:00" in summary
    [plot] = [o["data"]["application/vnd.plotly.v1+json"] for c in nb.cells for o in c.get("outputs", [])
              if "application/vnd.plotly.v1+json" in (o.get("data") or {})
              and "handling delay" in str(o["data"]["application/vnd.plotly.v1+json"]["layout"]["title"])]
    [bars] = plot["data"]
    assert len(bars["x"]) == 1 and list(bars["y"]) == [120.0]  # one bar per complaint
    html = _demo_report(demo_archive).with_suffix(".html").read_text(encoding="utf-8")
    assert "rn.show_table" not in html and "import polars" not in html  # the reader's copy hides code
    assert "investigator-table" in html and "dtype" not in html.split("<body", 1)[1].split("<script", 1)[0]
    assert "shape: (" not in html and "Asia/Shanghai, UTC+08:00" in html


def test_reproduce_reads_the_archive_given_not_the_one_recorded(archive_copy, demo_archive):
    report = _demo_report(archive_copy)
    recorded = nbformat.read(str(report), as_version=4).metadata["papermill"]["parameters"]["archive"]
    assert Path(recorded) == Path(demo_archive).resolve()
    shutil.move(str(demo_archive), str(demo_archive) + ".away")  # the recorded path is gone
    try:
        archive = Archive.open(archive_copy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = reproduce_report(report, archive=archive, person=DEMO_OPERATOR, passphrase=DEMO_PASSPHRASE,
                                      session=demo_session(archive_copy), output=archive_copy.parent / "again.ipynb")
    finally:
        shutil.move(str(demo_archive) + ".away", str(demo_archive))
    assert result.same, result.differences


def test_a_report_whose_template_changed_since_reproduces_from_the_sealed_version(archive_copy, tmp_path):
    # sealed from a template version that is no longer the installed one (the installed template changed since)
    older = tmp_path / "v1" / "keyword_sweep.ipynb"
    older.parent.mkdir()
    nb = nbformat.read(str(Path(__file__).resolve().parents[2] / "templates" / "keyword_sweep.ipynb"), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("an older wording of the template"))
    nbformat.write(nb, str(older))
    archive = Archive.open(archive_copy)
    signer = _operator_key(archive)
    credentials = {"passphrase": DEMO_PASSPHRASE, "session": demo_session(archive_copy)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_report(older, archive=archive, grant=demo_grant(archive_copy), person=DEMO_OPERATOR, signer=signer,
                         output=tmp_path / "sweep.ipynb", html=False, parameters={"keywords": ["投诉"]},
                         **credentials)
        with pytest.raises(ReportError, match="changed since the report was sealed") as caught:
            reproduce_report(run.notebook, archive=archive, person=DEMO_OPERATOR, **credentials)
        assert "--template FILE" in caught.value.hint  # the way out, not a dead end
        installed = Path(__file__).resolve().parents[2] / "templates" / "keyword_sweep.ipynb"
        with pytest.raises(ReportError, match="is not the version the seal names"):
            reproduce_report(run.notebook, archive=archive, person=DEMO_OPERATOR, template=installed, **credentials)
        again = reproduce_report(run.notebook, archive=archive, person=DEMO_OPERATOR, template=older,
                                 output=tmp_path / "again.ipynb", **credentials)
    assert again.same, again.differences
    [entry] = [e for e in archive.audit.entries() if e.action == "report.reproduce"
               and e.target == again.sealed_digest]
    assert entry.outcome == "ok"


def test_a_failed_run_is_named_failed_and_keeps_no_report_name(archive_copy, tmp_path):
    template = tmp_path / "broken.ipynb"
    nb = nbformat.read(str(Path(__file__).resolve().parents[2] / "templates" / "keyword_sweep.ipynb"), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('planted failure')"))
    nbformat.write(nb, str(template))
    archive = Archive.open(archive_copy)
    signer = _operator_key(archive)
    target = tmp_path / "out" / "report.ipynb"
    with pytest.raises(ReportError, match="planted failure") as caught:
        run_report(template, archive=archive, grant=demo_grant(archive_copy), person=DEMO_OPERATOR, signer=signer,
                   passphrase=DEMO_PASSPHRASE, session=demo_session(archive_copy), output=target)
    assert not target.exists() and (tmp_path / "out" / "report.FAILED.ipynb").exists()
    assert "report.FAILED.ipynb" in caught.value.hint


def test_keyword_sweep_says_what_it_searched_terms_without_hits_included(archive_copy, tmp_path):
    # a lawyer must see every term, the mode and the senders searched, and records told apart from messages
    text = _run_text(archive_copy, "keyword_sweep", tmp_path / "sweep.ipynb", review=False,
                     keywords=["投诉", "没有这个词"], mode="word")
    assert "116 条导出记录（同一消息在每个导出中各计一条）" in text  # not "116 messages": 38 distinct
    assert "检索：时间窗内 38 条不同的消息，发送人 全部（38 条），匹配方式 `word`" in text
    assert "literal" not in text and "命中按规范化文本判断" in text  # 加 班 费 and 加班費 are hits: not literal
    terms = text[text.index("检索词 / terms searched"):].split("\n")
    assert terms[1:4] == ["keyword\thits", "投诉\t2", "没有这个词\t0"]
    context = text[text.index("上下文 / context"):].split("\n")[1]
    assert context.split("\t") == ["snippet", "ts", "conversation", "person", "is_hit", "msg_type", "text", "exports"]


def test_internal_investigation_lists_each_login_once_with_its_exports(archive_copy, tmp_path):
    # the demo's auth.log and events.csv both hold every login: the report listed each login twice
    text = _run_text(archive_copy, "internal_investigation", tmp_path / "internal.ipynb")
    table = text[text.index("登录 / logins"):].split("\n")
    head, rows = table[1].split("\t"), [r.split("\t") for r in table[2:62]]
    assert head[-1] == "exports" and rows
    logins = [(r[head.index("ts")], r[head.index("actor")]) for r in rows]
    assert len(logins) == len(set(logins))  # each login once
    assert {r[-1] for r in rows} == {"2"}  # corroborated by auth.log and events.csv
    assert "登录 / logins (403 行，仅显示前 60 行)" in text  # 403 logins in the month, not 806 rows
    # the three planted logins from outside the company network (2026-11-24) come first, flagged, once each
    assert [r[head.index("ts")] for r in rows[:3]] == ["2026-11-24 08:41:07", "2026-11-24 08:52:19",
                                                       "2026-11-24 09:07:52"]
    assert [r[head.index("unusual")] for r in rows[:4]] == ["✓", "✓", "✓", ""]


def test_couriers_talking_about_complaints_are_not_customer_complaints(archive_copy, tmp_path):
    # over the month, 孙浩 ("又被客户投诉了") and 周鹏 ("这单要是超时肯定投诉") are couriers (directory group 骑手): the
    # report counted them as two of "5 customer complaints", with 孙浩's a handling delay of 181 minutes
    text = _run_text(archive_copy, "complaint_investigation", tmp_path / "month.ipynb")
    summary = text[text.index("审阅摘要"):text.index("范围与限制")]
    assert "发现 3 条客户投诉（杨帆、王芳、陈静）" in summary and "孙浩 于" not in summary
    assert "其他外部人员（非客户，如骑手）发送的含关键词消息 2 条（周鹏、孙浩）" in summary
    assert "投诉人：组织目录中 客户 群组的成员，及目录中没有的发送人" in summary


def test_keyword_sweep_lists_hits_by_day_in_date_order(archive_copy, tmp_path):
    # over the month the day table was sorted by hits, so 2026-11-18 (2 hits) came before 2026-11-03
    text = _run_text(archive_copy, "keyword_sweep", tmp_path / "sweep.ipynb", keywords=["加班费", "投诉"])
    table = text[text.index("命中 / hits by keyword × day"):].split("\n")
    assert table[1] == "keyword\tday\thits"
    rows = [line.split("\t") for line in table[2:] if line[:1] in ("加", "投")]
    days = [day for _, day, _ in rows]
    assert len(days) > 5 and days == sorted(days) and ["投诉", "2026-11-18", "2"] in rows


def test_opening_an_unknown_grant_from_a_notebook_is_refused_and_audited(archive_copy):
    archive = Archive.open(archive_copy)
    before = len(list(archive.audit.entries()))
    with pytest.raises(ConfigError):
        open_case(archive, grant="G-0000000000000000", person=DEMO_OPERATOR, session=demo_session(archive_copy),
                  passphrase=DEMO_PASSPHRASE)
    [entry] = list(archive.audit.entries())[before:]
    assert (entry.action, entry.outcome, entry.actor) == ("case.open", "denied", DEMO_OPERATOR)
    assert entry.details["rule"] == "grant.unknown" and entry.target == "G-0000000000000000"
    # and the auditor of the operator's grant sees it (it names no grant, so it is not among the grant's entries)
    view = case_audit(archive_copy, grant=demo_grant(archive_copy))
    assert view.other_refusals["seq"].to_list()[-1] == entry.seq
    assert entry.seq not in view.entries["seq"].to_list()


def test_other_refusals_in_a_notebook_are_audited_too(archive_copy):
    from investigator.reports import notebook as rn

    case = open_demo_case(archive_copy)
    before = len(list(case.archive.audit.entries()))
    with pytest.raises(ContentNotGranted):  # the demo grant has no attachments field
        case.messages(columns=["ts", "attachment_name"])
    with pytest.raises(ReportError, match="inside the grant"):
        rn.report_window(case, ["2026-11-18 13:00", "2026-11-18 15:00"])
    entries = list(case.archive.audit.entries())[before:]
    assert [(e.action, e.outcome, e.details["rule"]) for e in entries] == [
        ("load", "denied", "grant.fields"), ("report.window", "denied", "grant.window")]


def test_the_demo_review_grant_covers_both_planted_cases_and_finds_overtime_pay(demo_archive):
    assert find_case_grant(demo_archive, REVIEW_CASE) is not None
    case = open_review_case(demo_archive)
    messages = case.messages(progress=False)
    local = messages.with_columns(pl.col("ts").dt.convert_time_zone(case.timezone).dt.date().alias("day"))
    days = set(local.filter(pl.col("text").str.contains(COMPLAINT) | pl.col("text").str.contains("回扣"))["day"]
               .cast(pl.String).to_list())
    assert {"2026-11-18", "2026-11-24"} <= days  # the complaint and the misconduct, one grant
    hits = analysis.search(messages, "加班费")
    assert hits.height > 0


def test_cli_prints_times_in_the_archive_zone_with_offset_and_utc_on_request(demo_archive):
    from click.testing import CliRunner

    from investigator.cli import main

    runner = CliRunner()
    listed = runner.invoke(main, ["request", "list", str(demo_archive)])
    assert listed.exit_code == 0, listed.output
    assert "2026-11-18 14:00:00+08:00 .. 2026-11-18 17:00:00+08:00" in listed.output
    assert "2026-11-01 00:00:00+08:00 .. 2026-12-01 00:00:00+08:00" in listed.output  # the review grant's request
    request_id = next(line.split()[0] for line in listed.output.splitlines() if "complaint" in line)
    shown = runner.invoke(main, ["request", "show", str(demo_archive), request_id])
    assert '"start": "2026-11-18 14:00:00+08:00"' in shown.output
    in_utc = runner.invoke(main, ["request", "show", str(demo_archive), request_id, "--utc"])
    assert '"start": "2026-11-18 06:00:00Z"' in in_utc.output
    opened = runner.invoke(main, ["open", str(demo_archive), "--grant", demo_grant(demo_archive), "--as", DEMO_OPERATOR,
                                  "--session", demo_session(demo_archive)],
                           env={"INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE})
    assert opened.exit_code == 0, opened.output
    assert "window: 2026-11-18 14:00:00+08:00 .. 2026-11-18 17:00:00+08:00 (Asia/Shanghai)" in opened.output
