"""The key server as a real process on 127.0.0.1: same answers, its own checks, clean failures."""

from datetime import timedelta

import pytest

from investigator import errors
from investigator.access.keyserver import RemoteKeyService
from investigator.access.case import open_case

from .conftest import EDGE_DAY, keyserver_process, now_code, post, signer


def test_remote_case_reads_what_the_embedded_one_reads(world, server):
    _, url = server
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    embedded = world.open(grant).messages()
    case = open_case(world.archive, grant=grant, person="sunli", totp=now_code(world), keyserver=url,
                     signing_key=world.key("sunli"))
    assert isinstance(case._keys, RemoteKeyService)
    remote = case.messages()
    assert remote["record_hash"].to_list() == embedded["record_hash"].to_list()
    assert any(e.action == "key.release" and e.outcome == "allowed" for e in world.audit())


def test_no_or_wrong_identity_is_refused_and_audited(world, server):
    _, url = server
    status, answer = post(url, "/v1/keys", {"refs": [["messages", "2026-11-20", "100000", "meta"]]})
    assert status == 401 and answer["error"] == "IdentityCheckFailed"
    status, answer = post(url, "/v1/keys", {"token": "forged", "refs": []})
    assert status == 401
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    with pytest.raises(errors.IdentityCheckFailed):
        open_case(world.archive, grant=grant, person="sunli", totp="000000", keyserver=url,
                  signing_key=world.key("sunli"))
    denied = [e for e in world.audit() if e.outcome == "denied"]
    assert any(e.action == "key.release" for e in denied) and any(e.action in ("identity.check", "totp.identity") for e in denied)


def test_direct_request_outside_the_window_is_refused(world, server):
    _, url = server
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    case = open_case(world.archive, grant=grant, person="sunli", totp=now_code(world), keyserver=url,
                     signing_key=world.key("sunli"))
    status, answer = post(url, "/v1/keys", {"token": case.ticket.token,
                                            "refs": [["messages", "2026-11-21", "100000", "meta"]]},
                          sign=signer(world), archive_id=world.archive.archive_id)
    assert status == 403 and answer["rule"] == "grant.window"
    last = [e for e in world.audit() if e.action == "key.release"][-1]
    assert last.outcome == "denied" and last.details["rule"] == "grant.window"


def test_edited_client_grant_is_refused(world, server):
    _, url = server
    grant_id = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    from investigator.authority.grants import Grant, find_grant

    grant = Grant.from_file(find_grant(world.archive, grant_id))
    doc = grant.to_json()
    doc["request"]["body"]["end"] = "2026-11-30T00:00:00.000000Z"
    status, answer = post(url, "/v1/open", {"grant_id": grant_id, "grant_hash": Grant.from_json(doc).hash,
                                            "person": "sunli", "totp": now_code(world)},
                          sign=signer(world), archive_id=world.archive.archive_id)
    assert status == 403 and answer["error"] == "GrantInvalid"


def test_server_killed_mid_load_gives_an_error_not_partial_data(world, server):
    proc, url = server

    class KillAfterFirst(RemoteKeyService):
        calls = 0

        def release(self, ticket, refs, *, now=None):
            KillAfterFirst.calls += 1
            if KillAfterFirst.calls == 2:
                proc.kill()
                proc.wait(timeout=10)
            return super().release(ticket, refs, now=now)

    grant = world.grant(start=EDGE_DAY - timedelta(days=2), end=EDGE_DAY + timedelta(hours=1))
    service = KillAfterFirst(url, signer=signer(world))
    case = open_case(world.archive, grant=grant, person="sunli", totp=now_code(world), key_service=service)
    case.key_batch = 4
    with pytest.raises(errors.KeyServiceError, match="unreachable"):
        case.messages()
    assert KillAfterFirst.calls == 2


def test_rate_limit_answers_429_and_audits(world):
    with keyserver_process(world, "--rate", "1") as (_, url):
        statuses = [post(url, "/v1/keys", {"token": "x", "refs": []})[0] for _ in range(8)]
        assert 429 in statuses
    assert any(e.details.get("rule") == "keyserver.rate_limit" for e in world.audit())


def test_proofs_come_from_the_key_server_for_granted_records_only(world, server):
    from investigator.vault.merkle import verify_inclusion

    _, url = server
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    case = open_case(world.archive, grant=grant, person="sunli", totp=now_code(world), keyserver=url,
                     signing_key=world.key("sunli"))
    row = case.messages().row(0, named=True)
    [proof] = case.key_service.proofs(case.ticket, row["batch_seq"], [row["leaf_index"]])
    manifest = world.archive.manifests()[row["batch_seq"] - 1]
    assert proof["record_hash"] == row["record_hash"] and proof["root"] == manifest.body["merkle"]["root"]
    assert verify_inclusion(bytes.fromhex(proof["record_hash"]), proof["leaf_index"], proof["tree_size"],
                            [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(proof["root"]))
    outside = next(c for c in manifest.chunks if c.chunk_id != "messages/2026-11-20/100000")
    with pytest.raises(errors.PolicyDenied, match="not in the granted window"):
        case.key_service.proofs(case.ticket, row["batch_seq"], [outside.leaf_start])
    assert [e.outcome for e in world.audit("proof.release")][-2:] == ["allowed", "denied"]


def test_the_key_server_refuses_to_keep_totp_state_in_the_shared_folder(world, monkeypatch):
    """Without --state-dir at init the counters would sit where clients write: no start, nothing unlocked."""
    from click.testing import CliRunner

    from investigator.cli import main

    monkeypatch.setenv("INVESTIGATOR_PASSPHRASE", "must-not-be-needed")
    unlocks = len(world.audit("unlock"))
    result = CliRunner().invoke(main, ["keyserver", str(world.archive.root), "--listen", "127.0.0.1:0"])
    assert result.exit_code == errors.ConfigError.exit_code
    assert "--state-dir" in result.output and "--shared-totp-state" in result.output
    assert len(world.audit("unlock")) == unlocks
    with keyserver_process(world) as (_proc, _url):  # the conftest passes --shared-totp-state: it serves
        pass
    start = world.audit("keyserver.start")[-1]
    assert start.details["totp_state"] == "archive folder"
