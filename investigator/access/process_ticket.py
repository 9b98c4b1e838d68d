"""Process tickets: what a process the investigator starts holds instead of the person's key.

    >>> token = case.process_ticket("report run complaint_investigation", lifetime=1800)  # doctest: +SKIP
    >>> # in the other process (a report kernel, a Dask worker), with the archive, the URL and the token only:
    >>> case = open_case("case-archive", process_ticket=token, keyserver="http://127.0.0.1:8765")  # doctest: +SKIP
    >>> case.messages()                                                                            # doctest: +SKIP

A process ticket is issued by the key server (``POST /v1/process-ticket``, signed by the person,
naming the case ticket of a case they opened) and signed there with the archive signing key. It is
a bearer token: whoever holds it may ask ``POST /v1/keys-for-process`` for the keys of the chunk set
it is bound to, until it expires, is revoked, or its grant is revoked or stops verifying. It never
holds key material, and it opens nothing without the key server that issued it.

Wire form (ASCII, at most :data:`MAX_TOKEN` characters)::

    ipt1.<payload>.<signature>

``payload`` is the unpadded base64url of the body's RFC 8785 bytes; ``signature`` the unpadded
base64url of the archive key's Ed25519 signature over ``investigator-process-ticket/1\\n`` followed
by those body bytes (the prefix keeps the signature apart from every other document the archive
key signs). Both parts must be the canonical encoding of their bytes: a changed character that
decodes to the same bytes is refused too. The body::

    {"format": "investigator-process-ticket/1", "id": "PT-<32 hex>", "archive_id": "...",
     "grant_id": "G-...", "grant_hash": "<sha256 of the grant document>",
     "person": "sunli", "key_id": "<the personal key that signed the issue request>",
     "label": "report run complaint_investigation",
     "window": {"start": "...Z", "end": "...Z"}, "parts": ["meta", "content"],
     "chunks": {"count": 12, "sha256": "<chunk_set_hash of the bound chunk set>"},
     "issued": "...Z", "expires": "...Z"}

The bound chunk set is every chunk part the case could be released when the ticket was issued:
for each record kind, each committed chunk overlapping the grant's window, each part the grant's
fields open for that kind (:func:`chunk_set`). Its hash (:func:`chunk_set_hash`) is the SHA-256 of
the sorted ``kind/partition/chunk/part`` names joined by ``\\n``. The key server keeps the set
itself in memory with the ticket; chunks ingested later into the window are outside it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from investigator import _crypto
from investigator.authority.policy import parse_utc
from investigator.errors import IdentityCheckFailed
from investigator.schema import KINDS, canonical_json, format_ts, parts_for_fields
from investigator.vault.format import ArchiveSigner
from investigator.vault.store import Archive

FORMAT = "investigator-process-ticket/1"
PREFIX = "ipt1"
DOMAIN = (FORMAT + "\n").encode("ascii")
MAX_TOKEN = 8192
MAX_LIFETIME = timedelta(hours=2)
DEFAULT_LIFETIME = timedelta(hours=1)
ID_RE = re.compile(r"^PT-[0-9a-f]{32}$")
# a label names the process for the audit log: printable, one line, 1..120 characters
LABEL_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,120}$")
_TOKEN_RE = re.compile(r"^ipt1\.([A-Za-z0-9_-]{16,8000})\.([A-Za-z0-9_-]{86})$")
_FIELDS = ("format", "id", "archive_id", "grant_id", "grant_hash", "person", "key_id", "label", "window", "parts",
           "chunks", "issued", "expires")


class ProcessTicketRefused(IdentityCheckFailed):
    """A process ticket was not accepted; ``rule`` names why (``process_ticket.invalid`` for a bad token)."""

    def __init__(self, reason: str, *, rule: str = "process_ticket.invalid") -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _strict_unb64url(text: str) -> bytes:
    """Bytes of canonical unpadded base64url; anything else (spare bits set, stray characters) raises ValueError."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if _b64url(data) != text:
        raise ValueError("not the canonical encoding")
    return data


def valid_label(label: Any) -> bool:
    """Whether ``label`` may name a process (printable, one line, 1..120 characters, not blank)."""
    return isinstance(label, str) and bool(LABEL_RE.match(label)) and bool(label.strip())


def chunk_name(kind: str, partition: str, chunk: str, part: str) -> str:
    return f"{kind}/{partition}/{chunk}/{part}"


def chunk_set(archive: Archive, start: datetime, end: datetime, fields: Iterable[str]) -> frozenset[str]:
    """The ``kind/partition/chunk/part`` names a case of window ``[start, end)`` and ``fields`` may be released.

    Exactly what the loader asks for: each committed chunk overlapping the window, each part the
    fields open for its kind (whether or not the chunk stored that part).
    """
    lo, hi = format_ts(start), format_ts(end)
    fields = tuple(fields)
    out: set[str] = set()
    for kind in KINDS:
        parts = parts_for_fields(fields, kind)
        for entry in archive.chunk_entries(kind, overlapping=(lo, hi)):
            out.update(chunk_name(kind, entry.partition, entry.chunk, p) for p in parts)
    return frozenset(out)


def chunk_set_hash(names: Iterable[str]) -> str:
    """Hex SHA-256 of the sorted chunk-part names joined by newlines (UTF-8)."""
    return _crypto.sha256_hex("\n".join(sorted(names)).encode("utf-8"))


def new_id() -> str:
    return "PT-" + secrets.token_hex(16)


@dataclass(frozen=True)
class ProcessTicket:
    """The verified body of a process ticket (never the token: the repr shows no credential)."""

    id: str
    archive_id: str
    grant_id: str
    grant_hash: str
    person: str
    key_id: str
    label: str
    start: datetime
    end: datetime
    parts: tuple[str, ...]
    chunks: int
    chunks_sha256: str
    issued: datetime
    expires: datetime

    def __repr__(self) -> str:
        return (f"ProcessTicket(id={self.id!r}, grant_id={self.grant_id!r}, person={self.person!r}, "
                f"label={self.label!r}, expires={format_ts(self.expires)!r})")

    def body(self) -> dict[str, Any]:
        return {"format": FORMAT, "id": self.id, "archive_id": self.archive_id, "grant_id": self.grant_id,
                "grant_hash": self.grant_hash, "person": self.person, "key_id": self.key_id, "label": self.label,
                "window": {"start": format_ts(self.start), "end": format_ts(self.end)}, "parts": list(self.parts),
                "chunks": {"count": self.chunks, "sha256": self.chunks_sha256},
                "issued": format_ts(self.issued), "expires": format_ts(self.expires)}

    @classmethod
    def from_body(cls, body: Any) -> "ProcessTicket":
        """Parse a body (already authenticated); raises ValueError, KeyError or TypeError when malformed."""
        if not isinstance(body, dict) or sorted(body) != sorted(_FIELDS) or body["format"] != FORMAT:
            raise ValueError("not a process-ticket body")
        strings = ("id", "archive_id", "grant_id", "grant_hash", "person", "key_id", "label", "issued", "expires")
        if not all(isinstance(body[k], str) for k in strings) or not ID_RE.match(body["id"]):
            raise ValueError("malformed process-ticket body")
        window, chunks, parts = body["window"], body["chunks"], body["parts"]
        if not (isinstance(parts, list) and all(isinstance(p, str) for p in parts) and isinstance(chunks, dict)
                and isinstance(chunks["count"], int) and isinstance(chunks["sha256"], str)):
            raise ValueError("malformed process-ticket body")
        return cls(id=body["id"], archive_id=body["archive_id"], grant_id=body["grant_id"],
                   grant_hash=body["grant_hash"], person=body["person"], key_id=body["key_id"], label=body["label"],
                   start=parse_utc(str(window["start"])), end=parse_utc(str(window["end"])), parts=tuple(parts),
                   chunks=chunks["count"], chunks_sha256=chunks["sha256"], issued=parse_utc(body["issued"]),
                   expires=parse_utc(body["expires"]))


def encode(ticket: ProcessTicket, signer: ArchiveSigner) -> str:
    """The token: the body signed by the archive key (``signer``: the custody's ``signing``)."""
    data = canonical_json(ticket.body())
    signature = _crypto.unb64(signer.sign(DOMAIN + data))
    return f"{PREFIX}.{_b64url(data)}.{_b64url(signature)}"


def decode(token: Any, public: _crypto.SignatureCheck, *, archive_id: str) -> ProcessTicket:
    """The ticket a token carries, after checking its form, the archive key's signature and the archive.

    Raises ProcessTicketRefused (rule ``process_ticket.invalid``) for anything else: a changed
    character anywhere, another archive's ticket, a body that does not parse. Expiry, revocation and
    the bound chunk set are the key server's to judge.
    """
    match = _TOKEN_RE.match(token) if isinstance(token, str) and len(token) <= MAX_TOKEN else None
    if match is None:
        raise ProcessTicketRefused("not a process ticket (malformed token)")
    try:
        data, signature = _strict_unb64url(match.group(1)), _strict_unb64url(match.group(2))
    except ValueError:
        raise ProcessTicketRefused("not a process ticket (malformed token)") from None
    if len(signature) != 64 or not public.is_valid(_crypto.b64(signature), DOMAIN + data):
        raise ProcessTicketRefused("the process ticket's signature does not verify (altered, or not issued for "
                                   "this archive)")
    try:
        ticket = ProcessTicket.from_body(json.loads(data))
    except (ValueError, KeyError, TypeError):
        raise ProcessTicketRefused("the process ticket's body is malformed") from None
    if ticket.archive_id != archive_id:
        raise ProcessTicketRefused("the process ticket belongs to another archive")
    return ticket
