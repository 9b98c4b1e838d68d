"""SIGKILL while a checkpoint is being written (issue #13, crash tests): the archive verifies after restart,
no entry is lost, and the next checkpoint replaces the torn line and covers everything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import PASSPHRASE, REPO
from investigator.custody.file import unlock_archive
from investigator.vault.audit import checkpoint_line_size
from investigator.vault.store import Archive

# the process appends entries, then is killed with half of its checkpoint line on disk (written and fsynced)
SCRIPT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from support import PASSPHRASE
from investigator.custody.file import unlock_archive
from investigator.vault.audit import AuditLog
from investigator.vault.store import Archive

archive = Archive.open({root!r})
keys = unlock_archive(archive, PASSPHRASE)
for number in range(5):
    archive.audit.append("tester", "test.entry", str(number))
write = AuditLog._append_line

def torn(path, line):
    if path.name == "checkpoints.jsonl":
        cut = {cut}
        with open(path, "ab") as handle:
            handle.write(line[:cut if cut >= 0 else len(line)])
            handle.flush()
            os.fsync(handle.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    write(path, line)

AuditLog._append_line = staticmethod(torn)
archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id)
"""


@pytest.mark.parametrize("cut", [0, 40, 200, -1], ids=["nothing", "40-bytes", "200-bytes", "whole-line"])
def test_killed_while_writing_a_checkpoint(make_archive, cut):
    archive, keys = make_archive()
    archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id)
    before = sum(1 for _ in archive.audit.entries())
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=str(REPO / "tests"), root=str(archive.root),
                                                               cut=cut)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # really killed, mid-write
    reopened = Archive.open(archive.root)
    entries = list(reopened.audit.entries())
    assert len(entries) >= before + 5  # nothing lost (the unlock entry comes too)
    report, head = reopened.audit.verify_from(reopened.signing_keys(), archive_id=reopened.archive_id)
    assert report.ok, report.problems
    if 0 < cut:
        assert any("incomplete last line" in w for w in report.warnings), report.warnings
    # life goes on: an entry, then the next checkpoint replaces a torn line and covers every entry
    reopened.audit.append("tester", "after.restart")
    line = reopened.audit.checkpoint(unlock_archive(reopened, PASSPHRASE).signing, archive_id=reopened.archive_id)
    total = sum(1 for _ in reopened.audit.entries())
    assert checkpoint_line_size(line) == total
    final, _ = reopened.audit.verify_from(reopened.signing_keys(), archive_id=reopened.archive_id, since=head)
    assert final.ok and not final.warnings, (final.problems, final.warnings)
    assert final.counts["uncovered_entries"] == 0
