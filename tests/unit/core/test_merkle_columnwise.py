"""The Merkle root a tree level at a time (merkle._columnwise_root) against the node-by-node reference.

``root_of_record_hashes`` hashes large batches with one compiled call per level; its roots go into
signed manifests, so they must be the reference's (``_root_of_hashes`` over hashlib leaf hashes)
byte for byte, for every size (odd last nodes carried up at any level) and for lists and Series.
"""

from __future__ import annotations

import hashlib

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from investigator.vault import merkle


def _reference(hashes_hex: list[str]) -> str:
    return merkle._root_of_hashes([merkle.leaf_hash(bytes.fromhex(h)) for h in hashes_hex]).hex()


def _hashes(count: int, seed: int = 0) -> list[str]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in range(count)]


@pytest.mark.parametrize("count", [*range(0, 301), 511, 512, 513, 1023, 1025, 4097, 65_535, 65_537, 100_003])
def test_columnwise_root_equals_the_reference_at_every_size(count):
    hashes = _hashes(count)
    expected = _reference(hashes)
    assert merkle.root_of_record_hashes(hashes) == expected
    assert merkle.root_of_record_hashes(pl.Series(hashes, dtype=pl.String)) == expected
    if count:
        raw = b"".join(bytes.fromhex(h) for h in hashes)
        assert merkle._columnwise_root(raw, count).hex() == expected  # also below COLUMNWISE_MIN


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=700), st.integers(0, 5))
def test_columnwise_root_equals_the_reference_on_any_hashes(digests, cut):
    hashes = [d.hex() for d in digests]
    raw = b"".join(digests)
    assert merkle._columnwise_root(raw, len(digests)).hex() == _reference(hashes)
    # a sliced Series (its Arrow buffers start at an offset) reads the same values
    series = pl.Series([*(["0" * 64] * cut), *hashes])[cut:]
    assert merkle.root_of_record_hashes(series) == _reference(hashes)


def test_uppercase_or_odd_values_take_the_reference_path_and_agree():
    hashes = _hashes(400)
    upper = [h.upper() for h in hashes]
    assert merkle.root_of_record_hashes(upper) == _reference(upper) == _reference(hashes)
    spaced = hashes[:-1] + [hashes[-1][:2] + " " + hashes[-1][2:]]  # bytes.fromhex skips the space
    assert merkle.root_of_record_hashes(spaced) == _reference(spaced)
    short = hashes[:-1] + ["ab"]  # a 1-byte leaf: not a record hash, but the reference defines its root
    assert merkle.root_of_record_hashes(short) == _reference(short)
    assert merkle.root_of_record_hashes(pl.Series(short)) == _reference(short)
    with pytest.raises(ValueError):
        merkle.root_of_record_hashes(hashes[:-1] + ["zz" * 32])
