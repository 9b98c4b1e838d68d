"""The decision files against the signed state heads and the audit log (issue #13, item 2): the authority's half.

    >>> require_state(archive, actor="sunli", action="case.open", target="G-1", now=now)   # doctest: +SKIP
    Traceback (most recent call last):
    PolicyDenied: org/revocations.jsonl: state head 7 covers its first 912 bytes; they are cut to 455 ...
    >>> report = verify_state(archive)                                                     # doctest: +SKIP

:mod:`investigator.vault.statehead` knows files and hashes; this module knows what
they mean. It installs there

- the *facts* a head keeps about replaced files: a TOTP state's last used step,
  its newest failure and lock-out; whether a session was revoked;
- the *judge* of changes since the newest head (the crash window between a
  file and its head, or a client's change the key service has not headed yet):
  a TOTP step below the one the head covers (a used code would replay), a
  lock-out or failures gone without an audited ``people.unlock``, a session
  revocation undone;

and cross-checks files against the audit entries that record them: every
``grant.revoke`` has its revocation line, every ``request.approve`` /
``request.reject`` its approval file, every ``people.*`` with a directory
version that version, every ``policy.set`` its policy version, and no TOTP
state is below the highest step the log records for that person. Loads check
the audit log's tail after the newest head (cheap, :func:`require_state`, on
every :func:`~investigator.authority.policy.load_org`); ``investigator verify``
checks every head's signature, chain and pin and the whole log
(:func:`verify_state`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from investigator.errors import ConfigError, IntegrityError, PolicyDenied
from investigator.vault.statehead import (HEADS, PIN_ACTION, FileState, LogEntry, StateView, check_state,
                                          log_entries, read_heads, set_facts, set_judge, set_verifier,
                                          summarize)
from investigator.verification import Verification

if TYPE_CHECKING:
    from investigator.vault.store import Archive

RULE = "state.head"
_UNLOCKS = ("people.unlock", "people.enroll_totp")


# --- facts kept in the heads ------------------------------------------------------------------

def file_facts(component: str, relative: str, data: bytes) -> Mapping[str, Any] | None:
    """What a head keeps about a replaced file besides its hash (nothing secret: steps, times, flags)."""
    if component not in ("totp", "sessions"):
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if component == "sessions":
        return {"revoked": str(doc.get("revoked") or "")}
    raw = doc.get("state")
    state: dict[str, Any] = raw if isinstance(raw, dict) else {}
    failures = [str(f) for f in state.get("failures") or [] if isinstance(f, str)]
    try:
        counter = int(state.get("last_counter", -1))
    except (TypeError, ValueError):
        counter = -1
    return {"last_counter": counter, "last_failure": max(failures) if failures else "",
            "locked_until": str(state.get("locked_until") or "")}


def _person_of(relative: str) -> str:
    name = relative.rsplit("/", 1)[-1]
    return name[:-5] if name.endswith(".json") else name


# --- judging changes since the newest head -----------------------------------------------------

def judge(archive: "Archive", view: StateView) -> list[str]:
    """Problems with what changed since the newest head and with the log's tail after it (never raises)."""
    problems: list[str] = []
    seq = view.newest.seq if view.newest else 0
    unlocked = {e.target for e in view.tail if e.action in _UNLOCKS and e.outcome in ("ok", "allowed")}
    for relative, (old, new) in sorted(view.replaced.items()):
        before, after = old.facts or {}, new.facts or {}
        if relative.startswith("org/totp/"):
            person = _person_of(relative)
            was, now_ = int(before.get("last_counter", -1)), int(after.get("last_counter", -1))
            if now_ < was:
                problems.append(f"{relative}: last used TOTP step {now_} is below step {was}, which state head {seq} "
                                "covers (an older TOTP state restored: a used code would work again)")
                continue
            if person in unlocked or now_ > was:
                continue
            locked = str(before.get("locked_until") or "")
            # (an expired lock-out stays in the file until the next code: whether it expired is not the point)
            if locked and str(after.get("locked_until") or "") < locked:
                problems.append(f"{relative}: the lock-out until {locked} that state head {seq} covers is gone without "
                                "an audited people.unlock (an older TOTP state restored)")
            elif str(after.get("last_failure") or "") < str(before.get("last_failure") or ""):
                problems.append(f"{relative}: failed codes that state head {seq} covers are gone without an audited "
                                "people.unlock or a valid code (an older TOTP state restored)")
        elif relative.startswith("org/sessions/"):
            if before.get("revoked") and not after.get("revoked"):
                problems.append(f"{relative}: revoked at {before['revoked']} under state head {seq}, now not revoked "
                                "(an older session record restored)")
    problems.extend(cross_check(archive, view.tail, view.files))
    return problems


# --- files against the audit entries that record them -----------------------------------------------

def _revoked_grants(archive: "Archive") -> set[str]:
    try:
        data = archive.layout.revocations.read_bytes()
    except FileNotFoundError:
        return set()
    out = set()
    for line in data.splitlines():
        try:
            out.add(str(json.loads(line)["body"]["grant_id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _approvers(archive: "Archive", request_id: str) -> set[str]:
    try:
        folder = archive.layout.approvals_dir(request_id)
    except ConfigError:  # a target that is no plain name: no approval file can exist for it
        return set()
    if not folder.is_dir():
        return set()
    return {p.stem.split("-", 1)[-1] for p in folder.glob("*.json") if not p.name.startswith(".")}


def _exists(archive: "Archive", kind: str, name: str) -> bool:
    try:
        path = archive.layout.grant(name) if kind == "grant" else archive.layout.request_file(name)
    except ConfigError:  # a target that is no plain name names no file
        return False
    return path.exists()


def cross_check(archive: "Archive", entries: Iterable[LogEntry], files: Mapping[str, Any]) -> list[str]:
    """Each decision an audit entry records must be in the files; each problem names the file and the log line."""
    problems: list[str] = []
    revoked: set[str] | None = None
    highest: dict[str, tuple[int, int]] = {}
    for e in entries:
        where = f"audit/log.jsonl line {e.seq}"
        # (only for a grant or request that exists: their own files are covered by the heads, and an entry naming
        # one that never existed undoes nothing)
        if e.action == "grant.revoke" and e.outcome in ("ok", "allowed") and e.details.get("rule") == "grant.revoke":
            revoked = _revoked_grants(archive) if revoked is None else revoked
            if e.target not in revoked and _exists(archive, "grant", e.target):
                problems.append(f"org/revocations.jsonl: no revocation of {e.target}, which {where} records (a "
                                "revocation deleted: the grant would open again)")
        elif e.action in ("request.approve", "request.reject") and e.outcome == "allowed":
            if e.actor not in _approvers(archive, e.target) and _exists(archive, "request", e.target):
                kind = "rejection" if e.action == "request.reject" else "approval"
                problems.append(f"org/requests/{e.target}/approvals/: no {kind} by {e.actor}, which {where} records "
                                f"(a {kind} deleted)")
        elif e.action.startswith("people.") and e.outcome == "ok" and "directory_version" in e.details:
            try:
                version = int(e.details["directory_version"])
            except (TypeError, ValueError):
                continue  # (an entry that does not parse: the log's own verification names it)
            if f"org/directory/{version:06d}.json" not in files:
                problems.append(f"org/directory/{version:06d}.json: missing, but {where} records that version (a "
                                "directory version deleted)")
        elif e.action == "policy.set" and e.outcome == "ok" and e.target.startswith("policy v"):
            try:
                version = int(e.target[len("policy v"):])
            except ValueError:
                continue
            if f"org/policy/{version:06d}.toml" not in files:
                problems.append(f"org/policy/{version:06d}.toml: missing, but {where} records that version (a policy "
                                "version deleted)")
        elif e.action.startswith("totp.") and e.outcome == "allowed" and type(e.details.get("counter")) is int:
            step = int(e.details["counter"])
            if step > highest.get(e.target, (-1, 0))[0]:
                highest[e.target] = (step, e.seq)
    for person, (step, seq) in sorted(highest.items()):
        relative = f"org/totp/{person}.json"
        state = files.get(relative)
        facts = getattr(state, "facts", None) or {}
        if state is not None and int(facts.get("last_counter", -1)) < step:
            problems.append(f"{relative}: last used TOTP step {facts.get('last_counter')} is below step {step}, which "
                            f"audit/log.jsonl line {seq} records as used (an older TOTP state restored)")
    return problems


# --- loads: fail closed ------------------------------------------------------------------------

def state_problems(archive: "Archive") -> list[str]:
    """The problems of the files against the newest head and the log's tail (the cheap check of every load)."""
    try:
        return check_state(archive).problems
    except (OSError, IntegrityError) as exc:  # the heads or the log cannot be read at all
        return [f"{HEADS}: cannot be checked ({type(exc).__name__})"]


def require_state(archive: "Archive", *, actor: str, action: str, target: str, now: datetime) -> None:
    """Raise PolicyDenied (rule ``state.head``, audited) when the decision files do not check out."""
    problems = state_problems(archive)
    if not problems:
        return
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    reason = f"the decision state does not match its signed state head: {problems[0]}{more}"
    archive.audit.append(actor, action, target, {"rule": RULE, "reason": reason}, outcome="denied", now=now)
    raise PolicyDenied(reason + "; run 'investigator verify --offline' for every problem", rule=RULE)


def state_check(archive: "Archive", report: Verification) -> None:
    """The :data:`~investigator.vault.audited_state.StateCheck` of ``open`` (GrantGate ``state_checks``)."""
    for problem in state_problems(archive):
        report.problem(problem)


# --- verify: everything ------------------------------------------------------------------------

def verify_state(archive: "Archive", report: Verification | None = None) -> Verification:
    """Every head (signature, chain, pin), the files against the newest, and the whole log's cross-check.

    Each problem names its file and position. Never raises for what it finds.
    """
    report = report or Verification("state heads")
    layout = archive.layout
    heads = read_heads(layout, archive_id=archive.archive_id)
    for problem in heads.problems:
        report.problem(problem)
    try:
        keys = archive.signing_keys()
        for head in heads.heads:
            try:
                head.verify(keys)
            except IntegrityError as exc:
                report.problem(f"{HEADS}, line {head.line}: {exc}")
    except IntegrityError as exc:
        report.problem(str(exc))
    files: dict[str, FileState] = {}
    for head in heads.heads:  # each head's digests against the files its chain lists so far
        files.update(head.changes)
        mine = summarize(files)
        for name, summary in head.components.items():
            if name in mine and isinstance(summary, dict) and summary.get("digest") != mine[name]["digest"]:
                report.problem(f"{HEADS}, line {head.line}: component {name}: its digest does not match the files "
                               "its heads list")
    try:
        log = archive.audit.log_path.read_bytes()
    except FileNotFoundError:
        log = b""
    entries = list(log_entries(log))
    by_seq = {h.seq: h for h in heads.heads}
    pinned: set[int] = set()
    for e in entries:
        if e.action != PIN_ACTION or e.outcome != "ok" or "seq" not in e.details:
            if e.action == PIN_ACTION and e.outcome == "error":
                report.warn(f"audit/log.jsonl line {e.seq}: the key service refused to write a state head: "
                            f"{e.details.get('reason', '')}")
            continue
        seq = e.details.get("seq")
        found = by_seq.get(seq) if isinstance(seq, int) else None
        if found is not None and found.hash == e.details.get("sha256"):
            pinned.add(found.seq)
            continue
        if found is None:
            report.problem(f"{HEADS}: the audit log pins state head {seq} (audit/log.jsonl line {e.seq}), which the "
                           f"file {'lacks' if heads.present else 'is missing for'} (heads deleted, or an older org/ "
                           "restored)")
        else:
            report.problem(f"{HEADS}, line {found.line}: head {seq} is not the head audit/log.jsonl line {e.seq} pins "
                           "(a head replaced or swapped)")
    for head in heads.heads[:-1]:
        if head.seq not in pinned:
            report.problem(f"{HEADS}, line {head.line}: head {head.seq} is pinned by no state.head audit entry")
    view = check_state(archive, log=log, judge=False)
    for problem in view.problems:
        if problem not in report.problems:
            report.problem(problem)
    for warning in view.warnings:
        report.warn(warning)
    if view.ok:
        for problem in judge(archive, StateView(view.newest, view.files, view.covered, [], replaced=view.replaced)):
            report.problem(problem)
        for problem in cross_check(archive, entries, view.files):
            if problem not in report.problems:
                report.problem(problem)
    if view.pending and view.newest is not None:
        report.warn(f"{HEADS}: {len(view.added) + len(view.replaced)} file(s) changed since state head "
                    f"{view.newest.seq}, each recorded by the audit log (the next decision heads them)")
    report.counts["state_heads"] = len(heads.heads)
    components = summarize(view.files)
    report.counts["state_files"] = sum(int(c["count"]) for c in components.values())
    return report


def _verify_into(archive: "Archive", report: Verification) -> None:
    verify_state(archive, report)


def _install() -> None:
    set_facts(file_facts)
    set_judge(judge)
    set_verifier(_verify_into)


_install()  # the seam (as authority/policy installs the witness list): vault/statehead.py asks these

__all__ = ["RULE", "cross_check", "file_facts", "judge", "require_state", "state_check", "state_problems",
           "verify_state"]
