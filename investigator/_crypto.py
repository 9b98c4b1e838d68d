"""The only importer of ``cryptography``: AEAD, Ed25519, HKDF, scrypt, TOTP, hashing.

A small "recipes" layer (as pyca/cryptography's Fernet over its hazmat layer):
callers never choose algorithms, nonces or parameters. Failures to authenticate
raise :class:`~investigator.errors.IntegrityError` without saying whether the
data or the key was wrong.

    >>> key = new_key()
    >>> blob = seal(key, b"hello", aad=b"ctx")
    >>> open_sealed(key, blob, aad=b"ctx")
    b'hello'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from investigator.errors import IntegrityError, WrongPassphrase

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # AES-GCM standard nonce
TAG_BYTES = 16

# Default scrypt cost: about 0.3 s and 128 MiB here. Stored in each key file, so
# files made with other costs (tests use a lower one) stay readable.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: "os.PathLike[str] | str", *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- AEAD ------------------------------------------------------------------

def seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """AES-256-GCM encrypt: ``nonce (12) || ciphertext || tag (16)``.

    ``aad`` binds the ciphertext to its context (archive id, partition, chunk):
    the same bytes under another context fail to open.
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, *, aad: bytes, what: str = "") -> bytes:
    """Decrypt and authenticate a :func:`seal` blob.

    Raises IntegrityError (naming ``what``) when the blob, the context or the key
    is wrong; which of them is deliberately not said.
    """
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise IntegrityError("ciphertext too short", path=what)
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise IntegrityError("authentication failed (tampered data or wrong key)", path=what) from exc


def hkdf(key: bytes, *, info: bytes, salt: bytes | None = None, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``key`` for the purpose named by ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 (pseudonyms, session tokens)."""
    return hmac.new(key, data, hashlib.sha256).digest()


# --- passphrase-protected blobs --------------------------------------------

@dataclass(frozen=True)
class KdfParams:
    """scrypt parameters and salt, stored beside what they protect."""

    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def new(cls, *, n: int = SCRYPT_N) -> "KdfParams":
        return cls(salt=secrets.token_bytes(16), n=n)

    def to_json(self) -> dict[str, Any]:
        return {"kdf": "scrypt", "salt": b64(self.salt), "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "KdfParams":
        if obj.get("kdf") != "scrypt":
            raise IntegrityError(f"unknown key derivation {obj.get('kdf')!r}")
        return cls(salt=unb64(obj["salt"]), n=int(obj["n"]), r=int(obj["r"]), p=int(obj["p"]))


def derive_passphrase_key(passphrase: str, params: KdfParams) -> bytes:
    """scrypt(passphrase) -> 256-bit key-encryption key."""
    if not passphrase:
        raise WrongPassphrase("an empty passphrase is not accepted")
    kdf = Scrypt(salt=params.salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
    return kdf.derive(passphrase.encode("utf-8"))


def seal_with_passphrase_key(pkey: bytes, secret: bytes, *, aad: bytes) -> bytes:
    return seal(pkey, secret, aad=aad)


def open_with_passphrase_key(pkey: bytes, blob: bytes, *, aad: bytes, what: str) -> bytes:
    """Like open_sealed, but a failure means the passphrase was wrong."""
    try:
        return open_sealed(pkey, blob, aad=aad, what=what)
    except IntegrityError as exc:
        raise WrongPassphrase(
            f"{what}: the passphrase does not unlock this key file (or the file was altered)"
        ) from exc


# --- Ed25519 ----------------------------------------------------------------

class SigningKey:
    """An Ed25519 private key. Its repr shows only the public key id."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> "SigningKey":
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def raw(self) -> bytes:
        """The 32 private bytes, for sealing into a key file only."""
        return self._private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    @property
    def public(self) -> "VerifyKey":
        return VerifyKey(self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def sign(self, data: bytes) -> str:
        """Base64 signature of ``data``."""
        return b64(self._private.sign(data))

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.public.key_id!r})"


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key (32 raw bytes)."""

    raw: bytes

    @classmethod
    def from_b64(cls, text: str) -> "VerifyKey":
        try:
            raw = unb64(text)
        except ValueError as exc:
            raise IntegrityError("public key is not valid base64") from exc
        if len(raw) != 32:
            raise IntegrityError("public key must be 32 bytes")
        return cls(raw)

    def b64(self) -> str:
        return b64(self.raw)

    @property
    def key_id(self) -> str:
        """Short fingerprint: first 16 hex chars of SHA-256 of the raw key."""
        return hashlib.sha256(self.raw).hexdigest()[:16]

    def verify(self, signature_b64: str, data: bytes, *, what: str = "") -> None:
        """Raise IntegrityError unless ``signature_b64`` is this key's signature of ``data``."""
        try:
            signature = unb64(signature_b64)
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except (InvalidSignature, ValueError) as exc:
            raise IntegrityError("signature does not verify", path=what) from exc

    def is_valid(self, signature_b64: str, data: bytes) -> bool:
        try:
            self.verify(signature_b64, data)
        except IntegrityError:
            return False
        return True



class SignatureCheck(Protocol):
    """What verifiers of archive signatures take: one :class:`VerifyKey`, or the archive's key chain
    (``investigator.vault.keychain.KeyChain``, which accepts any key of the verified chain)."""

    def verify(self, signature_b64: str, data: bytes, *, what: str = "") -> object:
        """Raise IntegrityError unless ``signature_b64`` is a valid signature of ``data``."""
        ...

    def is_valid(self, signature_b64: str, data: bytes) -> bool:
        """True when ``signature_b64`` is a valid signature of ``data``."""
        ...

# --- TOTP (RFC 6238 over RFC 4226) -----------------------------------------

def new_totp_secret() -> bytes:
    """A 160-bit TOTP secret (RFC 4226 recommends at least 128 bits)."""
    return secrets.token_bytes(20)


def hotp(secret: bytes, counter: int, *, digits: int = 6, algorithm: str = "sha1") -> str:
    """RFC 4226 HOTP value of ``counter``."""
    digest = hmac.new(secret, struct.pack(">Q", counter), algorithm).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % (10**digits)
    return str(code).zfill(digits)


def totp(secret: bytes, unix_time: float, *, step: int = 30, digits: int = 6, algorithm: str = "sha1") -> str:
    """RFC 6238 TOTP code at ``unix_time``."""
    return hotp(secret, int(unix_time // step), digits=digits, algorithm=algorithm)


def totp_match(secret: bytes, code: str, unix_time: float, *, step: int = 30, skew: int = 1,
               digits: int = 6) -> int | None:
    """The time-step counter that ``code`` is valid for (within ``skew`` steps), or None.

    Compared in constant time. Callers store the returned counter to refuse replays.
    """
    now_counter = int(unix_time // step)
    found = None
    for counter in range(now_counter - skew, now_counter + skew + 1):
        if hmac.compare_digest(hotp(secret, counter, digits=digits), code.strip()):
            found = counter
    return found


def totp_uri(secret: bytes, *, account: str, issuer: str = "investigator") -> str:
    """otpauth:// URI for authenticator apps."""
    from urllib.parse import quote

    label = quote(f"{issuer}:{account}")
    return (f"otpauth://totp/{label}?secret={b32(secret)}&issuer={quote(issuer)}"
            "&algorithm=SHA1&digits=6&period=30")


# --- encodings ---------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def unb32(text: str) -> bytes:
    padded = text.upper() + "=" * (-len(text) % 8)
    return base64.b32decode(padded)
