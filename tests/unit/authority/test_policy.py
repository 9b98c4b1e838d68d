"""Policy decisions: pure, deny by default, each carrying the deciding rule and the trail."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from investigator.authority.directory import Directory, Person, PersonKey
from investigator.errors import ConfigError
from investigator.authority.policy import ACTIONS, PERMISSIONS, Policy, Request, check_policy_text, default_policy_text, period_start

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)  # Saturday noon in Shanghai
KEY = PersonKey("k1", "", "2026-11-01T00:00:00.000000Z")
DOCS = Path(__file__).resolve().parents[3] / "docs" / "policy.md"


def person(pid: str, *roles: str, groups: tuple[str, ...] = (), supervisor: str = "", status: str = "active"):
    return Person(pid, pid, groups=groups, roles=roles, supervisor=supervisor, status=status, keys=(KEY,))


DIRECTORY = Directory(people=(
    person("boss", "executive"), person("legal1", "legal", supervisor="boss"),
    person("lead", "team_lead", groups=("cs1",), supervisor="boss"),
    person("agent", "agent", groups=("cs1",), supervisor="lead"), person("mate", "agent", groups=("cs1",)),
    person("other", "agent", groups=("buy",)), person("admin", "admin"), person("aud", "auditor"),
    person("op", "operator"), person("gone", "legal", status="left", supervisor="boss"),
))


def req(requester: str = "agent", **kw) -> Request:
    args = dict(id="R", archive_id="A", case="C", purpose="internal_audit", requester=requester, key_id="k1",
                start=datetime(2026, 11, 24, 8, 30, tzinfo=TZ), end=datetime(2026, 11, 24, 9, 15, tzinfo=TZ),
                tz="Asia/Shanghai", fields=("metadata", "content"), reason="why", created=NOW, groups=("cs1",))
    args.update(kw)
    return Request(**args)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.default()


def decide(policy, action, who, request=None, approvers=()):
    return policy.decide(action, person=DIRECTORY.person(who), directory=DIRECTORY, request=request,
                         approvers=approvers, now=NOW, tz=TZ)


def test_default_policy_is_valid():
    assert check_policy_text(default_policy_text()) == []


def test_agent_may_ask_for_own_team_this_week(policy):
    decision = decide(policy, "request", "agent", req())
    assert decision.allowed and decision.rule == "request.allowed"
    assert [c.rule for c in decision.consulted][:2] == ["person.active", "person.key"]
    assert all(c.passed for c in decision.consulted)


@pytest.mark.parametrize("who,kw,rule", [
    ("agent", dict(start=datetime(2026, 11, 22, tzinfo=TZ), end=datetime(2026, 11, 23, 1, tzinfo=TZ)), "window.lookback"),
    ("lead", dict(start=datetime(2026, 10, 31, tzinfo=TZ), end=datetime(2026, 11, 2, tzinfo=TZ), groups=()), "window.lookback"),
    ("legal1", dict(start=datetime(2025, 1, 1, tzinfo=TZ), end=datetime(2026, 11, 2, tzinfo=TZ), groups=()), "window.max_days"),
    ("agent", dict(start=datetime(2026, 11, 24, 10, tzinfo=TZ), end=datetime(2026, 11, 24, 9, tzinfo=TZ)), "window.order"),
    ("agent", dict(start=datetime(2026, 11, 29, tzinfo=TZ), end=datetime(2026, 11, 30, tzinfo=TZ)), "window.future"),
    ("agent", dict(purpose="fishing"), "purpose.known"),
    ("agent", dict(purpose="customer_complaint"), "consent.required"),
    ("agent", dict(fields=("attachments",)), "fields.permission"),
    ("agent", dict(fields=("everything",)), "fields.known"),
    ("agent", dict(groups=("buy",)), "scope.team"),
    ("agent", dict(groups=(), participants=("other",)), "scope.team"),
    ("agent", dict(reason=" "), "request.reason"),
    ("agent", dict(key_id="nope"), "person.key"),
    ("admin", dict(groups=()), "duty.no_content"),
    ("aud", dict(groups=()), "duty.no_content"),
    ("admin", dict(groups=(), fields=("metadata",)), "duty.separation"),
    ("op", dict(groups=()), "role.permission"),
    ("gone", dict(groups=()), "person.active"),
    ("legal1", dict(groups=(), operator="agent"), "operator.eligible"),
])
def test_request_denials(policy, who, kw, rule):
    decision = decide(policy, "request", who, req(who, **kw))
    assert not decision.allowed
    assert decision.rule == rule, decision.reason
    assert decision.consulted[-1].rule == rule and not decision.consulted[-1].passed


def test_participants_may_be_named_by_account(policy):
    directory = Directory(people=(*DIRECTORY.people,
                                  Person("agent2", "a2", groups=("cs1",), roles=("agent",), keys=(KEY,),
                                         identities=("wecom:a2-wecom",))))
    decision = policy.decide("request", person=directory.person("agent"), directory=directory, now=NOW, tz=TZ,
                             request=req(groups=(), participants=("a2-wecom",)))
    assert decision.allowed


def test_operator_may_perform_for_legal(policy):
    assert decide(policy, "request", "legal1", req("legal1", groups=(), operator="op")).allowed


@pytest.mark.parametrize("approver,allowed,rule", [
    ("lead", True, "approval.eligible"), ("boss", True, "approval.eligible"), ("legal1", True, "approval.eligible"),
    ("agent", False, "approval.self"), ("mate", False, "approval.permission"), ("admin", False, "approval.permission"),
    ("aud", False, "approval.permission"), ("gone", False, "person.active"),
])
def test_who_may_approve(policy, approver, allowed, rule):
    decision = decide(policy, "approve", approver, req())
    assert (decision.allowed, decision.rule) == (allowed, rule)


def test_grant_needs_the_supervisor(policy):
    assert decide(policy, "grant", "agent", req(), approvers=["lead"]).allowed
    denied = decide(policy, "grant", "agent", req(), approvers=["boss"])
    assert denied.rule == "approval.supervisor"


def test_sensitive_needs_two_and_legal_review(policy):
    sensitive = req("lead", purpose="legal_dispute", groups=())
    assert decide(policy, "grant", "lead", sensitive, approvers=["boss"]).rule == "approval.count"
    assert decide(policy, "grant", "lead", sensitive, approvers=["boss", "legal1"]).allowed
    attach = req("legal1", fields=("attachments",), groups=())
    two_without_legal = Directory(people=(*DIRECTORY.people, person("boss2", "executive")))
    decision = policy.decide("grant", person=two_without_legal.person("legal1"), directory=two_without_legal,
                             request=attach, approvers=["boss", "boss2"], now=NOW, tz=TZ)
    assert decision.rule == "approval.legal_review"


def test_plain_permissions_and_unknown_actions(policy):
    assert decide(policy, "audit", "aud").allowed
    assert decide(policy, "read_content", "aud").rule == "duty.no_content"
    assert decide(policy, "admin", "admin").allowed
    assert decide(policy, "export", "lead").rule == "role.permission"
    assert decide(policy, "archive", "lead").allowed
    assert decide(policy, "launch_missiles", "boss").rule == "default.deny"


def test_unknown_role_gives_nothing(policy):
    stranger = Person("x", "x", roles=("wizard",), keys=(KEY,))
    decision = policy.decide("search", person=stranger, directory=DIRECTORY, now=NOW, tz=TZ)
    assert not decision.allowed and decision.rule == "role.permission"


def test_calendar_periods_in_archive_zone():
    # 2026-11-23 is a Monday; 16:30 UTC on Sunday 22nd is already Monday 00:30 in Shanghai
    assert period_start("week", datetime(2026, 11, 22, 16, 30, tzinfo=timezone.utc), TZ) == \
        datetime(2026, 11, 23, tzinfo=TZ)
    assert period_start("month", NOW, TZ) == datetime(2026, 11, 1, tzinfo=TZ)
    assert period_start("all", NOW, TZ) is None


def test_policy_check_finds_problems():
    text = default_policy_text().replace('lookback = "week"', 'lookback = "fortnight"').replace(
        'purposes = ["customer_complaint"]', 'purposes = ["gossip"]') + "\n[extra]\nx = 1\n"
    problems = check_policy_text(text)
    assert any("lookback" in p for p in problems)
    assert any("gossip" in p for p in problems)
    assert any("'extra'" in p for p in problems)
    with pytest.raises(ConfigError):
        Policy.from_toml(text)
    assert check_policy_text("not = [toml")[0].startswith("not valid TOML")


def test_every_action_permission_and_rule_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    for name in (*ACTIONS, *PERMISSIONS):
        assert f"`{name}`" in text, f"action/permission {name} is not documented in docs/policy.md"
    import re

    package = Path(__file__).resolve().parents[3] / "investigator"
    source = "\n".join(p.read_text(encoding="utf-8") for p in [*package.glob("authority/**/*.py"),
                                                                *package.glob("access/*.py")])
    rules = set(re.findall(r'"((?:person|role|duty|purpose|fields|operator|request|consent|window|scope|approval|'
                           r'grant|policy|directory|identity|default|dual_control|chunk|ticket|keyserver|case)'
                           r'\.[a-z_]+)"', source))
    missing = sorted(r for r in rules - {"request.json"} if f"`{r}`" not in text)
    assert not missing, f"rules not documented in docs/policy.md: {missing}"
