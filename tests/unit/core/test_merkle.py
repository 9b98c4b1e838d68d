"""RFC 9162 Merkle hashing against the Certificate Transparency test vectors."""

import pytest
from hypothesis import given, settings, strategies as st

from investigator.vault import merkle

# The eight leaves used by RFC 6962/9162 implementations' test suites, and the
# root of each prefix of them (certificate-transparency test data).
LEAVES = [bytes.fromhex(x) for x in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_tree_is_hash_of_nothing():
    assert merkle.tree_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_ct_vectors(size):
    assert merkle.tree_root(LEAVES[:size]).hex() == ROOTS[size - 1]


def test_inclusion_path_vector():
    path = merkle.inclusion_proof(LEAVES, 0)
    assert [p.hex() for p in path] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_every_leaf_proves_and_a_wrong_one_does_not(leaves, data):
    index = data.draw(st.integers(0, len(leaves) - 1))
    root = merkle.tree_root(leaves)
    proof = merkle.inclusion_proof(leaves, index)
    assert merkle.verify_inclusion(leaves[index], index, len(leaves), proof, root)
    assert not merkle.verify_inclusion(leaves[index] + b"x", index, len(leaves), proof, root)
    if len(leaves) > 1:
        other = (index + 1) % len(leaves)
        assert not merkle.verify_inclusion(leaves[index], other, len(leaves), proof, root) or leaves[other] == leaves[index]
