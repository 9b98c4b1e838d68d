"""Checkpoints after every decision (issue #13, item 1): the archive key signs the audit log's tree head
right after a decision is recorded, whoever made it and whatever the outcome, so the decision cannot be cut
from the log unnoticed. A client without keys has the key server sign (``/v1/checkpoint``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from investigator.access.custodian import CustodianDesk
from investigator.custody.file import create_archive, unlock_archive
from investigator.authority.directory import Person, Signer, add_people, set_status
from investigator.authority.grants import revoke_grant
from investigator.authority.policy import PolicyStore, default_policy_text
from investigator.errors import IdentityCheckFailed


def last(org) -> dict:
    """The last audit entry but the state-head pins the checkpoint writes first (issue #13, item 2)."""
    return [e for e in org.audit() if e["action"] != "state.head"][-1]


def uncovered(org) -> int:
    """Entries after the last checkpoint (the log verified first)."""
    report = org.archive.audit.verify(org.archive.signing_keys(), archive_id=org.archive.archive_id)
    assert report.ok, report.problems
    return report.counts["uncovered_entries"]


def test_an_approval_a_rejection_and_a_refusal_are_each_checkpointed(org):
    first = org.request("sunli")
    org.approve(first.id, "zhouzong", decision="reject", note="no")
    assert last(org)["action"] == "request.reject" and uncovered(org) == 0
    second = org.request("sunli")
    with pytest.raises(IdentityCheckFailed):
        org.approve(second.id, "zhouzong", totp="000000")
    assert last(org)["outcome"] == "denied" and uncovered(org) == 0
    org.approve(second.id, "zhouzong", when=org.now + timedelta(seconds=60))  # a fresh code
    assert last(org)["action"] == "grant.issue" and uncovered(org) == 0


def test_a_change_signed_with_the_archive_key_checkpoints_itself(tmp_path, frozen_now):
    archive = create_archive(tmp_path / "fresh", passphrase="p", kdf_n=2**14)
    keys = unlock_archive(archive, "p")
    add_people(archive, [Person(id="wugang", name="吴刚", roles=("admin",))], signer=Signer.archive(keys.signing),
               now=frozen_now)
    report = archive.audit.verify(archive.signing_keys(), archive_id=archive.archive_id)
    assert report.ok and report.counts["uncovered_entries"] == 0, report.counts


def test_directory_policy_and_revocation_by_a_person_are_checkpointed_through_the_notary(org):
    desk = CustodianDesk(org.archive, org.keys)  # stands in for the key server: it holds the archive key
    admin = Signer("wugang", org.key("wugang"), notary=desk)
    set_status(org.archive, "zhangwei", "left", signer=admin, now=org.now, reason="left the company")
    assert last(org)["action"] == "people.deactivate" and uncovered(org) == 0
    PolicyStore(org.archive).install(default_policy_text(), signer=admin, directory=org.directory(), now=org.now,
                                     note="again")
    assert last(org)["action"] == "policy.set" and uncovered(org) == 0
    revoke_grant(org.archive, org.grant_id, signer=admin, reason="case closed", now=org.now)
    assert last(org)["action"] == "grant.revoke" and uncovered(org) == 0


def test_without_a_notary_a_persons_change_waits_for_the_next_checkpoint(org):
    """Embedded mode, documented: the next checkpoint of the key service covers it."""
    set_status(org.archive, "zhangwei", "left", signer=org.signer("wugang"), now=org.now, reason="left")
    assert uncovered(org) >= 1
    assert CustodianDesk(org.archive, org.keys).checkpoint(now=org.now) == len(org.audit())
    assert uncovered(org) == 0
