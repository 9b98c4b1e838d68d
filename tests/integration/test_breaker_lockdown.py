"""The circuit breaker's lock-down (熔断机制, issue #13 item 6): hold, lock the accounts the policy names, notify.

On copies of the demo archive with a signed policy whose ``[breaker]`` names a keyword category, whom to lock
for it (the operator and a team lead) and a notifier: a real script (run as a subprocess, no shell) that
appends its arguments to a file, or fails, or hangs, as a mode file beside it says. Embedded mode runs the
lock-down in this process (the custody unlocked here); with a key server it runs in the server process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from investigator import _crypto
from investigator.access.case import open_case
from investigator.access.client_auth import RequestSigner
from investigator.access.custodian import CustodianDesk
from investigator.access.keyserver import RemoteKeyService
from investigator.analysis.pii import detect
from investigator.authority.directory import DirectoryStore, Signer
from investigator.authority.grants import Grant, find_grant
from investigator.authority.identity import unlock_person_key
from investigator.authority.locks import active_locks, load_locks, new_unlock_id, unlock_body
from investigator.authority.policy import PolicyStore
from investigator.cli import main as cli_main
from investigator.custody.file import unlock_archive
from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS
from investigator.errors import BundleError, IdentityCheckFailed, PolicyDenied
from investigator.reports.bundles import export_bundle
from investigator.schema import canonical_json, format_ts
from investigator.vault.store import Archive

pytestmark = pytest.mark.slow

NOTIFIER = """#!{python}
import json, pathlib, sys, time
here = pathlib.Path(__file__).parent
mode = (here / "mode").read_text().strip() if (here / "mode").exists() else "ok"
if mode == "hang":
    time.sleep(60)
with open(here / "calls.jsonl", "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(3 if mode == "fail" else 0)
"""

BREAKER = """
[breaker]
notify = ["{script}", "--category", "{{category}}", "--bundle", "{{bundle_id}}", "--operator", "{{operator}}",
          "--count", "{{count}}", "--locked", "{{locked}}"]
notify_timeout_seconds = 2

[breaker.categories]
complaint = ["投诉"]

[breaker.lock]
complaint = ["operator", "zhaomin", "wugang"]
"""


def key(archive: Archive, person: str):  # type: ignore[no-untyped-def]
    return unlock_person_key(archive, person, DEMO_ONLY_PASSPHRASE.format(person=person),
                             key_dir=archive.root / "demo-keys")


def code(person: str, at: datetime) -> str:
    return _crypto.totp(DEMO_ONLY_TOTP_SECRETS[person], at.timestamp())


@pytest.fixture(scope="module")
def breaker_base(demo_archive, tmp_path_factory) -> Path:
    """The demo archive with the breaker's policy signed by the admin (wugang), and the notifier script."""
    root = tmp_path_factory.mktemp("breaker") / "archive"
    shutil.copytree(demo_archive, root)
    archive = Archive.open(root)
    script = root.parent / "notifier" / "notify.py"
    script.parent.mkdir()
    script.write_text(NOTIFIER.format(python=sys.executable), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    store = PolicyStore(archive)
    directory = DirectoryStore(archive).load()
    text = archive.layout.policy_text(store._latest()).read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store.install(text + BREAKER.format(script=script), signer=Signer("wugang", key(archive, "wugang")),
                      directory=directory, now=datetime.now(timezone.utc), note="breaker lock-down")
    return root


@pytest.fixture
def copy(breaker_base, tmp_path) -> tuple[Archive, Path]:
    """A fresh copy of the base archive (each test's locks are its own), and the notifier's folder."""
    root = tmp_path / "archive"
    shutil.copytree(breaker_base, root)
    archive = Archive.open(root)
    # the policy names the notifier by absolute path: the copy's policy still points at the base's script, so the
    # calls file of the base's folder is where this test reads them; keep it per test by clearing it
    (breaker_base.parent / "notifier" / "calls.jsonl").unlink(missing_ok=True)
    (breaker_base.parent / "notifier" / "mode").unlink(missing_ok=True)
    return archive, breaker_base.parent / "notifier"


def entries(archive: Archive, action: str) -> list:  # type: ignore[type-arg]
    return [e for e in archive.audit.entries() if e.action == action]


def test_embedded_hold_locks_notifies_and_only_an_admin_with_a_reason_unlocks(copy, tmp_path, monkeypatch):
    archive, notifier = copy
    grant = demo_grant(archive.root)
    early = open_case(archive, grant=grant, person="sunli", session=demo_session(archive.root),
                      passphrase=DEMO_PASSPHRASE)  # a case open before the breaker trips
    result = export_bundle(archive, grant=grant, person="sunli", signer=key(archive, "sunli"),
                           passphrase=DEMO_PASSPHRASE, session=demo_session(archive.root), out=tmp_path / "b.zip",
                           notifiers=[str(notifier / "notify.py")])
    # 1. held, and in the same operation the accounts the policy names locked (the admin named is not)
    assert result.held and not (tmp_path / "b.zip").exists()
    assert result.lockdown is not None
    assert result.lockdown.locked == ("sunli", "zhaomin") and result.lockdown.skipped == ("wugang",)
    assert result.lockdown.categories == ("complaint",) and result.lockdown.notify.status == "ok"
    directory = DirectoryStore(archive).load()
    assert {lk.person for lk in load_locks(archive, directory)} == {"sunli", "zhaomin"}
    assert all(not lk.problem for lk in load_locks(archive, directory))
    locked = entries(archive, "account.lock")
    assert [(e.target, e.outcome) for e in locked] == [("sunli", "ok"), ("zhaomin", "ok"), ("wugang", "denied")]
    # 2. the notifier ran with the placeholders filled (ids, categories, counts only) and its exit is audited
    calls = [json.loads(line) for line in (notifier / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 1
    args = dict(zip(calls[0][::2], calls[0][1::2]))
    assert args["--category"] == "complaint" and args["--bundle"] == result.bundle_id
    assert args["--operator"] == "sunli" and args["--locked"] == "2" and int(args["--count"]) >= 1
    notified = entries(archive, "breaker.notify")[-1]
    assert (notified.outcome, notified.details["status"], notified.details["exit_code"]) == ("ok", "ok", 0)
    # 3. the locked person is refused everywhere she acts, each refusal audited with the rule
    now = datetime.now(timezone.utc)
    desk = CustodianDesk(archive, unlock_archive(archive, DEMO_PASSPHRASE))
    with pytest.raises(PolicyDenied, match="熔断") as refused:
        desk.login("sunli", totp=code("sunli", now))
    assert refused.value.rule == "account.locked"
    with pytest.raises(PolicyDenied, match="account sunli is locked"):
        open_case(archive, grant=grant, person="sunli", session=demo_session(archive.root),
                  passphrase=DEMO_PASSPHRASE)
    with pytest.raises(PolicyDenied):
        export_bundle(archive, grant=grant, person="sunli", signer=key(archive, "sunli"),
                      passphrase=DEMO_PASSPHRASE, session=demo_session(archive.root), out=tmp_path / "c.zip")
    with pytest.raises(PolicyDenied, match="熔断"):  # the case opened before gets no more keys
        early.messages(progress=False)
    refusals = [(e.action, e.actor) for e in archive.audit.entries()
                if e.outcome == "denied" and e.details.get("rule") == "account.locked"]
    assert ("login", "sunli") in refusals and ("case.open", "sunli") in refusals
    assert ("export", "sunli") in refusals and ("key.release", "sunli") in refusals
    # 4. the locked person cannot unlock herself (separated duties), refused before any code is looked at
    lock_ids = [lk.id for lk in active_locks(archive, directory, "sunli")]
    unlock_id = new_unlock_id(now)
    body = unlock_body(archive, "sunli", lock_ids, admin="sunli", reason="me", signed_at=now, unlock_id=unlock_id)
    with pytest.raises(PolicyDenied) as self_unlock:
        desk.unlock_account("sunli", admin="sunli", reason="me", totp=code("sunli", now), unlock_id=unlock_id,
                            signed_at=now, signature=key(archive, "sunli").sign(canonical_json(body)), now=now)
    assert self_unlock.value.rule == "account.self_unlock"
    # 5. through the CLI: the listing, an admin without a reason refused, then with a reason
    env = {"INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE,
           "INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(person="wugang"), "INVESTIGATOR_LANG": "en"}
    monkeypatch.delenv("INVESTIGATOR_KEYSERVER", raising=False)
    runner = CliRunner()
    listed = runner.invoke(cli_main, ["people", "locks", str(archive.root), "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert {lk["person"] for lk in json.loads(listed.output)["locks"]} == {"sunli", "zhaomin"}
    base = ["people", "unlock", str(archive.root), "sunli", "--as", "wugang", "--key-dir",
            str(archive.root / "demo-keys")]
    # one TOTP step after the clock as it is now (not after `now`, taken before the slow steps above: under load
    # they took longer than the one step of skew allowed, and the admin's code was refused as wrong)
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    no_reason = runner.invoke(cli_main, [*base, "--totp", code("wugang", later)], env=env)
    assert no_reason.exit_code != 0 and "reason" in no_reason.output
    assert entries(archive, "account.unlock")[-1].details["rule"] == "account.unlock_reason"
    done = runner.invoke(cli_main, [*base, "--reason", "false positive: the customer's own complaint",
                                    "--totp", code("wugang", later)], env=env)
    assert done.exit_code == 0, done.output
    assert "unlocked" in done.output
    allowed = entries(archive, "account.unlock")[-1]
    assert (allowed.actor, allowed.target, allowed.outcome) == ("wugang", "sunli", "allowed")
    assert sorted(allowed.details["lock_ids"]) == sorted(lock_ids)
    assert not active_locks(archive, DirectoryStore(archive).load(), "sunli")
    assert active_locks(archive, DirectoryStore(archive).load(), "zhaomin")  # her own lock stays
    # 6. and she works again
    case = open_case(archive, grant=grant, person="sunli", session=demo_session(archive.root),
                     passphrase=DEMO_PASSPHRASE)
    assert case.messages(progress=False).height > 0
    # 7. locks and unlocks are decisions like any other: covered by the signed state heads, verify passes
    verified = runner.invoke(cli_main, ["verify", str(archive.root), "--offline"], env=env)
    assert verified.exit_code == 0, verified.output


@pytest.fixture(scope="module")
def leaves(breaker_base) -> dict[str, list[list[int]]]:
    """Records of the demo grant as an attestation request names them (``[batch_seq, leaf_index]``): ``hit``
    carry the policy's category, ``clean`` nothing the breaker holds (no category, no personal data)."""
    archive = Archive.open(breaker_base)
    case = open_case(archive, grant=demo_grant(breaker_base), person="sunli", session=demo_session(breaker_base),
                     passphrase=DEMO_PASSPHRASE)
    hit, clean = [], []
    for row in case.messages(progress=False).iter_rows(named=True):
        text = row.get("text") or ""
        (hit if "投诉" in text else clean if text and not detect(text) else []).append(
            [int(row["batch_seq"]), int(row["leaf_index"])])
    assert hit and len(clean) >= 3
    return {"hit": hit, "clean": clean[:3]}


def attest_body(archive: Archive, grant: Grant, person: str) -> dict:  # type: ignore[type-arg]
    """The bundle attestation body ``person``'s process asks for (reports/bundles.py builds the same)."""
    return {"purpose": "bundle-operator", "archive_id": archive.archive_id, "bundle_id": "B-0123456789abcdef",
            "manifest_sha256": "0" * 64, "operator": person, "operator_key_id": key(archive, person).public.key_id,
            "grant_id": grant.id}


@pytest.mark.parametrize("mode, status", [("fail", "failed"), ("hang", "timeout"), ("missing", "not_found"),
                                          ("not allowed", "not_allowed")])
def test_a_failing_notifier_is_audited_and_undoes_neither_hold_nor_lock(copy, leaves, mode, status):
    archive, notifier = copy
    (notifier / "mode").write_text(mode)
    if mode == "missing":
        (notifier / "notify.py").rename(notifier / "moved.py")
    # the policy (an admin's) names the command; the key service's operator allows it, or it is not run
    allowed = frozenset() if mode == "not allowed" else frozenset({str(notifier / "notify.py")})
    desk = CustodianDesk(archive, unlock_archive(archive, DEMO_PASSPHRASE), notifiers=allowed)
    grant = Grant.from_file(find_grant(archive, demo_grant(archive.root)))
    try:
        started = datetime.now(timezone.utc)
        done = desk.attest_export(attest_body(archive, grant, "sunli"), leaves["hit"], person="sunli", grant=grant)
    finally:
        if mode == "missing":
            (notifier / "moved.py").rename(notifier / "notify.py")
    assert done.held and done.attestation["body"]["verdict"]["decision"] == "hold"
    assert done.key is not None and len(done.key) == 32 and done.sealed_key  # the hold's key all the same
    lockdown = done.lockdown
    assert lockdown is not None
    assert lockdown.notify.status == status and lockdown.categories == ("complaint",)
    assert (datetime.now(timezone.utc) - started).total_seconds() < 10  # a hanging notifier is cut at its timeout
    assert "sunli" in lockdown.locked and active_locks(archive, DirectoryStore(archive).load(), "sunli")
    notified = entries(archive, "breaker.notify")[-1]
    assert (notified.outcome, notified.details["status"]) == ("error", status)
    assert notified.details["exit_code"] == (3 if mode == "fail" else None)
    assert (notifier / "calls.jsonl").exists() == (mode == "fail")  # it ran (and wrote) only when it could


def test_a_client_locks_no_one_with_records_it_does_not_export_or_may_not_read(copy, leaves):
    """The key service locks only for what it finds itself in the records it reads for the attestation: the
    client reports no findings, and records that are not genuine records of its grant are refused."""
    archive, notifier = copy
    desk = CustodianDesk(archive, unlock_archive(archive, DEMO_PASSPHRASE),
                         notifiers=frozenset({str(notifier / "notify.py")}))
    grant = Grant.from_file(find_grant(archive, demo_grant(archive.root)))
    body = attest_body(archive, grant, "sunli")
    # records without a hit (whatever the client bundles beside them: bundle verify refuses another record set)
    for lie, shown in {"no records": [], "records without a hit": leaves["clean"]}.items():
        done = desk.attest_export(body, shown, person="sunli", grant=grant)
        assert not done.held and done.lockdown is None and done.key is None, lie
        assert done.attestation["body"]["verdict"]["categories"] == {}, lie
    start = format_ts(grant.window[0])
    outside = next([m.seq, e.leaf_start] for m in archive.manifests() for e in m.chunks
                   if e.kind == "messages" and e.end <= start)
    for lie, shown in {"a record outside the window": [outside, *leaves["hit"]],
                       "a leaf no batch has": [*leaves["hit"], [leaves["hit"][0][0], 10**6]]}.items():
        with pytest.raises(BundleError):
            desk.attest_export(body, shown, person="sunli", grant=grant)
        refused = entries(archive, "bundle.attest")[-1]
        assert (refused.outcome, refused.details["rule"]) == ("denied", "bundle.leaves"), lie
    assert not load_locks(archive, DirectoryStore(archive).load())
    assert not entries(archive, "breaker.notify") and not (notifier / "calls.jsonl").exists()


@pytest.fixture
def keyserver(copy, tmp_path):
    """A real ``investigator keyserver`` process over the copy; yields (archive, notifier folder, url)."""
    archive, notifier = copy
    env = {**os.environ, "INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE}
    proc = subprocess.Popen([sys.executable, "-m", "investigator.cli", "keyserver", str(archive.root), "--listen",
                             "127.0.0.1:0", "--shared-totp-state", "--rate", "50", "--person-rate", "50",
                             "--notifier", str(notifier / "notify.py")], env=env,
                            stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield archive, notifier, f"http://127.0.0.1:{match.group(1)}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # a loaded machine can take more than 10 s to let the server finish


def test_through_the_key_server_the_server_locks_and_notifies(keyserver, tmp_path):
    archive, notifier, url = keyserver
    sunli = RemoteKeyService(url, signer=RequestSigner("sunli", key(archive, "sunli")))
    result = export_bundle(archive, grant=demo_grant(archive.root), person="sunli", signer=key(archive, "sunli"),
                           keyserver=sunli, session=demo_session(archive.root), out=tmp_path / "b.zip")
    assert result.held and result.lockdown is not None
    assert result.lockdown.locked == ("sunli", "zhaomin") and result.lockdown.notify.status == "ok"
    # the server wrote the locks (signed by the archive key) and ran the notifier
    assert {lk.person for lk in load_locks(archive, DirectoryStore(archive).load()) if not lk.problem} == \
        {"sunli", "zhaomin"}
    assert json.loads((notifier / "calls.jsonl").read_text().splitlines()[0])[1] == "complaint"
    assert entries(archive, "breaker.notify")[-1].details["exit_code"] == 0
    now = datetime.now(timezone.utc)
    with pytest.raises(PolicyDenied, match="熔断"):
        sunli.login(totp=code("sunli", now + timedelta(seconds=30)))
    assert entries(archive, "login")[-1].details["rule"] == "account.locked"
    # an admin without a reason is refused; with one (and a TOTP code) the lock is lifted
    wugang_key = key(archive, "wugang")
    wugang = RemoteKeyService(url, signer=RequestSigner("wugang", wugang_key))
    lock_ids = [lk.id for lk in active_locks(archive, DirectoryStore(archive).load(), "sunli")]

    def unlock(reason: str, at: datetime) -> list[str]:
        unlock_id = new_unlock_id(at)
        body = unlock_body(archive, "sunli", lock_ids, admin="wugang", reason=reason, signed_at=at,
                           unlock_id=unlock_id)
        return wugang.unlock_account("sunli", reason=reason, totp=code("wugang", at + timedelta(seconds=30)),
                                     unlock_id=unlock_id, signed_at=at,
                                     signature=wugang_key.sign(canonical_json(body)))

    with pytest.raises(PolicyDenied, match="reason"):
        unlock("", now)
    # a signature over another body (other locks or reason than the server rebuilds) is refused too
    with pytest.raises(PolicyDenied):
        wugang.unlock_account("sunli", reason="checked", totp=code("wugang", now + timedelta(seconds=30)),
                              unlock_id=new_unlock_id(now), signed_at=now,
                              signature=wugang_key.sign(b"something else"))
    # an unlock signed an hour ago (a replayed or delayed request) is refused and audited
    with pytest.raises(IdentityCheckFailed, match="too far from the server's time"):
        unlock("checked with legal: a false positive", now - timedelta(hours=1))
    assert entries(archive, "account.unlock")[-1].details["rule"] == "account.unlock_signature"
    assert unlock("checked with legal: a false positive", now) == sorted(lock_ids)
    assert entries(archive, "account.unlock")[-1].outcome == "allowed"
    # works again (the refused login above consumed no code: the lock is checked before the code; the code of
    # the step after `now`, since the copy's demo session was made with a code of the current step)
    assert sunli.login(totp=code("sunli", now + timedelta(seconds=30)))
    with pytest.raises((PolicyDenied, IdentityCheckFailed)):  # zhaomin is still locked
        RemoteKeyService(url, signer=RequestSigner("zhaomin", key(archive, "zhaomin"))).login(
            totp=code("zhaomin", now + timedelta(seconds=30)))


def test_the_removed_held_key_route_answers_404_like_any_unknown_path(keyserver):
    """``/v1/bundle/held-key`` (a hold's key and lock-down without an attestation) is gone: the server answers it
    as an unknown path, before reading or verifying the request, and audits the refusal."""
    archive, notifier, url = keyserver
    assert not hasattr(RemoteKeyService, "held_bundle_key") and not hasattr(CustodianDesk, "held_bundle_key")
    sunli = RequestSigner("sunli", key(archive, "sunli"))
    data = json.dumps({"token": "t" * 32, "bundle_id": "B-0123456789abcdef", "evidence": []}).encode()
    for path in ("/v1/bundle/held-key", "/v1/no-such-path"):
        headers = {"Content-Type": "application/json",
                   **sunli.headers(archive_id=archive.archive_id, method="POST", path=path, body=data)}
        request = urllib.request.Request(url + path, data=data, method="POST", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code == 404, path
        assert json.loads(answer.value.read()) == {"error": "NotFound", "message": "unknown path",
                                                   "rule": "keyserver.path", "reason": "unknown path"}, path
        (refused,) = [e for e in entries(archive, "keyserver.request") if e.target == path]
        assert (refused.actor, refused.outcome, refused.details["rule"]) == \
            ("client 127.0.0.1", "denied", "keyserver.path"), path
    assert not load_locks(archive, DirectoryStore(archive).load()) and not (notifier / "calls.jsonl").exists()
    assert not entries(archive, "bundle.held_key")


def test_lock_records_fail_closed(copy):
    """An altered lock still locks (with its problem); an unlock not signed by an admin lifts nothing."""
    from investigator.authority.locks import lock_accounts

    archive, _ = copy
    keys = unlock_archive(archive, DEMO_PASSPHRASE)
    now = datetime.now(timezone.utc)
    (lock,) = lock_accounts(archive, keys.signing, ["zhangwei"], categories=["complaint"], bundle_id="B-1",
                            grant_id="G-1", operator="sunli", now=now)
    path = archive.layout.account_lock(lock.id)
    record = json.loads(path.read_text())
    record["body"]["categories"] = []  # edited after signing
    path.write_text(json.dumps(record))
    directory = DirectoryStore(archive).load()
    (loaded,) = active_locks(archive, directory, "zhangwei")
    assert loaded.problem and loaded.active  # fail closed
    # zhangwei signs his own "unlock" (he is no admin, and it is his own lock): it lifts nothing
    unlock_id = new_unlock_id(now)
    body = unlock_body(archive, "zhangwei", [lock.id], admin="zhangwei", reason="mine", signed_at=now,
                       unlock_id=unlock_id)
    forged = {"body": body, "signature": {"signer": "zhangwei", "key_id": key(archive, "zhangwei").public.key_id,
                                          "signature": key(archive, "zhangwei").sign(canonical_json(body))}}
    archive.layout.account_lock(unlock_id).write_text(json.dumps(forged))
    archive.layout.account_lock("LOCK-20260101-00000000").write_text("not json")  # names no one
    assert [lk.id for lk in active_locks(archive, DirectoryStore(archive).load(), "zhangwei")] == [lock.id]
    with pytest.raises(PolicyDenied):
        CustodianDesk(archive, keys).login("zhangwei", totp=code("zhangwei", now))
