"""Retention: what may go (a dry-run plan with reasons) and applying it, with two people's TOTP.

    >>> rules = retention_rules(archive)                                                  # doctest: +SKIP
    >>> plan = plan_retention(archive, [target], rules=rules, now=now)                     # doctest: +SKIP
    >>> [(i.action, i.what, i.reason) for i in plan.items][:1]                             # doctest: +SKIP
    [('shred', '2026Q1', 'ended 2026-04-01; originals kept 180 days: expired 2026-09-28')]
    >>> apply_retention(archive, custody, plan, admin="wugang", admin_totp="123456",
    ...                 approver="lixia", approver_totp="654321", now=now)                # doctest: +SKIP

The policy's ``[retention]`` (the seed: 原始记录保存周期不少于180天): ``originals_days`` (never less
than 180: the policy refuses less, and shredding refuses it whatever the policy says) and
``[retention.snapshots]``, restic-style keep rules (``keep_last``, ``keep_hourly``, ``keep_daily``,
``keep_weekly``, ``keep_monthly``, ``keep_yearly``). Copies keep their tier's ``retention_days`` (the
snapshot's retain-until). Keep rules are **measured from the current clock**: ``keep_daily = 7`` keeps
the newest snapshot of each of the seven days ending today, so a forged snapshot dated later cannot
push older ones out; a snapshot dated in the future, or whose signature fails, is never counted and
never removed (it is reported). A legal hold wins over all of it (backup/hold.py).

Applying: periods are crypto-shredded (backup/shred.py); forgotten snapshots leave a signed tombstone
(``forgotten/<seq>-<id>.json``, so the snapshot chain still verifies) and objects no remaining
snapshot names are deleted, where the target allows it (S3 refuses before the retain-until).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from investigator.authority.directory import DirectoryStore
from investigator.authority.identity import verify_totp
from investigator.authority.policy import PolicyStore, default_policy_text
from investigator.backup.hold import Hold, active_holds, held_paths, load_holds
from investigator.backup.run import load_snapshots
from investigator.backup.shred import MIN_ORIGINALS_DAYS, periods, shred_period
from investigator.backup.snapshot import Snapshot, snapshot_chain
from investigator.backup.target import OBJECTS, Target, TargetError, object_key
from investigator.custody.base import Custody
from investigator.errors import ConfigError, IntegrityError, InvestigatorError, PolicyDenied
from investigator.schema import canonical_json, format_ts
from investigator.vault.store import Archive

KEEP_RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
FORGOTTEN = "forgotten"
TOMBSTONE_FORMAT = "investigator-snapshot-forgotten/1"
FUTURE_SLACK = timedelta(minutes=5)  # clock skew tolerated before a snapshot counts as dated in the future
APPLY_ADMIN_ROLE = "admin"
APPLY_APPROVER_ROLE = "legal"


@dataclass(frozen=True)
class RetentionRules:
    """The policy's ``[retention]``: originals' minimum age, the period scheme and snapshot keep rules."""

    originals_days: int = MIN_ORIGINALS_DAYS
    period: str = "quarter"
    keep: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_policy(cls, data: Mapping[str, Any]) -> "RetentionRules":
        """From a parsed policy (the default policy's section when it has none). Raises ConfigError."""
        section = data.get("retention")
        if section is None:
            return cls.default()
        days = section.get("originals_days", MIN_ORIGINALS_DAYS)
        if not isinstance(days, int) or isinstance(days, bool) or days < MIN_ORIGINALS_DAYS:
            raise ConfigError(f"[retention] originals_days must be a whole number of at least {MIN_ORIGINALS_DAYS}")
        keep = dict(section.get("snapshots", {}))
        unknown = sorted(set(keep) - set(KEEP_RULES))
        if unknown:
            raise ConfigError(f"[retention.snapshots]: unknown rule {unknown[0]!r} (known: {', '.join(KEEP_RULES)})")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in keep.values()):
            raise ConfigError("[retention.snapshots]: each keep rule is a whole number >= 0")
        return cls(days, str(section.get("period", "quarter")), keep)

    @classmethod
    def default(cls) -> "RetentionRules":
        return cls.from_policy(tomllib.loads(default_policy_text()))


def retention_rules(archive: Archive) -> RetentionRules:
    """The rules of the archive's installed policy (signature checked); the default policy's when none is installed."""
    store = DirectoryStore(archive)
    if not archive.layout.policy_dir.exists() or not store.exists():
        return RetentionRules.default()
    try:
        policy = PolicyStore(archive).load(store.load())
    except ConfigError:
        return RetentionRules.default()
    return RetentionRules.from_policy(policy.raw) if "retention" in policy.raw else RetentionRules.default()


@dataclass(frozen=True)
class PlanItem:
    """One line of the plan: ``action`` (shred / keep-period / forget / keep-snapshot / prune), where, what, why."""

    action: str
    where: str
    what: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "where": self.where, "what": self.what, "reason": self.reason}


@dataclass
class Plan:
    """What retention would remove and keep, and why; ``problems`` are things it will not touch (forged ...)."""

    now: datetime
    items: list[PlanItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)

    def of(self, action: str) -> list[PlanItem]:
        return [i for i in self.items if i.action == action]

    def to_json(self) -> dict[str, Any]:
        return {"now": format_ts(self.now), "items": [i.to_json() for i in self.items], "problems": self.problems}


def _bucket(when: datetime, rule: str) -> tuple[int, ...]:
    if rule == "keep_hourly":
        return when.year, when.month, when.day, when.hour
    if rule == "keep_daily":
        return when.year, when.month, when.day
    if rule == "keep_weekly":
        iso = when.isocalendar()
        return iso.year, iso.week
    if rule == "keep_monthly":
        return when.year, when.month
    return (when.year,)


def _recent_buckets(now: datetime, rule: str, n: int) -> list[tuple[int, ...]]:
    """The ``n`` buckets ending with the one ``now`` is in, newest first (measured from the clock)."""
    step = {"keep_hourly": timedelta(hours=1), "keep_daily": timedelta(days=1), "keep_weekly": timedelta(weeks=1),
            "keep_monthly": timedelta(days=28), "keep_yearly": timedelta(days=365)}[rule]
    out: list[tuple[int, ...]] = []
    probe = now
    while len(out) < n:
        bucket = _bucket(probe, rule)
        if bucket not in out:
            out.append(bucket)
        probe -= step
    return out


def _created(snap: Snapshot) -> datetime:
    return datetime.fromisoformat(str(snap.body["created"]).replace("Z", "+00:00")).astimezone(timezone.utc)


def _retain_until(snap: Snapshot) -> datetime:
    return datetime.fromisoformat(str(snap.body["retain_until"]).replace("Z", "+00:00")).astimezone(timezone.utc)


def keep_reasons(snapshots: list[Snapshot], keep: Mapping[str, int], now: datetime) -> dict[str, list[str]]:
    """Snapshot id -> the keep rules that keep it (restic-style, buckets counted back from ``now``)."""
    reasons: dict[str, list[str]] = {s.id: [] for s in snapshots}
    newest_first = sorted(snapshots, key=_created, reverse=True)
    for snap in newest_first[:keep.get("keep_last", 0)]:
        reasons[snap.id].append("keep_last")
    for rule in KEEP_RULES[1:]:
        wanted = _recent_buckets(now, rule, keep.get(rule, 0))
        seen: set[tuple[int, ...]] = set()
        for snap in newest_first:
            bucket = _bucket(_created(snap), rule)
            if bucket in wanted and bucket not in seen:
                seen.add(bucket)
                reasons[snap.id].append(rule)
    return reasons


def _plan_target(archive: Archive, target: Target, rules: RetentionRules, held: set[str], plan: Plan) -> None:
    now = plan.now
    where = target.url
    snapshots, bad = load_snapshots(target)
    plan.problems += [f"{where}/{key}: does not parse; kept, and nothing is pruned here" for key in bad]
    counted: list[Snapshot] = []
    for snap in snapshots:
        try:
            snap.verify_signature(snapshot_chain(target, snap), what=f"{where}/{snap.key}")
        except IntegrityError as exc:
            plan.problems.append(f"{where}/{snap.key}: signature does not verify ({exc}); kept, never counted")
            plan.items.append(PlanItem("keep-snapshot", where, snap.id, "signature does not verify"))
            continue
        if _created(snap) > now + FUTURE_SLACK:
            plan.problems.append(f"{where}/{snap.key}: dated {snap.body['created']}, in the future; kept, "
                                 "never counted")
            plan.items.append(PlanItem("keep-snapshot", where, snap.id, "dated in the future (not counted)"))
            continue
        counted.append(snap)
    reasons = keep_reasons(counted, rules.keep, now)
    kept_objects: set[str] = set()
    forgotten: list[Snapshot] = []
    for snap in snapshots:
        if snap not in counted:
            kept_objects.update(object_key(f.object) for f in snap.files)
            continue
        why = list(reasons[snap.id])
        if _retain_until(snap) > now:
            why.append(f"{snap.tier} tier retain-until {snap.body['retain_until']}")
        holding = sorted({f.path for f in snap.files} & held)
        if holding:
            why.append(f"holds data under a legal hold ({len(holding)} files)")
        if why:
            plan.items.append(PlanItem("keep-snapshot", where, snap.id, "; ".join(why)))
            kept_objects.update(object_key(f.object) for f in snap.files)
        else:
            forgotten.append(snap)
            plan.items.append(PlanItem("forget", where, snap.id,
                                       f"created {snap.body['created']}, retain-until {snap.body['retain_until']} "
                                       "passed, no keep rule or hold keeps it"))
    if bad or not forgotten:
        return
    held_objects = {object_key(f.object) for s in snapshots for f in s.files if f.path in held}
    candidates = {object_key(f.object) for s in forgotten for f in s.files}
    for key in sorted(candidates - kept_objects - held_objects):
        plan.items.append(PlanItem("prune", where, key, "named only by forgotten snapshots"))


def plan_retention(archive: Archive, targets: list[Target], *, rules: RetentionRules | None = None,
                   now: datetime | None = None, master_versions: set[int] | None = None) -> Plan:
    """What retention would do now (nothing is changed). ``master_versions``: the custody's master-key
    versions (from the key file when None and the custody is a file; else every master-wrapped key counts)."""
    rules = rules or retention_rules(archive)
    plan = Plan(now or datetime.now(timezone.utc))
    holds = active_holds(archive)
    if master_versions is None and archive.layout.key_file.exists():
        master_versions = {int(e["version"]) for e in
                           json.loads(archive.layout.key_file.read_text(encoding="utf-8")).get("keks", [])}
    for info in periods(archive, master_versions=master_versions):
        if info.destroyed:
            continue
        expires = info.expires(rules.originals_days)
        blocking = [h for h in holds if h.overlaps(info.start, info.end)]
        if expires > plan.now:
            reason = f"younger than {max(rules.originals_days, MIN_ORIGINALS_DAYS)} days: kept until {format_ts(expires)}"
        elif blocking:
            reason = f"held by {', '.join(h.id for h in blocking)} (case {blocking[0].case})"
        elif info.master_wrapped:
            reason = (f"{info.master_wrapped} data key(s) under a master-key version that still exists "
                      "(written before period keys): not shreddable")
        else:
            plan.items.append(PlanItem("shred", "archive", info.period,
                                       f"ended {format_ts(info.end)}; originals kept {rules.originals_days} days: "
                                       f"expired {format_ts(expires)}; {info.chunks} chunks, {info.rows} rows"))
            continue
        plan.items.append(PlanItem("keep-period", "archive", info.period, reason))
    held = held_paths(archive, holds)
    for target in targets:
        plan.targets[target.url] = target
        try:
            _plan_target(archive, target, rules, held, plan)
        except TargetError as exc:
            plan.problems.append(f"{target.url}: {exc}; nothing planned there")
    return plan


def tombstone_key(snap: Snapshot) -> str:
    return f"{FORGOTTEN}/{snap.key.rsplit('/', 1)[1]}"


def forget_snapshot(target: Target, snap: Snapshot, *, signer: Any, now: datetime, reason: str) -> None:
    """Replace a snapshot manifest by a signed tombstone (seq, id, digest, parent), then delete it."""
    body = {"format": TOMBSTONE_FORMAT, "archive_id": snap.body["archive_id"], "seq": snap.seq, "id": snap.id,
            "digest": snap.digest, "parent": snap.parent, "created": snap.body["created"],
            "forgotten": format_ts(now), "reason": reason}
    record = {"body": body, "key_id": signer.public.key_id, "signature": signer.sign(canonical_json(body))}
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    target.put(tombstone_key(snap), data, retain_until=None)
    if target.get(tombstone_key(snap)) != data:
        raise TargetError("tombstone read back differs", path=f"{target.url}/{tombstone_key(snap)}")
    target.delete(snap.key)


def load_tombstones(target: Target) -> dict[int, dict[str, Any]]:
    """seq -> tombstone record (unverified; check.py verifies each against the snapshot chain)."""
    out: dict[int, dict[str, Any]] = {}
    for key, _size in target.list(f"{FORGOTTEN}/"):
        try:
            record = json.loads(target.get(key))
            out[int(record["body"]["seq"])] = record
        except (ValueError, KeyError, TypeError, TargetError):
            continue
    return out


def lift_released_holds(archive: Archive, target: Target) -> int:
    """Clear the S3 legal hold of objects that only released holds kept (never one an active hold keeps).

    Returns how many objects were cleared; a no-op on a target that enforces no lock.
    """
    if not target.enforces_lock:
        return 0
    holds = load_holds(archive)
    released = [h for h in holds if not h.active]
    if not released:
        return 0
    still = held_paths(archive, [h for h in holds if h.active])
    lifted = held_paths(archive, released) - still
    snapshots = load_snapshots(target)[0]
    keys = {object_key(f.object) for s in snapshots for f in s.files if f.path in lifted}
    for key in sorted(keys):
        target.legal_hold(key, False)
    for snap in snapshots:  # a manifest held with its data: lifted when it names nothing still held
        paths = {f.path for f in snap.files}
        if paths & lifted and not paths & still:
            target.legal_hold(snap.key, False)
    return len(keys)


@dataclass
class ApplyResult:
    shredded: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    pruned: int = 0
    refused: list[str] = field(default_factory=list)
    holds_lifted: int = 0


def _check_people(archive: Archive, custody: Custody, *, admin: str, admin_totp: str, approver: str,
                  approver_totp: str, now: datetime) -> None:
    directory = DirectoryStore(archive).load()
    problems = []
    a, b = directory.find(admin), directory.find(approver)
    if a is None or not a.active or APPLY_ADMIN_ROLE not in a.roles:
        problems.append(f"{admin} is not an active admin")
    if b is None or not b.active or APPLY_APPROVER_ROLE not in b.roles:
        problems.append(f"{approver} has no legal role")
    if admin == approver:
        problems.append("the admin and the legal approver must be two people")
    if problems:
        reason = "; ".join(problems)
        archive.audit.append(admin, "retention.apply", archive.archive_id,
                             {"rule": "retention.apply", "reason": reason, "approver": approver},
                             outcome="denied", now=now)
        raise PolicyDenied(f"retention apply needs an admin and a person with the legal role ({reason})",
                           rule="retention.apply")
    verify_totp(archive, custody, admin, admin_totp, now=now, purpose="retention.apply")
    verify_totp(archive, custody, approver, approver_totp, now=now, purpose="retention.approve")


def apply_retention(archive: Archive, custody: Custody, plan: Plan, *, admin: str, admin_totp: str, approver: str,
                    approver_totp: str, now: datetime | None = None) -> ApplyResult:
    """Carry out ``plan``: shred periods, forget snapshots (tombstones), prune objects. Audited as ``retention.apply``.

    Needs ``admin`` (admin role) and ``approver`` (legal role), two people, each with a TOTP code:
    PolicyDenied / IdentityCheckFailed otherwise (audited). Holds are checked again at each step
    (a hold added after the plan still wins). A step a target refuses is reported, not fatal.
    """
    when = now or datetime.now(timezone.utc)
    _check_people(archive, custody, admin=admin, admin_totp=admin_totp, approver=approver,
                  approver_totp=approver_totp, now=when)
    rules = retention_rules(archive)
    result = ApplyResult()
    for item in plan.of("shred"):
        try:
            shred_period(archive, custody, item.what, actor=admin, approver=approver,
                         originals_days=rules.originals_days, now=when)
            result.shredded.append(item.what)
        except InvestigatorError as exc:
            result.refused.append(f"shred {item.what}: {exc}")
    holds: list[Hold] = active_holds(archive)
    held = held_paths(archive, holds)
    for url, target in plan.targets.items():
        try:
            result.holds_lifted += lift_released_holds(archive, target)
        except TargetError as exc:
            result.refused.append(f"lift released holds on {url}: {exc}")
        snapshots = {s.id: s for s in load_snapshots(target)[0]}
        forgotten_here = []
        for item in (i for i in plan.of("forget") if i.where == url):
            snap = snapshots.get(item.what)
            if snap is None:
                continue
            if {f.path for f in snap.files} & held:
                result.refused.append(f"forget {item.what} on {url}: holds data under a legal hold")
                continue
            try:
                forget_snapshot(target, snap, signer=custody.signing, now=when, reason=item.reason)
                result.forgotten.append(f"{url}:{item.what}")
                forgotten_here.append(snap)
            except TargetError as exc:
                result.refused.append(f"forget {item.what}: {exc}")
        remaining = load_snapshots(target)[0]
        still_named = {object_key(f.object) for s in remaining for f in s.files}
        held_objects = {object_key(f.object) for s in [*remaining, *forgotten_here] for f in s.files
                        if f.path in held}
        present = dict(target.list(f"{OBJECTS}/"))
        for item in (i for i in plan.of("prune") if i.where == url):
            if item.what in still_named or item.what in held_objects or item.what not in present:
                continue
            try:
                target.delete(item.what)
                result.pruned += 1
            except TargetError as exc:
                result.refused.append(f"prune {item.what}: {exc}")
    archive.audit.append(admin, "retention.apply", archive.archive_id,
                         {"approver": approver, "shredded": result.shredded, "forgotten": len(result.forgotten),
                          "pruned": result.pruned, "refused": len(result.refused),
                          "legal_holds_lifted": result.holds_lifted}, now=when)
    archive.audit.checkpoint(custody.signing, archive_id=archive.archive_id, now=when)
    return result
