"""Master-key rotation: rewrap under a new version, keep reading, retire the old version."""

import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from support import PASSPHRASE, event_frame, message_frame
from investigator import errors
from investigator.vault.store import Archive
from investigator.vault.ingest import ingest_frames
from investigator.custody.rotation import retire, rotate, status
from investigator.custody.file import unlock_archive
from investigator.vault.verify import verify_archive


def _ingest(archive, keys, frame, events=None):
    return ingest_frames(archive, messages=frame, events=events, sources=[], skipped=[], keys=keys, actor="t")


def test_rotate_then_retire_keeps_every_record_readable(make_archive):
    archive, keys = make_archive()
    _ingest(archive, keys, message_frame(30), event_frame(3))
    before = pl.concat([archive.read_chunk(e, keys) for e in archive.chunk_entries("messages")])
    result = rotate(archive, unlock_archive(archive, PASSPHRASE), actor="wugang")
    assert result.version == 2 and result.rewrapped == 4  # 2 partitions + the batch's index key + the archive-wide one
    with pytest.raises(errors.ArchiveError, match="current"):
        retire(archive, unlock_archive(archive, PASSPHRASE), version=2, actor="wugang")
    retire(archive, unlock_archive(archive, PASSPHRASE), version=1, actor="wugang")
    reopened = Archive.open(archive.root)
    keys2 = unlock_archive(reopened, PASSPHRASE)
    assert keys2.current_version == 2 and "1" not in json.dumps([e["version"] for e in
                                                                json.loads(reopened.keyfile_path.read_text())["keks"]])
    after = pl.concat([reopened.read_chunk(e, keys2) for e in reopened.chunk_entries("messages")])
    assert after["record_hash"].to_list() == before["record_hash"].to_list()
    # new data after rotation is wrapped under the new version; the archive still verifies
    _ingest(reopened, keys2, message_frame(5, day=21, start_id=500))
    assert verify_archive(reopened, keys=keys2).ok
    # batch 1: 2 partitions + its index key; the archive-wide index key; batch 2: 1 partition + its index key
    assert {v["version"]: v["keys_wrapped"] for v in status(reopened)["versions"]} == {2: 6}
    actions = [e.action for e in reopened.audit.entries()]
    assert "keys.rotate" in actions and "keys.retire" in actions


def test_retire_refuses_while_keys_depend_on_the_version(make_archive):
    archive, keys = make_archive()
    _ingest(archive, keys, message_frame(5))
    from investigator.custody.file import KeyFile

    custody = KeyFile.load(archive.keyfile_path).unlock(PASSPHRASE)
    custody.add_version(now=datetime.now(timezone.utc))  # a version added without rewrapping
    with pytest.raises(errors.ArchiveError, match="still wrapped"):
        retire(archive, custody, version=1, actor="wugang")
    assert archive.read_chunk(archive.chunk_entries()[0], unlock_archive(archive, PASSPHRASE)).height > 0
    # every refusal is in the audit log with its reason (it once left only the 'unlock' entry)
    for version, reason in ((1, "still wrapped"), (2, "current master key"), (7, "not in the custody")):
        with pytest.raises(errors.ArchiveError, match=reason):
            retire(archive, custody, version=version, actor="wugang")
        last = list(archive.audit.entries())[-1]
        assert (last.actor, last.action, last.outcome, last.details["version"]) == ("wugang", "keys.retire", "denied",
                                                                                     version)
        assert reason in last.details["reason"]


def test_status_says_when_rotation_is_due(make_archive):
    archive, _ = make_archive()
    later = datetime.now(timezone.utc) + timedelta(days=100)
    assert status(archive)["rotation_due"] is False
    assert status(archive, now=later)["rotation_due"] is True


class _GoesAway:
    """A custody that stops answering after ``calls`` wraps or removals (a server stopped, a token pulled)."""

    def __init__(self, inner, calls: int) -> None:
        self._inner, self._left = inner, calls

    def _tick(self, doing: str) -> None:
        self._left -= 1
        if self._left < 0:
            raise errors.KeyServiceError(f"cannot reach the key server at http://127.0.0.1:9 for {doing} "
                                         "(ConnectionError)")

    def wrap(self, *args, **kwargs):
        self._tick("wrapping a key")
        return self._inner.wrap(*args, **kwargs)

    def remove_version(self, version):
        self._tick("retiring a master key version")
        return self._inner.remove_version(version)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_a_rotation_or_retirement_the_custody_breaks_off_is_audited_and_leaves_every_key_readable(make_archive):
    """A custody that went away mid-rotation (OpenBao stopped after the new version was made and 5 keys were
    rewrapped) left no keys.rotate entry at all: the audit log showed an 'unlock' and nothing else, though the
    custody held a new master-key version. Now the failure is audited with the version, how far it got and why."""
    archive, keys = make_archive()
    _ingest(archive, keys, message_frame(30), event_frame(3))
    with pytest.raises(errors.KeyServiceError, match="cannot reach"):
        rotate(archive, _GoesAway(unlock_archive(archive, PASSPHRASE), calls=2), actor="wugang")
    last = list(archive.audit.entries())[-1]
    assert (last.actor, last.action, last.outcome) == ("wugang", "keys.rotate", "error")
    assert last.details["version"] == 2 and last.details["rewrapped"] == 2 and last.details["unfinished"] is True
    assert "cannot reach the key server" in last.details["reason"]
    reopened = Archive.open(archive.root)
    assert verify_archive(reopened, keys=unlock_archive(reopened, PASSPHRASE)).ok  # every key opens, v1 or v2
    # rotating again finishes the job; a retirement the custody breaks off is audited too
    rotate(reopened, unlock_archive(reopened, PASSPHRASE), actor="wugang")
    with pytest.raises(errors.KeyServiceError):
        retire(reopened, _GoesAway(unlock_archive(reopened, PASSPHRASE), calls=0), version=1, actor="wugang")
    last = list(reopened.audit.entries())[-1]
    assert (last.action, last.outcome, last.details["version"], last.details["unfinished"]) == (
        "keys.retire", "error", 1, True)
    retire(reopened, unlock_archive(reopened, PASSPHRASE), version=1, actor="wugang")
    assert verify_archive(reopened, keys=unlock_archive(reopened, PASSPHRASE)).ok
