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

A long digit run passes the Luhn check one time in ten, so the card detector also reads the context
(docs/analysis.md, "Sensitive information"): not a card when the digits are part of a decimal number
or an exponent (``0.4532015112830366``, as plotly writes numbers), glued to an identifier
(``10958372969718811103_1603875609``, a WeCom msgid; ``msg6222...``), announced by an id label
(``message_id: ...``, ``"customdata": ["...``, ``订单号``) with no card word (``卡号``, ``card``) nearer,
or in a table column of technical ids (``message_id``, ``msgid``, ``event_id``, ``seq``, ``ts`` ...:
:func:`is_id_column`) of an HTML, tab-separated, Markdown or Polars-printed table. Decimal and table
rules apply to phone and identity numbers too.

    >>> [f.kind for f in detect("卡号 4111111111111111")], detect("message_id: 4111111111111111")
    (['bank_card'], [])
    >>> detect("10958372969718811103_1603875609"), detect('{"y": [0.4111111111111111]}')
    ([], [])

Pseudonyms are ``HMAC-SHA256(key, kind + ":" + canonical value)``: the same number written
``138 1234 5678`` or ``+86 13812345678`` gets the same pseudonym within a case (one key per case),
and different cases cannot be linked. Uses only ``hmac``/``hashlib``; the analysis layer does not
touch the crypto module. Reports redact by default (:func:`redact_frame`, ``mode="mask"``).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import re
from collections.abc import Iterable, Iterator
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


_NUMERIC_KINDS = frozenset({"bank_card", "phone", "resident_id"})
# Technical id columns: never personal data, often long digit runs (sender_id and conversation_id can
# be phone numbers, so they are not in this list).
_ID_COLUMN = re.compile(
    r"(?i)^(?:id|ids|uuid|guid|ts|timestamp|seq|hash|version|msgid|msgsvrid|msg_?seq|leaf_index|batch_seq"
    r"|(?:[a-z]+_)*(?:message|msg|event|chunk|record|item|thread|reply|parent|batch|row|request|trace|session"
    r"|file|attachment|media|order)_?(?:id|ids|index|seq|hash|no|key|ts)"
    r"|customdata|消息\s*id|消息编号|事件\s*id|序号|编号|订单号|流水号)$")
_ID_LABEL = re.compile(
    r"(?i)(?:(?<![a-z])(?:msg_?id|message[_ ]?id|msgsvrid|event[_ ]?id|chunk[_ ]?id|record[_ ]?id|trace[_ ]?id"
    r"|request[_ ]?id|session[_ ]?id|order[_ ]?(?:id|no)|uuid|seq|timestamp|ts|id|ids|customdata)"
    r"|消息\s*id|消息编号|订单号|流水号|单号|编号|序列号)[\"']?\s*[:=：#]?\s*[\[\s]*[\"'“]?\s*$")
_CARD_LABEL = re.compile(r"(?i)(?:卡号|银行卡|信用卡|储蓄卡|尾号|账号|card|acct|account|iban)")
_LABEL_WINDOW = 40
_BORDER = re.compile(r"^[\s─━═┌┐└┘├┤┬┴┼╞╡╪│┆|:+\-]+$")


def is_id_column(name: str) -> bool:
    """True for a column of technical ids (``message_id``, ``msgid``, ``event_id``, ``seq``, ``ts`` ...).

    Its digit runs are identifiers, not card, phone or identity numbers. ``sender_id`` and
    ``conversation_id`` are not in the list: accounts can be phone numbers.
    """
    return bool(_ID_COLUMN.match(name.strip()))


def _decimal_context(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if before == "." and start >= 2 and text[start - 2].isdigit():
        return True  # the fraction of 0.4532015112830366
    if after == "." and end + 1 < len(text) and text[end + 1].isdigit():
        return True  # the integer part of 4532015112830366.5
    if after in ("e", "E") and re.match(r"[eE][+-]?\d", text[end:end + 3]):
        return True  # a mantissa: 4.532015112830366e+18 (the digits after the point are caught above)
    return False


def _glued_to_identifier(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    glue = lambda c: c.isascii() and (c.isalnum() or c == "_")  # noqa: E731
    if glue(after) or after == "_" or (after == "-" and end + 1 < len(text) and glue(text[end + 1])):
        return True  # 10958372969718811103_1603875609, 4111...-abc
    if before == "_" or (before == "-" and start >= 2 and glue(text[start - 2])):
        return True
    if glue(before):
        # letters right before the digits: an identifier (msg6222...), unless they are a card word
        word = re.search(r"[A-Za-z_0-9]*$", text[:start])
        return not (word and _CARD_LABEL.fullmatch(word.group()))
    return False


def _id_labelled(text: str, start: int) -> bool:
    window = text[max(0, start - _LABEL_WINDOW):start]
    label = _ID_LABEL.search(window)
    if not label:
        return False
    card = [m.end() for m in _CARD_LABEL.finditer(window)]
    return not card or card[-1] <= label.start()


def _cells(text: str) -> Iterator[tuple[str, int, int]]:
    """(column name, start, end) of every table cell in ``text``: HTML, tab-separated, Markdown, Polars."""
    for table in re.finditer(r"(?is)<table\b.*?</table>", text):
        headers: list[str] = []
        for row in re.finditer(r"(?is)<tr\b[^>]*>(.*?)</tr>", table.group()):
            cells = list(re.finditer(r"(?is)<(t[hd])\b[^>]*>(.*?)</t[hd]>", row.group(1)))
            if not headers:
                if cells and all(c.group(1).lower() == "th" for c in cells):
                    headers = [html.unescape(re.sub(r"<[^>]+>", "", c.group(2))).strip() for c in cells]
                continue
            base = table.start() + row.start(1)
            for i, cell in enumerate(cells):
                if i < len(headers):
                    yield headers[i], base + cell.start(2), base + cell.end(2)
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    headers = []
    for n, line in enumerate(lines):
        if line.strip() and _BORDER.match(line):
            continue  # ╞═══╪═══╡, |---|---|: table rules, not rows
        sep = "\t" if "\t" in line else "┆" if "┆" in line else "|" if line.strip().startswith("|") else None
        if sep is None:
            headers = []
            continue
        body = line.strip().strip("│|") if sep != "\t" else line
        lead = line.index(body) if body and body in line else 0
        parts, pos = [], lead
        for part in body.split(sep):
            parts.append((part.strip(), offsets[n] + pos, offsets[n] + pos + len(part)))
            pos += len(part) + 1
        if not headers:
            headers = [p[0] for p in parts]
            continue
        for i, (_value, a, b) in enumerate(parts):
            if i < len(headers):
                yield headers[i], a, b


def _id_cells(text: str) -> list[tuple[int, int]]:
    if not any(mark in text for mark in ("<td", "\t", "┆", "|")):
        return []
    return [(a, b) for name, a, b in _cells(text) if is_id_column(name)]


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


def _in_context(kind: str, text: str, start: int, end: int, id_cells: list[tuple[int, int]]) -> bool:
    """False when the context says the digits are not a ``kind`` (see the module docstring)."""
    if kind not in _NUMERIC_KINDS:
        return True
    if _decimal_context(text, start, end) or any(a <= start and end <= b for a, b in id_cells):
        return False
    if kind == "bank_card":
        return not (_glued_to_identifier(text, start, end) or _id_labelled(text, start))
    return True


def detect(text: str | None, kinds: Iterable[str] = KINDS, *, column: str | None = None) -> list[Finding]:
    """Every sensitive value in ``text``, ordered by position, overlapping findings resolved.

    Earlier kinds in ``KINDS`` win overlaps (an 18-digit identity number is not also a card).
    ``column``: the name of the column ``text`` comes from, when it does; a technical id column
    (:func:`is_id_column`) yields no card, phone or identity numbers.
    """
    if not text:
        return []
    wanted = [k for k in KINDS if k in set(kinds)]
    if column is not None and is_id_column(column):
        wanted = [k for k in wanted if k not in _NUMERIC_KINDS]
    id_cells: list[tuple[int, int]] | None = None
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind in wanted:
        for match in _PATTERNS[kind].finditer(text):
            start, end = match.span()
            if any(start < b and a < end for a, b in taken) or not _valid(kind, match.group()):
                continue
            if kind in _NUMERIC_KINDS and id_cells is None:
                id_cells = _id_cells(text)
            if not _in_context(kind, text, start, end, id_cells or []):
                continue
            found.append(Finding(kind, start, end, match.group()))
            taken.append((start, end))
    return sorted(found, key=lambda f: f.start)


def detect_figure(figure: object, kinds: Iterable[str] = KINDS) -> list[Finding]:
    """Findings in the strings of a plotly figure (its JSON as a dict), each read with its key as column.

    ``customdata`` and ``ids`` hold message ids (technical: no card, phone or identity numbers there);
    titles, hover texts, category labels on ``x``/``y`` are read like any text. Numbers (not strings)
    are never personal data here.
    """
    kinds = list(kinds)
    found: list[Finding] = []

    def walk(obj: object, key: str | None) -> None:
        if isinstance(obj, str):
            found.extend(detect(obj, kinds, column=key))
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if k != "template":  # plotly's theme: colours and numbers, no data
                    walk(v, str(k))
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v, key)

    walk(figure, None)
    return found


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
        for f in detect(text, kinds, column=column):
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
