"""Every real export in ../shared/fixtures goes through the archive's ingest door with --format auto."""

import pytest

from support import PASSPHRASE, SHARED_FIXTURES, TEST_KDF_N
from investigator.importers import ImportOptions
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive
from investigator.vault.ingest import ingest_paths
from investigator.vault.verify import verify_archive

pytestmark = pytest.mark.fixtures

EXPORTS = sorted(p for p in SHARED_FIXTURES.rglob("*") if p.is_file() and p.suffix in (".json", ".txt", ".zip", ".csv")
                 and not p.name.endswith("target.json")) if SHARED_FIXTURES.exists() else []


@pytest.mark.skipif(not SHARED_FIXTURES.exists(), reason=f"real-export fixtures not found at {SHARED_FIXTURES}")
def test_every_fixture_ingests_and_verifies(tmp_path):
    archive = create_archive(tmp_path / "a", passphrase=PASSPHRASE, kdf_n=TEST_KDF_N)
    keys = unlock_archive(archive, PASSPHRASE)
    added = {}
    for path in EXPORTS:
        result = ingest_paths(archive, [path], keys=keys, actor="fixtures", options=ImportOptions(tz="UTC"))
        added[path.name] = result.messages_added + result.duplicates
        assert added[path.name] > 0, path.name
    again = [ingest_paths(archive, [p], keys=keys, actor="fixtures", options=ImportOptions(tz="UTC")) for p in EXPORTS]
    assert all(r.batch_seq is None for r in again)  # idempotent: nothing new the second time
    report = verify_archive(archive, keys=keys)
    assert report.ok, report.problems
    assert len(EXPORTS) >= 18
