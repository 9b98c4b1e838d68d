"""Every export-variant fixture (tests/fixtures/importers) goes through the archive's ingest door with --format
auto, strict, and the archive verifies."""

from pathlib import Path

from support import PASSPHRASE, TEST_KDF_N
from investigator.custody.file import create_archive, unlock_archive
from investigator.importers import ImportOptions
from investigator.vault.ingest import ingest_paths
from investigator.vault.verify import verify_archive

VARIANTS = Path(__file__).resolve().parents[1] / "fixtures" / "importers"
EXPORTS = sorted([p for p in VARIANTS.glob("*/*") if p.is_file()] + [VARIANTS / "discord" / "media-export"])


def test_every_variant_fixture_ingests_and_verifies(tmp_path: Path) -> None:
    archive = create_archive(tmp_path / "a", passphrase=PASSPHRASE, kdf_n=TEST_KDF_N)
    keys = unlock_archive(archive, PASSPHRASE)
    assert len(EXPORTS) == 12
    for path in EXPORTS:
        result = ingest_paths(archive, [path], keys=keys, actor="fixtures", format="auto",
                              options=ImportOptions(tz="UTC", year=2024))
        assert result.messages_added + result.events_added + result.duplicates > 0, path.name
    assert verify_archive(archive, keys=keys).ok
