"""`investigator upgrade`: a format-1 archive keeps getting format-1 batches until it is upgraded (verified, audited,
crash-safe, nothing rewritten); `verify` tells an interrupted upgrade from a switch without one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace

import polars as pl
import pytest
from click.testing import CliRunner

from support import PASSPHRASE, REPO, message_frame
from investigator import errors
from investigator.cli import main
from investigator.custody.file import unlock_archive
from investigator.vault.config import ArchiveConfig
from investigator.vault.format import FORMAT_V1, FORMAT_V2
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive
from investigator.vault.upgrade import upgrade_archive
from investigator.vault.verify import verify_archive


def ingest(archive, keys, day: int, start_id: int, n: int = 30):
    return ingest_frames(archive, messages=message_frame(n, day=day, start_id=start_id), events=None, keys=keys,
                         actor="tester", sources=[], skipped=[])


def last_format(archive) -> int:
    return archive.manifests()[-1].chunk_format


def batch_files(archive) -> dict[str, bytes]:
    return {p.relative_to(archive.root).as_posix(): p.read_bytes()
            for p in sorted(archive.batches_dir.rglob("*")) if p.is_file()}


def upgrade_entries(archive) -> list:
    return [e for e in archive.audit.entries() if e.action == "archive.upgrade"]


@pytest.fixture
def v1(make_archive):
    """A format-1 archive with one batch."""
    archive, keys = make_archive(format_version=FORMAT_V1)
    ingest(archive, keys, day=18, start_id=0)
    return archive, keys


def test_a_format_1_archive_keeps_format_1_batches_until_upgraded(v1):
    archive, keys = v1
    ingest(archive, keys, day=19, start_id=100)
    assert [m.chunk_format for m in archive.manifests()] == [FORMAT_V1, FORMAT_V1]
    v1_files = [e.part("meta")[0] for e in archive.chunk_entries()]
    assert v1_files and all(name.endswith(".meta.chk") for name in v1_files)
    before = batch_files(archive)

    result = upgrade_archive(archive, keys, actor="wugang")
    assert (result.from_version, result.to_version, result.batches_verified) == (1, 2, 2)
    assert not result.already_current and not result.completed
    assert ArchiveConfig.load(archive.root).format_version == FORMAT_V2 == archive.write_format()
    assert batch_files(archive) == before  # nothing of the old batches rewritten or deleted

    ingest(archive, keys, day=20, start_id=200)
    assert last_format(archive) == FORMAT_V2
    new = [e for e in archive.chunk_entries() if e.batch_seq == 3]
    assert new and all(e.format == FORMAT_V2 and e.part("meta")[0].rsplit("/", 1)[1].count(".") == 1 for e in new)  # HHMMSS.chk
    # both formats read back, every record once
    frames = [archive.read_chunk(entry, keys) for entry in archive.chunk_entries("messages")]
    assert all(f.height == e.rows for f, e in zip(frames, archive.chunk_entries("messages")))
    ids = pl.concat(frames, how="diagonal_relaxed")["message_id"]
    assert ids.n_unique() == ids.len() == 90
    report = verify_archive(Archive.open(archive.root), keys=keys)
    assert report.ok and not report.warnings, (report.problems, report.warnings)
    (entry,) = upgrade_entries(archive)
    assert (entry.actor, entry.outcome) == ("wugang", "ok")
    assert entry.details == {"from": 1, "to": 2, "batches": 2, "verified": True}


def test_upgrade_keeps_every_other_setting_and_the_files_custody_table(v1):
    archive, keys = v1
    before = archive.layout.config.read_text(encoding="utf-8")
    # after a custody migration Archive.open overlays the key transition's [custody]; the file keeps the genesis one
    overlay = {"backend": "pkcs11", "token_label": "elsewhere"}
    archive.config = replace(archive.config, custody=overlay)
    upgrade_archive(archive, keys, actor="wugang")
    after = archive.layout.config.read_text(encoding="utf-8")
    assert after == before.replace("format_version = 1\n", "format_version = 2\n") != before
    assert ArchiveConfig.load(archive.root).custody == {"backend": "file"}
    assert archive.config.custody == overlay and archive.config.format_version == FORMAT_V2


def test_upgrading_a_current_archive_is_an_audited_no_op(make_archive):
    archive, keys = make_archive()  # a new archive writes format 2
    ingest(archive, keys, day=18, start_id=0)
    before = archive.layout.config.read_bytes()
    result = upgrade_archive(archive, keys, actor="wugang")
    assert result.already_current and (result.from_version, result.to_version) == (2, 2)
    assert archive.layout.config.read_bytes() == before
    (entry,) = upgrade_entries(archive)
    assert entry.outcome == "ok" and entry.details["already_current"] is True
    assert verify_archive(archive, keys=keys).ok


def test_a_tampered_v1_chunk_makes_upgrade_refuse_and_change_nothing(v1):
    archive, keys = v1
    target = archive.root / archive.chunk_entries()[0].part("meta")[0]
    data = bytearray(target.read_bytes())
    data[-5] ^= 0x01
    target.write_bytes(bytes(data))
    config_before = archive.layout.config.read_bytes()
    with pytest.raises(errors.IntegrityError, match="does not verify") as info:
        upgrade_archive(archive, keys, actor="wugang")
    assert target.name in str(info.value)  # names the problem
    assert archive.layout.config.read_bytes() == config_before and archive.write_format() == FORMAT_V1
    (entry,) = upgrade_entries(archive)
    assert entry.outcome == "error" and entry.details["verified"] is False
    assert entry.details["problems"] >= 1 and target.name in entry.details["reason"]


CRASH = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from support import PASSPHRASE
    from investigator.custody.file import unlock_archive
    from investigator.vault import upgrade
    from investigator.vault.store import Archive
    upgrade.CRASH_AT = {point!r}  # fault injection: this child is killed with SIGKILL at that step
    archive = Archive.open({root!r})
    upgrade.upgrade_archive(archive, unlock_archive(archive, PASSPHRASE), actor="crash-test")
""")


@pytest.mark.parametrize("point", ["after-audit", "after-write"])
def test_a_killed_upgrade_leaves_a_verifiable_archive_and_the_next_run_completes_it(v1, point):
    archive, keys = v1
    before = batch_files(archive)
    proc = subprocess.run([sys.executable, "-c", CRASH.format(tests=str(REPO / "tests"), root=str(archive.root),
                                                              point=point)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # really killed
    assert batch_files(archive) == before
    reopened = Archive.open(archive.root)
    keys = unlock_archive(reopened, PASSPHRASE)
    report = verify_archive(reopened, keys=keys)
    assert report.ok, report.problems
    interrupted = point == "after-audit"
    assert reopened.write_format() == (FORMAT_V1 if interrupted else FORMAT_V2)
    if interrupted:  # the audit log says 2, archive.toml 1: a warning, and ingests stay in the file's format
        assert any("archive.toml says format 1, the audit log format 2" in w and "investigator upgrade" in w
                   for w in report.warnings), report.warnings
        ingest(reopened, keys, day=19, start_id=100)
        assert last_format(reopened) == FORMAT_V1
    else:
        assert not report.warnings, report.warnings

    result = upgrade_archive(reopened, keys, actor="wugang")
    assert result.completed == interrupted and result.already_current == (not interrupted)
    assert reopened.write_format() == FORMAT_V2
    if interrupted:
        assert upgrade_entries(reopened)[-1].details["completed"] is True
    ingest(reopened, keys, day=20, start_id=200)
    assert last_format(reopened) == FORMAT_V2
    final = verify_archive(Archive.open(archive.root), keys=keys)
    assert final.ok and not final.warnings, (final.problems, final.warnings)


def test_verify_tells_an_interrupted_upgrade_from_a_switch_without_one(v1, make_archive):
    archive, keys = v1
    path = archive.layout.config
    path.write_text(path.read_text(encoding="utf-8").replace("format_version = 1", "format_version = 2"),
                    encoding="utf-8")  # edited by hand: no audited upgrade
    report = verify_archive(archive)
    assert any("archive.toml says format 2, the audit log format 1" in p and "without an audited upgrade" in p
               for p in report.problems), report.problems
    with pytest.raises(errors.IntegrityError, match="without an audited upgrade"):
        upgrade_archive(archive, keys, actor="wugang")
    assert upgrade_entries(archive)[-1].outcome == "error"
    # a format-2 archive whose file was set back below its audited format: the interrupted-upgrade warning
    current, _ = make_archive("current")
    path = current.layout.config
    path.write_text(path.read_text(encoding="utf-8").replace("format_version = 2", "format_version = 1"),
                    encoding="utf-8")
    report = verify_archive(current)
    assert report.ok and any("an interrupted upgrade" in w for w in report.warnings), report.warnings


def test_the_upgrade_command(v1, monkeypatch):
    archive, _ = v1
    monkeypatch.setenv("INVESTIGATOR_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("INVESTIGATOR_KEYSERVER", raising=False)
    run = CliRunner().invoke(main, ["upgrade", str(archive.root), "--as", "wugang", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output) == {"from_version": 1, "to_version": 2, "batches_verified": 1,
                                      "already_current": False, "completed": False}
    again = CliRunner().invoke(main, ["upgrade", str(archive.root), "--as", "wugang"])
    assert again.exit_code == 0 and "already format 2" in again.output and "无需升级" in again.output


def test_the_upgrade_command_refuses_a_damaged_archive(v1, monkeypatch):
    archive, _ = v1
    target = archive.root / archive.chunk_entries()[0].part("meta")[0]
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    monkeypatch.setenv("INVESTIGATOR_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("INVESTIGATOR_KEYSERVER", raising=False)
    run = CliRunner().invoke(main, ["upgrade", str(archive.root), "--as", "wugang"])
    assert run.exit_code == 4 and "upgrade refused" in run.output, run.output
    assert Archive.open(archive.root).write_format() == FORMAT_V1


class _CustodyGone:
    """The archive's custody after its server stopped answering: every unwrap fails (signing still works)."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def unwrap(self, *args, **kwargs):
        raise errors.KeyServiceError("cannot reach the key server at http://127.0.0.1:9 for unwrapping a key "
                                     "(ReadTimeout)")

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_an_upgrade_whose_custody_stops_answering_is_audited_and_changes_nothing(v1):
    """`investigator upgrade` of a format-1 archive in OpenBao custody, the server stopped during the verification:
    it said 'cannot reach the key server ... (ReadTimeout)' (exit 11) and left no archive.upgrade entry, only the
    'unlock'. Now the failure is audited (outcome error, not verified, the reason), and nothing changed."""
    archive, keys = v1
    config_before = archive.layout.config.read_bytes()
    with pytest.raises(errors.KeyServiceError, match="cannot reach"):
        upgrade_archive(archive, _CustodyGone(keys), actor="wugang")
    assert archive.layout.config.read_bytes() == config_before and archive.write_format() == FORMAT_V1
    (entry,) = upgrade_entries(archive)
    assert (entry.actor, entry.outcome, entry.details["verified"]) == ("wugang", "error", False)
    assert entry.details["reason"].startswith("the verification could not finish: cannot reach the key server")
    result = upgrade_archive(archive, keys, actor="wugang")  # with the custody back, it goes through
    assert (result.from_version, result.to_version, result.completed) == (FORMAT_V1, FORMAT_V2, False)
    assert archive.write_format() == FORMAT_V2
