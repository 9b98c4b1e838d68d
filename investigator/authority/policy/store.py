"""The signed policy in the archive (``ARCHIVE/org/policy/``) and audited decisions.

    >>> directory, policy = load_org(archive, actor="sunli", action="request", target="REQ-1", now=now)  # doctest: +SKIP

Part of :mod:`investigator.authority.policy` (docs/policy.md).
"""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.authority.directory import ARCHIVE_SIGNER, Directory, Signer, check_signer
from investigator.errors import ConfigError, IntegrityError, PolicyDenied
from investigator._fs import write_new
from investigator.schema import canonical_json, format_ts
from investigator.authority.policy.model import Decision
from investigator.authority.policy.rules import Policy
from investigator.authority.directory import DirectoryStore
from investigator.authority.locks import refuse_if_locked
from investigator.vault.store import Archive
from investigator.authority.state_head import require_state
from investigator.vault.witness import set_witness_list


# Fault injection for the crash tests only: a child process sets this to a step of PolicyStore.install
# ("before-signature", "after-signature", "after-text", "after-audit") and is killed with SIGKILL there.
CRASH_AT: str | None = None


def _crash_point(name: str) -> None:
    if CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


# --- the signed policy in the archive -------------------------------------------------

class PolicyStore:
    """Signed policy versions in ``ARCHIVE/org/policy/NNNNNN.toml`` (+ ``.sig.json``; ``archive.layout.policy_dir``).

    A version exists when its text (``.toml``) does: :meth:`install` puts its
    signature record in place first and its text last, so a reader never sees a
    text without its record unless the record was deleted (which :meth:`load`
    refuses). A record without its text is an install that was interrupted:
    not a version, and its number is not used again (the files are write-once).
    """

    def __init__(self, archive: "Archive") -> None:
        self.archive = archive
        self.folder = archive.layout.policy_dir

    def _numbers(self, pattern: str) -> list[int]:
        if not self.folder.exists():
            return []
        return [int(p.name.split(".")[0]) for p in self.folder.glob(pattern) if p.name.split(".")[0].isdigit()]

    def _latest(self) -> int:
        """The newest installed version (0 for none): the highest-numbered text."""
        return max(self._numbers("[0-9]*.toml"), default=0)

    def _next(self) -> int:
        """The number of the next version: past every text and every record (an interrupted install's too)."""
        return max(self._numbers("[0-9]*.toml") + self._numbers("[0-9]*.sig.json"), default=0) + 1

    def load(self, directory: Directory) -> Policy:
        """The newest policy, its signature checked against ``directory``'s admins or the archive key.

        Raises IntegrityError if the file was changed outside the CLI (hash or
        signature mismatch), ConfigError if no policy is installed.
        """
        version = self._latest()
        if version == 0:
            raise ConfigError("no policy installed in this archive",
                              hint="install one with 'investigator policy set ARCHIVE FILE'")
        layout = self.archive.layout
        what = layout.relative(layout.policy_text(version))
        try:
            text_bytes = layout.policy_text(version).read_bytes()
            record = json.loads(layout.policy_signature(version).read_bytes())
            body, sig = record["body"], record["signature"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError("policy file or its signature record is missing or unreadable", path=what) from exc
        if body.get("archive_id") != self.archive.archive_id or body.get("version") != version:
            raise IntegrityError("signature record does not belong to this policy version", path=what)
        if body.get("sha256") != _crypto.sha256_hex(text_bytes):
            raise IntegrityError("policy file altered outside the CLI (its hash does not match the signed one)",
                                 path=what)
        check_signer(str(sig.get("signer")), str(sig.get("key_id")), str(sig.get("signature")),
                     canonical_json(body), archive_public=self.archive.signing_keys(), directory=directory, what=what)
        self._check_bootstrap_order(version, directory)
        policy = Policy.from_toml(text_bytes.decode("utf-8"), source=what)
        return _with_version(policy, version)

    def _check_bootstrap_order(self, latest: int, directory: Directory) -> None:
        """Raise IntegrityError for a policy version signed with the archive key after the bootstrap.

        The archive key (whoever holds the master keys: the key server's host)
        signs policies only until the first admin is enrolled. So, over every
        version: no archive-signed version after an admin-signed one, none timed
        after the first admin's enrolment or naming a directory version with an
        enrolled admin (``directory_version``, recorded since this check), and
        times never go backwards. What remains open (a version backdated between
        the previous one and the first admin's enrolment) needs the signed state
        head the rollback-evident-state work pins in the audit log.
        """
        if not directory.first_admin_version:
            return  # still bootstrapping: the archive key may sign
        layout = self.archive.layout
        admin_signed = False
        last_ts = ""
        for number in range(1, latest + 1):
            if not layout.policy_text(number).exists() and layout.policy_signature(number).exists():
                continue  # an interrupted install's record: no version (class docstring)
            what = layout.relative(layout.policy_signature(number))
            try:
                record = json.loads(layout.policy_signature(number).read_bytes())
                body, signer = record["body"], str(record["signature"]["signer"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise IntegrityError("policy signature record missing or unreadable", path=what) from exc
            ts = str(body.get("ts") or "")
            if ts < last_ts:
                raise IntegrityError("policy versions out of time order", path=what)
            last_ts = ts
            if signer != ARCHIVE_SIGNER:
                admin_signed = True
                continue
            named = body.get("directory_version")
            late = (admin_signed or ts > directory.first_admin_ts
                    or (isinstance(named, int) and named >= directory.first_admin_version))
            if late:
                raise IntegrityError("signed with the archive key after the first admin was enrolled "
                                     f"(directory version {directory.first_admin_version}); only an admin signs "
                                     "policies now", path=what)

    def install(self, text: str, *, signer: Signer, directory: Directory, now: datetime,
                note: str = "") -> Policy:
        """Validate ``text``, sign it as the next version and audit the change.

        The archive key may sign only while the directory has no enrolled admin.
        Raises ConfigError (invalid policy) or PolicyDenied (signer not allowed; audited).
        """
        policy = Policy.from_toml(text, source="new policy")
        if signer.id == ARCHIVE_SIGNER and directory.admins():
            reason = "the directory has an enrolled admin: the policy must be signed by an admin (--as ADMIN)"
            self.archive.audit.append(signer.id, "policy.set", "policy", {"rule": "policy.signer", "reason": reason},
                                      outcome="denied", now=now)
            raise PolicyDenied(reason, rule="policy.signer")
        latest, version = self._latest(), self._next()
        prev = _crypto.sha256_hex(self.archive.layout.policy_text(latest).read_bytes()) if latest else ""
        body = {"format": "investigator-policy-signature/1", "archive_id": self.archive.archive_id,
                "version": version, "sha256": _crypto.sha256_hex(text.encode("utf-8")), "prev": prev,
                "ts": format_ts(now), "note": note, "directory_version": directory.version}
        data = canonical_json(body)
        try:
            check_signer(signer.id, signer.key.public.key_id, signer.key.sign(data), data,
                         archive_public=self.archive.signing_keys(), directory=directory, what="new policy")
        except IntegrityError as exc:
            self.archive.audit.append(signer.id, "policy.set", "policy",
                                      {"rule": "policy.signer", "reason": str(exc)}, outcome="denied", now=now)
            raise PolicyDenied(str(exc), rule="policy.signer") from exc
        record = {"body": body, "signature": {"signer": signer.id, "key_id": signer.key.public.key_id,
                                              "signature": signer.key.sign(data)}}
        # the version's files first, then its entry (as for directory versions): an audited version without its
        # files would make every load refuse (the state cross-check: a policy version deleted)
        self._write_version(version, text.encode("utf-8"),
                            (json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode())
        _crash_point("after-text")
        self.archive.audit.append(signer.id, "policy.set", f"policy v{version}",
                                  {"sha256": body["sha256"], "rule": "policy.signer", "note": note}, now=now)
        _crash_point("after-audit")
        signer.checkpoint(self.archive, now=now)
        return _with_version(policy, version)

    def _write_version(self, version: int, text: bytes, record: bytes) -> None:
        """Put version ``version``'s files in place so that a kill at any point leaves no half version.

        Each is written once with :func:`~investigator._fs.write_new` (a scratch file, fsynced, then linked
        into place: the whole file or none), the signature record first, then the text (a version exists
        when its text does). A kill before the text is in place leaves the previous version in force; a
        record without its text is all that remains, and the next install numbers past it. ``os.link``
        refuses an existing name: a write-once file is never replaced, even by an install racing this one.

        Raises IntegrityError when another install took the number meanwhile (its files are left as they are).
        """
        layout = self.archive.layout
        _crash_point("before-signature")
        _write_once(layout.policy_signature(version), record, layout)
        _crash_point("after-signature")
        _write_once(layout.policy_text(version), text, layout)


def _write_once(final: Path, data: bytes, layout: Any) -> None:
    if not write_new(final, data):
        raise IntegrityError("policy changed meanwhile (another install took this version); retry",
                             path=layout.relative(final))


def _with_version(policy: Policy, version: int) -> Policy:
    from dataclasses import replace

    return replace(policy, version=version)


_witness_cache: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _files_state(folder: Any) -> tuple[tuple[str, int, int], ...]:
    try:
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()))
    except FileNotFoundError:
        return ()


def policy_witnesses(archive: "Archive") -> tuple[str, ...]:
    """The witnesses the archive's signed policy lists (``[audit] witnesses``); () while no policy is installed.

    Raises IntegrityError/ConfigError when the policy or directory does not
    verify (the checkpoint writer audits that as a witness failure). The
    verified list is kept per process until a file of ``org/policy`` or
    ``org/directory`` changes (a checkpoint follows every decision: loading
    and verifying both each time costs ~20 ms on the demo archive).
    """
    store = PolicyStore(archive)
    if store._latest() == 0:
        return ()
    layout = archive.layout
    state = (str(archive.root.resolve()), archive.archive_id, _files_state(layout.policy_dir),
             _files_state(layout.directory_dir))
    if state not in _witness_cache:
        _witness_cache.clear()  # one archive at a time is the common case; keep the cache small
        _witness_cache[state] = store.load(DirectoryStore(archive).load()).witnesses
    return _witness_cache[state]


# every checkpoint of an archive goes to the witnesses its signed policy lists (vault/witness.py, the seam)
set_witness_list(policy_witnesses)


def load_for_decision(archive: "Archive", directory: Directory, *, actor: str, action: str, target: str,
                      now: datetime) -> Policy:
    """The archive's policy, or an audited PolicyDenied (rule ``policy.integrity``) when it does not verify.

    Every caller that decides uses this: a policy altered outside the CLI refuses everything.
    """
    try:
        return PolicyStore(archive).load(directory)
    except (IntegrityError, ConfigError) as exc:
        reason = str(exc)
        archive.audit.append(actor, action, target, {"rule": "policy.integrity", "reason": reason},
                             outcome="denied", now=now)
        raise PolicyDenied(reason, rule="policy.integrity") from exc


def load_org(archive: "Archive", *, actor: str, action: str, target: str,
             now: datetime) -> tuple[Directory, Policy]:
    """The verified directory and policy, or an audited PolicyDenied naming which one does not verify.

    Rules: ``state.head`` (a decision file deleted, restored or changed below the newest
    signed state head; authority/state_head.py), ``directory.integrity`` (a directory
    version edited outside the CLI),
    ``account.locked`` (``actor`` is locked by the circuit breaker) and ``policy.integrity``
    (the policy file altered, or none installed).
    """

    try:
        directory = DirectoryStore(archive).load()
    except IntegrityError as exc:
        reason = f"org directory altered outside the CLI: {exc}"
        archive.audit.append(actor, action, target, {"rule": "directory.integrity", "reason": reason},
                             outcome="denied", now=now)
        raise PolicyDenied(reason, rule="directory.integrity") from exc
    # a person the circuit breaker locked takes part in no decision until an admin unlocks them (authority/locks.py)
    refuse_if_locked(archive, directory, actor, action=action, target=target, now=now)
    policy = load_for_decision(archive, directory, actor=actor, action=action, target=target, now=now)
    # then org/ and cases/ against the newest signed state head and the audit log (issue #13, item 2): a file
    # deleted or restored passes its own signature check (an edited one is refused above, by its rule)
    require_state(archive, actor=actor, action=action, target=target, now=now)
    return directory, policy


def record_decision(archive: "Archive", decision: Decision, *, actor: str, action: str, target: str,
                    now: datetime, details: dict[str, Any] | None = None) -> Decision:
    """Audit ``decision`` (allowed or denied, with its rule and reason) and return it."""
    archive.audit.append(actor, action, target,
                         {**(details or {}), "rule": decision.rule, "reason": decision.reason},
                         outcome="allowed" if decision.allowed else "denied", now=now)
    return decision

