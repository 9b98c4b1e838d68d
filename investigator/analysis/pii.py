"""Sensitive information: detect, mask, or pseudonymize with a keyed HMAC.

    >>> from investigator.analysis.pii import detect, mask_text, pseudonymize_text
    >>> text = "手机 138-1234-5678, mail zhang@example.com"
    >>> [(f.kind, f.start, f.end) for f in detect(text)]
    [('phone', 3, 16), ('email', 23, 40)]
    >>> mask_text(text)
    '手机 [PHONE], mail [EMAIL]'
    >>> pseudonymize_text(text, key=b"case-2026-017 secret")[:20]
    '手机 [PHONE:fdc5601d],'

Detectors: Chinese mobile numbers (``1[3-9]`` + 9 digits, optional +86, spaces or dashes in the
usual 3-4-4 grouping), 18-digit resident identity numbers (GB 11643 check digit and a real birth
date), bank card numbers (13-19 digits, Luhn), e-mail addresses, IPv4 and IPv6 addresses. Digit runs
must not touch other digits, so an identity number is never also reported as a phone number.

Pseudonyms are ``HMAC-SHA256(key, kind + ":" + canonical value)``: the same number written
``138 1234 5678`` or ``+86 13812345678`` gets the same pseudonym within a case (one key per case),
and different cases cannot be linked. Uses only ``hmac``/``hashlib``; the analysis layer does not
touch the crypto module. Reports redact by default (:func:`redact_frame`, ``mode="mask"``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import polars as pl

from investigator.analysis.normalize import ContentNotGranted

KINDS = ("resident_id", "phone", "bank_card", "email", "ipv4", "ipv6")
LABELS = {"resident_id": "ID", "bank_card": "CARD", "phone": "PHONE", "email": "EMAIL", "ipv4": "IP",
          "ipv6": "IP"}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_SEP = r"[ \-\u00a0\u3000]?"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "resident_id": re.compile(r"(?<![0-9])[1-9]\d{5}(?:18|19|20)\d{2}\d{2}\d{2}\d{3}[0-9Xx](?![0-9A-Za-z])"),
    "bank_card": re.compile(r"(?<![0-9])[3-9]\d{3}(?:[ \-]?\d{4}){2,3}(?:[ \-]?\d{1,3})?(?![0-9])"),
    "phone": re.compile(rf"(?<![0-9+])(?:(?:\+|00)?86{_SEP})?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}(?![0-9])"),
    "email": re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "ipv4": re.compile(r"(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9]|\.[0-9])"),
    "ipv6": re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])"),
}


@dataclass(frozen=True)
class Finding:
    """One detected value: its kind and span in the text (``text[start:end]``)."""

    kind: str
    start: int
    end: int
    value: str

    def __repr__(self) -> str:  # the value is personal data: keep it out of logs and tracebacks
        return f"Finding(kind={self.kind!r}, start={self.start}, end={self.end})"


def resident_id_valid(value: str) -> bool:
    """GB 11643-1999: 17 digits, a plausible birth date, and the ISO 7064 MOD 11-2 check character."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not date(1900, 1, 1) <= born <= date(2100, 1, 1):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == value[17].upper()


def resident_id_check_char(first17: str) -> str:
    """The check character for 17 leading digits (for building test data)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11]


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by bank card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _valid(kind: str, value: str) -> bool:
    if kind == "resident_id":
        return resident_id_valid(value)
    if kind == "bank_card":
        d = _digits(value)
        return 13 <= len(d) <= 19 and luhn_valid(d)
    if kind == "ipv4":
        return all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in value.split("."))
    if kind == "ipv6":
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return False
        return value.count(":") >= 2 and any(c.isalnum() for c in value)
    return True


def canonical(kind: str, value: str) -> str:
    """The form pseudonyms are computed from: digits only for numbers, lower case for e-mails and IPs."""
    if kind == "phone":
        d = _digits(value)
        return d[-11:]
    if kind == "bank_card":
        return _digits(value)
    if kind == "resident_id":
        return value.upper()
    if kind == "ipv6":
        return ipaddress.IPv6Address(value).compressed
    return value.lower()


def detect(text: str | None, kinds: Iterable[str] = KINDS) -> list[Finding]:
    """Every sensitive value in ``text``, ordered by position, overlapping findings resolved.

    Earlier kinds in ``KINDS`` win overlaps (an 18-digit identity number is not also a card).
    """
    if not text:
        return []
    wanted = [k for k in KINDS if k in set(kinds)]
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind in wanted:
        for match in _PATTERNS[kind].finditer(text):
            start, end = match.span()
            if any(start < b and a < end for a, b in taken) or not _valid(kind, match.group()):
                continue
            found.append(Finding(kind, start, end, match.group()))
            taken.append((start, end))
    return sorted(found, key=lambda f: f.start)


def _replace(text: str, findings: list[Finding], render) -> str:
    out, last = [], 0
    for f in findings:
        out.append(text[last : f.start])
        out.append(render(f))
        last = f.end
    out.append(text[last:])
    return "".join(out)


def mask_text(text: str | None, kinds: Iterable[str] = KINDS) -> str | None:
    """``text`` with every detected value replaced by its label, e.g. ``[PHONE]``."""
    if text is None:
        return None
    return _replace(text, detect(text, kinds), lambda f: f"[{LABELS[f.kind]}]")


def pseudonym(kind: str, value: str, key: bytes) -> str:
    """The stable pseudonym of one value under ``key``: ``[PHONE:1a2b3c4d]``."""
    digest = hmac.new(key, f"{kind}:{canonical(kind, value)}".encode(), hashlib.sha256).hexdigest()
    return f"[{LABELS[kind]}:{digest[:8]}]"


def pseudonymize_text(text: str | None, *, key: bytes, kinds: Iterable[str] = KINDS) -> str | None:
    """``text`` with every detected value replaced by its keyed pseudonym.

    Raises ValueError for a key shorter than 16 bytes (a guessable key makes pseudonyms reversible
    for phone numbers, of which there are only about 10^10).
    """
    if len(key) < 16:
        raise ValueError("pseudonymization key must be at least 16 bytes")
    if text is None:
        return None
    return _replace(text, detect(text, kinds), lambda f: pseudonym(f.kind, f.value, key))


def find_pii(frame: pl.DataFrame, *, column: str = "text", kinds: Iterable[str] = KINDS,
             with_values: bool = False) -> pl.DataFrame:
    """One row per finding: message_id, kind, start, end (and ``value`` only when asked).

    Raises ContentNotGranted when ``column`` is absent.
    """
    if column not in frame.columns:
        raise ContentNotGranted("sensitive information detection")
    kinds = list(kinds)
    rows: list[dict[str, object]] = []
    for mid, text in zip(frame["message_id"].to_list(), frame[column].to_list()):
        for f in detect(text, kinds):
            row: dict[str, object] = {"message_id": mid, "kind": f.kind, "start": f.start, "end": f.end}
            if with_values:
                row["value"] = f.value
            rows.append(row)
    schema: dict[str, pl.DataType] = {"message_id": pl.String(), "kind": pl.String(), "start": pl.Int64(),
                                      "end": pl.Int64()}
    if with_values:
        schema["value"] = pl.String()
    return pl.DataFrame(rows, schema=schema)


def redact_frame(frame: pl.DataFrame, *, columns: Iterable[str] = ("text",), mode: str = "mask",
                 key: bytes | None = None, kinds: Iterable[str] = KINDS) -> pl.DataFrame:
    """``frame`` with sensitive values in ``columns`` masked (default) or pseudonymized (needs ``key``).

    Raises ValueError for an unknown mode or a pseudonymization without a key.
    """
    kinds = list(kinds)
    if mode == "mask":
        fn = lambda t: mask_text(t, kinds)  # noqa: E731
    elif mode == "pseudonymize":
        if key is None:
            raise ValueError("pseudonymization needs the case key")
        fn = lambda t: pseudonymize_text(t, key=key, kinds=kinds)  # noqa: E731
    else:
        raise ValueError("mode must be 'mask' or 'pseudonymize'")
    present = [c for c in columns if c in frame.columns]
    return frame.with_columns([pl.col(c).map_elements(fn, return_dtype=pl.String) for c in present])
