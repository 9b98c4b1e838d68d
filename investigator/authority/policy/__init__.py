"""Roles, rules and decisions: who may ask for what, who must approve.

    >>> policy = Policy.default()
    >>> decision = policy.decide("request", person=zhangwei, directory=directory,
    ...                          request=req, now=now, tz=ZoneInfo("Asia/Shanghai"))   # doctest: +SKIP
    >>> decision.allowed, decision.rule                                              # doctest: +SKIP
    (False, 'window.lookback')

:meth:`Policy.decide` is pure: time, time zone, the person and the directory
are passed in; nothing is read or written. It denies by default (an unknown
action, role, purpose or field means no) and every :class:`Decision` names the
rule that decided it, the reason, and each rule consulted on the way (as
datasette's permission checks carry a reason). Callers audit the decision.

The policy file format, every action and every rule are documented in
docs/policy.md. In an archive the policy lives as signed versions in
``ARCHIVE/org/policy/`` (see :class:`PolicyStore`); a copy edited outside the
CLI fails its signature and every decision is then refused.
"""

from investigator.authority.policy.model import (
                    ACTIONS,
                    CONTENT_PERMISSIONS,
                    FIELDS,
                    LOOKBACKS,
                    PERMISSIONS,
                    POLICY_FORMAT,
                    Check,
                    Decision,
                    Request,
                    parse_utc,
)
from investigator.authority.policy.rules import (
                    Policy,
                    Rights,
                    Role,
                    check_policy_text,
                    default_policy_text,
                    period_start,
                    validate,
)
from investigator.authority.policy.store import PolicyStore, load_for_decision, load_org, record_decision

__all__ = ["ACTIONS", "CONTENT_PERMISSIONS", "FIELDS", "LOOKBACKS", "PERMISSIONS", "POLICY_FORMAT", "Check", "Decision",
           "Policy", "PolicyStore", "Request", "Rights", "Role", "check_policy_text", "default_policy_text",
           "load_for_decision", "load_org", "parse_utc", "period_start", "record_decision", "validate"]
