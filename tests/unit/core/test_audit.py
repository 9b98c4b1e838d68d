"""Audit log: chain, checkpoints, tamper and truncation detection, concurrent appends."""

import json
import multiprocessing

import pytest

from investigator import _crypto
from investigator.vault.audit import AuditLog


@pytest.fixture
def signer():
    return _crypto.SigningKey.generate()


def _log(tmp_path, signer, n=6):
    log = AuditLog(tmp_path / "audit")
    for i in range(n):
        log.append(f"user{i}", "search", f"case-{i}", {"i": i}, outcome="allowed" if i % 2 else "denied")
    log.checkpoint(signer, archive_id="a")
    return log


def test_clean_log_verifies(tmp_path, signer):
    log = _log(tmp_path, signer)
    report = log.verify({signer.public.key_id: signer.public})
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
    report = log.verify({signer.public.key_id: signer.public})
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


def test_forged_checkpoint_is_refused(tmp_path, signer):
    log = _log(tmp_path, signer)
    other = _crypto.SigningKey.generate()
    report = log.verify({other.public.key_id: other.public})
    assert any("unknown key" in p for p in report.problems)


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
