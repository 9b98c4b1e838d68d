"""RFC 9162 inclusion proofs for single records, computed where the master keys are.

    >>> proofs = inclusion_proofs(archive, keys, batch_seq=3, leaf_indexes=[17, 18])   # doctest: +SKIP
    >>> proofs[0]["root"] == archive.manifests()[2].body["merkle"]["root"]               # doctest: +SKIP
    True

A proof needs every record hash of the record's batch, and those sit in the
batch's encrypted meta parts, some of them outside any one grant's window. So
proofs are computed by the key service (embedded, or the key server behind its
own grant check: keyservice.GrantGate.proofs) and only hashes leave it: the
leaf's record hash, the audit path and the signed root — never a key and never
another record's content (docs/evidence-bundle.md, "Proofs without keys").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from investigator.errors import BundleError, IntegrityError
from investigator.vault.merkle import inclusion_proof, root_of_record_hashes
from investigator.vault.format import Keyring
from investigator.vault.store import Archive


def batch_leaves(archive: Archive, keys: Keyring, batch_seq: int) -> list[str]:
    """All record hashes of batch ``batch_seq`` in leaf order (meta parts only), checked against its root.

    Raises BundleError (no such batch) or IntegrityError (leaves or root differ from the manifest).
    """
    manifest = next((m for m in archive.manifests() if m.seq == batch_seq), None)
    if manifest is None:
        raise BundleError(f"no batch {batch_seq} in the archive")
    pairs: list[tuple[int, str]] = []
    for entry in manifest.chunks:
        meta = archive.read_chunk(entry, keys, parts=("meta",))
        pairs.extend(zip(meta["leaf_index"].to_list(), meta["record_hash"].to_list()))
    pairs.sort()
    leaves = [h for _, h in pairs]
    merkle = manifest.body.get("merkle") or {}
    if [i for i, _ in pairs] != list(range(len(pairs))) or len(leaves) != merkle.get("leaves"):
        raise IntegrityError(f"batch {batch_seq}: leaves do not match the manifest's count")
    if root_of_record_hashes(leaves) != merkle.get("root"):
        raise IntegrityError(f"batch {batch_seq}: recomputed Merkle root differs from the signed manifest")
    return leaves


def inclusion_proofs(archive: Archive, keys: Keyring, batch_seq: int,
                     leaf_indexes: Sequence[int]) -> list[dict[str, Any]]:
    """Per leaf: its record hash, the tree size, the audit path and the root — hashes only.

    Raises BundleError for a leaf outside the batch, IntegrityError as batch_leaves.
    """
    leaves = batch_leaves(archive, keys, batch_seq)
    data = [bytes.fromhex(h) for h in leaves]
    root = next(m for m in archive.manifests() if m.seq == batch_seq).body["merkle"]["root"]
    out = []
    for index in leaf_indexes:
        if not 0 <= index < len(leaves):
            raise BundleError(f"batch {batch_seq} has no leaf {index}")
        out.append({"batch_seq": batch_seq, "leaf_index": int(index), "tree_size": len(leaves),
                    "record_hash": leaves[index], "root": root,
                    "path": [p.hex() for p in inclusion_proof(data, int(index))]})
    return out
