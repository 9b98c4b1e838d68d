"""TOTP secrets and counters on the custodian's host ([custody] state_dir), out of the shared archive folder."""

from datetime import datetime, timezone

import pytest

from support import PASSPHRASE, TEST_KDF_N
from investigator import _crypto, errors
from investigator.authority.identity import TotpStore
from investigator.authority.policy import Policy
from investigator.custody.registry import create_archive, open_custody
from investigator.settings import Settings
from investigator.vault.store import Archive

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)


def test_totp_state_lives_in_the_state_dir_and_a_used_code_stays_used(tmp_path):
    state = tmp_path / "custodian-host" / "state"
    secrets = Settings(passphrase=PASSPHRASE)
    archive = create_archive(tmp_path / "archive", secrets=secrets, state_dir=state, kdf_n=TEST_KDF_N, now=NOW)
    assert Archive.open(archive.root).config.custody == {"backend": "file", "state_dir": str(state)}
    keys = open_custody(archive, secrets, actor="admin", purpose="test")
    secret = _crypto.new_key()[:20]
    store = TotpStore(archive)
    store.enroll(keys, "sunli", secret)
    assert (state / "org" / "totp" / "sunli.json").is_file()
    assert not (archive.root / "org" / "totp" / "sunli.json").exists()  # nothing of it in the shared folder
    code = _crypto.totp(secret, NOW.timestamp())
    ok, rule, _reason, _counter = store.check(keys, "sunli", code, now=NOW, policy=Policy.default())
    assert ok, rule
    # a client that shares the archive folder has nothing to roll back there: the used code stays used
    ok, rule, _reason, _counter = TotpStore(Archive.open(archive.root)).check(keys, "sunli", code, now=NOW,
                                                                             policy=Policy.default())
    assert not ok and "replay" in rule


def test_a_relative_state_dir_is_refused(tmp_path):
    with pytest.raises(errors.ConfigError, match="absolute"):
        create_archive(tmp_path / "archive", secrets=Settings(passphrase=PASSPHRASE),
                       state_dir=tmp_path.relative_to(tmp_path.anchor), kdf_n=TEST_KDF_N)
    assert not (tmp_path / "archive").exists()
