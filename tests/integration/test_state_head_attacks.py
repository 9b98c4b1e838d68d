"""Signed state heads on copies of the demo archive (issue #13, item 2): `open` refuses a grant whose revocation was
deleted and an archive whose org/ was rolled back with its heads (audited, rule archive.audited_state, the reason
naming the file), `verify --offline` names each problem, and the untouched copy opens and verifies. A SIGKILL while
a head is written loses nothing: the archive verifies after the restart and the next writer rolls forward. An
archive from before heads (the committed known-answer archive) verifies unchanged and gets its first head from the
next writer.

Each copy links the demo's batch files (never written) and copies the rest."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from support import REPO
from investigator.access.custodian import CustodianDesk
from investigator.authority.directory import Person, Signer, add_people
from investigator.authority.grants import revoke_grant
from investigator.cli import main
from investigator.custody.file import unlock_archive
from investigator.demo.cases import complaint_grant, open_complaint_case
from investigator.demo.run import DEMO_PASSPHRASE
from investigator.errors import GrantInvalid, IntegrityError
from investigator.vault.statehead import read_heads
from investigator.vault.store import Archive

KNOWN_ANSWER = REPO / "tests" / "known_answer" / "v1-archive"


def _copy(demo_archive: Path, target: Path) -> Path:
    def link_batches(src: str, dst: str) -> None:
        if "batches" in Path(src).relative_to(demo_archive).parts:
            Path(dst).hardlink_to(src)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(demo_archive, target, copy_function=link_batches)
    return target


def _verify(root: Path, *extra: str):
    return CliRunner().invoke(main, ["verify", str(root), "--offline", *extra])


def _entries(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "audit" / "log.jsonl").read_bytes().splitlines()]


def _revoke(root: Path) -> str:
    """The custodian revokes the complaint grant with the archive key (a head follows)."""
    archive = Archive.open(root)
    keys = unlock_archive(archive, DEMO_PASSPHRASE)
    return revoke_grant(archive, complaint_grant(root), signer=Signer.archive(keys.signing), reason="closed",
                        now=datetime.now(timezone.utc))


def _assert_open_refused(root: Path, reason: str) -> None:
    with pytest.raises(IntegrityError) as refused:
        open_complaint_case(root)
    assert reason in str(refused.value) and "refusing to open" in str(refused.value), str(refused.value)
    denied = _entries(root)[-1]
    assert (denied["action"], denied["outcome"], denied["details"]["rule"]) == \
        ("case.open", "denied", "archive.audited_state"), denied


def test_the_demo_archive_is_headed_and_the_untouched_copy_opens_and_verifies(demo_archive, tmp_path):
    root = _copy(demo_archive, tmp_path / "copy")
    heads = read_heads(Archive.open(root).layout, archive_id=Archive.open(root).archive_id)
    assert heads.heads and not heads.problems
    assert heads.newest.components["grants"]["count"] >= 1 and heads.newest.components["totp"]["count"] >= 5
    result = _verify(root)
    assert result.exit_code == 0 and "state head" not in result.output, result.output
    assert open_complaint_case(root).messages(progress=False).height > 0


def test_a_deleted_revocation_does_not_reopen_the_grant(demo_archive, tmp_path):
    root = _copy(demo_archive, tmp_path / "copy")
    _revoke(root)
    with pytest.raises(GrantInvalid, match="revoked"):
        open_complaint_case(root)
    (root / "org" / "revocations.jsonl").unlink()  # the grant would open again
    _assert_open_refused(root, "org/revocations.jsonl: covered by state head")
    result = _verify(root)
    assert result.exit_code == 4 and "org/revocations.jsonl: covered by state head" in result.output, result.output


def test_restoring_an_earlier_org_folder_with_its_heads_is_refused(demo_archive, tmp_path):
    root = _copy(demo_archive, tmp_path / "copy")
    earlier = tmp_path / "org-before"
    shutil.copytree(root / "org", earlier)
    _revoke(root)
    shutil.rmtree(root / "org")
    shutil.copytree(earlier, root / "org")
    _assert_open_refused(root, "the audit log pins state head")
    result = _verify(root)
    assert result.exit_code == 4 and "heads deleted, or an older org/ restored" in result.output, result.output


_CHILD = """
import sys
from datetime import datetime, timezone
from investigator.authority.directory import Signer
from investigator.authority.grants import revoke_grant
from investigator.custody.file import unlock_archive
from investigator.vault import statehead
from investigator.vault.store import Archive
statehead.CRASH_AT = sys.argv[2]
archive = Archive.open(sys.argv[1])
keys = unlock_archive(archive, sys.argv[3])
revoke_grant(archive, sys.argv[4], signer=Signer.archive(keys.signing), reason="crash test",
             now=datetime.now(timezone.utc))
"""


@pytest.mark.parametrize("point", ["mid-line", "before-pin"])
def test_sigkill_while_writing_a_head_loses_nothing(demo_archive, tmp_path, point):
    root = _copy(demo_archive, tmp_path / "copy")
    grant = complaint_grant(root)
    before = len(read_heads(Archive.open(root).layout, archive_id=Archive.open(root).archive_id).heads)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(root), point, DEMO_PASSPHRASE, grant], env=env,
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    archive = Archive.open(root)
    heads = read_heads(archive.layout, archive_id=archive.archive_id)
    assert len(heads.heads) == before + (1 if point == "before-pin" else 0)  # a torn line is no head
    assert grant in (root / "org" / "revocations.jsonl").read_text()  # the decision is there
    result = _verify(root)
    assert result.exit_code == 0, result.output
    assert ("not pinned in the audit log yet" in result.output) == (point == "before-pin"), result.output
    # restart: the grant stays revoked, and the next writer pins / rolls forward
    with pytest.raises(GrantInvalid, match="revoked"):
        open_complaint_case(root)
    CustodianDesk(archive, unlock_archive(archive, DEMO_PASSPHRASE)).checkpoint()
    heads = read_heads(archive.layout, archive_id=archive.archive_id)
    assert len(heads.heads) == before + 1 and not heads.problems
    assert "org/revocations.jsonl" in heads.newest.changes
    result = _verify(root)
    assert result.exit_code == 0 and "not pinned in the audit log" not in result.output and "changed since" not in result.output, \
        result.output


def test_an_archive_from_before_heads_verifies_unchanged_and_is_headed_by_the_next_writer(tmp_path):
    root = tmp_path / "v1"
    shutil.copytree(KNOWN_ANSWER, root)
    result = _verify(root)
    assert result.exit_code == 0 and "state head" not in result.output, result.output  # unchanged
    archive = Archive.open(root)
    keys = unlock_archive(archive, "known-answer-v1")
    # its first decision file, written by the custodian: the checkpoint after it writes head 1 from the files
    add_people(archive, [Person(id="wugang", name="吴刚", roles=("admin",))], signer=Signer.archive(keys.signing),
               now=datetime.now(timezone.utc))
    heads = read_heads(archive.layout, archive_id=archive.archive_id)
    assert len(heads.heads) == 1 and heads.newest.prev == "0" * 64
    assert "org/directory/000001.json" in heads.newest.changes
    assert _verify(root).exit_code == 0
    (root / "org" / "state" / "heads.jsonl").unlink()  # now the log pins a head: deleting them is caught
    result = _verify(root)
    assert result.exit_code == 4 and "missing, but the audit log pins state head 1" in result.output, result.output
