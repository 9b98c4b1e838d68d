"""The circuit breaker's key-service half (熔断机制): lock the accounts the policy names, notify security.

    >>> outcome = trip(archive, custody, policy=policy, directory=directory, person="sunli", grant=grant,
    ...                bundle_id="B-1a2b", texts=read.texts,
    ...                notifiers=frozenset({"/usr/local/bin/file-ticket"}), now=now)            # doctest: +SKIP
    >>> outcome.locked, outcome.notify.status                                                      # doctest: +SKIP
    (('sunli', 'xuming'), 'ok')

Runs where a bundle's attestation is judged: in the key server, in the ``/v1/bundle/attest`` request whose
verdict is ``hold`` (the server holds the signed policy and the archive key), or in the process that
unlocked the custody in embedded mode (:meth:`~investigator.access.custodian.CustodianDesk.attest_export`).
Within that one operation it

1. judges for itself: it scans the texts of the records the key service read itself for the attestation
   (access/exportcheck.py: genuine records of the grant's window and scope) against the signed policy's
   ``[breaker.categories]`` and for personal data (``personal_data``); the client tells it nothing it
   would have to trust;
2. locks the accounts ``[breaker.lock]`` names for what it found (:mod:`investigator.authority.locks`:
   records signed by the archive key through the custody, each audited ``account.lock``), and
3. runs ``[breaker] notify`` (an argv list, no shell; placeholders only for ids, category names and
   counts) with ``notify_timeout_seconds``, if the key service's operator allowed that command
   (``investigator keyserver --notifier PATH``; ``INVESTIGATOR_BREAKER_NOTIFIERS`` in embedded mode);
   its exit status, a timeout, a missing or a not-allowed command is audited as ``breaker.notify``.
   A failing notifier undoes neither the hold nor the locks; the caller is told.

docs/threat-model.md, "The circuit breaker", says what a lying client can and cannot do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from investigator.analysis.normalize import normalize_text
from investigator.analysis.pii import detect
from investigator.authority.directory import Directory
from investigator.authority.grants import Grant
from investigator.authority.locks import PERSONAL_DATA, lock_accounts, subjects_for
from investigator.authority.policy import Policy
from investigator.authority.policy.rules import NOTIFY_FIELDS
from investigator.vault.proofs import batch_leaves
from investigator.vault.store import Archive

MAX_FINDINGS = 64  # categories or kinds a client may report (the policy's own list is the real bound)


@dataclass(frozen=True)
class NotifyOutcome:
    """How the notifier ended: ``ok`` (exit 0), ``failed`` (another exit status), ``timeout``, ``not_found``,
    ``error`` (could not be started), ``not_allowed`` (the key service's operator did not allow that
    command), or ``none`` (no notifier configured)."""

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
    known = set(policy_categories(policy))
    hits = {k: v for k, v in _counts(findings.get("categories")).items() if k in known}
    pii = sum(_counts(findings.get("pii")).values())
    names = sorted(hits) + ([PERSONAL_DATA] if pii else [])
    return names, sum(hits.values()) + pii


def policy_categories(policy: Policy) -> dict[str, list[str]]:
    """``[breaker.categories]`` of the signed policy: category -> keywords."""
    table = ((policy.raw or {}).get("breaker") or {}).get("categories") or {}
    return {str(k): [str(w) for w in v] for k, v in table.items() if isinstance(v, list)}


def scan_texts(texts: list[str], categories: dict[str, list[str]]) -> dict[str, Any]:
    """Findings in ``texts``, as reports/breaker.py counts them for a bundle: keyword hits per category
    (normalized text) and unmasked personal data per kind."""
    words = {name: [normalize_text(w) for w in ws if w] for name, ws in categories.items()}
    hits: dict[str, int] = {}
    pii: dict[str, int] = {}
    for text in texts:
        norm = normalize_text(text)
        for name, ws in words.items():
            count = sum(norm.count(w) for w in ws if w)
            if count:
                hits[name] = hits.get(name, 0) + count
        for finding in detect(text):
            pii[finding.kind] = pii.get(finding.kind, 0) + 1
    return {"categories": hits, "pii": pii}


_leaves_cache: dict[tuple[str, int, str], list[str]] = {}


def _leaves(archive: Archive, keys: Any, seq: int) -> list[str]:
    """A batch's record hashes in leaf order (hashes only), kept per process: a committed batch never changes,
    and the cache key holds its signed Merkle root (a different batch under the same number misses)."""
    manifest = next((m for m in archive.manifests() if m.seq == seq), None)
    root = str(((manifest.body.get("merkle") or {}).get("root")) if manifest is not None else "")
    key = (archive.archive_id, seq, root)
    if key not in _leaves_cache:
        if len(_leaves_cache) >= 64:
            _leaves_cache.clear()
        _leaves_cache[key] = batch_leaves(archive, keys, seq)  # checked against the manifest's root
    return _leaves_cache[key]


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


def trip(archive: Archive, keys: Any, *, policy: Policy, directory: Directory, person: str, grant: Grant,
         bundle_id: str, texts: Sequence[str], notifiers: frozenset[str] = frozenset(),
         now: datetime) -> Lockdown:
    """Lock and notify for a bundle the breaker holds (see the module docstring). Never raises for the
    notifier; raises only if a lock record cannot be written (then the hold's key is not handed out).

    What decides is the key service's own scan of ``texts``: the records it read itself for the bundle's
    attestation (access/exportcheck.py). The policy's notifier runs only if its command is one of
    ``notifiers``, the commands the key service's operator allowed (``investigator keyserver --notifier
    PATH``): the policy is an admin's, and an admin must not get to run programs where the master keys are.
    """
    verified = scan_texts(list(texts), policy_categories(policy))
    categories, count = judged_categories(policy, verified)
    to_lock, skipped = subjects_for(policy, directory, categories, operator=person)
    locks = lock_accounts(archive, keys.signing, to_lock, categories=categories, bundle_id=bundle_id,
                          grant_id=grant.id, operator=person, now=now)
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
        if str(argv[0]) in notifiers:
            notify = run_notifier([str(a) for a in argv], values,
                                  timeout=float(section.get("notify_timeout_seconds", 30)))
        else:
            notify = NotifyOutcome("not_allowed")
        archive.audit.append(person, "breaker.notify", bundle_id,
                             {"rule": "breaker.notify", "command": str(argv[0]), **notify.to_json(),
                              "categories": categories, "locked": [lk.person for lk in locks]},
                             outcome="ok" if notify.status == "ok" else "error", now=now)
    return Lockdown(tuple(categories), tuple(lk.person for lk in locks), tuple(lk.id for lk in locks),
                    tuple(skipped), notify)


__all__ = ["Lockdown", "NotifyOutcome", "judged_categories", "policy_categories", "run_notifier", "scan_texts",
           "trip"]
