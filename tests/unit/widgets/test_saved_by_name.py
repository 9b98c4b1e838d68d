"""On a private copy of the demo archive: a saved search run by name (the keyword_sweep template's seam),
stored where the layout says, and an export of hits refused for a person whose roles lack ``export``."""

from __future__ import annotations

import shutil
import warnings
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator import analysis as A
from investigator.access.case import open_case
from investigator.authority.grants import approve, new_request
from investigator.authority.identity import login, unlock_person_key
from investigator.custody.file import unlock_archive
from investigator.demo import open_demo_case
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, demo_totp
from investigator.demo.run import DEMO_PASSPHRASE
from investigator.errors import ConfigError, PolicyDenied
from investigator.reports.exports import export_messages
from investigator.vault.store import Archive
from investigator.widgets.saved import SavedSearches


@pytest.fixture(scope="module")
def demo_copy(demo_archive, tmp_path_factory):
    target = tmp_path_factory.mktemp("saved-by-name") / "demo-archive"
    shutil.copytree(demo_archive, target)
    return target


def _audit(case, action):
    return [e for e in case.archive.audit.entries() if e.action == action]


def test_a_saved_search_runs_by_name_from_the_layout_s_file_and_an_unknown_name_lists_the_saved_ones(demo_copy):
    case = open_demo_case(demo_copy)
    store = SavedSearches(case)
    assert store.path == case.archive.layout.case_searches(case.grant.case)
    assert case.archive.layout.entry_of(store.path) is not None  # a declared path of the archive
    store.save("complaints", {"query": "投诉", "mode": "exact"})
    store.save("refunds", {"query": "退款", "mode": "word"})
    assert store.path.is_file() and store.path.parent == case.archive.layout.case_dir(case.grant.case)
    distinct = A.dedupe(case.messages(progress=False), identities=case.identities())
    params, hits = store.run("complaints", distinct, tz=case.timezone, identities=case.identities())
    assert params == {"query": "投诉", "mode": "exact"}
    expected = A.search(distinct, "投诉", tz=case.timezone)["message_id"].to_list()
    assert expected and hits["message_id"].to_list() == expected
    [run] = _audit(case, "search.run")
    assert run.outcome == "ok" and run.details["name"] == "complaints" and run.actor == case.person
    with pytest.raises(ConfigError) as unknown:
        store.run("overtime", distinct, tz=case.timezone)
    message = str(unknown.value)
    assert "'overtime'" in message and "'complaints'" in message and "'refunds'" in message
    assert len(_audit(case, "search.run")) == 1  # nothing ran
    # a saved range outside the grant is refused, and the refusal is audited
    lo, hi = case.window
    store.save("before", {"query": "投诉", "start": (lo - timedelta(days=2)).isoformat(), "end": hi.isoformat()})
    with pytest.raises(PolicyDenied) as refused:
        store.run("before", distinct, tz=case.timezone)
    assert refused.value.rule == "grant.window"
    denied = _audit(case, "search.run")[-1]
    assert (denied.outcome, denied.details["name"], denied.details["rule"]) == ("denied", "before", "grant.window")


def test_an_export_of_hits_is_refused_and_audited_for_a_person_without_the_export_permission(demo_copy, tmp_path):
    # 钱进 (qianjin) is team_lead + operator: he may retrieve and search, not export. 孙丽 (legal) requests a
    # grant naming him as its operator; 周总 approves. A time a few minutes ahead gives fresh TOTP steps.
    archive = Archive.open(demo_copy)
    keys = unlock_archive(archive, DEMO_PASSPHRASE)
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=5)
    key_dir = archive.layout.demo_keys_dir

    def key(pid):
        return unlock_person_key(archive, pid, DEMO_ONLY_PASSPHRASE.format(person=pid), key_dir=key_dir)

    zone = archive.config.zone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signed = new_request(archive, requester="sunli", signing_key=key("sunli"), case="T-no-export",
                             purpose="internal_audit", start=datetime(2026, 11, 18, 14, 0, tzinfo=zone),
                             end=datetime(2026, 11, 18, 17, 0, tzinfo=zone), fields=("metadata", "content"),
                             reason="test: an operator without export", legal_basis="test", operator="qianjin",
                             now=when)
        granted = approve(archive, keys, signed.id, approver="zhouzong", signing_key=key("zhouzong"),
                          totp=demo_totp("zhouzong", when), now=when, note="test")
    assert granted.grant_path is not None, granted.decision
    session = login(archive, keys, "qianjin", totp=demo_totp("qianjin", when), now=when)
    case = open_case(archive, grant=granted.grant_path.stem, person="qianjin", session=session,
                     passphrase=DEMO_PASSPHRASE, now=when)
    hits = A.search(case.messages(progress=False), "投诉", tz=case.timezone)
    assert hits.height > 0  # he may search the grant: real hits, only the export is his to be refused
    out = tmp_path / "hits.csv"
    with pytest.raises(PolicyDenied) as refused:
        export_messages(case, hits, fmt="csv", out=out, now=when + timedelta(minutes=1))
    assert not out.exists()
    entry = [e for e in archive.audit.entries() if e.action == "hits.export"][-1]
    assert (entry.actor, entry.outcome, entry.target) == ("qianjin", "denied", case.grant.id)
    assert entry.details["rows"] == hits.height and entry.details["file"] == "hits.csv"
    assert refused.value.rule and entry.details.get("rule") == refused.value.rule
    # the control: 孙丽 (legal) under her own grant passes the permission check for the same kind of export
    legal = open_demo_case(demo_copy)
    allowed = export_messages(legal, A.search(legal.messages(progress=False), "投诉", tz=legal.timezone),
                              fmt="csv", out=tmp_path / "legal.csv")
    assert allowed.held or pl.read_csv(tmp_path / "legal.csv").height == allowed.rows > 0
