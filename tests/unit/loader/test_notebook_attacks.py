"""From inside a notebook process in key-server mode: every way around the grant, tried; only granted chunks open.

The notebook is a child process whose environment has no INVESTIGATOR_PASSPHRASE and whose archive is a copy
without ``keys/`` (the tests run as root: file permissions would prove nothing). It opens a one-hour grant
through the real key server and then tries, through the package's internals, to read outside that hour. The
table it prints is asserted here, and every refusal must be in the server's audit log.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import timedelta

from support import REPO

from .conftest import EDGE_DAY, now_code

WINDOW = {"start": EDGE_DAY, "end": EDGE_DAY + timedelta(hours=1)}

NOTEBOOK = textwrap.dedent('''
    import json, secrets, sys
    from dataclasses import replace
    from datetime import datetime, timedelta
    from investigator import _crypto
    from investigator.access.case import open_case
    from investigator.access.keyservice import ChunkRef, EmbeddedKeyService, unlock_archive
    from investigator.authority.identity import unlock_person_key
    from investigator.errors import InvestigatorError
    from investigator.schema import format_ts
    from investigator.vault.store import Archive

    root, url, grant, totp, key_passphrase, passphrase, start_text, end_text = sys.argv[1:9]
    start, end = datetime.fromisoformat(start_text), datetime.fromisoformat(end_text)
    archive = Archive.open(root)
    key = unlock_person_key(archive, "sunli", key_passphrase, key_dir=archive.root / "demo-keys")
    case = open_case(archive, grant=grant, person="sunli", totp=totp, keyserver=url, signing_key=key)
    table = []

    def attempt(name, action):
        try:
            result = action()
        except InvestigatorError as exc:
            table.append({"attempt": name, "outcome": "refused", "error": type(exc).__name__})
        else:
            table.append({"attempt": name, "outcome": "succeeded", "result": str(result)[:80]})

    rows = case.messages()
    lo, hi = format_ts(start), format_ts(end)  # chunk entries keep their times as UTC text
    entries = archive.chunk_entries("messages")
    granted = {(e.partition, e.chunk) for e in entries if e.ts_min < hi and e.ts_max >= lo}
    outside = [e for e in entries if (e.partition, e.chunk) not in granted][0]
    inside = [e for e in entries if (e.partition, e.chunk) in granted][0]
    out_ref = ChunkRef("messages", outside.partition, outside.chunk, "content")
    in_ref = ChunkRef("messages", inside.partition, inside.chunk, "content")
    held = case.key_service.release(case.ticket, [in_ref])  # keys this process legitimately holds

    attempt("unlock the master keys with the real passphrase", lambda: unlock_archive(archive, passphrase))
    attempt("build an embedded gate from the archive copy",
            lambda: EmbeddedKeyService(archive, unlock_archive(archive, passphrase)))
    attempt("ask the server for an out-of-window chunk with the case ticket",
            lambda: case.key_service.release(case.ticket, [out_ref]))
    attempt("widen the ticket's window locally and ask again",
            lambda: case.key_service.release(replace(case.ticket, start=case.ticket.start - timedelta(days=30),
                                                     end=case.ticket.end + timedelta(days=30)), [out_ref]))
    attempt("forge a ticket token", lambda: case.key_service.release(replace(case.ticket,
                                                                              token=secrets.token_urlsafe(24)), [out_ref]))
    attempt("decrypt an out-of-window chunk with the keys held",
            lambda: archive.decrypt_chunk(outside, {"meta": held[in_ref], "content": held[in_ref]}))
    token = case.process_ticket("attack table")
    attempt("a process ticket for an out-of-window chunk", lambda: case.key_service.release_for_process(token, [out_ref]))
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    attempt("a forged process ticket", lambda: case.key_service.release_for_process(forged, [in_ref]))
    print(json.dumps({"rows": rows.height, "ts_min": str(rows["ts"].min()), "ts_max": str(rows["ts"].max()),
                      "table": table}))
''')


def test_a_notebook_process_cannot_read_outside_its_grant_through_any_internal(world, server, tmp_path):
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE
    from support import PASSPHRASE

    _, url = server
    grant = world.grant(**WINDOW)
    client = tmp_path / "client-archive"
    shutil.copytree(world.archive.root, client, ignore=shutil.ignore_patterns("keys"))
    assert not (client / "keys").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVESTIGATOR_")}
    env["PYTHONPATH"] = str(REPO)
    script = NOTEBOOK
    denials_before = len([e for e in world.audit() if e.outcome == "denied"])
    done = subprocess.run([sys.executable, "-c", script, str(client), url, grant, now_code(world),
                           DEMO_ONLY_PASSPHRASE.format(person="sunli"), PASSPHRASE,
                           WINDOW["start"].isoformat(), WINDOW["end"].isoformat()],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["rows"] > 0  # the granted hour loads
    table = {row["attempt"]: row for row in report["table"]}
    assert len(table) == 8
    succeeded = [name for name, row in table.items() if row["outcome"] != "refused"]
    assert not succeeded, table
    expected = {  # each refused for its own reason
        "unlock the master keys with the real passphrase": "ArchiveError",  # no key file on a client
        "build an embedded gate from the archive copy": "ArchiveError",
        "ask the server for an out-of-window chunk with the case ticket": "PolicyDenied",
        "widen the ticket's window locally and ask again": "PolicyDenied",  # the server keeps the real ticket
        "forge a ticket token": "IdentityCheckFailed",
        "decrypt an out-of-window chunk with the keys held": "IntegrityError",  # per-chunk keys
        "a process ticket for an out-of-window chunk": "PolicyDenied",
        "a forged process ticket": "ProcessTicketRefused",
    }
    assert {name: row["error"] for name, row in table.items()} == expected
    # the server saw and audited each attempt it was asked about (keys, forged tickets, process tickets)
    denials = [e for e in world.audit() if e.outcome == "denied"][denials_before:]
    assert len(denials) >= 5, [(e.action, e.details.get("rule")) for e in denials]
    assert not [e for e in world.audit("unlock") if e.actor == "sunli" and e.outcome == "ok"]
