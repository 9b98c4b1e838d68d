"""Signed state heads, attacked (issue #13, item 2): an attacker who can write the archive's files but holds no key
deletes or restores decision files under org/. Each attack runs on its own copy of the authority tests' small
organisation; each is caught by the named command with its specific reason (the load that the restored file
would have let through is refused, audited with rule ``state.head``; ``investigator verify --offline`` names the
file), and the untouched copy passes both."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from investigator.access.custodian import CustodianDesk
from investigator.authority.directory import Signer, set_status
from investigator.authority.grants import load_grant, revoke_grant
from investigator.authority.grants.documents import find_grant
from investigator.authority.identity import revoke_session, session_body
from investigator.authority.policy import PolicyStore, default_policy_text, load_org
from investigator.authority.state_head import state_problems
from investigator.cli import main
from investigator.errors import IdentityCheckFailed, IntegrityError, InvestigatorError, PolicyDenied
from investigator.vault.statehead import component_of, read_heads
from investigator.vault.tagstore import TagStore


def verify_offline(root: Path):
    return CliRunner().invoke(main, ["verify", str(root), "--offline"])


def heads(org) -> list:
    return read_heads(org.archive.layout, archive_id=org.archive.archive_id).heads


def last_denial(org) -> dict:
    return [e for e in org.audit() if e["outcome"] == "denied"][-1]


def assert_caught(org, reason: str, attempt, *, rule: str = "state.head") -> None:
    """``attempt`` is refused (audited with ``rule``, the reason naming the file) and verify --offline fails."""
    with pytest.raises(InvestigatorError) as refused:
        attempt()
    assert reason in str(refused.value), str(refused.value)
    denial = last_denial(org)
    assert denial["details"]["rule"] == rule and reason in denial["details"]["reason"], denial
    result = verify_offline(org.archive.root)
    assert result.exit_code == 4, result.output
    assert reason in result.output and "Traceback" not in result.output, result.output


def load(org):
    return load_org(org.archive, actor="sunli", action="test.load", target="org", now=org.now)


def test_every_decision_writes_the_next_head_pinned_in_the_log_and_the_untouched_copy_passes(org):
    before = len(heads(org))
    assert before >= 1  # the organisation's decisions were headed as they were made
    request = org.request("sunli")
    CustodianDesk(org.archive, org.keys).checkpoint(now=org.now)
    org.approve(request.id, "zhouzong", decision="reject", note="no")
    after = heads(org)
    assert len(after) > before
    pins = [e for e in org.audit() if e["action"] == "state.head" and e["outcome"] == "ok"]
    assert pins[-1]["details"]["seq"] == after[-1].seq and pins[-1]["details"]["sha256"] == after[-1].hash
    newest = after[-1].components
    assert newest["approvals"]["count"] >= 1 and newest["requests"]["count"] >= 2
    assert newest["directory"]["latest"].startswith("org/directory/") and newest["directory"]["latest_sha256"]
    load(org)
    result = verify_offline(org.archive.root)
    assert result.exit_code == 0, result.output


def test_deleting_a_revocation_reopens_nothing(org):
    revoke_grant(org.archive, org.grant_id, signer=Signer.archive(org.keys.signing), reason="closed", now=org.now)
    path = org.archive.layout.revocations
    path.write_bytes(b"")  # the revocation removed: the grant would verify again
    # the grant check (`grant verify`, and every key release) reads the revocations against the head
    assert_caught(org, "org/revocations.jsonl: state head", lambda: load_grant(find_grant(org.archive, org.grant_id))
                  .verify(org.archive, now=org.now, actor="sunli"), rule="grant.invalid")
    assert_caught(org, "org/revocations.jsonl: state head", lambda: load(org))


def test_restoring_the_revocations_file_from_before_is_caught_even_before_its_head(org):
    """Revoked by an admin's own key in embedded mode: no head yet; the log's grant.revoke names what is missing."""
    revoke_grant(org.archive, org.grant_id, signer=org.signer("wugang"), reason="closed", now=org.now)
    org.archive.layout.revocations.unlink()
    assert_caught(org, f"org/revocations.jsonl: no revocation of {org.grant_id}", lambda: load(org))


def test_deleting_the_newest_directory_version_does_not_bring_back_a_person_who_left(org):
    set_status(org.archive, "sunli", "left", signer=org.signer("wugang"), now=org.now, reason="left")
    CustodianDesk(org.archive, org.keys).checkpoint(now=org.now)
    newest = sorted(org.archive.layout.directory_dir.glob("*.json"))[-1]
    newest.unlink()
    assert_caught(org, f"org/directory/{newest.name}: covered by state head", lambda: load(org))


def test_deleting_a_rejection_lets_no_approval_through(org):
    request = org.request("sunli")
    org.approve(request.id, "zhouzong", decision="reject", note="no")
    rejection = next(org.archive.layout.approvals_dir(request.id).glob("*.json"))
    rejection.unlink()
    later = org.now + timedelta(seconds=60)
    assert_caught(org, "approvals/", lambda: org.approve(request.id, "zhouzong", when=later))
    assert not list(org.archive.layout.approvals_dir(request.id).glob("*.json"))  # nothing written


def test_deleting_the_newest_policy_version_is_caught(org):
    PolicyStore(org.archive).install(default_policy_text(), signer=Signer("wugang", org.key("wugang"),
                                     notary=CustodianDesk(org.archive, org.keys)), directory=org.directory(),
                                     now=org.now, note="v2")
    for path in sorted(org.archive.layout.policy_dir.iterdir())[-2:]:
        path.unlink()
    assert_caught(org, "org/policy/000002", lambda: load(org))


def test_restoring_an_older_totp_state_does_not_let_a_used_code_replay(org):
    desk = CustodianDesk(org.archive, org.keys)
    path = org.archive.layout.totp_state("sunli")
    older = path.read_bytes()
    code = org.code("sunli", org.now)
    desk.login("sunli", totp=code, now=org.now)
    path.write_bytes(older)
    assert_caught(org, "org/totp/sunli.json: last used TOTP step", lambda: desk.login("sunli", totp=code, now=org.now))


def test_restoring_an_older_totp_state_does_not_clear_a_lock_out(org):
    desk = CustodianDesk(org.archive, org.keys)
    path = org.archive.layout.totp_state("sunli")
    older = path.read_bytes()
    for i in range(5):
        with pytest.raises(IdentityCheckFailed):
            desk.login("sunli", totp="000000", now=org.now + timedelta(seconds=i))
    assert "locked out" in org.audit()[-2]["details"]["reason"] or "locked" in json.dumps(org.audit()[-6:])
    path.write_bytes(older)
    later = org.now + timedelta(seconds=90)
    assert_caught(org, "org/totp/sunli.json: the lock-out", lambda: desk.login("sunli", totp=org.code("sunli", later),
                                                                               now=later))


def test_restoring_a_session_record_from_before_its_revocation_is_caught(org):
    desk = CustodianDesk(org.archive, org.keys)
    token = desk.login("sunli", totp=org.code("sunli", org.now), now=org.now)
    sid = session_body(org.archive, token)["sid"]
    path = org.archive.layout.session(sid)
    live = path.read_bytes()
    revoke_session(org.archive, token, actor="sunli", now=org.now)
    desk.checkpoint(now=org.now)
    path.write_bytes(live)  # the session would work again
    assert_caught(org, f"org/sessions/{sid}.json: revoked at", lambda: load(org))


@pytest.mark.parametrize("garbage", [b"not json\n", b'{"body": [], "key_id": 1, "signature": null}\n',
                                     b'{"body": {"format": "investigator-state-head/1", "seq": "x"}}\n'])
def test_a_hostile_heads_line_is_reported_never_raised(org, garbage):
    path = org.archive.layout.state_heads
    path.write_bytes(path.read_bytes() + garbage)
    assert_caught(org, "org/state/heads.jsonl, line", lambda: load(org))


def test_swapping_two_heads_is_caught(org):
    path = org.archive.layout.state_heads
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3
    lines[-1], lines[-2] = lines[-2], lines[-1]
    path.write_bytes(b"".join(lines))
    assert_caught(org, "does not follow head", lambda: load(org))


def test_deleting_the_heads_file_is_caught(org):
    org.archive.layout.state_heads.unlink()
    assert_caught(org, "org/state/heads.jsonl: missing, but the audit log pins state head", lambda: load(org))


def test_restoring_a_whole_earlier_org_folder_with_its_heads_is_caught(org, tmp_path):
    earlier = tmp_path / "org-earlier"
    shutil.copytree(org.archive.layout.org_dir, earlier)
    revoke_grant(org.archive, org.grant_id, signer=Signer.archive(org.keys.signing), reason="closed", now=org.now)
    shutil.rmtree(org.archive.layout.org_dir)
    shutil.copytree(earlier, org.archive.layout.org_dir)  # consistent in itself: files, heads and signatures
    assert_caught(org, "the audit log pins state head", lambda: load(org))


def test_cutting_a_cases_tags_is_caught_when_they_are_read(org):
    tags = TagStore(org.archive, case="T-1", actor="sunli")
    tags.add(["m1", "m2"], "relevant", note="keep")
    tags.add(["m3"], "relevant")
    CustodianDesk(org.archive, org.keys).checkpoint(now=org.now)  # the key service heads them
    path = org.archive.layout.case_tags("T-1")
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])  # the second tag removed
    with pytest.raises(IntegrityError, match="cases/T-1/tags.jsonl: state head"):
        tags.tagset()
    result = verify_offline(org.archive.root)
    assert result.exit_code == 4 and "cases/T-1/tags.jsonl: state head" in result.output, result.output


def test_the_check_of_every_load_is_cheap(org, monkeypatch):
    """Every load_org, grant check and TOTP check runs it: files read and hashed once per process while unchanged.

    Counted, not timed (a timed test fails on a loaded machine and proves nothing on an idle one):
    repeated checks read no covered file again; a changed file is read again, and only it.
    """
    assert state_problems(org.archive) == []
    reads: list[str] = []
    real_read = Path.read_bytes

    def counting_read(self: Path) -> bytes:
        if org.archive.layout.contains(self):
            reads.append(org.archive.layout.relative(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    for _ in range(20):
        assert state_problems(org.archive) == []
    covered = [r for r in reads if component_of(r) is not None]
    assert covered == []
    revoke_grant(org.archive, org.grant_id, signer=org.signer("wugang"), reason="closed", now=org.now)
    reads.clear()
    assert state_problems(org.archive) == []
    assert "org/revocations.jsonl" in reads
    assert not [r for r in reads if component_of(r) is not None and r != "org/revocations.jsonl"
                and not r.startswith("org/state/")]


def test_policy_denied_is_the_refusal(org):
    org.archive.layout.state_heads.unlink()
    with pytest.raises(PolicyDenied) as refused:
        load(org)
    assert refused.value.rule == "state.head"


def test_a_revocation_after_a_torn_line_is_in_force_and_verifies(org):
    """A revocation cut short by a crash (no newline, no entry) leaves the next revocation its own line."""
    org.archive.layout.revocations.write_bytes(b'{"body": {"grant_id": "G-torn", "rea')
    revoke_grant(org.archive, org.grant_id, signer=org.signer("wugang"), reason="closed", now=org.now)
    lines = org.archive.layout.revocations.read_bytes().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["body"]["grant_id"] == org.grant_id
    with pytest.raises(InvestigatorError, match="revoked"):
        load_grant(find_grant(org.archive, org.grant_id)).verify(org.archive, now=org.now, actor="sunli")
    assert state_problems(org.archive) == []


@pytest.mark.parametrize("change", ["directory", "policy"])
def test_a_change_killed_before_its_audit_entry_leaves_a_loadable_organisation(org, monkeypatch, change):
    """Files first, then the entry: a writer stopped in between leaves the signed change in force, and loads
    still work (the other order left an audited version without its file, which every load refused)."""
    class Killed(BaseException):
        pass

    append = org.archive.audit.append

    def killed_at_the_entry(actor, action, *args, **kwargs):
        if action in ("people.deactivate", "policy.set") and kwargs.get("outcome", "ok") == "ok":
            raise Killed
        return append(actor, action, *args, **kwargs)

    versions = len(list(org.archive.layout.policy_dir.glob("*.toml")))
    monkeypatch.setattr(org.archive.audit, "append", killed_at_the_entry)
    with pytest.raises(Killed):
        if change == "directory":
            set_status(org.archive, "sunli", "left", signer=org.signer("wugang"), now=org.now, reason="left")
        else:
            directory = load(org)[0]
            PolicyStore(org.archive).install(default_policy_text(), signer=org.signer("wugang"),
                                             directory=directory, now=org.now)
    monkeypatch.undo()
    directory, policy = load(org)  # the organisation still loads: nothing refuses
    if change == "directory":
        assert not directory.person("sunli").active  # the signed change is in force
    else:
        assert policy.version == versions + 1  # the signed version is in force
    assert state_problems(org.archive) == []


# a policy install in a child process, killed with SIGKILL at one step (investigator/authority/policy/store.py CRASH_AT)
INSTALL = """
import sys
from datetime import datetime
from pathlib import Path
from investigator.authority.directory import DirectoryStore, Signer
from investigator.authority.identity import unlock_person_key
from investigator.authority.policy import PolicyStore, default_policy_text, store
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.vault.store import Archive

store.CRASH_AT = sys.argv[2]  # fault injection: this child is killed with SIGKILL at that step
archive = Archive.open(sys.argv[1])
key = unlock_person_key(archive, "wugang", DEMO_ONLY_PASSPHRASE.format(person="wugang"),
                        key_dir=Path(sys.argv[1]) / "demo-keys")
PolicyStore(archive).install(default_policy_text(), signer=Signer("wugang", key),
                             directory=DirectoryStore(archive).load(), now=datetime.fromisoformat(sys.argv[3]),
                             note="killed")
"""


@pytest.mark.parametrize("point", ["before-signature", "after-signature", "after-text", "after-audit"])
def test_a_policy_install_killed_at_each_step_leaves_a_loadable_organisation(org, point):
    """Record first, text last (a version exists when its text does): a kill at any step leaves the previous version
    in force or the new one complete, nothing the state heads or verify object to, and the next install works."""
    before = load(org)[1].version
    child = subprocess.run([sys.executable, "-c", INSTALL, str(org.archive.root), point, org.now.isoformat()],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stderr  # really killed there
    complete = point in ("after-text", "after-audit")
    assert load(org)[1].version == before + (1 if complete else 0)
    assert state_problems(org.archive) == []
    result = verify_offline(org.archive.root)
    assert result.exit_code == 0, result.output
    # the next install of the same policy numbers past what the kill left and is in force
    installed = PolicyStore(org.archive).install(default_policy_text(), signer=org.signer("wugang"),
                                                 directory=org.directory(), now=org.now, note="again")
    assert installed.version == before + (1 if point == "before-signature" else 2)
    assert load(org)[1].version == installed.version
    assert state_problems(org.archive) == []
    result = verify_offline(org.archive.root)
    assert result.exit_code == 0, result.output
    policy_files = sorted(p.name for p in org.archive.layout.policy_dir.iterdir())
    if point == "after-signature":  # the interrupted install's record stays (write-once), never read as a version
        assert f"{before + 1:06d}.sig.json" in policy_files and f"{before + 1:06d}.toml" not in policy_files
    assert f"{installed.version:06d}.toml" in policy_files and f"{installed.version:06d}.sig.json" in policy_files


def test_an_install_racing_another_for_the_same_number_replaces_nothing(org, monkeypatch):
    """Two installs that computed the same version number: the second finds the files taken and is refused;
    the first's signed files stay byte for byte (write-once, os.link)."""
    store = PolicyStore(org.archive)
    taken = load(org)[1].version
    layout = org.archive.layout
    before = {p: p.read_bytes() for p in (layout.policy_signature(taken), layout.policy_text(taken))}
    monkeypatch.setattr(PolicyStore, "_next", lambda self: taken)  # as if computed before the other install landed
    with pytest.raises(IntegrityError, match="changed meanwhile"):
        store.install(default_policy_text() + "\n# racing\n", signer=org.signer("wugang"), directory=org.directory(),
                      now=org.now, note="racing")
    assert {p: p.read_bytes() for p in before} == before
    assert not list(layout.policy_dir.glob(".*.tmp"))  # no scratch left behind
