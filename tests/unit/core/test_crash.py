"""An ingest killed with SIGKILL at each step leaves an archive that verifies; the re-run completes."""

import subprocess
import sys
import textwrap

import polars as pl
import pytest

from support import PASSPHRASE
from investigator.vault.store import Archive
from investigator.custody.file import unlock_archive
from investigator.vault.verify import verify_archive

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from support import message_frame, event_frame, PASSPHRASE
    from investigator.vault.store import Archive
    from investigator.vault import ingest
    from investigator.vault.ingest import ingest_frames
    from investigator.custody.file import unlock_archive
    ingest.CRASH_AT = {point!r}  # fault injection: this child is killed with SIGKILL at that step
    archive = Archive.open({root!r})
    keys = unlock_archive(archive, PASSPHRASE)
    ingest_frames(archive, messages=message_frame(200, day=19, start_id=1000), events=event_frame(20, day=19), keys=keys,
                  actor="crash-test", sources=[], skipped=[])
""")


@pytest.mark.parametrize("point", ["mid-chunks", "before-manifest", "before-commit", "after-commit"])
def test_killed_ingest_leaves_a_verifiable_archive(make_archive, point, monkeypatch):
    from support import REPO, message_frame
    from investigator.vault.ingest import ingest_frames

    archive, keys = make_archive()
    ingest_frames(archive, messages=message_frame(30), events=None, keys=keys, actor="t", sources=[], skipped=[])
    script = SCRIPT.format(tests=str(REPO / "tests"), root=str(archive.root), point=point)
    proc = subprocess.run([sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # really killed
    reopened = Archive.open(archive.root)
    report = verify_archive(reopened, keys=unlock_archive(reopened, PASSPHRASE))
    assert report.ok, report.problems
    residue = [w for w in report.warnings if w.startswith("staging/")]
    assert bool(residue) == any((archive.root / "staging").iterdir())
    assert all("custodian's host, not by one through the key server" in w for w in residue)  # who cleans it up
    committed = point == "after-commit"
    assert reopened.info()["messages"] == (230 if committed else 30)
    # the re-run completes with nothing lost and nothing duplicated
    clean = SCRIPT.format(tests=str(REPO / "tests"), root=str(archive.root), point=None)
    rerun = subprocess.run([sys.executable, "-c", clean], capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    final = Archive.open(archive.root)
    keys = unlock_archive(final, PASSPHRASE)
    assert final.info()["messages"] == 230 and final.info()["events"] == 20
    report = verify_archive(final, keys=keys)
    assert report.ok and not report.warnings, (report.problems, report.warnings)
    ids = pl.concat([final.read_chunk(e, keys)
                     for e in final.chunk_entries("messages")])["message_id"]
    assert ids.n_unique() == ids.len() == 230
    assert not any((final.root / "staging").iterdir())
    audited = [e for e in final.audit.entries() if e.action == "ingest" and "manifest_sha256" in e.details]
    assert len(audited) == 2  # one per committed batch, recovered or not
    assert any(e.details.get("recovered") for e in audited) == committed


def test_every_staged_folder_is_fsynced_before_the_manifest_is_written(make_archive, monkeypatch):
    """A new file's name survives a crash only once its folder is fsynced (POSIX): commit_batch fsyncs every folder
    of the staged batch before it writes the manifest that makes the batch exist."""
    from pathlib import Path

    from support import message_frame
    from investigator.vault import ingest
    from investigator.vault.ingest import ingest_frames

    archive, keys = make_archive()
    calls: list[tuple[str, Path]] = []
    real_fsync_dir, real_write_file = ingest.fsync_dir, ingest.write_file

    def fsync_dir(path):  # notes the call, then really fsyncs
        calls.append(("fsync", Path(path)))
        real_fsync_dir(path)

    def write_file(path, data):  # notes the call, then really writes
        calls.append(("write", Path(path)))
        real_write_file(path, data)

    monkeypatch.setattr(ingest, "fsync_dir", fsync_dir)
    monkeypatch.setattr(ingest, "write_file", write_file)
    result = ingest_frames(archive, messages=message_frame(200, day=19), events=None, keys=keys, actor="t",
                           sources=[], skipped=[])
    at = next(i for i, (what, path) in enumerate(calls) if what == "write" and path.name == "manifest.json")
    staged = calls[at][1].parent
    synced = {path.relative_to(staged) for what, path in calls[:at] if what == "fsync" and path.is_relative_to(staged)}
    final = archive.layout.batch_dir(result.batch_seq)
    folders = {d.relative_to(final) for p in final.rglob("*") if p.is_file() for d in p.parents
               if d.is_relative_to(final) and d != final}
    assert len(folders) >= 2  # kind and partition folders at least
    assert folders <= synced, sorted(map(str, folders - synced))


def test_an_embedded_ingest_leaves_a_batch_a_client_of_the_key_server_is_staging(make_archive):
    # an embedded ingest on the custodian's host while a client staged through the key server swept the client's
    # folder away under it: the embedded ingest died with a traceback (OSError: Directory not empty) and the
    # client's commit was refused ('staged file missing')
    from support import message_frame
    from investigator._fs import exclusive_lock_if_free, shared_lock
    from investigator.access.ingest_client import RemoteIngest
    from investigator.vault.ingest import ingest_frames

    archive, keys = make_archive()
    with RemoteIngest(None).writing(archive, actor="zhaomin"):  # type: ignore[arg-type]  (no request is sent)
        with exclusive_lock_if_free(archive.layout.staging_lock) as alone:
            assert not alone  # the client holds the staging lock while it stages and commits
    busy = archive.layout.staging_dir / "0123456789abcdef0123456789abcdef" / "messages" / "2026-11-18"
    busy.mkdir(parents=True)
    (busy / "060000.chk").write_bytes(b"being written")
    with shared_lock(archive.layout.staging_lock):
        ingest_frames(archive, messages=message_frame(5), events=None, keys=keys, actor="custodian", sources=[],
                      skipped=[])
        assert (busy / "060000.chk").read_bytes() == b"being written"
    ingest_frames(archive, messages=message_frame(5, start_id=100), events=None, keys=keys, actor="custodian",
                  sources=[], skipped=[])
    assert not any(archive.layout.staging_dir.iterdir())  # residue once nobody stages: swept as before
    assert verify_archive(archive, keys=keys).ok
