"""``POST /v1/checkpoint``: a client without keys has the key server sign the audit log's tree head after a
decision made on its side (issue #13, item 1); only signed requests of enrolled people are served."""

from __future__ import annotations

from .conftest import post, signer

from investigator.vault.store import Archive


def test_the_key_server_signs_a_checkpoint_for_a_client(world, server):
    _, url = server
    world.archive.audit.append("sunli", "test.decision", "on the client side")
    status, answer = post(url, "/v1/checkpoint", {}, sign=signer(world), archive_id=world.archive.archive_id)
    assert status == 200, answer
    archive = Archive.open(world.archive.root)
    report = archive.audit.verify(archive.signing_keys(), archive_id=archive.archive_id)
    assert report.ok, report.problems
    assert answer["size"] == report.counts["entries"] and report.counts["uncovered_entries"] == 0


def test_an_unsigned_checkpoint_request_is_refused(world, server):
    _, url = server
    status, answer = post(url, "/v1/checkpoint", {})
    assert status == 401, answer
