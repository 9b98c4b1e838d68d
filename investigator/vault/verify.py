"""Whole-archive verification: manifests, chain, files, chunks, record hashes, Merkle roots, audit.

    >>> report = verify_archive(archive, keys=keys)   # doctest: +SKIP
    >>> report.ok, report.problems                    # doctest: +SKIP
    (True, [])

Without keys ("offline") everything that needs no secret is checked: manifest
signatures and chain, every file's SHA-256, unexpected or missing files, and the
audit log. With keys every chunk is also decrypted and its record hashes and the
batch's Merkle root recomputed.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from investigator import _crypto
from investigator.vault import merkle
from investigator.vault.format import Keyring, batch_dir_name
from investigator.vault.keychain import KeyChain
from investigator.vault.store import Archive
from investigator.verification import Verification
from investigator.errors import IntegrityError
from investigator.vault.manifest import GENESIS, Manifest
from investigator.vault.acquisition import check_manifest_entry
from investigator.schema import content_schema, record_hashes


def _files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() or p.is_symlink()}


def verify_archive(archive: Archive, *, keys: Keyring | None = None, actor: str = "verifier") -> Verification:
    """Check every manifest, chain link, file hash, signature and the audit log.

    With ``keys``, also decrypt every chunk, recompute every record hash and
    Merkle root. Never raises for tampering: problems are collected in the
    result, each naming the file. The run itself is audited, and a full run
    (with keys) signs an audit checkpoint.
    """
    report = check_archive(archive, keys=keys)
    archive.audit.append(actor, "verify", archive.archive_id,
                         {"mode": "full" if keys else "offline", "ok": report.ok, "problems": len(report.problems)},
                         outcome="ok" if report.ok else "error")
    if keys is not None:
        archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id)
    return report


def audited_manifest_digests(archive: Archive) -> set[str]:
    """Manifest hashes that an ingest audit entry records."""
    return {str(e.details.get("manifest_sha256")) for e in archive.audit.entries() if e.action == "ingest"
            and e.details.get("manifest_sha256")}


def check_archive(archive: Archive, *, keys: Keyring | None) -> Verification:
    """Check the archive without auditing the check; collect every problem (naming the file)."""
    report = Verification("archive", counts={"manifests": 0, "chunks": 0, "chunks_decrypted": 0, "records": 0,
                                              "audit_entries": 0})
    try:
        public: KeyChain = archive.signing_keys()
    except IntegrityError as err:  # a broken key transition chain: report it, check the rest by the genesis key
        report.problems.append(str(err))
        public = KeyChain.of(_crypto.VerifyKey.from_b64(archive.config.signing_public_key),
                             archive_id=archive.archive_id)
    prev = GENESIS
    names = archive.batch_names()
    manifests: list[Manifest] = []
    layout = archive.layout
    for position, name in enumerate(names, start=1):
        where = f"batches/{name}"
        if name != batch_dir_name(position):
            report.problems.append(f"{where}: unexpected entry (expected batch {batch_dir_name(position)}); "
                                   "a batch was removed, renamed or added")
            continue
        folder = layout.batch_dir(position)
        where = layout.relative(folder)
        try:
            manifest = Manifest.load(layout.manifest(position))
            manifest.verify_signature(public, what=f"{where}/manifest.json")
        except IntegrityError as err:
            report.problems.append(str(err))
            prev = "?"
            continue
        report.count("manifests")
        if manifest.seq != position or manifest.body.get("archive_id") != archive.archive_id:
            report.problems.append(f"{where}/manifest.json: sequence or archive id does not match its place")
        if prev != "?" and manifest.body.get("prev_manifest") != prev:
            report.problems.append(f"{where}/manifest.json: chain link to the previous manifest is broken "
                                   "(a batch was removed, replaced or reordered)")
        prev = manifest.digest
        manifests.append(manifest)
        _check_files(archive, manifest, folder, report)
        if "acquisition" in manifest.body:  # ingest --acquisition: every file the batch read is one the record lists
            report.problems.extend(check_manifest_entry(manifest.body["acquisition"], manifest.body.get("sources", []),
                                                        where=f"{where}/manifest.json"))
        if keys is not None:
            _check_content(archive, manifest, keys, report)
    audit = archive.audit.verify(public.by_id())
    report.counts["audit_entries"] = audit.counts["entries"]
    report.problems.extend(f"audit/{p}" for p in audit.problems)
    audited = audited_manifest_digests(archive)
    for manifest in manifests:
        if manifest.digest not in audited:
            if manifest is manifests[-1]:
                report.warnings.append(f"batches/{batch_dir_name(manifest.seq)}: committed but its audit entry is "
                                       "missing (an interrupted ingest); the next ingest records it")
            else:
                report.problems.append(f"batches/{batch_dir_name(manifest.seq)}: no audit entry records this batch")
    recorded = {e.details.get("manifest_sha256") for e in archive.audit.entries() if e.action == "ingest"}
    recorded.discard(None)
    present = {m.digest for m in manifests}
    for digest in sorted(str(d) for d in recorded - present):
        report.problems.append(f"batches/: the audit log records a batch (manifest {digest[:16]}...) that is "
                               "not in the archive (removed or replaced)")
    if layout.staging_dir.exists() and any(layout.staging_dir.iterdir()):
        report.warnings.append("staging/: residue of an interrupted ingest (never read; removed by the next ingest)")
    return report


def _check_files(archive: Archive, manifest: Manifest, folder: Path, report: Verification) -> None:
    where = archive.layout.relative(folder)
    expected: dict[str, str | None] = {"manifest.json": None}
    for chunk in manifest.chunks:
        for _part, part_path, part_digest in chunk.parts:
            expected[part_path.removeprefix(where + "/")] = part_digest
    for entry in manifest.body.get("partition_keys", []):
        expected[entry["path"].removeprefix(where + "/")] = entry["sha256"]
    index = manifest.body.get("index", {})
    expected[str(index.get("path", "")).removeprefix(where + "/")] = index.get("sha256")
    present = _files_under(folder)
    for extra in sorted(present - set(expected)):
        report.problems.append(f"{where}/{extra}: file not listed in the manifest (added)")
    for relative, digest in sorted(expected.items()):
        if relative not in present:
            report.problems.append(f"{where}/{relative}: listed in the manifest but missing (removed)")
            continue
        if digest is None:
            continue
        path = folder / relative  # one of ``present``: found under the folder, never outside it
        if path.is_symlink():
            report.problems.append(f"{where}/{relative}: is a symbolic link")
        elif _crypto.sha256_file(path) != digest:
            report.problems.append(f"{where}/{relative}: content does not match the manifest's SHA-256 "
                                   "(altered or swapped)")
    report.count("chunks", len(manifest.chunks))


def _check_content(archive: Archive, manifest: Manifest, keys: Keyring, report: Verification) -> None:
    frames: dict[str, list] = {}
    for chunk in manifest.chunks:
        try:
            frame = archive.read_chunk(chunk, keys)
        except IntegrityError as err:
            report.problems.append(str(err))
            continue
        report.count("chunks_decrypted")
        report.count("records", frame.height)
        frames.setdefault(chunk.kind, []).append((chunk, frame))
    leaves: dict[int, str] = {}
    for kind, pairs in frames.items():
        # one hashing pass per kind and batch: per-chunk calls cost more in overhead than in hashing
        stored = pl.concat([f.select([c for c in content_schema(kind) if c in f.columns] + ["record_hash",
                                                                                            "leaf_index"])
                            for _, f in pairs], how="diagonal_relaxed")
        recomputed = record_hashes(stored, kind)
        mismatched = [i for i, (a, b) in enumerate(zip(recomputed, stored["record_hash"].to_list())) if a != b]
        if mismatched:
            offset = 0
            for chunk, frame in pairs:
                if any(offset <= i < offset + frame.height for i in mismatched):
                    report.problems.append(f"{chunk.part('meta')[0]}: a record does not match its record hash")
                offset += frame.height
        for leaf, digest in zip(stored["leaf_index"].to_list(), stored["record_hash"].to_list()):
            leaves[int(leaf)] = digest
    count = int(manifest.body["merkle"]["leaves"])
    if sorted(leaves) != list(range(count)):
        if report.ok:
            report.problems.append(f"batches/{batch_dir_name(manifest.seq)}: records missing from the batch's leaves")
        return
    root = merkle.root_of_record_hashes([leaves[i] for i in range(count)])
    if root != manifest.body["merkle"]["root"]:
        report.problems.append(f"batches/{batch_dir_name(manifest.seq)}/manifest.json: Merkle root does not match "
                               "the records")
