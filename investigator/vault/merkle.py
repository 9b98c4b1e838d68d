"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, inclusion and consistency proofs.

Each ingest batch's record hashes are the leaves of one tree whose root goes into
the signed manifest; a single record can then be proven to be in the batch
without revealing the others. The audit log is one growing tree (its entries are
the leaves): a consistency proof shows that a later tree head extends an earlier
one, so nothing the earlier head covered was changed, removed or reordered.

    >>> leaves = [b"a", b"b", b"c"]
    >>> root = tree_root(leaves)
    >>> proof = inclusion_proof(leaves, 2)
    >>> verify_inclusion(b"c", 2, 3, proof, root)
    True
    >>> more = leaves + [b"d", b"e"]
    >>> verify_consistency(3, 5, consistency_proof(3, more), root, tree_root(more))
    True

:class:`CompactRange` keeps only the right edge of a tree (one hash per set bit
of its size), enough to extend it leaf by leaf, take its root and prove the
consistency of a larger tree without the earlier leaves.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from investigator.schema import sha256_hex_column, utf8_bytes

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


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of the tree whose leaf *hashes* (:func:`leaf_hash`) are ``hashes``."""
    return _root_of_hashes(hashes)


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over the leaf *data* (each is hashed with :func:`leaf_hash`)."""
    return _root_of_hashes([leaf_hash(d) for d in leaves])


def root_of_record_hashes(record_hashes_hex: Sequence[str] | pl.Series) -> str:
    """Hex Merkle root whose leaves are the 32-byte record hashes (hex input: a list or a String Series).

    A batch of at least :data:`COLUMNWISE_MIN` hashes, each 64 hex digits, is hashed a tree level
    at a time, one compiled call per level (:func:`_columnwise_root`); anything else node by node.
    Both give the same root (tests/unit/core/test_merkle_columnwise.py). Raises ValueError for a
    value that is not hex.
    """
    raw = _hashes_bytes(record_hashes_hex) if len(record_hashes_hex) >= COLUMNWISE_MIN else None
    if raw is not None:
        return _columnwise_root(raw, len(record_hashes_hex)).hex()
    values = record_hashes_hex.to_list() if isinstance(record_hashes_hex, pl.Series) else record_hashes_hex
    sha256 = hashlib.sha256
    return _root_of_hashes([sha256(b"\x00" + bytes.fromhex(h)).digest() for h in values]).hex()


# --- the tree a level at a time ----------------------------------------------------------------------------
#
# Hashing node by node costs a Python call per node (~0.45 us; 2 million nodes for a batch of a
# million records). A level at a time: the level's messages (0x00 || hash for leaves, 0x01 || left ||
# right for nodes) are laid out as one fixed-width Binary column (Polars' concat_arr puts the prefix
# byte in front of each row), polars-hash's sha2_256 hashes the column in Rust, and its hex digests
# are read back as one bytes object, which is the next level. An odd last node is carried up, as
# in _root_of_hashes. Below COLUMNWISE_MIN leaves the per-level calls cost more than they save.

COLUMNWISE_MIN = 256


def _hashes_bytes(hashes_hex: Sequence[str] | pl.Series) -> bytes | None:
    """The hashes as one bytes object (32 per hash), or None unless every one is 64 hex digits."""
    count = len(hashes_hex)
    if isinstance(hashes_hex, pl.Series):
        if hashes_hex.dtype != pl.String or hashes_hex.null_count() or not (hashes_hex.str.len_bytes() == 64).all():
            return None
        text: bytes | memoryview = utf8_bytes(hashes_hex)
    else:
        if not all(type(h) is str and len(h) == 64 for h in hashes_hex):
            return None
        try:
            text = "".join(hashes_hex).encode("ascii")
        except UnicodeEncodeError:
            return None
    try:
        raw = binascii.unhexlify(text)
    except ValueError:  # binascii.Error: a character that is not a hex digit
        return None
    # 64 hex digits each (unhexlify takes nothing else), so each hash decoded on its own gives the same bytes
    return raw if len(raw) == 32 * count else None


def _sha256_rows(messages: pl.Series) -> bytes:
    """SHA-256 of each value of a Binary Series, end to end (32 bytes each)."""
    return binascii.unhexlify(utf8_bytes(sha256_hex_column(messages)))


def _prefixed(data: bytes, prefix: int, width: int, count: int) -> pl.Series:
    """``count`` rows of ``prefix`` byte || ``width`` bytes of ``data``, as a Binary Series."""
    flat = pl.from_arrow(pa.Array.from_buffers(pa.uint8(), width * count, [None, pa.py_buffer(data)]))
    assert isinstance(flat, pl.Series)
    rows = flat.reshape((count, width)).to_frame("r").select(
        pl.concat_arr(pl.lit(prefix, dtype=pl.UInt8), pl.col("r")).alias("r"))["r"].to_arrow()
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    values = rows.flatten()  # the fixed-size lists' bytes, end to end
    buffer = values.buffers()[1]
    binary = pl.from_arrow(pa.Array.from_buffers(pa.binary(width + 1), count, [None, buffer], offset=values.offset))
    assert isinstance(binary, pl.Series)
    return binary


def _columnwise_root(leaf_data: bytes, count: int) -> bytes:
    """MTH of the tree whose leaves are ``count`` 32-byte values end to end in ``leaf_data`` (count >= 1)."""
    level = _sha256_rows(_prefixed(leaf_data, 0, 32, count))
    while count > 1:
        pairs = count // 2
        nodes = _sha256_rows(_prefixed(level, 1, 64, pairs))
        if count % 2:
            nodes += level[-32:]
        level, count = nodes, pairs + count % 2
    return level


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


# --- consistency proofs (RFC 9162 2.1.4) ---------------------------------------------------------------


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf range ``[lo, hi)`` of each node of PROOF(old_size, D[new_size]), in proof order.

    RFC 9162 2.1.4.1 on index ranges instead of data: the proof's shape
    depends on the two sizes only. A node never straddles ``old_size``: it
    lies wholly in the old tree or wholly in the appended leaves. Raises
    ValueError unless 0 <= old_size <= new_size.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError("consistency proof sizes out of order")
    if old_size in (0, new_size):
        return []

    def subproof(m: int, lo: int, hi: int, whole: bool) -> list[tuple[int, int]]:
        n = hi - lo
        if m == n:  # SUBPROOF(m, D[m], b): nothing if D[m] is the old tree itself, else its hash
            return [] if whole else [(lo, hi)]
        k = _split(n)
        if m <= k:  # the old tree is within the left subtree: recurse there, then the right subtree's hash
            return subproof(m, lo, lo + k, whole) + [(lo + k, hi)]
        return subproof(m - k, lo + k, hi, False) + [(lo, lo + k)]

    return subproof(old_size, 0, new_size, True)


def consistency_proof_of_hashes(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(m, D[n]) over the tree whose leaf *hashes* are ``leaf_hashes``.

    Empty for ``old_size`` 0 or ``len(leaf_hashes)``. Raises ValueError when
    ``old_size`` is outside 0..n.
    """
    return [_root_of_hashes(leaf_hashes[lo:hi]) for lo, hi in consistency_ranges(old_size, len(leaf_hashes))]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(m, D[n]) for leaf data ``leaves`` (each hashed with :func:`leaf_hash`)."""
    return consistency_proof_of_hashes(old_size, [leaf_hash(d) for d in leaves])


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> bool:
    """RFC 9162 2.1.4.2: does ``proof`` show that the tree ``new_root`` of ``new_size`` extends ``old_root``?

    Edge cases as transparency-dev/merkle decides them: equal sizes need an
    empty proof and equal roots; the empty tree is a prefix of every tree
    (empty proof); a smaller new size never verifies.
    """
    if old_size < 0 or new_size < old_size:
        return False
    if any(len(p) != 32 for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:  # step 1
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: the old tree is a whole subtree, its root the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root  # step 7


# --- the right edge of a growing tree -----------------------------------------------------------------------


@dataclass
class CompactRange:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves, largest (leftmost) first.

    One hash per set bit of ``size``: enough to append leaves, compute the
    root (:meth:`root`) and, with the appended leaves, the consistency proof
    from this size to the larger one (:meth:`consistency_proof`).
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != bin(self.size).count("1") or any(len(h) != 32 for h in self.hashes):
            raise ValueError("a compact range holds one 32-byte hash per set bit of its size")

    @classmethod
    def of(cls, leaf_hashes: Iterable[bytes]) -> "CompactRange":
        """The compact range of the tree with these leaf hashes."""
        out = cls()
        for h in leaf_hashes:
            out.append(h)
        return out

    def copy(self) -> "CompactRange":
        return CompactRange(self.size, list(self.hashes))

    def append(self, leaf_hash_: bytes) -> None:
        """Add one leaf (its hash, :func:`leaf_hash`) at the right."""
        self.hashes.append(leaf_hash_)
        self.size += 1
        n = self.size
        while not n & 1:  # two equal perfect subtrees side by side merge, once per trailing zero bit
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)
            n >>= 1

    def root(self) -> bytes:
        """MTH of the whole tree (the hash of the empty string for no leaves)."""
        if not self.hashes:
            return hashlib.sha256(b"").digest()
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root

    def ranges(self) -> list[tuple[int, int]]:
        """The leaf range ``[lo, hi)`` of each hash in :attr:`hashes`."""
        out, lo = [], 0
        for bit in reversed(range(self.size.bit_length())):
            if self.size >> bit & 1:
                out.append((lo, lo + (1 << bit)))
                lo += 1 << bit
        return out

    def consistency_proof(self, appended: Sequence[bytes]) -> list[bytes]:
        """PROOF(size, D[size + len(appended)]) from this range and the appended leaf hashes alone.

        The proof's nodes inside the old tree are always among this range's
        subtrees (RFC 9162's proof walks the old tree's right edge), so the
        earlier leaves are not needed.
        """
        old = dict(zip(self.ranges(), self.hashes))
        out = []
        for lo, hi in consistency_ranges(self.size, self.size + len(appended)):
            if hi <= self.size:
                out.append(old[(lo, hi)])
            else:
                out.append(_root_of_hashes(appended[lo - self.size:hi - self.size]))
        return out
