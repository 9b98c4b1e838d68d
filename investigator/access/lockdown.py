"""The circuit breaker's key-service half (熔断机制): lock the accounts the policy names, notify security.

    >>> outcome = trip(archive, custody, policy=policy, directory=directory, person="sunli", grant=grant,
    ...                bundle_id="B-1a2b", findings={"categories": {"bribery": 2}, "pii": {}}, now=now)  # doctest: +SKIP
    >>> outcome.locked, outcome.notify.status                                                      # doctest: +SKIP
    (('sunli', 'xuming'), 'ok')

Runs where the hold is decided and the held bundle's key is made: in the key server, next to
``/v1/bundle/held-key`` (the server holds the signed policy and the archive key), or in the process that
unlocked the custody in embedded mode (:class:`~investigator.access.custodian.CustodianDesk`). Within
that one operation it

1. takes the categories found (the client's findings, kept only where the signed policy knows the
   category: ``[breaker.categories]`` names, and ``personal_data`` when unmasked personal data was found),
2. locks the accounts ``[breaker.lock]`` names for them (:mod:`investigator.authority.locks`: records
   signed by the archive key through the custody, each audited ``account.lock``), and
3. runs ``[breaker] notify`` (an argv list, no shell; placeholders only for ids, category names and
   counts) with ``notify_timeout_seconds``; its exit status, a timeout or a missing command is audited as
   ``breaker.notify``. A failing notifier undoes neither the hold nor the locks; the caller is told.

docs/threat-model.md, "The circuit breaker", says what a client that lies about its findings can do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from investigator.authority.directory import Directory
from investigator.authority.grants import Grant
from investigator.authority.locks import PERSONAL_DATA, lock_accounts, subjects_for
from investigator.authority.policy import Policy
from investigator.authority.policy.rules import NOTIFY_FIELDS
from investigator.vault.store import Archive

MAX_FINDINGS = 64  # categories or kinds a client may report (the policy's own list is the real bound)


@dataclass(frozen=True)
class NotifyOutcome:
    """How the notifier ended: ``ok`` (exit 0), ``failed`` (another exit status), ``timeout``, ``not_found``,
    ``error`` (could not be started), or ``none`` (no notifier configured)."""

    status: str
    exit_code: int | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "seconds": round(self.seconds, 3)}

    @classmethod
    def from_json(cls, obj: Any) -> "NotifyOutcome":
        obj = obj if isinstance(obj, dict) else {}
        code = obj.get("exit_code")
        return cls(str(obj.get("status") or "none"), code if isinstance(code, int) else None,
                   float(obj.get("seconds") or 0.0))


@dataclass(frozen=True)
class Lockdown:
    """What the breaker did beyond the hold: categories judged, accounts locked (and named but not locked),
    the notifier's outcome."""

    categories: tuple[str, ...] = ()
    locked: tuple[str, ...] = ()
    lock_ids: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    notify: NotifyOutcome = NotifyOutcome("none")

    def to_json(self) -> dict[str, Any]:
        return {"categories": list(self.categories), "locked": list(self.locked), "lock_ids": list(self.lock_ids),
                "skipped": list(self.skipped), "notify": self.notify.to_json()}

    @classmethod
    def from_json(cls, obj: Any) -> "Lockdown":
        obj = obj if isinstance(obj, dict) else {}

        def names(key: str) -> tuple[str, ...]:
            value = obj.get(key)
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        return cls(names("categories"), names("locked"), names("lock_ids"), names("skipped"),
                   NotifyOutcome.from_json(obj.get("notify")))


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in list(value.items())[:MAX_FINDINGS]
            if isinstance(v, int) and not isinstance(v, bool) and v > 0}


def judged_categories(policy: Policy, findings: Any) -> tuple[list[str], int]:
    """The categories of ``findings`` the signed policy knows (sorted), and their total count.

    ``findings``: ``{"categories": {name: hits}, "pii": {kind: count}}`` (a bundle's breaker verdict).
    A name the policy does not list is dropped: a client cannot invent a category.
    """
    findings = findings if isinstance(findings, dict) else {}
    known = set(((policy.raw or {}).get("breaker") or {}).get("categories") or {})
    hits = {k: v for k, v in _counts(findings.get("categories")).items() if k in known}
    pii = sum(_counts(findings.get("pii")).values())
    names = sorted(hits) + ([PERSONAL_DATA] if pii else [])
    return names, sum(hits.values()) + pii


def run_notifier(argv: list[str], values: dict[str, str], *, timeout: float) -> NotifyOutcome:
    """Run the notifier ``argv`` (placeholders filled from ``values``), no shell, stdin closed, output dropped."""
    command = [arg.format_map(values) for arg in argv]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, shell=False, start_new_session=True)
    except FileNotFoundError:
        return NotifyOutcome("not_found", None, time.monotonic() - started)
    except OSError:
        return NotifyOutcome("error", None, time.monotonic() - started)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: whatever it started goes too
        except ProcessLookupError:
            pass
        proc.wait()
        return NotifyOutcome("timeout", None, time.monotonic() - started)
    return NotifyOutcome("ok" if code == 0 else "failed", code, time.monotonic() - started)


def trip(archive: Archive, signing: Any, *, policy: Policy, directory: Directory, person: str, grant: Grant,
         bundle_id: str, findings: Any, now: datetime) -> Lockdown:
    """Lock and notify for a bundle the breaker holds (see the module docstring). Never raises for the
    notifier; raises only if a lock record cannot be written (then the hold's key is not handed out)."""
    categories, count = judged_categories(policy, findings)
    to_lock, skipped = subjects_for(policy, directory, categories, operator=person)
    locks = lock_accounts(archive, signing, to_lock, categories=categories, bundle_id=bundle_id, grant_id=grant.id,
                          operator=person, now=now)
    if skipped:
        archive.audit.append(person, "account.lock", ",".join(skipped),
                             {"rule": "breaker.lock", "bundle_id": bundle_id, "skipped": skipped,
                              "reason": "named by [breaker.lock] but not locked: unknown, departed, or an admin"},
                             outcome="denied", now=now)
    section = (policy.raw or {}).get("breaker") or {}
    argv = section.get("notify")
    notify = NotifyOutcome("none")
    if isinstance(argv, list) and argv:
        values = {"category": ",".join(categories) or "-", "bundle_id": bundle_id, "grant_id": grant.id,
                  "operator": person, "count": str(count), "locked": str(len(locks))}
        assert set(values) == set(NOTIFY_FIELDS)
        notify = run_notifier([str(a) for a in argv], values,
                              timeout=float(section.get("notify_timeout_seconds", 30)))
        archive.audit.append(person, "breaker.notify", bundle_id,
                             {"rule": "breaker.notify", "command": str(argv[0]), **notify.to_json(),
                              "categories": categories, "locked": [lk.person for lk in locks]},
                             outcome="ok" if notify.status == "ok" else "error", now=now)
    return Lockdown(tuple(categories), tuple(lk.person for lk in locks), tuple(lk.id for lk in locks),
                    tuple(skipped), notify)


__all__ = ["Lockdown", "NotifyOutcome", "judged_categories", "run_notifier", "trip"]
