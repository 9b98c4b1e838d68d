"""RFC 9162 consistency proofs (section 2.1.4): published vectors, mutated proofs, and a naive reference.

Vectors: the eight Certificate Transparency leaves (also in test_merkle.py) and the consistency proofs
between prefixes of them published in transparency-dev/merkle, proof/verify_test.go
(``consistencyProofs``; the mutations follow its ``corruptConsistencyProof``, the edge cases its
``TestVerifyConsistency``). Independently, every proof for every pair of sizes up to 24 is compared with
the RFC's PROOF/SUBPROOF definition written out naively below (list slicing, recursion, no shortcuts).
"""

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from investigator.vault import merkle

LEAVES = [bytes.fromhex(x) for x in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [bytes.fromhex(x) for x in [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]]
# (size1, size2, proof) from transparency-dev/merkle proof/verify_test.go
VECTORS = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_ROOT = hashlib.sha256(b"").digest()


# --- the RFC's definitions, written out naively (independent of investigator.vault.merkle) ---------------

def _mth(data: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 MTH over leaf data."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(data[:k]) + _mth(data[k:])).digest()


def _subproof(m: int, data: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(data)
    if m == n:
        return [] if whole else [_mth(data)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return _subproof(m, data[:k], whole) + [_mth(data[k:])]
    return _subproof(m - k, data[k:], False) + [_mth(data[:k])]


def _naive_proof(m: int, data: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(data)) else _subproof(m, data, True)


# --- published vectors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size1,size2,proof", VECTORS, ids=[f"{a}-{b}" for a, b, _ in VECTORS])
def test_published_proofs_are_generated_and_verify(size1, size2, proof):
    expected = [bytes.fromhex(p) for p in proof]
    assert merkle.consistency_proof(size1, LEAVES[:size2]) == expected
    assert _naive_proof(size1, LEAVES[:size2]) == expected  # the reference agrees with the published data
    assert merkle.verify_consistency(size1, size2, expected, ROOTS[size1 - 1], ROOTS[size2 - 1])


def _mutations(size1, size2, root1, root2, proof):
    """transparency-dev's corruptConsistencyProof: each must fail."""
    out = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 / 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, proof + [b""]),
        ("trailing root1", size1, size2, root1, root2, proof + [root1]),
        ("trailing root2", size1, size2, root1, root2, proof + [root2]),
        ("preceding garbage", size1, size2, root1, root2, [b""] + proof),
        ("preceding root1", size1, size2, root1, root2, [root1] + proof),
        ("preceding root2", size1, size2, root1, root2, [root2] + proof),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0]] + proof),
        ("truncated proof", size1, size2, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        out.append((f"proof[{i}] bit 4", size1, size2, root1, root2, flipped))
    return out


@pytest.mark.parametrize("size1,size2,proof", [v for v in VECTORS if v[2]], ids=lambda v: str(v)[:12])
def test_mutated_published_proofs_fail(size1, size2, proof):
    proof = [bytes.fromhex(p) for p in proof]
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    wrongly_accepted = [name for name, *args in _mutations(size1, size2, root1, root2, proof)
                        if merkle.verify_consistency(*args[:2], args[4], args[2], args[3])]
    assert not wrongly_accepted


@pytest.mark.parametrize("size1,size2,root1,root2,proof,ok", [
    (0, 0, b"r1", b"r2", [], False),
    (1, 1, b"r1", b"r2", [], False),
    (0, 0, b"r1", b"r1", [], True),  # sizes that are always consistent
    (0, 1, b"r1", b"r2", [], True),
    (1, 1, b"r2", b"r2", [], True),
    (1, 0, b"r1", b"r2", [], False),  # time travel to the past
    (2, 1, b"r1", b"r2", [], False),
    (1, 2, b"r1", b"r2", [], False),  # empty proof
    (0, 0, EMPTY_ROOT, b"r2", [], False),  # roots differ
    (1, 1, EMPTY_ROOT, b"r2", [], False),
    (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # equal roots but a proof
    (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
])
def test_edge_cases(size1, size2, root1, root2, proof, ok):
    assert merkle.verify_consistency(size1, size2, proof, root1, root2) is ok


# --- against the naive reference -----------------------------------------------------------------------------

def _leaves(n):
    return [i.to_bytes(2, "big") * (i % 3) for i in range(n)]


@pytest.mark.parametrize("n", range(1, 25))
def test_every_proof_matches_the_rfc_definition_and_verifies(n):
    data = _leaves(n)
    hashes = [merkle.leaf_hash(d) for d in data]
    for m in range(0, n + 1):
        proof = merkle.consistency_proof(m, data)
        assert proof == _naive_proof(m, data), (m, n)
        assert merkle.verify_consistency(m, n, proof, _mth(data[:m]), _mth(data)), (m, n)
        edge = merkle.CompactRange.of(hashes[:m])
        assert edge.root() == _mth(data[:m])
        assert edge.consistency_proof(hashes[m:]) == proof, (m, n)  # from the right edge alone
        if 0 < m < n:
            assert not merkle.verify_consistency(m, n, proof, _mth(data[:m]), _mth(data[:m - 1] + [b"x"] + data[m:]))
            assert not merkle.verify_consistency(m, n, proof, _mth(data[:m - 1] + [b"x"]), _mth(data))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=6), min_size=2, max_size=70), st.data())
def test_a_changed_old_leaf_or_a_reorder_never_verifies(data, draw):
    n = len(data)
    m = draw.draw(st.integers(1, n - 1))
    proof = merkle.consistency_proof(m, data)
    old_root = merkle.tree_root(data[:m])
    assert merkle.verify_consistency(m, n, proof, old_root, merkle.tree_root(data))
    i = draw.draw(st.integers(0, m - 1))
    edited = list(data)
    edited[i] = data[i] + b"!"
    assert not merkle.verify_consistency(m, n, merkle.consistency_proof(m, edited), old_root, merkle.tree_root(edited))
    j = draw.draw(st.integers(0, n - 1))
    swapped = list(data)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    ok = merkle.verify_consistency(m, n, merkle.consistency_proof(m, swapped), old_root, merkle.tree_root(swapped))
    assert ok == (swapped[:m] == data[:m])


def test_compact_range_refuses_a_wrong_shape():
    with pytest.raises(ValueError):
        merkle.CompactRange(3, [EMPTY_ROOT])  # 3 = 0b11 needs two subtrees
    edge = merkle.CompactRange.of([merkle.leaf_hash(d) for d in LEAVES[:7]])
    assert edge.ranges() == [(0, 4), (4, 6), (6, 7)] and edge.root() == ROOTS[6]
