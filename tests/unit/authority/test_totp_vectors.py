"""RFC 6238 Appendix B test vectors (and the skew / replay behaviour built on them)."""

from __future__ import annotations

import pytest

from investigator import _crypto

# RFC 6238 Appendix B: the seeds are the ASCII digits repeated to the hash's length.
SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890123456789012345678901234567890123456789012345678901234"

VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("unix,sha1,sha256,sha512", VECTORS)
def test_rfc6238_appendix_b(unix, sha1, sha256, sha512):
    assert _crypto.totp(SEED_SHA1, unix, digits=8) == sha1
    assert _crypto.totp(SEED_SHA256, unix, digits=8, algorithm="sha256") == sha256
    assert _crypto.totp(SEED_SHA512, unix, digits=8, algorithm="sha512") == sha512


def test_six_digit_codes_are_the_last_six_of_the_rfc_values():
    for unix, sha1, _, _ in VECTORS:
        assert _crypto.totp(SEED_SHA1, unix) == sha1[-6:]


def test_one_step_of_skew_is_accepted_two_are_not():
    code = _crypto.totp(SEED_SHA1, 1111111109)
    step = 1111111109 // 30
    assert _crypto.totp_match(SEED_SHA1, code, 1111111109 + 30, skew=1) == step
    assert _crypto.totp_match(SEED_SHA1, code, 1111111109 - 30, skew=1) == step
    assert _crypto.totp_match(SEED_SHA1, code, 1111111109 + 61, skew=1) is None


def test_uri_carries_the_parameters():
    uri = _crypto.totp_uri(SEED_SHA1, account="zhangwei@abcd")
    assert uri.startswith("otpauth://totp/investigator%3Azhangwei%40abcd?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    assert "digits=6" in uri and "period=30" in uri
