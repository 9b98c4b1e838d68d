"""Signed requests to the key server: the client signs with a personal key, the server verifies.

    >>> signer = RequestSigner("sunli", unlock_person_key(archive, "sunli", passphrase))        # doctest: +SKIP
    >>> headers = signer.headers(archive_id=archive.archive_id, method="POST", path="/v1/open",
    ...                          body=b'{"grant_id": "G-..."}')                                 # doctest: +SKIP

Every request to ``investigator keyserver`` (except ``GET /v1/health``) carries five headers:

- ``X-Investigator-Person``: the acting person's id (as in the org directory);
- ``X-Investigator-Key-Id``: the id of their personal Ed25519 key (16 hex characters);
- ``X-Investigator-Time``: the client's clock, whole Unix seconds;
- ``X-Investigator-Nonce``: 32 random hex characters, never reused;
- ``X-Investigator-Signature``: base64 Ed25519 signature of the canonical string, which is
  these lines joined by ``\\n`` (UTF-8, no trailing newline)::

      investigator-keyserver-request/1
      <archive id>
      <METHOD>
      <path as sent, with any query>
      <hex SHA-256 of the body bytes as sent>
      <person>
      <key id>
      <time>
      <nonce>

The server (:class:`RequestVerifier`) checks, in this order, and refuses with a rule:
the headers are there and well formed (``keyserver.unsigned``); the time is within
±:data:`CLOCK_SKEW_SECONDS` of its own clock (``keyserver.clock``); the person is in the
directory and active (``keyserver.person``); the key id is one of theirs and not revoked
(``keyserver.key``); the signature verifies (``keyserver.signature``); the nonce was not
seen within the window (``keyserver.replay``). Only then does the server look at the body
(TOTP codes, sessions, tickets), so an unsigned or forged request never reaches the TOTP
counters and can lock no one out.
"""

from __future__ import annotations

import heapq
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from investigator import _crypto
from investigator.authority.directory import Directory, DirectoryStore
from investigator.errors import IdentityCheckFailed, InvestigatorError
from investigator.vault.store import Archive

SCHEME = "investigator-keyserver-request/1"
HEADER_PERSON = "X-Investigator-Person"
HEADER_KEY_ID = "X-Investigator-Key-Id"
HEADER_TIME = "X-Investigator-Time"
HEADER_NONCE = "X-Investigator-Nonce"
HEADER_SIGNATURE = "X-Investigator-Signature"
SIGNED_HEADERS = (HEADER_PERSON, HEADER_KEY_ID, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE)
CLOCK_SKEW_SECONDS = 120

PERSON_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_TIME_RE = re.compile(r"^[0-9]{1,12}$")
_NONCE_RE = re.compile(r"^[0-9a-f]{32}$")
_SIGNATURE_RE = re.compile(r"^[A-Za-z0-9+/]{86}==$")  # base64 of 64 bytes


def canonical_request(*, archive_id: str, method: str, path: str, body: bytes, person: str, key_id: str,
                      timestamp: str, nonce: str) -> bytes:
    """The bytes a request signature covers (see the module docstring)."""
    lines = (SCHEME, archive_id, method.upper(), path, _crypto.sha256_hex(body), person, key_id, timestamp, nonce)
    return "\n".join(lines).encode("utf-8")


class RequestSigner:
    """A person and their unlocked personal key: signs key-server requests. The repr shows no key."""

    def __init__(self, person: str, key: _crypto.SigningKey) -> None:
        if not PERSON_RE.match(person or ""):
            raise IdentityCheckFailed(f"invalid person id {person!r} for a signed request")
        self.person = person
        self._key = key

    @property
    def key_id(self) -> str:
        return self._key.public.key_id

    def __repr__(self) -> str:
        return f"RequestSigner(person={self.person!r}, key_id={self.key_id!r})"

    def headers(self, *, archive_id: str, method: str, path: str, body: bytes, now: float | None = None,
                nonce: str | None = None) -> dict[str, str]:
        """The five signature headers for one request (``now`` and ``nonce`` only for tests)."""
        timestamp = str(int(time.time() if now is None else now))
        nonce = nonce or secrets.token_hex(16)
        data = canonical_request(archive_id=archive_id, method=method, path=path, body=body, person=self.person,
                                 key_id=self.key_id, timestamp=timestamp, nonce=nonce)
        return {HEADER_PERSON: self.person, HEADER_KEY_ID: self.key_id, HEADER_TIME: timestamp,
                HEADER_NONCE: nonce, HEADER_SIGNATURE: self._key.sign(data)}


class RequestRefused(IdentityCheckFailed):
    """A request's signature was not accepted. ``rule`` names the check; ``claimed`` is the unverified person."""

    def __init__(self, reason: str, *, rule: str, claimed: str = "") -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.claimed = claimed


@dataclass(frozen=True)
class SignedRequest:
    """What a verified signature proves: who sent the request, with which key, when."""

    person: str
    key_id: str
    timestamp: int
    nonce: str


class NonceCache:
    """Nonces of verified requests, remembered until their timestamp leaves the clock window. Thread-safe."""

    def __init__(self, skew: int = CLOCK_SKEW_SECONDS) -> None:
        self.skew = skew
        self._seen: set[tuple[str, str]] = set()
        self._expiry: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, person: str, nonce: str, timestamp: int, now: float) -> bool:
        """Remember ``(person, nonce)``; False if it was seen and is still remembered (a replay)."""
        key = (person, nonce)
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                _, old = heapq.heappop(self._expiry)
                self._seen.discard(old)
            if key in self._seen:
                return False
            self._seen.add(key)
            # after timestamp + skew the clock check refuses the request anyway; +1 for rounding
            heapq.heappush(self._expiry, (max(float(timestamp), now) + self.skew + 1, key))
            return True


def signed_header_values(get_all: Callable[[str], list[str] | None]) -> dict[str, str]:
    """The signature headers of a request, given its ``get_all`` (as ``http.server`` headers have).

    A header that is missing stays out of the result; one sent twice is refused
    (``keyserver.unsigned``): a proxy and the server could read different copies.
    """
    out: dict[str, str] = {}
    for name in SIGNED_HEADERS:
        values = get_all(name) or []
        if len(values) > 1:
            raise RequestRefused(f"header {name} sent more than once", rule="keyserver.unsigned")
        if values:
            out[name] = str(values[0]).strip()
    return out


class RequestVerifier:
    """The server side: checks a request's signature against the directory, the clock and the nonces seen."""

    def __init__(self, archive: Archive, *, skew: int = CLOCK_SKEW_SECONDS,
                 directory: Callable[[], Directory] | None = None) -> None:
        self.archive = archive
        self.skew = skew
        self.nonces = NonceCache(skew)
        # the directory is loaded (and its signatures checked) per request: a revoked key or a
        # deactivated person is refused from the next request on
        self._directory = directory or DirectoryStore(archive).load

    def __repr__(self) -> str:
        return f"RequestVerifier(archive={self.archive.archive_id!r}, skew={self.skew})"

    def verify(self, method: str, path: str, headers: dict[str, str], body: bytes, *,
               now: float | None = None) -> SignedRequest:
        """The verified sender of a request, or RequestRefused naming the rule (see the module docstring)."""
        clock = time.time() if now is None else now
        person = headers.get(HEADER_PERSON, "")
        claimed = person if PERSON_RE.match(person) else ""
        missing = [h for h in SIGNED_HEADERS if not headers.get(h)]
        if missing:
            raise RequestRefused("unsigned request: every request to the key server must be signed with the "
                                 f"person's key (missing {', '.join(missing)})", rule="keyserver.unsigned",
                                 claimed=claimed)
        key_id, stamp = headers[HEADER_KEY_ID], headers[HEADER_TIME]
        nonce, signature = headers[HEADER_NONCE], headers[HEADER_SIGNATURE]
        for name, value, pattern in ((HEADER_PERSON, person, PERSON_RE), (HEADER_KEY_ID, key_id, _KEY_ID_RE),
                                     (HEADER_TIME, stamp, _TIME_RE), (HEADER_NONCE, nonce, _NONCE_RE),
                                     (HEADER_SIGNATURE, signature, _SIGNATURE_RE)):
            if not pattern.match(value):
                raise RequestRefused(f"malformed {name} header", rule="keyserver.unsigned", claimed=claimed)
        timestamp = int(stamp)
        if abs(clock - timestamp) > self.skew:
            raise RequestRefused(f"request time is {int(timestamp - clock):+d} s off the key server's clock "
                                 f"(±{self.skew} s allowed): check the client's clock", rule="keyserver.clock",
                                 claimed=claimed)
        try:
            directory = self._directory()
        except InvestigatorError as exc:  # IntegrityError: a version edited outside the CLI
            raise RequestRefused(f"org directory altered outside the CLI: {exc}", rule="directory.integrity",
                                 claimed=claimed) from exc
        found = directory.find(person)
        if found is None or not found.active:
            raise RequestRefused(f"{person} is not an active person of the directory", rule="keyserver.person",
                                 claimed=claimed)
        registered = found.key(key_id)
        if registered is None or registered.revoked:
            state = f"was revoked at {registered.revoked}" if registered else "is not registered for them"
            raise RequestRefused(f"key {key_id} of {person} {state}", rule="keyserver.key", claimed=claimed)
        data = canonical_request(archive_id=self.archive.archive_id, method=method, path=path, body=body,
                                 person=person, key_id=key_id, timestamp=stamp, nonce=nonce)
        if not registered.verify_key().is_valid(signature, data):
            raise RequestRefused("request signature does not verify (wrong key, or the request was altered)",
                                 rule="keyserver.signature", claimed=claimed)
        if not self.nonces.add(person, nonce, timestamp, clock):
            raise RequestRefused("request nonce already used (a replayed request is refused)",
                                 rule="keyserver.replay", claimed=claimed)
        return SignedRequest(person=person, key_id=key_id, timestamp=timestamp, nonce=nonce)

