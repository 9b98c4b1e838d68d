"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing and inclusion proofs.

Each ingest batch's record hashes are the leaves of one tree whose root goes into
the signed manifest; a single record can then be proven to be in the batch
without revealing the others.

    >>> leaves = [b"a", b"b", b"c"]
    >>> root = tree_root(leaves)
    >>> proof = inclusion_proof(leaves, 2)
    >>> verify_inclusion(b"c", 2, 3, proof, root)
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

ALGORITHM = "RFC9162-SHA256"


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 2.1.1: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 2.1.1: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    # Iterative bottom-up form of MTH: pair neighbours; an odd last node is
    # carried up unchanged, which gives the same tree as the recursive split.
    if not hashes:
        return hashlib.sha256(b"").digest()
    sha256 = hashlib.sha256
    level = list(hashes)
    while len(level) > 1:
        nxt = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over the leaf *data* (each is hashed with :func:`leaf_hash`)."""
    return _root_of_hashes([leaf_hash(d) for d in leaves])


def root_of_record_hashes(record_hashes_hex: Sequence[str]) -> str:
    """Hex Merkle root whose leaves are the 32-byte record hashes (hex input)."""
    sha256 = hashlib.sha256
    return _root_of_hashes([sha256(b"\x00" + bytes.fromhex(h)).digest() for h in record_hashes_hex]).hex()


def _path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    n = len(hashes)
    if n <= 1:
        return []
    k = _split(n)
    if index < k:
        return _path(index, hashes[:k]) + [_root_of_hashes(hashes[k:])]
    return _path(index - k, hashes[k:]) + [_root_of_hashes(hashes[:k])]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[n]) for leaf data ``leaves``.

    Raises IndexError when ``index`` is outside the tree.
    """
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index outside the tree")
    return _path(index, [leaf_hash(d) for d in leaves])


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` show ``leaf`` at ``index`` in a tree of ``root``?"""
    if index >= tree_size or index < 0:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
