"""Whole-archive verification: manifests, chain, files, chunks, record hashes, Merkle roots, audit.

    >>> report = verify_archive(archive, keys=keys)   # doctest: +SKIP
    >>> report.ok, report.problems                    # doctest: +SKIP
    (True, [])

Without keys ("offline") everything that needs no secret is checked: manifest
signatures and chain, every file's SHA-256, unexpected or missing files, and the
audit log. With keys every chunk is also decrypted and its record hashes and the
batch's Merkle root recomputed.

Pinning: a reader who knows the archive's genesis key out of band passes its
fingerprint (:func:`key_fingerprint`, SHA-256 of the raw 32-byte Ed25519 key in
hex) and :func:`check_pin` fails the result when the archive's key chain does not
root in it, e.g. after an attacker replaced the key in ``archive.toml`` and
``keys/archive-signing.pub`` and re-signed the manifests. Without a pin the
result says that the key was taken from the archive itself.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from investigator import _crypto
from investigator.vault import merkle
from investigator.vault.audited_format import format_findings
from investigator.vault.format import Keyring, batch_dir_name
from investigator.vault.keychain import KeyChain
from investigator.vault.layout import RESTORE_JOURNAL_NAME
from investigator.vault.destruction import destroyed_partitions
from investigator.vault.statehead import verify_heads
from investigator.vault.store import Archive
from investigator.verification import Verification
from investigator.errors import AuditError, ConfigError, IntegrityError
from investigator.vault.manifest import GENESIS, Manifest
from investigator.vault.acquisition import check_manifest_entry
from investigator.schema import content_schema, record_hashes


def _files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() or p.is_symlink()}


def key_fingerprint(key: _crypto.VerifyKey) -> str:
    """SHA-256 of the raw 32-byte Ed25519 public key, in hex (64 digits): what a reader pins."""
    return _crypto.sha256_hex(key.raw)


def parse_fingerprint(text: str) -> str:
    """A pinned fingerprint in canonical form (lowercase hex; spaces and colons ignored).

    Raises ConfigError unless it is 64 hex digits (a full SHA-256).
    """
    value = text.strip().lower().replace(":", "").replace(" ", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ConfigError("--fingerprint: expected 64 hex digits (SHA-256 of the archive's Ed25519 public key)",
                          hint="'investigator info ARCHIVE --json' prints it as signing_key_fingerprint")
    return value


def check_pin(chain: KeyChain | None, pin: str | None, result: Verification, *, source: str = "archive.toml") -> bool:
    """Record in ``result`` whether ``chain`` (the archive's signing keys) roots in the pinned key.

    ``pin`` is a fingerprint from :func:`parse_fingerprint`; None means unpinned:
    a warning says that the key was taken from ``source`` itself (which an
    attacker who can write the archive can replace). ``chain`` None means the
    keys could not be read (already a problem). Returns True when pinned and
    matching. Never raises.
    """
    if pin is None:
        result.warn(f"the archive's signing key was taken from the archive itself ({source}), not pinned: "
                    "pass --pubkey FILE or --fingerprint HEX to check it against a key known out of band")
        return False
    if chain is None:
        result.problem(f"{source}: the archive's signing keys cannot be read, so the pinned key cannot be checked")
        return False
    actual = key_fingerprint(chain.genesis)
    if actual != pin:
        result.problem(f"{source}: the archive's genesis signing key (fingerprint {actual[:16]}...) is not the pinned "
                       f"key ({pin[:16]}...): its keys do not root in the pinned key (replaced key?)")
        return False
    via = f" (current key {chain.current.key_id} through {len(chain.keys) - 1} key transition(s))" \
        if len(chain.keys) > 1 else ""
    result.check(f"signing key pinned: the archive's key chain roots in {pin[:16]}...{via}")
    return True


def check_archive_pin(archive: Archive, pin: str | None, result: Verification) -> bool:
    """:func:`check_pin` for ``archive``: its key chain, and keys/archive-signing.pub agreeing with archive.toml."""
    try:
        chain: KeyChain | None = archive.signing_keys()
    except (IntegrityError, ValueError) as exc:
        result.problem(f"the archive's signing keys do not load ({exc})")
        chain = None
    try:
        published: str | None = archive.layout.signing_public_key.read_bytes().decode("ascii").strip()
    except FileNotFoundError:
        published = None
    except (OSError, ValueError):
        published = ""
    if published is not None and published != archive.config.signing_public_key:
        result.problem("keys/archive-signing.pub: differs from the signing key in archive.toml (or is unreadable)")
    return check_pin(chain, pin, result)


# the journal investigator.backup.restore keeps in a folder it is restoring into, until the restore is complete
RESTORE_JOURNAL = RESTORE_JOURNAL_NAME  # backup/restore.py imports it from here


def verify_archive(archive: Archive, *, keys: Keyring | None = None, actor: str = "verifier") -> Verification:
    """Check every manifest, chain link, file hash, signature and the audit log.

    With ``keys``, also decrypt every chunk, recompute every record hash and
    Merkle root. Never raises for tampering: problems are collected in the
    result, each naming the file. The run itself is audited, and a full run
    (with keys) signs an audit checkpoint.
    """
    report = check_archive(archive, keys=keys)
    if archive.layout.restore_journal.exists():
        # a restore still filling this folder: what is missing is not damage, and the format check's advice
        # (edit archive.toml) would be wrong; nothing is written into the folder either (the log is still arriving)
        report.problems.insert(0, f"{RESTORE_JOURNAL}: this folder is an unfinished restore; the findings below "
                                  "are what it still lacks. Run the same 'investigator backup restore TARGET "
                                  f"{archive.root}' again to finish it, then verify")
        return report
    problems, warnings = format_findings(archive)  # archive.toml's format_version against the audited one
    report.problems.extend(problems)
    report.warnings.extend(warnings)
    try:
        archive.audit.append(actor, "verify", archive.archive_id,
                             {"mode": "full" if keys else "offline", "ok": report.ok,
                              "problems": len(report.problems)},
                             outcome="ok" if report.ok else "error")
        if keys is not None:
            archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id)
    except AuditError as err:  # a damaged log: the check is reported, it cannot be recorded
        report.problems.append(f"this check could not be recorded in the audit log ({err})")
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
    # crypto-shredded partitions: destroyed by a signed record, not damage (vault/destruction.py)
    destroyed, record_problems = destroyed_partitions(archive)
    report.problems.extend(record_problems)
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
            _check_content(archive, manifest, keys, report, destroyed)
    try:
        _check_audit(archive, public, manifests, report)
    except AuditError as err:  # an entry that does not parse: named with its line, the rest checked
        report.problems.append(str(err))
    verify_heads(archive, report)  # org/ and cases/ against the signed state heads and their pins (statehead.py)
    if layout.staging_dir.exists() and any(layout.staging_dir.iterdir()):
        report.warnings.append("staging/: residue of an interrupted ingest (never read; removed by the next embedded "
                               "ingest on the custodian's host, not by one through the key server)")
    return report


def _check_audit(archive: Archive, public: KeyChain, manifests: list[Manifest], report: Verification) -> None:
    """The audit log, and its ingest entries against the batches present. Raises AuditError for an unreadable log."""
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


def _check_files(archive: Archive, manifest: Manifest, folder: Path, report: Verification) -> None:
    where = archive.layout.relative(folder)
    expected: dict[str, str | None] = {"manifest.json": None}
    for chunk in manifest.chunks:
        for _part, part_path, part_digest in chunk.parts:
            expected[part_path.removeprefix(where + "/")] = part_digest
    for entry in manifest.body.get("partition_keys", []):
        expected[entry["path"].removeprefix(where + "/")] = entry["sha256"]
    if "index" in manifest.body:  # format 1 only: format 2 folds the index into the chunk files
        index = manifest.body["index"]
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


def _check_content(archive: Archive, manifest: Manifest, keys: Keyring, report: Verification,
                   destroyed: dict[tuple[str, str], str] | None = None) -> None:
    frames: dict[str, list] = {}
    shredded = 0
    for chunk in manifest.chunks:
        if destroyed and (chunk.kind, chunk.partition) in destroyed:
            shredded += 1  # its key was destroyed: the record says so; the ciphertext was checked by hash
            report.count("chunks_destroyed")
            continue
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
    if shredded:  # the destroyed chunks' records cannot be rehashed: the root is checked by the manifest signature
        report.check(f"batches/{batch_dir_name(manifest.seq)}: {shredded} chunk(s) of shredded periods "
                             "left out of the content check (signed destruction records)")
        return
    if sorted(leaves) != list(range(count)):
        if report.ok:
            report.problems.append(f"batches/{batch_dir_name(manifest.seq)}: records missing from the batch's leaves")
        return
    root = merkle.root_of_record_hashes([leaves[i] for i in range(count)])
    if root != manifest.body["merkle"]["root"]:
        report.problems.append(f"batches/{batch_dir_name(manifest.seq)}/manifest.json: Merkle root does not match "
                               "the records")
