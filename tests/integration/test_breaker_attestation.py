"""The key service judges what it attests (熔断, issue #13 item 6): a client cannot skip the hold or swap records.

On copies of the breaker's demo archive (test_breaker_lockdown.py: a signed policy with the category
``complaint = ["投诉"]``, whom it locks, a notifier), with a real ``investigator keyserver`` process. The
clients that lie are the real client with one step changed, as a modified client would be.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from investigator.access.case import open_case
from investigator.access.client_auth import RequestSigner
from investigator.access.custodian import ExportAttestation, attestation
from investigator.access.exportcheck import ServerVerdict
from investigator.access.keyserver import RemoteKeyService
from investigator.analysis.pii import detect
from investigator.authority.directory import DirectoryStore
from investigator.authority.locks import load_locks
from investigator.custody.file import unlock_archive
from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session
from investigator.errors import BundleError
from investigator.reports.bundles import export_bundle, verify_bundle
from investigator.schema import canonical_json
from investigator.vault.store import Archive

import test_breaker_lockdown as lockdown_tests
from test_breaker_lockdown import entries, key

# the breaker's archive, a fresh copy per test, a real key server over it (shared fixtures)
breaker_base, copy, keyserver = lockdown_tests.breaker_base, lockdown_tests.copy, lockdown_tests.keyserver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ids(breaker_base) -> dict[str, list[str]]:
    """Message ids of the demo grant: ``hit`` carry the policy's category, ``clean`` carry nothing the breaker holds."""
    archive = Archive.open(breaker_base)
    case = open_case(archive, grant=demo_grant(breaker_base), person="sunli", session=demo_session(breaker_base),
                     passphrase=DEMO_PASSPHRASE)
    frame = case.messages(progress=False)
    hit, clean = [], []
    for row in frame.iter_rows(named=True):
        text = row.get("text") or ""
        (hit if "投诉" in text else clean if text and not detect(text) else []).append(row["message_id"])
    assert hit and len(clean) >= 3
    return {"hit": hit[:2], "clean": clean[:3]}


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def attested_body(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(members(path)["signature.json"])["archive"]["body"]


class SkipsTheHold(RemoteKeyService):
    """A modified client: whatever the key service says, it treats the export as released and writes it out."""

    def attest_export(self, ticket, body, leaves):  # type: ignore[no-untyped-def]
        done = super().attest_export(ticket, body, leaves)
        return ExportAttestation(done.attestation, ServerVerdict(False))


class SwapsTheRecords(RemoteKeyService):
    """A modified client: asks the attestation for other (harmless) records than the ones it bundles."""

    decoy: list[list[int]] = []

    def attest_export(self, ticket, body, leaves):  # type: ignore[no-untyped-def]
        return super().attest_export(ticket, body, self.decoy)


def test_a_client_that_skips_the_hold_gets_no_release_attestation_and_is_locked(keyserver, ids, tmp_path,
                                                                                monkeypatch):
    archive, notifier, url = keyserver
    from investigator.reports import breaker

    # an older client, asking without its records, gets no attestation (audited)
    case = open_case(archive, grant=demo_grant(archive.root), person="sunli", session=demo_session(archive.root),
                     key_service=RemoteKeyService(url, signer=RequestSigner("sunli", key(archive, "sunli"))))
    with pytest.raises(BundleError, match="exported records"):
        case.key_service.attest_bundle(case.ticket, {"purpose": "bundle-operator"})  # type: ignore[attr-defined]
    assert entries(archive, "bundle.attest")[-1].details["rule"] == "bundle.leaves"
    # its own breaker finds nothing (the client's verdict is the client's), and it ignores the server's hold
    monkeypatch.setattr(breaker, "sensitive_categories", lambda policy: {})
    liar = SkipsTheHold(url, signer=RequestSigner("sunli", key(archive, "sunli")))
    out = tmp_path / "lie.zip"
    result = export_bundle(archive, grant=demo_grant(archive.root), person="sunli", signer=key(archive, "sunli"),
                           keyserver=liar, session=demo_session(archive.root), ids=ids["hit"], out=out)
    assert not result.held and out.exists()  # written out: the client skipped the hold
    body = attested_body(out)
    assert body["verdict"]["decision"] == "hold" and body["verdict"]["judged_by"] == "key-service"
    assert body["verdict"]["categories"] == {"complaint": 2} and body["items"] == 2
    # the server refused a release attestation, audited with the reason
    (refused,) = [e for e in entries(archive, "bundle.attest") if e.details.get("rule") == "breaker.hold"]
    assert refused.outcome == "denied" and refused.details["verdict"] == "hold"
    assert "complaint x2" in refused.details["reason"] and "投诉" not in json.dumps(refused.details)
    # and in the same request it locked the accounts the policy names and ran the notifier
    locked = {lk.person for lk in load_locks(archive, DirectoryStore(archive).load()) if not lk.problem}
    assert locked == {"sunli", "zhaomin"}
    assert json.loads((notifier / "calls.jsonl").read_text().splitlines()[0])[1] == "complaint"
    # the bundle it wrote does not verify: the key service held it and it carries no release
    checked = verify_bundle(out, pubkeys=[archive.signing_public])
    assert not checked.ok and checked.facts["verdict"] == "hold"
    assert "the circuit breaker held this bundle and it carries no release" in checked.problems


def test_an_honest_clean_export_attests_and_records_swapped_after_attestation_fail(keyserver, ids, tmp_path):
    archive, _, url = keyserver
    sunli = RemoteKeyService(url, signer=RequestSigner("sunli", key(archive, "sunli")))
    clean = tmp_path / "clean.zip"
    result = export_bundle(archive, grant=demo_grant(archive.root), person="sunli", signer=key(archive, "sunli"),
                           keyserver=sunli, session=demo_session(archive.root), ids=ids["clean"], out=clean)
    assert not result.held
    body = attested_body(clean)
    assert body["verdict"]["decision"] == "release" and body["items"] == 3
    assert body["leaf_set_sha256"] == json.loads(members(clean)["manifest.json"])["leaf_set_sha256"]
    checked = verify_bundle(clean, pubkeys=[archive.signing_public])
    assert checked.ok and checked.facts["verdict"] == "release", checked.problems
    assert any("judged them: release" in line for line in checked.checked)
    # a client that shows the key service the clean records but bundles the ones with hits
    rows = [json.loads(line) for line in members(clean)["messages.jsonl"].splitlines()]
    SwapsTheRecords.decoy = [[r["batch_seq"], r["leaf_index"]] for r in rows]
    swapper = SwapsTheRecords(url, signer=RequestSigner("sunli", key(archive, "sunli")))
    swapped = tmp_path / "swapped.zip"
    result = export_bundle(archive, grant=demo_grant(archive.root), person="sunli", signer=key(archive, "sunli"),
                           keyserver=swapper, session=demo_session(archive.root), ids=ids["hit"], out=swapped)
    assert not result.held and swapped.exists()  # the server judged the decoys: release
    checked = verify_bundle(swapped, pubkeys=[archive.signing_public])
    assert not checked.ok
    assert any(p.startswith("messages.jsonl: the bundle's 2 records are not the record set the key service read")
               for p in checked.problems), checked.problems
    assert not load_locks(archive, DirectoryStore(archive).load())  # it never showed the server the hits


def test_an_old_format_bundle_still_verifies_with_a_note(copy, ids, tmp_path):
    """A bundle/1 (no record set, no key-service verdict in its attestation) verifies by its own rules."""
    archive, _ = copy
    new = tmp_path / "new.zip"
    export_bundle(archive, grant=demo_grant(archive.root), person="sunli", signer=key(archive, "sunli"),
                  passphrase=DEMO_PASSPHRASE, session=demo_session(archive.root), ids=ids["clean"], out=new)
    files = members(new)
    # downgraded as the format-1 exporter wrote it: manifest without the record set, the attestation of before
    manifest = json.loads(files["manifest.json"])
    manifest["format"] = "investigator-bundle/1"
    del manifest["leaf_set_sha256"]
    files["manifest.json"] = canonical_json(manifest)
    signature = json.loads(files["signature.json"])
    sunli = key(archive, "sunli")
    signature["operator"]["signature"] = sunli.sign(files["manifest.json"])
    old_body = {k: v for k, v in signature["archive"]["body"].items() if k not in ("leaf_set_sha256", "items",
                                                                                   "verdict")}
    old_body["manifest_sha256"] = hashlib.sha256(files["manifest.json"]).hexdigest()
    signature["archive"] = attestation(unlock_archive(archive, DEMO_PASSPHRASE), old_body)
    files["signature.json"] = canonical_json(signature)
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(old, "w") as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    checked = verify_bundle(old, pubkeys=[archive.signing_public])
    assert checked.ok, checked.problems
    assert checked.facts["verdict"] == "client"
    assert any("verdict in this bundle is the exporting client's" in w for w in checked.warnings)
    # the same bundle claiming format 2 without a key-service verdict fails, with the reason
    manifest["format"] = "investigator-bundle/2"
    files["manifest.json"] = canonical_json(manifest)
    signature["operator"]["signature"] = sunli.sign(files["manifest.json"])
    old_body["manifest_sha256"] = hashlib.sha256(files["manifest.json"]).hexdigest()
    signature["archive"] = attestation(unlock_archive(archive, DEMO_PASSPHRASE), old_body)
    files["signature.json"] = canonical_json(signature)
    with zipfile.ZipFile(old, "w") as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    checked = verify_bundle(old, pubkeys=[archive.signing_public])
    assert any("carries no key-service verdict" in p for p in checked.problems), checked.problems


def test_records_the_grant_does_not_cover_get_no_attestation(copy):
    """Embedded desk: a record outside the grant's window, a record twice, a leaf no batch has — refused, audited."""
    from investigator.access.custodian import CustodianDesk
    from investigator.authority.grants import Grant, find_grant
    from investigator.schema import format_ts

    archive, _ = copy
    grant = Grant.from_file(find_grant(archive, demo_grant(archive.root)))
    desk = CustodianDesk(archive, unlock_archive(archive, DEMO_PASSPHRASE))
    start = format_ts(grant.window[0])
    outside = next((m.seq, e.leaf_start) for m in archive.manifests() for e in m.chunks
                   if e.kind == "messages" and e.end <= start)
    body = {"purpose": "bundle-operator", "archive_id": archive.archive_id, "bundle_id": "B-0123456789abcdef",
            "manifest_sha256": "0" * 64, "operator": "sunli", "operator_key_id": key(archive, "sunli").public.key_id,
            "grant_id": grant.id}
    for leaves, why in (([list(outside)], "outside the grant's window"), ([[1, 0], [1, 0]], "twice"),
                        ([[outside[0], 10**6]], "has no record")):
        with pytest.raises(BundleError, match=why):
            desk.attest_export(body, leaves, person="sunli", grant=grant)
        last = entries(archive, "bundle.attest")[-1]
        assert (last.outcome, last.details["rule"]) == ("denied", "bundle.leaves"), why


def test_only_the_grants_operator_gets_an_attestation_from_the_embedded_desk(copy):
    """Another operator with the export permission, naming themselves in the body, is refused (as the key server's
    case ticket refuses them): ``grant.operator``, audited, no attestation."""
    from investigator.access.custodian import CustodianDesk
    from investigator.authority.grants import Grant, find_grant
    from investigator.errors import PolicyDenied
    from investigator.schema import format_ts

    archive, _ = copy
    grant = Grant.from_file(find_grant(archive, demo_grant(archive.root)))
    assert grant.operator == "sunli"
    desk = CustodianDesk(archive, unlock_archive(archive, DEMO_PASSPHRASE))
    start, end = (format_ts(t) for t in grant.window)
    inside = next([m.seq, e.leaf_start] for m in archive.manifests() for e in m.chunks
                  if e.kind == "messages" and e.start >= start and e.end <= end)
    for person in ("sunli", "qianjin"):  # the operator gets one (the control), another operator does not
        body = {"purpose": "bundle-operator", "archive_id": archive.archive_id, "bundle_id": "B-0123456789abcdef",
                "manifest_sha256": "0" * 64, "operator": person, "operator_key_id": key(archive, person).public.key_id,
                "grant_id": grant.id}
        if person == "sunli":
            assert desk.attest_export(body, [inside], person=person, grant=grant).attestation
            continue
        with pytest.raises(PolicyDenied, match="not the operator of grant"):
            desk.attest_export(body, [inside], person=person, grant=grant)
        last = entries(archive, "bundle.attest")[-1]
        assert (last.actor, last.outcome, last.details["rule"]) == ("qianjin", "denied", "grant.operator")
