"""Witnesses catch what nothing inside the archive can (issue #13, item 3): the archive and its audit log rolled
back together to an earlier consistent state, or the log truncated with its later checkpoints, pass every check
of the files alone (`verify --offline`, `audit verify`) and fail `--witness` with exit 4 and the reason; a SIGKILL
while a witness entry is written loses nothing and the next checkpoint catches the witness up.

Each case builds its own small archive (a few batches of 8 messages) whose signed policy lists a witness folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from support import PASSPHRASE, REPO
from witness_support import cli, ingest, replace_with, sizes, witnessed_archive
from investigator.errors import AuditError
from investigator.vault.checkpoint import origin_of
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive
from investigator.vault.witness import check_witnesses, log_leaves, open_witness


def _out(result) -> str:
    return result.output + (getattr(result, "stderr", "") or "")


def test_rollback_of_archive_and_audit_log_together_passes_alone_and_fails_with_the_witness(tmp_path):
    witness = tmp_path / "other-disk"
    witness.mkdir()
    root = tmp_path / "archive"
    archive, keys = witnessed_archive(root, [str(witness)])
    earlier = tmp_path / "earlier-copy"
    shutil.copytree(root, earlier)  # what the attacker keeps: an earlier, fully consistent state
    ingest(archive, keys, 5)  # a later batch, witnessed
    untouched = cli("verify", root, "--offline", "--witness", witness)
    assert untouched.exit_code == 0, _out(untouched)
    assert "consistent with the audit log" in _out(untouched)

    replace_with(root, earlier)  # batches, org/, log and checkpoints rolled back together
    assert cli("verify", root, "--offline").exit_code == 0  # the files alone check out
    assert cli("audit", "verify", root, "--no-record").exit_code == 0
    caught = cli("verify", root, "--offline", "--witness", witness)
    assert caught.exit_code == 4, _out(caught)
    # (each offline verify appends its own entry: the log may have grown back to the witness's size, then the
    # roots differ)
    assert "the archive and its audit log were rolled back" in _out(caught)
    audit = cli("audit", "verify", root, "--no-record", "--witness", witness)
    assert audit.exit_code == 4 and "the archive and its audit log were rolled back" in _out(audit)

    # going on from the rolled-back state: the witness refuses the fork (audited) and the caller stops;
    # once the forked log outgrows what the witness holds, the roots disagree
    rolled = Archive.open(root)
    for i in range(12):
        rolled.audit.append("tester", "note", f"n{i}")
    with pytest.raises(AuditError, match="a witness refused"):
        rolled.audit.checkpoint(keys.signing, archive_id=rolled.archive_id)
    caught = cli("verify", root, "--offline", "--witness", witness)
    assert caught.exit_code == 4
    assert "not consistent with" in _out(caught) and "refused a checkpoint" in _out(caught)
    # a full verify checkpoints: the witness refuses, so even without --witness it fails (fail closed)
    full = verify_archive(Archive.open(root), keys=keys)
    assert not full.ok and any("a witness refused" in p for p in full.problems), full.problems


def test_truncating_the_log_and_its_last_checkpoints_is_caught_by_the_witness(tmp_path):
    witness = tmp_path / "w"
    witness.mkdir()
    root = tmp_path / "archive"
    witnessed_archive(root, [str(witness)], batches=3)
    cut = sizes(root)[-2]  # keep the log up to the checkpoint before the last; drop the rest and that checkpoint
    log, cps = root / "audit" / "log.jsonl", root / "audit" / "checkpoints.jsonl"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:cut]))
    cps.write_bytes(b"".join(cps.read_bytes().splitlines(keepends=True)[:-1]))
    shutil.rmtree(root / "batches" / sorted(p.name for p in (root / "batches").iterdir())[-1])  # and its batch
    assert cli("audit", "verify", root, "--no-record").exit_code == 0
    caught = cli("audit", "verify", root, "--no-record", "--witness", witness)
    assert caught.exit_code == 4, _out(caught)
    assert f"has only {cut}" in _out(caught) and "rolled back or truncated" in _out(caught)
    assert cli("verify", root, "--offline").exit_code == 0
    assert cli("verify", root, "--offline", "--witness", witness).exit_code == 4


def test_a_witness_that_lacks_the_newest_checkpoints_is_reported(tmp_path):
    witness = tmp_path / "w"
    witness.mkdir()
    root = tmp_path / "archive"
    archive, keys = witnessed_archive(root, [str(witness)], batches=1)
    witness.rename(tmp_path / "unmounted")
    ingest(archive, keys, 3)
    (tmp_path / "unmounted").rename(witness)
    result = cli("verify", root, "--offline", "--witness", witness)
    assert result.exit_code == 0
    assert "lacks the archive's newest 1 checkpoint(s)" in _out(result)
    assert "witness.failed" in [e.action for e in Archive.open(root).audit.entries()]


_CHILD = """
import sys
from investigator.custody.file import unlock_archive
from investigator.vault import witness
from investigator.vault.store import Archive
import investigator.authority.policy  # the witness list comes from the signed policy
witness.CRASH_AT = sys.argv[2]
archive = Archive.open(sys.argv[1])
keys = unlock_archive(archive, sys.argv[3])
archive.audit.append("tester", "note", "before the kill")
archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id)
"""


@pytest.mark.parametrize("point", ["mid-entry", "before-link", "after-link"])
def test_sigkill_while_writing_a_witness_entry_loses_nothing(tmp_path, point):
    witness = tmp_path / "w"
    witness.mkdir()
    root = tmp_path / "archive"
    archive, keys = witnessed_archive(root, [str(witness)], batches=1)
    entries = len(log_leaves(archive.audit))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(root), point, PASSPHRASE], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    # nothing lost: the entry and the checkpoint written before the kill are there, and the archive verifies
    archive = Archive.open(root)
    targets = [e.target for e in archive.audit.entries()]
    covered = targets.index("before the kill") + 1
    assert covered > entries and sizes(root)[-1] == covered == len(targets)
    assert cli("verify", root, "--offline").exit_code == 0
    assert cli("audit", "verify", root, "--no-record").exit_code == 0
    held = open_witness(str(witness)).held(origin_of(archive.archive_id))
    assert held[-1].size == (covered if point == "after-link" else entries)  # a torn scratch is never an entry
    # the next checkpoint catches the witness up; scratch files left by the kill are ignored
    archive.audit.append("tester", "note", "after the restart")
    archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id)
    report = check_witnesses(archive.audit, archive.signing_keys().keys, archive.archive_id,
                             [open_witness(str(witness))])
    assert report.ok and not report.warnings, report
    assert cli("verify", root, "--offline", "--witness", witness).exit_code == 0
