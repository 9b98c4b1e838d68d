"""Issuing a grant is write-once and crash-safe: the grant file, then the request's pointer to it.

A grant is pinned by its hash (audit entries, state heads, reports), so it is never replaced; a process killed
between the two files leaves a grant the next approval of the request finishes (pointer + audited issue).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from investigator._fs import write_new
from investigator.authority.grants import load_grant
from investigator.authority.grants.workflow import _issue, load_request, request_approvals, request_status
from investigator.authority.policy import load_org
from investigator.authority.state_head import state_problems
from investigator.errors import IntegrityError, PolicyDenied

from tests.unit.authority.conftest import PASSPHRASE, Org

# the approval that issues a grant, in a child process killed with SIGKILL after the grant file is written
APPROVE = """
import sys
from datetime import datetime
from pathlib import Path
from investigator import _crypto
from investigator.authority.grants import approve, workflow
from investigator.authority.identity import unlock_person_key
from investigator.custody.file import unlock_archive
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS
from investigator.vault.store import Archive

workflow.CRASH_AT = "after-grant"  # fault injection: killed between the grant file and the request's pointer
archive = Archive.open(sys.argv[1])
when = datetime.fromisoformat(sys.argv[4])
key = unlock_person_key(archive, sys.argv[3], DEMO_ONLY_PASSPHRASE.format(person=sys.argv[3]),
                        key_dir=Path(sys.argv[1]) / "demo-keys")
approve(archive, unlock_archive(archive, sys.argv[5]), sys.argv[2], approver=sys.argv[3], signing_key=key,
        totp=_crypto.totp(DEMO_ONLY_TOTP_SECRETS[sys.argv[3]], when.timestamp()), now=when, note="killed")
"""


def _issues(org: Org) -> list[dict]:
    return [e for e in org.audit() if e["action"] == "grant.issue" and e["outcome"] == "allowed"]


def test_write_new_never_replaces_and_leaves_no_scratch(tmp_path):
    target = tmp_path / "sub" / "grant.json"
    assert write_new(target, b"first") is True
    assert write_new(target, b"second") is False
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["grant.json"]


def test_an_issue_killed_after_the_grant_is_finished_by_the_next_approval_and_never_rewritten(org: Org):
    signed = org.request("sunli")
    approver = "zhouzong"
    issued_before = len(_issues(org))
    child = subprocess.run([sys.executable, "-c", APPROVE, str(org.archive.root), signed.id, approver,
                            org.now.isoformat(), PASSPHRASE], capture_output=True, text=True, timeout=180)
    assert child.returncode == -9, child.stderr  # really killed there
    grants = list(org.archive.layout.grants_dir.glob("G-*.json"))
    written = next(p for p in grants if load_grant(p).request.id == signed.id)
    original = written.read_bytes()
    assert request_status(org.archive, signed.id) == "pending"  # the pointer was never written
    assert len(_issues(org)) == issued_before  # nor the issue audited
    assert state_problems(org.archive) == []

    # the approver tries again: the interrupted issue is finished (pointer + audited issue), the grant untouched
    with pytest.raises(PolicyDenied, match="already granted"):
        org.approve(signed.id, approver)
    assert request_status(org.archive, signed.id) == "granted"
    assert written.read_bytes() == original
    finished = _issues(org)[-1]
    assert finished["target"] == written.stem and finished["details"]["request"] == signed.id
    assert finished["details"]["grant_hash"] == load_grant(written).hash
    assert "interrupted" in finished["details"]["reason"]
    load_grant(written).verify(org.archive, now=org.now)
    assert state_problems(org.archive) == []


def test_a_second_issue_of_the_same_request_is_refused_and_changes_nothing(org: Org):
    signed = org.request("sunli")
    result = org.approve(signed.id, "zhouzong")
    assert result.grant_path is not None
    original = result.grant_path.read_bytes()
    directory, policy = load_org(org.archive, actor="zhouzong", action="test", target=signed.id, now=org.now)
    approvals = request_approvals(org.archive, signed.id)
    with pytest.raises(IntegrityError, match="exists already"):
        _issue(org.archive, org.keys, load_request(org.archive, signed.id), approvals, policy=policy,
               requester=directory.person("sunli"), now=org.now)
    assert result.grant_path.read_bytes() == original


def test_a_second_revocation_writes_nothing_and_moves_no_time(org: Org) -> None:
    # revoking a revoked grant again appended a second line, and 'grant verify' then reported the second line's
    # time, by and reason ("revoked at 09:17 ... again") instead of when it was really revoked
    from datetime import timedelta

    from investigator.authority.grants import revoke_grant
    from investigator.authority.grants.documents import revocations
    from investigator.errors import ConfigError

    revoke_grant(org.archive, org.grant_id, signer=org.signer("wugang"), reason="case closed", now=org.now)
    before = org.archive.layout.revocations.read_bytes()
    with pytest.raises(ConfigError, match="already revoked at"):
        revoke_grant(org.archive, org.grant_id, signer=org.signer("wugang"), reason="again",
                     now=org.now + timedelta(hours=1))
    assert org.archive.layout.revocations.read_bytes() == before
    # a second line written by an older version still does not move the revocation
    line = before.decode().replace("case closed", "again")
    org.archive.layout.revocations.write_bytes(before + line.encode())
    assert revocations(org.archive)[org.grant_id]["reason"] == "case closed"
