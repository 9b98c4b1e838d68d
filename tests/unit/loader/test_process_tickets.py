"""Case tickets for processes: a child process opens the case from a process ticket alone (real key server)."""

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from investigator import _crypto, errors
from investigator.access import process_ticket as pt
from investigator.access.case import open_case
from investigator.access.keyserver import RemoteKeyService
from investigator.authority.directory import Signer
from investigator.authority.grants.workflow import revoke_grant
from investigator.authority.identity import revoke_key

from .conftest import EDGE_DAY, keyserver_process, post, signer

WINDOW = {"start": EDGE_DAY, "end": EDGE_DAY + timedelta(hours=1)}
WIDE = {"start": EDGE_DAY - timedelta(days=2), "end": EDGE_DAY + timedelta(hours=1)}
LABEL = "report run complaint_investigation"
INSIDE = ["messages", "2026-11-20", "100000", "meta"]
OUTSIDE = ["messages", "2026-11-21", "100000", "meta"]

CHILD = r"""
import json, os, sys
from pathlib import Path
env = sorted(os.environ)  # as started (polars adds its allocator's variable on import)
archive = os.environ["INVESTIGATOR_ARCHIVE"]
from investigator.access.case import open_case
from investigator.authority.identity import unlock_person_key
from investigator.vault.store import Archive
opened = Archive.open(archive)
try:  # the person's key file is not within reach
    unlock_person_key(opened, "sunli", "no-passphrase-here", key_dir=Path(archive) / "demo-keys")
    key = "readable"
except Exception as exc:
    key = type(exc).__name__
case = open_case(opened, process_ticket=os.environ["INVESTIGATOR_PROCESS_TICKET"])
messages, events = case.messages(), case.events()
print(json.dumps({"env": env, "key": key, "repr": repr(case), "person": case.person,
                  "messages": messages["record_hash"].to_list(), "events": events["record_hash"].to_list(),
                  "columns": messages.columns}))
"""


def denied(world, rule, action="key.release"):
    return [e for e in world.audit(action) if e.outcome == "denied" and e.details.get("rule") == rule]


def remote_case(world, url, grant, *, step=0):
    """A case opened through the key server; ``step=1`` uses the next 30 s code (codes are single-use)."""
    code = world.code("sunli", datetime.now(timezone.utc) + timedelta(seconds=30 * step))
    return open_case(world.archive, grant=grant, person="sunli", totp=code, keyserver=url,
                     signing_key=world.key("sunli"))


def keys_for(url, token, refs):
    return post(url, "/v1/keys-for-process", {"process_ticket": token, "refs": refs})


def test_a_child_process_with_only_the_ticket_loads_exactly_the_granted_rows(world, server, tmp_path):
    _, url = server
    grant = world.grant(**WIDE, participants=["zhangwei"])
    case = remote_case(world, url, grant)
    expected_messages = case.messages()["record_hash"].to_list()
    expected_events = case.events()["record_hash"].to_list()
    assert expected_messages and expected_events
    token = case.process_ticket(LABEL, lifetime=timedelta(minutes=10))
    [issued] = world.audit("process_ticket.issue")
    assert issued.outcome == "allowed" and issued.details["label"] == LABEL and issued.details["chunks"] > 0
    ticket_id = issued.details["process_ticket"]
    assert pt.ID_RE.match(ticket_id) and issued.details["expires"]
    # the person's private key file leaves the machine's reach before the process starts
    root = world.archive.root
    shutil.move(str(root / "demo-keys"), str(tmp_path / "keys-elsewhere"))
    unlocks = len(world.audit("unlock"))
    before = len(world.audit())
    env = {"INVESTIGATOR_ARCHIVE": str(root), "INVESTIGATOR_KEYSERVER": url, "INVESTIGATOR_PROCESS_TICKET": token}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert set(child["env"]) - {"LC_CTYPE"} == set(env)  # no passphrase, no key dir, no session
    assert child["key"] == "ConfigError"  # no key file to unlock
    assert child["messages"] == expected_messages and child["events"] == expected_events
    assert child["person"] == "sunli" and LABEL in child["repr"] and token not in done.stdout + done.stderr
    assert "text" in child["columns"]  # the grant's fields, no more and no less
    # every key release of the child is audited with its label and ticket id; it unlocked nothing
    new = world.audit()[before:]
    releases = [e for e in new if e.action == "key.release"]
    assert releases and all(e.outcome == "allowed" and e.actor == "sunli" and e.details["process"] == LABEL
                            and e.details["process_ticket"] == ticket_id for e in releases)
    assert {e.details["process"] for e in new if e.action == "load"} == {LABEL}
    assert len(world.audit("unlock")) == unlocks
    signature = token.rsplit(".", 1)[1]
    assert not any(token in json.dumps(e.details) or signature in json.dumps(e.details)
                   for e in world.audit())


def test_tampered_forged_and_foreign_tokens_are_refused_and_audited(world, server):
    _, url = server
    case = remote_case(world, url, world.grant(**WINDOW))
    token = case.process_ticket(LABEL)
    public, aid = world.archive.signing_public, world.archive.archive_id
    assert pt.decode(token, public, archive_id=aid).label == LABEL
    # any one character changed, dropped or added: refused (also where base64 has spare bits)
    for i, char in enumerate(token):
        tampered = token[:i] + ("A" if char != "A" else "B") + token[i + 1:]
        with pytest.raises(pt.ProcessTicketRefused):
            pt.decode(tampered, public, archive_id=aid)
    for broken in (token[:-1], token + "A", token[1:], "", None, 7, token.replace(".", "..", 1)):
        with pytest.raises(pt.ProcessTicketRefused):
            pt.decode(broken, public, archive_id=aid)
    body = pt.decode(token, public, archive_id=aid)
    widened = pt.ProcessTicket(**{**body.__dict__, "end": body.end + timedelta(days=30)})
    forged = pt.encode(widened, _crypto.SigningKey.generate())  # a key that is not the archive's
    payload = token.split(".")[1]
    grown = token.replace(payload, pt._b64url(pt._strict_unb64url(payload).replace(b'"count":', b'"count": ')))
    last = token[:-1] + ("B" if token[-1] == "A" else "A")
    for bad in (forged, grown, last, token[:-2], "x" * 40):
        status, answer = keys_for(url, bad, [INSIDE])
        assert (status, answer["rule"]) == (401, "process_ticket.invalid") and "keys" not in answer, answer
    entries = denied(world, "process_ticket.invalid")
    assert len(entries) == 5 and {e.actor for e in entries} == {"client 127.0.0.1"}
    status, answer = keys_for(url, token, [INSIDE])
    assert status == 200 and list(answer["keys"]) == ["/".join(INSIDE)]
    with pytest.raises(errors.IdentityCheckFailed):
        open_case(world.archive, process_ticket=last, keyserver=url)
    # a genuine token is worth nothing at another run of the key server
    with keyserver_process(world, "--rate", "50") as (_, other_url):
        status, answer = keys_for(other_url, token, [INSIDE])
    assert (status, answer["rule"]) == (403, "process_ticket.unknown")
    [unknown] = denied(world, "process_ticket.unknown")
    assert unknown.details["process"] == LABEL and unknown.actor == "sunli"


def test_an_expired_ticket_is_refused(world, server):
    _, url = server
    case = remote_case(world, url, world.grant(**WINDOW))
    token = case.process_ticket(LABEL, lifetime=1.0)
    expires = pt.decode(token, world.archive.signing_public, archive_id=world.archive.archive_id).expires
    assert expires <= datetime.now(timezone.utc) + timedelta(seconds=1)
    deadline = time.monotonic() + 10
    while True:  # bounded poll: the server judges by its own clock
        status, answer = keys_for(url, token, [INSIDE])
        if status != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (status, answer["rule"]) == (403, "process_ticket.expired") and "keys" not in answer
    assert denied(world, "process_ticket.expired")[-1].details["process"] == LABEL
    process_case = open_case(world.archive, process_ticket=token, keyserver=url)
    with pytest.raises(errors.PolicyDenied) as refused:
        process_case.messages()
    assert refused.value.rule == "process_ticket.expired"


def test_revocation_of_the_grant_the_ticket_or_the_key_ends_it(world, server):
    _, url = server
    grant = world.grant(**WINDOW)
    case = remote_case(world, url, grant)
    first, second = case.process_ticket(LABEL), case.process_ticket("dask worker 1")
    process_case = open_case(world.archive, process_ticket=first, keyserver=url)
    assert process_case.messages().height > 0
    # the person ends one ticket; only they may
    second_id = pt.decode(second, world.archive.signing_public, archive_id=world.archive.archive_id).id
    status, answer = post(url, "/v1/process-ticket/revoke", {"id": second_id}, sign=signer(world, "zhouzong"),
                          archive_id=world.archive.archive_id)
    assert (status, answer["rule"]) == (401, "process_ticket.person")
    assert keys_for(url, second, [INSIDE])[0] == 200
    case.revoke_process_ticket(second)
    status, answer = keys_for(url, second, [INSIDE])
    assert (status, answer["rule"]) == (403, "process_ticket.revoked")
    assert [e.outcome for e in world.audit("process_ticket.revoke")] == ["denied", "allowed"]
    # the grant revoked: every process ticket of it dies, and no new one is issued
    revoke_grant(world.archive, grant, signer=Signer("wugang", world.key("wugang")), reason="test", now=world.tick())
    status, answer = keys_for(url, first, [INSIDE])
    assert (status, answer["rule"]) == (403, "grant.revoked") and "keys" not in answer
    with pytest.raises(errors.PolicyDenied) as refused:
        process_case.messages()
    assert refused.value.rule == "grant.revoked"
    assert {e.details["process"] for e in denied(world, "grant.revoked")} == {LABEL}
    with pytest.raises(errors.PolicyDenied, match="revoked"):
        case.process_ticket(LABEL)
    assert denied(world, "grant.revoked", "process_ticket.issue")
    # the personal key that asked for a ticket revoked: the ticket dies with it
    other = remote_case(world, url, world.grant(**WINDOW), step=1)
    third = other.process_ticket(LABEL)
    assert keys_for(url, third, [INSIDE])[0] == 200
    revoke_key(world.archive, "sunli", signer=Signer("wugang", world.key("wugang")), now=world.tick(), reason="test")
    status, answer = keys_for(url, third, [INSIDE])
    assert (status, answer["rule"]) == (403, "process_ticket.revoked")


def test_chunks_outside_the_bound_set_are_refused(world, server):
    _, url = server
    grant = world.grant(**WINDOW, fields=("metadata",))
    case = remote_case(world, url, grant)
    token = case.process_ticket(LABEL)
    body = pt.decode(token, world.archive.signing_public, archive_id=world.archive.archive_id)
    bound = pt.chunk_set(world.archive, body.start, body.end, ("metadata",))
    assert body.chunks == len(bound) and body.chunks_sha256 == pt.chunk_set_hash(bound)
    assert "messages/2026-11-20/100000/meta" in bound and body.parts == ("meta",)
    other_kind = ["events", "2026-11-20", "090000", "meta"]
    for refs in ([OUTSIDE], [INSIDE, OUTSIDE], [INSIDE[:3] + ["content"]], [other_kind]):
        status, answer = keys_for(url, token, refs)
        assert (status, answer["rule"]) == (403, "process_ticket.scope") and "keys" not in answer, refs
    entries = denied(world, "process_ticket.scope")
    assert len(entries) == 4 and all(e.details["process"] == LABEL and e.details["process_ticket"] == body.id
                                     for e in entries)
    status, answer = keys_for(url, token, [INSIDE])
    assert status == 200 and len(answer["keys"]) == 1
    status, answer = keys_for(url, token, [["messages", "../../keys", "100000", "meta"]])
    assert (status, answer["rule"]) == (400, "keyserver.malformed")


def test_issuing_needs_a_key_server_case_a_label_and_a_bounded_lifetime(world, server):
    _, url = server
    grant = world.grant(**WINDOW)
    with pytest.raises(errors.ConfigError, match="key server"):
        world.open(grant).process_ticket(LABEL)
    case = remote_case(world, url, grant)
    token = case.process_ticket(LABEL, lifetime=timedelta(hours=10))
    body = pt.decode(token, world.archive.signing_public, archive_id=world.archive.archive_id)
    assert body.expires <= min(datetime.now(timezone.utc) + pt.MAX_LIFETIME, case.ticket.expires, case.grant.expiry)
    assert body.expires > datetime.now(timezone.utc) + timedelta(minutes=100)
    with pytest.raises(errors.ConfigError, match="process ticket"):
        open_case(world.archive, process_ticket=token, keyserver=url).process_ticket(LABEL)
    with pytest.raises(errors.ConfigError):
        open_case(world.archive, process_ticket=token, keyserver=url, totp="123456")
    with pytest.raises(errors.ConfigError, match="key server"):
        open_case(world.archive, process_ticket=token)
    aid = world.archive.archive_id
    for label in ("", "   ", "two\nlines", "x" * 121, None):
        status, answer = post(url, "/v1/process-ticket", {"token": case.ticket.token, "label": label},
                              sign=signer(world), archive_id=aid)
        assert (status, answer["rule"]) == (400, "keyserver.malformed"), label
    for lifetime in (0, -5, "60", True):
        status, answer = post(url, "/v1/process-ticket", {"token": case.ticket.token, "label": LABEL,
                                                          "lifetime_s": lifetime}, sign=signer(world), archive_id=aid)
        assert (status, answer["rule"]) == (400, "keyserver.malformed"), lifetime
    # another person cannot have a process ticket made from sunli's case ticket
    status, answer = post(url, "/v1/process-ticket", {"token": case.ticket.token, "label": LABEL},
                          sign=signer(world, "zhouzong"), archive_id=aid)
    assert (status, answer["rule"]) == (401, "keyserver.ticket_person")
    keys = RemoteKeyService(url)
    assert "ProcessTicketKeys" not in repr(keys) and token not in repr(open_case(world.archive, process_ticket=token,
                                                                                 keyserver=url)._keys_for_scan())
