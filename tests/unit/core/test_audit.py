"""Audit log: chain, transparency-log checkpoints, tamper and truncation detection, concurrent appends."""

import contextlib
import json
import multiprocessing

import pytest
from hypothesis import given, settings, strategies as st

from investigator import _crypto
from investigator.errors import AuditError
from investigator.schema import canonical_json
from investigator.vault import merkle
from investigator.vault.audit import AuditLog
from investigator.vault.checkpoint import Checkpoint, SignedNote, note_key_id, origin_of, verify_note
from investigator.vault.tlog import entry_hash


@pytest.fixture
def signer():
    return _crypto.SigningKey.generate()


def _log(tmp_path, signer, n=6, *, every=0):
    log = AuditLog(tmp_path / "audit")
    for i in range(n):
        log.append(f"user{i}", "search", f"case-{i}", {"i": i}, outcome="allowed" if i % 2 else "denied")
        if every and (i + 1) % every == 0:
            log.checkpoint(signer, archive_id="a")
    log.checkpoint(signer, archive_id="a")
    return log


def _keys(signer):
    return {signer.public.key_id: signer.public}


def test_clean_log_verifies(tmp_path, signer):
    log = _log(tmp_path, signer)
    report = log.verify(_keys(signer), archive_id="a")
    assert report.ok and report.counts["entries"] == 6 and report.counts["last_checkpoint_seq"] == 6


def _rewrite(log, lines):
    log.log_path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("tamper,expected", [
    ("edit", "entry hash does not match"),
    ("delete", "sequence"),
    ("insert", "sequence"),
    ("truncate", "log truncated"),
    ("swap", "sequence"),
])
def test_tampering_is_found_with_the_line(tmp_path, signer, tamper, expected):
    log = _log(tmp_path, signer)
    lines = log.log_path.read_bytes().splitlines(keepends=True)
    if tamper == "edit":
        entry = json.loads(lines[2])
        entry["outcome"] = "allowed"
        lines[2] = (json.dumps(entry, sort_keys=True) + "\n").encode()
    elif tamper == "delete":
        del lines[2]
    elif tamper == "insert":
        lines.insert(2, lines[1])
    elif tamper == "truncate":
        lines = lines[:4]
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    _rewrite(log, lines)
    report = log.verify(_keys(signer))
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems
    assert report.facts["first_bad_entry"] <= 3 if tamper != "truncate" else report.facts["first_bad_entry"] == 5


def test_a_checkpoint_by_another_key_is_refused(tmp_path, signer):
    log = _log(tmp_path, signer)
    other = _crypto.SigningKey.generate()
    report = log.verify(_keys(other))
    assert any("not signed by the archive's key (it carries 1 signature(s) by other keys, ignored)" in p
               for p in report.problems), report.problems


def _append_many(args):
    root, worker, count = args
    log = AuditLog(root)
    for i in range(count):
        log.append(f"w{worker}", "load", f"{i}")


def test_concurrent_processes_keep_the_chain(tmp_path, signer):
    root = tmp_path / "audit"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_append_many, [(root, w, 40) for w in range(4)])
    log = AuditLog(root)
    log.checkpoint(signer)
    report = log.verify({signer.public.key_id: signer.public})
    assert report.ok, report.problems
    assert report.counts["entries"] == 160


# --- the checkpoint note (C2SP tlog-checkpoint / signed-note) ----------------------------------------------

def test_checkpoint_is_a_signed_note_of_origin_size_root_and_time(tmp_path, signer, frozen_now):
    log = AuditLog(tmp_path / "audit")
    hashes = [log.append("u", "x", str(i), now=frozen_now).hash for i in range(3)]
    record = log.checkpoint(signer, archive_id="a1", now=frozen_now)
    text, _, signature = record["note"].rpartition("\n\n")
    root = merkle.root_of_leaf_hashes([merkle.leaf_hash(bytes.fromhex(h)) for h in hashes])
    assert text + "\n" == f"investigator/archive/a1\n3\n{_crypto.b64(root)}\ntime 2026-11-28T12:00:00.000000Z\n"
    # signed-note: "— <key name> base64(key ID || Ed25519 signature)", key ID = SHA-256(name || 0x0A || 0x01 || key)[:4]
    name, b64 = signature.removeprefix("\u2014 ").rstrip("\n").split(" ")
    raw = _crypto.unb64(b64)
    assert name == origin_of("a1") and raw[:4] == note_key_id(name, signer.public)
    signer.public.verify(_crypto.b64(raw[4:]), (text + "\n").encode())
    assert record["index"] == 1 and record["consistency"] is None and record["key_id"] == signer.public.key_id
    note = SignedNote.parse(record["note"])
    assert verify_note(note, [signer.public], name)[0] == signer.public
    assert Checkpoint.parse(note.text).size == 3


def test_every_checkpoint_proves_consistency_with_the_one_before(tmp_path, signer):
    log = _log(tmp_path, signer, n=11, every=3)
    sizes = log.checkpoint_sizes()
    assert sizes == [3, 6, 9, 11]
    records = log.checkpoints()
    for before, after in zip(records, records[1:]):
        old = Checkpoint.parse(SignedNote.parse(before["note"]).text)
        new = Checkpoint.parse(SignedNote.parse(after["note"]).text)
        proof = [_crypto.unb64(p) for p in after["consistency"]["proof"]]
        assert after["consistency"]["from"] == old.size
        assert merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)
    assert log.checkpoint(signer, archive_id="a") == records[-1]  # nothing appended: nothing new to sign
    assert len(log.checkpoints()) == 4


def test_entries_record_how_many_checkpoints_existed(tmp_path, signer):
    log = _log(tmp_path, signer, n=5, every=2)
    assert [e.checkpoints for e in log.entries()] == [0, 0, 1, 1, 2]
    assert all(entry_hash(e.to_json()) == e.hash for e in log.entries())  # the field is part of the entry


def _first_problem(report, text):
    return next((p for p in report.problems if text in p), None)


def test_a_removed_shortened_or_reordered_checkpoint_file_fails(tmp_path, signer):
    log = _log(tmp_path, signer, n=9, every=2)
    original = log.checkpoint_path.read_bytes()
    lines = original.splitlines(keepends=True)

    log.checkpoint_path.unlink()
    report = log.verify(_keys(signer))
    assert _first_problem(report, "missing or empty while the log holds 9 entries"), report.problems

    log.checkpoint_path.write_bytes(b"".join(lines[:-2]))  # the last two checkpoints dropped
    report = log.verify(_keys(signer))
    assert _first_problem(report, "checkpoint file shortened or rolled back"), report.problems

    log.checkpoint_path.write_bytes(b"".join([lines[1], lines[0], *lines[2:]]))
    report = log.verify(_keys(signer))
    assert _first_problem(report, "is checkpoint 2 of the file, found at line 1"), report.problems
    assert _first_problem(report, "smaller than the previous checkpoint's"), report.problems
    assert report.facts["first_bad_checkpoint"] == 1

    log.checkpoint_path.write_bytes(original)
    assert log.verify(_keys(signer)).ok


def test_removing_entries_and_recomputing_the_chain_is_found_and_located(tmp_path, signer):
    log = _log(tmp_path, signer, n=40, every=4)
    entries = [json.loads(line) for line in log.log_path.read_bytes().splitlines()]
    kept = [e for e in entries if e["seq"] not in (23, 24, 25)]
    prev = "0" * 64
    for seq, entry in enumerate(kept, start=1):
        entry.update(seq=seq, prev=prev)
        entry["hash"] = prev = entry_hash(entry)
    _rewrite(log, [(json.dumps(e, sort_keys=True) + "\n").encode() for e in kept])
    report = log.verify(_keys(signer), archive_id="a")
    problem = _first_problem(report, "are not the ones this checkpoint signed")
    assert problem and problem.startswith("checkpoints.jsonl, line 6:"), report.problems  # the first covering 23
    assert "the first change is among entries 21..24" in problem  # narrowed by the signed trees' subtrees
    assert report.facts["first_bad_entry"] == 21 and report.facts["first_bad_checkpoint"] == 6


def test_a_checkpoint_of_another_archive_or_a_rewritten_note_fails(tmp_path, signer):
    log = _log(tmp_path, signer, n=3)
    assert _first_problem(log.verify(_keys(signer), archive_id="b"), "is not this archive's")
    record = json.loads(log.checkpoint_path.read_bytes())
    record["note"] = record["note"].replace("\n3\n", "\n2\n", 1)
    log.checkpoint_path.write_text(json.dumps(record) + "\n")
    assert _first_problem(log.verify(_keys(signer)), "signature does not verify (note text altered)")


def test_the_writer_refuses_a_log_that_does_not_continue_its_last_checkpoint(tmp_path, signer):
    log = _log(tmp_path, signer, n=4)
    log.append("u", "x", "after")
    lines = log.log_path.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[-1])
    edited["outcome"] = "denied"
    _rewrite(log, lines[:-1] + [(json.dumps(edited, sort_keys=True) + "\n").encode()])
    with pytest.raises(AuditError, match="entry 5 does not continue the checkpointed log"):
        log.checkpoint(signer, archive_id="a")
    _rewrite(log, lines[1:])  # the first entry removed: the last checkpoint's offset no longer ends an entry
    with pytest.raises(AuditError, match="does not continue|no longer ends"):
        log.checkpoint(signer, archive_id="a")
    _rewrite(log, lines)
    log.checkpoint_path.unlink()  # deleted: a fresh chain over entries written under checkpoints is refused
    with pytest.raises(AuditError, match="missing, but the log's entry 5 was written when checkpoints existed"):
        log.checkpoint(signer, archive_id="a")


def test_a_checkpoint_line_cut_short_is_ignored_with_a_warning_and_replaced(tmp_path, signer):
    log = _log(tmp_path, signer, n=3)
    log.append("u", "x", "more")
    with open(log.checkpoint_path, "ab") as handle:
        handle.write(b'{"format": "tlog-checkpoint", "index": 2, "no')  # a crash in the middle of a write
    report = log.verify(_keys(signer))
    assert report.ok and any("incomplete last line" in w for w in report.warnings)
    log.checkpoint(signer, archive_id="a")
    assert log.checkpoint_sizes() == [3, 4] and log.verify(_keys(signer)).ok


# --- format-1 checkpoints (archives written before the transparency log) -----------------------------------

def _legacy_log(tmp_path, signer, *, key_id=None):
    log = AuditLog(tmp_path / "audit")
    prev = "0" * 64
    lines = []
    for seq in (1, 2, 3):
        entry = {"seq": seq, "ts": "2026-11-28T12:00:00.000000Z", "actor": "a", "action": "x", "target": "",
                 "outcome": "ok", "details": {}, "prev": prev}
        entry["hash"] = prev = entry_hash(entry)
        lines.append((json.dumps(entry, sort_keys=True) + "\n").encode())
    log.folder.mkdir(parents=True)
    log.log_path.write_bytes(b"".join(lines))
    body = {"archive_id": "a", "seq": 3, "hash": prev, "ts": "2026-11-28T12:00:00.000000Z"}
    legacy = {**body, "key_id": key_id or signer.public.key_id, "signature": signer.sign(canonical_json(body))}
    log.checkpoint_path.write_text(json.dumps(legacy, sort_keys=True) + "\n")
    return log


def test_legacy_checkpoints_verify_as_before_with_a_warning_and_the_log_grows_on(tmp_path, signer):
    log = _legacy_log(tmp_path, signer)
    report = log.verify(_keys(signer), archive_id="a")
    assert report.ok and report.counts["legacy_checkpoints"] == 1
    assert any("format-1 checkpoint(s)" in w and "verified as before" in w for w in report.warnings)
    log.append("b", "y")
    record = log.checkpoint(signer, archive_id="a")
    assert record["consistency"]["from"] == 3 and record["index"] == 2
    assert log.verify(_keys(signer), archive_id="a").ok


def test_legacy_checkpoint_signed_by_another_key_or_after_new_ones_fails(tmp_path, signer):
    person = _crypto.SigningKey.generate()
    log = _legacy_log(tmp_path, person)
    assert _first_problem(log.verify(_keys(signer)), "which is not one of the archive's keys")
    log = _legacy_log(tmp_path / "b", signer)
    log.append("b", "y")
    log.checkpoint(signer, archive_id="a")
    lines = log.checkpoint_path.read_bytes().splitlines(keepends=True)
    log.checkpoint_path.write_bytes(lines[0] + lines[1] + lines[0])
    assert _first_problem(log.verify(_keys(signer)), "a format-1 checkpoint after transparency-log checkpoints")


# --- incremental verification from this host's record -------------------------------------------------------

def test_incremental_verification_resumes_and_catches_rollback(tmp_path, signer):
    log = _log(tmp_path, signer, n=10, every=3)
    first, head = log.verify_from(_keys(signer), archive_id="a")
    assert first.ok and head.size == 10 and head.checkpoints == 4 and head.entries == 10
    snapshot = (log.log_path.read_bytes(), log.checkpoint_path.read_bytes())
    for i in range(5):
        log.append("u", "x", f"later {i}")
    log.checkpoint(signer, archive_id="a")
    log.append("u", "x", "uncovered")
    report, later = log.verify_from(_keys(signer), archive_id="a", since=head)
    assert report.ok and report.facts["incremental_from_checkpoint"] == 4, report.problems
    assert later.size == 15 and later.entries == 16 and later.checkpoints == 5

    # the log and its checkpoints rolled back together to what the first run saw: consistent, but not for this host
    log.log_path.write_bytes(snapshot[0])
    log.checkpoint_path.write_bytes(snapshot[1])
    assert log.verify(_keys(signer), archive_id="a").ok
    report, _ = log.verify_from(_keys(signer), archive_id="a", since=later)
    assert _first_problem(report, "holds 4 checkpoints; this host verified 5"), report.problems
    assert _first_problem(report, "holds 10 entries; this host verified 16"), report.problems

    # an uncovered entry removed after this host saw it
    full = snapshot[0] + b"".join(log.log_path.read_bytes().splitlines(keepends=True)[10:])
    log.log_path.write_bytes(full)
    report, _ = log.verify_from(_keys(signer), archive_id="a", since=head, full=True)
    assert report.ok


def test_a_tampered_prefix_falls_back_to_a_full_check_against_the_record(tmp_path, signer):
    log = _log(tmp_path, signer, n=8, every=2)
    _, head = log.verify_from(_keys(signer), archive_id="a")
    lines = log.log_path.read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    entry["hash"] = entry_hash(entry)
    _rewrite(log, [lines[0], (json.dumps(entry, sort_keys=True) + "\n").encode(), *lines[2:]])
    report, new_head = log.verify_from(_keys(signer), archive_id="a", since=head)
    assert new_head is None and "incremental_from_checkpoint" not in report.facts
    assert _first_problem(report, "the first 8 entries are not the ones this host verified"), report.problems
    assert _first_problem(report, "the first change is among entries 1..2"), report.problems  # the signed subtrees
    assert report.facts["first_bad_entry"] == 1


# --- hostile input: the verifier reports, it never raises ---------------------------------------------------

_MUTATIONS = st.sampled_from(["flip", "delete", "duplicate", "swap", "cut", "garbage"])


def _mutate(data: bytes, how: str, a: int, b: int) -> bytes:
    lines = data.splitlines(keepends=True)
    if not lines:
        return data + b"{}\n"
    i, j = a % len(lines), b % len(lines)
    if how == "flip":
        k = a % len(data)
        return data[:k] + bytes([data[k] ^ (1 << (b % 8))]) + data[k + 1:]
    if how == "delete":
        del lines[i]
    elif how == "duplicate":
        lines.insert(j, lines[i])
    elif how == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif how == "cut":
        return data[:a % len(data)]
    else:
        lines[i] = b'{"format": "tlog-checkpoint", "note": 7, "seq": [], "signature": null, "index": "x"}\n'
    return b"".join(lines)


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(["log", "checkpoints"]), _MUTATIONS, st.integers(0, 10_000), st.integers(0, 10_000))
def test_any_mutation_of_either_file_is_reported_never_raised(tmp_path_factory, which, how, a, b):
    signer = _SIGNER
    tmp = tmp_path_factory.mktemp("fuzz")
    log = _log(tmp, signer, n=9, every=2)
    _, head = log.verify_from(_keys(signer), archive_id="a")
    path = log.log_path if which == "log" else log.checkpoint_path
    before = path.read_bytes()
    path.write_bytes(_mutate(before, how, a, b))
    for since in (None, head):
        report, _ = log.verify_from(_keys(signer), archive_id="a", since=since)
        if how in ("delete", "cut", "garbage") and path.read_bytes() != before and which == "log":
            assert not report.ok
    with contextlib.suppress(AuditError):  # the writer refuses, or signs a log that still continues
        log.checkpoint(signer, archive_id="a")


_SIGNER = _crypto.SigningKey.generate()
