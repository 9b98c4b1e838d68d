"""The policy: roles, lookbacks and rules; ``Policy.decide`` is pure and denies by default.

    >>> Policy.default().decide("request", person=p, directory=d, request=r, now=now, tz=tz)  # doctest: +SKIP

Part of :mod:`investigator.authority.policy` (docs/policy.md).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from investigator import _crypto
from investigator.authority.directory import Directory, Person
from investigator.errors import ConfigError
from investigator.authority.policy.model import (
    ACTIONS,
    CONTENT_PERMISSIONS,
    FIELDS,
    LOOKBACKS,
    PERMISSIONS,
    POLICY_FORMAT,
    Decision,
    Request,
    _Trail,
)

# --- the policy ----------------------------------------------------------------------

@dataclass(frozen=True)
class Role:
    """One role: business (what may be asked for) or duty (separated duties)."""

    name: str
    label: str
    kind: str
    permissions: frozenset[str]
    forbid: frozenset[str] = frozenset()
    lookback: str = "none"
    team_only: bool = True
    templates_only: bool = False
    max_window_days: int = 0
    grant_hours: int = 0


@dataclass(frozen=True)
class Rights:
    """A person's effective rights: the union of their roles, minus every role's ``forbid``."""

    permissions: frozenset[str]
    forbidden: frozenset[str]
    forbidding_roles: tuple[str, ...]
    lookback: str
    team_only: bool
    templates_only: bool
    max_window_days: int
    grant_hours: int

    def may(self, permission: str) -> bool:
        return permission in self.permissions and permission not in self.forbidden


_LOOKBACK_ORDER = {name: i for i, name in enumerate(LOOKBACKS)}


def period_start(lookback: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Start of the calendar period ``lookback`` containing ``now`` in ``tz`` (None for 'all').

    Weeks start on Monday 00:00 local time; months on the 1st at 00:00.
    """
    local = now.astimezone(tz).date()
    if lookback == "all":
        return None
    if lookback == "day":
        first = local
    elif lookback == "week":
        first = local - timedelta(days=local.weekday())
    elif lookback == "month":
        first = local.replace(day=1)
    else:  # "none" or unknown: nothing is in reach
        return datetime.max.replace(tzinfo=tz)
    return datetime.combine(first, time(0), tzinfo=tz)


@dataclass(frozen=True)
class Policy:
    """A parsed policy file. Make with :meth:`from_toml`, :meth:`load` or :meth:`default`."""

    roles: dict[str, Role]
    purposes: tuple[str, ...]
    fields: dict[str, str]
    consent_purposes: tuple[str, ...]
    supervisor_required: bool
    approver_roles: tuple[str, ...]
    required_approvals: int
    sensitive_purposes: tuple[str, ...]
    sensitive_fields: tuple[str, ...]
    sensitive_required: int
    legal_review_roles: tuple[str, ...]
    exclusive: tuple[tuple[str, ...], ...]
    totp_skew_steps: int = 1
    max_failures: int = 5
    failure_window_minutes: int = 15
    lockout_minutes: int = 15
    session_hours: int = 8
    # 双重验证机制(操作人+监控人): purposes whose cases open only with a monitor's code too
    dual_control_purposes: tuple[str, ...] = ()
    # [audit] witnesses: where every checkpoint goes (folders on other disks or hosts, s3://bucket/prefix);
    # part of the signed policy so editing archive.toml cannot drop one (vault/witness.py)
    witnesses: tuple[str, ...] = ()
    source_sha256: str = ""
    version: int = 0
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # --- loading ---------------------------------------------------------------

    @classmethod
    def from_toml(cls, text: str, *, source: str = "policy") -> "Policy":
        """Parse and validate a policy. Raises ConfigError naming the first problem."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc})") from exc
        problems = validate(data)
        if problems:
            raise ConfigError(f"{source}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1
                                                             else ""),
                              hint=f"run 'investigator policy check {source}' for the full list")
        approval = data.get("approval", {})
        sensitive = approval.get("sensitive", {})
        identity = data.get("identity", {})
        roles = {name: Role(name=name, label=str(spec.get("label", name)), kind=str(spec.get("kind", "business")),
                            permissions=frozenset(spec.get("permissions", ())), forbid=frozenset(spec.get("forbid", ())),
                            lookback=str(spec.get("lookback", "none")), team_only=bool(spec.get("team_only", True)),
                            templates_only=bool(spec.get("templates_only", False)),
                            max_window_days=int(spec.get("max_window_days", 0)),
                            grant_hours=int(spec.get("grant_hours", 0)))
                 for name, spec in data.get("roles", {}).items()}
        return cls(roles=roles, purposes=tuple(data.get("purposes", ())), fields=dict(data.get("fields", {})),
                   consent_purposes=tuple(data.get("consent", {}).get("purposes", ())),
                   supervisor_required=bool(approval.get("supervisor_required", True)),
                   approver_roles=tuple(approval.get("approver_roles", ())),
                   required_approvals=int(approval.get("required", 1)),
                   sensitive_purposes=tuple(sensitive.get("purposes", ())),
                   sensitive_fields=tuple(sensitive.get("fields", ())),
                   sensitive_required=int(sensitive.get("required", 2)),
                   legal_review_roles=tuple(sensitive.get("legal_review_roles", ())),
                   exclusive=tuple(tuple(pair) for pair in data.get("separation", {}).get("exclusive", ())),
                   totp_skew_steps=int(identity.get("totp_skew_steps", 1)),
                   max_failures=int(identity.get("max_failures", 5)),
                   failure_window_minutes=int(identity.get("failure_window_minutes", 15)),
                   lockout_minutes=int(identity.get("lockout_minutes", 15)),
                   dual_control_purposes=tuple(identity.get("dual_control_purposes", ())),
                   session_hours=int(identity.get("session_hours", 8)),
                   witnesses=tuple(data.get("audit", {}).get("witnesses", ())),
                   source_sha256=_crypto.sha256_hex(text.encode("utf-8")), raw=data)

    @classmethod
    def load(cls, path: Path) -> "Policy":
        """Read a policy file. Raises ConfigError."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the policy file") from exc
        return cls.from_toml(text, source=str(path))

    @classmethod
    def default(cls) -> "Policy":
        """The packaged default policy (the seed's tables)."""
        return cls.from_toml(default_policy_text(), source="default_policy.toml")

    # --- rights --------------------------------------------------------------------

    def rights(self, person: Person) -> Rights:
        """Effective rights of ``person``. Unknown roles give nothing."""
        roles = [self.roles[r] for r in person.roles if r in self.roles]
        perms = frozenset().union(*(r.permissions for r in roles)) if roles else frozenset()
        forbidden = frozenset().union(*(r.forbid for r in roles)) if roles else frozenset()
        asking = [r for r in roles if "request" in r.permissions]
        lookback = max((r.lookback for r in asking), key=lambda lb: _LOOKBACK_ORDER.get(lb, 0), default="none")
        return Rights(permissions=perms, forbidden=forbidden,
                      forbidding_roles=tuple(r.name for r in roles if r.forbid),
                      lookback=lookback, team_only=all(r.team_only for r in asking) if asking else True,
                      templates_only=all(r.templates_only for r in asking) if asking else False,
                      max_window_days=max((r.max_window_days for r in asking), default=0),
                      grant_hours=max((r.grant_hours for r in asking), default=0))

    def is_sensitive(self, request: Request) -> bool:
        return request.purpose in self.sensitive_purposes or bool(set(request.fields) & set(self.sensitive_fields))

    def required_for(self, request: Request) -> int:
        return max(self.required_approvals, self.sensitive_required if self.is_sensitive(request) else 0)

    def grant_lifetime(self, person: Person) -> timedelta:
        return timedelta(hours=self.rights(person).grant_hours)

    def conflicting_roles(self, roles: Sequence[str]) -> list[tuple[str, ...]]:
        """The exclusive role sets of the policy that ``roles`` break."""
        held = set(roles)
        return [group for group in self.exclusive if set(group) <= held]

    # --- decide ---------------------------------------------------------------------

    def decide(self, action: str, *, person: Person, directory: Directory, now: datetime, tz: ZoneInfo,
               request: Request | None = None, approvers: Sequence[str] = ()) -> Decision:
        """Decide whether ``person`` may do ``action`` (for ``request``, with ``approvers``).

        Pure and total: never raises for a refusal; the Decision says which rule
        refused and why. Unknown actions are denied by rule ``default.deny``.
        """
        trail = _Trail()
        if action not in ACTIONS:
            return trail.deny("default.deny", f"unknown action {action!r} (deny by default)")
        if action == "grant":
            if request is None:
                return trail.deny("default.deny", "no request to grant")
            return self._decide_grant(trail, request, approvers, directory)
        if not person.active:
            return trail.deny("person.active", f"{person.id} is not active (status {person.status})")
        trail.ok("person.active", f"{person.id} is active")
        if action == "request":
            if request is None:
                return trail.deny("default.deny", "no request given")
            return self._decide_request(trail, person, request, directory, now, tz)
        if action == "approve":
            if request is None:
                return trail.deny("default.deny", "no request to approve")
            return self._decide_approve(trail, person, request, directory)
        return self._permission(trail, person, action)

    def _permission(self, trail: _Trail, person: Person, permission: str) -> Decision:
        rights = self.rights(person)
        if permission in rights.forbidden:
            roles = ", ".join(r for r in rights.forbidding_roles if permission in self.roles[r].forbid)
            if permission in CONTENT_PERMISSIONS:
                return trail.deny("duty.no_content",
                                  f"{person.id} holds duty role {roles}, which never reads content ({permission})")
            return trail.deny("duty.separation", f"{person.id} holds duty role {roles}, which forbids {permission}")
        if permission not in rights.permissions:
            return trail.deny("role.permission",
                              f"no role of {person.id} ({', '.join(person.roles) or 'none'}) grants {permission}")
        trail.ok("role.permission", f"{person.id} may {permission}")
        return trail.allow("role.permission", f"{person.id} holds {permission}")

    def _decide_request(self, trail: _Trail, person: Person, req: Request, directory: Directory, now: datetime,
                        tz: ZoneInfo) -> Decision:
        key = person.key(req.key_id)
        if key is None:
            return trail.deny("person.key", f"request signed with key {req.key_id!r}, which is not {person.id}'s")
        if key.revoked:
            return trail.deny("person.key", f"{person.id}'s key {req.key_id} was revoked at {key.revoked}")
        trail.ok("person.key", f"key {req.key_id} is live")
        conflicts = self.conflicting_roles(person.roles)
        if conflicts:
            return trail.deny("duty.separation", f"{person.id} holds roles that must be apart: {conflicts[0]}")
        rights = self.rights(person)
        # content first: an admin or auditor asking for content gets the separation-of-duties reason
        for name in req.fields:
            needed: str | None = self.fields.get(name, "")
            if needed in rights.forbidden and needed in CONTENT_PERMISSIONS:
                return trail.deny("duty.no_content", f"field {name!r}: " + self._permission(
                    _Trail(), person, needed).reason)
        decision = self._permission(_Trail(), person, "request")
        if not decision.allowed:
            return trail.deny(decision.rule, decision.reason)
        trail.ok("role.permission", f"{person.id} may file requests")
        if req.purpose not in self.purposes:
            return trail.deny("purpose.known", f"purpose {req.purpose!r} is not one of {', '.join(self.purposes)}")
        trail.ok("purpose.known", req.purpose)
        if not req.fields:
            return trail.deny("fields.known", "no fields requested")
        for name in req.fields:
            needed = self.fields.get(name)
            if needed is None:
                return trail.deny("fields.known", f"field {name!r} is not one of {', '.join(self.fields)}")
            decision = self._permission(_Trail(), person, needed)
            if not decision.allowed:
                rule = "duty.no_content" if decision.rule == "duty.no_content" else "fields.permission"
                return trail.deny(rule, f"field {name!r} needs {needed}: {decision.reason}")
        trail.ok("fields.permission", f"{', '.join(req.fields)} allowed")
        if req.operator and req.operator != req.requester:
            operator = directory.find(req.operator)
            if operator is None or not operator.active:
                return trail.deny("operator.eligible", f"operator {req.operator!r} is not an active person")
            if "operator" not in operator.roles:
                return trail.deny("operator.eligible", f"{req.operator} does not hold the operator role")
            for name in req.fields:
                decision = self._permission(_Trail(), operator, self.fields[name])
                if not decision.allowed:
                    return trail.deny("operator.eligible", f"operator {req.operator}: {decision.reason}")
            trail.ok("operator.eligible", f"{req.operator} performs the retrieval")
        if not req.reason.strip():
            return trail.deny("request.reason", "a request needs a reason")
        trail.ok("request.reason", "given")
        if req.purpose in self.consent_purposes and not req.consent.strip():
            return trail.deny("consent.required",
                              f"purpose {req.purpose} needs a customer-consent reference (客户知情同意书, --consent)")
        trail.ok("consent.required", "consent reference given" if req.consent else "not needed for this purpose")
        # the window
        if req.start.tzinfo is None or req.end.tzinfo is None or req.start >= req.end:
            return trail.deny("window.order", "the window's start must be before its end")
        trail.ok("window.order", "start < end")
        if req.start >= now:
            return trail.deny("window.future", "the window starts in the future")
        trail.ok("window.future", "starts in the past")
        length = req.end - req.start
        if length > timedelta(days=rights.max_window_days):
            return trail.deny("window.max_days", f"window of {_days(length)} is longer than the "
                              f"{rights.max_window_days} days {person.id}'s roles allow")
        trail.ok("window.max_days", f"{_days(length)} <= {rights.max_window_days} days")
        first = period_start(rights.lookback, now, tz)
        if first is not None and req.start < first:
            if rights.lookback == "none":
                return trail.deny("window.lookback", f"{person.id}'s roles have no lookback")
            return trail.deny("window.lookback", f"window starts before the current {rights.lookback} "
                              f"({first.isoformat()}), the lookback of {person.id}'s roles")
        trail.ok("window.lookback", f"lookback {rights.lookback}")
        # the scope
        if rights.team_only:
            problem = self._team_scope(person, req, directory)
            if problem is not None:
                return trail.deny("scope.team", problem)
            trail.ok("scope.team", "scope within the requester's team")
        if rights.templates_only and not req.templates:
            return trail.deny("scope.templates", f"{person.id} may only hold grants limited to named templates")
        if req.templates and not rights.templates_only:
            trail.ok("scope.templates", "templates named (informative)")
        return trail.allow("request.allowed", f"every rule passed for {person.id}'s {req.purpose} request")

    @staticmethod
    def _team_scope(person: Person, req: Request, directory: Directory) -> str | None:
        if not (req.groups or req.participants):
            return "a team-only role must scope the request to its own group (--group) or teammates (--participant)"
        outside = [g for g in req.groups if g not in person.groups]
        if outside:
            return f"group {outside[0]!r} is not one of {person.id}'s groups ({', '.join(person.groups) or 'none'})"
        mates = directory.teammates(person.id)
        accounts = directory.identities()
        for participant in req.participants:
            owner = participant if participant in mates else next(
                (pid for pid in mates if participant in accounts.get(pid, ())), None)
            if owner is None:
                return f"participant {participant!r} is not in {person.id}'s team"
        return None

    def _decide_approve(self, trail: _Trail, approver: Person, req: Request, directory: Directory) -> Decision:
        if approver.id in (req.requester, req.performer):
            return trail.deny("approval.self", f"{approver.id} cannot approve their own request")
        trail.ok("approval.self", "approver is not the requester or operator")
        if approver.current_key is None:
            return trail.deny("person.key", f"{approver.id} has no live signing key")
        decision = self._permission(_Trail(), approver, "approve")
        if not decision.allowed:
            return trail.deny("approval.permission", decision.reason)
        trail.ok("approval.permission", f"{approver.id} may approve")
        requester = directory.find(req.requester)
        supervisor = requester.supervisor if requester else ""
        if approver.id == supervisor:
            trail.ok("approval.eligible", f"{approver.id} is {req.requester}'s direct supervisor")
            return trail.allow("approval.eligible", f"{approver.id} is the requester's direct supervisor")
        role = next((r for r in approver.roles if r in self.approver_roles), None)
        if role:
            trail.ok("approval.eligible", f"{approver.id} holds approver role {role}")
            return trail.allow("approval.eligible", f"{approver.id} holds approver role {role}")
        return trail.deny("approval.eligible", f"{approver.id} is neither {req.requester}'s direct supervisor "
                          f"({supervisor or 'none'}) nor holds an approver role ({', '.join(self.approver_roles)})")

    def _decide_grant(self, trail: _Trail, req: Request, approvers: Sequence[str], directory: Directory) -> Decision:
        distinct = list(dict.fromkeys(approvers))
        for approver_id in distinct:
            approver = directory.find(approver_id)
            if approver is None:
                return trail.deny("approval.eligible", f"approver {approver_id!r} is not in the directory")
            decision = self._decide_approve(_Trail(), approver, req, directory)
            if not decision.allowed:
                return trail.deny(decision.rule, decision.reason)
        trail.ok("approval.eligible", f"{len(distinct)} eligible approver(s)")
        needed = self.required_for(req)
        if len(distinct) < needed:
            what = "a sensitive request" if self.is_sensitive(req) else "this request"
            return trail.deny("approval.count", f"{what} needs {needed} approvals, has {len(distinct)}")
        trail.ok("approval.count", f"{len(distinct)} of {needed} approvals")
        requester = directory.find(req.requester)
        supervisor = requester.supervisor if requester else ""
        if self.supervisor_required:
            if supervisor and supervisor not in distinct:
                return trail.deny("approval.supervisor", f"the direct supervisor {supervisor} has not approved")
            trail.ok("approval.supervisor", f"{supervisor} approved" if supervisor
                     else "requester has no supervisor: an approver role suffices")
        if self.is_sensitive(req) and self.legal_review_roles:
            reviewers = [a for a in distinct if set(directory.person(a).roles) & set(self.legal_review_roles)]
            if not reviewers:
                return trail.deny("approval.legal_review",
                                  f"a sensitive request needs a legal review by {', '.join(self.legal_review_roles)}")
            trail.ok("approval.legal_review", f"reviewed by {reviewers[0]}")
        return trail.allow("grant.issued", f"approved by {', '.join(distinct)}")


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.4g} days"


def default_policy_text() -> str:
    return resources.files("investigator").joinpath("default_policy.toml").read_text(encoding="utf-8")


def validate(data: dict[str, Any]) -> list[str]:
    """Every problem of a parsed policy file, as sentences (empty list: valid)."""
    problems: list[str] = []
    if data.get("format") != POLICY_FORMAT:
        problems.append(f"format must be {POLICY_FORMAT!r}")
    known_top = {"format", "purposes", "roles", "separation", "approval", "fields", "consent", "identity", "breaker",
                 "backup", "retention", "audit"}  # [backup.tiers.*]: checked by investigator.backup.tiers
    problems += [f"unknown section or key {key!r} (deny by default: remove it or fix the name)"
                 for key in data if key not in known_top]
    roles = data.get("roles")
    if not isinstance(roles, dict) or not roles:
        problems.append("no [roles.*] defined")
        roles = {}
    role_keys = {"label", "kind", "permissions", "forbid", "lookback", "team_only", "templates_only",
                 "max_window_days", "grant_hours"}
    for name, spec in roles.items():
        if not isinstance(spec, dict):
            problems.append(f"roles.{name}: must be a table")
            continue
        problems += [f"roles.{name}: unknown key {k!r}" for k in spec if k not in role_keys]
        if spec.get("kind", "business") not in ("business", "duty"):
            problems.append(f"roles.{name}.kind must be 'business' or 'duty'")
        for key in ("permissions", "forbid"):
            problems += [f"roles.{name}.{key}: unknown permission {p!r}" for p in spec.get(key, ())
                         if p not in PERMISSIONS]
        both = set(spec.get("permissions", ())) & set(spec.get("forbid", ()))
        if both:
            problems.append(f"roles.{name}: {sorted(both)} both permitted and forbidden")
        if spec.get("lookback", "none") not in LOOKBACKS:
            problems.append(f"roles.{name}.lookback must be one of {', '.join(LOOKBACKS)}")
        if "request" in spec.get("permissions", ()):
            for key in ("max_window_days", "grant_hours"):
                value = spec.get(key)
                if not isinstance(value, int) or value <= 0:
                    problems.append(f"roles.{name}.{key} must be a positive integer for a role that may request")
    purposes = data.get("purposes", [])
    if not purposes:
        problems.append("no purposes listed")
    fields_map = data.get("fields", {})
    for fname, perm in fields_map.items():
        if fname not in FIELDS:
            problems.append(f"fields.{fname}: unknown field (known: {', '.join(FIELDS)})")
        if perm not in PERMISSIONS:
            problems.append(f"fields.{fname}: unknown permission {perm!r}")
    approval = data.get("approval", {})
    for key in ("approver_roles",):
        problems += [f"approval.{key}: unknown role {r!r}" for r in approval.get(key, ()) if r not in roles]
    if int(approval.get("required", 1)) < 1:
        problems.append("approval.required must be at least 1 (nobody reads without an approval)")
    sensitive = approval.get("sensitive", {})
    problems += [f"approval.sensitive.purposes: unknown purpose {p!r}" for p in sensitive.get("purposes", ())
                 if p not in purposes]
    problems += [f"approval.sensitive.fields: unknown field {f!r}" for f in sensitive.get("fields", ())
                 if f not in fields_map]
    problems += [f"approval.sensitive.legal_review_roles: unknown role {r!r}"
                 for r in sensitive.get("legal_review_roles", ()) if r not in roles]
    problems += [f"consent.purposes: unknown purpose {p!r}" for p in data.get("consent", {}).get("purposes", ())
                 if p not in purposes]
    for group in data.get("separation", {}).get("exclusive", ()):
        problems += [f"separation.exclusive: unknown role {r!r}" for r in group if r not in roles]
    identity = data.get("identity", {})
    for key in ("max_failures", "failure_window_minutes", "lockout_minutes", "session_hours"):
        if key in identity and (not isinstance(identity[key], int) or identity[key] <= 0):
            problems.append(f"identity.{key} must be a positive integer")
    if identity.get("totp_skew_steps", 1) not in (0, 1, 2):
        problems.append("identity.totp_skew_steps must be 0, 1 or 2")
    problems += _breaker_problems(data.get("breaker", {}), roles)
    problems += [f"identity.dual_control_purposes: unknown purpose {p!r}"
                 for p in identity.get("dual_control_purposes", ()) if p not in purposes]
    problems += _retention_problems(data.get("retention", {}))
    problems += _audit_problems(data.get("audit", {}))
    known_identity = {"totp_skew_steps", "max_failures", "failure_window_minutes", "lockout_minutes", "session_hours",
                      "dual_control_purposes"}
    problems += [f"identity: unknown key {k!r}" for k in identity if k not in known_identity]
    return problems


# [breaker] notify: placeholders an argument may carry (ids, categories, counts; never message text)
NOTIFY_FIELDS = ("category", "bundle_id", "grant_id", "operator", "count", "locked")
_BREAKER_KEYS = {"categories", "lock", "notify", "notify_timeout_seconds"}


def _notify_problems(argv: Any) -> list[str]:
    import string

    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        return ["breaker.notify: expected a non-empty list of strings (the command and its arguments; no shell)"]
    problems = []
    if not argv[0].startswith("/") or "{" in argv[0]:
        problems.append("breaker.notify: the command must be an absolute path, without placeholders")
    for arg in argv:
        try:
            parts = list(string.Formatter().parse(arg))
        except ValueError:
            problems.append(f"breaker.notify: {arg!r} is not a valid template (use {{{{ }}}} for a literal brace)")
            continue
        for _text, name, spec, conversion in parts:
            if name is not None and (name not in NOTIFY_FIELDS or spec or conversion):
                problems.append(f"breaker.notify: unknown placeholder {{{name}}} in {arg!r} "
                                f"(known: {', '.join('{' + f + '}' for f in NOTIFY_FIELDS)})")
    return problems


def _breaker_problems(breaker: Any, roles: dict[str, Any]) -> list[str]:
    """[breaker]: categories (keywords), lock (whom to lock per category), notify (argv), its timeout."""
    if not isinstance(breaker, dict) or set(breaker) - _BREAKER_KEYS:
        return ["breaker: only categories, lock, notify and notify_timeout_seconds are allowed"]
    problems = []
    categories = breaker.get("categories") or {}
    for category, words in categories.items():
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            problems.append(f"breaker.categories.{category}: expected a non-empty list of keywords")
    for category, subjects in (breaker.get("lock") or {}).items():
        if category not in categories and category != "personal_data":
            problems.append(f"breaker.lock.{category}: not a category of [breaker.categories] (or personal_data)")
        if not isinstance(subjects, list) or not all(isinstance(x, str) and x for x in subjects):
            problems.append(f"breaker.lock.{category}: expected a list of 'operator', person ids or 'role:NAME'")
            continue
        for subject in subjects:
            role = subject[5:] if subject.startswith("role:") else None
            if role is not None and (role not in roles or role == "admin"):
                problems.append(f"breaker.lock.{category}: {subject!r} is not a role of the policy (admins are "
                                "never locked: someone must be able to unlock)")
    if "notify" in breaker:
        problems += _notify_problems(breaker["notify"])
    timeout = breaker.get("notify_timeout_seconds", 30)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 600:
        problems.append("breaker.notify_timeout_seconds must be a whole number from 1 to 600")
    return problems


MIN_ORIGINALS_DAYS = 180  # the seed: 原始记录保存周期不少于180天
_KEEP_RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


def _retention_problems(section: Any) -> list[str]:
    """Problems of ``[retention]``: originals kept at least 180 days, a known period, keep rules >= 0."""
    if not isinstance(section, dict):
        return ["retention: must be a table"]
    problems = [f"retention: unknown key {k!r}" for k in section if k not in ("originals_days", "period", "snapshots")]
    days = section.get("originals_days", MIN_ORIGINALS_DAYS)
    if not isinstance(days, int) or isinstance(days, bool) or days < MIN_ORIGINALS_DAYS:
        problems.append(f"retention.originals_days must be a whole number of at least {MIN_ORIGINALS_DAYS} "
                        "(原始记录保存周期不少于180天)")
    if section.get("period", "quarter") != "quarter":
        problems.append("retention.period must be 'quarter'")
    keep = section.get("snapshots", {})
    if not isinstance(keep, dict):
        problems.append("retention.snapshots: must be a table of keep rules")
        keep = {}
    problems += [f"retention.snapshots: unknown rule {k!r} (known: {', '.join(_KEEP_RULES)})"
                 for k in keep if k not in _KEEP_RULES]
    problems += [f"retention.snapshots.{k} must be a whole number >= 0" for k, v in keep.items()
                 if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    return problems


def _audit_problems(section: Any) -> list[str]:
    """Problems of ``[audit]``: ``witnesses`` is a list of distinct absolute folders or s3://bucket[/prefix] URLs."""
    if not isinstance(section, dict):
        return ["audit: must be a table"]
    problems = [f"audit: unknown key {k!r}" for k in section if k != "witnesses"]
    witnesses = section.get("witnesses", [])
    if not isinstance(witnesses, list) or not all(isinstance(w, str) for w in witnesses):
        return problems + ["audit.witnesses must be a list of folders or s3://bucket/prefix URLs"]
    for spec in witnesses:
        if spec.startswith("s3://"):
            if not spec[len("s3://"):].partition("/")[0]:
                problems.append(f"audit.witnesses: {spec!r} names no bucket (expected s3://bucket/prefix)")
        elif "://" in spec:
            problems.append(f"audit.witnesses: {spec!r}: only folders and s3:// witnesses are known")
        elif not Path(spec).is_absolute():
            problems.append(f"audit.witnesses: {spec!r} must be an absolute folder (on another disk or host)")
    if len(set(witnesses)) != len(witnesses):
        problems.append("audit.witnesses: a witness is listed twice")
    return problems


def check_policy_text(text: str) -> list[str]:
    """Problems of a policy file's text (TOML errors included)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"not valid TOML: {exc}"]
    return validate(data)


