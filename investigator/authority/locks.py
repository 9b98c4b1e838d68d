"""Account locks of the circuit breaker (熔断机制: 冻结相关账号), and their unlocks by an admin with a reason.

    >>> locks = lock_accounts(archive, custody.signing, ["sunli"], trigger={"bundle_id": "B-1", ...}, now=now)  # doctest: +SKIP
    >>> [lock.id for lock in active_locks(archive, directory, "sunli")]                          # doctest: +SKIP
    ['LOCK-20261128-1a2b3c4d']
    >>> unlock_account(archive, custody, "sunli", admin="wugang", reason="false positive, checked",
    ...                totp="123456", signed_at=now, signature=sig, now=now)                    # doctest: +SKIP

When the circuit breaker holds an export, the key service locks the accounts the signed policy names
for the categories found (``[breaker.lock]``, docs/policy.md). A lock is a record
``org/locks/<LOCK-id>.json`` signed by the archive key (through the custody: only the key service,
which decided the hold, can write one that verifies); an unlock is a separate record
``org/locks/<UNLOCK-id>.json`` signed with an admin's personal key, naming the locks it lifts and the
admin's reason, checked against the directory's roles. Both are written once (``O_EXCL``).
Separated duties: a locked person never unlocks themselves, and an unlock without a reason is refused.

While a lock is active, :func:`refuse_if_locked` (called by :func:`~investigator.authority.policy.load_org`,
the loader of every decision a person takes part in) refuses the person with rule ``account.locked``,
audited under the refused action. Fail closed: a lock record that does not verify still locks the person
it names (and says so); an unlock that does not verify lifts nothing.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from investigator._fs import fsync_dir, make_dirs, write_synced
from investigator.authority.directory import ADMIN_ROLE, Directory, DirectoryStore
from investigator.errors import ConfigError, IntegrityError, PolicyDenied
from investigator.schema import canonical_json, format_ts
from investigator.vault.store import Archive

LOCK_FORMAT = "investigator-account-lock/1"
UNLOCK_FORMAT = "investigator-account-unlock/1"
LOCKED_RULE = "account.locked"
ARCHIVE_SIGNER = "archive"
OPERATOR = "operator"      # in [breaker.lock]: the person whose export tripped the breaker
ROLE_PREFIX = "role:"      # in [breaker.lock]: every active holder of a role
PERSONAL_DATA = "personal_data"  # the pseudo-category of unmasked personal data (pii)
UNLOCK_ID_RE = re.compile(r"^UNLOCK-\d{8}-[0-9a-f]{8}$")


@dataclass(frozen=True)
class AccountLock:
    """One lock as stored: its signed body, the unlock that lifted it (if any), and what verifying found."""

    body: dict[str, Any]
    signature: dict[str, Any]
    unlock: dict[str, Any] | None = None
    problem: str = ""  # why the lock record does not verify ('' when it does); it locks all the same

    @property
    def id(self) -> str:
        return str(self.body.get("id", ""))

    @property
    def person(self) -> str:
        return str(self.body.get("person", ""))

    @property
    def active(self) -> bool:
        return self.unlock is None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: self.body.get(k) for k in ("id", "person", "categories", "bundle_id", "grant_id",
                                                            "operator", "created")}
        out["active"] = self.active
        if self.unlock is not None:
            out.update(unlocked=self.unlock["body"].get("unlocked"), unlocked_by=self.unlock["body"].get("by"),
                       unlock_reason=self.unlock["body"].get("reason"), unlock_id=self.unlock["body"].get("id"))
        if self.problem:
            out["problem"] = self.problem
        return out


# --- reading ---------------------------------------------------------------------------------

def _records(archive: Archive) -> list[tuple[str, dict[str, Any] | None]]:
    folder = archive.layout.account_locks_dir
    if not folder.is_dir():
        return []
    out: list[tuple[str, dict[str, Any] | None]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_bytes())
            out.append((path.name, record if isinstance(record, dict) else None))
        except (OSError, ValueError):
            out.append((path.name, None))
    return out


def _lock_problem(archive: Archive, record: dict[str, Any], name: str) -> str:
    body, sig = record.get("body"), record.get("signature")
    if not isinstance(body, dict) or not isinstance(sig, dict):
        return "not a signed record"
    if body.get("format") != LOCK_FORMAT or body.get("archive_id") != archive.archive_id \
            or f"{body.get('id')}.json" != name:
        return "not a lock of this archive filed under its own id"
    if sig.get("signer") != ARCHIVE_SIGNER:
        return "a lock is signed by the archive key only"
    try:
        archive.signing_keys().verify(str(sig.get("signature")), canonical_json(body), key_id=str(sig.get("key_id")))
    except IntegrityError:
        return "the archive's signature does not verify"
    return ""


def _unlock_problem(archive: Archive, directory: Directory, record: dict[str, Any], name: str) -> str:
    body, sig = record.get("body"), record.get("signature")
    if not isinstance(body, dict) or not isinstance(sig, dict):
        return "not a signed record"
    if body.get("format") != UNLOCK_FORMAT or body.get("archive_id") != archive.archive_id \
            or f"{body.get('id')}.json" != name or not isinstance(body.get("lock_ids"), list):
        return "not an unlock of this archive filed under its own id"
    signer = str(sig.get("signer"))
    person = directory.find(signer)
    if person is None or ADMIN_ROLE not in person.roles or body.get("by") != signer:
        return f"signed by {signer!r}, who is no admin (or not the 'by' of the body)"
    if signer == body.get("person"):
        return "the locked person signed their own unlock"
    if not str(body.get("reason") or "").strip():
        return "an unlock without a reason"
    key = person.key(str(sig.get("key_id")))
    if key is None:
        return f"signed by {signer!r} with an unknown key"
    try:
        key.verify_key().verify(str(sig.get("signature")), canonical_json(body), what=name)
    except IntegrityError:
        return "the admin's signature does not verify"
    return ""


_cache: dict[tuple[Any, ...], list[AccountLock]] = {}


def _folder_state(archive: Archive) -> tuple[tuple[str, int, int], ...]:
    try:
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                            for p in archive.layout.account_locks_dir.iterdir()))
    except FileNotFoundError:
        return ()


def load_locks(archive: Archive, directory: Directory) -> list[AccountLock]:
    """Every lock of the archive, each verified and joined with the unlock that lifted it (oldest first).

    Never raises for a bad record: a lock that does not verify is kept, active, with its ``problem``
    (fail closed); an unlock that does not verify lifts nothing. Cached per process until a file of
    ``org/locks/`` or the directory changes (every decision asks).
    """
    state = (str(archive.root.resolve()), archive.archive_id, directory.version, directory.digest,
             _folder_state(archive))
    if not state[-1]:
        return []
    if state in _cache:
        return _cache[state]
    records = _records(archive)
    unlocks: dict[str, dict[str, Any]] = {}
    locks: list[AccountLock] = []
    for name, record in records:
        if name.startswith("UNLOCK-"):
            if record is not None and not _unlock_problem(archive, directory, record, name):
                for lock_id in record["body"]["lock_ids"]:
                    unlocks.setdefault(str(lock_id), record)
            continue
        if record is None:  # unreadable: it names no one, so it locks no one; listed with its problem
            locks.append(AccountLock({"id": name.removesuffix(".json")}, {}, None, "not a readable JSON record"))
            continue
        problem = _lock_problem(archive, record, name)
        body, sig = record.get("body"), record.get("signature")
        locks.append(AccountLock(dict(body) if isinstance(body, dict) else {},
                                 dict(sig) if isinstance(sig, dict) else {}, None, problem))
    joined = []
    for lock in locks:
        unlock = unlocks.get(lock.id)
        if unlock is not None and unlock["body"].get("person") == lock.person:
            lock = AccountLock(lock.body, lock.signature, unlock, lock.problem)
        joined.append(lock)
    joined.sort(key=lambda lk: (str(lk.body.get("created", "")), lk.id))
    _cache.clear()
    _cache[state] = joined
    return joined


def active_locks(archive: Archive, directory: Directory, person_id: str) -> list[AccountLock]:
    """The locks on ``person_id`` no verified unlock has lifted."""
    return [lk for lk in load_locks(archive, directory) if lk.person == person_id and lk.active]


def locked_reason(person_id: str, locks: Sequence[AccountLock]) -> str:
    """The bilingual reason a locked person is refused (ids and times only, never content)."""
    first = locks[0]
    categories = ", ".join(str(c) for c in first.body.get("categories") or []) or "-"
    return (f"账号已被熔断机制冻结 / account {person_id} is locked by the circuit breaker since "
            f"{first.body.get('created')} (lock {', '.join(lk.id for lk in locks)}; categories {categories}; "
            f"bundle {first.body.get('bundle_id')}): an admin must unlock it with a reason "
            f"('investigator people unlock ARCHIVE {person_id} --reason TEXT --as ADMIN')")


def refuse_if_locked(archive: Archive, directory: Directory | None, person_id: str, *, action: str, target: str,
                     now: datetime) -> None:
    """Raise PolicyDenied (rule ``account.locked``, audited under ``action``) while ``person_id`` is locked.

    ``directory``: the verified directory when the caller has it (None: loaded here, only if any lock exists).
    """
    if not _folder_state(archive):
        return
    if directory is None:
        directory = DirectoryStore(archive).load()
    locks = active_locks(archive, directory, person_id)
    if not locks:
        return
    reason = locked_reason(person_id, locks)
    archive.audit.append(person_id, action, target, {"rule": LOCKED_RULE, "reason": reason,
                                                     "lock_ids": [lk.id for lk in locks]},
                         outcome="denied", now=now)
    raise PolicyDenied(reason, rule=LOCKED_RULE)


# --- whom the policy names ------------------------------------------------------------------

def lock_table(policy: Any) -> dict[str, list[str]]:
    """``[breaker.lock]`` of the policy: category -> subjects (``operator``, a person id, ``role:NAME``)."""
    table = ((getattr(policy, "raw", None) or {}).get("breaker") or {}).get("lock") or {}
    return {str(k): [str(s) for s in v] for k, v in table.items() if isinstance(v, list)}


def subjects_for(policy: Any, directory: Directory, categories: Sequence[str], *,
                 operator: str) -> tuple[list[str], list[str]]:
    """(who to lock, who the policy names but is not locked) for the ``categories`` found.

    Admins are never locked (someone must be able to unlock; an admin reads no content anyway), and
    neither are unknown or departed people: they come back in the second list.
    """
    table = lock_table(policy)
    wanted: list[str] = []
    for category in categories:
        for subject in table.get(category, ()):
            if subject == OPERATOR:
                wanted.append(operator)
            elif subject.startswith(ROLE_PREFIX):
                role = subject[len(ROLE_PREFIX):]
                wanted += [p.id for p in directory.people if p.active and role in p.roles]
            else:
                wanted.append(subject)
    lock: list[str] = []
    skipped: list[str] = []
    for person_id in dict.fromkeys(wanted):
        person = directory.find(person_id)
        if person is None or not person.active or ADMIN_ROLE in person.roles:
            skipped.append(person_id)
        else:
            lock.append(person_id)
    return lock, skipped


# --- writing ----------------------------------------------------------------------------------

def new_unlock_id(now: datetime) -> str:
    """A fresh unlock record id (the admin's client picks it, then signs the body naming it)."""
    return _new_id("UNLOCK", now)


def _new_id(prefix: str, now: datetime) -> str:
    return f"{prefix}-{now.strftime('%Y%m%d')}-{secrets.token_hex(4)}"


def _write(archive: Archive, record_id: str, record: dict[str, Any]) -> None:
    path = archive.layout.account_lock(record_id)
    make_dirs(path.parent)
    write_synced(path, (json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode())
    fsync_dir(path.parent)


def lock_accounts(archive: Archive, signing: Any, persons: Sequence[str], *, categories: Sequence[str],
                  bundle_id: str, grant_id: str, operator: str, now: datetime) -> list[AccountLock]:
    """Lock ``persons``: one record each, signed by the archive key ``signing`` (the custody's), audited.

    Audit: ``account.lock`` (actor: the operator whose export tripped the breaker; target: the person).
    """
    made = []
    for person_id in persons:
        lock_id = _new_id("LOCK", now)
        body = {"format": LOCK_FORMAT, "id": lock_id, "archive_id": archive.archive_id, "person": person_id,
                "trigger": "breaker", "categories": sorted(categories), "bundle_id": bundle_id,
                "grant_id": grant_id, "operator": operator, "created": format_ts(now), "by": ARCHIVE_SIGNER}
        signature = {"signer": ARCHIVE_SIGNER, "key_id": signing.public.key_id,
                     "signature": signing.sign(canonical_json(body))}
        _write(archive, lock_id, {"body": body, "signature": signature})
        archive.audit.append(operator, "account.lock", person_id,
                             {"rule": "breaker.lock", "lock_id": lock_id, "bundle_id": bundle_id,
                              "categories": sorted(categories)}, outcome="ok", now=now)
        made.append(AccountLock(body, signature))
    return made


def unlock_body(archive: Archive, person_id: str, lock_ids: Sequence[str], *, admin: str, reason: str,
                signed_at: datetime, unlock_id: str) -> dict[str, Any]:
    """The body an admin signs to lift ``lock_ids`` from ``person_id`` (RFC 8785 bytes are signed)."""
    return {"format": UNLOCK_FORMAT, "id": unlock_id, "archive_id": archive.archive_id, "person": person_id,
            "lock_ids": sorted(lock_ids), "reason": reason, "unlocked": format_ts(signed_at), "by": admin}


def _refuse(archive: Archive, admin: str, person_id: str, rule: str, reason: str, now: datetime) -> PolicyDenied:
    archive.audit.append(admin, "account.unlock", person_id, {"rule": rule, "reason": reason}, outcome="denied",
                         now=now)
    return PolicyDenied(reason, rule=rule)


def check_unlock(archive: Archive, directory: Directory, person_id: str, *, admin: str, reason: str,
                 now: datetime) -> list[AccountLock]:
    """The active locks an unlock by ``admin`` would lift; PolicyDenied (audited) when it may not happen.

    Rules: ``account.self_unlock`` (the locked person), ``role.permission`` (not an active admin),
    ``account.unlock_reason`` (no reason). ConfigError when ``person_id`` holds no active lock.
    """
    if admin == person_id:
        raise _refuse(archive, admin, person_id, "account.self_unlock",
                      "不能解冻自己的账号 / a locked person may not unlock themselves (separated duties)", now)
    if directory.find(admin) not in directory.admins():
        raise _refuse(archive, admin, person_id, "role.permission",
                      "只有管理员可以解冻 / only an active admin may unlock an account", now)
    refuse_if_locked(archive, directory, admin, action="account.unlock", target=person_id, now=now)
    if not reason.strip():
        raise _refuse(archive, admin, person_id, "account.unlock_reason",
                      "解冻需要说明理由 / an unlock needs a reason (--reason TEXT)", now)
    locks = active_locks(archive, directory, person_id)
    if not locks:
        raise ConfigError(f"{person_id} holds no active account lock / 该账号未被冻结",
                          hint="see 'investigator people locks ARCHIVE'")
    return locks


def write_unlock(archive: Archive, body: dict[str, Any], *, admin: str, key_id: str, signature: str,
                 now: datetime) -> dict[str, Any]:
    """File the signed unlock (the caller checked it and the admin's TOTP code); audited ``account.unlock``."""
    record = {"body": body, "signature": {"signer": admin, "key_id": key_id, "signature": signature}}
    _write(archive, str(body["id"]), record)
    archive.audit.append(admin, "account.unlock", str(body["person"]),
                         {"rule": "account.unlock", "unlock_id": body["id"], "lock_ids": body["lock_ids"],
                          "reason": body["reason"]}, outcome="allowed", now=now)
    return record


__all__ = ["AccountLock", "LOCKED_RULE", "LOCK_FORMAT", "OPERATOR", "PERSONAL_DATA", "ROLE_PREFIX", "UNLOCK_FORMAT", "UNLOCK_ID_RE", "new_unlock_id",
           "active_locks", "check_unlock", "load_locks", "lock_accounts", "lock_table", "locked_reason",
           "refuse_if_locked", "subjects_for", "unlock_body", "write_unlock"]
