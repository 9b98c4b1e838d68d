"""The custody protocol and its first backend, the passphrase-protected key file."""

import inspect
import json
from datetime import datetime, timezone

import pytest

from support import PASSPHRASE
from investigator import errors
from investigator.custody.base import Custody
from investigator.custody.file import KeyFile, MasterKeys, unlock_archive
from investigator.vault.format import Keyring

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)


def _members(protocol: type) -> set[str]:
    return {name for klass in protocol.__mro__ if klass.__module__.startswith("investigator")
            for name in vars(klass) if not name.startswith("_")}


def test_the_key_file_backend_implements_every_custody_member():
    """A backend that misses a member of the protocol cannot stand in for another (HSM, OpenBao ...)."""
    wanted = _members(Custody)
    assert _members(Keyring) < wanted  # the vault's part is a subset of custody's
    missing = sorted(name for name in wanted if not hasattr(MasterKeys, name) and name not in ("archive_id", "signing"))
    assert not missing, f"MasterKeys lacks {missing}"
    for name in ("seal", "unseal", "add_version", "remove_version", "wrap", "unwrap", "new_data_key"):
        assert list(inspect.signature(getattr(MasterKeys, name)).parameters) == \
            list(inspect.signature(getattr(Custody, name)).parameters), name


def test_sealed_secrets_open_only_for_their_purpose_and_name(make_archive):
    archive, custody = make_archive()
    sealed = custody.seal(b"a small secret", purpose="totp", name="all")
    assert b"a small secret" not in json.dumps(sealed).encode()
    assert custody.unseal(sealed) == b"a small secret"
    for field, other in (("kind", "index"), ("partition", "someone")):
        with pytest.raises(errors.IntegrityError):
            custody.unseal({**sealed, field: other})


def test_add_version_persists_and_old_wraps_still_open(make_archive):
    archive, custody = make_archive()
    dek, wrapped = custody.new_data_key("messages", "2026-11-18")
    assert custody.add_version(now=NOW) == 2 and custody.current_version == 2
    assert custody.wrap(dek, "messages", "2026-11-18")["kek_version"] == 2
    again = unlock_archive(archive, PASSPHRASE)  # from the file: the new version was written
    assert again.current_version == 2 and again.unwrap(wrapped) == dek
    assert set(KeyFile.load(archive.layout.key_file).versions()) == {1, 2}


def test_remove_version_refuses_the_current_and_unknown_versions(make_archive):
    archive, custody = make_archive()
    with pytest.raises(errors.ArchiveError, match="current"):
        custody.remove_version(1)
    with pytest.raises(errors.ArchiveError, match="not in the key file"):
        custody.remove_version(7)
    custody.add_version(now=NOW)
    custody.remove_version(1)
    assert set(unlock_archive(archive, PASSPHRASE).versions()) == {2}


def test_keys_not_from_a_key_file_cannot_change_versions():
    from investigator import _crypto

    keys = MasterKeys("a", {1: b"\x01" * 32}, _crypto.SigningKey.generate())
    with pytest.raises(errors.ArchiveError, match="not unlocked from a key file"):
        keys.add_version(now=NOW)


def test_a_long_running_unlock_reads_keys_rewrapped_by_a_rotation_elsewhere(make_archive):
    """A key server unlocked before `keys rotate` (another process) still opens every rewrapped key, no restart."""
    from support import message_frame
    from investigator.custody.rotation import rotate
    from investigator.vault.ingest import ingest_frames

    archive, keys = make_archive()
    ingest_frames(archive, messages=message_frame(20), events=None, keys=keys, actor="t", sources=[], skipped=[])
    server_side = unlock_archive(archive, PASSPHRASE)  # the key server's unlock, before the rotation
    rotate(archive, unlock_archive(archive, PASSPHRASE), actor="wugang", now=NOW)
    partitions = sorted(archive.partition_key_paths())
    assert partitions and all(json.loads(archive.current_data_key_path(k, p).read_text())["kek_version"] == 2
                              for k, p in partitions)
    for kind, partition in partitions:
        assert archive.data_key(server_side, kind, partition) == archive.data_key(keys, kind, partition)
    assert server_side.current_version == 2  # and new wraps use the new version
