"""Ingest through the key server: an ingest-only process adds a batch and holds no key that opens an earlier one.

The ingesting client is its own process whose environment has no ``INVESTIGATOR_PASSPHRASE``, working on a
copy of the archive without ``keys/`` (the tests run as root: file permissions would prove nothing); it shares
``batches/`` and ``staging/`` with the key server's archive, as clients share the archive folder. It records
every key the server hands it; the test then tries each one on every chunk part and index of the earlier
batches (none opens), checks its attempts to get more were refused and audited, and opens the new batch as an
investigator with a grant would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from .conftest import post, signer
from support import REPO, message_frame
from investigator import _crypto
from investigator.access.case import open_case
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.errors import IntegrityError
from investigator.vault.format import INDEX_MAGIC, INDEX_SEGMENT, chunk_key, index_aad
from investigator.vault.store import Archive, index_segment_key
from investigator.vault.verify import verify_archive

INGESTOR = "zhaomin"  # 组长 (team_lead): holds the policy's 'archive' permission (归档权限)
DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)

CLIENT = textwrap.dedent('''
    import json, os, secrets, sys
    sys.path.insert(0, {tests!r})
    import polars as pl
    from investigator import _crypto
    from investigator.access.client_auth import RequestSigner
    from investigator.access.ingest_client import RemoteIngest
    from investigator.access.keyserver import RemoteKeyService
    from investigator.access.keyservice import ChunkRef, Ticket
    from investigator.authority.identity import unlock_person_key
    from investigator.errors import InvestigatorError
    from investigator.vault.ingest import ingest_frames
    from investigator.vault.store import Archive

    assert "INVESTIGATOR_PASSPHRASE" not in os.environ
    from investigator.vault import ingest
    ingest.CRASH_AT = {crash!r}  # fault injection: killed with SIGKILL at that step (None: never)
    archive = Archive.open({root!r})
    key = unlock_person_key(archive, {person!r}, {passphrase!r}, key_dir=archive.root / "demo-keys")
    remote = RemoteKeyService({url!r}, signer=RequestSigner({person!r}, key))
    received = []  # every key this process is ever given, recorded here

    class Recording(RemoteIngest):
        def data_keys(self, batch_id, seq, wanted):
            out = super().data_keys(batch_id, seq, wanted)
            received.extend(_crypto.b64(dek) for dek, _ in out.values())
            return out

    messages = pl.read_parquet({frame!r})
    results = [ingest_frames(archive, messages=messages, events=None, sources=[], skipped=[], actor={person!r},
                             service=Recording(remote)).to_json() for _ in range(2)]  # the second: all duplicates
    attempts = {{}}

    def attempt(name, action):
        try:
            answer = action()
        except InvestigatorError as exc:
            attempts[name] = {{"outcome": "refused", "error": type(exc).__name__, "rule": getattr(exc, "rule", "")}}
        else:
            received.extend(_crypto.b64(k) for k in (answer.values() if isinstance(answer, dict) else []))
            attempts[name] = {{"outcome": "succeeded"}}

    earlier = archive.manifests()[0].chunks[0]
    attempt("data keys for batch 1", lambda: {{k: v[0] for k, v in remote.ingest_data_keys(
        secrets.token_hex(16), 1, [(earlier.kind, earlier.partition)]).items()}})
    attempt("data key for an earlier batch's index", lambda: {{k: v[0] for k, v in remote.ingest_data_keys(
        secrets.token_hex(16), len(archive.manifests()) + 1, [("index", "00000001")]).items()}})
    forged = Ticket(token=secrets.token_urlsafe(24), grant_id="G-none", person={person!r}, start=earlier.ts_min,
                    end=earlier.ts_max, parts=("meta",), expires=earlier.ts_max)
    attempt("key release for an earlier chunk", lambda: remote.release(
        forged, [ChunkRef(earlier.kind, earlier.partition, earlier.chunk, "meta", 1)]))
    print(json.dumps({{"results": results, "received": received, "attempts": attempts}}))
''')


def _client_view(server_root: Path, where: Path) -> Path:
    """A copy of the archive without keys/, sharing batches/ and staging/ with the server's (a shared folder)."""
    shutil.copytree(server_root, where, ignore=shutil.ignore_patterns("keys", "batches", "staging"))
    for shared in ("batches", "staging"):
        (server_root / shared).mkdir(exist_ok=True)
        (where / shared).symlink_to(server_root / shared, target_is_directory=True)
    assert not (where / "keys").exists()
    return where


def _input_frame(world, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """New messages on a day the archive already has, plus one stored record unchanged and one edited."""
    first = world.archive.manifests()[0]
    entry = next(c for c in first.chunks if c.kind == "messages")
    stored = world.archive.read_chunk(entry, world.keys).drop("record_hash", "batch_seq", "leaf_index", "version")
    new = message_frame(12, day=20, start_id=9000, text="ingested through the server {i}")
    same = stored.head(1).select(new.columns)
    edited = stored.slice(1, 1).select(new.columns).with_columns(pl.lit("an edited text").alias("text"))
    frame = pl.concat([new, same, edited], how="vertical_relaxed")
    path = tmp_path / "input.parquet"
    frame.write_parquet(path)
    return path, {"same": same["message_id"][0], "edited": edited["message_id"][0]}


def _run_client(client: Path, url: str, frame_path: Path, *, crash: str | None = None) -> dict:
    """The ingest-only client as its own process (no INVESTIGATOR_PASSPHRASE): its JSON report, or {} when killed."""
    env = {k: v for k, v in os.environ.items() if k != "INVESTIGATOR_PASSPHRASE"}
    script = CLIENT.format(tests=str(REPO / "tests"), root=str(client), person=INGESTOR, url=url, crash=crash,
                           passphrase=DEMO_ONLY_PASSPHRASE.format(person=INGESTOR), frame=str(frame_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
    if crash is not None:
        assert proc.returncode == -9, proc.stderr[-3000:]  # really killed
        return {}
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _opens(archive: Archive, entry, part: str, key: bytes) -> bool:
    try:
        archive.open_part(entry, part, key)
    except IntegrityError:
        return False
    return True


def test_an_ingest_only_client_adds_a_batch_and_holds_no_key_that_opens_an_earlier_one(world, server, tmp_path):
    proc_server, url = server
    root = world.archive.root
    earlier = world.archive.manifests()
    client = _client_view(root, tmp_path / "client")
    frame_path, ids = _input_frame(world, tmp_path)
    out = _run_client(client, url, frame_path)

    # the batch was added: the new records, the unchanged one skipped, the edited one a new version
    first, again = out["results"]
    assert first["batch_seq"] == len(earlier) + 1 and first["messages_added"] == 13
    assert first["duplicates"] == 1 and first["new_versions"] == 1
    assert again["batch_seq"] is None and again["duplicates"] == 14  # dedup answered by the server alone

    # every key the client ever held fails on every chunk part and every index of the earlier batches
    received = [_crypto.unb64(k) for k in out["received"]]
    assert len(received) >= 2  # the new day's partition key and the batch's index key
    archive = Archive.open(root)
    tried = 0
    for manifest in earlier:
        for entry in manifest.chunks:
            for part in entry.part_names:
                for dek in received:
                    derived = chunk_key(dek, archive_id=archive.archive_id, kind=entry.kind, partition=entry.partition,
                                        chunk=entry.chunk, part=part)
                    assert not _opens(archive, entry, part, derived) and not _opens(archive, entry, part, dek)
                    tried += 1
        if manifest.chunk_format == 1:
            blob = archive.layout.resolve(manifest.body["index"]["path"]).read_bytes()
            for dek in received:
                with pytest.raises(IntegrityError):
                    _crypto.open_sealed(dek, blob[len(INDEX_MAGIC):], aad=index_aad(archive.archive_id, manifest.seq))
            continue
        for entry in manifest.chunks:  # format 2: the index rows are a segment of each chunk file
            for dek in received:
                for key in (dek, index_segment_key(dek, archive.archive_id, entry.kind, entry.partition, entry.chunk)):
                    with pytest.raises(IntegrityError, match="index"):
                        archive.open_parts(entry, {INDEX_SEGMENT: key})
                    tried += 1
    assert tried > 100
    # ... while they are the real keys of the new batch (the recording is not empty talk)
    new = archive.manifests()[-1]
    entry = new.chunks[0]
    assert any(_opens(archive, entry, "meta", chunk_key(dek, archive_id=archive.archive_id, kind=entry.kind,
                                                      partition=entry.partition, chunk=entry.chunk, part="meta"))
               for dek in received)
    assert {e["kind"] for e in new.body["partition_keys"]} == {"messages", "index"}

    # its attempts to get keys for earlier batches were refused, and the server audited each
    attempts = out["attempts"]
    assert attempts["data keys for batch 1"] == {"outcome": "refused", "error": "PolicyDenied", "rule": "ingest.seq"}
    assert attempts["data key for an earlier batch's index"]["rule"] == "ingest.key"
    assert attempts["key release for an earlier chunk"]["outcome"] == "refused"
    denied = [e for e in archive.audit.entries() if e.outcome == "denied" and e.actor == INGESTOR]
    assert {e.details.get("rule") for e in denied if e.action == "ingest.datakey"} == {"ingest.seq", "ingest.key"}
    assert any(e.action == "key.release" and e.details.get("rule") == "keyserver.ticket" for e in denied)
    # the server audited every step with counts, never keys or hashes
    allowed = [e for e in archive.audit.entries() if e.actor == INGESTOR and e.outcome == "allowed"]
    actions = [e.action for e in allowed]
    assert actions.count("ingest.datakey") == 1 and actions.count("ingest.lookup") == 2
    assert [e.details["manifest_sha256"] for e in archive.audit.entries()
            if e.action == "ingest" and e.actor == INGESTOR] == [new.digest]  # the commit, by the server
    lookups = [e.details for e in allowed if e.action == "ingest.lookup"]
    assert [(d["asked"], d["present"]) for d in lookups] == [(14, 1), (14, 14)]
    log = archive.layout.audit_log.read_text()
    assert not any(_crypto.b64(k) in log for k in received)

    # the new batch verifies, and opens for an investigator with a grant (through the same server)
    assert verify_archive(archive, keys=world.keys).ok
    grant = world.grant(start=DAY, end=DAY + timedelta(days=1))
    case = open_case(archive, grant=grant, person="sunli", totp=world.code("sunli", datetime.now(timezone.utc)),
                     keyserver=url, signing_key=world.key("sunli"))
    rows = case.messages()
    assert {f"m{i}" for i in range(9000, 9012)} <= set(rows["message_id"].to_list())
    assert proc_server.poll() is None


def test_ingest_needs_the_archive_permission_and_is_audited(world, server):
    _, url = server
    archive_id = world.archive.archive_id
    row = ["jsonl", "m1", "ab" * 16]
    # zhangwei (普通客服, agent) has no 归档权限: refused by the policy, audited
    status, answer = post(url, "/v1/ingest/lookup", {"kind": "messages", "rows": [row]}, sign=signer(world, "zhangwei"),
                          archive_id=archive_id)
    assert (status, answer["rule"]) == (403, "role.permission") and "present" not in answer
    status, answer = post(url, "/v1/ingest/datakey", {"batch_id": "0f" * 16, "seq": len(world.archive.manifests()) + 1,
                                                      "keys": [["messages", "2026-11-20"]]},
                          sign=signer(world, "zhangwei"), archive_id=archive_id)
    assert (status, answer["rule"]) == (403, "role.permission") and "keys" not in answer
    # the auditor neither (a duty role that never writes records)
    status, answer = post(url, "/v1/ingest/lookup", {"kind": "messages", "rows": [row]}, sign=signer(world, "zhengjie"),
                          archive_id=archive_id)
    assert status == 403
    # malformed rows and a path as batch id are refused before anything is looked up
    for body in ({"kind": "messages", "rows": [["jsonl", "m1", "../../keys"]]}, {"kind": "messages", "rows": "x"}):
        status, answer = post(url, "/v1/ingest/lookup", body, sign=signer(world, INGESTOR), archive_id=archive_id)
        assert (status, answer["rule"]) == (400, "keyserver.malformed")
    status, answer = post(url, "/v1/ingest/commit", {"batch_id": "../../keys", "body_sha256": "0" * 64},
                          sign=signer(world, INGESTOR), archive_id=archive_id)
    assert (status, answer["rule"]) == (400, "keyserver.malformed")
    # a commit for a batch no keys were issued for
    status, answer = post(url, "/v1/ingest/commit", {"batch_id": "ab" * 16, "body_sha256": "0" * 64},
                          sign=signer(world, INGESTOR), archive_id=archive_id)
    assert (status, answer["rule"]) == (403, "ingest.batch")
    reopened = Archive.open(world.archive.root)
    denied = [(e.actor, e.action, e.details.get("rule")) for e in reopened.audit.entries() if e.outcome == "denied"]
    assert ("zhangwei", "ingest.lookup", "role.permission") in denied
    assert ("zhangwei", "ingest.datakey", "role.permission") in denied
    assert (INGESTOR, "ingest.commit", "ingest.batch") in denied
    assert sum(1 for d in denied if d[2] == "keyserver.malformed") == 3


def test_cli_ingest_and_consent_add_through_the_server_never_read_the_passphrase(world, server, tmp_path):
    from investigator.authority.consent import check_consent, load_consent
    from investigator.authority.directory import DirectoryStore

    _, url = server
    client = _client_view(world.archive.root, tmp_path / "client")
    export = tmp_path / "export.jsonl"
    rows = (message_frame(5, day=21, start_id=7000, text="cli ingest {i}").drop("source_file", "source_position")
            .with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")))
    export.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows.to_dicts()), encoding="utf-8")
    consent_file = tmp_path / "consent.txt"
    consent_file.write_text("客户知情同意书 — test consent\n", encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if k != "INVESTIGATOR_PASSPHRASE"}

    def cli(person: str, *args: str) -> dict:
        env = {**base, "INVESTIGATOR_KEYSERVER": url, "INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(
            person=person), "INVESTIGATOR_KEY_DIR": str(client / "demo-keys")}
        proc = subprocess.run([sys.executable, "-m", "investigator.cli", *args, "--as", person, "--json"],
                              capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    result = cli(INGESTOR, "ingest", str(client), str(export), "--format", "jsonl")
    assert result["batch_seq"] == len(world.archive.manifests()) and result["messages_added"] == 5
    archive = Archive.open(world.archive.root)
    assert verify_archive(archive, keys=world.keys).ok
    assert archive.manifests()[-1].body["actor"] == INGESTOR

    added = cli("sunli", "consent", "add", str(client), str(consent_file), "--case", "C-TEST", "--customer",
                "wangfang")
    record = load_consent(Archive.open(client), added["id"])
    # the server made and sealed the file's key: the custody (not the client) opens it
    decision = check_consent(Archive.open(client), record.id, case="C-TEST", directory=DirectoryStore(archive).load(),
                             keys=world.keys)
    assert decision.rule == "consent.verified", decision.reason
    server_log = [(e.actor, e.action, e.outcome) for e in archive.audit.entries()]
    assert ("sunli", "consent.datakey", "allowed") in server_log
    assert (INGESTOR, "ingest.datakey", "allowed") in server_log


def test_a_killed_ingest_client_leaves_the_archive_verifiable_and_the_rerun_commits(world, server, tmp_path):
    _, url = server
    before = len(world.archive.manifests())
    client = _client_view(world.archive.root, tmp_path / "client")
    frame_path, _ = _input_frame(world, tmp_path)
    # killed with its keys issued and the batch fully staged, before the server was asked to commit
    _run_client(client, url, frame_path, crash="before-manifest")
    archive = Archive.open(world.archive.root)
    assert len(archive.manifests()) == before and any((archive.root / "staging").iterdir())
    report = verify_archive(archive, keys=world.keys)
    assert report.ok and any("staging/" in w for w in report.warnings), report.problems
    out = _run_client(client, url, frame_path)
    assert out["results"][0]["batch_seq"] == before + 1 and out["results"][0]["messages_added"] == 13
    assert verify_archive(Archive.open(world.archive.root), keys=world.keys).ok
