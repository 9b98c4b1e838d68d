"""What one open (and a long-lived key server) keeps between checks must not outlive the files it was made from.

The case-open cost work (docs/benchmarks.md, "Case open cost (2026-11-30)") keeps, per process: the directory a set
of version files verified to, the files the state heads cover (by the newest head's hash), chunk windows, and it
computes RFC 8785 bytes of heads and directory versions with the C JSON encoder where that gives the same bytes.
Each test changes a file after the cache was filled and expects the change to count at the next check.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import rfc8785

from investigator.access.custodian import CustodianDesk
from investigator.access.keyservice import ChunkRef, EmbeddedKeyService, _chunk_window
from investigator.authority.directory import DirectoryStore, Signer, set_status
from investigator.authority.grants import load_grant, revoke_grant
from investigator.authority.grants.documents import find_grant
from investigator.authority.state_head import state_problems
from investigator.errors import GrantInvalid, IntegrityError, PolicyDenied
from investigator.schema import canonical_json

TRICKY = [
    {},
    [],
    "",
    {"b": 1, "a": [True, False, None, 0, -1, 2**53 - 1, -(2**53 - 1)]},
    {"s": "\"\\/\b\f\n\r\t\x00\x01\x1f\x7f\u2028\u2029\ufeff 中文 😀"},
    {"\ue000": 1, "\U0001f600": 2, "z": 3, "é": 4},  # UTF-16 order differs from code-point order here
    {"f": 1.0}, {"f": 0.1}, {"f": 1e21}, {"f": -0.0},
    {"nested": {"list": [{"y": "1", "x": ["a", ("t", "u")]}], "k": {"": ""}}},
    {"big": 2**53},  # outside RFC 8785's integers: refused by both
    {"lone": "\ud800"},  # a lone surrogate: refused by both
]


@pytest.mark.parametrize("obj", TRICKY, ids=range(len(TRICKY)))
def test_canonical_json_gives_the_rfc8785_bytes_or_the_same_refusal(obj):
    try:
        expected = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, ValueError) as exc:
        with pytest.raises(type(exc)):
            canonical_json(obj)
        return
    assert canonical_json(obj) == expected


def test_chunk_windows_read_as_strptime_reads_them():
    for partition, chunk in [("2026-03-01", "120000"), ("2024-02-29", "235959"), ("2026-3-1", "000000")]:
        start = datetime.strptime(partition + chunk, "%Y-%m-%d%H%M%S").replace(tzinfo=timezone.utc)
        assert _chunk_window(partition, chunk, 3600) == (start, start + timedelta(hours=1))
    for partition, chunk in [("2026-13-01", "000000"), ("2026-02-30", "000000"), ("2026-03-01", "240000"),
                             ("2026-03-01", "000060"), ("x", "000000")]:
        with pytest.raises(ValueError):
            _chunk_window(partition, chunk, 3600)


def test_a_directory_version_edited_after_a_load_is_refused_by_the_next(org):
    assert DirectoryStore(org.archive).load().find("sunli") is not None  # verified, and kept
    newest = sorted(org.archive.layout.directory_dir.glob("*.json"))[-1]
    good = newest.read_bytes()
    newest.write_bytes(good.replace(b'"sunli"', b'"sunlj"', 1))
    with pytest.raises(IntegrityError):
        DirectoryStore(org.archive).load()
    newest.write_bytes(good)
    assert DirectoryStore(org.archive).load().find("sunli") is not None


def test_a_person_who_left_after_an_open_cannot_open_again(org):
    service = EmbeddedKeyService(org.archive, org.keys)
    grant = load_grant(find_grant(org.archive, org.grant_id))
    when = org.now + timedelta(minutes=1)
    service.open(grant=grant, person=grant.operator, totp=org.code(grant.operator, when), now=when)
    set_status(org.archive, grant.operator, "left", signer=org.signer("wugang"), now=when, reason="left")
    later = when + timedelta(minutes=1)
    with pytest.raises(GrantInvalid, match="no longer active"):  # the grant check reads the new directory version
        service.open(grant=grant, person=grant.operator, totp=org.code(grant.operator, later), now=later)


def test_a_revocation_written_after_the_open_refuses_the_next_release(org):
    service = EmbeddedKeyService(org.archive, org.keys)
    grant = load_grant(find_grant(org.archive, org.grant_id))
    when = org.now + timedelta(minutes=1)
    ticket = service.open(grant=grant, person=grant.operator, totp=org.code(grant.operator, when), now=when)
    ref = ChunkRef("messages", grant.window[0].strftime("%Y-%m-%d"), grant.window[0].strftime("%H0000"), "meta")
    assert ref.window(org.archive.config.chunk_seconds)[0] <= grant.window[0]  # (a ref the grant would open)
    revoke_grant(org.archive, org.grant_id, signer=Signer.archive(org.keys.signing), reason="closed", now=when)
    with pytest.raises(PolicyDenied) as refused:
        service.release(ticket, [ref], now=when + timedelta(seconds=1))
    assert refused.value.rule == "grant.revoked"
    denial = [e for e in org.archive.audit.entries() if e.outcome == "denied"][-1]
    assert denial.action == "key.release" and denial.details["rule"] == "grant.revoked"


def test_the_covered_files_follow_a_new_head(org):
    assert state_problems(org.archive) == []  # the heads replayed, and kept by the newest head's hash
    revoke_grant(org.archive, org.grant_id, signer=Signer.archive(org.keys.signing), reason="closed", now=org.now)
    CustodianDesk(org.archive, org.keys).checkpoint(now=org.now)  # the next head covers the revocation
    assert state_problems(org.archive) == []
    org.archive.layout.revocations.write_bytes(b"")
    assert any("org/revocations.jsonl" in p for p in state_problems(org.archive))
