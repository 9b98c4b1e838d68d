"""Every real export in ../shared/fixtures goes through the archive's ingest door with --format auto."""

import pytest

from support import PASSPHRASE, SHARED_FIXTURES, TEST_KDF_N
from investigator.vault.store import Archive
from investigator.importers import ImportOptions

pytestmark = pytest.mark.fixtures

EXPORTS = sorted(p for p in SHARED_FIXTURES.rglob("*") if p.is_file() and p.suffix in (".json", ".txt", ".zip", ".csv")
                 and not p.name.endswith("target.json")) if SHARED_FIXTURES.exists() else []


@pytest.mark.skipif(not SHARED_FIXTURES.exists(), reason=f"real-export fixtures not found at {SHARED_FIXTURES}")
def test_every_fixture_ingests_and_verifies(tmp_path):
    archive = Archive.create(tmp_path / "a", passphrase=PASSPHRASE, kdf_n=TEST_KDF_N)
    keys = archive.unlock(PASSPHRASE)
    added = {}
    for path in EXPORTS:
        result = archive.ingest([path], keys=keys, actor="fixtures", options=ImportOptions(tz="UTC"))
        added[path.name] = result.messages_added + result.duplicates
        assert added[path.name] > 0, path.name
    again = [archive.ingest([p], keys=keys, actor="fixtures", options=ImportOptions(tz="UTC")) for p in EXPORTS]
    assert all(r.batch_seq is None for r in again)  # idempotent: nothing new the second time
    report = archive.verify(keys=keys)
    assert report.ok, report.problems
    assert len(EXPORTS) >= 18
